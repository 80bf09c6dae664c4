"""Sending attempts: claim queued rows (red first), render, hand over concurrently, record.

The attempt row and its key exist before any provider is called. A worker that dies between
claiming and recording leaves rows 'sending' with an expired lease; ``reconcile`` asks the
provider whether it has the key before queueing the attempt again, so a crash neither loses nor
doubles a message where the provider can answer that question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, case, func, select, update
from sqlalchemy.orm import Session

from ..channels.base import (
    Address,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from ..channels.failover import ProviderChain
from ..channels.resilience import HALT_COOLDOWN, CircuitBreaker, RetryPolicy
from ..config import Settings
from ..db.bulk import among, update_rows
from ..db.queue import claim_queued_attempts, expired_leases
from ..db.record_repo import append_event
from ..db.tables import AttemptRow, CalloutRow, WarningRow
from ..domain.callouts import AttemptStatus, CalloutState, Purpose, moot, retry_delay
from ..domain.channels import Channel
from ..domain.escalation import CalloutFacts, fail_over
from ..domain.hazards import Level
from ..domain.limits import RateLimit
from ..domain.record import EventKind
from ..domain.rollcall import DUTY_PHONE, duty_room
from ..domain.roster import Person
from ..domain.site import Site
from ..links import link_url, make_token
from ..rendering import render
from . import spotchecks
from .chain import newest
from .drills import outage_error, withheld
from .escalation import Unanswered, called_number, next_numbers
from .handover import ANSWERED, LEASE_LOST, HandOverGuard, HandOverStopped
from .messages import message_context, warning_facts
from .site import current_site

logger = logging.getLogger("jiaoying.dispatch")
# Before a try is repeated on a provider that cannot be asked by our key, its status callback (which
# carries the key) has this long since the last try to arrive: the window in which a message whose
# answer was lost can go twice is what remains of the provider's callback delay.
CALLBACK_GRACE = 3.0
DEFAULT_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Job:
    attempt_id: int
    callout_id: int
    record_id: str
    own_step: bool  # a step to the official themself (its failure may bring the next step forward)
    message: OutboundMessage
    retried: bool = False  # an earlier claim tried it: the provider may have it already
    step_index: int = 0  # the step of the call-out it belongs to (-1: an update or cancel notice)
    number: int = 0  # which of the recipient's numbers a call is to (0: the first)
    without: tuple[str, ...] = ()  # channels and providers its drill took out (services/drills.py)
    looked: float = 0.0  # time.monotonic() when its claim began: the claim is a last look (handover.py)
    answered: bool = False  # its call-out was already closed when claimed: it must not go


@dataclass(frozen=True)
class Outcome:
    job: Job
    provider: str
    provider_id: str | None = None
    error: str | None = None
    transient: bool = False
    handed_over: float = 0.0  # time.monotonic() when the provider took it
    stopped: str | None = None  # not handed over: handover.ANSWERED or handover.LEASE_LOST
    wait: float | None = None  # try again in this many seconds: the channel's circuit is open
    tried: bool = True  # False: nothing was handed over (the circuit refused it): not counted as a try
    outage: bool = False  # its drill took the channel or provider out: failed without sending

    @property
    def sent(self) -> bool:
        return self.error is None and self.stopped is None


@dataclass
class Claim:
    """What a claim read in its transaction; ``jobs`` renders the messages, after the commit (on
    SQLite the claim holds the write lock that intake and replies wait for: no rendering under it)."""

    now: datetime
    looked: float  # time.monotonic() when the claim began: it sees the attempts still queued
    site: Site | None = None
    ids: list[int] = field(default_factory=list)
    attempts: list[Row[Any]] = field(default_factory=list)
    callouts: dict[int, Row[Any]] = field(default_factory=dict)
    contents: dict[str, WarningRow] = field(default_factory=dict)
    cuts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def jobs(self, settings: Settings | None) -> list[Job]:
        if self.site is None:
            return []
        jobs = []
        # What each warning's messages say alike, worked out once per claim rather than per message.
        facts = {record: warning_facts(self.site, content) for record, content in self.contents.items()}
        for attempt in self.attempts:
            callout = self.callouts[attempt.callout_id]
            job = _job(self.site, attempt, callout, self.contents[callout.record_id], settings, self.now,
                       self.looked, facts[callout.record_id])
            jobs.append(replace(job, without=self.cuts[callout.record_id]) if callout.record_id in self.cuts else job)
        # Red first: paced slots are handed out in this order.
        return sorted(jobs, key=lambda j: (-j.message.level.rank, j.attempt_id))


def claim(session: Session, now: datetime, limit: int, worker: str, lease: timedelta = DEFAULT_LEASE,
          channels: list[Channel] | None = None, callee_spacing: timedelta | None = None,
          number_limits: Sequence[RateLimit] = (), read: bool = True) -> Claim:
    """Take up to ``limit`` queued attempts under this worker's lease and (``read``) read what their
    messages need; ``Claim.jobs`` makes the messages once the transaction is over."""
    found = Claim(now, time.monotonic())
    found.ids = claim_queued_attempts(session, now, limit, worker, lease,
                                      [c.value for c in channels] if channels is not None else None, callee_spacing,
                                      [(int(n.count), timedelta(seconds=n.per_seconds)) for n in number_limits])
    return read_claim(session, found) if read else found


def read_claim(session: Session, found: Claim) -> Claim:
    """Read what the claimed attempts' messages need. The engine does it in a read-only transaction
    after the claim's commit (the rows are its own under the lease by then): on SQLite the claim's
    transaction holds the write lock, and these reads doubled how long."""
    ids = found.ids
    if not ids:
        return found
    found.site = current_site(session)
    # Plain rows of the columns a message needs, not ORM objects (nor the call-out's frozen steps):
    # this runs for every attempt of a 20,000-attempt fan-out.
    found.attempts = _in_chunks(session, _ATTEMPT_COLUMNS, AttemptRow.id, ids)
    found.callouts = {c.id: c for c in _in_chunks(session, _CALLOUT_COLUMNS, CalloutRow.id,
                                                  sorted({a.callout_id for a in found.attempts}))}
    found.contents = {record: newest(session, record) for record in {c.record_id for c in found.callouts.values()}}
    # A drill may have taken channels or providers out for its own call-outs (断网断电断通讯 drills).
    found.cuts = withheld(session, {c.record_id for c in found.callouts.values() if c.drill})
    return found


_ATTEMPT_COLUMNS = (AttemptRow.id, AttemptRow.callout_id, AttemptRow.key, AttemptRow.channel, AttemptRow.purpose,
                    AttemptRow.recipient_id, AttemptRow.number, AttemptRow.step_index, AttemptRow.tries)
_CALLOUT_COLUMNS = (CalloutRow.id, CalloutRow.person_id, CalloutRow.record_id, CalloutRow.level,
                    CalloutRow.ack_code, CalloutRow.drill, CalloutRow.state, CalloutRow.room)


def _in_chunks(session: Session, columns: tuple[Any, ...], key: Any, ids: list[int]) -> list[Row[Any]]:
    rows: list[Row[Any]] = []
    for start in range(0, len(ids), 900):
        rows.extend(session.execute(select(*columns).where(among(session, key, ids[start:start + 900]))))
    return sorted(rows, key=lambda r: r.id)


def _job(site: Site, attempt: Row[Any], callout: Row[Any], content: WarningRow, settings: Settings | None,
         now: datetime, looked: float = 0.0, facts: Mapping[str, Any] | None = None) -> Job:
    recipient = site.people.get(attempt.recipient_id)
    official = site.people.get(callout.person_id)
    channel, purpose = _CHANNELS[attempt.channel], _PURPOSES[attempt.purpose]
    link = None
    if settings is not None and channel.kind.carries_link and purpose is not Purpose.CANCEL:
        # bound to the recipient: a deputy's link confirms on the official's behalf, as the deputy
        link = link_url(settings, make_token(settings, callout.id, attempt.recipient_id, now,
                                             not_after=content.expires))
    context = message_context(site, content, callout, recipient, official, link, attempt.step_index, facts)
    room = duty_room(site, callout.room) if attempt.number == DUTY_PHONE else None
    if room is not None:  # a roll-call ringing the room's own phone greets the room, whoever picks up
        context = replace(context, room=room.name)
    rendered = render(channel, purpose, "zh", context)
    message = OutboundMessage(
        key=attempt.key, channel=channel, purpose=purpose,
        to=_address(recipient, attempt.recipient_id, channel, attempt.number, room.phone if room else None),
        subject=rendered.subject, text=rendered.text, level=_LEVELS[callout.level], ack_code=callout.ack_code,
        link=link, drill=callout.drill, context=context, attempt_id=attempt.id,
    )
    own = attempt.recipient_id == callout.person_id and attempt.step_index >= 0
    return Job(attempt.id, callout.id, callout.record_id, own, message, retried=attempt.tries > 1,
               step_index=attempt.step_index, number=attempt.number, looked=looked,
               answered=moot(purpose, _STATES[callout.state]))


# The enums by stored value: a dict look-up where calling the enum costs a few µs per message.
_CHANNELS = {c.value: c for c in Channel}
_PURPOSES = {p.value: p for p in Purpose}
_LEVELS = {lv.value: lv for lv in Level}
_STATES = {s.value: s for s in CalloutState}


def _address(person: Person | None, person_id: str, channel: Channel, number: int = 0,
             room_phone: str | None = None) -> Address:
    """Whom a message goes to: a text to the person's first number that takes SMS, a call to the
    number the attempt is for (``attempts.number``; ``DUTY_PHONE``: ``room_phone``, the roll-call's
    duty room's own — or the person's first number if the room has none now), e-mail and IM as the
    roster has them."""
    if person is None:
        return Address(person_id, person_id)
    if channel.kind.contact == "mobile":
        phone = person.mobile
    elif channel is Channel.VOICE:
        phone = room_phone if number == DUTY_PHONE and room_phone else called_number(person, number)
    else:
        phone = person.phone
    return Address(person.id, person.name, phone, person.email, dict(person.im))


class Pacing(Protocol):
    """The worker's share of the providers' rate limits (runtime.limits.Pacing)."""

    def paced(self, channel: Channel) -> bool: ...

    def forget(self, attempt_ids: list[int]) -> None: ...

    async def turn(self, attempt_id: int, channel: Channel, again: bool = False,
                   ready: Callable[[], Awaitable[None]] | None = None) -> None: ...


Receipts = Callable[[str], Awaitable[SendResult | None]]


async def deliver(jobs: list[Job], adapters: Mapping[Channel, ChannelAdapter], concurrency: int = 64,
                  pacing: Pacing | None = None, breaker: CircuitBreaker | None = None,
                  retry: RetryPolicy | None = None, guard: HandOverGuard | None = None,
                  receipts: Receipts | None = None) -> list[Outcome]:
    """Hand every job to its channel's adapter. A rate-limited channel's job waits for its send slot
    (and a retry for a new one); the others go ``concurrency`` at a time — a paced job does not
    queue behind them, or it would miss its slot. Just before each hand-over the ``guard`` looks
    again: a call-out answered meanwhile, or a lease lost, stops it. A job tried before (in this
    claim or an earlier one) first asks whether it already arrived: the provider by our key where
    it can answer, else our own ``receipts`` (a status callback carries the key)."""
    gate = asyncio.Semaphore(concurrency)
    policy = retry or RetryPolicy(attempts=1)
    if guard is not None:
        guard.hold(j.attempt_id for j in jobs)
        for job in jobs:
            if job.looked:  # the claim's own look: fresh for a moment, or final if already answered
                guard.looked(job.attempt_id, job.looked, ANSWERED if job.answered else None)
    everything, outages = jobs, _drill_outages(jobs, adapters)
    if outages:  # failed at once, as if the provider were down: nothing is handed over, no slot used
        if pacing is not None:
            pacing.forget(list(outages))
        if guard is not None:
            for attempt_id in outages:
                guard.release(attempt_id)
        jobs = [j for j in jobs if j.attempt_id not in outages]

    async def ready(job: Job) -> None:
        if guard is not None:
            await guard.clear(job.attempt_id)

    async def arrived(adapter: ChannelAdapter, key: str, to: Address) -> SendResult | None:
        found = await adapter.lookup(key, to)
        if found is None and receipts is not None:
            found = await receipts(key)
        return found

    def circuit(adapter: ChannelAdapter) -> CircuitBreaker | None:
        """The engine's per-channel breaker, unless the adapter keeps a circuit per provider itself."""
        return None if adapter.manages_circuits else breaker

    async def one(job: Job) -> Outcome:
        channel = job.message.channel
        adapter = adapters[channel]
        breaker = circuit(adapter)
        paced = pacing is not None and pacing.paced(channel)
        tried, last_try = job.retried, 0.0

        async def hand_over() -> SendResult:
            nonlocal tried, last_try
            if tried:  # a try may have reached the provider and only its answer was lost
                if adapter.calls_back and not adapter.can_look_up:  # only its callback can tell: let it come
                    await asyncio.sleep(max(0.0, CALLBACK_GRACE - (time.monotonic() - last_try)))
                found = await arrived(adapter, job.message.key, job.message.to)
                if found is not None:
                    return found
            if paced:
                await pacing.turn(job.attempt_id, channel, again=tried, ready=lambda: ready(job))
            else:
                await ready(job)
            if breaker is not None and not breaker.allow(channel):
                raise _CircuitOpen()
            tried, last_try = True, time.monotonic()
            try:
                skip = _skipped(job, adapter)
                result = await (adapter.send(job.message, skip=skip) if skip and isinstance(adapter, ProviderChain)
                                else adapter.send(job.message))
            except PermanentError:  # the provider answered: it is up, the message was refused
                _record(breaker, channel, True)
                raise
            except ConfigurationError as exc:  # our account is refused: halt the provider, keep the message
                if breaker is not None:
                    breaker.halt(channel, f"{adapter.provider}: {exc}")
                raise
            except TransientError as exc:
                _record(breaker, channel, False)
                if exc.unsent:
                    tried = job.retried  # not handed over: a retry in this claim needs no lookup for it
                raise
            except BaseException:
                _record(breaker, channel, False)
                raise
            _record(breaker, channel, True)
            return result

        async with nullcontext() if paced else gate:
            try:
                result = await policy.call(hand_over)
            except HandOverStopped as stop:
                return Outcome(job, adapter.provider, stopped=stop.reason,
                               error="answered before hand-over" if stop.reason == ANSWERED else "lease lost")
            except _CircuitOpen:
                return Outcome(job, adapter.provider, transient=True, wait=max(1.0, breaker.retry_in(channel)),
                               error="channel down: circuit open, waiting for it to half-open", tried=False)
            except ConfigurationError as exc:
                outcome = _halted(job, adapter, exc, breaker)
            except ChannelError as exc:
                outcome = Outcome(job, adapter.provider, error=f"{type(exc).__name__}: {exc}",
                                  transient=isinstance(exc, TransientError), tried=not _unsent(exc))
            except Exception as exc:  # an adapter bug must not lose the attempt: record it as transient
                outcome = Outcome(job, adapter.provider, error=f"unexpected {type(exc).__name__}: {exc}",
                                  transient=True)
            else:
                outcome = Outcome(job, result.provider or adapter.provider, provider_id=result.provider_id,
                                  handed_over=time.monotonic())
            finally:
                if guard is not None:
                    guard.release(job.attempt_id)
        return outcome

    async def many(chunk: list[Job]) -> list[Outcome]:
        """Up to ``batch_size`` jobs of a batch provider in one request: one send slot for the
        request, the last look for each job, and one outcome per job (a refused number fails only
        its own). A transient failure is not retried here: the attempts wait for their next try."""
        channel = chunk[0].message.channel
        adapter = adapters[channel]
        breaker = circuit(adapter)
        provider = adapter.provider
        done: dict[int, Outcome] = {}
        try:
            lookups = asyncio.Semaphore(16)

            async def look_up(job: Job) -> None:  # a try may have reached the provider: ask first
                async with lookups:
                    try:
                        found = await arrived(adapter, job.message.key, job.message.to)
                    except ChannelError:
                        found = None
                if found is not None:
                    done[job.attempt_id] = Outcome(job, found.provider or provider, provider_id=found.provider_id,
                                                   handed_over=time.monotonic())

            await asyncio.gather(*(look_up(j) for j in chunk if j.retried))
            waiting = [j for j in chunk if j.attempt_id not in done]
            if pacing is not None:
                pacing.forget([j.attempt_id for j in chunk if not waiting or j is not waiting[0]])
            going: list[Job] = []

            async def look(job: Job) -> Job | None:
                try:
                    await ready(job)
                    return job
                except HandOverStopped as stop:
                    done[job.attempt_id] = Outcome(job, provider, stopped=stop.reason, error=(
                        "answered before hand-over" if stop.reason == ANSWERED else "lease lost"))
                    return None

            async def last_look() -> None:  # before the slot (one query for all), so the request goes on time
                looked = await asyncio.gather(*(look(j) for j in waiting if j.attempt_id not in done))
                going[:] = [j for j in looked if j is not None]

            if waiting and pacing is not None and pacing.paced(channel):
                try:  # the request's slot is the first job's; the others' are not used
                    await pacing.turn(waiting[0].attempt_id, channel, again=waiting[0].retried, ready=last_look)
                except TransientError as exc:
                    for job in waiting:
                        done.setdefault(job.attempt_id, Outcome(job, provider, error=f"TransientError: {exc}",
                                                                transient=True, tried=not exc.unsent))
                    going = []
            elif waiting:
                await last_look()
            if going and breaker is not None and not breaker.allow(channel):
                for job in going:
                    done[job.attempt_id] = Outcome(job, provider, transient=True, tried=False,
                                                   wait=max(1.0, breaker.retry_in(channel)),
                                                   error="channel down: circuit open, waiting for it to half-open")
                going = []
            if going:
                try:
                    skip = _skipped(going[0], adapter)
                    results: list[SendResult | ChannelError] = list(
                        await adapter.send_many([j.message for j in going], skip=skip)
                        if skip and isinstance(adapter, ProviderChain) else
                        await adapter.send_many([j.message for j in going]))
                    if len(results) != len(going):
                        raise RuntimeError(f"{provider} answered {len(results)} outcomes for {len(going)} messages")
                except Exception as exc:  # an adapter bug must not lose the attempts: they wait for a later try
                    results = [TransientError(f"unexpected {type(exc).__name__}: {exc}")] * len(going)
                handed = time.monotonic()
                answered = any(isinstance(r, SendResult | PermanentError) for r in results)
                config = next((r for r in results if isinstance(r, ConfigurationError)), None)
                if config is not None and breaker is not None:
                    breaker.halt(channel, f"{provider}: {config}")
                else:
                    _record(breaker, channel, answered)
                for job, result in zip(going, results, strict=True):
                    done[job.attempt_id] = _batch_outcome(job, adapter, result, handed, breaker)
        finally:
            if guard is not None:
                for job in chunk:
                    guard.release(job.attempt_id)
        return [done[j.attempt_id] for j in chunk]

    singles = [j for j in jobs if adapters[j.message.channel].batch_size <= 1]
    chunks: list[list[Job]] = []
    for channel in dict.fromkeys(j.message.channel for j in jobs):
        size = adapters[channel].batch_size
        if size > 1:
            # one request's messages skip the same providers (a drill's outage is its own)
            for skip in dict.fromkeys(_skipped(j, adapters[channel]) for j in jobs if j.message.channel == channel):
                mine = [j for j in jobs if j.message.channel == channel and _skipped(j, adapters[channel]) == skip]
                chunks += [mine[i:i + size] for i in range(0, len(mine), size)]
    results = await asyncio.gather(*(one(j) for j in singles), *(many(c) for c in chunks))
    by_id = {o.job.attempt_id: o for o in results[:len(singles)]}
    by_id.update((o.job.attempt_id, o) for batch in results[len(singles):] for o in batch)
    by_id.update(outages)
    return [by_id[j.attempt_id] for j in everything]


