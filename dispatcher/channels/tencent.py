"""The Tencent Cloud (腾讯云) adapters: SMS (sms 2021-01-11 ``SendSms``) and voice messages (VMS
2020-09-02 ``SendTtsVoice``), through the OFFICIAL ``tencentcloud-sdk-python-sms`` / ``-vms`` clients
(they sign every request with TC3-HMAC-SHA256; nothing here signs by hand).

Mainland messages go out only as approved templates: each message's template id and its positional
``TemplateParamSet`` come from JIAOYING_CARRIER_TEMPLATES (``carrier_templates``), never from the
rendered text. No file at all is a configuration error (the provider is halted); a file without an
entry for the message's purpose refuses that message only (``PermanentError``).

Sending. The SDK is synchronous: each request runs in a thread (``asyncio.to_thread``) with the
SDK's ``reqTimeout`` (10 s by default) so a provider that hangs becomes a ``TransientError``; the
SDK's own retries and region breaker are off (the engine retries). ``SendSms`` takes up to 200
numbers sharing one template, one parameter list and one ``SessionContext``: ``send_many`` puts the
messages whose template id and parameter values are equal into one request (at most 200 numbers,
never the same number twice) and sends personalised messages one request each, in parallel. Every
message gets its own outcome: from ``Response.Error`` (the whole request was refused: the SDK raises
``TencentCloudSDKException``) or from its own entry in ``SendStatusSet`` (a refused number fails
only its own message). Its ``SerialNo`` becomes the attempt's provider id.

How receipts find their message again. Tencent's status report carries ``sid`` (= the SerialNo)
and ``mobile``: the webhook finds the attempt by provider id and accepts the report only if the
number is the attempt's recipient's. ``SessionContext`` is the attempt key when the request carries
one message (the attempt id where the key would not fit), ``batch:<n>:<first key>`` for a batch;
Tencent echoes it in reports (``ext``) only when its support has switched that on.

Voice: ``SendTtsVoice`` (one number a request, ``PlayTimes`` 3 for red warnings, else 2); the
``CallId`` is the provider id, and both the call result (``voiceprompt_callback``) and the key the
callee pressed (``voicekey_callback``) come back by callback only.

Endpoints: JIAOYING_TENCENT_SMS_ENDPOINT / _VOICE_ENDPOINT are host names (https), or
``http://127.0.0.1:<port>`` for a local fake: plain http is refused for anything but a loopback
address, and a loopback endpoint is never reached through a proxy from the environment.

Errors are classified in one place, ``classify`` (see the table in docs/channels-tencent.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import Settings
from ..domain.channels import Channel
from ..domain.hazards import Level
from ..domain.limits import RateLimit
from .base import (
    Address,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    error_for_status,
    parse_retry_after,
)
from .carrier_templates import CarrierTemplateError, carrier_templates
from .carriers import Endpoint, parse_endpoint
from .registry import AdapterDeps, register

if TYPE_CHECKING:  # the SDK (and requests) is imported when an adapter first makes its client
    import requests

__all__ = ["BATCH_SIZE", "CONFIGURATION_CODES", "PERMANENT_CODES", "TRANSIENT_CODES", "TencentSmsAdapter",
           "TencentVoiceAdapter", "classify", "sms_configured", "voice_configured"]

log = logging.getLogger(__name__)

PROVIDER = "tencent"
DEFAULT_TIMEOUT = 10.0
BATCH_SIZE = 200  # SendSms PhoneNumberSet: "单次请求最多支持200个手机号"
SESSION_CONTEXT_BYTES = 511  # SendSms SessionContext: "长度需小于512字节" (VMS documents no limit: the same is used)
SMS_MAX_LENGTH = 500  # one (long) mainland SMS, sign included: 70 characters a segment, 67 in long SMS
VOICE_MAX_LENGTH = 350  # SendTtsVoice: "语音消息的内容长度不超过350字"
LOOKUP_WINDOW = 24 * 3600  # PullSmsSendStatusByPhoneNumber looks back this far (Tencent keeps 7 days)
PULL_LIMIT = 100  # PullSmsSendStatusByPhoneNumber Limit: "最多 100"

# -- error classification ---------------------------------------------------------------------------
# Our account, app, sign, template or package is refused: every message would fail the same way, so
# the provider is halted (its circuit opens and the board shows why) until someone fixes it.
CONFIGURATION_CODES = frozenset({
    "FailedOperation.SignatureIncorrectOrUnapproved", "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.InsufficientBalanceInSmsPackage", "FailedOperation.InsufficientBalanceInVoicePackage",
    "InvalidParameterValue.SdkAppIdNotExist", "InvalidParameterValue.SdkAppidNotExist",  # sms / vms spelling
    "FailedOperation.MissingSignature", "FailedOperation.SignIdNotExist", "FailedOperation.TemplateIdNotExist",
    "FailedOperation.TemplateUnapprovedOrNotExist", "FailedOperation.PhonenumberUnappliedOrExpired",
    "FailedOperation.ProhibitSubAccountUse",
    "LimitExceeded.AppDailyLimit", "LimitExceeded.AppMainlandChinaDailyLimit", "LimitExceeded.DailyLimit",
    "InvalidCredential", "InvalidAction", "NoSuchVersion", "UnsupportedRegion", "UnsupportedProtocol",
    "UnsupportedOperation.UnsupportedRegion", "InvalidParameterValue.InvalidUsedMethod",
})
CONFIGURATION_PREFIXES = ("AuthFailure", "UnauthorizedOperation")
# Nothing is wrong with the message or the account: try again (the engine's bounded retries).
TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "ClientNetworkError", "ServerNetworkError", "ResourceUnavailable",
    "FailedOperation.AccessUpstreamTimeout", "FailedOperation.FailResolvePacket",
    "LimitExceeded.GlobalSmsSendingRateLimit", "LimitExceeded.PhoneNumberThirtySecondLimit",
})
TRANSIENT_PREFIXES = ("InternalError", "RequestLimitExceeded", "ResourceUnavailable")
# This message (this number, this content) is refused: never retried, the next channel is tried.
PERMANENT_CODES = frozenset({
    "InvalidParameterValue.IncorrectPhoneNumber", "LimitExceeded.PhoneNumberDailyLimit",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "InvalidParameterValue.TemplateParameterLengthLimit",
    "InvalidParameterValue.TemplateParameterFormatError", "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
    "InvalidParameterValue.ContentLengthLimit", "InvalidParameterValue.CalledNumberVerifyFail",
    "FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberParseFail",
    "FailedOperation.ContainSensitiveWord", "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit", "LimitExceeded.DeliveryFrequencyLimit",
    "LimitExceeded.PhoneNumberCountLimit", "MissingParameter.EmptyPhoneNumberSet",
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
})
PERMANENT_PREFIXES = ("FailedOperation", "InvalidParameter", "InvalidParameterValue", "MissingParameter",
                      "LimitExceeded", "UnsupportedOperation")
# Waits Tencent's codes imply: the same content to one number at most once in 30 s.
RETRY_AFTER = {"LimitExceeded.PhoneNumberThirtySecondLimit": 30.0}


def classify(code: str, message: str = "", *, status: int | None = None,
             retry_after: str | float | None = None) -> ChannelError:
    """The engine's view of one refusal by Tencent: a ``Response.Error`` code (raised by the SDK), a
    ``SendStatusSet[i].Code`` (one number), or the SDK's own ``ClientNetworkError`` (no answer: a
    timeout, a refused connection) / ``ServerNetworkError`` (an HTTP status other than 200, given in
    ``status``: ``error_for_status`` decides)."""
    what = f"tencent: {code}" + (f": {message}" if message else "")
    if code == "ServerNetworkError" and status is not None:
        error = error_for_status(status, f"tencent answered HTTP {status}", retry_after)
        return error if error is not None else TransientError(what)
    family = code.split(".", 1)[0]
    if code in CONFIGURATION_CODES or family in CONFIGURATION_PREFIXES:
        return ConfigurationError(what)
    if code in TRANSIENT_CODES or family in TRANSIENT_PREFIXES:
        wait = RETRY_AFTER.get(code)
        if wait is None and retry_after is not None:
            wait = float(retry_after) if isinstance(retry_after, float | int) else parse_retry_after(retry_after)
        # A Tencent code is an answer: the request was refused, not taken — except an internal error
        # or an upstream timeout, after which the message may have gone out.
        return TransientError(what, wait, unsent=code == "RequestLimitExceeded" or code in RETRY_AFTER)
    if code in PERMANENT_CODES or family in PERMANENT_PREFIXES:
        return PermanentError(what)
    # Not a Tencent code: the SDK wraps any other failure (a body that is not JSON, …) in its own
    # exception named after the Python error. Whether the message went out is unknown: retry.
    return TransientError(f"tencent client error: {what}")


# -- configuration -----------------------------------------------------------------------------------


def sms_configured(settings: Settings) -> bool:
    return bool(settings.tencent_secret_id and settings.tencent_secret_key and settings.tencent_sms_app_id)


def voice_configured(settings: Settings) -> bool:
    return bool(settings.tencent_secret_id and settings.tencent_secret_key and settings.tencent_voice_app_id)


# -- the adapters --------------------------------------------------------------------------------------


def _session_context(message: OutboundMessage) -> str:
    """Our reference for one message: its key, or its attempt id where the key would not fit."""
    if len(message.key.encode()) <= SESSION_CONTEXT_BYTES or message.attempt_id is None:
        return message.key.encode()[:SESSION_CONTEXT_BYTES].decode(errors="ignore")
    return str(message.attempt_id)


def _number_key(phone: str) -> str:
    """A number as the digits that identify it (+8613800000001, 8613800000001 and 0086… alike)."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


