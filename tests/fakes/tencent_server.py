"""A fake Tencent Cloud on 127.0.0.1 for tests: SMS (sms 2021-01-11) and Voice Message Service
(vms 2020-09-02) as the OFFICIAL ``tencentcloud-sdk-python-sms`` / ``-vms`` clients see them, and the
callbacks Tencent pushes back.

Pointing a real client at it (the SDK builds ``http://`` + endpoint and signs ``Host: <endpoint>``)::

    fake = FakeTencent(secret_id=SID, secret_key=SKEY, sms_app_id="1400000001", voice_app_id="1400000002",
                       signs={"某某县应急管理局"}, templates={"100001": 3, "200001": 2})
    fake.start()
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=fake.endpoint, reqTimeout=5))
    sms = SmsClient(Credential(SID, SKEY), "ap-guangzhou", profile)     # sms 2021-01-11
    vms = VmsClient(Credential(SID, SKEY), "ap-guangzhou", profile)     # vms 2020-09-02
    ...; fake.stop()

The wire, as the SDK speaks it: ``POST /`` with a JSON body (or ``GET /?flattened=params`` with
``reqMethod="GET"``), headers ``X-TC-Action``, ``X-TC-Version``, ``X-TC-Timestamp``, ``X-TC-Region`` and
``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<UTC date>/<service>/tc3_request,
SignedHeaders=content-type;host, Signature=<hex>``. Both products share one port; the product (and so
the service the credential scope must name: ``sms`` or ``vms``) is chosen by ``X-TC-Version``, as
Tencent chooses it by host name. The signature is recomputed here from what actually arrived (method,
path, query, the signed headers' lowercased values, SHA-256 of the raw body) with the configured
SecretKey. Every answer is HTTP 200 ``{"Response": {...}}`` with ``Content-Type: application/json``
exactly (the SDK ignores ``Response.Error`` under any other content type); errors are
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` and the SDK raises them as
``TencentCloudSDKException`` with ``.code``. Only ``fail_next`` answers another HTTP status (the SDK
raises ``ServerNetworkError``); ``hang_next`` answers nothing (the SDK's ``reqTimeout`` raises
``ClientNetworkError``).

Where Tencent answers what (docs: cloud.tencent.com/document/api/382/55981 SendSms, 382/59177 error codes;
the SDKs' own model docs and errorcodes.py):

* Whole request, ``Response.Error`` — raised by the SDK:
  ``AuthFailure.InvalidAuthorization`` / ``.SecretIdNotFound`` / ``.SignatureExpire`` (|skew| > 300 s) /
  ``.SignatureFailure``; ``MissingParameter``, ``InvalidParameter``, ``InvalidAction``, ``NoSuchVersion``,
  ``UnsupportedRegion``, ``RequestLimitExceeded`` (``throttle()``); SMS ``InvalidParameterValue.SdkAppIdNotExist``,
  ``MissingParameter.EmptyPhoneNumberSet``, ``LimitExceeded.PhoneNumberCountLimit`` (> 200 numbers),
  ``UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber``,
  ``UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone`` (the fake's templates are all mainland ones),
  ``FailedOperation.SignatureIncorrectOrUnapproved``, ``FailedOperation.TemplateIncorrectOrUnapproved``;
  every voice refusal (one number per request): ``InvalidParameterValue.SdkAppidNotExist``,
  ``InvalidParameterValue.CalledNumberVerifyFail`` (not ``+86`` mobile E.164), ``FailedOperation.
  TemplateIncorrectOrUnapproved`` (unknown template, and — a guess, vms lists no closer code — a wrong
  parameter count), ``InvalidParameterValue.ContentLengthLimit`` (> 350 characters of parameters),
  ``FailedOperation.InvalidParameters`` (PlayTimes outside 1–3; a guess), ``FailedOperation.
  InsufficientBalanceInVoicePackage`` (``arrears()``), ``LimitExceeded.DeliveryFrequencyLimit`` (``daily_limit``).
* Per number, inside ``SendStatusSet`` of an HTTP 200 success — the SDK does NOT raise; ``Code`` is
  ``"Ok"`` or the refusal, with ``SerialNo ""``, ``Fee 0``, ``IsoCode ""`` (as in the documented failure
  example of 382/55981): ``InvalidParameterValue.IncorrectPhoneNumber`` (only that number),
  ``LimitExceeded.PhoneNumberDailyLimit`` (``daily_limit(number)``: only that number),
  ``FailedOperation.TemplateParamSetNotMatchApprovedTemplate`` (wrong parameter count; the documented
  example), ``InvalidParameterValue.TemplateParameterLengthLimit`` (a variable longer than
  ``TEMPLATE_PARAM_MAX_CHARS``), ``FailedOperation.InsufficientBalanceInSmsPackage`` (``arrears()``).
  Tencent's error table lists the same codes without saying which form each takes, and public code
  handles several of them in both forms: an adapter must read both ``Response.Error`` and every
  ``SendStatusSet[i].Code``. The split above follows the reference note (template/sign refusals are
  whole-request, limits per number) and the documented/observed per-number examples.

Callbacks (Tencent signs none of them) are POSTed as JSON to ``target``: a URL (posted with httpx, loopback
only) or any object with ``.post(url, json=...)`` (an ``httpx.Client``, a FastAPI ``TestClient``; then the
URL is ``url=`` or the one configured here). What the receiver answered is kept in ``callbacks()``;
Tencent expects ``{"result": 0, "errmsg": "OK"}``. Formats:

* SMS status report (382/59178, 382/5807): a JSON **array** of ``{"user_receive_time": "YYYY-MM-DD
  HH:MM:SS", "nationcode": "86", "mobile": "138…", "report_status": "SUCCESS"|"FAIL", "errmsg":
  "DELIVRD", "description": "…", "sid": <SerialNo>}``; ``"ext"`` (the SessionContext, a string here) only
  with ``report_context=True`` — the reference names the field, the pages seen do not document its shape.
* SMS reply 上行 (382/59179): one object ``{"extend", "mobile", "nationcode", "sign", "text", "time": <unix s>}``.
* Voice call status (1128/51534): ``{"voiceprompt_callback": {"result": "0"|"1"|"2", "accept_time",
  "call_from", "callid", "end_calltime", "fee", "mobile", "nationcode", "start_calltime"}}``, all strings
  (times are unix seconds). What accept_time/fee hold for an unanswered call is not documented: "0" here.
* Keypress (1128/51535): ``{"voicekey_callback": {"call_from", "callid", "keypress", "mobile", "nationcode"}}``.
  VMS 2020-09-02 has no keypress-capable send action (only SendTtsVoice and SendCodeVoice): keys come
  only through this callback.

``auto_callbacks=True`` pushes, shortly after each accepted send (in a thread; ``wait_callbacks()``
joins them), a SUCCESS status report per accepted number (one array per request) to ``sms_status_url``
and a voice status ``result "0"`` (preceded by a keypress when ``auto_keypress`` is set) to
``voice_status_url``. ``lose_callbacks()`` drops automatic callbacks (recorded with ``lost=True``); the
delivery still shows up in ``PullSmsSendStatus`` / ``PullSmsSendStatusByPhoneNumber``.

Switches: ``fail_next``, ``fail_all`` (every request from now on, until ``fail_all(None)``), ``hang_next``,
``throttle``, ``daily_limit``, ``arrears``, ``lose_callbacks``.

As a process (benchmarks: the fake then has its own GIL): ``python -m tests.fakes.tencent_server --port P --config
'{"secret_id": ..., "template_file": "templates/carriers.sample.yaml"}'`` prints its URL and serves
``ServedTencent`` (read-only ``GET /_fake/summary`` and ``GET /_fake/arrivals``) until SIGTERM.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.fakes.process import ServedProcess, serve_fake

HOST = "127.0.0.1"
SMS_VERSION = "2021-01-11"
VMS_VERSION = "2020-09-02"
SERVICE_BY_VERSION = {SMS_VERSION: "sms", VMS_VERSION: "vms"}

# Limits, from the SDK's parameter docs and Tencent's error-code table.
MAX_NUMBERS_PER_SEND = 200  # PhoneNumberSet: "单次请求最多支持200个手机号"
TEMPLATE_PARAM_MAX_CHARS = 12  # TemplateParameterLengthLimit: "单个模板变量字符数超过12个" (individual-verified
# accounts; Tencent lifts it for enterprise-verified ones: pass param_max_chars=None for that)
VOICE_CONTENT_MAX_CHARS = 350  # SendTtsVoice TemplateParamSet: "语音消息的内容长度不超过350字" (checked on the
# parameters only: the fake does not know the template's fixed text)
PLAY_TIMES_MAX = 3  # SendTtsVoice PlayTimes: "最多3次，默认2次"
PULL_LIMIT_MAX = 100  # PullSmsSendStatus*: "最多100条"
MAX_CLOCK_SKEW_SECONDS = 300  # AuthFailure.SignatureExpire: "Timestamp 和服务器时间相差不得超过五分钟"
SMS_REGIONS = frozenset({"ap-guangzhou", "ap-beijing", "ap-nanjing"})  # sms 2021-01-11 requires a region
CALLBACK_OK = {"result": 0, "errmsg": "OK"}
BEIJING = timezone(timedelta(hours=8))
JSON = "application/json"

SMS_ACTIONS = frozenset({"SendSms", "PullSmsSendStatus", "PullSmsSendStatusByPhoneNumber"})
SMS_UNIMPLEMENTED = frozenset({
    "AddSmsSign", "AddSmsTemplate", "CallbackStatusStatistics", "DeleteSmsSign", "DeleteSmsTemplate",
    "DescribePhoneNumberInfo", "DescribeSmsSignList", "DescribeSmsTemplateList", "ModifySmsSign",
    "ModifySmsTemplate", "PullSmsReplyStatus", "PullSmsReplyStatusByPhoneNumber", "ReportConversion",
    "SendMultiGlobalSms", "SendStatusStatistics", "SmsPackagesStatistics"})
VMS_ACTIONS = frozenset({"SendTtsVoice", "SendCodeVoice"})
SEND_ACTIONS = frozenset({"SendSms", "SendTtsVoice", "SendCodeVoice"})

_AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=(?P<sid>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[\w-]+)"
                   r"/tc3_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_FLAT = re.compile(r"^(?P<name>\w+)\.(?P<index>\d+)$")

_PER_NUMBER_MESSAGE = {
    "Ok": "send success",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of sms messages sent from a single mobile number every day "
                                           "exceeds the upper limit",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": "request content does not match the template content",
    "InvalidParameterValue.TemplateParameterLengthLimit": "the number of characters of a single template variable "
                                                          f"exceeds {TEMPLATE_PARAM_MAX_CHARS}",
    "FailedOperation.InsufficientBalanceInSmsPackage": "insufficient balance in sms package",
}



class Poster(Protocol):
    def post(self, url: str, *, json: Any = ...) -> Any: ...


Target = Poster | str | None


class ApiError(Exception):
    """A refusal in Tencent's error envelope."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code, message)
        self.code, self.message = code, message or code


