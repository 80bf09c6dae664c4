"""The engine's passes, independent of how they are scheduled.

- ``tick``: the scheduler's pass — apply newly stored warnings, run every due step (the durable
  timers), reconcile attempts a dead worker left in doubt, stamp a heartbeat.
- ``send_batch``: a worker's pass — claim queued attempts (red first), hand them over
  concurrently, record the outcome.

Both runtimes call exactly these: the embedded one from threads, the production one from Celery
tasks and the ``jiaoying scheduler`` loop. The clock is injected; tests move it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from ..channels.base import ChannelAdapter, SendResult
from ..channels.broadcast import broadcast_adapter
from ..channels.failover import ProviderChain
from ..channels.registry import number_limits, rate_limits
from ..channels.resilience import CircuitBreaker, RetryPolicy
from ..config import Settings
from ..db.queue import claimable
from ..db.session import transaction
from ..db.tables import AttemptRow
from ..domain.channels import Channel
from ..services import broadcasts, callouts, check_results, dispatch, drills, escalation, expiry, rollcalls, site
from ..services import forwarding as forwards
from ..services.errors import NotReady
from ..services.handover import HandOverGuard
from ..services.heartbeat import beat
from ..services.providers import simulated
from .limits import Pacing, make_pacer

log = logging.getLogger("jiaoying.engine")
MISSED_EVERY = timedelta(minutes=1)  # how often a pass looks back for scheduled roll-calls that never ran
# At most this many seconds between two passes' look for what only the clock brings about (scheduled
# roll-calls and drills, drills that are over, the leases of dead workers) and two heartbeats, however
# often the scheduler is rung in between (Engine.tick).
HOUSEKEEPING_EVERY = 1.0
HELD_RETRY = 2.0  # seconds a warning's start tries again while its row is held (see Engine._apply)
AdapterFactory = Callable[[], Mapping[Channel, ChannelAdapter]]


@dataclass
class TickReport:
    applied: int = 0
    advanced: int = 0
    reconciled: int = 0
    expired: int = 0  # call-outs closed because their warning ran out

    @property
    def queued_work(self) -> bool:
        return bool(self.applied or self.advanced or self.reconciled)


class _EverySecond:
    """Something done at most once a HOUSEKEEPING_EVERY: on the wall or on the engine's clock,
    whichever passes it first (a demo's clock runs faster than the wall, a test's jumps)."""

    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock
        self._last = (-HOUSEKEEPING_EVERY, datetime.min.replace(tzinfo=UTC))  # time.monotonic(), the clock

    def due(self) -> bool:
        return (time.monotonic() - self._last[0] >= HOUSEKEEPING_EVERY
                or (self._clock() - self._last[1]).total_seconds() >= HOUSEKEEPING_EVERY)

    def done(self) -> None:
        self._last = (time.monotonic(), self._clock())


class _Heartbeat:
    """When to write a heartbeat: at once when it has news (what /readyz and the board show
    changed), else at most once a HOUSEKEEPING_EVERY — or whenever the caller says ``now``."""

    def __init__(self, clock: Callable[[], datetime]):
        self._every = _EverySecond(clock)
        self._said: dict[str, object] | None = None

    def due(self, info: dict[str, object], now: bool = False) -> bool:
        if not (now or info != self._said or self._every.due()):
            return False
        self._said = info
        self._every.done()
        return True


def event_loop() -> asyncio.AbstractEventLoop:
    """The loop an engine sends from: uvloop's where it is installed (a dependency; it is not on
    Windows), else asyncio's. A worker's IM and webhook posts are its biggest share of CPU in a
    fan-out, and uvloop took 9-16 % off each (bench/loops.py; bench/README.md, "The engine's event
    loop")."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Engine:
    def __init__(self, settings: Settings, clock: Callable[[], datetime], adapters: AdapterFactory,
                 name: str | None = None, batch: int = 500, concurrency: int = 64,
                 on_work: Callable[[], None] | None = None, due_batch: int = 250, paced: bool = True,
                 start_part: int | None = None) -> None:
        self.settings, self.clock = settings, clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch, self.concurrency = batch, concurrency
        # Due call-outs stepped per transaction: each holds SQLite's write lock while its attempts
        # are written, so fewer than a worker's claim (500 held it up to 190 ms in a fan-out).
        self.due_batch = due_batch
        self.start_part = start_part  # call-outs started per transaction (None: services.callouts' default)
        # Whether this engine's workers send the channels its meter paces (rate limits, callee spacing,
        # limits per number). A meter kept in memory holds for one process: where several processes
        # send without a shared (Redis) meter, only one of them may send those channels.
        self.paced = paced
        # Called whenever a pass has committed work for the workers (wake them without waiting for
        # the rest of the pass: a 10,000-official fan-out starts sending after its first batch).
        self.on_work = on_work or (lambda: None)
        self._loop = event_loop()
        self._adapters = self._loop.run_until_complete(_build(adapters))
        self._adapters_warm = False
        self._limits = rate_limits(settings)  # configured, else the providers' own
        self._pacing = Pacing(make_pacer(self._limits, settings.broker_url), self._limits)
        self._spacing = timedelta(seconds=settings.callee_spacing_seconds) if settings.callee_spacing_seconds else None
        self._per_number = number_limits(settings)  # configured, else the providers' own
        self._breaker = CircuitBreaker(now=lambda: self.clock().timestamp())  # on the engine's clock, as timers are
        self._retry = RetryPolicy(attempts=settings.send_attempts)
        self._rollcall_key = rollcalls.schedule_key(settings.secret_key)
        self._missed_rollcalls: list[str] = []
        self._missed_checked: datetime | None = None
        self._housekeeping = _EverySecond(lambda: self.clock())  # the clock's own work, in Engine.tick
        self._scheduler_beat = _Heartbeat(lambda: self.clock())  # this engine's heartbeats as a scheduler
        self._worker_beat = _Heartbeat(lambda: self.clock())  # and as a sender

        # Public, like adapter(channel): tests tell its simulator to fail. Its HTTP client is made on
        # the first send, inside this engine's event loop, and closed in close().
        self.broadcaster = broadcast_adapter(settings)

        # Forwarding (services/forwarding.py): the file, read again when it changes; deliveries run in a
        # thread of their own so a slow or hanging receiver never holds the timers up. Tests set
        # ``forwards_inline`` to deliver within the pass instead.
        self._forwarding = forwards.Watch(settings.forwarding_file)
        self._forwarder: threading.Thread | None = None
        self._closing = threading.Event()
        self.forwards_inline = False

    @property
    def url(self) -> str:
        return self.settings.database_url

    def tick(self, role: str = "scheduler", rung: bool = False) -> TickReport:
        """One pass. ``rung``: the pass was woken by new work (a posted warning, a step brought
        forward, a board action) rather than by its interval. Such a pass does what that work calls
        for, in the usual order — warnings that ran out are closed before anything pending is
        applied and before due steps are looked at; pending warnings, roll-calls and drills (the
        board's "now" makes them pending) are started; due steps run; broadcast orders and
        forwarding go out — and leaves what only the clock brings about to a pass at most
        HOUSEKEEPING_EVERY seconds after the last one that did it: scheduled roll-calls and drills
        whose minute came, drills that are over, the results of checks that settled, attempts left by
        dead workers, the heartbeat. While a fan-out runs and warnings arrive ten a second, a pass
        did all of it ten times a second: 16 transactions and ~20 ms of CPU each, for nothing."""
        report = TickReport()
        housekeeping = not rung or self._housekeeping.due()
        if housekeeping:
            self._housekeeping.done()
        try:
            with transaction(self.url, background=True) as session:
                report.expired = expiry.expire_due(session, self.clock())
            if housekeeping:
                self.start_rollcalls()
                self.start_drills()
            self.apply_pending(report)
            report.advanced += self._advance_due()
            if housekeeping:
                self.end_drills()
                self.settle_checks()
        except NotReady as exc:
            log.warning("engine waiting: %s", exc)
        if housekeeping:
            report.reconciled = self.reconcile()
        self.broadcast()
        forwarding_error = self.forward()
        info = {"forwarding_error": forwarding_error, "simulated": simulated(self.settings),
                "missed_rollcalls": self._missed_rollcalls}
        if self._scheduler_beat.due(info, now=housekeeping):  # a new forwarding error shows at once
            with transaction(self.url, background=True) as session:
                beat(session, f"{role}:{self.name}", role, self.clock(), info | {"advanced": report.advanced})
        return report

    def start_rollcalls(self) -> None:
        """Start the duty roll-calls whose time has come (each once, whoever runs this pass), and
        note the scheduled ones of the last day that never ran, for /readyz and the board."""
        now = self.clock()
        look_back = self._missed_checked is None or now - self._missed_checked >= MISSED_EVERY
        with transaction(self.url, write=False) as session:
            due = rollcalls.due(session, now, self._rollcall_key)
            missed = rollcalls.missed(session, now, self._rollcall_key) if look_back else None
        if due:
            with transaction(self.url, background=True) as session:
                started = rollcalls.start_due(session, due, self.clock())
            log.info("duty roll-calls started: %s", ", ".join(started))
        if missed is not None:  # a day's look back: once a minute, not on every pass
            self._missed_checked = now
            self._missed_rollcalls = [f"{r.id}@{at.isoformat()}" for r, at in missed]

    def start_drills(self) -> None:
        """Start the scheduled drills whose time has come (each once, whoever runs this pass); one
        reached later than its catch-up (the engine was away) is kept as missed, not started late."""
        now = self.clock()
        with transaction(self.url, write=False) as session:
            due, late = drills.due(session, now), drills.overdue(session, now)
        if due or late:
            with transaction(self.url, background=True) as session:
                started = drills.start_due(session, due, self.clock())
                missed = drills.mark_missed(session, late, self.clock())
            if started:
                log.info("drills started: %s", ", ".join(started))
            if missed:
                log.warning("scheduled drills missed (the engine was away past their time): %s", ", ".join(missed))

    def end_drills(self) -> None:
        """End (and reveal) the running drills that are over: every call-out settled, or run out."""
        now = self.clock()
        with transaction(self.url, write=False) as session:
            over = drills.settled(session, now)
        if over:
            with transaction(self.url, background=True) as session:
                ended = drills.finish_settled(session, over, self.clock())
            if ended:
                log.info("drills ended and revealed: %s", ", ".join(ended))

    def settle_checks(self) -> None:
        """Write the result of each roll-call and spot-check that has settled on its record, once."""
        with transaction(self.url, write=False) as session:
            settled = check_results.unsettled(session, self.clock())
        written = []
        for record_id in settled:  # a transaction each: one record's head lock at a time
            with transaction(self.url, background=True) as session:
                if check_results.settle(session, record_id, self.clock()):
                    written.append(record_id)
        if written:
            log.info("results of routine checks recorded: %s", ", ".join(written))

    def apply_pending(self, report: TickReport) -> None:
        """Apply stored warnings, a part per transaction; after each part its first steps run, so
        the first calls of a big fan-out go out while the rest of its call-outs are being started.
        A warning that cannot be applied keeps its error and is tried again later; the others go on."""
        with transaction(self.url, write=False) as session:
            pending = callouts.pending_warnings(session, now=self.clock())
        for warning_id in pending:
            try:
                self._apply(warning_id, report)
            except (OperationalError, InterfaceError):
                raise  # the database itself is away: nothing to blame on this warning
            except Exception as exc:
                log.exception("warning %s could not be applied; the others carry on", warning_id)
                with transaction(self.url, background=True) as session:
                    callouts.apply_failed(session, warning_id, self.clock(), f"{type(exc).__name__}: {exc}")
        report.applied = len(pending)

    def _apply(self, warning_id: str, report: TickReport) -> None:
        with transaction(self.url, write=False) as session:
            start = callouts.begin_start(session, warning_id, self.clock())
        if start is None:
            return
        held_since: float | None = None
        while True:
            stepped = start.stepped
            with transaction(self.url, background=True) as session:
                done = callouts.apply_part(session, start, self.clock(), self.start_part)
            if start.stepped > stepped:  # the part's first steps are queued: wake the workers
                report.advanced += start.stepped - stepped
                self.on_work()
            if start.held:
                # Another writer of the warning's row (an update's intake, forwarding) holds it for
                # milliseconds: try the part again rather than leave the rest of a big warning to the
                # next pass (which decides everyone again). A row held for longer is another
                # scheduler's: it carries on.
                held_since = held_since if held_since is not None else time.monotonic()
                if time.monotonic() - held_since < HELD_RETRY:
                    time.sleep(0.01)
                    continue
                return
            held_since = None
            # After a part that started call-outs, what fell due meanwhile; a warning that calls
            # nobody leaves it to the pass, which runs the due steps once after applying.
            if start.done:
                report.advanced += self._advance_due()
            if done:
                return

    def _advance_due(self) -> int:
        """Run every due step, a batch per transaction, waking the workers after each batch."""
        total = 0
        while True:
            with transaction(self.url, background=True) as session:
                advanced = escalation.advance_due(session, self.clock(), self.due_batch)
            total += advanced
            if advanced:
                self.on_work()
            if advanced < self.due_batch:
                return total

    def broadcast(self) -> int:
        """Hand pending broadcast orders to the platform (retrying transient failures later)."""
        with transaction(self.url, background=True) as session:
            orders = broadcasts.claim_due(session, self.clock())
        for order in orders:
            platform_id, error = self._loop.run_until_complete(broadcasts.hand_over(self.broadcaster, order))
            with transaction(self.url, background=True) as session:
                broadcasts.record(session, self.clock(), order, platform_id, error)
        return len(orders)

    def forward(self) -> str | None:
        """Forwarding's part of the pass: decide where new warnings go, queue the results of settled
        events, and deliver what is due (in the background thread, or here when ``forwards_inline``).
        Returns why the forwarding file cannot be used, or None. A failure here never stops the pass."""
        config, error = self._forwarding.current()
        if config is None and error is not None:
            return error  # nothing decided: once the file is fixed, the waiting warnings are forwarded
        try:
            with transaction(self.url, background=True) as session:
                forwards.decide(session, config, self.clock())
            if config is None:
                return None
            with transaction(self.url, background=True) as session:
                forwards.settle(session, config, self.clock())
            if self.forwards_inline:
                self.deliver_forwards()
            elif self._forwarder is None or not self._forwarder.is_alive():
                with transaction(self.url, write=False) as session:
                    due = forwards.due(session, self.clock())
                if due:
                    self._forwarder = threading.Thread(target=self._deliver_quietly, name="jiaoying-forwarder",
                                                       daemon=True)
                    self._forwarder.start()
        except (OperationalError, InterfaceError):
            raise
        except NotReady as exc:
            log.warning("forwarding waiting: %s", exc)
        except Exception:
            log.exception("forwarding pass failed; trying again next pass")
        return error

    def deliver_forwards(self) -> int:
        """Claim the forwards and reports that are due, hand them over, record what the receivers said;
        returns how many were tried."""
        config, _ = self._forwarding.current()
        if config is None:
            return 0
        with transaction(self.url, background=True) as session:
            jobs = forwards.claim(session, self.clock())
        if not jobs:
            return 0
        if threading.current_thread() is self._forwarder:
            outcomes = asyncio.run(forwards.deliver(jobs, config, self.settings))
        else:
            outcomes = self._loop.run_until_complete(forwards.deliver(jobs, config, self.settings))
        for outcome in outcomes:
            with transaction(self.url, background=True) as session:
                forwards.record(session, self.clock(), outcome)
        return len(jobs)

    def _deliver_quietly(self) -> None:
        try:
            while not self._closing.is_set() and self.deliver_forwards():
                pass
        except Exception:
            log.exception("forwarding delivery failed; the rows are tried again when their lease runs out")

    def reconcile(self) -> int:
        with transaction(self.url, background=True) as session:
            found, requeued = self._loop.run_until_complete(
                dispatch.reconcile(session, self.clock(), self._adapters))
        if found or requeued:
            log.warning("in-doubt attempts after a worker died: %d already sent, %d queued again", found, requeued)
        return found + requeued

    def _warm_adapters(self) -> None:
        """Once, while idle: what each adapter's first send would load (a provider's SDK, ~0.5 s of
        CPU), so that a worker's first warning after its start does not pay for it in its first
        seconds, beside the start of the call-outs. Nothing is sent."""
        if self._adapters_warm:
            return
        self._adapters_warm = True
        for channel, adapter in self._adapters.items():
            try:
                adapter.warm()
            except Exception:  # the first send makes it again, and reports what is wrong
                log.warning("%s: could not load the provider's client ahead of the first send", channel.value,
                            exc_info=True)

    def send_batch(self, limit: int | None = None) -> int:
        """Claim, send and record up to ``limit`` attempts per channel; returns how many were claimed.

        Unlimited channels are claimed together; each rate-limited channel only as many as the
        shared meter grants slots for, and each of those is sent inside its slot."""
        want = limit or self.batch
        lease = timedelta(seconds=self.settings.attempt_lease_seconds)
        jobs: list[dispatch.Job] = []
        spaced = {c for c in Channel if c.kind.spaced_per_callee} if self._spacing else set()
        counted = set(self._per_number)  # channels with per-number limits: claimed on their own, one per person
        free = [c for c in Channel if c not in self._limits and c not in spaced and c not in counted]
        if free:  # the messages are rendered after the claim's transaction (it holds SQLite's write lock)
            with transaction(self.url, background=True) as session:
                taken = dispatch.claim(session, self.clock(), want, self.name, lease, free, read=False)
            jobs += self._read(taken).jobs(self.settings)
        for channel in [c for c in Channel if self.paced and (c in self._limits or c in spaced or c in counted)]:
            # A batch provider's limit counts requests, each carrying up to batch_size messages.
            per = max(1, self._adapters[channel].batch_size)
            booking = self._pacing.reserve(channel, -(-want // per))
            if not booking.granted:
                continue
            with transaction(self.url, background=True) as session:
                taken = dispatch.claim(session, self.clock(), min(booking.granted * per, want), self.name, lease,
                                       [channel], self._spacing if channel in spaced else None,
                                       self._per_number.get(channel, ()), read=False)
            claimed = self._read(taken).jobs(self.settings)
            self._pacing.hold(booking, [job.attempt_id for job in claimed], per)
            jobs += claimed
        if not jobs:
            # Idle: read the site now if a start or a reload left it unread, so the first claim of the
            # next warning finds it (a claim reads it in _read otherwise, also without the write lock).
            with transaction(self.url, write=False) as session:
                site.warm_site(session)
            self._warm_adapters()
            return 0
        outcomes = self._loop.run_until_complete(self._deliver(jobs, lease))
        # The worker's heartbeat (its circuits, halted providers, failovers: /readyz and the board):
        # written when it has news, else at most once a second — not after each of a fan-out's batches.
        info = {"missed_slots": {c.value: n for c, n in self._pacing.missed.items()},
                "circuits": {c.value: self._breaker.state(c).value for c in Channel},
                "halted": {c.value: h.reason for c, h in self._breaker.halted().items()},
                "providers": {c.value: _current(a) for c, a in self._adapters.items()},
                "failover": {c.value: a.status().why for c, a in self._adapters.items()
                             if isinstance(a, ProviderChain) and a.status().why},
                "simulated": simulated(self.settings)}
        with transaction(self.url, background=True) as session:
            dispatch.finish(session, outcomes, self.clock(), self.name)
            if self._worker_beat.due(info):
                beat(session, f"worker:{self.name}", "worker", self.clock(), info | {"sent": len(outcomes)})
        return len(jobs)

    def _read(self, taken: dispatch.Claim) -> dispatch.Claim:
        """What the claimed attempts' messages need, read after the claim's commit (no write lock)."""
        if not taken.ids:
            return taken
        with transaction(self.url, write=False) as session:
            return dispatch.read_claim(session, taken)

    async def _deliver(self, jobs: list[dispatch.Job], lease: timedelta) -> list[dispatch.Outcome]:
        """Hand the batch over with a last look before each message and the lease kept alive."""
        def check(ids: list[int]) -> dict[int, str]:
            with transaction(self.url, write=False) as session:
                return dispatch.stops_before_hand_over(session, self.name, ids)

        def renew(ids: list[int]) -> set[int]:
            with transaction(self.url, background=True) as session:
                return dispatch.renew_leases(session, self.name, ids, self.clock() + lease)

        def seen(key: str) -> SendResult | None:
            with transaction(self.url, write=False) as session:
                return dispatch.seen_by_provider(session, key)

        async def receipts(key: str) -> SendResult | None:
            return await asyncio.to_thread(seen, key)

        guard = HandOverGuard(check, renew, renew_every=max(0.2, lease.total_seconds() / 4))
        done = asyncio.Event()
        keeper = asyncio.ensure_future(guard.keep_leases(done))
        try:
            return await dispatch.deliver(jobs, self._adapters, self.concurrency, self._pacing, self._breaker,
                                          self._retry, guard, receipts)
        finally:
            done.set()
            await keeper

    def adapter(self, channel: Channel) -> ChannelAdapter:
        return self._adapters[channel]

    def waiting(self) -> bool:
        """Whether attempts are queued (e.g. held back by a rate limit) — a reason to keep draining."""
        with transaction(self.url, write=False) as session:
            # not those waiting for a retry time (up to a minute away): no reason to poll for them
            return session.scalar(select(AttemptRow.id).where(claimable(self.clock())).limit(1)) is not None

    def drain(self, max_batches: int = 10_000, patience: float = 0.0,
              stop: Callable[[], bool] | None = None) -> int:
        """Send until nothing is claimable. With ``patience`` > 0, keep waiting (up to that many
        seconds in all) while attempts are queued but held back by rate limits or spacing.
        ``stop``: asked before each batch; True ends the drain (the runtime is stopping)."""
        total, deadline = 0, time.monotonic() + patience
        for _ in range(max_batches):
            if stop is not None and stop():
                break
            sent = self.send_batch()
            total += sent
            if sent:
                continue
            if time.monotonic() >= deadline or not self.waiting():
                break
            time.sleep(0.05)
        return total

    def close(self) -> None:
        self._closing.set()
        if self._forwarder is not None:
            self._forwarder.join(timeout=70)  # a try takes at most a minute (the longest timeout)
        self._loop.run_until_complete(_close(self._adapters))
        self._loop.run_until_complete(self.broadcaster.aclose())
        self._loop.close()


def _current(adapter: ChannelAdapter) -> str:
    """The provider the channel's next message goes to."""
    return (adapter.status().current or "none") if isinstance(adapter, ProviderChain) else adapter.provider


async def _close(adapters: Mapping[Channel, ChannelAdapter]) -> None:
    for adapter in adapters.values():
        await adapter.aclose()


async def _build(factory: AdapterFactory) -> Mapping[Channel, ChannelAdapter]:
    return factory()  # adapters create their clients inside this engine's event loop