def _providers(adapter: ChannelAdapter) -> list[str]:
    return [a.provider for a in adapter.adapters] if isinstance(adapter, ProviderChain) else [adapter.provider]


def _skipped(job: Job, adapter: ChannelAdapter) -> frozenset[str]:
    """The providers of the channel that the job's drill took out (a chain goes on by the others)."""
    return frozenset(p for p in _providers(adapter) if p in job.without) if job.without else frozenset()


def _drill_outages(jobs: list[Job], adapters: Mapping[Channel, ChannelAdapter]) -> dict[int, Outcome]:
    """The jobs whose drill took out their channel, or every provider of it: failed for good at once,
    never sent, recorded plainly as the drill's outage; the call-out's ladder takes over."""
    out: dict[int, Outcome] = {}
    for job in jobs:
        if not job.without:
            continue
        channel = job.message.channel.value
        providers = _providers(adapters[job.message.channel])
        if channel in job.without:
            out[job.attempt_id] = Outcome(job, "drill", error=outage_error(channel, None), tried=False, outage=True)
        elif all(p in job.without for p in providers):
            out[job.attempt_id] = Outcome(job, providers[0], error=outage_error(channel, providers[0]), tried=False,
                                          outage=True)
    return out


def _halted(job: Job, adapter: ChannelAdapter, error: ConfigurationError, breaker: CircuitBreaker | None) -> Outcome:
    """A configuration error is not the message's fault: it waits for the provider to be fixed (the
    next step runs now) — with no breaker to halt and no chain keeping circuits, it fails as before."""
    if breaker is not None:
        wait = max(1.0, breaker.retry_in(job.message.channel))
    elif adapter.manages_circuits:  # every provider of the chain refused our account
        wait = HALT_COOLDOWN
    else:
        return Outcome(job, adapter.provider, error=f"ConfigurationError: {error}")
    return Outcome(job, adapter.provider, transient=True, wait=wait,
                   error=f"provider halted, configuration error: {error}")


