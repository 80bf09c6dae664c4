"""The simulator: an adapter for every channel that records what would be sent.

Without an endpoint it only writes to a shared ``SimOutbox`` (the demo's simulated people
subscribe to it). With an endpoint it also POSTs each message to a loopback HTTP server
(tests/fakes/simserver.py), so each attempt costs one real round trip, as with a provider.

A number can be left unanswered (``SimOutbox.leave_unanswered``): a call to it is placed and rings
out — ``SimSent.answered`` is False — and whoever plays the provider's callback (the demo's people,
a test) reports the no-answer, which calls the person's next number.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..domain.channels import Channel
from .base import (
    Address,
    ChannelAdapter,
    ChannelError,
    OutboundMessage,
    SendResult,
    TransientError,
    error_for_status,
    parse_retry_after,
)
from .http import LoopSession, Reply
from .registry import AdapterDeps, register

__all__ = ["SimOutbox", "SimSent", "SimulatorAdapter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimSent:
    message: OutboundMessage
    provider_id: str
    at_monotonic: float
    answered: bool = True  # False: a call to a number left unanswered (it rings out)


Listener = Callable[[SimSent], None]


# The most recent sends an outbox keeps (~1.5 KB each with its message: ~75 MB). A serve running on
# the simulators for weeks kept every message of every fan-out before (30 MB per 10,000 officials);
# a lookup of an earlier try's key is minutes old at most.
KEEP = 50_000


class SimOutbox:
    """The messages the simulators sent, in order: the last ``keep`` of them. Safe to share across
    threads and channels."""

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._sent: deque[SimSent] = deque()
        self._by_key: dict[str, list[SimSent]] = {}
        self._listeners: list[Listener] = []
        self._unanswered: set[str] = set()

    def leave_unanswered(self, *numbers: str) -> None:
        """Calls to these numbers (E.164) ring out: nobody picks up."""
        with self._lock:
            self._unanswered.update(numbers)

    def answers(self, number: str | None) -> bool:
        with self._lock:
            return number not in self._unanswered

    def record(self, message: OutboundMessage, provider_id: str) -> SimSent:
        answered = message.channel is not Channel.VOICE or self.answers(message.to.phone)
        sent = SimSent(message, provider_id, time.monotonic(), answered)
        with self._lock:
            self._sent.append(sent)
            self._by_key.setdefault(message.key, []).append(sent)
            if len(self._sent) > self._keep:
                self._forget(self._sent.popleft())
            listeners = list(self._listeners)
        for listener in listeners:  # outside the lock: a listener may read the outbox
            try:
                listener(sent)
            except Exception:  # a simulated person's bug must not fail the send
                log.exception("simulator listener failed for %s", message.key)
        return sent

    def _forget(self, old: SimSent) -> None:
        """Drop the oldest send from the look-up by key too (it is its key's first: sends are in order)."""
        same = self._by_key.get(old.message.key, [])
        if same and same[0] is old:
            same.pop(0)
        if not same:
            self._by_key.pop(old.message.key, None)

    def messages(self) -> list[SimSent]:
        with self._lock:
            return list(self._sent)

    def by_key(self, key: str) -> list[SimSent]:
        """Every send with this attempt key: normally none or one; more is a double send."""
        with self._lock:
            return list(self._by_key.get(key, ()))

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
            self._by_key.clear()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every message sent from now on. Returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def __len__(self) -> int:
        with self._lock:
            return len(self._sent)


class SimulatorAdapter(ChannelAdapter):
    """Fails on demand: ``fail_next(n, error)`` for an outage, ``failures={person_id or number: error}``
    for one person (or one of their numbers) whose every message fails (an invalid number, say)."""

    provider = "simulator"
    can_look_up = True

    def __init__(self, channel: Channel, outbox: SimOutbox, endpoint: str | None = None, *,
                 failures: Mapping[str, ChannelError] | None = None, timeout: float = 10.0) -> None:
        # One class serves every channel, so the port's class-level `channel` is set per instance.
        self.channel = channel
        self.outbox = outbox
        self.endpoint = endpoint
        self.failures: dict[str, ChannelError] = dict(failures or {})
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: list[ChannelError] = []
        self._http = LoopSession(timeout)

    def fail_next(self, n: int = 1, error: ChannelError | None = None) -> None:
        """The next ``n`` sends raise ``error`` (default: a TransientError, as in an outage)."""
        error = error or TransientError(f"simulated {self.channel} outage")
        with self._lock:
            self._pending.extend(error for _ in range(n))

    async def send(self, message: OutboundMessage) -> SendResult:
        self._maybe_fail(message)
        if self.endpoint is None:
            provider_id = f"sim-{self.channel}-{next(self._seq)}"
        else:
            provider_id = await self._post(message)
        self.outbox.record(message, provider_id)
        return SendResult(provider_id)

    async def lookup(self, key: str, to: Address | None = None) -> SendResult | None:
        if self.endpoint is None:
            mine = [s for s in self.outbox.by_key(key) if s.message.channel == self.channel]
            return SendResult(mine[0].provider_id) if mine else None
        response = await self._request("GET", params={"key": key})
        return None if response.status_code == 404 else SendResult(_provider_id(_checked(response)))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _maybe_fail(self, message: OutboundMessage) -> None:
        with self._lock:
            error = self._pending.pop(0) if self._pending else self._refused(message)
        if error is not None:
            raise copy.copy(error)  # a fresh instance each time, so tracebacks don't pile up

    def _refused(self, message: OutboundMessage) -> ChannelError | None:
        return self.failures.get(message.to.person_id) or self.failures.get(message.to.phone or "")

    async def _post(self, message: OutboundMessage) -> str:
        body = {"key": message.key, "channel": message.channel.value, "to": message.to.person_id,
                "purpose": message.purpose.value, "text": message.text}
        data = json.dumps(body, ensure_ascii=False).encode()  # cheaper than aiohttp's json=
        return _provider_id(_checked(await self._request("POST", data=data, headers=_JSON)))

    async def _request(self, method: str, **kwargs: Any) -> Reply:
        assert self.endpoint is not None
        try:
            return await self._http.request(method, self.endpoint, **kwargs)
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
            raise TransientError(f"simulator endpoint timed out: {exc!r}") from exc
        except aiohttp.ClientError as exc:
            raise TransientError(f"simulator endpoint unreachable: {exc!r}") from exc


_JSON = {"Content-Type": "application/json"}


def _checked(response: Reply) -> Reply:
    if error := error_for_status(response.status_code, f"simulator endpoint answered {response.status_code}",
                                 _retry_after(response)):
        raise error
    return response


def _provider_id(response: Reply) -> str:
    try:
        return str(response.json()["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TransientError(f"simulator endpoint gave no id: {response.text[:200]!r}") from exc


def _retry_after(response: Reply) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


class BatchSimulatorAdapter(SimulatorAdapter):
    """A batch provider's simulator (as Aliyun's SendBatchSms or Tencent's SendSms are): up to
    ``batch_size`` messages per request, one outcome per message — a person in ``failures`` fails
    only their own; ``fail_next`` fails a whole request. ``requests`` counts the requests, with
    their monotonic time, for tests and the rate-limit bench."""

    batch_size = 100

    def __init__(self, channel: Channel, outbox: SimOutbox, *, batch_size: int = 100,
                 failures: Mapping[str, ChannelError] | None = None) -> None:
        super().__init__(channel, outbox, failures=failures)
        self.batch_size = batch_size  # type: ignore[misc]  # per instance, as the channel is
        self.requests: list[tuple[float, int]] = []

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        if len(messages) > self.batch_size:
            raise ValueError(f"{len(messages)} messages in one request; the batch holds {self.batch_size}")
        with self._lock:
            whole = self._pending.pop(0) if self._pending else None
            self.requests.append((time.monotonic(), len(messages)))
        if whole is not None:
            return [whole] * len(messages)
        outcomes: list[SendResult | ChannelError] = []
        for message in messages:
            refused = self._refused(message)
            if refused is not None:
                outcomes.append(refused)
                continue
            provider_id = f"sim-batch-{self.channel}-{next(self._seq)}"
            self.outbox.record(message, provider_id)
            outcomes.append(SendResult(provider_id))
        return outcomes


def _simulator_factory(channel: Channel) -> Callable[[AdapterDeps], ChannelAdapter]:
    def build(deps: AdapterDeps) -> ChannelAdapter:
        return SimulatorAdapter(channel, deps.outbox, deps.sim_endpoint)

    return build


for _channel in Channel:
    register(_channel, SimulatorAdapter.provider, adapter=SimulatorAdapter)(_simulator_factory(_channel))
