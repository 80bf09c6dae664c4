"""How a worker treats a struggling provider.

- Retries: a transient failure (timeout, 5xx, 429) is retried a few times with jittered exponential
  backoff, waiting at least the provider's Retry-After; permanent and configuration errors are not.
- Circuit breaker: after ``threshold`` failures in a row a channel is *open* for ``cooldown``
  seconds — its attempts are not handed over but wait until then (and the plan's next step, on
  another channel, runs now instead of waiting out the step timer); then one trial message decides
  whether it closes again.
- Halt: a configuration error (credentials refused, template not approved, account in arrears) is
  not the message's fault and will not pass by itself: the circuit opens at once, for
  ``HALT_COOLDOWN`` seconds between trials, with the provider's reason kept for the board and
  ``/readyz`` until a trial goes through.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ..domain.channels import Channel
from .base import SendResult, TransientError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Seconds between trial messages on a halted provider: long enough not to hammer an account that
# refuses us, short enough that a fixed credential is noticed within a minute.
HALT_COOLDOWN = 60.0


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False
    halted: str | None = None  # why a configuration error halted the provider


@dataclass(frozen=True)
class Halt:
    reason: str
    since: float  # on the breaker's clock


class CircuitBreaker:
    # A short cooldown: an open circuit holds messages back (they wait, they are not failed), and a
    # two-second burst of provider errors once held a warning's first alerts back 30 s. One trial
    # message every few seconds is a cheap question to ask a provider that may be back.
    def __init__(self, threshold: int = 5, cooldown: float = 5.0, now: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.cooldown, self._now = threshold, cooldown, now
        self._circuits: dict[Channel, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, channel: Channel) -> BreakerState:
        with self._lock:
            return self._state(self._circuits.setdefault(channel, _Circuit()))

    def _cooldown(self, c: _Circuit) -> float:
        return HALT_COOLDOWN if c.halted is not None else self.cooldown

    def _state(self, c: _Circuit) -> BreakerState:
        if c.opened_at is None:
            return BreakerState.CLOSED
        return BreakerState.OPEN if self._now() - c.opened_at < self._cooldown(c) else BreakerState.HALF_OPEN

    def retry_in(self, channel: Channel) -> float:
        """Seconds until an open circuit lets a trial through (0 when it would now)."""
        with self._lock:
            c = self._circuits.setdefault(channel, _Circuit())
            return 0.0 if c.opened_at is None else max(0.0, self._cooldown(c) - (self._now() - c.opened_at))

    def halt(self, channel: Channel, reason: str) -> None:
        """A configuration error: open now, whatever the count, and keep the reason."""
        with self._lock:
            c = self._circuits.setdefault(channel, _Circuit())
            c.trial, c.failures, c.opened_at = False, max(c.failures, self.threshold), self._now()
            c.halted = reason[:300]

    def halted(self) -> dict[Channel, Halt]:
        """The channels halted by a configuration error, with the reason."""
        with self._lock:
            return {channel: Halt(c.halted, c.opened_at or 0.0) for channel, c in self._circuits.items()
                    if c.halted is not None}

    def allow(self, channel: Channel) -> bool:
        """May a message go out on this channel now? In half-open state one trial at a time."""
        with self._lock:
            c = self._circuits.setdefault(channel, _Circuit())
            state = self._state(c)
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not c.trial:
                c.trial = True
                return True
            return False

    def record(self, channel: Channel, ok: bool) -> None:
        with self._lock:
            c = self._circuits.setdefault(channel, _Circuit())
            c.trial = False
            if ok:
                c.failures, c.opened_at, c.halted = 0, None, None
                return
            c.failures += 1
            if c.failures >= self.threshold or c.opened_at is not None:
                c.opened_at = self._now()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0

    def delay(self, failures: int, exc: BaseException | None) -> float:
        """Jittered exponential backoff after ``failures`` failed tries, or the provider's Retry-After."""
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (failures - 1)))
        retry_after = getattr(exc, "retry_after", None) or 0.0
        return max(backoff, min(float(retry_after), self.cap * 4))

    async def call(self, send: Callable[[], Awaitable[SendResult]]) -> SendResult:
        # The first try goes straight: nearly every message succeeds at once, and the retry
        # machinery costs tens of microseconds a message in a 20,000-message fan-out.
        try:
            return await send()
        except TransientError as exc:
            if self.attempts <= 1:
                raise
            first = exc
        await asyncio.sleep(self.delay(1, first))

        def wait(state: RetryCallState) -> float:  # tenacity counts from here: this is failure n + 1
            return self.delay(state.attempt_number + 1, state.outcome.exception() if state.outcome else None)

        async for attempt in AsyncRetrying(stop=stop_after_attempt(self.attempts - 1), wait=wait,
                                           retry=retry_if_exception_type(TransientError), reraise=True):
            with attempt:
                return await send()
        raise AssertionError("unreachable")
