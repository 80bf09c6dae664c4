"""Duty shifts (值班): the "1+1+X" of one duty leader, one shift chief and X duty staff.

A site has dated shifts (the published duty table) and, optionally, a standing weekly rota that
covers any time no dated shift covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum


class DutyPosition(StrEnum):
    LEADER = "leader"  # 值班领导
    CHIEF = "chief"  # 值班长
    STAFF = "staff"  # 值班员

    @property
    def zh(self) -> str:
        return {"leader": "值班领导", "chief": "值班长", "staff": "值班员"}[self.value]


@dataclass(frozen=True)
class DutyShift:
    start: datetime
    end: datetime
    leader: str | None
    chief: str | None
    staff: tuple[str, ...] = ()

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def holders(self, position: DutyPosition) -> tuple[str, ...]:
        if position is DutyPosition.LEADER:
            return (self.leader,) if self.leader else ()
        if position is DutyPosition.CHIEF:
            return (self.chief,) if self.chief else ()
        return self.staff

    @property
    def everyone(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for pos in DutyPosition for p in self.holders(pos)))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklyShift:
    weekday: int  # 0 = Monday
    start: time
    hours: float
    leader: str | None
    chief: str | None
    staff: tuple[str, ...] = ()

    def occurrence(self, week_of: datetime, tz: tzinfo) -> DutyShift:
        """This rota entry in the week (Monday-based) containing ``week_of``."""
        local = week_of.astimezone(tz)
        monday = local.date() - timedelta(days=local.weekday())
        day = monday + timedelta(days=self.weekday)
        start = datetime.combine(day, self.start, tzinfo=tz)
        return DutyShift(start, start + timedelta(hours=self.hours), self.leader, self.chief, self.staff)


@dataclass(frozen=True)
class DutyRota:
    tz: tzinfo
    shifts: tuple[DutyShift, ...] = ()
    weekly: tuple[WeeklyShift, ...] = ()

    def on_duty(self, at: datetime) -> DutyShift | None:
        """The shift on duty at ``at``: a dated shift if one covers it, else the weekly rota."""
        dated = [s for s in self.shifts if s.covers(at)]
        if dated:
            return max(dated, key=lambda s: s.start)
        candidates = [
            entry.occurrence(week, self.tz)
            for entry in self.weekly
            for week in (at - timedelta(days=7), at)
        ]
        current = [s for s in candidates if s.covers(at)]
        return max(current, key=lambda s: s.start) if current else None


@dataclass(frozen=True)
class DutyRoom:
    """A town's or street's own duty room (乡镇值班室) with its 1+1+X rota; the county's is Site.duty."""

    area: str
    name: str
    rota: DutyRota
    phone: str | None = None
