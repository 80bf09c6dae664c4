"""The Aliyun (阿里云) adapters: SMS over Dysmsapi 2017-05-25, voice over Dyvmsapi 2017-05-25, with the
official SDKs (alibabacloud-dysmsapi20170525, alibabacloud-dyvmsapi20170525 on alibabacloud-tea-openapi,
which sign every request; nothing here signs anything).

Mainland providers only send approved templates: each message goes out as the template code that
JIAOYING_CARRIER_TEMPLATES names for its purpose (``carrier_templates``), with the template's variables
filled from the message (``OutboundMessage.variables()``, each cut to Aliyun's 35 characters). A purpose
without a template fails that message (PermanentError); no template file, or no Aliyun template at all for
the channel, halts the provider (ConfigurationError).

**SMS.** ``send``: one ``SendSms`` (PhoneNumbers = the national number, OutId = the attempt key, which
always fits the 255 characters OutId takes). ``send_many`` (``batch_size`` 100): messages with the same
template code and the same variable values go in one ``SendSms`` (a comma-separated list, up to 1,000
numbers); the others, per template code, in ``SendBatchSms`` (up to 100 numbers, each with its own
parameter set and sign name). A number appears at most once per request. Aliyun refuses a request whole
(one bad number refuses all of them, nothing is sent): when a request of several messages is refused for
a reason that can concern one message only (a PermanentError: isv.MOBILE_NUMBER_ILLEGAL, a per-number
isv.BUSINESS_LIMIT_CONTROL, …), each of its messages is sent again on its own, so a refused number fails
only its own message. A configuration or transient refusal is every message's outcome.

**Provider ids.** A request returns one BizId for all its numbers, and its OutId is shared too (the first
message's key in a batch). So each message's provider id is ``<BizId>:<national number>`` (unique: a
number is never twice in one request). An SmsReport receipt carries ``biz_id``, ``phone_number`` and
``out_id``: the webhook finds the attempt by ``<biz_id>:<phone_number>``, or (when the receipt beats the
engine's record of the provider id) by ``out_id`` as the attempt key — and only ever if the receipt's
number is the attempt recipient's (dispatcher/api/routes/aliyun.py).

**Lookup.** ``lookup(key, to)`` asks ``QuerySendDetails`` for the recipient's number on today's and
yesterday's Beijing date and matches OutId == key (SendSms is not idempotent: a try that timed out may have
gone out). A message that went in a batch under another message's OutId is matched on that OutId (a number
is once per request, so OutId + number is that message), which this process remembers for the last
100,000 batched messages; another process (after a crash) cannot find it, and sends it again.
QuerySendDetails shows no BizId, so a message found this way gets an empty provider id and its receipt is
matched by OutId and number.

**Voice.** Purposes that need an answer (alert, reminder, to_deputy, to_superior, to_duty, unreached) are
an ``IvrCall``: StartCode = the voice template, played up to 3 times, key 1 = acknowledged (its prompt: the
entry's ``confirm`` template in the template file, else the start template again); the keypress comes back
as a VoiceCallReport, the call's end as a VoiceReport. Notices (update, cancel) are a ``SingleCallByTts``.
OutId = the attempt id (voice OutId takes 15 bytes, too few for the key); the CallId is the provider id.

**Errors** are classified in one place, ``classify`` (the table is in docs/channels-aliyun.md).
The SDK is synchronous: it runs in a thread with explicit connect/read timeouts (a hanging provider is a
TransientError) and without the SDK's own retries (sends are not idempotent; the engine retries).

**Endpoints.** JIAOYING_ALIYUN_SMS_ENDPOINT / _VOICE_ENDPOINT: a host (https), ``https://host``, or
``http://<loopback>:port`` for a fake; plain http to anything but loopback is refused (ConfigurationError).
darabonba takes HTTP(S)_PROXY from the environment itself and never reads NO_PROXY, so for a loopback
endpoint the proxy is set explicitly to the endpoint itself: requests then connects straight to it (the
request line in absolute form) and no proxy from the environment is ever used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import yaml

from ..config import Settings
from ..domain.callouts import QUESTIONING, Purpose
from ..domain.channels import Channel
from ..domain.limits import RateLimit
from ..rendering import BEIJING, TEMPLATE_VARIABLES
from .base import (
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    error_for_status,
)
from .carrier_templates import CarrierTemplate, CarrierTemplateError, carrier_templates
from .carriers import Endpoint, parse_endpoint
from .registry import AdapterDeps, register

if TYPE_CHECKING:  # the SDK itself is imported when an adapter first talks to Aliyun (see _sdk_config)
    from alibabacloud_dysmsapi20170525.client import Client as SmsClient
    from alibabacloud_dyvmsapi20170525.client import Client as VoiceClient
    from alibabacloud_tea_openapi import models as open_api_models
    from darabonba.runtime import RuntimeOptions

__all__ = ["ANSWER_PURPOSES", "PROVIDER", "AliyunSmsAdapter", "AliyunVoiceAdapter", "aliyun_configured",
           "classify", "e164", "national_number", "sms_provider_id"]

log = logging.getLogger(__name__)

PROVIDER = "aliyun"
DEFAULT_TIMEOUT = 10.0  # seconds, for the connection and for the answer each
CONNECT_TIMEOUT = 5.0
FIRST_CALL_WAIT = 2.0  # seconds a call waits for the adapter's first one (see _AliyunAdapter.__init__)

# Documented limits (/work/shared/reference/mainland-carriers.md unless noted).
SEND_SMS_MAX_NUMBERS = 1_000
SEND_BATCH_SMS_MAX_NUMBERS = 100
SMS_OUT_ID_MAX_CHARS = 255  # SendBatchSms / SendSms: OutId "长度小于 256"
VOICE_OUT_ID_MAX_BYTES = 15  # IvrCall / SingleCallByTts: OutId 1-15 bytes (the SDK's model)
QUERY_PAGE_SIZE = 50  # QuerySendDetails: PageSize 1-50
QUERY_MAX_PAGES = 4
REMEMBERED_BATCH_KEYS = 100_000
SMS_REQUESTS_PER_SECOND = 5_000  # SendSms, per account
VOICE_REQUESTS_PER_SECOND = 100  # IvrCall, per user
# Aliyun's 短信内容长度计算规则: signature + template text, at most 500 characters (70 a part, 67 a part
# beyond). Not in the shared reference. Our text is not what is sent (the template is); this is what a
# message of ours may come to.
SMS_MAX_CHARS = 500
IVR_PLAY_TIMES = 3  # PlayTimes 1-3: the warning is said up to three times while waiting for the key
NOTICE_PLAY_TIMES = 2
IVR_KEY_TIMEOUT_MS = 10_000  # how long the call waits for a key (IvrCall Timeout, milliseconds)
ACK_KEY = "1"

ANSWER_PURPOSES = frozenset({Purpose.ALERT, Purpose.REMINDER, Purpose.TO_DEPUTY, Purpose.TO_SUPERIOR,
                             Purpose.TO_DUTY, Purpose.UNREACHED, Purpose.ROLLCALL})
# A 六问 spot-check's call is an IvrCall whose prompt reads every question; keys 1 (是) and 2 (否) are
# in its key map, and the keys pressed, in order, come back in the call's VoiceReport (dtmf): the first
# answers question 1, the next question 2 … (services/spotchecks.call_keys). What is not answered on
# the call is asked once more by SMS.
QUESTION_KEYS = ("1", "2")

SMS_ENDPOINT_VAR = "JIAOYING_ALIYUN_SMS_ENDPOINT"
VOICE_ENDPOINT_VAR = "JIAOYING_ALIYUN_VOICE_ENDPOINT"
TEMPLATES_VAR = "JIAOYING_CARRIER_TEMPLATES"


def aliyun_configured(settings: Settings) -> bool:
    return bool(settings.aliyun_access_key_id and settings.aliyun_access_key_secret)


# -- errors ------------------------------------------------------------------------------------------

# Our account, key, signature, template or caller number is refused: nothing will go out until someone
# fixes it in the console or the settings — halt the provider.
_CONFIGURATION_CODES = frozenset({
    "SignatureDoesNotMatch", "IncompleteSignature", "InvalidAccessKeySecret", "InvalidTimeStamp.Expired",
    "InvalidAction.NotFound", "InvalidVersion",
    "isv.AMOUNT_NOT_ENOUGH", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGN_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.TTS_TEMPLATE_ILLEGAL", "isv.DISPLAY_NUMBER_ILLEGAL", "isv.OUT_OF_SERVICE", "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL", "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isp.RAM_PERMISSION_DENY",
})
_CONFIGURATION_PREFIXES = ("InvalidAccessKeyId", "Forbidden", "InvalidSecurityToken")
# The provider is busy or failing: try again later.
_TRANSIENT_CODES = frozenset({"SignatureNonceUsed", "ServiceUnavailable", "InternalError", "isp.SYSTEM_ERROR"})
_TRANSIENT_PREFIXES = ("Throttling", "isp.")
# This message is refused: never retried, the next channel is tried.
_PERMANENT_CODES = frozenset({
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.PARAM_LENGTH_LIMIT", "isv.INVALID_JSON_PARAM", "isv.INVALID_PARAMETERS", "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.BLACK_KEY_CONTROL_LIMIT", "isv.PARAM_NOT_SUPPORT_URL",
})
BUSINESS_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
_ACCOUNT_WORDS = ("账号", "账户", "account")
_WINDOWS = (("分钟", 60.0), ("小时", 3_600.0), ("天", 86_400.0))


def classify(code: str, message: str = "", *, status: int = 200, retry_after: float | None = None,
             action: str = "") -> ChannelError:
    """The engine's view of an Aliyun refusal: a business answer (HTTP 200, ``Code`` other than OK) or a
    gateway/server error (``status`` 4xx/5xx). The one place errors are classified; see the module doc."""
    what = f"aliyun {action or 'request'} refused: {code or 'no code'}" + (f" ({message})" if message else "")
    if status != 200:
        what += f" [HTTP {status}]"
    if status == 429 or status >= 500:
        error = error_for_status(status, what, retry_after)
        assert error is not None
        return error
    if code in _CONFIGURATION_CODES or code.startswith(_CONFIGURATION_PREFIXES):
        return ConfigurationError(what)
    if code == BUSINESS_LIMIT:
        # Aliyun's flow control is per number ("触发号码天级流控", "触发分钟级流控" for one recipient): this
        # message only. Only a refusal that names the account holds every message back.
        if any(word in message.lower() for word in _ACCOUNT_WORDS):
            return TransientError(what, retry_after or _window(message))
        return PermanentError(f"{what}: this number's flow control")
    if code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_PREFIXES):
        # Aliyun answered with its code: the request was refused, not taken (throttling, busy).
        return TransientError(what, retry_after, unsent=code.startswith("Throttling"))
    if code in _PERMANENT_CODES or code.startswith("Missing"):
        return PermanentError(what)
    if status != 200:
        error = error_for_status(status, what, retry_after)
        if error is not None:
            return error
    return PermanentError(what)  # an unknown business refusal: nothing was sent, and this message was refused


def _window(message: str) -> float | None:
    return next((seconds for word, seconds in _WINDOWS if word in message), None)


def _failure(exc: Exception, action: str) -> ChannelError:
    """An exception the SDK raised, classified."""
    from darabonba.exceptions import ResponseException
    from Tea.exceptions import UnretryableException

    if isinstance(exc, ResponseException):  # ClientException, ServerException, ThrottlingException
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("Message") or data.get("message") or "")
        # x-acs-retry-after: milliseconds, as the SDK's own backoff reads it (darabonba sleeps it as ms).
        wait = exc.retry_after / 1000.0 if isinstance(exc.retry_after, int | float) and exc.retry_after > 0 else None
        status = exc.status_code if isinstance(exc.status_code, int) else 0
        return classify(str(exc.code or ""), message, status=status or 400, retry_after=wait, action=action)
    if isinstance(exc, UnretryableException):  # the request never got an answer: timeout, refused connection
        inner = exc.inner_exception
        return TransientError(f"aliyun {action} unreachable or timed out: {type(inner).__name__}: {inner}")
    return TransientError(f"aliyun {action} failed: {type(exc).__name__}: {exc}")


# -- numbers -----------------------------------------------------------------------------------------

def national_number(phone: str | None) -> str | None:
    """The national form Aliyun takes and reports: 13800000003 for +8613800000003, 01012345678 for
    +861012345678; an already national number is kept. None: not a mainland number (or empty)."""
    text = (phone or "").strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if text.startswith("+"):
        if not digits.startswith("86"):
            return None
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    else:
        return digits
    if not digits:
        return None
    if digits.startswith("1") and not digits.startswith("10"):
        return digits  # a mobile number (Aliyun judges a malformed one)
    return digits if digits.startswith("0") else "0" + digits  # a landline: 10… Beijing, 2…-9… elsewhere


def e164(national: str) -> str:
    """+86… for a national number (a landline's leading 0 dropped)."""
    return "+86" + (national[1:] if national.startswith("0") else national)


def sms_provider_id(biz_id: str, national: str) -> str:
    """One SMS's provider id: the request's BizId and the number (a number is once per request)."""
    return f"{biz_id}:{national}"


# -- endpoints ---------------------------------------------------------------------------------------

def _sdk_config(settings: Settings, endpoint: Endpoint, timeout: float) -> open_api_models.Config:
    # The SDK (with requests, cryptography and the credential providers' scheduler: ~0.5 s of start-up)
    # is imported here, when a configured adapter first needs a client, never by a process that only
    # reads the adapter's declarations or answers the provider's callbacks.
    from alibabacloud_tea_openapi import models as open_api_models

    config = open_api_models.Config(
        access_key_id=settings.aliyun_access_key_id, access_key_secret=settings.aliyun_access_key_secret,
        endpoint=endpoint.host, protocol=endpoint.scheme,
        connect_timeout=int(min(timeout, CONNECT_TIMEOUT) * 1000), read_timeout=int(timeout * 1000))
    if endpoint.loopback:
        # darabonba falls back to HTTP(S)_PROXY whenever no proxy is configured and ignores NO_PROXY: name
        # the loopback endpoint itself, so the connection goes straight to it and never through a proxy.
        config.http_proxy = f"http://{endpoint.host}"
    return config


# -- templates ---------------------------------------------------------------------------------------

_RAW_CACHE: dict[str, tuple[int, Any]] = {}
_RAW_LOCK = threading.Lock()


def _raw_entry(path: str, channel: Channel, purpose: str) -> dict[str, Any]:
    """The template file's entry as written (carrier_templates keeps only code and variables; a voice
    entry may also name its ``confirm`` prompt)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return {}
    with _RAW_LOCK:
        cached = _RAW_CACHE.get(path)
    if cached is None or cached[0] != stamp:
        try:
            with open(path, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            return {}
        with _RAW_LOCK:
            _RAW_CACHE[path] = cached = (stamp, raw)
    raw = cached[1]
    try:
        entry = raw[PROVIDER][channel.value][purpose]
    except (KeyError, TypeError):
        return {}
    return entry if isinstance(entry, dict) else {}


def _confirm_template(settings: Settings, start: CarrierTemplate) -> CarrierTemplate | None:
    """The prompt key 1 plays: the entry's ``confirm`` (``TTS_…`` or ``{code, variables}``), if given."""
    confirm = _raw_entry(settings.carrier_templates, Channel.VOICE, start.purpose).get("confirm")
    if confirm in (None, ""):
        return None
    where = f"{TEMPLATES_VAR}: {PROVIDER}.voice.{start.purpose}.confirm"
    if isinstance(confirm, dict):
        code, variables = confirm.get("code"), confirm.get("variables") or []
    else:
        code, variables = confirm, []
    if not str(code or "").strip() or not isinstance(variables, list):
        raise ConfigurationError(f"{where}: a template code, or {{code: TTS_…, variables: [...]}}")
    unknown = [v for v in variables if v not in TEMPLATE_VARIABLES or v == "link"]
    if unknown:
        raise ConfigurationError(f"{where}: unknown variables {unknown}")
    return CarrierTemplate(PROVIDER, Channel.VOICE, start.purpose, str(code).strip(), tuple(variables),
                           start.max_length)


def _params(template: CarrierTemplate, message: OutboundMessage) -> str:
    if template.variables and message.context is None:
        raise PermanentError(f"{message.key}: no content to fill template {template.code} with")
    return json.dumps(dict(template.values(message.variables())), ensure_ascii=False, separators=(",", ":"))


# -- the adapters ------------------------------------------------------------------------------------

_C = TypeVar("_C")


class _AliyunAdapter(ChannelAdapter):
    provider = PROVIDER
    uses_templates = True
    endpoint_variable: ClassVar[str]
    endpoint_example: ClassVar[str]

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._runtime_ms = (int(min(timeout, CONNECT_TIMEOUT) * 1000), int(timeout * 1000))
        self._problem: ConfigurationError | None = None
        self._endpoint: Endpoint | None = None
        try:
            self._endpoint = parse_endpoint(self._endpoint_setting(), self.endpoint_variable, self.endpoint_example,
                                            https_loopback=False)
        except ConfigurationError as exc:
            self._problem = exc
            log.warning("%s", exc)
        self._client: Any = None
        self._lock = threading.Lock()
        # The SDK builds its HTTP session (and a TLS context, ~50 ms of CPU) on the first request to
        # a host, once per thread that gets there before the first has finished: six threads of a
        # fan-out's first batch built six. The first request goes alone (the others wait for it up to
        # FIRST_CALL_WAIT), so it is built once.
        self._first_call = threading.Lock()
        self._warm = False

    @abstractmethod
    def _endpoint_setting(self) -> str:
        """The JIAOYING_ALIYUN_*_ENDPOINT value this adapter talks to."""

    @abstractmethod
    def _make_client(self, config: open_api_models.Config) -> Any:
        """The SDK client (Dysmsapi or Dyvmsapi) for ``config``."""

    def _check(self) -> None:
        """ConfigurationError (before any request) when the settings cannot work."""
        if not aliyun_configured(self.settings):
            raise ConfigurationError("Aliyun needs JIAOYING_ALIYUN_ACCESS_KEY_ID and JIAOYING_ALIYUN_ACCESS_KEY_SECRET")
        if self._problem is not None:
            raise self._problem

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                assert self._endpoint is not None
                self._client = self._make_client(_sdk_config(self.settings, self._endpoint, self.timeout))
            return self._client

    def warm(self) -> None:
        """The SDK imported and the client made (~0.5 s of CPU on the first send otherwise); nothing
        sent. Settings that cannot work are left for the send to report."""
        if self._problem is None and aliyun_configured(self.settings):
            self.client()
            self.runtime()

    def runtime(self) -> RuntimeOptions:
        from darabonba.runtime import RuntimeOptions

        connect, read = self._runtime_ms
        runtime = RuntimeOptions(connect_timeout=connect, read_timeout=read)
        if self._endpoint is not None and self._endpoint.loopback:
            runtime.http_proxy = f"http://{self._endpoint.host}"  # see _sdk_config: never the environment's
        return runtime

    def _call(self, action: str, method: Callable[[Any, RuntimeOptions], _C], request: Any) -> _C:
        """One SDK call (in a worker thread), its exceptions classified."""
        if not self._warm and self._first_call.acquire(timeout=FIRST_CALL_WAIT):
            if self._warm:  # the first one finished while this one waited
                self._first_call.release()
            else:
                try:
                    return self._sdk_call(action, method, request)
                finally:
                    self._warm = True
                    self._first_call.release()
        return self._sdk_call(action, method, request)

    def _sdk_call(self, action: str, method: Callable[[Any, RuntimeOptions], _C], request: Any) -> _C:
        try:
            return method(request, self.runtime())
        except ChannelError:
            raise
        except Exception as exc:  # the SDK raises its own tree, and wraps transport errors
            raise _failure(exc, action) from exc

    def _template(self, message: OutboundMessage) -> CarrierTemplate:
        if not self.settings.carrier_templates:
            raise ConfigurationError(f"Aliyun sends approved templates only: set {TEMPLATES_VAR} "
                                     "(see `jiaoying carriers templates --provider aliyun`)")
        try:
            templates = carrier_templates(self.settings.carrier_templates)
        except CarrierTemplateError as exc:
            raise ConfigurationError(f"{TEMPLATES_VAR}: {exc}") from None
        if not any(p == PROVIDER and c == self.channel for p, c, _ in templates.entries):
            raise ConfigurationError(f"{templates.source}: no {PROVIDER} {self.channel.value} templates "
                                     f"({TEMPLATES_VAR})")
        template = templates.get(PROVIDER, self.channel, message.purpose, message.drill)
        if template is None:
            raise PermanentError(f"no approved {PROVIDER} {self.channel.value} template for "
                                 f"{Purpose(message.purpose).value} in {templates.source}")
        return template


@dataclass(frozen=True)
class _Sms:
    """One message, ready for a request."""

    message: OutboundMessage
    phone: str  # national
    code: str
    params: str  # JSON object
    out_id: str


class AliyunSmsAdapter(_AliyunAdapter):
    channel = Channel.SMS
    can_look_up = True  # QuerySendDetails by number and date, matched on OutId
    calls_back = True  # SmsReport carries biz_id, out_id and the number
    batch_size = SEND_BATCH_SMS_MAX_NUMBERS
    max_length = SMS_MAX_CHARS
    endpoint_variable = SMS_ENDPOINT_VAR
    endpoint_example = "dysmsapi.aliyuncs.com"

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        return RateLimit(SMS_REQUESTS_PER_SECOND, 1.0)

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(settings, timeout=timeout)
        # key -> the OutId of the batch request it went in under another message's key (for lookup)
        self._batched: OrderedDict[str, str] = OrderedDict()

    def _endpoint_setting(self) -> str:
        return self.settings.aliyun_sms_endpoint

    def _make_client(self, config: open_api_models.Config) -> SmsClient:
        from alibabacloud_dysmsapi20170525.client import Client as SmsClient

        return SmsClient(config)

    def _check(self) -> None:
        super()._check()
        if not self.settings.aliyun_sms_sign_name.strip():
            raise ConfigurationError("Aliyun SMS needs its approved signature (签名): JIAOYING_ALIYUN_SMS_SIGN_NAME")

    def _prepare(self, message: OutboundMessage) -> _Sms:
        if not message.to.phone:
            raise PermanentError(f"{message.to.person_id} has no phone number")
        phone = national_number(message.to.phone)
        if phone is None:
            raise PermanentError(f"{message.to.person_id}: Aliyun SMS reaches mainland (+86) numbers only")
        template = self._template(message)
        out_id = message.key if len(message.key) <= SMS_OUT_ID_MAX_CHARS else str(message.attempt_id or "")
        return _Sms(message, phone, template.code, _params(template, message), out_id)

    async def send(self, message: OutboundMessage) -> SendResult:
        self._check()
        prepared = self._prepare(message)
        return (await asyncio.to_thread(self._send_request, [prepared]))[0]

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        outcomes: list[SendResult | ChannelError | None] = [None] * len(messages)
        try:
            self._check()
        except ConfigurationError as exc:
            return [exc for _ in messages]
        ready: list[tuple[int, _Sms]] = []
        for i, message in enumerate(messages):
            try:
                ready.append((i, self._prepare(message)))
            except ChannelError as exc:
                outcomes[i] = exc

        async def one(index: int, item: _Sms) -> None:
            try:
                outcomes[index] = (await asyncio.to_thread(self._send_request, [item]))[0]
            except ChannelError as exc:
                outcomes[index] = exc

        async def run(group: list[tuple[int, _Sms]]) -> None:
            try:
                results = await asyncio.to_thread(self._send_request, [item for _, item in group])
            except PermanentError as exc:
                if len(group) == 1:
                    outcomes[group[0][0]] = exc
                    return
                # Refused whole for something that may concern one message only: each on its own.
                log.info("%s; sending its %d messages one by one", exc, len(group))
                await asyncio.gather(*(one(index, item) for index, item in group))
                return
            except ChannelError as exc:
                for index, _ in group:
                    outcomes[index] = exc
                return
            for (index, _), result in zip(group, results, strict=True):
                outcomes[index] = result

        await asyncio.gather(*(run(group) for group in _plan(ready)))
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    def _send_request(self, items: list[_Sms]) -> list[SendResult]:
        """One request for ``items`` (same template code, distinct numbers): SendSms when they share their
        variable values (or are one), else SendBatchSms. Raises the classified refusal."""
        from alibabacloud_dysmsapi20170525 import models as sms_models

        sign = self.settings.aliyun_sms_sign_name.strip()
        first = items[0]
        self._remember(first.out_id, items[1:])
        if len({item.params for item in items}) == 1:
            action = "SendSms"
            request: Any = sms_models.SendSmsRequest(
                phone_numbers=",".join(item.phone for item in items), sign_name=sign, template_code=first.code,
                template_param=first.params, out_id=first.out_id or None)
            body = self._call(action, self.client().send_sms_with_options, request).body
        else:
            action = "SendBatchSms"
            request = sms_models.SendBatchSmsRequest(
                phone_number_json=json.dumps([item.phone for item in items]),
                sign_name_json=json.dumps([sign] * len(items), ensure_ascii=False), template_code=first.code,
                template_param_json="[" + ",".join(item.params for item in items) + "]",
                out_id=first.out_id or None)
            body = self._call(action, self.client().send_batch_sms_with_options, request).body
        if body.code != "OK":
            raise classify(str(body.code or ""), str(body.message or ""), action=action)
        if not body.biz_id:
            raise TransientError(f"aliyun {action} answered OK without a BizId")
        return [SendResult(sms_provider_id(body.biz_id, item.phone)) for item in items]

    def _remember(self, out_id: str, others: list[_Sms]) -> None:
        """Before a request: the messages going under another message's OutId, so that a try in doubt
        (a timeout) can still be found by this process."""
        with self._lock:
            for item in others:
                self._batched[item.message.key] = out_id
                self._batched.move_to_end(item.message.key)
            while len(self._batched) > REMEMBERED_BATCH_KEYS:
                self._batched.popitem(last=False)

    async def lookup(self, key: str, to: Any = None) -> SendResult | None:
        phone = national_number(getattr(to, "phone", None))
        if phone is None:
            return None  # QuerySendDetails needs the number
        self._check()
        return await asyncio.to_thread(self._lookup, key, phone)

    def _lookup(self, key: str, phone: str) -> SendResult | None:
        from alibabacloud_dysmsapi20170525 import models as sms_models

        with self._lock:
            wanted = {key, self._batched.get(key, key)}  # a number is once per request: its OutId and number
        today = datetime.now(BEIJING)
        for day in (today, today - timedelta(days=1)):  # a send just before midnight is yesterday's
            for page in range(1, QUERY_MAX_PAGES + 1):
                request = sms_models.QuerySendDetailsRequest(phone_number=phone, send_date=day.strftime("%Y%m%d"),
                                                             page_size=QUERY_PAGE_SIZE, current_page=page)
                body = self._call("QuerySendDetails", self.client().query_send_details_with_options, request).body
                if body.code != "OK":
                    raise classify(str(body.code or ""), str(body.message or ""), action="QuerySendDetails")
                rows = body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else []
                for row in rows or []:
                    if row.out_id in wanted:
                        status = {2: "failed", 3: "delivered"}.get(row.send_status or 1, "sent")
                        return SendResult("", status)  # QuerySendDetails shows no BizId
                if page * QUERY_PAGE_SIZE >= int(body.total_count or 0):
                    break
        return None


def _plan(items: list[tuple[int, _Sms]]) -> list[list[tuple[int, _Sms]]]:
    """Requests for these messages: per template code, those sharing their variable values together
    (SendSms, up to 1,000 numbers), the rest together (SendBatchSms, up to 100); a number once per request."""
    by_code: dict[str, list[tuple[int, _Sms]]] = {}
    for entry in items:
        by_code.setdefault(entry[1].code, []).append(entry)
    plans: list[list[tuple[int, _Sms]]] = []
    for members in by_code.values():
        by_params: dict[str, list[tuple[int, _Sms]]] = {}
        for entry in members:
            by_params.setdefault(entry[1].params, []).append(entry)
        rest: list[tuple[int, _Sms]] = []
        for same in by_params.values():
            for chunk in _distinct(same, SEND_SMS_MAX_NUMBERS):
                if len(chunk) > 1:
                    plans.append(chunk)
                else:
                    rest.extend(chunk)
        plans.extend(_distinct(sorted(rest, key=lambda entry: entry[0]), SEND_BATCH_SMS_MAX_NUMBERS))
    return plans


def _distinct(entries: list[tuple[int, _Sms]], size: int) -> list[list[tuple[int, _Sms]]]:
    """Chunks of at most ``size`` in which no number appears twice."""
    chunks: list[tuple[set[str], list[tuple[int, _Sms]]]] = []
    for entry in entries:
        home = next((c for c in chunks if entry[1].phone not in c[0] and len(c[1]) < size), None)
        if home is None:
            home = (set(), [])
            chunks.append(home)
        home[0].add(entry[1].phone)
        home[1].append(entry)
    return [chunk for _, chunk in chunks]


class AliyunVoiceAdapter(_AliyunAdapter):
    channel = Channel.VOICE
    calls_back = True  # VoiceReport / VoiceCallReport carry the CallId and our OutId (the attempt id)
    endpoint_variable = VOICE_ENDPOINT_VAR
    endpoint_example = "dyvmsapi.aliyuncs.com"
    # Aliyun's default flow control on calls to one number: 1 a minute, 5 an hour, 20 a day.
    number_limits = (RateLimit(1, 60.0), RateLimit(5, 3600.0), RateLimit(20, 86400.0))

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        return RateLimit(VOICE_REQUESTS_PER_SECOND, 1.0)

    def _endpoint_setting(self) -> str:
        return self.settings.aliyun_voice_endpoint

    def _make_client(self, config: open_api_models.Config) -> VoiceClient:
        from alibabacloud_dyvmsapi20170525.client import Client as VoiceClient

        return VoiceClient(config)

    async def send(self, message: OutboundMessage) -> SendResult:
        from alibabacloud_dyvmsapi20170525 import models as voice_models

        self._check()
        if not message.to.phone:
            raise PermanentError(f"{message.to.person_id} has no phone number")
        callee = national_number(message.to.phone)
        if callee is None:
            raise PermanentError(f"{message.to.person_id}: Aliyun voice reaches mainland (+86) numbers only")
        template = self._template(message)
        questions = Purpose(message.purpose) in QUESTIONING
        answer = Purpose(message.purpose) in ANSWER_PURPOSES or questions
        show = self.settings.aliyun_voice_show_number.strip()
        if answer and not show:
            raise ConfigurationError("Aliyun IVR calls need the purchased caller number: "
                                     "JIAOYING_ALIYUN_VOICE_SHOW_NUMBER")
        confirm = _confirm_template(self.settings, template) if answer else None
        out_id = _voice_out_id(message)
        params = _params(template, message)
        if answer:
            key_code, key_params = (confirm.code, _params(confirm, message)) if confirm else (template.code, params)
            if key_params == "{}":
                key_params = None
            request: Any = voice_models.IvrCallRequest(
                called_number=callee, called_show_number=show, start_code=template.code, start_tts_params=params,
                menu_key_map=[voice_models.IvrCallRequestMenuKeyMap(key=key, code=key_code, tts_params=key_params)
                              for key in (QUESTION_KEYS if questions else (ACK_KEY,))],
                play_times=IVR_PLAY_TIMES, timeout=IVR_KEY_TIMEOUT_MS, out_id=out_id)
            return await asyncio.to_thread(self._place, "IvrCall", "ivr_call_with_options", request)
        request = voice_models.SingleCallByTtsRequest(
            called_number=callee, called_show_number=show or None, tts_code=template.code, tts_param=params,
            play_times=NOTICE_PLAY_TIMES, out_id=out_id)
        return await asyncio.to_thread(self._place, "SingleCallByTts", "single_call_by_tts_with_options", request)

    def _place(self, action: str, method: str, request: Any) -> SendResult:
        body = self._call(action, getattr(self.client(), method), request).body
        if body.code != "OK":
            raise classify(str(body.code or ""), str(body.message or ""), action=action)
        if not body.call_id:
            raise TransientError(f"aliyun {action} answered OK without a CallId")
        return SendResult(str(body.call_id))


def _voice_out_id(message: OutboundMessage) -> str | None:
    """The attempt id (what receipts find the attempt by); the key if there is no id and it fits."""
    if message.attempt_id is not None:
        return str(message.attempt_id)
    if len(message.key.encode("utf-8")) <= VOICE_OUT_ID_MAX_BYTES:
        return message.key
    log.warning("voice call %s has no attempt id and its key is over %d bytes: sent without OutId", message.key,
                VOICE_OUT_ID_MAX_BYTES)
    return None


NEEDS = ("JIAOYING_ALIYUN_ACCESS_KEY_ID", "JIAOYING_ALIYUN_ACCESS_KEY_SECRET")


@register(Channel.SMS, PROVIDER, configured=aliyun_configured, adapter=AliyunSmsAdapter, needs=NEEDS)
def build_sms(deps: AdapterDeps) -> ChannelAdapter:
    return AliyunSmsAdapter(deps.settings)


@register(Channel.VOICE, PROVIDER, configured=aliyun_configured, adapter=AliyunVoiceAdapter, needs=NEEDS)
def build_voice(deps: AdapterDeps) -> ChannelAdapter:
    return AliyunVoiceAdapter(deps.settings)
