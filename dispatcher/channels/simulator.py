"""The simulator: an adapter for every channel that records what would be sent.

Without an endpoint it only writes to a shared ``SimOutbox`` (the demo's simulated people
subscribe to it). With an endpoint it also POSTs each message to a loopback HTTP server
(tests/fakes/simserver.py), so each attempt costs one real round trip, as with a provider.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..domain.channels import Channel
from .base import (
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from .registry import AdapterDeps, register

__all__ = ["SimOutbox", "SimSent", "SimulatorAdapter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimSent:
    message: OutboundMessage
    provider_id: str
    at_monotonic: float


Listener = Callable[[SimSent], None]


class SimOutbox:
    """Every message the simulators sent, in order. Safe to share across threads and channels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[SimSent] = []
        self._by_key: dict[str, list[SimSent]] = {}
        self._listeners: list[Listener] = []

    def record(self, message: OutboundMessage, provider_id: str) -> SimSent:
        sent = SimSent(message, provider_id, time.monotonic())
        with self._lock:
            self._sent.append(sent)
            self._by_key.setdefault(message.key, []).append(sent)
            listeners = list(self._listeners)
        for listener in listeners:  # outside the lock: a listener may read the outbox
            try:
                listener(sent)
            except Exception:  # a simulated person's bug must not fail the send
                log.exception("simulator listener failed for %s", message.key)
        return sent

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
    """Fails on demand: ``fail_next(n, error)`` for an outage, ``failures={person_id: error}`` for
    one person whose every message fails (an invalid number, say)."""

    provider = "simulator"

    def __init__(self, channel: Channel, outbox: SimOutbox, endpoint: str | None = None, *,
                 failures: Mapping[str, ChannelError] | None = None, timeout: float = 10.0) -> None:
        # One class serves every channel, so the port's class-level `channel` is set per instance.
        self.channel = channel
        self.outbox = outbox
        self.endpoint = endpoint
        self.failures: dict[str, ChannelError] = dict(failures or {})
        self._timeout = timeout
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: list[ChannelError] = []
        self._clients: _Clients | None = None

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

    async def lookup(self, key: str) -> SendResult | None:
        if self.endpoint is None:
            mine = [s for s in self.outbox.by_key(key) if s.message.channel == self.channel]
            return SendResult(mine[0].provider_id) if mine else None
        response = await self._request("GET", params={"key": key})
        return None if response.status_code == 404 else SendResult(_provider_id(_checked(response)))

    async def aclose(self) -> None:
        if self._clients is not None:
            clients, self._clients = self._clients, None
            await clients.aclose()

    def _maybe_fail(self, message: OutboundMessage) -> None:
        with self._lock:
            error = self._pending.pop(0) if self._pending else self.failures.get(message.to.person_id)
        if error is not None:
            raise copy.copy(error)  # a fresh instance each time, so tracebacks don't pile up

    async def _post(self, message: OutboundMessage) -> str:
        body = {"key": message.key, "channel": message.channel.value, "to": message.to.person_id,
                "purpose": message.purpose.value, "text": message.text}
        return _provider_id(_checked(await self._request("POST", json=body)))

    async def _request(self, method: str, **kwargs: Any) -> httpx.Response:
        assert self.endpoint is not None
        if self._clients is None:
            self._clients = _Clients(self._timeout)
        try:
            return await self._clients.request(method, self.endpoint, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"simulator endpoint timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"simulator endpoint unreachable: {exc!r}") from exc


class _Clients:
    """Keep-alive HTTP clients, one request each at a time.

    A single httpx.AsyncClient slows down sharply as its pool grows (every request walks every
    pooled connection, encode/httpx#3215): measured on 2 cores, 64 concurrent requests through one
    client ran at ~90/s, through one-connection clients checked out per request at ~1,100/s.
    """

    def __init__(self, timeout: float, size: int = 32) -> None:
        self._timeout = timeout
        self._tls = ssl.create_default_context()  # shared: building one per client costs ~25 ms
        self._free: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._gate = asyncio.Semaphore(size)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self._gate:
            client = self._free.pop() if self._free else self._new()
            try:
                return await client.request(method, url, **kwargs)
            finally:
                self._free.append(client)

    def _new(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        client = httpx.AsyncClient(timeout=self._timeout, limits=limits, verify=self._tls)
        self._all.append(client)
        return client

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._all))
        self._all.clear()
        self._free.clear()


def _checked(response: httpx.Response) -> httpx.Response:
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(f"simulator endpoint answered {status}", _retry_after(response))
    if status in (401, 403):
        raise ConfigurationError(f"simulator endpoint refused us: {status}")
    if status >= 400:
        raise PermanentError(f"simulator endpoint rejected the message: {status}")
    return response


def _provider_id(response: httpx.Response) -> str:
    try:
        return str(response.json()["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TransientError(f"simulator endpoint gave no id: {response.text[:200]!r}") from exc


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _simulator_factory(channel: Channel) -> Callable[[AdapterDeps], ChannelAdapter]:
    def build(deps: AdapterDeps) -> ChannelAdapter:
        return SimulatorAdapter(channel, deps.outbox, deps.sim_endpoint)

    return build


for _channel in Channel:
    register(_channel, SimulatorAdapter.provider)(_simulator_factory(_channel))
