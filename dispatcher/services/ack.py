"""Acknowledgements: the one place every channel, the link, the duty officer and the API use.

It finds the call-out(s) — by id, by the short code in a reply, or by the replier's open
call-outs that reached them on that channel — closes them, cancels their queued attempts, and
records the event. Duplicate, late, unknown and post-cancel acknowledgements are recorded and
change nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.bulk import update_rows
from ..db.queue import attempt_values, cancel_queued, insert_attempts
from ..db.record_repo import append_event, append_events
from ..db.tables import AttemptRow, CalloutRow, InboundRow
from ..domain.callouts import (
    ACKABLE_STATES,
    OPEN_STATES,
    QUESTIONING,
    TELLING,
    AckVia,
    CalloutState,
    Purpose,
    step_from_json,
)
from ..domain.escalation import AckDecision, CalloutFacts, Recall, acknowledge, ignored_outcome
from ..domain.escalation import recall as recall_rule
from ..domain.record import EventKind
from .errors import NotFound
from .site import current_site

REACHED = ("sending", "sent", "delivered")


@dataclass
class AckResult:
    outcome: str  # acknowledged | already_acknowledged | cancelled | expired | unknown_sender | nothing_open
    #               | duplicate
    callouts: list[int] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # the records of those call-outs

    @property
    def acknowledged(self) -> bool:
        return self.outcome == "acknowledged"


@dataclass(frozen=True)
class Reply:
    """A reply from a phone number, read: the confirmation's code, if it gave one."""

    phone: str
    via: AckVia
    code: str | None = None


def acknowledge_reply(session: Session, now: datetime, *, phone: str, via: AckVia, body: str = "",
                      code: str | None = None, provider_ref: str | None = None) -> AckResult:
    """A reply from a phone number: with a code it acknowledges that call-out, without one every
    open call-out that reached this person on this channel. ``provider_ref`` (the provider's id of
    the reply) makes a replayed webhook a duplicate that changes nothing."""
    inbound = first_arrival(session, now, via, phone, body, provider_ref)
    if inbound is None:
        return AckResult("duplicate")
    return _inbound(inbound, acknowledge_replies(session, now, [Reply(phone, via, code)])[0])


def acknowledge_replies(session: Session, now: datetime, replies: list[Reply]) -> list[AckResult]:
    """Many replies in one transaction, in order, with a handful of queries whatever their number:
    a county's replies arrive in bursts. A later reply for a call-out an earlier one closed finds it
    closed, exactly as if they had come one by one."""
    site = current_site(session)
    people_of = [site.people_with_phone(r.phone) for r in replies]
    everyone = sorted({p for people in people_of for p in people})
    contacts = _contacts(session, everyone, now)  # (person, channel, reached) -> call-out ids
    codes = {r.code for r in replies if r.code}
    coded = _by_code(session, codes, everyone, now) if codes else {}
    wanted: list[list[int]] = []
    for reply, people in zip(replies, people_of, strict=True):
        if reply.code:
            ids = {c for c, person in coded.get(reply.code, ()) if person in people or any(
                c in contacts.get((p, None, False), ()) for p in people)}
        else:
            ids = {c for p in people for c in contacts.get((p, reply.via.value, True), ())}
        wanted.append(sorted(ids))
    rows = _lock(session, sorted({c for ids in wanted for c in ids}))
    answers = _Answers()
    results = []
    for reply, people, ids in zip(replies, people_of, wanted, strict=True):
        if not people:
            results.append(AckResult("unknown_sender"))
            continue
        candidates = [rows[c] for c in ids]
        if not reply.code:
            candidates = _one_side(candidates)
        results.append(_close_all(now, candidates, via=reply.via, by=people[0], note=None, answers=answers))
    answers.write(session, now)
    return results


# An answer acknowledges the call-outs whose messages asked this person (not those that only told them,
# nor a spot-check's, which only its answers close: services/spotchecks.py).
_ASKING = AttemptRow.purpose.not_in([p.value for p in TELLING | QUESTIONING])


# What a reply can be about: call-outs still open, and those started within the last three days (an
# unreached official answering late, a second "收到" to a call-out already closed). Not a person's
# whole history: last month's unreached call-outs stay as they were, no old record is written to,
# and a reply's work does not grow with the years (nor can a 4-digit code match a call-out of long ago).
REPLY_WINDOW = timedelta(days=3)


def _current(now: datetime) -> Any:
    return CalloutRow.state.in_([s.value for s in OPEN_STATES]) | (CalloutRow.started_at >= now - REPLY_WINDOW)


