"""The production runtime on Celery with a Redis broker.

Broker messages are only wake-ups: the database is the queue. ``send_due`` claims whatever is
queued (red first) and keeps itself going while work remains; the scheduler process publishes
wake-ups after each pass that queued work. There are no ETA/countdown tasks: timers live in the
database.

The broker is never on the critical path:

- ``kick`` only sets a flag; one background thread per process publishes the wake-ups, so a
  scheduler pass never waits on Redis (a down broker once cost 6 s per wake-up, and a voice step
  ran 13 s late). Wake-ups asked for while one is being published are merged into it.
- Each worker process also looks at the database itself (``POLL_SECONDS``) whenever no wake-up
  has run a task lately, so sending goes on while Redis is away or flushed.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache

from celery import Celery, signals

from ..channels.simulator import SimOutbox
from ..clock import system_clock
from ..config import get_settings
from ..gcpause import tune_for_service
from ..services.providers import SIMULATOR_HINT, startup_problems
from .embedded import default_adapters
from .engine import Engine
from .wakeup import Waker

log = logging.getLogger("jiaoying.celery")
QUEUE = "jiaoying"


def create_celery(broker_url: str | None = None) -> Celery:
    settings = get_settings()
    app = Celery("jiaoying", broker=broker_url or settings.broker_url or "redis://127.0.0.1:6379/0")
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Wake-ups are cheap and idempotent; an old one left in Redis is harmless.
        broker_transport_options={"visibility_timeout": 300, "socket_connect_timeout": 2},
        broker_connection_timeout=2,
        worker_hijack_root_logger=False,
    )
    return app


app = create_celery()


@signals.worker_init.connect
def _refuse_unsafe_secret(**_: object) -> None:
    """A worker signs acknowledgement links: it refuses to start with a secret anyone could know;
    and in production it refuses to send a plan's channel to the simulator."""
    settings = get_settings()
    settings.require_safe_secret()
    problems = startup_problems(settings)
    if problems:
        raise RuntimeError("refusing to start: " + "; ".join(problems) + SIMULATOR_HINT * any(
            "no provider is configured" in p for p in problems))


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def worker_engine() -> Engine:
    """One engine per worker process, made after the fork."""
    settings = get_settings()
    outbox = SimOutbox()
    return Engine(settings, system_clock(settings), default_adapters(settings, outbox))


@app.task(name="jiaoying.send_due")
def send_due(batches: int = 20) -> int:
    """Send queued attempts; if more remain, wake another worker before returning."""
    total, more = _drain(batches)
    if more:
        kick()
    return total


# A worker process that has run no task for this long looks at the database itself.
POLL_SECONDS = 1.0
_waker = Waker(lambda: send_due.apply_async(retry=False),
               f"work waits in the database and workers keep looking every {POLL_SECONDS:.0f} s")


def kick(fanout: int = 1) -> None:
    """Wake the workers; never blocks (see Waker)."""
    _waker.kick(fanout)


_engine_lock = threading.Lock()
_last_task = [0.0]


def _drain(batches: int) -> tuple[int, bool]:
    """Send up to ``batches`` batches; (how many were claimed, whether more remains)."""
    engine = worker_engine()
    total = 0
    with _engine_lock:  # the task and the poller share this process's engine (one event loop)
        _last_task[0] = time.monotonic()
        for _ in range(batches):
            sent = engine.send_batch()
            total += sent
            if sent < engine.batch and not engine.waiting():
                return total, False
            if not sent:
                time.sleep(0.05)  # held back by a rate limit: the next paced slot is near
    return total, True


def _poll_database(stop: threading.Event) -> None:
    while not stop.wait(POLL_SECONDS):
        if time.monotonic() - _last_task[0] < POLL_SECONDS:
            continue  # wake-ups are arriving: the broker is doing its job
        try:
            _drain(20)
        except Exception:
            log.exception("worker's own look at the database failed; trying again")


@signals.worker_process_init.connect
def _start_polling(**_: object) -> None:
    """In each pool process, after the fork: keep sending while the broker is away (and collect
    garbage as a service does, see gcpause)."""
    tune_for_service()
    threading.Thread(target=_poll_database, args=(threading.Event(),), name="jiaoying-poll", daemon=True).start()
