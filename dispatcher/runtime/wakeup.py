"""Wake-ups in the production mode, which never make anyone wait on Redis.

- ``Waker`` publishes from a thread of its own: ``kick`` returns at once whatever the broker does,
  and kicks asked for while one is being published are merged into it (the Celery workers' wake-ups,
  runtime/celery_app.py, and the scheduler's bell below).
- ``SchedulerBell`` is what an API process of the production mode wakes after a commit that created
  work (a stored warning, a step brought forward): it pushes onto a Redis list that the
  ``jiaoying scheduler`` waits on (``SchedulerWait``) instead of sleeping its interval, so a posted
  warning's call-outs start at once rather than at the next pass (0.5 s later on average, up to a
  second). Redis away: the ring is dropped (logged, at most once a minute) and the scheduler sleeps
  its interval as before — the warning is in the database either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jiaoying.wakeup")
SCHEDULER_KEY = "jiaoying:scheduler:wake"
WARN_EVERY = 60.0  # seconds between two warnings that the broker cannot be reached


class Waker:
    """Publishes wake-ups from a thread of its own: ``kick`` returns at once, whatever the broker does."""

    def __init__(self, publish: Callable[[], None], unreachable: str = "work waits in the database") -> None:
        self._publish, self._unreachable = publish, unreachable
        self._wanted = 0
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_at = -WARN_EVERY

    def kick(self, fanout: int = 1) -> None:
        with self._lock:
            self._wanted = max(self._wanted, fanout)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jiaoying-waker", daemon=True)
                self._thread.start()
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait()
            self._event.clear()
            with self._lock:
                wanted, self._wanted = self._wanted, 0
            try:
                for _ in range(wanted):
                    self._publish()
            except Exception as exc:  # any broker failure: the work waits in the database
                if time.monotonic() - self._warned_at > WARN_EVERY:
                    self._warned_at = time.monotonic()
                    log.warning("cannot reach the broker for a wake-up (%s); %s", exc, self._unreachable)


def _client(broker_url: str, timeout: float) -> Any:
    import redis

    return redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=timeout)


class SchedulerBell:
    """The production API's runtime: it runs no engine, it only wakes the scheduler."""

    def __init__(self, broker_url: str) -> None:
        self._redis = _client(broker_url, 2.0)
        self._waker = Waker(self._ring, "the scheduler starts the work at its next pass")

    def kick(self) -> None:
        self._waker.kick()

    def start(self) -> None:
        """Nothing to start: the waker's thread starts with the first kick."""

    def stop(self) -> None:
        """Nothing to stop: a ring in flight is harmless."""

    def _ring(self) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(SCHEDULER_KEY, 1)
            pipe.ltrim(SCHEDULER_KEY, 0, 0)  # one waiting ring is as good as many
            pipe.expire(SCHEDULER_KEY, 60)  # a ring nobody took is gone within a minute
            pipe.execute()


class SchedulerWait:
    """The scheduler's pause between passes: until the bell rings, at most ``interval`` seconds."""

    def __init__(self, broker_url: str, stop: threading.Event) -> None:
        self._stop = stop
        self._redis = _client(broker_url, 5.0)
        self._warned_at = -WARN_EVERY

    def wait(self, interval: float) -> bool:
        """True when woken by a ring (or a stop); False when the interval ran out."""
        if self._stop.is_set():
            return True
        started = time.monotonic()
        try:
            rung = self._redis.blpop([SCHEDULER_KEY], timeout=interval) is not None
        except Exception as exc:  # Redis away: sleep the rest of the interval, as without a bell
            if time.monotonic() - self._warned_at > WARN_EVERY:
                self._warned_at = time.monotonic()
                log.warning("cannot wait for wake-ups on the broker (%s); passes every %.1f s", exc, interval)
            return self._stop.wait(max(0.0, interval - (time.monotonic() - started)))
        return rung or self._stop.is_set()
