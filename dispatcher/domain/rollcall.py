"""Who a duty roll-call (值班点名, ``checks.RollCall``) calls: per duty room, whoever is on shift in the
positions it calls; each must answer by ``answer_within``, or the room's duty leader on shift is told.

With ``call: duty_phone`` a room with a duty phone (duty.yaml ``phone``) gets one voice call on that
phone instead, counted for the first person on shift in the positions called: its call-out's first
step is to the room (``to`` the county's or the town's duty, not ``self``) with that person as the
recipient, and the attempt it makes calls ``DUTY_PHONE`` — the room's number, not one of theirs.
Only a key pressed on that call answers it: no SMS or link goes out, and the person's own numbers
are not tried (a call nobody answers tells the room's leader, as a missed answer does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .channels import Channel
from .checks import RollCall, RollCallTarget
from .duty import DutyPosition, DutyRoom, DutyRota, DutyShift
from .plans import Recipient
from .rules import PlannedCallout, PlannedStep
from .site import Site


@dataclass(frozen=True)
class Room:
    """One duty room in a roll-call: the county's (``county`` True) or a town's."""

    area: str
    name: str
    county: bool
    phone: str | None = None  # the room's duty phone (duty.yaml), E.164


# ``attempts.number`` of a roll-call's call to the duty room's own phone (a person's numbers count from 0).
DUTY_PHONE = -1


def calls_duty_phone(step: PlannedStep, recipient: str, official: str) -> bool:
    """Whether a roll-call call-out's step calls the duty room's phone for ``recipient``: a first step
    to the room (not to ``self``) whose recipient is the call-out's own person."""
    return not step.final and Recipient.SELF not in step.to and recipient == official


def duty_room(site: Site, area: str | None) -> DutyRoom | None:
    """The town duty room of ``area`` with a duty phone (None: no such room, or it has none)."""
    return next((r for r in site.rooms if r.area == area and r.phone), None)


def duty_phone(site: Site, area: str | None) -> str | None:
    """The duty phone of the room of ``area`` (None: no such room, or it has none)."""
    room = duty_room(site, area)
    return room.phone if room else None


@dataclass(frozen=True)
class RollCallPlan:
    """Who a roll-call calls: per room, the people on shift (none: the room is unmanned, 无人值班)."""

    rooms: tuple[Room, ...]
    callouts: tuple[PlannedCallout, ...]
    unmanned: tuple[str, ...]  # room areas with nobody on shift in the positions called


def rooms_of(site: Site, rollcall: RollCall) -> tuple[Room, ...]:
    county = site.areas.roots[0] if site.areas.roots else ""
    rooms = [Room(county, f"{site.areas.name(county)}值班室" if county else "县值班室", True)]
    rooms += [Room(r.area, r.name, False, r.phone) for r in site.rooms]
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
        if rollcall.call is RollCallTarget.DUTY_PHONE and room.phone:
            person_id = called[0]  # the first on shift in the positions called answers for the room
            seen.add(person_id)
            tell = tuple(p for p in leaders if p != person_id)
            steps = (
                PlannedStep(0, timedelta(0), start, (Channel.VOICE,), (to,), (person_id,)),
                PlannedStep(1, rollcall.answer_within, start + rollcall.answer_within, rollcall.tell if tell else (),
                            (to,), tell, final=True),
            )
            position = _position(shift, person_id) if shift else ""
            reason = f"{room.name}值班电话" + (f"（{position}）" if position else "")
            callouts.append(PlannedCallout(person_id, f"rollcall:{rollcall.id}", reason, steps, room=room.area))
            continue
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
