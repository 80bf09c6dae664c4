"""The production runtime on Celery with a Redis broker.

Broker messages are only wake-ups: the database is the queue. ``send_due`` claims whatever is
queued (red first) and keeps itself going while work remains; the scheduler process publishes
wake-ups after each pass that queued work, so a flushed or restarted Redis loses nothing but a
few seconds. There are no ETA/countdown tasks: timers live in the database.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import lru_cache

from celery import Celery, signals

from ..channels.simulator import SimOutbox
from ..clock import system_clock
from ..config import get_settings
from .embedded import default_adapters
from .engine import Engine

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
        broker_transport_options={"visibility_timeout": 300},
        worker_hijack_root_logger=False,
    )
    return app


app = create_celery()


@signals.worker_init.connect
def _refuse_unsafe_secret(**_: object) -> None:
    """A worker signs acknowledgement links: it refuses to start with a secret anyone could know."""
    get_settings().require_safe_secret()


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
    engine = worker_engine()
    total = 0
    for _ in range(batches):
        sent = engine.send_batch()
        total += sent
        if sent < engine.batch and not engine.waiting():
            return total
        if not sent:
            time.sleep(0.05)  # held back by a rate limit: the next paced slot is near
    send_due.delay()
    return total


def kick(fanout: int = 1) -> None:
    """Wake the workers. A broker outage is logged, not raised: the work waits in the database."""
    try:
        for _ in range(fanout):
            send_due.apply_async(retry=False)
    except Exception as exc:  # any broker failure: the scheduler will wake them again later
        log.warning("cannot reach the broker to wake workers (%s); work waits in the database", exc)
