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

import logging
from abc import abstractmethod
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException

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
)
from .registry import AdapterDeps, register

if TYPE_CHECKING:
    from twilio.rest import Client

    from .twilio_http import TwilioHttp

__all__ = ["DEFAULT_TIMEOUT", "STATUS_PATH", "TWILIO_API", "VOICE_GATHER_PATH", "VOICE_PATH", "TwilioSmsAdapter",
           "TwilioVoiceAdapter", "classify", "twilio_configured"]

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
        # The twilio client (and requests under it) is imported here, when a configured adapter is
        # built: a process that only reads the declarations or answers Twilio's webhooks never loads it.
        from .twilio_http import make_client

        self.client: Client
        self._http: TwilioHttp
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


@register(Channel.SMS, "twilio", configured=twilio_configured, adapter=TwilioSmsAdapter,
          needs=("JIAOYING_TWILIO_ACCOUNT_SID", "JIAOYING_TWILIO_AUTH_TOKEN", "JIAOYING_TWILIO_FROM_NUMBER"))
def build_sms(deps: AdapterDeps) -> ChannelAdapter:
    return TwilioSmsAdapter(deps.settings)


@register(Channel.VOICE, "twilio", configured=twilio_configured, adapter=TwilioVoiceAdapter,
          needs=("JIAOYING_TWILIO_ACCOUNT_SID", "JIAOYING_TWILIO_AUTH_TOKEN", "JIAOYING_TWILIO_FROM_NUMBER"))
def build_voice(deps: AdapterDeps) -> ChannelAdapter:
    return TwilioVoiceAdapter(deps.settings)