class _TencentAdapter(ChannelAdapter):
    provider = PROVIDER
    uses_templates = True
    calls_back = True
    endpoint_variable: ClassVar[str]
    endpoint_example: ClassVar[str]
    app_variable: ClassVar[str]

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client: Any = None
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._local = threading.local()  # the HTTP status / Retry-After of this thread's last answer

    @abstractmethod
    def _configured(self) -> bool:
        """Whether the settings carry what this adapter needs (credentials, app id, sign)."""

    @abstractmethod
    def _endpoint_value(self) -> str:
        """The JIAOYING_TENCENT_*_ENDPOINT value this adapter talks to."""

    @abstractmethod
    def _client_class(self) -> type[Any]:
        """The SDK client class (SmsClient or VmsClient)."""

    def _check(self) -> Endpoint:
        """Raise ConfigurationError (before anything is sent) for missing settings or a bad endpoint."""
        if not self._configured():
            raise ConfigurationError(f"Tencent Cloud needs JIAOYING_TENCENT_SECRET_ID, JIAOYING_TENCENT_SECRET_KEY "
                                     f"and {self.app_variable}")
        return parse_endpoint(self._endpoint_value(), self.endpoint_variable, self.endpoint_example)

    def _template(self, message: OutboundMessage) -> tuple[str, list[str]]:
        """The approved template id and its positional parameters for this message."""
        path = self.settings.carrier_templates
        if not path:
            raise ConfigurationError("Tencent sends approved templates only: set JIAOYING_CARRIER_TEMPLATES "
                                     "(see `jiaoying carriers templates --provider tencent`)")
        try:
            templates = carrier_templates(path)
        except CarrierTemplateError as exc:
            raise ConfigurationError(f"JIAOYING_CARRIER_TEMPLATES: {exc}") from None
        template = templates.get(PROVIDER, self.channel, message.purpose, message.drill)
        if template is None:
            raise PermanentError(f"no approved Tencent {self.channel.value} template for "
                                 f"{message.purpose.value}{' (drill)' if message.drill else ''} in {path}: add "
                                 f"tencent.{self.channel.value}.{message.purpose.value}")
        return template.code, [value for _, value in template.values(message.variables())]

    @staticmethod
    def _number(message: OutboundMessage) -> str:
        phone = (message.to.phone or "").strip()
        if not phone:
            raise PermanentError(f"{message.to.person_id} has no phone number")
        if not phone.startswith("+86"):
            raise PermanentError(f"{message.to.person_id}: {phone[:4]}… is not a mainland (+86) number; the "
                                 "Tencent templates are mainland ones")
        return phone

    def warm(self) -> None:
        """The SDK imported and the client made, nothing sent; settings that cannot work are left for
        the send to report."""
        with contextlib.suppress(ChannelError):
            self._ready()

    def _ready(self) -> Any:
        """The SDK client (made on first use, in a worker thread, unless ``warm`` made it)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client(self._check())
            return self._client

    def _make_client(self, endpoint: Endpoint) -> Any:
        # The SDK is imported here, when a configured adapter first needs a client: a process that only
        # reads the adapter's declarations or answers Tencent's callbacks never loads it.
        import requests
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        http = HttpProfile(protocol=endpoint.scheme, endpoint=endpoint.host, reqTimeout=self.timeout)
        # No region breaker (it would switch to another Tencent host) and no SDK retries: the engine
        # retries, and knows a try may have arrived.
        profile = ClientProfile(httpProfile=http, disable_region_breaker=True)
        try:
            client = self._client_class()(Credential(self.settings.tencent_secret_id,
                                                     self.settings.tencent_secret_key),
                                          self.settings.tencent_region, profile)
        except TencentCloudSDKException as exc:  # InvalidCredential: empty, or with spaces around it
            raise classify(str(exc.code), str(exc.message)) from None
        connection = getattr(getattr(client, "request", None), "conn", None)
        session = getattr(connection, "_session", None)
        if not isinstance(session, requests.Session):
            raise ConfigurationError("this tencentcloud-sdk-python-common keeps its HTTP session elsewhere: the "
                                     "adapter cannot set its timeouts and proxies (pin 3.1.x)")
        if endpoint.loopback:  # never through a proxy from HTTP(S)_PROXY: the fake is on this host
            connection.proxy = None
            session.trust_env = False
        session.mount(f"{endpoint.scheme}://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        session.hooks["response"].append(self._seen)
        self._sessions.append(session)
        return client

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.status = response.status_code
        self._local.retry_after = response.headers.get("Retry-After")

    def _call(self, action: str, request: Any) -> Any:
        """One SDK call in this (worker) thread; every failure as a ChannelError."""
        import requests
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        client = self._ready()
        self._local.status = self._local.retry_after = None
        try:
            return getattr(client, action)(request)
        except TencentCloudSDKException as exc:
            code, message = str(exc.code or ""), str(exc.message or "")
            if isinstance(exc.message, bytes):
                message = exc.message[:200].decode(errors="replace")
            raise classify(code, message[:300], status=getattr(self._local, "status", None),
                           retry_after=getattr(self._local, "retry_after", None)) from exc
        except (requests.RequestException, OSError) as exc:
            raise TransientError(f"tencent unreachable: {type(exc).__name__}: {exc}") from exc

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        # reqTimeout bounds each read; this bounds the whole call (a provider dripping bytes).
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout=self.timeout * 3 + 5)

    async def aclose(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
            self._client = None


class TencentSmsAdapter(_TencentAdapter):
    """``SendSms``: batches of equal messages, personalised ones singly, one outcome each."""

    channel = Channel.SMS
    batch_size = BATCH_SIZE
    max_length = SMS_MAX_LENGTH
    can_look_up = False  # PullSmsSendStatusByPhoneNumber cannot tell reliably: see ``lookup``
    endpoint_variable = "JIAOYING_TENCENT_SMS_ENDPOINT"
    endpoint_example = "sms.tencentcloudapi.com"
    app_variable = "JIAOYING_TENCENT_SMS_APP_ID"

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        return None  # the reference gives no Tencent request rate: JIAOYING_RATE_LIMITS sets one

    def _configured(self) -> bool:
        return sms_configured(self.settings)

    def _endpoint_value(self) -> str:
        return self.settings.tencent_sms_endpoint

    def _client_class(self) -> type[Any]:
        from tencentcloud.sms.v20210111.sms_client import SmsClient

        return SmsClient

    def _check(self) -> Endpoint:
        endpoint = super()._check()
        if not self.settings.tencent_sms_sign_name.strip():
            raise ConfigurationError("mainland SMS needs the approved sign (签名): set JIAOYING_TENCENT_SMS_SIGN_NAME")
        return endpoint

    async def send(self, message: OutboundMessage) -> SendResult:
        (outcome,) = await self.send_many([message])
        if isinstance(outcome, ChannelError):
            raise outcome
        return outcome

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Equal messages (same template id, same parameter values) share a ``SendSms`` of up to 200
        distinct numbers; the others go one request each, all requests in parallel."""
        outcomes: list[SendResult | ChannelError | None] = [None] * len(messages)
        prepared: dict[int, tuple[str, str, list[str]]] = {}
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        try:
            self._check()
        except ConfigurationError as exc:
            return [ConfigurationError(str(exc)) for _ in messages]
        for index, message in enumerate(messages):
            try:
                number = self._number(message)
                code, params = self._template(message)
            except ChannelError as exc:
                outcomes[index] = exc
                continue
            prepared[index] = (number, code, params)
            groups.setdefault((code, tuple(params)), []).append(index)
        requests_: list[list[int]] = []
        for indexes in groups.values():
            chunks: list[tuple[list[int], set[str]]] = []
            for index in indexes:
                number = _number_key(prepared[index][0])
                chunk = next((c for c in chunks if len(c[0]) < self.batch_size and number not in c[1]), None)
                if chunk is None:
                    chunks.append(chunk := ([], set()))
                chunk[0].append(index)
                chunk[1].add(number)
            requests_.extend(c[0] for c in chunks)

        async def one(indexes: list[int]) -> None:
            batch = [messages[i] for i in indexes]
            _, code, params = prepared[indexes[0]]
            numbers = [prepared[i][0] for i in indexes]
            try:
                statuses = await self._in_thread(self._send_sms, numbers, code, params, self._context(batch))
            except TimeoutError:
                results: list[SendResult | ChannelError] = [
                    TransientError("tencent: no answer in time") for _ in indexes]
            except ChannelError as exc:  # the whole request was refused: every message of it fails alike
                results = [_copy(exc) for _ in indexes]
            else:
                results = _per_number(numbers, statuses)
            for index, result in zip(indexes, results, strict=True):
                outcomes[index] = result

        await asyncio.gather(*(one(indexes) for indexes in requests_))
        return [o if o is not None else TransientError("tencent: not sent") for o in outcomes]

    @staticmethod
    def _context(batch: list[OutboundMessage]) -> str:
        if len(batch) == 1:
            return _session_context(batch[0])
        tag = f"batch:{len(batch)}:{batch[0].key}"
        return tag.encode()[:SESSION_CONTEXT_BYTES].decode(errors="ignore")

    def _send_sms(self, numbers: list[str], template: str, params: list[str], context: str) -> list[Any]:
        from tencentcloud.sms.v20210111 import models as sms_models

        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = numbers
        request.SmsSdkAppId = self.settings.tencent_sms_app_id
        request.SignName = self.settings.tencent_sms_sign_name
        request.TemplateId = template
        request.TemplateParamSet = params
        request.SessionContext = context
        response = self._call("SendSms", request)
        return list(response.SendStatusSet or [])

    async def lookup(self, key: str, to: Address | None = None) -> SendResult | None:
        """Best effort, positive answers only: ``PullSmsSendStatusByPhoneNumber`` lists a number's
        messages of the last day that already have a delivery report, with our ``SessionContext``
        only where Tencent enabled that echo — so "not found" proves nothing (``can_look_up`` is
        False and the engine waits for the status callback instead). Without the number: None."""
        if to is None or not to.phone or not self._configured():
            return None
        try:
            return await self._in_thread(self._lookup, key, to.phone)
        except (ChannelError, TimeoutError) as exc:
            log.info("tencent lookup of %s failed: %s", key, exc)
            return None

    def _lookup(self, key: str, phone: str) -> SendResult | None:
        from tencentcloud.sms.v20210111 import models as sms_models

        now = int(time.time())
        request = sms_models.PullSmsSendStatusByPhoneNumberRequest()
        request.PhoneNumber = phone
        request.SmsSdkAppId = self.settings.tencent_sms_app_id
        request.BeginTime = now - LOOKUP_WINDOW
        request.EndTime = now + 60
        request.Offset = 0
        request.Limit = PULL_LIMIT
        response = self._call("PullSmsSendStatusByPhoneNumber", request)
        for item in response.PullSmsSendStatusSet or []:
            if item.SessionContext and item.SessionContext == key and item.SerialNo:
                return SendResult(str(item.SerialNo), "sent", PROVIDER)
        return None


