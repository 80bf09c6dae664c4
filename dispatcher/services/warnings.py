"""Reading warnings back: lists, one warning, its record."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import record_repo
from ..db.tables import EventRow, WarningRow
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from .errors import NotFound
from .keys import AgencyKey


def list_warnings(session: Session, key: AgencyKey | None, active: bool | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    query = select(WarningRow).order_by(WarningRow.received_at.desc()).limit(limit)
    if active is True:
        query = query.where(WarningRow.status == "active")
    elif active is False:
        query = query.where(WarningRow.status != "active")
    if key is not None:
        query = query.where(WarningRow.sender.in_(sorted(key.senders)))
    return [summary(row) for row in session.scalars(query)]


def get_row(session: Session, warning_id: str, key: AgencyKey | None) -> WarningRow:
    row = session.get(WarningRow, warning_id)
    # A key never learns that another agency's warning exists.
    if row is None or (key is not None and row.sender not in key.senders):
        raise NotFound(f"no warning {warning_id}")
    return row


def get_warning(session: Session, warning_id: str, key: AgencyKey | None) -> dict[str, Any]:
    row = get_row(session, warning_id, key)
    out = summary(row)
    matched = last_match(session, row.root_id or row.id)
    out.update({
        "description": row.description, "instruction": row.instruction, "references": row.references,
        "root_id": row.root_id, "expires": row.expires.isoformat() if row.expires else None,
        "matched": {"plans": matched.data.get("plans", []), "officials": matched.data.get("officials", 0),
                    "gaps": matched.data.get("gaps", []), "fallback": matched.data.get("fallback")}
        if matched else None,
        "links": links(row.id),
    })
    return out


def last_match(session: Session, record: str) -> EventRow | None:
    """The rules engine's latest decision for an event (plans, officials, gaps, fallback)."""
    return session.scalars(select(EventRow).where(EventRow.warning_id == record, EventRow.kind == EventKind.MATCHED)
                           .order_by(EventRow.seq.desc())).first()


def summary(row: WarningRow) -> dict[str, Any]:
    hazard, level = Hazard(row.hazard), Level(row.level)
    return {
        "id": row.id, "sender": row.sender, "identifier": row.identifier, "msg_type": row.msg_type,
        "hazard": row.hazard, "hazard_name": hazard.zh, "level": row.level, "level_name": level.zh,
        "areas": row.areas, "headline": row.headline, "sent": row.sent.isoformat(),
        "received_at": row.received_at.isoformat(), "drill": row.drill, "status": row.status,
    }


def links(warning_id: str) -> dict[str, str]:
    base = f"/api/v1/warnings/{warning_id}"
    return {"self": base, "record": f"{base}/record", "callouts": f"{base}/callouts"}


def record(session: Session, warning_id: str, key: AgencyKey | None) -> list[dict[str, Any]]:
    row = get_row(session, warning_id, key)
    return [
        {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "data": e.data, "hash": e.hash}
        for e in record_repo.events(session, row.root_id or row.id)
    ]
