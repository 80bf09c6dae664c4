"""Call-out plans (叫应方案): which warnings they answer, whom they reach, and by which steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from .areas import narrower
from .channels import Channel
from .duty import DutyPosition
from .hazards import Hazard, Level


class Scope(StrEnum):
    AFFECTED = "affected"  # the affected areas and everything under them
    ABOVE = "above"  # the areas above the affected ones (the county above a town)
    FIXED = "fixed"  # a named area, whatever the warning covers
    RESPONSIBLE = "responsible"  # those responsible (包保, 包村, a zone's 监测员) for the affected areas


class Recipient(StrEnum):
    SELF = "self"
    DEPUTY = "deputy"
    SUPERIOR = "superior"
    DUTY = "duty"  # the county's duty leader and shift chief on shift at the warning's time
    TOWN_DUTY = "town_duty"  # the same in the duty room of the official's town (or the affected towns)

    @property
    def zh(self) -> str:
        return {"self": "本人", "deputy": "副职/AB岗", "superior": "上级", "duty": "值班人员",
                "town_duty": "乡镇值班人员"}[self.value]


@dataclass(frozen=True)
class Match:
    hazards: frozenset[Hazard]
    levels: frozenset[Level]
    areas: tuple[str, ...] = ()  # empty: any area of the site
    senders: tuple[str, ...] = ()  # empty: any sender
    zones: tuple[str, ...] = ()  # empty: any; else warnings naming or touching these zones


@dataclass(frozen=True)
class RoleTarget:
    roles: tuple[str, ...]
    scopes: tuple[Scope, ...]
    area: str | None = None  # for Scope.FIXED
    # For Scope.RESPONSIBLE: the scopes applied to affected areas nobody is responsible for.
    otherwise: tuple[Scope, ...] = (Scope.ABOVE,)


@dataclass(frozen=True)
class DutyTarget:
    positions: tuple[DutyPosition, ...]


@dataclass(frozen=True)
class TownDutyTarget:
    """The duty rooms of the affected towns (乡镇值班室)."""

    positions: tuple[DutyPosition, ...]


Target = RoleTarget | DutyTarget | TownDutyTarget


@dataclass(frozen=True)
class Step:
    after: timedelta
    channels: tuple[Channel, ...]
    to: Recipient = Recipient.SELF


@dataclass(frozen=True)
class FinalEscalation:
    """What happens when the last step passes unacknowledged (the 未叫醒 list)."""

    after: timedelta
    to: tuple[Recipient, ...]
    channels: tuple[Channel, ...]


@dataclass(frozen=True)
class Broadcast:
    repeat: int = 3


@dataclass(frozen=True)
class QuietHours:
    """Channels held back between ``start`` and ``end`` local time (e.g. no voice at night for
    orange). A plan without quiet hours calls at any hour — red warnings wake people."""

    start: time
    end: time
    channels: tuple[Channel, ...]

    def holds(self, at: datetime, tz: tzinfo) -> bool:
        local = at.astimezone(tz).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    match: Match
    targets: tuple[Target, ...]
    steps: tuple[Step, ...]
    final: FinalEscalation | None = None
    broadcast: Broadcast | None = None
    quiet_hours: QuietHours | None = None

    @property
    def channels(self) -> frozenset[Channel]:
        used = {c for s in self.steps for c in s.channels}
        if self.final:
            used |= set(self.final.channels)
        return frozenset(used)

    def affected_areas(self, warning_areas: tuple[str, ...]) -> tuple[str, ...]:
        """The warning's areas cut down to this plan's own areas (all of them if it names none)."""
        if not self.match.areas:
            return warning_areas
        cut = (narrower(w, p) for w in warning_areas for p in self.match.areas)
        return tuple(dict.fromkeys(c for c in cut if c is not None))
