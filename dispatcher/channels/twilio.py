"""The Twilio adapters: SMS over the Messages API, voice calls over the Calls API.

Both use the official ``twilio`` client, asynchronously (``create_async``) over our own aiohttp
session in the engine's event loop: no thread per send. ``JIAOYING_TWILIO_API_BASE`` points the
client at another REST base (a fake provider in tests, or a proxy): our HTTP client rewrites every
``https://*.twilio.com`` URL onto that base, so all of the client's domains follow it.

Errors are classified for the engine:

- network errors, timeouts, 5xx and 429 (with its Retry-After) -> ``TransientError``
- 401 / Twilio code 20003 (bad credentials), 403                -> ``ConfigurationError``
- 21211 invalid number, 21610 unsubscribed, any other 4xx       -> ``PermanentError``

Status callbacks (``/webhooks/twilio/status``) and the call's TwiML
(``/webhooks/twilio/voice?attempt=<attempt key>``) are served by dispatcher/api/routes/twilio.py.
"""

from __future__ import annotations

import base64
import contextvars
import logging
import os
import ssl
from abc import abstractmethod
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import requests
from twilio.base.exceptions import TwilioException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ..config import Settings
from ..domain.channels import Channel
from .base import (
    ChannelAdapter,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    error_for_status,
    parse_retry_after,
)
from .http import LoopSession
from .registry import AdapterDeps, register

__all__ = ["STATUS_PATH", "VOICE_GATHER_PATH", "VOICE_PATH", "TwilioSmsAdapter", "TwilioVoiceAdapter",
           "classify", "make_client", "twilio_configured"]

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"
VOICE_PATH = "/webhooks/twilio/voice"
VOICE_GATHER_PATH = "/webhooks/twilio/voice/gather"
DEFAULT_TIMEOUT = 10.0
TWILIO_API = "https://api.twilio.com"  # where the client goes without JIAOYING_TWILIO_API_BASE

INVALID_NUMBER = 21211
UNSUBSCRIBED = 21610
AUTHENTICATION = 20003


def twilio_configured(settings: Settings) -> bool:
    return bool(settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number)


class _HttpClient(AsyncHttpClient):
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


def make_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> tuple[Client, _HttpClient]:
    http = _HttpClient(settings.twilio_api_base, timeout)
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http), http


# What the HTTP layer raises when Twilio could not be reached or did not answer in time.
_UNREACHABLE = (aiohttp.ClientError, TimeoutError, ConnectionError)


def classify(exc: Exception, retry_after: float | None = None) -> TransientError | PermanentError | ConfigurationError:
    """The engine's view of an exception raised by the twilio client."""
    if isinstance(exc, _UNREACHABLE):
        return TransientError(f"twilio unreachable: {type(exc).__name__}: {exc}")
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", None) or ""
    what = f"twilio answered {status} (code {code}): {detail}"
    if not isinstance(status, int):
        return TransientError(f"twilio client error: {type(exc).__name__}: {exc}")
    if code == AUTHENTICATION:
        return ConfigurationError(what)
    if code == INVALID_NUMBER and status < 500:
        return PermanentError(f"invalid phone number: {what}")
    if code == UNSUBSCRIBED and status < 500:
        return PermanentError(f"the recipient has unsubscribed (STOP): {what}")
    error = error_for_status(status, what, retry_after)
    return error if isinstance(error, TransientError | PermanentError | ConfigurationError) else TransientError(what)


class _TwilioAdapter(ChannelAdapter):
    provider = "twilio"
    calls_back = True  # no lookup by our key, but every status callback carries it

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.settings = settings
        self.public_url = settings.public_url.rstrip("/")
        self.client, self._http = make_client(settings, timeout)

    async def send(self, message: OutboundMessage) -> SendResult:
        if not twilio_configured(self.settings):  # never reach out with missing credentials
            raise ConfigurationError("Twilio needs JIAOYING_TWILIO_ACCOUNT_SID, JIAOYING_TWILIO_AUTH_TOKEN and "
                                     "JIAOYING_TWILIO_FROM_NUMBER")
        if not message.to.phone:
            raise PermanentError(f"{message.to.person_id} has no phone number")
        try:
            return await self._create(message)
        except (*_UNREACHABLE, TwilioException) as exc:
            raise classify(exc, self._http.last_retry_after()) from exc

    @abstractmethod
    async def _create(self, message: OutboundMessage) -> SendResult:
        """Create the message or call at Twilio."""

    def status_callback(self, message: OutboundMessage) -> str:
        # The attempt key rides along so a callback that beats the engine's own record of the sid
        # still finds its attempt.
        return f"{self.public_url}{STATUS_PATH}?{urlencode({'attempt': message.key})}"

    async def aclose(self) -> None:
        await self._http.aclose()


class TwilioSmsAdapter(_TwilioAdapter):
    channel = Channel.SMS

    async def _create(self, message: OutboundMessage) -> SendResult:
        sent = await self.client.messages.create_async(
            to=message.to.phone, from_=self.settings.twilio_from_number, body=message.text,
            status_callback=self.status_callback(message))
        return SendResult(str(sent.sid), "sent")


class TwilioVoiceAdapter(_TwilioAdapter):
    channel = Channel.VOICE

    async def _create(self, message: OutboundMessage) -> SendResult:
        query = urlencode({"attempt": message.key})
        call = await self.client.calls.create_async(
            to=message.to.phone, from_=self.settings.twilio_from_number,
            url=f"{self.public_url}{VOICE_PATH}?{query}", method="POST",
            status_callback=self.status_callback(message), status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"])
        return SendResult(str(call.sid), "sent")


def _retry_after(headers: Any) -> float | None:
    value = next((v for name, v in dict(headers).items() if str(name).lower() == "retry-after"), None)
    return parse_retry_after(value)


@register(Channel.SMS, "twilio", configured=twilio_configured, adapter=TwilioSmsAdapter,
          needs=("JIAOYING_TWILIO_ACCOUNT_SID", "JIAOYING_TWILIO_AUTH_TOKEN", "JIAOYING_TWILIO_FROM_NUMBER"))
def build_sms(deps: AdapterDeps) -> ChannelAdapter:
    return TwilioSmsAdapter(deps.settings)


@register(Channel.VOICE, "twilio", configured=twilio_configured, adapter=TwilioVoiceAdapter,
          needs=("JIAOYING_TWILIO_ACCOUNT_SID", "JIAOYING_TWILIO_AUTH_TOKEN", "JIAOYING_TWILIO_FROM_NUMBER"))
def build_voice(deps: AdapterDeps) -> ChannelAdapter:
    return TwilioVoiceAdapter(deps.settings)
