"""``jiaoying scheduler``: the production timer loop. Runs the engine's scheduler pass every
``interval`` seconds and wakes the Celery workers when there is work. Two of them may run at
once (e.g. during a deploy): claims are row locks, so they never take the same step."""

from __future__ import annotations

import logging
import signal
import threading

from ..channels.simulator import SimOutbox
from ..clock import system_clock
from ..config import Settings
from ..db.queue import queued_up_to
from ..db.session import transaction
from .embedded import default_adapters
from .engine import Engine

log = logging.getLogger("jiaoying.scheduler")
WAKE_AT_MOST = 4  # workers woken after a pass that left attempts queued: one per claim's worth, up to this


def run_scheduler(settings: Settings, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    from .celery_app import kick
    from .wakeup import SchedulerWait

    stop = stop or threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, lambda *_: stop.set())
    outbox = SimOutbox()
    engine = Engine(settings, system_clock(settings), default_adapters(settings, outbox), name=None,
                    on_work=lambda: kick(2))
    pause = SchedulerWait(settings.broker_url, stop)  # a posted warning rings it: no waiting for the next pass
    log.info("scheduler started (every %.1f s, or when the API rings)", interval)
    rung = False
    try:
        while not stop.is_set():
            try:
                engine.tick(rung=rung)
                with transaction(settings.database_url) as session:
                    queued = queued_up_to(session, WAKE_AT_MOST * engine.batch)
                if queued:
                    kick(min(WAKE_AT_MOST, 1 + queued // engine.batch))
            except Exception:
                log.exception("scheduler pass failed; retrying")
            rung = pause.wait(interval)
    finally:
        engine.close()
