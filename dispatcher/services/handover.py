"""The last look before a hand-over, and the lease of a batch in flight.

A worker claims a batch and then spends seconds (a slow provider, a paced channel) handing it
over. Two things can change meanwhile, and either must stop a message that has not gone yet:

- the call-out was acknowledged or cancelled (the duty officer's phone call, a reply on another
  channel): an alert or reminder now would wake someone for nothing;
- the worker's lease was lost (it stalled past the lease and the scheduler re-queued the attempt,
  so another worker may be sending it).

``HandOverGuard.clear`` is awaited just before each hand-over. A look younger than ``FRESH`` (the
claim itself is one: it took only attempts still queued, and read their call-outs' state in the
same transaction) lets it go at once; otherwise concurrent hand-overs share one database check:
each waits for a check that *started after it asked*, so the answer is never older than the caller,
and a burst of 64 hand-overs costs one query. So nothing goes out more than ``FRESH`` after its
call-out was answered, and a fan-out handed over right after its claim costs no second query.
While the batch is in flight the guard also renews the lease of the attempts still held, so a live
worker's lease never runs out, however long the batch takes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

log = logging.getLogger("jiaoying.handover")

# Reasons a hand-over is stopped.
LEASE_LOST = "lease_lost"
ANSWERED = "answered"
# A look at most this old (seconds, monotonic) still clears a hand-over. Well within the promise that
# an acknowledgement stops the official's pending steps within 1 s; a lease (60 s, renewed) cannot
# run out in this time.
FRESH = 0.25

Check = Callable[[list[int]], dict[int, str]]  # attempt ids -> {id: reason} for those to stop
Renew = Callable[[list[int]], set[int]]  # attempt ids -> those this worker no longer holds


class HandOverStopped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HandOverGuard:
    def __init__(self, check: Check, renew: Renew | None = None, renew_every: float = 15.0) -> None:
        self._check, self._renew, self.renew_every = check, renew, renew_every
        self._asking: set[int] = set()
        self._next: asyncio.Future[dict[int, str]] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._held: set[int] = set()
        self._stopped: dict[int, str] = {}  # found by a look or a lease renewal: never handed over
        self._fresh_until: dict[int, float] = {}

    def hold(self, attempt_ids: Iterable[int]) -> None:
        self._held.update(attempt_ids)

    def looked(self, attempt_id: int, at: float, stop: str | None = None) -> None:
        """What a look made at ``at`` (time.monotonic()) found, e.g. the claim's: ``stop`` holds the
        attempt for good; else its hand-over may go without another look until ``at + FRESH``."""
        if stop is not None:
            self._stopped[attempt_id] = stop
        elif at > self._fresh_until.get(attempt_id, 0.0):
            self._fresh_until[attempt_id] = at + FRESH

    def release(self, attempt_id: int) -> None:
        self._held.discard(attempt_id)

    async def clear(self, attempt_id: int) -> None:
        """Return if the attempt may be handed over now; raise HandOverStopped if not."""
        if attempt_id in self._stopped:
            raise HandOverStopped(self._stopped[attempt_id])
        if time.monotonic() < self._fresh_until.get(attempt_id, 0.0):
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        self._asking.add(attempt_id)
        future = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())
        stopped = await asyncio.shield(future)
        reason = stopped.get(attempt_id) or self._stopped.get(attempt_id)
        if reason:
            raise HandOverStopped(reason)

    async def _run(self) -> None:
        while self._next is not None:
            future, asking = self._next, sorted(self._asking)
            self._next, self._asking = None, set()
            started = time.monotonic()
            try:
                stopped = await asyncio.to_thread(self._check, asking)
            except Exception:  # the database is away: nobody could have answered or taken the lease
                log.warning("hand-over check failed; sending %d attempt(s) unchecked", len(asking), exc_info=True)
                stopped = {}
            else:
                for attempt_id in asking:
                    self.looked(attempt_id, started, stopped.get(attempt_id))
            future.set_result(stopped)

    async def renew(self) -> None:
        """Extend the lease of every attempt still held; note the ones this worker lost."""
        if self._renew is None or not self._held:
            return
        for attempt_id in await asyncio.to_thread(self._renew, sorted(self._held)):
            self._stopped[attempt_id] = LEASE_LOST

    async def keep_leases(self, done: asyncio.Event) -> None:
        """Renew on time even while no hand-over asks (a long wait for paced slots)."""
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), timeout=self.renew_every)
            except TimeoutError:
                try:
                    await self.renew()
                except Exception:
                    log.warning("lease renewal failed; trying again in %.0f s", self.renew_every, exc_info=True)
