"""The twilio client's HTTP on aiohttp, for the Twilio adapters (dispatcher/channels/twilio.py).

Kept apart from the adapters so that the twilio client and requests (a fifth of a second of start-up)
are imported only when a configured Twilio adapter is built, not by every process that reads the
adapters' declarations or answers Twilio's webhooks.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import os
import ssl
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ..config import Settings
from .base import parse_retry_after
from .http import LoopSession
from .twilio import DEFAULT_TIMEOUT, TWILIO_API

__all__ = ["TwilioHttp", "make_client"]


class TwilioHttp(AsyncHttpClient):
    """The twilio client's HTTP, on aiohttp in the engine's own event loop (no thread per send):
    another REST base, a default timeout, and the Retry-After of a 429/503 answer (TwilioRestException
    drops headers), kept for the task that sent.

    The environment (HTTPS_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE) is read once, when the
    client is built. The stock requests-based client read it again for every message, and cost
    ~1 ms of CPU a send in threads: 10,000 texts took 26 s in the embedded mode."""

    def __init__(self, api_base: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), True, timeout)
        self._base = urlsplit(api_base.rstrip("/")) if api_base else None
        target = api_base or TWILIO_API
        proxies = requests.utils.get_environ_proxies(target)
        self.proxy = proxies.get(urlsplit(target).scheme) or proxies.get("all")
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._http = LoopSession(timeout, ssl_context=ssl.create_default_context(cafile=bundle) if bundle else None)
        self._retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar("retry_after", default=None)

    async def request(self, method: str, uri: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        self._retry_after.set(None)
        if self._base is not None:
            parts = urlsplit(uri)
            if parts.hostname and parts.hostname.endswith("twilio.com"):
                uri = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query,
                                  parts.fragment))
        if auth:
            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {basic}"}
        body = None
        if data is not None:  # encoded here: aiohttp's FormData costs a sixth of a send's CPU
            body = urlencode(_plain(data) or []).encode()
            headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
        reply = await self._http.request(method.upper(), uri, params=_plain(params), data=body,
                                         headers=headers, allow_redirects=allow_redirects, proxy=self.proxy)
        if reply.status_code in (429, 503):
            self._retry_after.set(_retry_after(reply.headers))
        return Response(reply.status_code, reply.text, reply.headers)

    def last_retry_after(self) -> float | None:
        return self._retry_after.get()

    async def aclose(self) -> None:
        await self._http.aclose()


def _plain(values: dict[str, object] | None) -> list[tuple[str, str]] | None:
    """The twilio client's parameters as aiohttp takes them: lists repeated, booleans as Twilio
    spells them, nothing unset."""
    if values is None:
        return None
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            if one is None:
                continue
            pairs.append((name, ("true" if one else "false") if isinstance(one, bool) else str(one)))
    return pairs


def make_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> tuple[Client, TwilioHttp]:
    http = TwilioHttp(settings.twilio_api_base, timeout)
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http), http


def _retry_after(headers: Any) -> float | None:
    value = next((v for name, v in dict(headers).items() if str(name).lower() == "retry-after"), None)
    return parse_retry_after(value)
