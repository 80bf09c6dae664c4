"""What a live board polls: a cheap fingerprint of what its page shows, read four times a second
per open stream, so that a change made by a worker in another process shows within a second
(``dispatcher/board/sse.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.tables import AttemptRow, CalloutRow, EventRow, WarningRow


def fingerprint(session: Session, record: str | None) -> tuple[Any, ...]:
    """For one warning's event (``record``): its newest record event, its newest attempt change
    and number of attempts, and its number of call-outs. For the overview (``None``): the same
    over every event, and the number of active warnings. Equal fingerprints: nothing to show anew
    (but the clock — overdue flags, "time since" — which the caller adds)."""
    events = select(func.max(EventRow.id))
    attempts = select(func.max(AttemptRow.updated_at), func.count(AttemptRow.id))
    callouts = select(func.count(CalloutRow.id))
    if record is not None:
        events = events.where(EventRow.warning_id == record)
        attempts = attempts.where(AttemptRow.record_id == record)
        callouts = callouts.where(CalloutRow.record_id == record)
    else:
        callouts = select(func.count(WarningRow.id)).where(WarningRow.status == "active")
    return (session.scalar(events), *session.execute(attempts).one(), session.scalar(callouts))
