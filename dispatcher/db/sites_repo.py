"""The site in the database: sync from files (``jiaoying load``) and read back as a domain Site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..domain.areas import Area, AreaTree
from ..domain.duty import DutyRoom, DutyRota, DutyShift, WeeklyShift
from ..domain.roster import Person, PhoneKind, PhoneNumber, Responsibility
from ..domain.site import Site
from ..domain.zones import Zone, ZoneKind
from ..gcpause import gc_paused
from .codec import (
    plan_from_dict,
    plan_to_dict,
    rollcall_from_dict,
    rollcall_to_dict,
    spotcheck_from_dict,
    spotcheck_to_dict,
)
from .tables import AreaRow, Base, CheckRow, DutyRoomRow, DutyShiftRow, PersonRow, PlanRow, RoleRow, SiteRow, ZoneRow


@dataclass
class SyncReport:
    added: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.added.values()) + sum(self.changed.values()) + sum(self.removed.values())

    def summary(self) -> str:
        if not self.total:
            return "no changes"
        parts = []
        for label, counts in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            items = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
            if items:
                parts.append(f"{label} {items}")
        return "; ".join(parts)


def sync_site(session: Session, site: Site, digest: str, now: datetime) -> SyncReport:
    """Make the database hold exactly ``site``. Rows that leave are deactivated, not deleted,
    because past call-outs refer to them. Running it twice with the same site changes nothing."""
    with gc_paused():  # tens of thousands of rows: see gcpause
        return _sync_site(session, site, digest, now)


def _sync_site(session: Session, site: Site, digest: str, now: datetime) -> SyncReport:
    report = SyncReport()
    _sync_keyed(session, AreaRow, "code", "areas", report, {
        a.code: {"name": a.name, "parent_code": a.parent, "kind": a.kind, "active": True} for a in site.areas
    })
    _sync_keyed(session, ZoneRow, "id", "zones", report, {
        z.id: {"name": z.name, "kind": z.kind.value, "areas": list(z.areas), "active": True}
        for z in site.zones.values()
    })
    _sync_keyed(session, DutyRoomRow, "area", "duty rooms", report, {
        r.area: {"name": r.name, "phone": r.phone, "active": True} for r in site.rooms
    })
    _sync_keyed(session, RoleRow, "id", "roles", report, {
        rid: {"name": name, "active": True} for rid, name in site.roles.items()
    })
    _sync_keyed(session, PersonRow, "id", "people", report, {p.id: _person_row(p) for p in site.people.values()})
    plans = {p.id: {"name": p.name, "position": i, "definition": plan_to_dict(p), "active": True}
             for i, p in enumerate(site.plans)}
    if site.fallback is not None:  # kept beside the plans, marked, after them
        plans[site.fallback.id] = {"name": site.fallback.name, "position": len(site.plans),
                                   "definition": plan_to_dict(site.fallback) | {"fallback": True}, "active": True}
    _sync_keyed(session, PlanRow, "id", "plans", report, plans)
    _sync_keyed(session, CheckRow, "id", "checks", report, {
        r.id: {"kind": "rollcall", "name": r.name, "position": i, "definition": rollcall_to_dict(r), "active": True}
        for i, r in enumerate(site.rollcalls)
    } | {
        s.id: {"kind": "spotcheck", "name": s.name, "position": len(site.rollcalls) + i,
               "definition": spotcheck_to_dict(s), "active": True}
        for i, s in enumerate(site.spotchecks)
    })
    _sync_duty(session, site, report)
    row = session.get(SiteRow, site.name)
    tz_name = getattr(site.tz, "key", "Asia/Shanghai")
    if row is None:
        session.add(SiteRow(id=site.name, name=site.name, timezone=tz_name, digest=digest, loaded_at=now))
    elif report.total or row.digest != digest or row.timezone != tz_name:
        row.digest, row.timezone, row.loaded_at = digest, tz_name, now
    session.execute(delete(SiteRow).where(SiteRow.id != site.name))
    return report


def _person_row(p: Person) -> dict[str, Any]:
    return {
        "name": p.name, "phone": p.phone, "email": p.email, "im": dict(p.im), "area_code": p.area,
        "roles": list(p.roles), "unit": p.unit, "deputy_id": p.deputy, "superior_id": p.superior,
        "phone_kind": p.phone_kind.value, "phones": [{"number": n.number, "kind": n.kind.value} for n in p.phones],
        "responsibilities": [{"kind": r.kind, "areas": list(r.areas), "zones": list(r.zones), "roles": list(r.roles)}
                             for r in p.responsibilities],
        "active": True,
    }


def _sync_keyed(
    session: Session, model: type[Base], key: str, kind: str, report: SyncReport, wanted: dict[str, dict[str, Any]]
) -> None:
    """Rows are compared as plain column values and written in bulk (one executemany per kind of
    change), not as one ORM object each: a county has tens of thousands of people."""
    table = model.__table__
    columns = list(dict.fromkeys(c for values in wanted.values() for c in values))
    if "active" not in columns:
        columns.append("active")
    existing = {row[0]: row[1:] for row in session.execute(select(table.c[key], *(table.c[c] for c in columns)))}
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for pk, values in wanted.items():
        row = existing.get(pk)
        if row is None:
            new.append({key: pk, **values})
        elif any(stored != values[c] for c, stored in zip(columns, row, strict=True) if c in values):
            changed.append({key: pk, **values})
    active = columns.index("active")
    removed = [{key: pk, "active": False} for pk, row in existing.items() if pk not in wanted and row[active]]
    if new:
        session.execute(insert(model), new)
    if changed or removed:
        session.execute(update(model), changed + removed)  # by primary key
    report.added[kind], report.changed[kind], report.removed[kind] = len(new), len(changed), len(removed)


def _duty_rows(site: Site) -> list[dict[str, Any]]:
    rooms: list[tuple[str | None, DutyRota]] = [(None, site.duty), *((r.area, r.rota) for r in site.rooms)]
    rows = []
    for room, rota in rooms:
        rows += [
            {"kind": "dated", "room": room, "starts_at": s.start, "ends_at": s.end, "weekday": None,
             "start_time": None, "hours": None, "leader_id": s.leader, "chief_id": s.chief, "staff": list(s.staff)}
            for s in rota.shifts
        ]
        rows += [
            {"kind": "weekly", "room": room, "starts_at": None, "ends_at": None, "weekday": w.weekday,
             "start_time": w.start.strftime("%H:%M"), "hours": w.hours, "leader_id": w.leader,
             "chief_id": w.chief, "staff": list(w.staff)}
            for w in rota.weekly
        ]
    return rows


def _sync_duty(session: Session, site: Site, report: SyncReport) -> None:
    wanted = _duty_rows(site)
    cols = list(wanted[0]) if wanted else []
    current = [
        {c: getattr(r, c) for c in cols}
        for r in session.scalars(select(DutyShiftRow).order_by(DutyShiftRow.id))
    ]
    if current == wanted and (wanted or not session.scalar(select(DutyShiftRow.id).limit(1))):
        report.added["duty shifts"] = 0
        return
    old = session.query(DutyShiftRow).count()
    session.execute(delete(DutyShiftRow))
    session.add_all(DutyShiftRow(**r) for r in wanted)
    report.removed["duty shifts"], report.added["duty shifts"] = old, len(wanted)


def site_digest(session: Session) -> str | None:
    """The loaded files' digest: asked before every use of the cached site (each claim, each batch
    of due steps), so one column, not an ORM object."""
    return session.scalar(select(SiteRow.digest).limit(1))


def read_site(session: Session) -> Site | None:
    """The loaded site as a domain object, or None when nothing has been loaded."""
    with gc_paused():  # tens of thousands of people: see gcpause
        return _read_site(session)


def _read_site(session: Session) -> Site | None:
    meta = session.scalars(select(SiteRow)).first()
    if meta is None:
        return None
    tz = ZoneInfo(meta.timezone)
    # Plain rows of the columns used, not ORM objects: a county has tens of thousands of people.
    areas = AreaTree.of(
        Area(r.code, r.name, r.parent_code, r.kind)
        for r in session.execute(select(AreaRow.code, AreaRow.name, AreaRow.parent_code, AreaRow.kind)
                                 .where(AreaRow.active))
    )
    roles = {r.id: r.name for r in session.scalars(select(RoleRow).where(RoleRow.active))}
    people = {r.id: _person(r) for r in session.execute(select(*_PERSON_COLUMNS).where(PersonRow.active))}
    zones = {r.id: Zone(r.id, r.name, ZoneKind(r.kind), tuple(r.areas))
             for r in session.scalars(select(ZoneRow).where(ZoneRow.active))}
    rotas: dict[str | None, tuple[list[DutyShift], list[WeeklyShift]]] = {None: ([], [])}
    for r in session.scalars(select(DutyShiftRow).order_by(DutyShiftRow.id)):
        shifts, weekly = rotas.setdefault(r.room, ([], []))
        if r.kind == "dated" and r.starts_at and r.ends_at:
            shifts.append(DutyShift(r.starts_at, r.ends_at, r.leader_id, r.chief_id, tuple(r.staff)))
        elif r.kind == "weekly" and r.start_time is not None and r.weekday is not None:
            weekly.append(WeeklyShift(r.weekday, time.fromisoformat(r.start_time), r.hours or 24.0,
                                      r.leader_id, r.chief_id, tuple(r.staff)))

    def rota(room: str | None) -> DutyRota:
        shifts, weekly = rotas.get(room, ([], []))
        return DutyRota(tz, tuple(shifts), tuple(weekly))

    rooms = tuple(DutyRoom(r.area, r.name, rota(r.area), r.phone)
                  for r in session.scalars(select(DutyRoomRow).where(DutyRoomRow.active).order_by(DutyRoomRow.area)))
    rows = list(session.scalars(select(PlanRow).where(PlanRow.active).order_by(PlanRow.position)))
    plans = tuple(plan_from_dict(r.definition) for r in rows if not r.definition.get("fallback"))
    fallback = next((plan_from_dict(r.definition) for r in rows if r.definition.get("fallback")), None)
    checks = list(session.scalars(select(CheckRow).where(CheckRow.active).order_by(CheckRow.position)))
    rollcalls = tuple(rollcall_from_dict(r.definition) for r in checks if r.kind == "rollcall")
    spotchecks = tuple(spotcheck_from_dict(r.definition) for r in checks if r.kind == "spotcheck")
    return Site(meta.id, areas, roles, people, rota(None), plans, tz, fallback, zones, rooms, rollcalls, spotchecks)


_PERSON_COLUMNS = (PersonRow.id, PersonRow.name, PersonRow.phone, PersonRow.area_code, PersonRow.roles,
                   PersonRow.unit, PersonRow.email, PersonRow.im, PersonRow.deputy_id, PersonRow.superior_id,
                   PersonRow.phone_kind, PersonRow.phones, PersonRow.responsibilities)


def _person(r: Any) -> Person:  # a row of _PERSON_COLUMNS
    return Person(
        id=r.id, name=r.name, phone=r.phone, area=r.area_code, roles=tuple(r.roles), unit=r.unit,
        email=r.email, im=dict(r.im), deputy=r.deputy_id, superior=r.superior_id,
        phone_kind=PhoneKind(r.phone_kind or PhoneKind.MOBILE.value),
        phones=tuple(PhoneNumber(n["number"], PhoneKind(n["kind"])) for n in r.phones or ()),
        responsibilities=tuple(Responsibility(d["kind"], tuple(d["areas"]), tuple(d["zones"]), tuple(d["roles"]))
                               for d in r.responsibilities or ()),
    )