def _contacts(session: Session, people: list[str],
              now: datetime) -> dict[tuple[str, str | None, bool], set[int]]:
    """Every current call-out that sent these people an attempt: by (person, channel, reached) and,
    for codes, by (person, None, False) whatever the channel or status."""
    found: dict[tuple[str, str | None, bool], set[int]] = {}
    connection = session.connection()  # plain rows: the ORM's row processing was a third of a batch
    for start in range(0, len(people), 900):
        for person, channel, status, callout in connection.execute(
                select(AttemptRow.recipient_id, AttemptRow.channel, AttemptRow.status, AttemptRow.callout_id)
                .join(CalloutRow, CalloutRow.id == AttemptRow.callout_id)
                .where(AttemptRow.recipient_id.in_(people[start:start + 900]), _ASKING, _current(now))):
            found.setdefault((person, None, False), set()).add(callout)
            if status in REACHED:
                found.setdefault((person, channel, True), set()).add(callout)
    return found


def _by_code(session: Session, codes: set[str], people: list[str], now: datetime) -> dict[str, list[tuple[int, str]]]:
    """Current call-outs with one of these codes that are these people's own or sent them an attempt."""
    found: dict[str, list[tuple[int, str]]] = {}
    connection = session.connection()
    for start in range(0, len(people), 900):
        chunk = people[start:start + 900]
        contacted = select(AttemptRow.callout_id).where(AttemptRow.recipient_id.in_(chunk), _ASKING).scalar_subquery()
        for callout, person, code in connection.execute(
                select(CalloutRow.id, CalloutRow.person_id, CalloutRow.ack_code).where(
                    CalloutRow.ack_code.in_(codes), _current(now),
                    CalloutRow.person_id.in_(chunk) | CalloutRow.id.in_(contacted))):
            if (callout, person) not in found.get(code, []):
                found.setdefault(code, []).append((callout, person))
    return found


@dataclass
class _Locked:
    """A call-out as an answer sees it, locked for the transaction (read with the columns it needs:
    a burst of answers loads no ORM objects and no frozen steps)."""

    id: int
    record_id: str
    person_id: str
    state: str
    started_at: datetime
    drill: bool = False


def _one_side(candidates: list[_Locked]) -> list[_Locked]:
    """A reply without a code cannot say which message it answers. When it would close both a
    drill's call-outs and a real warning's, it closes the drill's only: a real warning left open is
    chased again (and the next plain reply closes it), a real warning closed by an answer to a
    drill would be chased by nobody."""
    open_ones = [c for c in candidates if c.state in _ACKABLE]
    if any(c.drill for c in open_ones) and not all(c.drill for c in open_ones):
        return [c for c in candidates if c.drill]
    return candidates


_ACKABLE = frozenset(s.value for s in ACKABLE_STATES)


def _lock(session: Session, ids: list[int]) -> dict[int, _Locked]:
    rows: dict[int, _Locked] = {}
    for start in range(0, len(ids), 900):
        rows.update((row.id, _Locked(*row)) for row in session.execute(
            select(CalloutRow.id, CalloutRow.record_id, CalloutRow.person_id, CalloutRow.state, CalloutRow.started_at,
                   CalloutRow.drill)
            .where(CalloutRow.id.in_(ids[start:start + 900])).order_by(CalloutRow.id).with_for_update()))
    return rows


@dataclass
class _Answers:
    """What a batch of answers changes, written at the end in a few statements: the closed
    call-outs (one statement, db.bulk), their queued attempts cancelled, and the events (one lock per
    record)."""

    closed: list[dict[str, object]] = field(default_factory=list)
    events: list[tuple[str, str, str, datetime, dict[str, object]]] = field(default_factory=list)

    def write(self, session: Session, now: datetime) -> None:
        if self.closed:
            session.flush()  # anything pending goes first: the rows below are written beside the ORM
            update_rows(session, CalloutRow.__table__, self.closed)
            ids = [row["id"] for row in self.closed]
            for loaded in [o for o in session.identity_map.values() if isinstance(o, CalloutRow) and o.id in ids]:
                session.expire(loaded)  # an object loaded earlier in this transaction is read again
            cancel_queued(session, ids, now)
        append_events(session, self.events)


def acknowledge_callout(session: Session, now: datetime, callout_id: int, *, via: AckVia, by: str,
                        note: str | None = None) -> AckResult:
    """A known call-out: a keypress on its call, its link, or a duty officer on the person's behalf."""
    callout = _lock(session, [callout_id]).get(callout_id)
    if callout is None:
        raise NotFound(f"no call-out {callout_id}")
    answers = _Answers()
    result = _close_all(now, [callout], via=via, by=by, note=note, answers=answers)
    answers.write(session, now)
    return result


