"""The Twilio adapters: SMS over the Messages API, voice calls over the Calls API.

Both use the official ``twilio`` client, which is synchronous: each send runs in a thread
(``asyncio.to_thread``). ``JIAOYING_TWILIO_API_BASE`` points the client at another REST base
(a fake provider in tests, or a proxy): our HTTP client rewrites every ``https://*.twilio.com``
URL onto that base, so all of the client's domains follow it.

Errors are classified for the engine:

- network errors, timeouts, 5xx and 429 (with its Retry-After) -> ``TransientError``
- 401 / Twilio code 20003 (bad credentials), 403                -> ``ConfigurationError``
- 21211 invalid number, 21610 unsubscribed, any other 4xx       -> ``PermanentError``

Status callbacks (``/webhooks/twilio/status``) and the call's TwiML
(``/webhooks/twilio/voice?attempt=<attempt key>``) are served by dispatcher/api/routes/twilio.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from abc import abstractmethod
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
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


class _HttpClient(TwilioHttpClient):
    """The stock requests-based client, plus: another REST base, a default timeout, and the
    Retry-After of the last 429/503 answer seen by this thread (TwilioRestException drops headers).

    The environment (HTTPS_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE) is read once, when the client is
    built: requests would read it again for every message (a fifth of the client's CPU per send)."""

    def __init__(self, api_base: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        base = urlsplit(api_base.rstrip("/")) if api_base else None
        self._base = base
        if self.session is not None:  # the stock client only pools https://; the fake is http://
            self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
            self.proxy = requests.utils.get_environ_proxies(api_base or TWILIO_API) or None
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self.session.verify = bundle
            self.session.trust_env = False
        self._local = threading.local()

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        self._local.retry_after = None
        if self._base is not None:
            parts = urlsplit(url)
            if parts.hostname and parts.hostname.endswith("twilio.com"):
                url = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query,
                                  parts.fragment))
        response = super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                                   timeout=timeout, allow_redirects=allow_redirects)
        if response.status_code in (429, 503):
            self._local.retry_after = _retry_after(response.headers or {})
        return response

    def last_retry_after(self) -> float | None:
        return getattr(self._local, "retry_after", None)


def make_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> tuple[Client, _HttpClient]:
    http = _HttpClient(settings.twilio_api_base, timeout)
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http), http


def classify(exc: Exception, retry_after: float | None = None) -> TransientError | PermanentError | ConfigurationError:
    """The engine's view of an exception raised by the twilio client."""
    if isinstance(exc, requests.exceptions.RequestException | TimeoutError | ConnectionError):
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
        return await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: OutboundMessage) -> SendResult:
        try:
            return self._create(message)
        except (requests.exceptions.RequestException, TwilioException) as exc:
            raise classify(exc, self._http.last_retry_after()) from exc

    @abstractmethod
    def _create(self, message: OutboundMessage) -> SendResult:
        """Create the message or call at Twilio (runs in a worker thread)."""

    def status_callback(self, message: OutboundMessage) -> str:
        # The attempt key rides along so a callback that beats the engine's own record of the sid
        # still finds its attempt.
        return f"{self.public_url}{STATUS_PATH}?{urlencode({'attempt': message.key})}"

    async def aclose(self) -> None:
        if self._http.session is not None:
            self._http.session.close()


class TwilioSmsAdapter(_TwilioAdapter):
    channel = Channel.SMS

    def _create(self, message: OutboundMessage) -> SendResult:
        sent = self.client.messages.create(
            to=message.to.phone, from_=self.settings.twilio_from_number, body=message.text,
            status_callback=self.status_callback(message))
        return SendResult(str(sent.sid), "sent")


class TwilioVoiceAdapter(_TwilioAdapter):
    channel = Channel.VOICE

    def _create(self, message: OutboundMessage) -> SendResult:
        query = urlencode({"attempt": message.key})
        call = self.client.calls.create(
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
