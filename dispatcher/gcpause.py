"""Python's cyclic garbage collector: paused while a big structure is built, tuned for services.

Reading a county of 60,000 officials builds millions of objects that stay alive; the collector runs
every few hundred allocations and, as they pile up, walks more and more of them. Checking the site
files, syncing them, reading the site back and previewing a warning take several times as long
with it running (the preview's ``describe`` of 59,386 call-outs: 8.8 s with it, 2.1 s without).
What these build is freed by reference counting; a cycle made meanwhile is collected when the
collector resumes, and the objects still alive then are walked once (about 1 s at 60,000 people,
charged to whatever runs next) instead of at every pass.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A long-running process (``jiaoying serve``, ``jiaoying scheduler``, a Celery worker process, an API
# process) collects its youngest generation every SERVICE_THRESHOLD new container objects instead of
# the default 700. A fan-out of 20,000 attempts makes hundreds of thousands of short-lived objects
# (rows, messages, asyncio handles) while the process holds a large live heap (the county's site,
# SQLAlchemy's caches); at the default threshold the full collections that follow walked that heap
# 19 times in one 10,000-official fan-out, 3 of its 9 seconds (bench/fanout.py --offline-only).
# Cyclic garbage waits a little longer to be freed: at most this many objects' worth.
SERVICE_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0  # pauses in progress, in all threads
_resume = False  # whether the collector was running when the first of them began


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off for the duration (nested and concurrent pauses end with the last one)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()


def tune_for_service() -> None:
    """Set the collector for a long-running service process: everything alive at start-up (modules,
    the ORM's mappers, the web app) moved out of the collector's reach (``gc.freeze``), and the
    youngest generation collected every ``SERVICE_THRESHOLD`` allocations. Call it once the process
    has built its app, not from library code (tests keep the defaults)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVICE_THRESHOLD, older, oldest)
