"""Drills (演练): what a drill plays, the options it runs with, when a blind one starts, and the
figures of its report. Pure: no database, no clock of its own (times are arguments).

A drill is a warning the county plays on purpose. It goes through every real channel and every
message a recipient gets says 【演练】 (rendering's ``drill_prefix``); it is counted apart from real
warnings. Three kinds:

- ``blind`` (双盲): scheduled by an admin for a time, or a window in which the moment is drawn
  unseen; until it ends, only admins see on the board that it is a drill.
- ``announced``: started now (or scheduled) in the open; labelled 演练 everywhere from the start.
- ``posted``: a warning an agency posted with ``drill: true`` (CAP ``Exercise``/``Test``).

Options: ``broadcast`` (a drill orders the rural broadcast only when it asks for it) and
``without`` — channels (``sms``, ``voice``, ``im``, ``email``) or providers (``aliyun``, ``tencent``,
``twilio``, ``smtp``) taken out for the drill's call-outs only (断网断电断通讯), so that the drill
proves the fallback path: their attempts fail as if the provider were down, never sending.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .channels import Channel
from .hazards import Hazard, Level

# The bars a drill is held to (SPEC 7; /work reference performance-and-reliability): everyone's first
# call within 3 minutes, everyone woken (acknowledged) within 5.
BARS_MINUTES = (3, 5)
DEFAULT_LENGTH = timedelta(hours=2)  # a drill's warning expires this long after it starts, unless told
LONGEST = timedelta(hours=24)
SHORTEST = timedelta(minutes=5)
FARTHEST_AHEAD = timedelta(days=366)  # a drill is scheduled at most this far ahead
# A scheduled drill the engine reaches later than this after its time (it was down) is not started late.
CATCH_UP = timedelta(minutes=10)
OUTAGE = "drill outage"  # how an attempt's error begins when the drill took its channel or provider out


class DrillKind(StrEnum):
    BLIND = "blind"  # 双盲: admins only, until it ends
    ANNOUNCED = "announced"  # in the open from the start
    POSTED = "posted"  # an agency's warning with drill: true

    @property
    def zh(self) -> str:
        return {"blind": "双盲演练", "announced": "公开演练", "posted": "接入演练预警"}[self.value]


class DrillState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time
    RUNNING = "running"  # its warning is out
    ENDED = "ended"  # every call-out settled, an admin ended it, or it expired: revealed
    MISSED = "missed"  # the engine was away past CATCH_UP: not started late
    CANCELLED = "cancelled"  # called off before it started

    @property
    def zh(self) -> str:
        return {"scheduled": "待开始", "running": "进行中", "ended": "已结束", "missed": "错过未执行",
                "cancelled": "已撤销"}[self.value]


class Ending(StrEnum):
    SETTLED = "settled"  # every call-out acknowledged or closed
    ENDED = "ended"  # an admin ended it
    EXPIRED = "expired"  # its warning ran out
    CANCELLED = "cancelled"  # its warning was cancelled (an admin, or the agency that posted it)

    @property
    def zh(self) -> str:
        return {"settled": "全部叫应已结束", "ended": "管理员结束演练", "expired": "演练时限已到",
                "cancelled": "演练预警已取消"}[self.value]


class DrillError(ValueError):
    """A drill cannot be scheduled or started as asked; the message names the field and what is
    accepted (the board and the CLI show it as it is)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Scenario:
    """The warning a drill plays: as an agency would post it (the JSON form's fields)."""

    hazard: Hazard
    level: Level
    areas: tuple[str, ...]
    headline: str
    description: str = ""
    instruction: str = ""
    zones: tuple[str, ...] = ()
    sender: str = "jiaoying"  # plans that name senders match on it; a blind drill may play a real source


@dataclass(frozen=True)
class Options:
    broadcast: bool = False  # order the rural broadcast (where the matched plans have one)
    without: tuple[str, ...] = ()  # channels or providers taken out for this drill's call-outs
    length: timedelta = DEFAULT_LENGTH  # it expires this long after it starts

    def cuts(self, channel: str, provider: str | None = None) -> bool:
        """Whether this drill took out the channel (or the one provider) a message would go by."""
        return channel in self.without or (provider is not None and provider in self.without)


def check_without(names: Iterable[str], providers: Iterable[str]) -> tuple[str, ...]:
    """The ``without`` option, normalised (lower case, once each, in order); DrillError naming what
    is accepted for a name that is neither a channel nor a provider."""
    known_providers = sorted(set(providers) - {c.value for c in Channel} - {"simulator"})
    out: list[str] = []
    for i, raw in enumerate(names):
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in {c.value for c in Channel} and name not in known_providers:
            raise DrillError(f"without[{i}]", (
                f"{str(raw)[:40]!r} is neither a channel nor a provider; accepted channels: "
                f"{', '.join(c.value for c in Channel)}; providers: {', '.join(known_providers)}"))
        if name not in out:
            out.append(name)
    if set(out) >= {c.value for c in Channel}:
        raise DrillError("without", "every channel taken out: nobody could be reached; leave at least one")
    return tuple(out)


