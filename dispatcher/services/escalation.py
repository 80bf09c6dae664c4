"""Running due steps: the durable timers. Each pass claims call-outs whose next step is due,
turns the step into queued attempts (one per recipient x channel, each with its unique key),
and moves the timer to the next step. The last step's passing marks the call-out unreached and
runs the plan's final escalation (the 未叫醒 list).

A voice attempt calls one of its recipient's numbers (``attempts.number``, 0 the first). When that
call is not answered — a no-answer, busy or failed receipt, or a number refused at send time —
``next_numbers`` queues one attempt for the next number in the same step (key ``…:voice:zhou#2``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from ..db.bulk import update_rows
from ..db.queue import attempt_values, claim_due_callouts, insert_attempts, insert_new_attempts
from ..db.record_repo import append_event
from ..db.tables import CalloutRow
from ..domain.callouts import (
    CHASING,
    ROLLCALL_HAZARD,
    SPOTCHECK_HAZARD,
    CalloutState,
    FrozenSteps,
    Purpose,
    moot,
    purpose_for,
)
from ..domain.channels import Channel
from ..domain.escalation import Advanced, CalloutFacts, advance
from ..domain.record import EventKind
from ..domain.rollcall import DUTY_PHONE, calls_duty_phone
from ..domain.roster import Person
from ..domain.rules import PlannedStep
from ..domain.site import Site
from .site import current_site

log = logging.getLogger("jiaoying.escalation")
STEP_RETRY = timedelta(seconds=60)


def advance_due(session: Session, now: datetime, limit: int = 500) -> int:
    """Run every step due by ``now`` for up to ``limit`` call-outs; returns how many advanced."""
    callouts = claim_due_callouts(session, now, limit)
    if not callouts:
        return 0
    site = current_site(session)
    attempts: list[dict[str, Any]] = []
    log_: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unreached: dict[str, list[dict[str, Any]]] = defaultdict(list)
    failed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    moves: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    final: list[int] = []
    for callout in callouts:
        try:
            moved = advance(facts_of(callout), now)
            if moved is None:
                raise ValueError(f"step {callout.next_step} of {len(callout.steps)} is not due or does not exist")
            made, skipped = step_attempts(site, callout, moved.step, now)
        except Exception as exc:  # one call-out the engine cannot run must not stop the others
            log.exception("call-out %s: step %s could not be run", callout.id, callout.next_step)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if callout.error is None:
                failed[callout.record_id].append({"callout": callout.id, "person": callout.person_id,
                                                  "step": callout.next_step, "error": error})
            errors.append({"id": callout.id, "error": error, "next_due": now + STEP_RETRY})
            continue
        attempts.extend(made)
        entry = _step_entry(callout, moved.step, made, skipped)
        if moved.step.final:
            final.append(callout.id)
            unreached[callout.record_id].append(entry)
        else:
            log_[callout.record_id].append(entry)
        moves.append({"id": callout.id, "state": moved.state.value, "next_step": moved.next_step,
                      "next_due": moved.next_due, "error": None})
    # Core statements (on PostgreSQL one for all rows, see db.bulk): no ORM objects to load, track and flush
    update_rows(session, _callouts, moves)
    update_rows(session, _callouts, errors)
    if final:
        session.execute(update(CalloutRow).where(CalloutRow.id.in_(final)).values(unreached_at=now)
                        .execution_options(synchronize_session=False))
    insert_attempts(session, attempts)
    for record, entries in log_.items():
        append_event(session, record, EventKind.STEPS, "engine", now, {"steps": entries})
    for record, entries in failed.items():
        append_event(session, record, EventKind.STEP_FAILED, "engine", now, {"steps": entries})
    for record, entries in unreached.items():
        append_event(session, record, EventKind.UNREACHED, "engine", now, {"callouts": entries})
    return len(callouts)


def _step_entry(callout: Any, step: PlannedStep, made: list[dict[str, Any]], skipped: list[str]) -> dict[str, Any]:
    """A call-out's line in the record's ``steps`` event."""
    entry = {"callout": callout.id, "person": callout.person_id, "step": step.index, "attempts": len(made)}
    if skipped:
        entry["unreachable"] = skipped
    return entry


@dataclass(frozen=True)
class Started:
    """A call-out just inserted, with what ``step_attempts`` reads of it."""

    id: int
    record_id: str
    person_id: str
    hazard: str
    priority: int


def first_step(steps: Sequence[PlannedStep], now: datetime) -> Advanced | None:
    """Step 0 of a call-out started at ``now`` (its timer is due at once), unless it is the final
    escalation — that one is left to ``advance_due``, which marks the call-out unreached."""
    moved = advance(CalloutFacts(CalloutState.PENDING, steps, 0, now), now)
    return None if moved is None or moved.step.final else moved


def run_first_steps(session: Session, record: str, started: Sequence[tuple[Started, Advanced]],
                    now: datetime) -> int:
    """Run step 0 of call-outs in the transaction that inserts them, their timers already moved on
    (``first_step``): what ``advance_due`` would do a moment later, without reading 10,000 call-outs
    back, parsing their frozen steps and moving their timers in a second write. A call-out whose step
    cannot be made is put back to wait for step 0, and ``advance_due`` records why. Returns how many
    call-outs ran their step."""
    if not started:
        return 0
    site = current_site(session)
    attempts: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    back: list[dict[str, Any]] = []
    for callout, moved in started:
        try:
            made, skipped = step_attempts(site, callout, moved.step, now)
        except Exception:
            log.warning("call-out %s: step 0 left to the scheduler's pass", callout.id, exc_info=True)
            back.append({"id": callout.id, "state": CalloutState.PENDING.value, "next_step": 0,
                         "next_due": now, "error": None})
            continue
        attempts.extend(made)
        entries.append(_step_entry(callout, moved.step, made, skipped))
    update_rows(session, _callouts, back)
    insert_attempts(session, attempts)
    if entries:
        append_event(session, record, EventKind.STEPS, "engine", now, {"steps": entries})
    return len(entries)


_callouts = CalloutRow.__table__


def facts_of(callout: CalloutRow | Row[Any]) -> CalloutFacts:
    """The rules' view of a call-out row (its steps parsed only as needed)."""
    return CalloutFacts(CalloutState(callout.state), FrozenSteps(callout.steps), callout.next_step, callout.next_due)


