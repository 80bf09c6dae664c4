"""Reading call-outs back: per official, their state, attempts and acknowledgement."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.tables import AttemptRow, CalloutRow
from ..domain.callouts import CalloutState
from ..domain.roster import mask_phone
from ..privacy import mask_value
from .site import current_site


def counts(session: Session, record_id: str) -> dict[str, int]:
    by_state = dict(session.execute(
        select(CalloutRow.state, func.count()).where(CalloutRow.record_id == record_id).group_by(CalloutRow.state)
    ).all())
    out = {s.value: by_state.get(s.value, 0) for s in CalloutState}
    out["total"] = sum(by_state.values())
    return out


def list_callouts(session: Session, record_id: str, show_phones: bool) -> list[dict[str, Any]]:
    site = current_site(session)
    # Plain rows, not ORM objects, and the frozen steps only counted (by the database): a board of
    # 2,000 call-outs reads this on every live update.
    columns = [col for col in CalloutRow.__table__.columns if col.name != "steps"]
    callouts = session.execute(select(*columns, func.json_array_length(CalloutRow.steps).label("n_steps"))
                               .where(CalloutRow.record_id == record_id).order_by(CalloutRow.id)).all()
    attempts: dict[int, list[Any]] = defaultdict(list)
    for a in session.execute(select(
            AttemptRow.callout_id, AttemptRow.step_index, AttemptRow.purpose, AttemptRow.channel,
            AttemptRow.recipient_id, AttemptRow.status, AttemptRow.sent_at, AttemptRow.provider_id, AttemptRow.error)
            .where(AttemptRow.record_id == record_id).order_by(AttemptRow.id)):
        attempts[a.callout_id].append(a)

    labels: dict[str, str] = {}

    def person(pid: str) -> dict[str, Any]:
        p = site.people.get(pid)
        if p is None:
            return {"id": pid, "name": pid}
        phone = p.phone if show_phones else mask_phone(p.phone)
        if p.area not in labels:
            labels[p.area] = site.areas.label(p.area)
        return {"id": p.id, "name": p.name, "phone": phone, "unit": p.unit, "area": p.area,
                "area_name": labels[p.area], "roles": [site.roles.get(r, r) for r in p.roles]}

    out = []
    for c in callouts:
        to_ack = (c.acknowledged_at - c.started_at).total_seconds() if c.acknowledged_at else None
        out.append({
            "id": c.id, "warning": c.warning_id, "official": person(c.person_id), "plan": c.plan_id,
            "level": c.level, "state": c.state, "drill": c.drill, "ack_code": c.ack_code if show_phones else None,
            "started_at": c.started_at.isoformat(),
            "next_step": c.next_step if c.next_step < c.n_steps else None,
            "next_due": c.next_due.isoformat() if c.next_due else None,
            "acknowledged_at": c.acknowledged_at.isoformat() if c.acknowledged_at else None,
            # An SMS reply's acknowledger may be its sender's number: masked like the official's.
            "acknowledged_by": c.acknowledged_by if show_phones else mask_value(c.acknowledged_by),
            "ack_via": c.ack_via, "ack_note": c.ack_note,
            "seconds_to_ack": to_ack,
            "unreached_at": c.unreached_at.isoformat() if c.unreached_at else None,
            "closed_reason": c.closed_reason,
            "attempts": [{
                "step": a.step_index, "purpose": a.purpose, "channel": a.channel, "to": a.recipient_id,
                "status": a.status, "sent_at": a.sent_at.isoformat() if a.sent_at else None,
                "provider_id": a.provider_id, "error": a.error} for a in attempts[c.id]],
        })
    return out
