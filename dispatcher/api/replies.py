"""SMS replies of concurrent requests, written together: one writer thread per API process, one
transaction per batch (services.replies.take_replies). Under a burst each transaction carries the
hundreds of replies that arrived while the previous one was written; a reply is answered only once
its batch is committed, so a failure fails every reply in it and the provider retries them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..db.session import lost_a_race, transaction
from ..services.replies import InboundOutcome, IncomingReply, take_replies

log = logging.getLogger("jiaoying.replies")

RACE_TRIES = 3  # tries of a batch that lost a deadlock or a serialization race (db.session.lost_a_race)


class ReplyBatcher:
    """``take`` returns a reply's outcome once its batch is committed."""

    def __init__(self, database_url: str, clock: Callable[[], datetime], limit: int = 500) -> None:
        self.url, self.clock, self.limit = database_url, clock, limit
        self._waiting: list[tuple[IncomingReply, asyncio.Future[InboundOutcome], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    async def take(self, reply: IncomingReply) -> InboundOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[InboundOutcome] = loop.create_future()
        with self._lock:
            self._waiting.append((reply, future, loop))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jiaoying-replies", daemon=True)
                self._thread.start()
        self._wake.set()
        return await future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    batch, self._waiting = self._waiting[:self.limit], self._waiting[self.limit:]
                if not batch:
                    break
                try:
                    outcomes = self._write(batch)
                except Exception as exc:  # nothing of the batch was kept: each request answers the error
                    log.warning("a batch of %d replies could not be written: %s", len(batch), exc)
                    for _, future, loop in batch:
                        loop.call_soon_threadsafe(_fail, future, exc)
                    continue
                for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
                    loop.call_soon_threadsafe(_settle, future, outcome)

    def _write(self, batch: list[tuple[IncomingReply, asyncio.Future[InboundOutcome], asyncio.AbstractEventLoop]],
               ) -> list[InboundOutcome]:
        """One transaction per batch, on this thread: no request's unit of work could carry it. A
        batch that PostgreSQL rolled back to break a deadlock (another process's batch locking two
        records' heads the other way round) is written again: a provider that does not retry its
        webhook (Twilio) would otherwise lose those acknowledgements."""
        retrying = Retrying(retry=retry_if_exception(lost_a_race), stop=stop_after_attempt(RACE_TRIES),
                            before_sleep=_written_again, reraise=True)
        return retrying(self._write_once, [reply for reply, _, _ in batch])

    def _write_once(self, replies: list[IncomingReply]) -> list[InboundOutcome]:
        with transaction(self.url) as session:
            return take_replies(session, self.clock(), replies)


def _written_again(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("a batch of replies gave way to a concurrent writer (%s): written again",
             type(getattr(exc, "orig", exc)).__name__)


def _settle(future: asyncio.Future[InboundOutcome], outcome: InboundOutcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _fail(future: asyncio.Future[InboundOutcome], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