def _copy(error: ChannelError) -> ChannelError:
    if isinstance(error, TransientError):
        return TransientError(str(error), error.retry_after)
    return type(error)(str(error))


def _per_number(numbers: list[str], statuses: list[Any]) -> list[SendResult | ChannelError]:
    """Each number's own outcome, from its entry in SendStatusSet."""
    by_number: dict[str, Any] = {}
    for status in statuses:
        by_number.setdefault(_number_key(str(status.PhoneNumber or "")), status)
        by_number.setdefault(str(status.PhoneNumber or ""), status)  # a refused number comes back as sent
    results: list[SendResult | ChannelError] = []
    for number in numbers:
        status = by_number.get(number) or by_number.get(_number_key(number))
        if status is None:  # accepted request, no word on this number: it may have gone out
            results.append(TransientError("tencent: no SendStatusSet entry for this number"))
        elif status.Code == "Ok":
            results.append(SendResult(str(status.SerialNo or ""), "sent", PROVIDER))
        else:
            results.append(classify(str(status.Code), str(status.Message or "")))
    return results


class TencentVoiceAdapter(_TencentAdapter):
    """``SendTtsVoice``: the warning read out 2 or 3 times; the keypress comes by callback."""

    channel = Channel.VOICE
    max_length = VOICE_MAX_LENGTH
    endpoint_variable = "JIAOYING_TENCENT_VOICE_ENDPOINT"
    endpoint_example = "vms.tencentcloudapi.com"
    app_variable = "JIAOYING_TENCENT_VOICE_APP_ID"

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        return None  # none in the reference; space calls to one person with JIAOYING_CALLEE_SPACING_SECONDS

    def _configured(self) -> bool:
        return voice_configured(self.settings)

    def _endpoint_value(self) -> str:
        return self.settings.tencent_voice_endpoint

    def _client_class(self) -> type[Any]:
        from tencentcloud.vms.v20200902.vms_client import VmsClient

        return VmsClient

    async def send(self, message: OutboundMessage) -> SendResult:
        self._check()
        number = self._number(message)
        code, params = self._template(message)
        try:
            return await self._in_thread(self._send_tts, number, code, params, message)
        except TimeoutError:
            raise TransientError("tencent: no answer in time") from None

    def _send_tts(self, number: str, template: str, params: list[str], message: OutboundMessage) -> SendResult:
        from tencentcloud.vms.v20200902 import models as vms_models

        request = vms_models.SendTtsVoiceRequest()
        request.TemplateId = template
        request.TemplateParamSet = params
        request.CalledNumber = number
        request.VoiceSdkAppid = self.settings.tencent_voice_app_id
        request.PlayTimes = 3 if message.level is Level.RED else 2  # "最多3次，默认2次"
        request.SessionContext = _session_context(message)
        response = self._call("SendTtsVoice", request)
        call_id = str(getattr(response.SendStatus, "CallId", "") or "")
        if not call_id:
            raise TransientError("tencent: SendTtsVoice answered without a CallId")
        return SendResult(call_id, "sent", PROVIDER)


@register(Channel.SMS, PROVIDER, adapter=TencentSmsAdapter, needs=("JIAOYING_TENCENT_SECRET_ID",
          "JIAOYING_TENCENT_SECRET_KEY", "JIAOYING_TENCENT_SMS_APP_ID", "JIAOYING_TENCENT_SMS_SIGN_NAME"),
          configured=lambda s: bool(s.tencent_secret_id and s.tencent_secret_key and s.tencent_sms_app_id))
def build_sms(deps: AdapterDeps) -> ChannelAdapter:
    return TencentSmsAdapter(deps.settings)


@register(Channel.VOICE, PROVIDER, adapter=TencentVoiceAdapter, needs=("JIAOYING_TENCENT_SECRET_ID",
          "JIAOYING_TENCENT_SECRET_KEY", "JIAOYING_TENCENT_VOICE_APP_ID"),
          configured=lambda s: bool(s.tencent_secret_id and s.tencent_secret_key and s.tencent_voice_app_id))
def build_voice(deps: AdapterDeps) -> ChannelAdapter:
    return TencentVoiceAdapter(deps.settings)
