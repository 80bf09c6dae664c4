"""SMS replies, taken in batches: a county's officials answer a red warning within the same minute,
and each reply once cost a transaction of its own with two locks on the warning's record.

``take_replies`` handles any number of replies in one transaction with a handful of queries: the
provider's ids are recorded first (a replayed or retried webhook is a duplicate that changes
nothing), confirmations acknowledge through ``ack.acknowledge_replies`` in arrival order, and
every reply lands on the records it concerns with one lock per record (api.replies gathers the
replies of concurrent requests into such batches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..db.record_repo import append_events
from ..db.tables import AttemptRow, CalloutRow, InboundRow
from ..domain.callouts import ACKABLE_STATES, OPEN_STATES, SPOTCHECK_HAZARD, AckVia
from ..domain.record import EventKind
from ..domain.roster import mask_phone
from ..domain.spotcheck import parse_answers
from . import spotchecks
from .ack import AckResult, Reply, acknowledge_replies, parse_reply
from .site import current_site

log = logging.getLogger("jiaoying.replies")


@dataclass(frozen=True)
class IncomingReply:
    sender: str
    body: str
    sid: str = ""  # the provider's message id
    provider: str = "twilio"

    @property
    def ref(self) -> str | None:
        return f"{self.provider}:sms:{self.sid}" if self.sid else None


@dataclass(frozen=True)
class InboundOutcome:
    confirms: bool
    code: str | None
    result: AckResult | None  # None when the text was not a confirmation
    # A reply to a 六问 spot-check: answers (recorded), asked_again (not an answer: asked once more by
    # SMS), not_an_answer (and asked again before); None: not about a spot-check.
    spotcheck: str | None = None


def take_replies(session: Session, now: datetime, replies: list[IncomingReply]) -> list[InboundOutcome]:
    """Record and act on SMS replies, in order; one outcome per reply. A reply from someone a 六问
    spot-check is waiting on goes to it (``_spotcheck_reply``) unless it is a plain confirmation and
    they also have a warning's call-out open."""
    parsed = [parse_reply(r.body) for r in replies]
    rows = _first_arrivals(session, now, replies)  # index -> inbound row id; absent: seen before
    checked = _spotcheck_replies(session, now, replies, rows, parsed)
    confirming = [i for i in rows if parsed[i][0] and i not in checked]
    results = dict(zip(confirming, acknowledge_replies(
        session, now, [Reply(replies[i].sender, AckVia.SMS, parsed[i][1]) for i in confirming]), strict=True))
    events: list[tuple[str, str, str, datetime, dict[str, object]]] = []
    updates: list[dict[str, object]] = []
    outcomes: list[InboundOutcome] = []
    for i, reply in enumerate(replies):
        confirms, code = parsed[i]
        if i not in rows:
            log.info("sms %s from %s seen before: ignored", reply.sid, mask_phone(reply.sender))
            outcomes.append(InboundOutcome(confirms, code, AckResult("duplicate")))
            continue
        if i in checked:
            outcome, result = checked[i]
            updates.append({"id": rows[i], "outcome": f"spotcheck_{outcome}",
                            "callouts": result.callouts if result else []})
            outcomes.append(InboundOutcome(outcome == "answers", None, result, spotcheck=outcome))
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
                   for record in result.records]
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


def _open_records(session: Session, phone: str) -> list[str]:
    people = current_site(session).people_with_phone(phone)
    if not people:
        return []
    reached = select(AttemptRow.callout_id).where(AttemptRow.recipient_id.in_(people))
    return sorted(set(session.scalars(select(CalloutRow.record_id).where(
        CalloutRow.id.in_(reached.scalar_subquery()), CalloutRow.state.in_(OPEN_STATES)))))


def _spotcheck_replies(session: Session, now: datetime, replies: list[IncomingReply], rows: dict[int, int],
                       parsed: list[tuple[bool, str | None]]) -> dict[int, tuple[str, AckResult | None]]:
    """The replies (by index) that answer — or fail to answer — a 六问 spot-check the sender owes: one
    query for the whole batch, and only those senders' replies handled one by one."""
    site = current_site(session)
    senders = {i: site.people_with_phone(replies[i].sender) for i in rows}
    waiting = spotchecks.open_callouts(session, {p for people in senders.values() for p in people})
    if not waiting:
        return {}
    handled: dict[int, tuple[str, AckResult | None]] = {}
    for i in sorted(rows):
        callouts = [c for p in senders[i] for c in waiting.get(p, [])]
        if not callouts:
            continue
        reply, (confirms, code) = replies[i], parsed[i]
        if code is not None and _has_other_open(session, senders[i], code):
            continue  # the code of a warning's call-out ("1121" could also be four answers): the code wins
        detail = {"body": reply.body[:500], "sid": reply.sid}
        for callout in callouts:  # the oldest spot-check the reply answers in full
            answers = parse_answers(reply.body, len(spotchecks.questions_of(session, callout.record_id)))
            if answers is not None:
                taken = spotchecks.answer(session, now, callout.id, dict(enumerate(answers)), via=AckVia.SMS,
                                          by=callout.person_id, detail=detail)
                handled[i] = ("answers", taken.result or AckResult("answered", [callout.id], [callout.record_id]))
                break
        else:
            if confirms and _has_other_open(session, senders[i], code):
                continue  # "1", "收到" or a code for a warning's call-out also open: that one takes it
            callout = callouts[0]
            asked = spotchecks.not_an_answer(session, now, callout.id, via=AckVia.SMS, by=callout.person_id,
                                             detail=detail)
            handled[i] = ("asked_again" if asked else "not_an_answer",
                          AckResult("not_an_answer", [callout.id], [callout.record_id]))
    return handled


def _has_other_open(session: Session, people: list[str], code: str | None) -> bool:
    """Whether these people have an open call-out other than a spot-check's (with ``code``: that code's)."""
    query = select(CalloutRow.id).where(CalloutRow.person_id.in_(people), CalloutRow.hazard != SPOTCHECK_HAZARD,
                                        CalloutRow.state.in_([s.value for s in ACKABLE_STATES]))
    if code is not None:
        query = query.where(CalloutRow.ack_code == code)
    return session.scalar(query.limit(1)) is not None