@dataclass(frozen=True)
class Received:
    """One API request that passed authentication (and was not eaten by a fault or ``throttle``).

    ``error`` is the whole-request refusal code, or None when the request was answered with a
    success envelope (which may still hold per-number refusals in ``statuses``)."""

    action: str
    version: str
    params: dict[str, Any]
    numbers: tuple[str, ...]  # E.164 where the number parsed, else as sent
    session_context: str
    request_id: str
    statuses: tuple[dict[str, Any], ...] = ()  # SendSms: the SendStatusSet answered
    call_id: str = ""  # SendTtsVoice / SendCodeVoice: the CallId answered
    error: str | None = None
    region: str = ""
    secret_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    @property
    def template_id(self) -> str:
        return str(self.params.get("TemplateId", ""))

    @property
    def template_params(self) -> list[str]:
        return list(self.params.get("TemplateParamSet") or [])

    @property
    def serials(self) -> dict[str, str]:
        """Number -> SerialNo, for the numbers answered ``Ok``."""
        return {s["PhoneNumber"]: s["SerialNo"] for s in self.statuses if s["Code"] == "Ok"}

    @property
    def ok_numbers(self) -> list[str]:
        return [s["PhoneNumber"] for s in self.statuses if s["Code"] == "Ok"]

    def code_for(self, number: str) -> str:
        wanted = normalize_number(number)
        for status in self.statuses:
            if status["PhoneNumber"] in (wanted, number):
                return str(status["Code"])
        raise KeyError(number)

    def serial(self, number: str) -> str:
        serial = self.serials.get(normalize_number(number))
        if not serial:
            raise KeyError(f"{number} was not accepted in this request")
        return serial