def _batch_outcome(job: Job, adapter: ChannelAdapter, result: SendResult | ChannelError, handed: float,
                   breaker: CircuitBreaker | None) -> Outcome:
    provider = adapter.provider
    if isinstance(result, SendResult):
        return Outcome(job, result.provider or provider, provider_id=result.provider_id, handed_over=handed)
    if isinstance(result, ConfigurationError):
        return _halted(job, adapter, result, breaker)
    return Outcome(job, provider, error=f"{type(result).__name__}: {result}",
                   transient=isinstance(result, TransientError), tried=not _unsent(result))


def _unsent(error: ChannelError) -> bool:
    """The provider refused it before taking it (or nothing was handed over): not a try to look up."""
    return isinstance(error, TransientError) and error.unsent


def _record(breaker: CircuitBreaker | None, channel: Channel, ok: bool) -> None:
    """Every try counts for the breaker (a half-open circuit's trial included, or it stays stuck)."""
    if breaker is not None:
        breaker.record(channel, ok)


class _CircuitOpen(Exception):
    """The channel's circuit is open: nothing was handed over."""


def stops_before_hand_over(session: Session, worker: str, attempt_ids: list[int]) -> dict[int, str]:
    """Of these attempts, the ones that must not be handed over now, with why."""
    stops: dict[int, str] = {}
    for start in range(0, len(attempt_ids), 900):
        rows = session.execute(
            select(AttemptRow.id, AttemptRow.status, AttemptRow.worker, AttemptRow.purpose, CalloutRow.state)
            .join(CalloutRow, CalloutRow.id == AttemptRow.callout_id)
            .where(among(session, AttemptRow.id, attempt_ids[start:start + 900])))
        for row in rows:
            if row.worker != worker or row.status != AttemptStatus.SENDING:
                stops[row.id] = LEASE_LOST
            elif moot(Purpose(row.purpose), CalloutState(row.state)):
                stops[row.id] = ANSWERED
    return stops


