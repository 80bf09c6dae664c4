"""Reading warnings back: lists, one warning, its record.

``conceal``: the reader is a viewer or an officer, to whom a blind drill (双盲) not yet revealed is a
real warning — no drill flag, no drill events, its outages plain channel failures — exactly as the
board shows it (``services/drills.concealed`` and ``conceal_*``). An agency key reads only what its
senders posted: never the county's own drills, whichever sender they play."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import record_repo
from ..db.tables import EventRow, WarningRow
from ..domain.checks import CheckKind
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..intake.schema import text_problem
from .errors import NotFound
from .keys import AgencyKey


def list_warnings(session: Session, key: AgencyKey | None, active: bool | None = None,
                  limit: int = 100, *, conceal: bool = False) -> list[dict[str, Any]]:
    # Warnings only: the county's own roll-calls have their own list (services/rollcalls.history).
    query = select(WarningRow).where(WarningRow.kind == "warning").order_by(WarningRow.received_at.desc()).limit(limit)
    if active is True:
        query = query.where(WarningRow.status == "active")
    elif active is False:
        query = query.where(WarningRow.status != "active")
    if key is not None:
        query = query.where(WarningRow.sender.in_(sorted(key.senders)), WarningRow.source_format != COUNTY_DRILL)
    rows = list(session.scalars(query))
    hidden = _concealed(session, [r.root_id or r.id for r in rows]) if conceal else set()
    return [summary(row, concealed=(row.root_id or row.id) in hidden) for row in rows]


COUNTY_DRILL = "drill"  # the source format of the county's own drills (services/drills): no agency's message


def _concealed(session: Session, records: list[str]) -> set[str]:
    from . import drills

    return drills.concealed(session, records)


# A warning id is at most this long (the column's length): a longer one names no warning.
ID_LENGTH: int = WarningRow.__table__.c.id.type.length


def possible_id(warning_id: str) -> bool:
    """Whether ``warning_id`` could name a stored warning: short enough for the column, and free of
    NUL (PostgreSQL refuses even to compare text holding one). Checked before any lookup."""
    return 0 < len(warning_id) <= ID_LENGTH and text_problem(warning_id) is None


def get_row(session: Session, warning_id: str, key: AgencyKey | None) -> WarningRow:
    """The warning, or NotFound: for an id that cannot exist (NotFound before the lookup), one that
    does not, and another agency's warning."""
    if not possible_id(warning_id):
        raise NotFound(f"no warning {_shown(warning_id)}")
    row = session.get(WarningRow, warning_id)
    # A key never learns that another agency's warning exists, nor the county's drills (whatever
    # sender a blind drill plays, the agency did not send it).
    if row is None or (key is not None and (row.sender not in key.senders or row.source_format == COUNTY_DRILL)):
        raise NotFound(f"no warning {warning_id}")
    return row


def _shown(warning_id: str) -> str:
    """An impossible id as a message may quote it: NUL and anything not ASCII escaped, and clipped."""
    shown = warning_id.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 80 else shown[:80] + "…"


def get_warning(session: Session, warning_id: str, key: AgencyKey | None, *, conceal: bool = False,
                ) -> dict[str, Any]:
    row = get_row(session, warning_id, key)
    out = summary(row, concealed=conceal and bool(_concealed(session, [row.root_id or row.id])))
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


def summary(row: WarningRow, *, concealed: bool = False) -> dict[str, Any]:
    """A record's head as the API shows it; ``kind`` says whether it is a warning or one of the
    county's routine checks (a duty roll-call, whose "hazard" is its kind). ``concealed``: a blind
    drill shown as a real warning."""
    if row.kind == "warning":
        hazard_name, level_name = Hazard(row.hazard).zh, Level(row.level).zh
    else:
        hazard_name, level_name = CheckKind(row.kind).zh, ""
    return {
        "id": row.id, "kind": row.kind, "sender": row.sender, "identifier": row.identifier, "msg_type": row.msg_type,
        "hazard": row.hazard, "hazard_name": hazard_name, "level": row.level, "level_name": level_name,
        "areas": row.areas, "headline": row.headline, "sent": row.sent.isoformat(),
        "received_at": row.received_at.isoformat(), "drill": row.drill and not concealed, "status": row.status,
    }


def links(warning_id: str) -> dict[str, str]:
    base = f"/api/v1/warnings/{warning_id}"
    return {"self": base, "record": f"{base}/record", "callouts": f"{base}/callouts"}


def record(session: Session, warning_id: str, key: AgencyKey | None, *, conceal: bool = False,
           ) -> list[dict[str, Any]]:
    row = get_row(session, warning_id, key)
    events = [
        {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "data": e.data, "hash": e.hash}
        for e in record_repo.events(session, row.root_id or row.id)
    ]
    if conceal and _concealed(session, [row.root_id or row.id]):
        from .drills import conceal_events

        events = conceal_events(events)
    return events
