"""An event's chain of messages (alert, updates, cancel) and the newest of them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.tables import WarningRow


def chain(session: Session, record_id: str) -> list[WarningRow]:
    return list(session.scalars(
        select(WarningRow)
        .where((WarningRow.id == record_id) | (WarningRow.root_id == record_id))
        .order_by(WarningRow.received_at, WarningRow.id)
    ))


def newest(session: Session, record_id: str) -> WarningRow:
    """The message whose content goes out now: the latest of the event."""
    return chain(session, record_id)[-1]
