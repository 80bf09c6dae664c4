"""The clock every runtime uses. Real UTC time, optionally shifted by the number of seconds in
``JIAOYING_CLOCK_OFFSET_FILE`` — for tests that must move time forward across processes, and for
the demo's fast clock. Production leaves it unset."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .config import Settings


def system_clock(settings: Settings) -> Callable[[], datetime]:
    if not settings.clock_offset_file:
        return lambda: datetime.now(UTC)
    path = settings.clock_offset_file
    cache: dict[str, float] = {"mtime": -1.0, "offset": 0.0}

    def now() -> datetime:
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != cache["mtime"]:
                with open(path, encoding="ascii") as f:
                    cache["offset"], cache["mtime"] = float(f.read().strip() or 0), mtime
        except (OSError, ValueError):
            pass
        return datetime.now(UTC) + timedelta(seconds=cache["offset"])

    return now


def write_offset(path: str, seconds: float) -> None:
    """Atomically set the shared clock offset."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{seconds:.3f}")
    os.replace(tmp, path)