@dataclass(frozen=True)
class Callback:
    kind: str  # "sms_status" | "sms_reply" | "voice_status" | "voice_key"
    url: str
    payload: Any
    status: int | None  # HTTP status the receiver answered; None when lost or unreachable
    answer: Any  # the receiver's JSON answer (or text)
    lost: bool = False
    error: str = ""
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        """Answered as Tencent expects: HTTP 200 and ``result`` 0."""
        return self.status == 200 and isinstance(self.answer, dict) and self.answer.get("result") == 0


@dataclass
class _Report:
    serial: str
    phone: str  # E.164
    success: bool
    errmsg: str
    description: str
    receive_time: int
    sent_at: float
    session_context: str
    pulled: bool = False


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: hang
    hang: float = 0.0


def normalize_number(raw: Any) -> str:
    """E.164 for a number SendSms accepts (``+86…``, ``0086…``, ``86…`` or 11 bare digits for the
    mainland; ``+cc…``/``00cc…`` elsewhere); the input unchanged when it does not parse."""
    return _classify(raw)[1]


def _classify(raw: Any) -> tuple[str, str]:
    """("cn" | "intl" | "bad", E.164 or the raw value)."""
    if not isinstance(raw, str):
        return "bad", str(raw)
    s = raw.strip()
    if s.startswith("+"):
        digits, prefixed = s[1:], True
    elif s.startswith("00"):
        digits, prefixed = s[2:], True
    elif _CN_MOBILE.match(s):
        digits, prefixed = "86" + s, True
    else:
        digits, prefixed = s, s.startswith("86") and len(s) == 13
    if not prefixed or not digits.isdigit():
        return "bad", raw
    if digits.startswith("86"):
        return ("cn", "+" + digits) if _CN_MOBILE.match(digits[2:]) else ("bad", raw)
    return ("intl", "+" + digits) if 7 <= len(digits) <= 15 else ("bad", raw)


def _national(e164: str) -> tuple[str, str]:
    """("86", "138…") for a mainland E.164 number."""
    if e164.startswith("+86"):
        return "86", e164[3:]
    return "", e164.lstrip("+")


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in {"127.0.0.1", "localhost", "::1"}