def step_attempts(site: Site, callout: CalloutRow | Row[Any] | Started, step: PlannedStep,
                  now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
    """The attempts a step makes, and who it could not reach on any of its channels. A roll-call's
    step to its duty room's phone (``domain.rollcall.calls_duty_phone``) makes one call, to
    ``DUTY_PHONE``: the room's number, whatever the person's own are."""
    made, skipped = [], []
    rollcall = callout.hazard == ROLLCALL_HAZARD
    for recipient in step.recipients:
        person = site.people.get(recipient)
        room = rollcall and calls_duty_phone(step, recipient, callout.person_id)
        if room:
            channels = [c for c in step.channels if person is not None and c is Channel.VOICE]
        else:
            channels = [c for c in step.channels if person is not None and person.reachable_by(c)]
        if not channels:
            skipped.append(recipient)
        purpose = purpose_for(step, recipient, callout.person_id, rollcall=rollcall,
                              spotcheck=callout.hazard == SPOTCHECK_HAZARD)
        made.extend(attempt_values(callout, f"{callout.id}:{step.index}:{channel.value}:{recipient}", step.index,
                                   purpose.value, channel.value, recipient, now, number=DUTY_PHONE if room else 0)
                    for channel in channels)
    return made, skipped


# -- several numbers: a call not answered tries the next one -----------------------------------------


def called_number(person: Person, number: int) -> str | None:
    """The number a voice attempt for ``person``'s ``number``-th number calls: that one, or the first
    when the roster changed since and it is gone."""
    numbers = person.voice_numbers
    if 0 <= number < len(numbers):
        return numbers[number]
    return numbers[0] if numbers else person.phone


def next_number_key(key: str, number: int) -> str:
    """The key of the attempt for the number after ``number``: the first number's key as it always
    was, then ``#2``, ``#3`` … for the second, third … number."""
    base = key.removesuffix(f"#{number + 1}") if number > 0 else key
    return f"{base}#{number + 2}"


@dataclass(frozen=True)
class Unanswered:
    """A voice attempt that was not answered: a receipt said no-answer, busy or failed, or the
    provider refused the number when it was sent."""

    attempt_id: int
    key: str
    callout_id: int
    record_id: str
    step_index: int
    purpose: str
    channel: str
    recipient_id: str
    number: int
    why: str | None


def next_numbers(session: Session, now: datetime, unanswered: Sequence[Unanswered], actor: str) -> set[int]:
    """For each unanswered call whose recipient has a further number and whose call-out still wants
    the call (not acknowledged, cancelled or expired: ``moot``; notices of an update or a cancel are
    not chased): one attempt for the next number, queued at once
    in the same step — same call-out, step, purpose, recipient and channel. Returns the ids of the
    unanswered attempts that have a next number (queued now or before): their step is not over.

    Exactly once: the next attempt's key is unique and inserted ignoring conflicts, and only the
    call that inserted it records the ``next_number`` event — a duplicate or late receipt adds nothing."""
    calls = [u for u in unanswered if u.channel == Channel.VOICE.value and Purpose(u.purpose) in CHASING]
    if not calls:
        return set()
    callouts = {c.id: c for c in session.scalars(
        select(CalloutRow).where(CalloutRow.id.in_(sorted({u.callout_id for u in calls}))))}
    site = current_site(session)
    rows: list[dict[str, Any]] = []
    entries: dict[str, dict[str, Any]] = {}  # the next attempt's key -> its record entry
    going: set[int] = set()
    for u in calls:
        callout = callouts.get(u.callout_id)
        person = site.people.get(u.recipient_id)
        if callout is None or person is None or moot(Purpose(u.purpose), CalloutState(callout.state)):
            continue
        if u.number < 0:
            continue  # a roll-call's call to the duty room's phone: the person's own numbers are not tried
        following = u.number + 1
        if following >= len(person.voice_numbers):
            continue  # the last number: the step is unanswered
        going.add(u.attempt_id)
        key = next_number_key(u.key, u.number)
        rows.append(attempt_values(callout, key, u.step_index, u.purpose, u.channel, u.recipient_id, now,
                                   number=following))
        entries[key] = {"callout": callout.id, "to": u.recipient_id, "step": u.step_index, "failed": u.key,
                        "failed_number": called_number(person, u.number), "attempt": key,
                        "number": called_number(person, following), "why": u.why}
    inserted = insert_new_attempts(session, rows)
    recorded: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for u in calls:
        key = next_number_key(u.key, u.number)
        if key in inserted:
            recorded[u.record_id].append(entries[key])
    for record, made in recorded.items():
        append_event(session, record, EventKind.NEXT_NUMBER, actor, now, {"calls": made})
    if inserted:
        log.info("calls not answered: %d next number(s) queued", len(inserted))
    return going
