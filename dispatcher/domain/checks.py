"""Routine checks (例行检查) the county runs itself, between warnings: the duty roll-call (值班点名)
and the 六问 spot-check (抽查). Who a roll-call calls is worked out in ``rollcall.py``; whom a
spot-check draws, and how its answers are read, in ``spotcheck.py``.

A roll-call calls whoever is on shift in the county duty room and in each town's duty room, and
each must answer within ``answer_within`` (keypress 1, a reply, or the link), or the room's duty
leader on shift is told (未到岗). It is a call-out like a warning's — the same attempts, keys,
timers and record — only its people come from the duty rota, not from a plan.

When roll-calls happen is the site's to say (checks.yaml): every day at fixed times, and/or once a
week at a minute nobody can foresee within a window (抽点). The weekly minute is drawn from a keyed
hash of the week, so every process, before and after a restart, draws the same minute, and reading
the site files does not tell it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from .channels import Channel
from .duty import DutyPosition


class CheckKind(StrEnum):
    ROLLCALL = "rollcall"  # 值班点名
    SPOTCHECK = "spotcheck"  # 六问抽查

    @property
    def zh(self) -> str:
        return {"rollcall": "值班点名", "spotcheck": "六问抽查"}[self.value]


class RollCallTarget(StrEnum):
    """What a roll-call calls in each duty room."""

    PEOPLE = "people"  # whoever is on shift there, on their own numbers (the default)
    # The room's own duty phone (duty.yaml ``phone``): one call, which only someone in the room can
    # answer, counted for the first of the positions called on shift there. A room without a phone
    # (the county's, or a town's with none) falls back to its people.
    DUTY_PHONE = "duty_phone"


@dataclass(frozen=True)
class WeeklyWindow:
    """Once a week, at a minute drawn within ``start``–``end`` (local time) on ``weekday`` (0 = Monday)."""

    weekday: int
    start: time
    end: time

    @property
    def minutes(self) -> int:
        return max(1, (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute))


@dataclass(frozen=True)
class RollCall:
    id: str
    name: str
    at: tuple[time, ...] = ()  # every day at these local times
    weekly: WeeklyWindow | None = None
    answer_within: timedelta = timedelta(minutes=10)
    channels: tuple[Channel, ...] = (Channel.VOICE, Channel.SMS)
    positions: tuple[DutyPosition, ...] = (DutyPosition.CHIEF, DutyPosition.STAFF)
    rooms: tuple[str, ...] = ()  # empty: the county room and every town room; else these (the county's code: its room)
    tell: tuple[Channel, ...] = (Channel.SMS, Channel.VOICE)  # how the room's leader is told of a missed answer
    call: RollCallTarget = RollCallTarget.PEOPLE

    def times_between(self, since: datetime, until: datetime, tz: tzinfo, key: bytes) -> list[datetime]:
        """The scheduled instants in (``since``, ``until``], oldest first."""
        found: list[datetime] = []
        day = since.astimezone(tz).date() - timedelta(days=1)
        last = until.astimezone(tz).date()
        while day <= last:
            candidates = [datetime.combine(day, t, tzinfo=tz) for t in self.at]
            if self.weekly is not None and day.weekday() == self.weekly.weekday:
                candidates.append(self.weekly_time(day, tz, key))
            found += [c for c in candidates if since < c <= until]
            day += timedelta(days=1)
        return sorted(set(found))

    def weekly_time(self, day: date, tz: tzinfo, key: bytes) -> datetime:
        """The drawn minute of the week containing ``day`` (the same for every process: keyed, not random)."""
        assert self.weekly is not None
        year, week, _ = day.isocalendar()
        digest = hmac.new(key, f"{self.id}:{year}-W{week:02d}".encode(), hashlib.sha256).digest()
        minute = int.from_bytes(digest[:4], "big") % self.weekly.minutes
        start = datetime.combine(day, self.weekly.start, tzinfo=tz)
        return start + timedelta(minutes=minute)


@dataclass(frozen=True)
class SpotCheck:
    """The 六问 spot-check (抽查): ``size`` grassroots responsible people drawn at random from those
    holding ``roles`` (spread over the towns, skipping anyone checked in the last ``skip_days``),
    each called with the ``questions`` and answering each 是 (1) or 否 (2) — by keypress on the call
    or by one SMS reply ("1 1 2 1 1 1", "是是否是是是") — within ``answer_within``."""

    id: str
    name: str
    questions: tuple[str, ...]
    roles: tuple[str, ...]
    size: int = 10
    skip_days: int = 30
    answer_within: timedelta = timedelta(minutes=30)
    channels: tuple[Channel, ...] = (Channel.VOICE, Channel.SMS)