class FakeTencent:
    def __init__(self, secret_id: str = "AKIDfake00000000000000000000000000001", secret_key: str = "fake-secret-key",
                 *, sms_app_id: str = "1400000001", voice_app_id: str = "1400000002",
                 signs: Iterable[str] = ("某某县应急管理局",),
                 templates: Mapping[str, int | Sequence[int | None]] | None = None,
                 voice_templates: Mapping[str, int | Sequence[int | None]] | None = None,
                 param_max_chars: int | None = TEMPLATE_PARAM_MAX_CHARS,
                 auto_callbacks: bool = False, callback_target: Poster | None = None,
                 sms_status_url: str | None = None, sms_reply_url: str | None = None,
                 voice_status_url: str | None = None, auto_keypress: str | None = None,
                 callback_delay: float = 0.02, report_context: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        """``templates``: template id -> number of parameters (each at most ``param_max_chars`` for SMS,
        unlimited per variable for voice), or a list of per-parameter maximum lengths (None: no limit).
        ``voice_templates`` defaults to ``templates``. ``report_context`` turns on the SessionContext
        echo in status reports and pulls (off by default at Tencent: "如需开通请联系"). ``clock`` is the
        server's clock for the timestamp check and the times it reports."""
        self.secret_id, self.secret_key = secret_id, secret_key
        self.sms_app_id, self.voice_app_id = sms_app_id, voice_app_id
        self.signs = set(signs)
        self.templates = dict(templates if templates is not None else {"100001": 3, "200001": 2})
        self.voice_templates = dict(voice_templates) if voice_templates is not None else self.templates
        self.param_max_chars = param_max_chars
        self.auto_callbacks, self.callback_target = auto_callbacks, callback_target
        self.sms_status_url, self.sms_reply_url, self.voice_status_url = sms_status_url, sms_reply_url, voice_status_url
        self.auto_keypress, self.callback_delay, self.report_context = auto_keypress, callback_delay, report_context
        self.clock = clock
        self.callback_timeout = 5.0
        self.refused = 0  # requests refused at authentication
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._attempts: list[tuple[str, str]] = []
        self._callbacks: list[Callback] = []
        self._reports: list[_Report] = []
        self._faults: list[_Fault] = []
        self._always: _Fault | None = None  # fail_all(): the answer to every request once the queue is empty
        self._throttle_left: float = 0
        self._lose_left: float = 0
        self._daily_limited: set[str] = set()
        self._arrears = False
        self._seq = itertools.count(1)
        self._pending: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1:``port`` (0: any free port); returns the URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

            def _answer(self, status: int, data: bytes, content_type: str = JSON) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._stopping.clear()
        self._server = ThreadingHTTPServer((HOST, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-tencent", daemon=True)
        self._thread.start()
        return self.url

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """What goes in ``HttpProfile(endpoint=...)`` (with ``protocol="http"``)."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def stop(self) -> None:
        self._stopping.set()  # releases hung requests
        self.wait_callbacks(timeout=2.0)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- switches the tests set ----------------------------------------------------------------

    def fail_next(self, http_status: int = 500, count: int = 1) -> None:
        """The next ``count`` authenticated requests answer ``http_status`` with a non-JSON body."""
        with self._lock:
            self._faults.extend(_Fault(http_status) for _ in range(count))

    def fail_all(self, http_status: int | None = 503) -> None:
        """Every authenticated request (after those ``fail_next``/``hang_next`` queued) answers ``http_status``
        with a non-JSON body, until ``fail_all(None)``: the provider down for good."""
        with self._lock:
            self._always = None if http_status is None else _Fault(http_status)

    def hang_next(self, seconds: float, count: int = 1) -> None:
        """The next ``count`` authenticated requests answer nothing for ``seconds`` (or until stop()),
        then the connection is closed."""
        with self._lock:
            self._faults.extend(_Fault(None, hang=seconds) for _ in range(count))

    def throttle(self, count: int | None = 1) -> None:
        """The next ``count`` authenticated requests (None: all, until ``throttle(0)``) answer
        ``RequestLimitExceeded``."""
        with self._lock:
            self._throttle_left = math.inf if count is None else count

    def daily_limit(self, number: str, on: bool = True) -> None:
        """That number is over its daily limit: ``LimitExceeded.PhoneNumberDailyLimit`` in its
        SendStatusSet entry; for voice, ``LimitExceeded.DeliveryFrequencyLimit`` (the only per-callee
        limit code vms 2020-09-02 lists)."""
        with self._lock:
            if on:
                self._daily_limited.add(normalize_number(number))
            else:
                self._daily_limited.discard(normalize_number(number))

    def arrears(self, on: bool = True) -> None:
        """Out of credit: SMS numbers get ``FailedOperation.InsufficientBalanceInSmsPackage`` per number,
        voice requests ``FailedOperation.InsufficientBalanceInVoicePackage``."""
        with self._lock:
            self._arrears = on

    def lose_callbacks(self, count: int | None = None) -> None:
        """Drop the next ``count`` automatic callbacks (None: all, until ``lose_callbacks(0)``)."""
        with self._lock:
            self._lose_left = math.inf if count is None else count

    # -- inspection ----------------------------------------------------------------------------

    def received(self, action: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if action is None or r.action == action]

    def messages(self) -> list[Received]:
        """SendSms requests answered with a success envelope (see each one's ``statuses``)."""
        return [r for r in self.received("SendSms") if r.error is None]

    def calls(self) -> list[Received]:
        """Accepted SendTtsVoice / SendCodeVoice requests."""
        return [r for r in self.received() if r.action in ("SendTtsVoice", "SendCodeVoice") and r.error is None]

    def keys_seen(self) -> list[str]:
        """SessionContext of every send request answered with a success envelope, in order (count
        duplicates with ``collections.Counter``)."""
        return [r.session_context for r in self.received() if r.action in SEND_ACTIONS and r.error is None]

    def attempts(self) -> list[tuple[str, str]]:
        """Every HTTP request: (X-TC-Action, outcome), outcome "ok", an error code, "http:<status>" or "hang"."""
        with self._lock:
            return list(self._attempts)

    def callbacks(self, kind: str | None = None) -> list[Callback]:
        with self._lock:
            return [c for c in self._callbacks if kind is None or c.kind == kind]

    def wait_callbacks(self, timeout: float = 5.0) -> None:
        """Join the automatic callbacks still being pushed."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [t for t in self._pending if t.is_alive()]
                self._pending = pending
            if not pending:
                return
            pending[0].join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    # -- the API side ------------------------------------------------------------------------------

    def _handle(self, h: Any) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body: bytes = h.rfile.read(length) if length else b""
        split = urlsplit(h.path)
        action = h.headers.get("X-TC-Action", "")
        request_id = str(uuid.uuid4())
        if split.path != "/":
            self._note(action, "http:404")
            h._answer(404, b"404 page not found", "text/plain")
            return
        try:
            auth = self._authenticate(h, split.query, body)
        except ApiError as error:
            with self._lock:
                self.refused += int(error.code.startswith("AuthFailure"))
            self._note(action, error.code)
            h._answer(200, self._error_body(error, request_id))
            return
        with self._lock:
            fault = self._faults.pop(0) if self._faults else self._always
            throttled = fault is None and self._throttle_left > 0
            if throttled:
                self._throttle_left -= 1
        if fault is not None:
            if fault.status is None:
                self._note(action, "hang")
                self._stopping.wait(fault.hang)
                h.close_connection = True
                return
            self._note(action, f"http:{fault.status}")
            h._answer(fault.status, f"<html><body>{fault.status} fake gateway error</body></html>".encode(),
                      "text/html")
            return
        if throttled:
            error = ApiError("RequestLimitExceeded", "Your current request times equals to `3000` in a second, "
                                                     "which exceeds the frequency limit `3000` for a second.")
            self._note(action, error.code)
            h._answer(200, self._error_body(error, request_id))
            return
        draft: dict[str, Any] = {}
        try:
            params = self._params(h, split.query, body)
            draft["params"] = params
            response = self._dispatch(auth, params, draft, request_id)
        except ApiError as error:
            self._note(action, error.code)
            if "params" in draft and auth["action"] in SMS_ACTIONS | VMS_ACTIONS:
                self._record(auth, draft, request_id, error=error.code)
            h._answer(200, self._error_body(error, request_id))
            return
        self._note(action, "ok")
        h._answer(200, json.dumps({"Response": {**response, "RequestId": request_id}}, ensure_ascii=False).encode())

    def _note(self, action: str, outcome: str) -> None:
        with self._lock:
            self._attempts.append((action, outcome))

    @staticmethod
    def _error_body(error: ApiError, request_id: str) -> bytes:
        payload = {"Response": {"Error": {"Code": error.code, "Message": error.message}, "RequestId": request_id}}
        return json.dumps(payload, ensure_ascii=False).encode()

    def _authenticate(self, h: Any, query: str, body: bytes) -> dict[str, Any]:
        headers = h.headers
        for name, param in (("X-TC-Action", "Action"), ("X-TC-Version", "Version"), ("X-TC-Timestamp", "Timestamp")):
            if not headers.get(name):
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{param}`.")
        authorization = headers.get("Authorization", "")
        match = _AUTH.match(authorization.strip())
        if match is None:
            raise ApiError("AuthFailure.InvalidAuthorization",
                           "Authorization is not a TC3-HMAC-SHA256 header (the only signature this fake checks).")
        if match["sid"] != self.secret_id:
            raise ApiError("AuthFailure.SecretIdNotFound",
                           "The SecretId is not found, please ensure that your SecretId is correct.")
        try:
            timestamp = int(headers["X-TC-Timestamp"])
        except ValueError:
            raise ApiError("InvalidParameter", "The value of parameter `Timestamp` is not a valid integer.") from None
        now = self.clock()
        if abs(now - timestamp) > MAX_CLOCK_SKEW_SECONDS:
            raise ApiError("AuthFailure.SignatureExpire",
                           f"Signature expired. Timestamp is {timestamp}, server time is {int(now)}; the difference "
                           f"must not exceed {MAX_CLOCK_SKEW_SECONDS} seconds.")
        signed = match["signed"].split(";")
        if "host" not in signed or "content-type" not in signed:
            raise ApiError("AuthFailure.SignatureFailure", "SignedHeaders must include content-type and host.")
        canonical_headers = "".join(f"{name}:{(headers.get(name) or '').strip().lower()}\n" for name in signed)
        if headers.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD":
            payload_hash = hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
        else:
            payload_hash = hashlib.sha256(body).hexdigest()
        canonical_query = query if h.command == "GET" else ""
        canonical_request = "\n".join([h.command, "/", canonical_query, canonical_headers, match["signed"],
                                       payload_hash])
        scope = f"{match['date']}/{match['service']}/tc3_request"
        string_to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                                    hashlib.sha256(canonical_request.encode()).hexdigest()])
        expected = tc3_signature(self.secret_key, match["date"], match["service"], string_to_sign)
        date_of_timestamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        version = headers["X-TC-Version"]
        wanted_service = SERVICE_BY_VERSION.get(version, match["service"])
        if (not hmac.compare_digest(expected, match["sig"]) or match["date"] != date_of_timestamp
                or match["service"] != wanted_service):
            raise ApiError("AuthFailure.SignatureFailure",
                           "The provided credentials could not be validated. Please check your signature is correct.")
        return {"action": headers["X-TC-Action"], "version": version, "service": match["service"],
                "secret_id": match["sid"], "region": headers.get("X-TC-Region", ""),
                "headers": {k: v for k, v in headers.items() if k.lower().startswith("x-tc-")}}

    def _params(self, h: Any, query: str, body: bytes) -> dict[str, Any]:
        if h.command == "GET":
            flat = parse_qsl(query, keep_blank_values=True)
            params: dict[str, Any] = {}
            for key, value in flat:
                m = _FLAT.match(key)
                if m:
                    items = params.setdefault(m["name"], [])
                    index = int(m["index"])
                    items.extend([""] * (index + 1 - len(items)))
                    items[index] = value
                else:
                    params[key] = value
            return params
        content_type = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise ApiError("InvalidParameter", f"Content-Type {content_type!r} is not supported by this fake.")
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            raise ApiError("FailedOperation.JsonParseFail", "Failed to parse the JSON request body.") from None
        if not isinstance(parsed, dict):
            raise ApiError("InvalidParameter", "The request body must be a JSON object.")
        return parsed

    def _dispatch(self, auth: dict[str, Any], params: dict[str, Any], draft: dict[str, Any],
                  request_id: str) -> dict[str, Any]:
        action, version = auth["action"], auth["version"]
        if version not in SERVICE_BY_VERSION:
            raise ApiError("NoSuchVersion", f"The API version `{version}` does not exist.")
        known = SMS_ACTIONS | SMS_UNIMPLEMENTED if version == SMS_VERSION else VMS_ACTIONS
        if action not in known:
            raise ApiError("InvalidAction", f"The action `{action}` does not exist in version `{version}`.")
        if action not in SMS_ACTIONS | VMS_ACTIONS:
            raise ApiError("UnsupportedOperation", f"The fake does not implement `{action}`.")
        if version == SMS_VERSION and auth["region"] not in SMS_REGIONS:
            raise ApiError("UnsupportedRegion", f"The region `{auth['region']}` is not supported by sms.")
        handler = {"SendSms": self._send_sms, "PullSmsSendStatus": self._pull_status,
                   "PullSmsSendStatusByPhoneNumber": self._pull_status_by_number,
                   "SendTtsVoice": self._send_tts, "SendCodeVoice": self._send_code_voice}[action]
        response = handler(params, draft)
        record = self._record(auth, draft, request_id)
        if action in SEND_ACTIONS and self.auto_callbacks:
            self._schedule_auto(record)
        return response

    def _record(self, auth: dict[str, Any], draft: dict[str, Any], request_id: str,
                error: str | None = None) -> Received:
        record = Received(action=auth["action"], version=auth["version"], params=draft.get("params", {}),
                          numbers=tuple(draft.get("numbers", ())), session_context=draft.get("session_context", ""),
                          request_id=request_id, statuses=tuple(draft.get("statuses", ())),
                          call_id=draft.get("call_id", ""), error=error, region=auth["region"],
                          secret_id=auth["secret_id"], headers=auth["headers"], at=self.clock())
        with self._lock:
            self._received.append(record)
        return record

    # -- parameter helpers -------------------------------------------------------------------------

    @staticmethod
    def _str(params: dict[str, Any], name: str, required: bool = False) -> str | None:
        value = params.get(name)
        if value is None:
            if required:
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
            return None
        if not isinstance(value, str):
            raise ApiError("InvalidParameter", f"The type of parameter `{name}` is incorrect.")
        return value

    @staticmethod
    def _str_list(params: dict[str, Any], name: str, required: bool = False) -> list[str] | None:
        value = params.get(name)
        if value is None:
            if required:
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
            return None
        if not isinstance(value, list):
            raise ApiError("InvalidParameter", f"The type of parameter `{name}` is incorrect.")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ApiError("InvalidParameter", f"The type of parameter `{name}.{index}` is incorrect.")
        return value

    @staticmethod
    def _int(params: dict[str, Any], name: str, required: bool = False) -> int | None:
        value = params.get(name)
        if value is None:
            if required:
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
            raise ApiError("InvalidParameter", f"The type of parameter `{name}` is incorrect.")
        return int(value)

    def _limits(self, spec: int | Sequence[int | None], per_variable: int | None) -> tuple[int | None, ...]:
        if isinstance(spec, int):
            return (per_variable,) * spec
        return tuple(spec)

    # -- SMS ------------------------------------------------------------------------------------------

    def _send_sms(self, params: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
        numbers = self._str_list(params, "PhoneNumberSet", required=True) or []
        app_id = self._str(params, "SmsSdkAppId", required=True)
        template_id = self._str(params, "TemplateId", required=True) or ""
        sign = self._str(params, "SignName")
        values = self._str_list(params, "TemplateParamSet") or []
        context = self._str(params, "SessionContext") or ""
        self._str(params, "ExtendCode")
        self._str(params, "SenderId")
        classified = [_classify(n) for n in numbers]
        draft.update(numbers=[e164 for _, e164 in classified], session_context=context)
        if app_id != self.sms_app_id:
            raise ApiError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        if not numbers:
            raise ApiError("MissingParameter.EmptyPhoneNumberSet", "The PhoneNumberSet is empty.")
        if len(numbers) > MAX_NUMBERS_PER_SEND:
            raise ApiError("LimitExceeded.PhoneNumberCountLimit",
                           f"The number of phone numbers in one request exceeds {MAX_NUMBERS_PER_SEND}.")
        kinds = {kind for kind, _ in classified}
        if "cn" in kinds and "intl" in kinds:
            raise ApiError("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
                           "The request contains both Chinese mainland and international phone numbers.")
        if "intl" in kinds:
            raise ApiError("UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
                           "A Chinese mainland template cannot be sent to a phone number outside the mainland.")
        if sign is None or sign not in self.signs:
            raise ApiError("FailedOperation.SignatureIncorrectOrUnapproved",
                           "The signature is not approved or its format is incorrect.")
        spec = self.templates.get(template_id)
        if spec is None:
            raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved",
                           "The template is not approved or the request content does not match the approved template.")
        limits = self._limits(spec, self.param_max_chars)
        content_code = None
        if len(values) != len(limits):
            content_code = "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
        elif any(limit is not None and len(v) > limit for v, limit in zip(values, limits, strict=True)):
            content_code = "InvalidParameterValue.TemplateParameterLengthLimit"
        with self._lock:
            arrears, limited = self._arrears, set(self._daily_limited)
        statuses = []
        for raw, (kind, e164) in zip(numbers, classified, strict=True):
            if kind == "bad":
                code = "InvalidParameterValue.IncorrectPhoneNumber"
            elif content_code:
                code = content_code
            elif arrears:
                code = "FailedOperation.InsufficientBalanceInSmsPackage"
            elif e164 in limited:
                code = "LimitExceeded.PhoneNumberDailyLimit"
            else:
                code = "Ok"
            ok = code == "Ok"
            statuses.append({"SerialNo": self._serial() if ok else "", "PhoneNumber": e164 if kind != "bad" else raw,
                             "Fee": 1 if ok else 0, "SessionContext": context, "Code": code,
                             "Message": _PER_NUMBER_MESSAGE[code], "IsoCode": "CN" if ok else ""})
        draft["statuses"] = statuses
        return {"SendStatusSet": statuses}

    def _serial(self) -> str:
        # Documented shape: "5000:1045710669157053657849499619".
        return f"5000:{int(self.clock())}{next(self._seq):012d}{uuid.uuid4().int % 10**8:08d}"

    def _pull_item(self, report: _Report) -> dict[str, Any]:
        nation, mobile = _national(report.phone)
        return {"UserReceiveTime": report.receive_time, "CountryCode": nation, "SubscriberNumber": mobile,
                "PhoneNumber": report.phone, "SerialNo": report.serial,
                "ReportStatus": "SUCCESS" if report.success else "FAIL", "Description": report.errmsg,
                "SessionContext": report.session_context if self.report_context else ""}

    def _check_pull(self, params: dict[str, Any]) -> int:
        if self._str(params, "SmsSdkAppId", required=True) != self.sms_app_id:
            raise ApiError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        limit = self._int(params, "Limit", required=True) or 0
        if not 1 <= limit <= PULL_LIMIT_MAX:
            raise ApiError("InvalidParameterValue.LimitVerifyFail", f"Limit must be between 1 and {PULL_LIMIT_MAX}.")
        return limit

    def _pull_status(self, params: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
        """Delivery reports not pulled before, oldest first (each is handed out once)."""
        limit = self._check_pull(params)
        with self._lock:
            batch = [r for r in self._reports if not r.pulled][:limit]
            for report in batch:
                report.pulled = True
        return {"PullSmsSendStatusSet": [self._pull_item(r) for r in batch]}

    def _pull_status_by_number(self, params: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
        """Delivery reports for one number whose message was SENT in [BeginTime, EndTime] (unix seconds;
        which time Tencent filters on is not documented). Like Tencent, a message shows up only once its
        delivery report has arrived."""
        limit = self._check_pull(params)
        phone = self._str(params, "PhoneNumber", required=True) or ""
        begin = self._int(params, "BeginTime", required=True) or 0
        if self._int(params, "Offset", required=True) != 0:
            raise ApiError("InvalidParameterValue.OffsetVerifyFail", "Offset must be 0.")
        end = self._int(params, "EndTime")
        end = int(self.clock()) if end is None else end
        if begin > end:
            raise ApiError("InvalidParameterValue.BeginTimeVerifyFail", "BeginTime is later than EndTime.")
        wanted = normalize_number(phone)
        draft["numbers"] = [wanted]
        with self._lock:
            found = [r for r in self._reports if r.phone == wanted and begin <= int(r.sent_at) <= end][:limit]
        return {"PullSmsSendStatusSet": [self._pull_item(r) for r in found]}

    # -- voice ----------------------------------------------------------------------------------------

    def _voice_common(self, params: dict[str, Any], draft: dict[str, Any]) -> str:
        called = self._str(params, "CalledNumber", required=True) or ""
        app_id = self._str(params, "VoiceSdkAppid", required=True)
        context = self._str(params, "SessionContext") or ""
        play_times = self._int(params, "PlayTimes")
        draft.update(numbers=[normalize_number(called)], session_context=context)
        if app_id != self.voice_app_id:
            raise ApiError("InvalidParameterValue.SdkAppidNotExist", "SdkAppid not exist.")
        kind, e164 = _classify(called)
        if not called.startswith("+") or kind != "cn":  # VMS wants E.164 and calls the mainland only
            raise ApiError("InvalidParameterValue.CalledNumberVerifyFail", "The called number failed verification.")
        if play_times is not None and not 1 <= play_times <= PLAY_TIMES_MAX:
            # Code not documented for this case; FailedOperation.InvalidParameters is a guess.
            raise ApiError("FailedOperation.InvalidParameters", f"PlayTimes must be between 1 and {PLAY_TIMES_MAX}.")
        return e164

    def _voice_limits(self, e164: str) -> None:
        with self._lock:
            arrears, limited = self._arrears, e164 in self._daily_limited
        if arrears:
            raise ApiError("FailedOperation.InsufficientBalanceInVoicePackage",
                           "Insufficient balance in voice package.")
        if limited:
            raise ApiError("LimitExceeded.DeliveryFrequencyLimit", "The delivery frequency limit was hit.")

    def _send_tts(self, params: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
        template_id = self._str(params, "TemplateId", required=True) or ""
        values = self._str_list(params, "TemplateParamSet") or []
        e164 = self._voice_common(params, draft)
        spec = self.voice_templates.get(template_id)
        if spec is None:
            raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved",
                           "The template is not approved or the request content does not match the approved template.")
        limits = self._limits(spec, None)
        if len(values) != len(limits):
            # vms lists no parameter-count code; "content does not match the template" is the closest.
            raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved",
                           "The request content does not match the approved template (parameter count).")
        too_long = any(limit is not None and len(v) > limit for v, limit in zip(values, limits, strict=True))
        if too_long or sum(len(v) for v in values) > VOICE_CONTENT_MAX_CHARS:
            raise ApiError("InvalidParameterValue.ContentLengthLimit",
                           f"The voice content exceeds {VOICE_CONTENT_MAX_CHARS} characters or a variable's limit.")
        self._voice_limits(e164)
        return self._voice_accepted(draft)

    def _send_code_voice(self, params: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
        code = self._str(params, "CodeMessage", required=True) or ""
        e164 = self._voice_common(params, draft)
        if not code.isdigit():
            raise ApiError("FailedOperation.InvalidParameters", "CodeMessage must be digits only.")
        self._voice_limits(e164)
        return self._voice_accepted(draft)

    def _voice_accepted(self, draft: dict[str, Any]) -> dict[str, Any]:
        call_id = str(uuid.uuid4())
        draft["call_id"] = call_id
        return {"SendStatus": {"CallId": call_id, "SessionContext": draft["session_context"]}}

    # -- callbacks ---------------------------------------------------------------------------------

    def report(self, target: Target, received: Received, number: str, success: bool = True, *,
               errmsg: str | None = None, description: str | None = None, url: str | None = None) -> Callback | None:
        """The delivery report for ``number`` of a SendSms we accepted. It is also what the pull APIs
        return from now on. ``target=None`` only records it (no callback)."""
        report = self._add_report(received, number, success, errmsg, description)
        if target is None:
            return None
        return self._deliver("sms_status", target, url or self.sms_status_url, [self._report_item(report)])

    def reply(self, target: Target, phone: str, text: str, *, sign: str | None = None, extend: str = "",
              url: str | None = None) -> Callback:
        """A reply (上行) from ``phone``."""
        nation, mobile = _national(normalize_number(phone))
        payload = {"extend": extend, "mobile": mobile, "nationcode": nation,
                   "sign": sign if sign is not None else min(self.signs, default=""), "text": text,
                   "time": int(self.clock())}
        return self._deliver("sms_reply", target, url or self.sms_reply_url, payload)

    def call_status(self, target: Target, call: Received, result: str | int = "0", *,
                    url: str | None = None) -> Callback:
        """The voice call's end: result "0" answered, "1" not answered, "2" failed (or those words)."""
        return self._deliver("voice_status", target, url or self.voice_status_url, self._call_payload(call, result))

    def keypress(self, target: Target, call: Received, keys: str = "1", *, url: str | None = None) -> Callback:
        """The callee pressed ``keys`` (sent as one callback; whether Tencent sends one per key is not documented)."""
        nation, mobile = _national(call.numbers[0])
        payload = {"voicekey_callback": {"call_from": "", "callid": call.call_id, "keypress": keys,
                                         "mobile": mobile, "nationcode": nation}}
        return self._deliver("voice_key", target, url or self.voice_status_url, payload)

    def _add_report(self, received: Received, number: str, success: bool, errmsg: str | None,
                    description: str | None) -> _Report:
        serial = received.serial(number)
        report = _Report(serial=serial, phone=normalize_number(number), success=success,
                         errmsg=errmsg or ("DELIVRD" if success else "UNDELIV"),
                         description=description or ("用户短信送达成功" if success else "用户短信未送达"),
                         receive_time=int(self.clock()), sent_at=received.at,
                         session_context=received.session_context)
        with self._lock:
            self._reports.append(report)
        return report

    def _report_item(self, report: _Report) -> dict[str, Any]:
        nation, mobile = _national(report.phone)
        item: dict[str, Any] = {
            "user_receive_time": datetime.fromtimestamp(report.receive_time, BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "nationcode": nation, "mobile": mobile, "report_status": "SUCCESS" if report.success else "FAIL",
            "errmsg": report.errmsg, "description": report.description, "sid": report.serial}
        if self.report_context:
            item["ext"] = report.session_context
        return item

    def _call_payload(self, call: Received, result: str | int) -> dict[str, Any]:
        code = {"answered": "0", "unanswered": "1", "no-answer": "1", "failed": "2"}.get(str(result), str(result))
        if code not in ("0", "1", "2"):
            raise ValueError(f"voice result must be 0, 1 or 2, not {result!r}")
        nation, mobile = _national(call.numbers[0])
        start = int(call.at)
        answered = code == "0"
        return {"voiceprompt_callback": {
            "result": code, "accept_time": str(start + 5) if answered else "0", "call_from": "", "callid": call.call_id,
            "end_calltime": str(start + 35 if answered else start + 60), "fee": "1" if answered else "0",
            "mobile": mobile, "nationcode": nation, "start_calltime": str(start)}}

    def _deliver(self, kind: str, target: Target, url: str | None, payload: Any, *, lost: bool = False) -> Callback:
        dest = target if isinstance(target, str) else url
        if not dest:
            raise ValueError(f"no URL for the {kind} callback: pass a URL target or url=, or configure one")
        if lost:
            return self._keep(Callback(kind, dest, payload, None, None, lost=True))
        try:
            if target is None or isinstance(target, str):
                if not _is_loopback(dest):
                    raise ValueError(f"the fake posts callbacks to 127.0.0.1 only, not {dest}")
                with httpx.Client(timeout=self.callback_timeout, trust_env=False) as client:
                    response = client.post(dest, json=payload)
            else:
                response = target.post(dest, json=payload)
        except httpx.HTTPError as exc:
            return self._keep(Callback(kind, dest, payload, None, None, error=repr(exc)))
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        return self._keep(Callback(kind, dest, payload, response.status_code, answer))

    def _keep(self, callback: Callback) -> Callback:
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def _take_lost(self) -> bool:
        with self._lock:
            if self._lose_left > 0:
                self._lose_left -= 1
                return True
            return False

    def _schedule_auto(self, received: Received) -> None:
        thread = threading.Thread(target=self._auto, args=(received,), name="fake-tencent-callback", daemon=True)
        with self._lock:
            self._pending.append(thread)
        thread.start()

    def _auto(self, received: Received) -> None:
        if self._stopping.wait(self.callback_delay):
            return
        target = self.callback_target
        if received.action == "SendSms":
            reports = [self._add_report(received, n, True, None, None) for n in received.ok_numbers]
            if reports and self.sms_status_url:
                self._deliver("sms_status", target, self.sms_status_url, [self._report_item(r) for r in reports],
                              lost=self._take_lost())
        elif self.voice_status_url:
            if self.auto_keypress:
                nation, mobile = _national(received.numbers[0])
                key = {"voicekey_callback": {"call_from": "", "callid": received.call_id,
                                             "keypress": self.auto_keypress, "mobile": mobile, "nationcode": nation}}
                self._deliver("voice_key", target, self.voice_status_url, key, lost=self._take_lost())
            self._deliver("voice_status", target, self.voice_status_url, self._call_payload(received, "0"),
                          lost=self._take_lost())


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """TC3-HMAC-SHA256: HMAC chain "TC3"+key -> date -> service -> "tc3_request", then the string to sign."""
    def _h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing_key = _h(_h(_h(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# -- as a process (benchmarks) --------------------------------------------------------------------


class ServedTencent(ServedProcess, FakeTencent):
    """The fake as its own process (``python -m tests.fakes.tencent_server``), so a benchmark's engine does not
    share its GIL. Besides the API it answers two read-only, unauthenticated introspection paths:

    ``GET /_fake/summary``   {"requests", "send_requests", "codes": {code: numbers}, "accepted_numbers",
                             "unique_numbers", "refused_numbers", "first_at", "last_new_at", "handle_s",
                             "handle_ms": {"p50", "p99", "max"}} — ``first_at``/``last_new_at``: time.time() of the
                             first accepted number and of the last number accepted for the first time;
                             ``handle_s``: the summed wall time of the API requests (the fake's own time)
    ``GET /_fake/arrivals``  {"messages": [{"at", "number", "key", "code", "serial"}]} — one record per number of
                             every SendSms that got past authentication (``code`` "Ok" when that number was
                             accepted); ``key`` is the request's SessionContext (the attempt key for one message,
                             ``batch:<n>:<first key>`` for a batch), ``number`` the national form, ``at`` time.time()
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handled: list[float] = []
        self._cursor = 0
        self._first_seen: dict[str, float] = {}
        self._counts = {"send_requests": 0, "accepted_numbers": 0, "refused_numbers": 0}
        self._codes: dict[str, int] = {}

    def _introspect(self, h: Any) -> None:
        path = urlsplit(h.path).path
        if path == "/_fake/summary":
            h._answer(200, json.dumps(self.summary()).encode())
        elif path == "/_fake/arrivals":
            h._answer(200, json.dumps({"messages": self.arrivals()}).encode())
        else:
            h._answer(404, b"404 page not found", "text/plain")

    @staticmethod
    def _per_number(r: Received) -> list[tuple[str, str, str]]:
        """(national number, code, SerialNo) for each number of a SendSms record."""
        if r.error is not None:
            return [(_national(n)[1], r.error, "") for n in r.numbers]
        return [(_national(str(s["PhoneNumber"]))[1], str(s["Code"]), str(s["SerialNo"])) for s in r.statuses]

    def arrivals(self) -> list[dict[str, Any]]:
        return [{"at": r.at, "number": number, "key": r.session_context, "code": code, "serial": serial}
                for r in self.received("SendSms") for number, code, serial in self._per_number(r)]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            fresh, self._cursor = self._received[self._cursor:], len(self._received)
            handled = sorted(self._handled)
            for r in fresh:
                if r.action != "SendSms":
                    continue
                self._counts["send_requests"] += 1
                for number, code, _ in self._per_number(r):
                    self._codes[code] = self._codes.get(code, 0) + 1
                    if code != "Ok":
                        self._counts["refused_numbers"] += 1
                        continue
                    self._counts["accepted_numbers"] += 1
                    if r.at < self._first_seen.get(number, math.inf):
                        self._first_seen[number] = r.at
            faults: dict[str, int] = {}
            for _, outcome in self._attempts:
                if outcome.startswith(("http:", "hang")):
                    faults[outcome] = faults.get(outcome, 0) + 1
            seen = self._first_seen.values()
            ordered = handled  # sorted above
            return {"requests": len(handled), **self._counts, "codes": self._codes | faults,
                    "unique_numbers": len(self._first_seen), "first_at": min(seen, default=None),
                    "last_new_at": max(seen, default=None), "handle_s": sum(handled),
                    "handle_ms": {"p50": ordered[len(ordered) // 2] * 1000 if ordered else None,
                                  "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
                                  if ordered else None,
                                  "max": ordered[-1] * 1000 if ordered else None}}


def templates_from_file(path: str) -> tuple[dict[str, int], dict[str, int], int | None]:
    """The Tencent SMS and voice template ids of a JIAOYING_CARRIER_TEMPLATES file (templates/carriers.sample.yaml)
    with their parameter counts, and its ``max_variable_length`` (the fake's ``param_max_chars``)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        section = (yaml.safe_load(handle) or {}).get("tencent") or {}
    sms = {str(e["code"]): len(e.get("variables") or []) for e in (section.get("sms") or {}).values()}
    voice = {str(e["code"]): len(e.get("variables") or []) for e in (section.get("voice") or {}).values()}
    return sms, voice, section.get("max_variable_length", TEMPLATE_PARAM_MAX_CHARS)


def served_from_config(config: Mapping[str, Any]) -> ServedTencent:
    """A ServedTencent from a JSON config: ``secret_id``, ``secret_key``, ``sms_app_id``, ``voice_app_id``,
    ``signs``, ``templates`` / ``voice_templates`` (id -> parameter count) and/or ``template_file`` (a carrier
    template file, see ``templates_from_file``), ``param_max_chars``, and ``fail_all``: an HTTP status every
    request gets."""
    known = {"secret_id", "secret_key", "sms_app_id", "voice_app_id", "signs", "templates", "voice_templates",
             "template_file", "param_max_chars", "fail_all"}
    unknown = set(config) - known
    if unknown:
        raise SystemExit(f"tencent fake: unknown config keys {sorted(unknown)} (known: {sorted(known)})")
    sms: dict[str, Any] = {}
    voice: dict[str, Any] = {}
    max_chars: int | None = TEMPLATE_PARAM_MAX_CHARS
    if config.get("template_file"):
        sms, voice, max_chars = templates_from_file(config["template_file"])
    sms.update(config.get("templates") or {})
    voice.update(config.get("voice_templates") or {})
    kwargs: dict[str, Any] = {k: config[k] for k in ("secret_id", "secret_key", "sms_app_id", "voice_app_id")
                              if k in config}
    fake = ServedTencent(**kwargs, signs=config.get("signs", ("某某县应急管理局",)), templates=sms or None,
                         voice_templates=voice or None, param_max_chars=config.get("param_max_chars", max_chars))
    if config.get("fail_all"):
        fake.fail_all(int(config["fail_all"]))
    return fake


def main(argv: list[str] | None = None) -> None:
    serve_fake("Tencent Cloud SMS/VMS API", served_from_config, argv)


if __name__ == "__main__":
    main()