def renew_leases(session: Session, worker: str, attempt_ids: list[int], until: datetime) -> set[int]:
    """Extend this worker's lease on attempts it still holds; returns those it no longer holds."""
    kept: set[int] = set()
    for start in range(0, len(attempt_ids), 900):
        kept.update(session.scalars(
            update(AttemptRow)
            .where(AttemptRow.id.in_(attempt_ids[start:start + 900]), AttemptRow.worker == worker,
                   AttemptRow.status == AttemptStatus.SENDING)
            .values(lease_until=until).returning(AttemptRow.id).execution_options(synchronize_session=False)))
    return set(attempt_ids) - kept


def seen_by_provider(session: Session, key: str) -> SendResult | None:
    """Whether a provider's status callback already told us about this attempt (it carries our key):
    the answer to "did my lost try arrive?" for providers that cannot be asked by key (Twilio)."""
    row = session.execute(select(AttemptRow.status, AttemptRow.provider_id).where(AttemptRow.key == key)).first()
    if row is None or row.status not in (AttemptStatus.SENT, AttemptStatus.DELIVERED, AttemptStatus.FAILED):
        return None
    return SendResult(row.provider_id or "", "sent")


def finish(session: Session, outcomes: list[Outcome], now: datetime, worker: str | None = None) -> None:
    """Record what the providers said; move call-outs to notified; call the next number of a
    recipient whose number a call was refused for; bring the next step forward for an official
    whose own step failed on every channel (a next number queued is not a failure of the step).

    Only rows this worker still holds are written: an attempt whose lease was taken over belongs to
    whoever holds it now. One that this worker sent anyway is recorded loudly (a possible double)."""
    if not outcomes:
        return
    current = {row.id: row for row in session.execute(
        select(AttemptRow.id, AttemptRow.tries, AttemptRow.status, AttemptRow.worker)
        .where(among(session, AttemptRow.id, [o.job.attempt_id for o in outcomes])).with_for_update())}
    updates: list[dict[str, Any]] = []
    notified: set[int] = set()
    failed_own: dict[int, int] = {}  # call-out -> the own step that failed
    refused: list[Unanswered] = []  # calls that failed for good: the recipient's next number may answer
    by_sms: list[int] = []  # spot-check calls that cannot take a key per question: the questions go by SMS
    log: dict[str, list[dict[str, Any]]] = defaultdict(list)
    taken: dict[str, list[dict[str, Any]]] = defaultdict(list)
    mono = time.monotonic()
    for o in outcomes:
        row = current.get(o.job.attempt_id)
        if row is None or (worker is not None and row.worker != worker) or o.stopped == LEASE_LOST:
            if o.sent:
                taken[o.job.record_id].append({"key": o.job.message.key, "provider_id": o.provider_id,
                                               "held_by": row.worker if row is not None else None})
            continue
        status, wait, tries = AttemptStatus.SENT, None, row.tries
        if o.stopped == ANSWERED:
            status = AttemptStatus.CANCELLED
        elif o.transient:  # a wait, never the end: claimed again at its retry time
            status, wait = AttemptStatus.QUEUED, o.wait or retry_delay(row.tries).total_seconds()
            if not o.tried:
                tries -= 1  # nothing was handed over: the circuit refused it
        elif not o.sent:
            status = AttemptStatus.FAILED
        if o.sent and row.status in ("delivered", "failed"):
            status = AttemptStatus(row.status)  # a provider callback got here first: never move backwards
        updates.append({"id": o.job.attempt_id, "status": status.value, "provider": o.provider,
                        "provider_id": o.provider_id, "error": o.error, "tries": tries,
                        "not_before": now + timedelta(seconds=wait) if wait else None,
                        "sent_at": now - timedelta(seconds=max(0.0, mono - o.handed_over)) if o.sent else None,
                        "updated_at": now, "lease_until": None})
        if o.sent:
            notified.add(o.job.callout_id)
            if o.provider in spotchecks.ONE_KEY_PROVIDERS and o.job.message.purpose is Purpose.SPOTCHECK \
                    and o.job.message.channel is Channel.VOICE:
                by_sms.append(o.job.callout_id)  # the call cannot take the answers: they come by SMS
        elif status in (AttemptStatus.FAILED, AttemptStatus.QUEUED) and o.job.own_step:
            failed_own[o.job.callout_id] = o.job.step_index  # the channel is down for now: the ladder need not wait
        if status is AttemptStatus.FAILED and not o.sent and o.job.message.channel is Channel.VOICE and not o.outage:
            m = o.job.message
            refused.append(Unanswered(o.job.attempt_id, m.key, o.job.callout_id, o.job.record_id, o.job.step_index,
                                      m.purpose.value, m.channel.value, m.to.person_id, o.job.number, o.error))
        log[o.job.record_id].append({
            "key": o.job.message.key, "channel": o.job.message.channel.value, "to": o.job.message.to.person_id,
            "purpose": o.job.message.purpose.value, "status": "retrying" if wait else status.value,
            "provider_id": o.provider_id, "error": o.error} | ({"retry_in": round(wait, 1)} if wait else {}))
    # One statement (PostgreSQL: the rows as one JSON parameter, db.bulk) or one executemany: the ORM's
    # bulk update cost 2-3 times as much.
    update_rows(session, AttemptRow.__table__, updates)
    if notified:  # pending ones become notified; any not yet stamped gets its first-reached time
        session.execute(
            update(CalloutRow)
            .where(among(session, CalloutRow.id, sorted(notified)),
                   (CalloutRow.state == CalloutState.PENDING) | CalloutRow.notified_at.is_(None))
            .values(state=case((CalloutRow.state == CalloutState.PENDING, CalloutState.NOTIFIED.value),
                               else_=CalloutRow.state),
                    notified_at=func.coalesce(CalloutRow.notified_at, now))
            .execution_options(synchronize_session=False))
    for record, entries in sorted(log.items()):  # heads in the order of their ids (db.record_repo.append_events)
        append_event(session, record, EventKind.ATTEMPTS, "worker", now, {"attempts": entries})
    # Before the ladder looks: a next number queued keeps the step alive.
    next_numbers(session, now, refused, worker or "worker")
    if by_sms:
        spotchecks.questions_by_sms(session, now, by_sms)
    _fail_over(session, {c: step for c, step in failed_own.items() if c not in notified}, now)
    for record, entries in sorted(taken.items()):
        logger.error("sent %d attempt(s) whose lease another worker had taken: %s", len(entries), entries)
        append_event(session, record, EventKind.SENT_AFTER_LEASE_LOST, worker or "worker", now, {"attempts": entries})




