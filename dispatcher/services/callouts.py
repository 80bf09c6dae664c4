"""Applying a stored warning: start its call-outs, or carry out an update or a cancel (SPEC 3.7).

- alert:  the rules engine's call-outs start; step 0 is due at once. An official with an open
          call-out for the same hazard and overlapping areas from another event keeps one call-out:
          a higher level supersedes the lower one, an equal or lower level is muted.
- update: everyone already reached gets the new content; a raised level or widened areas start
          call-outs for the officials it adds or whose level rises (they must acknowledge again).
- cancel: every open call-out of the event stops at once; everyone already reached is told.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.bulk import among, custom_plans
from ..db.queue import attempt_values, cancel_queued, insert_attempts, insert_returning_ids
from ..db.record_repo import append_event
from ..db.tables import AttemptRow, CalloutRow, EventRow, WarningRow
from ..domain.areas import overlaps
from ..domain.callouts import (
    ACKABLE_STATES,
    OPEN_STATES,
    CalloutState,
    FrozenSteps,
    Purpose,
    step_to_json,
)
from ..domain.channels import Channel
from ..domain.checks import CheckKind
from ..domain.escalation import Advanced, TakeOver, takes_over
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..domain.rules import PlannedCallout, PlannedStep, Resolution, WarningFacts, resolve
from ..entropy import randbelow
from . import broadcasts, drills, escalation, rollcalls, spotchecks
from .site import current_site

REACHED_STATES = (CalloutState.NOTIFIED, CalloutState.ACKNOWLEDGED, CalloutState.UNREACHED)


@dataclass
class Applied:
    started: int = 0
    superseded: list[int] = field(default_factory=list)
    muted: list[str] = field(default_factory=list)
    notices: int = 0
    cancelled: int = 0


def pending_warnings(session: Session, limit: int = 20, now: datetime | None = None) -> list[str]:
    """Stored warnings not yet applied; with ``now``, not those waiting to be tried again after a failure."""
    query = select(WarningRow.id).where(WarningRow.applied_at.is_(None))
    if now is not None:
        query = query.where(WarningRow.apply_retry_at.is_(None) | (WarningRow.apply_retry_at <= now))
    return list(session.scalars(query.order_by(WarningRow.received_at).limit(limit)))


APPLY_RETRY = timedelta(seconds=60)


def apply_failed(session: Session, warning_id: str, now: datetime, error: str) -> None:
    """The engine could not apply this warning (a bug, or data it cannot handle): keep why on the
    warning and its record, try again in a minute, and let every other warning carry on."""
    row = session.get(WarningRow, warning_id, with_for_update={"key_share": True})
    if row is None or row.applied_at is not None:
        return
    first = row.apply_error is None
    row.apply_error, row.apply_retry_at = error[:2000], now + APPLY_RETRY
    if first:  # once on the record, not every minute
        append_event(session, row.root_id or row.id, EventKind.APPLY_FAILED, "engine", now,
                     {"warning": row.id, "error": error[:2000]})


# Call-outs started per transaction. A red warning to thousands of officials is started a part at
# a time: the first parts' calls go out while the rest are being started, and other writers
# (intake, acknowledgements) get the database between parts instead of waiting for all of it. On
# SQLite a part holds the single write lock: 1,000 held it 150-275 ms in a 10,000-official fan-out
# on two busy cores, 250 a quarter of that. PostgreSQL locks rows, not the database, and plans each
# part's look-ups (who of its people this event already reached, their open call-outs and codes) from
# the table's statistics: in a county's first big fan-out they still describe an empty table, every
# look-up is a sequential scan of the call-outs so far, and parts of 250 doubled its CPU.
START_PART = 1000
START_PART_SQLITE = 250


@dataclass
class Start:
    """A stored warning being applied, one transaction (``apply_part``) at a time.

    Who is called is decided once, outside any write lock (``begin_start``); each part then starts
    the next officials under the warning's row lock, skipping anyone already started for this
    warning, so a part repeated after a crash, or run by a second scheduler, starts nobody twice.
    ``applied_at`` is set by the last part: until then the warning stays pending and any
    scheduler resumes it."""

    warning_id: str
    record: str
    resolution: Resolution | None  # None: nothing to start (a cancel, or no longer active)
    applied: Applied = field(default_factory=Applied)
    done: int = 0  # planned call-outs handled so far
    matched: bool = False  # the MATCHED event and the broadcast order are written
    kept: dict[str, Any] = field(default_factory=dict)  # more for the MATCHED event (a roll-call's rooms)
    stepped: int = 0  # call-outs whose step 0 ran as they were started (attempts queued)
    # The last part found the warning's row locked: by another scheduler, or (PostgreSQL) for a
    # moment by another writer of the row (an update's intake ending it, forwarding deciding where
    # it goes). The caller may try the part again.
    held: bool = False

    @property
    def planned(self) -> tuple[PlannedCallout, ...]:
        return self.resolution.callouts if self.resolution else ()


def begin_start(session: Session, warning_id: str, now: datetime) -> Start | None:
    """Read a pending warning and decide who is called (no lock taken); None if already applied."""
    row = session.get(WarningRow, warning_id)
    if row is None or row.applied_at is not None:
        return None
    record = row.root_id or row.id
    if row.msg_type == "cancel" or row.status != "active":
        return Start(row.id, record, None)
    if row.kind == CheckKind.ROLLCALL:
        resolved, kept = rollcalls.resolution(session, row, now)
        return Start(row.id, record, resolved, kept=kept)
    if row.kind == CheckKind.SPOTCHECK:
        resolved, kept = spotchecks.resolution(session, row, now)
        return Start(row.id, record, resolved, kept=kept)
    facts = WarningFacts(Hazard(row.hazard), Level(row.level), tuple(row.areas), row.sender, row.sent,
                         tuple(row.zones or ()))
    return Start(row.id, record, resolve(current_site(session), facts, start=now))


def hold_for_start(session: Session, warning_id: str) -> WarningRow | None:
    """The warning's row, locked for a part of its start; None if another transaction holds it.

    FOR NO KEY UPDATE: other writers of the warning's row wait for the part, but an event or a
    call-out referring to the warning (a foreign key check: FOR KEY SHARE) does not — and a worker
    recording what it sent appends under the record's own head row (db.record_repo), not this one.
    A part takes the head for its STEPS event, its last statement before it commits (the first part
    also from its MATCHED event on, and the last for its APPLIED event)."""
    return session.execute(
        select(WarningRow).where(WarningRow.id == warning_id).with_for_update(skip_locked=True, key_share=True)
    ).scalar_one_or_none()


def apply_part(session: Session, start: Start, now: datetime, part: int | None = None) -> bool:
    """Start the next part (``part`` call-outs, else the database's START_PART) of the warning's
    call-outs; True once the warning is fully applied (or another scheduler holds it: it carries
    on, and a pending warning is resumed by the next tick)."""
    row = hold_for_start(session, start.warning_id)
    start.held = row is None
    if row is None or row.applied_at is not None:
        return True
    if row.msg_type == "cancel":
        start.applied = _cancel(session, row, start.record, now)
        _finish(session, row, start, now)
        return True
    if start.resolution is None or row.status != "active":  # cancelled or updated before all had started
        _finish(session, row, start, now)
        return True
    custom_plans(session)  # the part's look-ups by people: see db.bulk.custom_plans
    if not start.matched:
        _match(session, row, start, now)
    size = part or (START_PART_SQLITE if session.get_bind().dialect.name == "sqlite" else START_PART)
    part = start.planned[start.done:start.done + size]
    start.done += len(part)
    start.stepped += _start(session, row, start.record, part, start.applied, now)
    if start.done < len(start.planned):
        return False
    if row.msg_type == "update":
        start.applied.notices += _notify_reached(session, start.record, row, Purpose.UPDATE, now,
                                                 skip_people=applied_people(session, row.id))
    _finish(session, row, start, now)
    return True


def _match(session: Session, row: WarningRow, start: Start, now: datetime) -> None:
    """The rules engine's decision, once per warning (a resumed start finds it already written)."""
    start.matched = True
    if session.scalar(select(EventRow.id).where(EventRow.warning_id == start.record,
                                                EventRow.kind == EventKind.MATCHED.value,
                                                EventRow.data["warning"].as_string() == row.id).limit(1)):
        return
    resolution = start.resolution
    assert resolution is not None
    append_event(session, start.record, EventKind.MATCHED, "rules", now, {
        "warning": row.id, "plans": list(resolution.plans), "officials": len(resolution.callouts),
        "duty": list(resolution.duty.everyone) if resolution.duty else [],
        "gaps": [g.message for g in resolution.gaps][:200], "fallback": resolution.fallback, **start.kept,
    })
    if row.kind != "warning":
        return  # a routine check orders no broadcast
    if row.drill:
        drills.adopt_posted(session, row, now)  # an agency's drill is reported and ended like the county's own
        if not drills.broadcast_asked(session, row):
            return  # a drill orders the rural broadcast only when it asks for it (drill_broadcast)
    if not resolution.plans:
        return  # no plan, no broadcast order (a blue warning: most of what a county receives)
    site = current_site(session)
    broadcasts.order_for(session, site, row, [p for p in site.plans if p.id in resolution.plans], now)


def _finish(session: Session, row: WarningRow, start: Start, now: datetime) -> None:
    applied = start.applied
    if start.resolution is not None and not start.planned:
        applied.started, applied.superseded = 0, []  # it called nobody: no call-out of it exists
    else:
        applied.started = session.scalar(
            select(func.count()).select_from(CalloutRow).where(CalloutRow.warning_id == row.id)) or 0
        # From the database, like ``started``: a start resumed after a crash did not see the earlier
        # parts. Looked up by the people this warning called (indexed), not by the closed reason (not
        # indexed: that scanned every call-out of the county's history for each warning applied).
        called = select(CalloutRow.person_id).where(CalloutRow.warning_id == row.id).scalar_subquery()
        applied.superseded = sorted(session.scalars(select(CalloutRow.id).where(
            CalloutRow.person_id.in_(called), CalloutRow.state == CalloutState.CANCELLED,
            CalloutRow.closed_reason.like(f"superseded by {row.id} (%"))))
    row.applied_at, row.apply_error, row.apply_retry_at = now, None, None
    data: dict[str, Any] = {
        "warning": row.id, "msg_type": row.msg_type, "started": applied.started,
        "superseded": applied.superseded, "muted": applied.muted[:500], "notices": applied.notices,
        "cancelled": applied.cancelled,
    }
    if start.resolution is not None and row.status != "active":
        data["stopped"] = row.status  # an update or cancel came while its call-outs were being started
    append_event(session, start.record, EventKind.APPLIED, "engine", now, data)


def applied_people(session: Session, warning_id: str) -> set[str]:
    return set(session.scalars(select(CalloutRow.person_id).where(CalloutRow.warning_id == warning_id)))


def _start(session: Session, row: WarningRow, record: str, planned: Sequence[PlannedCallout], applied: Applied,
           now: datetime) -> int:
    """Start these officials' call-outs; returns how many ran their step 0 here."""
    if not planned:
        return 0
    people = [c.person_id for c in planned]
    begun = _started_for(session, row.id, people)
    planned = [c for c in planned if c.person_id not in begun]
    people = [c.person_id for c in planned]
    level = Level(row.level)
    # A warning takes over (or is muted by) an official's open call-out of the same concern; a roll-call
    # stands alone: each is about its own minute, so an open earlier one neither mutes nor is replaced.
    # A drill and a real warning never take over from each other: a real orange warning during a red
    # drill is not muted, and a drill never closes a real warning's call-out.
    holding = _open_callouts(session, people, row.hazard, row.drill) if row.kind == "warning" else {}
    in_event = _levels_in_event(session, record, people)
    codes = _codes_in_use(session, people)
    steps_json: dict[tuple[PlannedStep, ...], list[dict[str, Any]]] = {}
    new_rows, superseded = [], []
    first: list[Advanced | None] = []  # step 0 of each new call-out, run in this transaction
    for callout in planned:
        # Already called for this event at this level or higher: the update notice will do.
        if callout.person_id in in_event and takes_over(level.rank, in_event[callout.person_id]) is TakeOver.MUTE:
            continue
        blocking = [c for c in holding.get(callout.person_id, []) if _same_concern(session, c, row, record)]
        if any(takes_over(level.rank, c.priority) is TakeOver.MUTE for c in blocking):
            applied.muted.append(callout.person_id)
            continue
        for old in blocking:
            _close(old, CalloutState.CANCELLED, now, f"superseded by {row.id} ({level.value})")
            superseded.append(old.id)
        steps = steps_json.get(callout.steps)
        if steps is None:  # officials of one plan share their steps' times and channels
            steps = steps_json[callout.steps] = [step_to_json(s) for s in callout.steps]
        values = _callout_values(callout, row, record, level, now, codes, steps)
        moved = escalation.first_step(callout.steps, now)
        if moved is not None:  # its timer moves on as advance_due would move it
            values.update(state=moved.state.value, next_step=moved.next_step, next_due=moved.next_due)
        new_rows.append(values)
        first.append(moved)
    if superseded:  # before the new attempts: the old call-outs' queued ones are cancelled, not these
        cancel_queued(session, superseded, now)
        applied.superseded += superseded
    if not new_rows:
        return 0
    # Core insert, ids returned in the rows' order (the ORM's own RETURNING costs seconds), and each
    # call-out's step 0 run at once: its attempts go out with this part's commit.
    ids = insert_returning_ids(session, CalloutRow.__table__, new_rows)
    started = [(escalation.Started(callout_id, record, values["person_id"], row.hazard, level.rank), moved)
               for callout_id, values, moved in zip(ids, new_rows, first, strict=True) if moved is not None]
    return escalation.run_first_steps(session, record, started, now)


def _started_for(session: Session, warning_id: str, people: list[str]) -> set[str]:
    begun: set[str] = set()
    for first in range(0, len(people), 900):
        begun.update(session.scalars(select(CalloutRow.person_id).where(
            CalloutRow.warning_id == warning_id, among(session, CalloutRow.person_id, people[first:first + 900]))))
    return begun


def _callout_values(callout: PlannedCallout, row: WarningRow, record: str, level: Level, now: datetime,
                    codes: dict[str, set[str]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "warning_id": row.id, "record_id": record, "person_id": callout.person_id, "plan_id": callout.plan_id,
        "hazard": row.hazard, "level": level.value, "priority": level.rank, "drill": row.drill,
        "reason": callout.reason[:200], "state": CalloutState.PENDING.value,
        "steps": steps, "next_step": 0, "next_due": now,
        "ack_code": _new_code(codes.setdefault(callout.person_id, set())), "started_at": now, "room": callout.room,
    }


def _new_code(taken: set[str]) -> str:
    while True:
        code = f"{randbelow(9000) + 1000}"
        if code not in taken:
            taken.add(code)
            return code


def _codes_in_use(session: Session, people: list[str]) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for start in range(0, len(people), 900):
        for pid, code in session.execute(
            select(CalloutRow.person_id, CalloutRow.ack_code)
            .where(among(session, CalloutRow.person_id, people[start:start + 900]),
                   CalloutRow.state.in_(ACKABLE_STATES))
        ):
            codes.setdefault(pid, set()).add(code)
    return codes


def _levels_in_event(session: Session, record: str, people: list[str]) -> dict[str, int]:
    levels: dict[str, int] = {}
    for first in range(0, len(people), 900):
        for pid, priority in session.execute(
            select(CalloutRow.person_id, CalloutRow.priority)
            .where(CalloutRow.record_id == record, among(session, CalloutRow.person_id, people[first:first + 900]))
        ):
            levels[pid] = max(priority, levels.get(pid, 0))
    return levels


def _open_callouts(session: Session, people: list[str], hazard: str, drill: bool = False,
                   ) -> dict[str, list[CalloutRow]]:
    found: dict[str, list[CalloutRow]] = {}
    for start in range(0, len(people), 900):
        for c in session.scalars(
            select(CalloutRow).where(among(session, CalloutRow.person_id, people[start:start + 900]),
                                     CalloutRow.hazard == hazard, CalloutRow.state.in_(OPEN_STATES),
                                     CalloutRow.drill == drill)
            .with_for_update()
        ):
            found.setdefault(c.person_id, []).append(c)
    return found


def _same_concern(session: Session, old: CalloutRow, row: WarningRow, record: str) -> bool:
    """Same event (an update), or another event whose areas overlap this one's."""
    if old.record_id == record:
        return True
    other = session.get(WarningRow, old.warning_id)
    return other is not None and any(overlaps(a, b) for a in other.areas for b in row.areas)


def _close(callout: CalloutRow, state: CalloutState, now: datetime, reason: str) -> None:
    callout.state, callout.next_due, callout.closed_at, callout.closed_reason = state, None, now, reason


def _cancel(session: Session, row: WarningRow, record: str, now: datetime) -> Applied:
    applied = Applied()
    applied.cancelled = _close_open(session, row, record, now)
    applied.notices = _notify_reached(session, record, row, Purpose.CANCEL, now)
    return applied


def _close_open(session: Session, row: WarningRow, record: str, now: datetime) -> int:
    open_ones = list(session.scalars(
        select(CalloutRow).where(CalloutRow.record_id == record, CalloutRow.state.in_(OPEN_STATES))
        .with_for_update()
    ))
    for callout in open_ones:
        _close(callout, CalloutState.CANCELLED, now, f"warning cancelled by {row.id}")
    cancel_queued(session, [c.id for c in open_ones], now)
    return len(open_ones)


def _notify_reached(session: Session, record: str, row: WarningRow, purpose: Purpose, now: datetime,
                    skip_people: set[str] | None = None) -> int:
    """One notice (update, cancel, a drill's lifting) per official already reached, on the channels
    that reached them (``notice_channels``)."""
    skip = skip_people or set()
    attempts: list[dict[str, Any]] = []
    seen: set[str] = set()
    reached = [c for c in session.scalars(
        select(CalloutRow).where(CalloutRow.record_id == record, CalloutRow.notified_at.is_not(None))
        .order_by(CalloutRow.id)) if c.person_id not in skip]
    if not reached:
        return 0
    got_through: dict[str, list[Channel]] = {}
    for recipient, channel in session.execute(
            select(AttemptRow.recipient_id, AttemptRow.channel).where(
                AttemptRow.record_id == record, AttemptRow.status.in_(("sent", "delivered")))
            .order_by(AttemptRow.sent_at, AttemptRow.id)):
        ways = got_through.setdefault(recipient, [])
        if Channel(channel) not in ways:
            ways.append(Channel(channel))
    site = current_site(session)
    out = set(drills.withheld(session, [record]).get(record, ()))
    for callout in reached:
        if callout.person_id in seen:
            continue
        seen.add(callout.person_id)
        person = site.people.get(callout.person_id)
        can_take = person.reachable_by if person is not None else (lambda _c: True)
        for channel in notice_channels(FrozenSteps(callout.steps), callout.person_id,
                                       got_through.get(callout.person_id, ()), can_take, out):
            attempts.append(notice_attempt(callout, row.id, purpose, channel.value, now))
    return insert_attempts(session, attempts)


def notice_channels(steps: Sequence[PlannedStep], person_id: str, got_through: Sequence[Channel],
                    can_take: Callable[[Channel], bool], taken_out: Collection[str] = ()) -> list[Channel]:
    """The channels an official's update or cancel notice goes on — the same fallback the call-out
    took, so that whoever was reached is told:

    1. the channels of their first step that reached them (as always, when nothing failed);
    2. else the first channel that did reach them — the next step's voice call after their SMS failed,
       or was taken out by a drill, or its provider was down;
    3. else (reached only through someone else: their deputy, superior or duty room) the first channel
       of their own ladder they can take that a drill did not take out;
    4. else their first step's channels."""
    first = steps[0].channels if steps else ()
    if mine := [c for c in first if c in got_through]:
        return mine
    if got_through:
        return [got_through[0]]
    for step in steps:
        if person_id in step.recipients and not step.final:
            for channel in step.channels:
                if channel.value not in taken_out and can_take(channel):
                    return [channel]
    return list(first)


def notice_attempt(callout: CalloutRow, warning_id: str, purpose: Purpose, channel: str,
                   now: datetime) -> dict[str, Any]:
    """A one-off message to the official outside the plan's steps (update or cancel notice)."""
    key = f"{callout.id}:{purpose.value}:{warning_id}:{channel}:{callout.person_id}"
    return attempt_values(callout, key, -1, purpose.value, channel, callout.person_id, now)


def cancel_event(session: Session, warning_id: str, now: datetime, actor: str) -> Applied:
    """A duty officer (admin) or the issuing agency ends the whole event at once."""
    row = session.get(WarningRow, warning_id)
    if row is None:
        raise LookupError(warning_id)
    record = row.root_id or row.id
    # Call-outs first, then the warning rows: the lock order every other writer uses.
    applied = _cancel(session, row, record, now)
    chain_rows = session.scalars(select(WarningRow).where(
        (WarningRow.id == record) | (WarningRow.root_id == record), WarningRow.status.in_(("active", "updated")))
        .order_by(WarningRow.id).with_for_update(key_share=True).execution_options(populate_existing=True))
    ended = []
    for message in chain_rows:
        message.status = "cancelled"
        message.applied_at = message.applied_at or now  # a not-yet-applied alert must not start afterwards
        ended.append(message.id)
    # A part of the warning's call-outs started while we waited for its row: close those too. From
    # here on no part can start (each takes the row lock, then finds the warning cancelled).
    applied.cancelled += _close_open(session, row, record, now)
    append_event(session, record, EventKind.CANCELLED, actor, now, {
        "warnings": sorted(ended), "callouts_cancelled": applied.cancelled, "notices": applied.notices})
    return applied
