"""Provider limits as the site configures them: how fast each channel may go.

Written ``sms=10/s,voice=3/s,im=20/min,email=10/s`` (JIAOYING_RATE_LIMITS). A channel without a
limit is unlimited. Per-callee spacing (JIAOYING_CALLEE_SPACING_SECONDS) keeps calls to one person
apart, as Chinese voice providers require (e.g. one call a minute to the same number).

Per-number limits (JIAOYING_NUMBER_LIMITS, ``voice=1/min,voice=5/h,voice=20/d,sms=10/d``): at
most ``count`` messages to one person on that channel in any window of that length, as the mainland
providers count them; several windows per channel. A message over one waits until it is under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from .channels import Channel, accepted_channels

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUMBER_UNITS = _UNITS | {"d": 86400.0}
_ITEM = re.compile(r"^\s*(\w+)\s*=\s*(\d+(?:\.\d+)?)\s*/\s*(\w+)\s*$")


@dataclass(frozen=True)
class RateLimit:
    count: float
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds

    def time_for(self, n: int) -> timedelta:
        """How long ``n`` messages take at this rate, the first going at once."""
        return timedelta(seconds=max(n - 1, 0) / self.per_second) if n else timedelta(0)

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "d"}.get(self.per_seconds, f"{self.per_seconds:g}s")
        return f"{self.count:g}/{unit}"


def parse_limits(text: str) -> dict[Channel, RateLimit]:
    """``sms=10/s,voice=3/s,im=20/min`` → limits; ValueError names the bad item."""
    limits: dict[Channel, RateLimit] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"rate limit {item!r}: write it as channel=count/unit, e.g. voice=3/s")
        name, count, unit = match.groups()
        try:
            channel = Channel(name)
        except ValueError:
            raise ValueError(
                f"rate limit {item!r}: unknown channel {name!r}; accepted: {accepted_channels()}") from None
        if unit not in _UNITS:
            raise ValueError(f"rate limit {item!r}: unknown unit {unit!r}; accepted: s, min, h")
        if float(count) <= 0:
            raise ValueError(f"rate limit {item!r}: the count must be positive")
        limits[channel] = RateLimit(float(count), _UNITS[unit])
    return limits


NumberLimits = dict[Channel, tuple[RateLimit, ...]]


def parse_number_limits(text: str) -> NumberLimits:
    """``voice=1/min,voice=5/h,sms=10/d`` → per channel, its windows (whole counts); ValueError names
    the bad item."""
    found: dict[Channel, list[RateLimit]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"number limit {item!r}: write it as channel=count/unit, e.g. voice=5/h")
        name, count, unit = match.groups()
        try:
            channel = Channel(name)
        except ValueError:
            raise ValueError(
                f"number limit {item!r}: unknown channel {name!r}; accepted: {accepted_channels()}") from None
        if unit not in _NUMBER_UNITS:
            raise ValueError(f"number limit {item!r}: unknown unit {unit!r}; accepted: s, min, h, d")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"number limit {item!r}: the count must be a whole number of at least 1")
        found.setdefault(channel, []).append(RateLimit(int(count), _NUMBER_UNITS[unit]))
    return {channel: tuple(limits) for channel, limits in found.items()}