def _fail_over(session: Session, failed: dict[int, int], now: datetime) -> None:
    """Every channel of an official's own step failed (for good, or for now: an attempt waiting for
    its retry keeps trying): the next step need not wait its turn."""
    if not failed:
        return  # the usual batch: nothing to look up (and no flush of the batch's events for it)
    for callout in session.scalars(select(CalloutRow).where(CalloutRow.id.in_(sorted(failed)))):
        alive = AttemptRow.status.in_(("sent", "delivered")) | (
            AttemptRow.status.in_(("queued", "sending")) & AttemptRow.not_before.is_(None))
        pending = session.scalar(select(AttemptRow.id).where(
            AttemptRow.callout_id == callout.id, alive, AttemptRow.step_index == failed[callout.id]).limit(1))
        if pending is not None:
            continue
        due = fail_over(CalloutFacts(CalloutState(callout.state), (), callout.next_step, callout.next_due),
                        failed[callout.id], now)
        if due is not None:
            callout.next_due = due


async def reconcile(session: Session, now: datetime, adapters: Mapping[Channel, ChannelAdapter],
                    limit: int = 500) -> tuple[int, int]:
    """Attempts left 'sending' by a dead worker: sent if the provider has the key, else queued
    again. Returns (found sent, requeued)."""
    doubtful = expired_leases(session, now, limit)
    found = requeued = 0
    for attempt in doubtful:
        try:
            result = await adapters[Channel(attempt.channel)].lookup(attempt.key)
        except ChannelError:
            continue  # the provider cannot say right now: stay in doubt and ask again next pass
        if result is not None:
            attempt.status, attempt.provider_id, attempt.sent_at = "sent", result.provider_id, now
            found += 1
            session.execute(update(CalloutRow).where(CalloutRow.id == attempt.callout_id,
                                                     CalloutRow.state == CalloutState.PENDING)
                            .values(state=CalloutState.NOTIFIED, notified_at=now))
        else:
            attempt.status = "queued"
            requeued += 1
        attempt.lease_until, attempt.updated_at = None, now
    return found, requeued
