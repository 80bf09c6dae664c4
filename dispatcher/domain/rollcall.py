"""Who a duty roll-call (值班点名, ``checks.RollCall``) calls: per duty room, whoever is on shift in the
positions it calls; each must answer by ``answer_within``, or the room's duty leader on shift is told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .checks import RollCall
from .duty import DutyPosition, DutyRota, DutyShift
from .plans import Recipient
from .rules import PlannedCallout, PlannedStep
from .site import Site


@dataclass(frozen=True)
class Room:
    """One duty room in a roll-call: the county's (``county`` True) or a town's."""

    area: str
    name: str
    county: bool


@dataclass(frozen=True)
class RollCallPlan:
    """Who a roll-call calls: per room, the people on shift (none: the room is unmanned, 无人值班)."""

    rooms: tuple[Room, ...]
    callouts: tuple[PlannedCallout, ...]
    unmanned: tuple[str, ...]  # room areas with nobody on shift in the positions called


def rooms_of(site: Site, rollcall: RollCall) -> tuple[Room, ...]:
    county = site.areas.roots[0] if site.areas.roots else ""
    rooms = [Room(county, f"{site.areas.name(county)}值班室" if county else "县值班室", True)]
    rooms += [Room(r.area, r.name, False) for r in site.rooms]
    if rollcall.rooms:
        wanted = set(rollcall.rooms)
        rooms = [r for r in rooms if r.area in wanted]
    return tuple(rooms)


def plan_rollcall(site: Site, rollcall: RollCall, at: datetime, start: datetime) -> RollCallPlan:
    """The roll-call at ``at`` (who is on shift then), its call-outs starting at ``start``."""
    rooms = rooms_of(site, rollcall)
    rotas = {r.area: r.rota for r in site.rooms}
    callouts: list[PlannedCallout] = []
    unmanned: list[str] = []
    seen: set[str] = set()
    for room in rooms:
        rota: DutyRota | None = site.duty if room.county else rotas.get(room.area)
        shift = rota.on_duty(at) if rota is not None else None
        called = [p for pos in rollcall.positions for p in (shift.holders(pos) if shift else ())
                  if p in site.people and p not in seen]
        called = list(dict.fromkeys(called))
        if not called:
            unmanned.append(room.area)
            continue
        leaders = tuple(p for p in (shift.holders(DutyPosition.LEADER) if shift else ()) if p in site.people)
        to = Recipient.DUTY if room.county else Recipient.TOWN_DUTY
        for person_id in called:
            seen.add(person_id)
            tell = tuple(p for p in leaders if p != person_id)
            steps = (
                PlannedStep(0, timedelta(0), start, rollcall.channels, (Recipient.SELF,), (person_id,)),
                PlannedStep(1, rollcall.answer_within, start + rollcall.answer_within, rollcall.tell if tell else (),
                            (to,), tell, final=True),
            )
            position = _position(shift, person_id) if shift else ""
            callouts.append(PlannedCallout(person_id, f"rollcall:{rollcall.id}", f"{room.name}{position}", steps,
                                           room=room.area))
    return RollCallPlan(rooms, tuple(callouts), tuple(unmanned))


def _position(shift: DutyShift, person_id: str) -> str:
    return next((pos.zh for pos in DutyPosition if person_id in shift.holders(pos)), "")
