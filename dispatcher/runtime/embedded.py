"""The embedded runtime: a scheduler thread and a worker thread inside ``jiaoying serve``.

Each thread owns an Engine (its own event loop and adapter clients). The worker sleeps until it
is kicked — by intake after a commit, or by the scheduler after it queued work — and at least
once a second regardless, so a lost kick only delays. While attempts are queued but held back (a
rate limit's next slot, a person called less than the callee spacing ago) it looks again every
``HELD_POLL`` seconds, as a Celery worker does: a call whose spacing ends must go then, not up to a
second later, or every later call to that person slips with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from ..channels.registry import build_adapters
from ..channels.simulator import SimOutbox
from ..config import Settings
from .engine import AdapterFactory, Engine

log = logging.getLogger("jiaoying.embedded")
HELD_POLL = 0.05  # seconds


class EmbeddedRuntime:
    def __init__(self, settings: Settings, clock: Callable[[], datetime], adapters: AdapterFactory,
                 interval: float = 1.0) -> None:
        self.settings, self.clock, self.adapters, self.interval = settings, clock, adapters, interval
        self._stop = threading.Event()
        self._work = threading.Event()
        self._tick = threading.Event()
        self._threads: list[threading.Thread] = []

    def kick(self) -> None:
        """New work may be waiting: a warning was stored, a step was brought forward or recalled."""
        self._tick.set()
        self._work.set()

    def start(self) -> None:
        for name, target in (("jiaoying-scheduler", self._scheduler), ("jiaoying-worker", self._worker)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.kick()
        for thread in self._threads:
            thread.join(timeout=10)

    def _scheduler(self) -> None:
        engine = Engine(self.settings, self.clock, self.adapters, name="embedded", on_work=self._work.set)
        try:
            while not self._stop.is_set():
                try:
                    if engine.tick().queued_work:
                        self._work.set()
                except Exception:
                    log.exception("scheduler pass failed; retrying")
                self._tick.wait(self.interval)
                self._tick.clear()
        finally:
            engine.close()

    def _worker(self) -> None:
        engine = Engine(self.settings, self.clock, self.adapters, name="embedded")
        held = False
        try:
            while not self._stop.is_set():
                self._work.wait(HELD_POLL if held else self.interval)
                self._work.clear()
                try:
                    engine.drain(patience=1.0)  # keep pacing rate-limited channels
                    held = engine.waiting()
                except Exception:
                    log.exception("worker pass failed; retrying")
        finally:
            engine.close()


def default_adapters(settings: Settings, outbox: SimOutbox | None = None) -> AdapterFactory:
    """Real adapters where credentials are set, simulators otherwise (recording into ``outbox``)."""
    box = outbox if outbox is not None else SimOutbox()
    return lambda: build_adapters(settings, box, sim_endpoint=settings.simulator_url or None)
