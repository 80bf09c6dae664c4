"""A site: one county's areas, roster, duty rota and plans, as loaded from rosters/<site>/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo

from .areas import AreaTree, covers, overlaps
from .checks import RollCall, SpotCheck
from .duty import DutyRoom, DutyRota
from .plans import Plan
from .roster import Person
from .zones import Zone

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Site:
    name: str
    areas: AreaTree
    roles: dict[str, str]  # role id -> display name
    people: dict[str, Person]
    duty: DutyRota
    plans: tuple[Plan, ...]
    tz: tzinfo = field(default=DEFAULT_TZ)
    # Who is called when no plan answers a red or orange warning (rules.DEFAULT_FALLBACK if None).
    fallback: Plan | None = None
    zones: dict[str, Zone] = field(default_factory=dict)
    rooms: tuple[DutyRoom, ...] = ()  # town duty rooms; ``duty`` is the county's
    rollcalls: tuple[RollCall, ...] = ()  # duty roll-calls (checks.yaml)
    spotchecks: tuple[SpotCheck, ...] = ()  # 六问 spot-checks (checks.yaml)

    def person(self, person_id: str | None) -> Person | None:
        return self.people.get(person_id) if person_id else None

    @cached_property
    def _by_phone(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for person in self.people.values():
            for number in dict.fromkeys(n.number for n in person.numbers):
                index.setdefault(number, []).append(person.id)
        return index

    def zone_areas(self, zone_ids: tuple[str, ...]) -> tuple[str, ...]:
        """The areas of the named zones (unknown ids left out), in order, once each."""
        return tuple(dict.fromkeys(a for z in zone_ids if z in self.zones for a in self.zones[z].areas))

    def zones_touching(self, areas: tuple[str, ...]) -> tuple[str, ...]:
        """The zones with an area overlapping one of ``areas``."""
        return tuple(z.id for z in self.zones.values() if any(overlaps(a, w) for a in z.areas for w in areas))

    def room_of(self, seat: str) -> DutyRoom | None:
        """The duty room of the town a seat lies in (the nearest room above or at it)."""
        holding = [r for r in self.rooms if covers(r.area, seat)]
        return max(holding, key=lambda r: len(r.area)) if holding else None

    def rooms_for(self, areas: tuple[str, ...]) -> tuple[DutyRoom, ...]:
        """The duty rooms concerned by ``areas``: each area's own town room, and the rooms of the towns
        within a wider area (a county-wide warning concerns every town's room)."""
        return tuple(r for r in self.rooms if any(overlaps(r.area, a) for a in areas))

    def people_with_phone(self, phone: str) -> list[str]:
        """Who answers from this number (usually one person; a shared office phone, several)."""
        return self._by_phone.get(phone, [])
