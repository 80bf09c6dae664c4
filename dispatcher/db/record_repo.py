"""Appending to and reading the per-warning record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain.record import RecordedEvent, event_hash, verify_chain
from .tables import EventRow, WarningRow


def append_event(
    session: Session, warning_id: str, kind: str, actor: str, at: datetime, data: dict[str, Any] | None = None
) -> EventRow:
    """Append one event. The warning row is locked (FOR UPDATE on PostgreSQL) so concurrent
    writers chain their events one after another."""
    # populate_existing: a row this session loaded before the lock was taken is read again, or
    # the head and count would be those of before another writer's append.
    warning = session.execute(
        select(WarningRow).where(WarningRow.id == warning_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    seq = warning.record_count + 1
    payload = data or {}
    digest = event_hash(warning_id, seq, at, actor, kind, payload, warning.record_head)
    row = EventRow(warning_id=warning_id, seq=seq, at=at, actor=actor, kind=kind, data=payload,
                   prev_hash=warning.record_head, hash=digest)
    session.add(row)
    warning.record_count, warning.record_head = seq, digest
    return row


def events(session: Session, warning_id: str) -> list[RecordedEvent]:
    rows = session.scalars(select(EventRow).where(EventRow.warning_id == warning_id).order_by(EventRow.seq))
    return [RecordedEvent(r.seq, r.at, r.actor, r.kind, r.data, r.prev_hash, r.hash) for r in rows]


def verify(session: Session, warning_id: str) -> list[str]:
    warning = session.get(WarningRow, warning_id)
    if warning is None:
        raise LookupError(warning_id)
    return verify_chain(warning_id, events(session, warning_id), warning.record_head, warning.record_count)
