"""A warning's whole life: one past its ``expires`` stops escalating.

When the newest message of an event reaches its ``expires`` (or arrives already expired), the
message is marked expired, the event's open call-outs close as expired (their timers stop, the
alerts and reminders still queued are cancelled), and the warning leaves the active overview. No
lifting notice (解除) is sent: the warning was not lifted, it ran its course. Call-outs already
unreached stay on the 未叫醒 list, where they belong.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.queue import cancel_queued
from ..db.record_repo import append_event
from ..db.tables import CalloutRow, WarningRow
from ..domain.callouts import CHASING, OPEN_STATES, CalloutState
from ..domain.escalation import expire
from ..domain.record import EventKind


def expired_on_arrival(expires: datetime | None, now: datetime) -> bool:
    return expires is not None and expires <= now


def expire_due(session: Session, now: datetime, limit: int = 200) -> int:
    """Mark active warnings past their expires as expired and close their events' open call-outs.
    Returns how many call-outs were closed."""
    due = list(session.scalars(
        select(WarningRow).where(WarningRow.status == "active", WarningRow.msg_type != "cancel",
                                 WarningRow.expires.is_not(None), WarningRow.expires <= now)
        .order_by(WarningRow.expires).limit(limit).with_for_update(skip_locked=True, key_share=True)))
    # Stored already expired by intake (an update can end an event that way): the event still closes.
    arrived = list(session.scalars(select(WarningRow).where(
        WarningRow.status == "expired", WarningRow.applied_at.is_(None)).limit(limit)))
    closed = 0
    for row in due:
        row.status = "expired"
        append_event(session, row.root_id or row.id, EventKind.EXPIRED, "engine", now,
                     {"warning": row.id, "expires": row.expires.isoformat() if row.expires else None})
    for record in sorted({r.root_id or r.id for r in due + arrived}):
        closed += _close_event(session, record, now)
    return closed


def _close_event(session: Session, record: str, now: datetime) -> int:
    still = session.scalar(select(WarningRow.id).where(
        (WarningRow.id == record) | (WarningRow.root_id == record), WarningRow.status == "active").limit(1))
    if still is not None:  # a newer message of the event is still in force
        return 0
    callouts = list(session.scalars(select(CalloutRow).where(
        CalloutRow.record_id == record, CalloutRow.state.in_(OPEN_STATES)).with_for_update()))
    if not callouts:
        return 0
    ids = [c.id for c in callouts]
    for callout in callouts:
        callout.state, callout.next_due, callout.closed_at = expire(CalloutState(callout.state)), None, now
        callout.closed_reason = "warning expired"
    cancel_queued(session, ids, now, purposes=sorted(p.value for p in CHASING))
    append_event(session, record, EventKind.CALLOUTS_EXPIRED, "engine", now,
                 {"callouts": len(ids), "people": [c.person_id for c in callouts][:500]})
    return len(ids)
