"""A site: one county's areas, roster, duty rota and plans, as loaded from rosters/<site>/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo

from .areas import AreaTree
from .duty import DutyRota
from .plans import Plan
from .roster import Person

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

    def person(self, person_id: str | None) -> Person | None:
        return self.people.get(person_id) if person_id else None

    @cached_property
    def _by_phone(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for person in self.people.values():
            if person.phone:
                index.setdefault(person.phone, []).append(person.id)
        return index

    def people_with_phone(self, phone: str) -> list[str]:
        """Who answers from this number (usually one person; a shared office phone, several)."""
        return self._by_phone.get(phone, [])