def _close_all(now: datetime, candidates: list[_Locked], *, via: AckVia, by: str, note: str | None,
               answers: _Answers) -> AckResult:
    """Close the open ones among ``candidates`` and record each answer (into ``answers``, which the
    caller writes once for the whole batch)."""
    decided = [(c, acknowledge(CalloutState(c.state))) for c in candidates]
    open_ones = [c for c, decision in decided if decision is not AckDecision.IGNORE]
    for ignored in (c for c, decision in decided if decision is AckDecision.IGNORE):
        answers.events.append((ignored.record_id, EventKind.ACK_IGNORED, by, now, {
            "callout": ignored.id, "person": ignored.person_id, "via": via.value, "state": ignored.state}))
    if not open_ones:
        return AckResult(ignored_outcome({CalloutState(c.state) for c in candidates}), [c.id for c in candidates],
                         sorted({c.record_id for c in candidates}))
    for callout, decision in decided:
        if decision is AckDecision.IGNORE:
            continue
        late = decision is AckDecision.CLOSE_LATE
        answers.closed.append({"id": callout.id, "state": CalloutState.ACKNOWLEDGED.value,
                               "acknowledged_at": now, "acknowledged_by": by, "ack_via": via.value,
                               "ack_note": note, "next_due": None, "closed_at": now})
        callout.state = CalloutState.ACKNOWLEDGED.value  # a later answer in this batch finds it closed
        answers.events.append((callout.record_id, EventKind.ACKNOWLEDGED, by, now, {
            "callout": callout.id, "person": callout.person_id, "via": via.value, "note": note,
            "after_unreached": late, "seconds": round((now - callout.started_at).total_seconds(), 1)}))
    return AckResult("acknowledged", [c.id for c in open_ones], sorted({c.record_id for c in open_ones}))


def first_arrival(session: Session, now: datetime, via: AckVia, sender: str, body: str,
                  provider_ref: str | None) -> InboundRow | None:
    """Keep an inbound reply or keypress; None if the provider's id was seen before (a replay, or
    the provider retrying a webhook we already took). The row is written at once, in a savepoint,
    so two copies arriving together cannot both pass."""
    row = InboundRow(at=now, via=via.value, sender=sender, body=body[:500], outcome="received", callouts=[],
                     provider_ref=provider_ref or None)
    if not provider_ref:
        session.add(row)
        return row
    if session.scalar(select(InboundRow.id).where(InboundRow.provider_ref == provider_ref)) is not None:
        return None
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def _inbound(row: InboundRow, result: AckResult) -> AckResult:
    row.outcome, row.callouts = result.outcome, result.callouts
    return result


_CONFIRM_WORDS = {"1", "收到", "确认", "好", "ok", "好的", "已收到", "确认收到"}
_PUNCT = re.compile(r"[\s\.,!?;:。，！？；：、~～'\"“”‘’（）()【】\[\]]+")


def parse_reply(text: str) -> tuple[bool, str | None]:
    """(is a confirmation, the 4-digit code if one is given). Full-width digits count."""
    normalized = _PUNCT.sub("", text.translate(_FULLWIDTH)).lower()
    code = re.search(r"(?<!\d)(\d{4})(?!\d)", normalized)
    if code:
        return True, code.group(1)
    return normalized in _CONFIRM_WORDS, None


_FULLWIDTH = {ord("０") + i: ord("0") + i for i in range(10)} | {ord("ｏ"): "o", ord("ｋ"): "k", ord("Ｏ"): "o",
                                                                  ord("Ｋ"): "k"}


def recall(session: Session, now: datetime, callout_id: int, by: str) -> str:
    """Run the next step now; for a call-out past its last step, call the official again on the
    channels of their last own step. Returns what was done."""
    callout = session.execute(
        select(CalloutRow).where(CalloutRow.id == callout_id).with_for_update()).scalar_one_or_none()
    if callout is None:
        raise NotFound(f"no call-out {callout_id}")
    decision = recall_rule(CalloutFacts(CalloutState(callout.state), (), callout.next_step, callout.next_due))
    if decision is None:
        raise ValueError(f"call-out {callout_id} is {callout.state}: nothing to re-call")
    if decision is Recall.NEXT_STEP_NOW:
        callout.next_due = now
        done = f"step {callout.next_step} runs now"
    else:
        done = _call_again(session, now, callout)
    append_event(session, callout.record_id, EventKind.RECALL, by, now,
                 {"callout": callout.id, "person": callout.person_id, "done": done})
    return done


def _call_again(session: Session, now: datetime, callout: CalloutRow) -> str:
    """Past the last step: call the official again on the channels of their last own step."""
    site = current_site(session)
    own = [step_from_json(s) for s in callout.steps if callout.person_id in s["recipients"]]
    person = site.people.get(callout.person_id)
    channels = [c for c in (own[-1].channels if own else ()) if person is not None and person.reachable_by(c)]
    earlier = session.scalar(select(func.count()).where(
        AttemptRow.callout_id == callout.id, AttemptRow.key.like(f"{callout.id}:recall%"))) or 0
    round_ = f"recall{earlier // max(len(channels), 1) + 1}"
    insert_attempts(session, [
        attempt_values(callout, f"{callout.id}:{round_}:{c.value}:{callout.person_id}", -1, Purpose.REMINDER.value,
                       c.value, callout.person_id, now) for c in channels])
    return f"called again on {len(channels)} channel(s)"