def check_length(length: timedelta) -> timedelta:
    if not SHORTEST <= length <= LONGEST:
        raise DrillError("length", f"{_minutes(length)} min: a drill runs from {_minutes(SHORTEST)} min to "
                                   f"{_minutes(LONGEST)} min ({LONGEST.total_seconds() / 3600:g} h)")
    return length


def check_time(at: datetime, now: datetime, name: str = "at") -> datetime:
    """A scheduled time: with an offset, after now, and not more than a year ahead."""
    if at.utcoffset() is None:
        raise DrillError(name, f"{at.isoformat()} must carry a UTC offset, e.g. 2026-07-20T09:30:00+08:00")
    if at <= now:
        raise DrillError(name, f"{at.isoformat()} is not in the future (now {now.isoformat()}); "
                               "to start a drill now, start it (announced) instead of scheduling it")
    if at - now > FARTHEST_AHEAD:
        raise DrillError(name, f"{at.isoformat()} is more than {FARTHEST_AHEAD.days} days ahead")
    return at


def pick_moment(start: datetime, end: datetime, key: bytes, drill_id: str) -> datetime:
    """The moment a blind drill with a window starts: drawn from the deployment's secret and the
    drill's id, to the second, anywhere in [start, end). Nobody reading the schedule — the board
    shows admins the window, never the moment — can tell when it comes."""
    span = int((end - start).total_seconds())
    if span <= 0:
        return start
    digest = hmac.new(key, f"jiaoying drill moment {drill_id}".encode(), hashlib.sha256).digest()
    return start + timedelta(seconds=int.from_bytes(digest[:8], "big") % span)


def _minutes(value: timedelta) -> str:
    return f"{value.total_seconds() / 60:g}"


# -- the report's figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """One official in a drill: when they were first reached and acknowledged, and by what."""

    person_id: str
    name: str
    state: str
    reached_s: float | None  # seconds from the drill's start to the first message delivered or sent to them
    acked_s: float | None  # … to their acknowledgement
    channel: str | None  # the channel that first reached them
    provider: str | None  # … and its provider
    step: int | None  # the plan step that first reached them
    planned: tuple[str, ...] = ()  # the channels of their first step (step 0)
    planned_s: float = 0.0  # when step 0 was due, seconds from the start (0: at once)
    ack_via: str | None = None
    town: str = ""

    @property
    def reached(self) -> bool:
        return self.reached_s is not None

    def took_over(self, without: Sequence[str]) -> bool:
        """Reached by something else than what their first step planned, because the drill took it out."""
        return self.channel is not None and bool(without) and (
            any(c in without for c in self.planned) or (self.provider or "") in without) and (
            self.channel not in self.planned or self.step not in (0, None))

    @property
    def later_s(self) -> float | None:
        """How much later than the planned first step they were reached."""
        return None if self.reached_s is None else max(0.0, self.reached_s - self.planned_s)


@dataclass(frozen=True)
class Figures:
    called: int
    reached: int
    acknowledged: int
    reached_within: tuple[int, ...]  # per BARS_MINUTES
    acked_within: tuple[int, ...]
    reach_median_s: float | None
    reach_p90_s: float | None
    ack_median_s: float | None
    ack_p90_s: float | None
    bars: tuple[int, ...] = BARS_MINUTES

    def pct(self, part: int) -> float | None:
        return round(100 * part / self.called, 1) if self.called else None

    @property
    def reached_pct(self) -> float | None:
        return self.pct(self.reached)

    def met(self) -> tuple[bool, bool]:
        """(everyone reached within the first bar, everyone acknowledged within the second)."""
        return (self.called > 0 and self.reached_within[0] == self.called,
                self.called > 0 and self.acked_within[-1] == self.called)


def figures(people: Sequence[Reach], bars: Sequence[int] = BARS_MINUTES) -> Figures:
    reach = sorted(p.reached_s for p in people if p.reached_s is not None)
    acks = sorted(p.acked_s for p in people if p.acked_s is not None)
    return Figures(
        called=len(people), reached=len(reach), acknowledged=len(acks),
        reached_within=tuple(sum(1 for s in reach if s <= m * 60) for m in bars),
        acked_within=tuple(sum(1 for s in acks if s <= m * 60) for m in bars),
        reach_median_s=percentile(reach, 50), reach_p90_s=percentile(reach, 90),
        ack_median_s=percentile(acks, 50), ack_p90_s=percentile(acks, 90), bars=tuple(bars))


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile of sorted ``values`` (None when empty): p50 of 1..10 is 5."""
    if not values:
        return None
    rank = max(1, -(-len(values) * pct // 100))
    return values[min(len(values), int(rank)) - 1]


@dataclass(frozen=True)
class Failure:
    """One attempt of a drill that did not go: the drill's own outage, or the provider's refusal."""

    person_id: str
    name: str
    channel: str
    provider: str
    step: int
    purpose: str
    error: str
    at: datetime | None
    imposed: bool  # the drill took this channel or provider out


@dataclass(frozen=True)
class Comparison:
    """One drill in the table of drills beside each other."""

    id: str
    record: str
    at: datetime
    headline: str
    kind: str
    figures: Figures
    without: tuple[str, ...] = field(default_factory=tuple)
