"""SMS replies, taken in batches: a county's officials answer a red warning within the same minute,
and each reply once cost a transaction of its own with two locks on the warning's record.

``take_replies`` handles any number of replies in one transaction with a handful of queries: the
provider's ids are recorded first (a replayed or retried webhook is a duplicate that changes
nothing), confirmations acknowledge through ``ack.acknowledge_replies`` in arrival order, and
every reply lands on the records it concerns with one lock per record. ``ReplyBatcher`` gathers the
replies that arrive while a batch is being written, so under a burst each transaction carries
hundreds of them; a reply is answered only once its batch is committed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..db.record_repo import append_events
from ..db.session import transaction
from ..db.tables import AttemptRow, CalloutRow, InboundRow
from ..domain.callouts import OPEN_STATES, AckVia
from ..domain.record import EventKind
from ..domain.roster import mask_phone
from .ack import AckResult, Reply, acknowledge_replies, parse_reply
from .site import current_site

log = logging.getLogger("jiaoying.replies")


@dataclass(frozen=True)
class IncomingReply:
    sender: str
    body: str
    sid: str = ""  # the provider's message id

    @property
    def ref(self) -> str | None:
        return f"twilio:sms:{self.sid}" if self.sid else None


@dataclass(frozen=True)
class InboundOutcome:
    confirms: bool
    code: str | None
    result: AckResult | None  # None when the text was not a confirmation


def take_replies(session: Session, now: datetime, replies: list[IncomingReply]) -> list[InboundOutcome]:
    """Record and act on SMS replies, in order; one outcome per reply."""
    parsed = [parse_reply(r.body) for r in replies]
    rows = _first_arrivals(session, now, replies)  # index -> inbound row id; absent: seen before
    confirming = [i for i in rows if parsed[i][0]]
    results = dict(zip(confirming, acknowledge_replies(
        session, now, [Reply(replies[i].sender, AckVia.SMS, parsed[i][1]) for i in confirming]), strict=True))
    records = _records_of(session, sorted({c for r in results.values() for c in r.callouts}))
    events: list[tuple[str, str, str, datetime, dict[str, object]]] = []
    updates: list[dict[str, object]] = []
    outcomes: list[InboundOutcome] = []
    for i, reply in enumerate(replies):
        confirms, code = parsed[i]
        if i not in rows:
            log.info("sms %s from %s seen before: ignored", reply.sid, mask_phone(reply.sender))
            outcomes.append(InboundOutcome(confirms, code, AckResult("duplicate")))
            continue
        if not confirms:
            updates.append({"id": rows[i], "outcome": "not_a_confirmation", "callouts": []})
            events += [(record, EventKind.INBOUND_SMS, reply.sender, now,
                        {"sid": reply.sid, "body": reply.body[:500], "outcome": "not_a_confirmation"})
                       for record in _open_records(session, reply.sender)]
            outcomes.append(InboundOutcome(False, None, None))
            continue
        result = results[i]
        updates.append({"id": rows[i], "outcome": result.outcome, "callouts": result.callouts})
        events += [(record, EventKind.INBOUND_SMS, reply.sender, now,
                    {"sid": reply.sid, "body": reply.body[:500], "code": code, "outcome": result.outcome,
                     "callouts": result.callouts})
                   for record in sorted({records[c] for c in result.callouts})]
        outcomes.append(InboundOutcome(True, code, result))
    if updates:
        session.execute(update(InboundRow), updates)
    append_events(session, events)
    return outcomes


def _first_arrivals(session: Session, now: datetime, replies: list[IncomingReply]) -> dict[int, int]:
    """Keep each reply not seen before (by the provider's id) and return index -> its row id. One
    statement; a reply whose id is already kept (a replay, a provider's retry) is left out."""
    fresh: dict[int, IncomingReply] = {}
    refs: set[str] = set()
    for i, reply in enumerate(replies):
        if reply.ref is not None and reply.ref in refs:
            continue  # the same message twice in one batch
        if reply.ref is not None:
            refs.add(reply.ref)
        fresh[i] = reply
    if refs:
        known = set(session.scalars(select(InboundRow.provider_ref).where(InboundRow.provider_ref.in_(sorted(refs)))))
        fresh = {i: r for i, r in fresh.items() if r.ref is None or r.ref not in known}
    if not fresh:
        return {}
    order = sorted(fresh)
    ids = session.scalars(insert(InboundRow).returning(InboundRow.id, sort_by_parameter_order=True), [
        {"at": now, "via": AckVia.SMS.value, "sender": fresh[i].sender, "body": fresh[i].body[:500],
         "outcome": "received", "callouts": [], "provider_ref": fresh[i].ref} for i in order]).all()
    return dict(zip(order, ids, strict=True))


def _records_of(session: Session, callout_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(callout_ids), 900):
        found.update(session.execute(select(CalloutRow.id, CalloutRow.record_id)
                                     .where(CalloutRow.id.in_(callout_ids[start:start + 900]))).all())
    return found


def _open_records(session: Session, phone: str) -> list[str]:
    people = current_site(session).people_with_phone(phone)
    if not people:
        return []
    reached = select(AttemptRow.callout_id).where(AttemptRow.recipient_id.in_(people))
    return sorted(set(session.scalars(select(CalloutRow.record_id).where(
        CalloutRow.id.in_(reached.scalar_subquery()), CalloutRow.state.in_(OPEN_STATES)))))


class ReplyBatcher:
    """Takes the replies of concurrent requests together: one writer thread, one transaction per
    batch. ``take`` returns once the reply's batch is committed (a failure fails every reply in it,
    and the provider retries them)."""

    def __init__(self, database_url: str, clock: Callable[[], datetime], limit: int = 500) -> None:
        self.url, self.clock, self.limit = database_url, clock, limit
        self._waiting: list[tuple[IncomingReply, asyncio.Future[InboundOutcome], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    async def take(self, reply: IncomingReply) -> InboundOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[InboundOutcome] = loop.create_future()
        with self._lock:
            self._waiting.append((reply, future, loop))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jiaoying-replies", daemon=True)
                self._thread.start()
        self._wake.set()
        return await future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    batch, self._waiting = self._waiting[:self.limit], self._waiting[self.limit:]
                if not batch:
                    break
                try:
                    with transaction(self.url) as session:
                        outcomes = take_replies(session, self.clock(), [reply for reply, _, _ in batch])
                except Exception as exc:  # nothing of the batch was kept: each request answers the error
                    log.warning("a batch of %d replies could not be written: %s", len(batch), exc)
                    for _, future, loop in batch:
                        loop.call_soon_threadsafe(_fail, future, exc)
                    continue
                for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
                    loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[InboundOutcome], outcome: InboundOutcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _fail(future: asyncio.Future[InboundOutcome], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
