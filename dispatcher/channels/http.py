"""One keep-alive aiohttp session per adapter, made inside the event loop that sends.

Adapters that speak HTTP themselves (the simulator's endpoint, Twilio) share this: the session is
made lazily in the running loop (the Engine's own), made again if an adapter is used from another
loop (an ``asyncio.run`` in a test, a rebuilt engine), and closed by ``aclose()`` in its loop.

aiohttp rather than httpx or requests: measured on 2 cores through dispatch.deliver() (64 at a time)
against tests/fakes/simserver.py in its own process, httpx cost ~970 us of CPU a request, aiohttp
~170-230 us; the twilio client over requests in threads ~1 ms and more.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["LoopSession", "Reply"]


@dataclass(frozen=True)
class Reply:
    """What we keep of an HTTP answer: read in full before the connection goes back to the pool."""

    status_code: int
    headers: Mapping[str, str]  # names in lower case; kept only for errors (Retry-After)
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class _Session:
    def __init__(self, timeout: float, size: int, ssl_context: ssl.SSLContext | None) -> None:
        self.loop = asyncio.get_running_loop()
        # Per-read and connect timeouts: waiting for a pooled connection is not the provider's
        # slowness, so there is no total deadline.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=size, limit_per_host=size,
                                           ssl=ssl_context if ssl_context is not None else True),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
            raise_for_status=False, trust_env=False)

    def usable(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop and not self.session.closed
        except RuntimeError:
            return False

    def abandon(self) -> None:
        """Its loop is gone (or another one runs): drop the connections without awaiting anything
        (on a loop already closed aiohttp can only leave the sockets to the garbage collector)."""
        connector = self.session.connector
        if connector is not None:
            connector._close()  # noqa: SLF001 - aiohttp has no public synchronous close


class LoopSession:
    """``request`` on a pooled session of the running loop; ``aclose`` when the adapter is done."""

    def __init__(self, timeout: float, size: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout, self.size, self.ssl_context = timeout, size, ssl_context
        self._current: _Session | None = None

    async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
        """One request, its answer read in full. Raises TimeoutError or aiohttp.ClientError."""
        if self._current is not None and not self._current.usable():
            self._current.abandon()
            self._current = None
        if self._current is None:
            self._current = _Session(self.timeout, self.size, self.ssl_context)
        async with self._current.session.request(method, url, **kwargs) as response:
            text = (await response.read()).decode("utf-8", "replace")
            headers = {} if response.status < 400 else {k.lower(): v for k, v in response.headers.items()}
            return Reply(response.status, headers, text)

    async def aclose(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        if current.usable():
            await current.session.close()
        else:
            current.abandon()
