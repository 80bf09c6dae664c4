"""A fake Alibaba Cloud (阿里云) SMS and Voice on 127.0.0.1 for tests: the parts of Dysmsapi and Dyvmsapi
(both version 2017-05-25) that the OFFICIAL SDKs use to send, and the HTTP batch pushes Aliyun sends back.

Both SDK clients are pointed at the same fake (it dispatches on the action name, as one host would)::

    fake = FakeAliyun("LTAI...", "secret", sign_names={"某某县应急管理局"},
                      templates={"SMS_100001": ["name", "headline", "code"], "TTS_200001": ["name"]})
    fake.start()
    config = open_api_models.Config(access_key_id="LTAI...", access_key_secret="secret",
                                    endpoint=fake.endpoint, protocol="http")   # endpoint: "127.0.0.1:PORT"
    sms = alibabacloud_dysmsapi20170525.client.Client(config)                 # voice: dyvmsapi's Client

What the SDK sends (alibabacloud-tea-openapi 0.4.x, read from its source): ``POST /`` with every parameter in
the query string except SendBatchSms's four JSON arrays, which go in an ``application/x-www-form-urlencoded``
body; list parameters are flattened (``MenuKeyMap.1.Key``, ``MenuKeyMap.1.Code``, ``MenuKeyMap.1.TtsParams``).
It signs with signature V3 by default: ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,
SignedHeaders=host;x-acs-action;...,Signature=<hex>`` over the canonical request (method, path, sorted
percent-encoded query, the signed headers, and ``x-acs-content-sha256``, the hex SHA-256 of the body), with
HMAC-SHA256 keyed by the AccessKey secret. The fake recomputes it. It also takes the older RPC signature
(``Config(signature_algorithm="v2")``: ``Signature`` in the query, HMAC-SHA1 keyed by ``secret + "&"``).
Gateway refusals are HTTP 4xx with Aliyun's error body and surface in the SDK as ``ClientException`` with
``.code``: ``InvalidAccessKeyId.NotFound`` (404), ``SignatureDoesNotMatch`` (400), ``IncompleteSignature``
(400), ``InvalidTimeStamp.Expired`` (400, x-acs-date more than 15 minutes off), ``SignatureNonceUsed`` (400,
a replayed nonce), ``Missing<Parameter>`` (400), ``InvalidAction.NotFound`` (404), ``InvalidVersion`` (400),
and ``Throttling.User`` (400, see ``throttle_next``; with ``retry_after`` the SDK raises ThrottlingException).

Business refusals are HTTP 200 with ``Code`` other than ``OK`` (the SDK returns them, it does not raise):

    isv.SMS_SIGNATURE_ILLEGAL        sign name not configured on the fake
    isv.SMS_TEMPLATE_ILLEGAL         SMS template code unknown (codes starting "SMS_" are SMS templates)
    isv.TTS_TEMPLATE_ILLEGAL         voice template unknown (any other configured code, e.g. "TTS_...")
    isv.TEMPLATE_MISSING_PARAMETERS  a declared template variable has no value (wrong or missing names)
    isv.TEMPLATE_PARAMS_ILLEGAL      a value for a variable the template does not declare
    isv.PARAM_LENGTH_LIMIT           a value longer than VARIABLE_MAX_CHARS
    isv.INVALID_JSON_PARAM           TemplateParam(Json) not a JSON object (array) of string values
    isv.MOBILE_NUMBER_ILLEGAL        not a mainland mobile number (voice also takes a landline with area code)
    isv.MOBILE_COUNT_OVER_LIMIT      more than 1,000 numbers (SendSms) or 100 (SendBatchSms)
    isv.DISPLAY_NUMBER_ILLEGAL       CalledShowNumber not one of ``show_numbers`` (when any are configured)
    isv.INVALID_PARAMETERS           other malformed values (PlayTimes not 1-3, MenuKeyMap keys, array lengths)
    isv.AMOUNT_NOT_ENOUGH            ``arrears()`` is on: every send is refused
    isv.BUSINESS_LIMIT_CONTROL       ``business_limit(number)``, or the documented per-number flow control when
                                     ``enforce_flow_control=True`` (SMS notice: same sign+template+number 50 per
                                     Beijing day; voice: per callee 1/min, 5/h, 20/24 h)

A request is refused WHOLE: one bad number, sign name or parameter set anywhere in a SendSms or SendBatchSms
refuses the request, nothing is sent and no BizId is returned. Aliyun's synchronous answer has one ``Code``
and no per-number result, so there is nothing else it could express; receipts (SmsReport) are per number.

Test switches: ``fail_next(status)`` (5xx with Aliyun's error body; the SDK raises ServerException),
``hang_next(seconds, deliver=False)`` (answer nothing for that long; with ``deliver=True`` the send is
accepted first, as when a timed-out send went out anyway), ``fail_all(status)`` (every request from now on,
until ``fail_all(None)``), ``throttle_next()``, ``business_limit(number)``, ``arrears()``, ``lose_callbacks()``.

Pushes (Aliyun "HTTP 批量推送": a POSTed JSON array, UTF-8) to a URL with httpx, or through any client with
``.post(url, json=...)`` (a FastAPI TestClient, an httpx.Client):

    SmsReport        [{phone_number, send_time, report_time, success, err_code, err_msg, sms_size, biz_id, out_id}]
    SmsUp            [{phone_number, send_time, content, sign_name, dest_code, sequence_id}]
    VoiceCallReport  [{call_id, status_code, status_time, out_id, dtmf}]      (status_code 300000 = a keypress)
    VoiceReport      [{call_id, caller, callee, status_code, status_msg, originate_time, ring_time, start_time,
                       end_time, duration, hangup_direction, out_id, dtmf, voice_type}]  (200000 = heard it all)

The receiver should answer ``{"code": 0, "msg": "接收成功"}``; Aliyun only checks HTTP 200 and that ``code`` is a
number, and pushes again later otherwise (``redeliver()`` plays those retries now). Every push is recorded
with the answer (``callbacks()``). With ``auto_callbacks=True`` each accepted send is followed by its receipts
on a background thread (``drain()`` waits for them); ``sms_outcome``/``voice_outcome`` choose what they say.

Inspection: ``received()`` (every authenticated request, refused or not), ``messages()`` and ``calls()``
(accepted sends), ``keys_seen()`` (OutIds in order, to count duplicates), ``auth_failures``.

As a process (benchmarks: the fake then has its own GIL): ``python -m tests.fakes.aliyun_server --port P --config
'{"access_key_id": ..., "template_file": "templates/carriers.sample.yaml", "fail_all": 503}'`` prints its URL and
serves ``ServedAliyun`` (read-only ``GET /_fake/summary`` and ``GET /_fake/arrivals``) until SIGTERM.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import math
import queue
import random
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from tests.fakes.process import ServedProcess, serve_fake

HOST = "127.0.0.1"
API_VERSION = "2017-05-25"
BEIJING = timezone(timedelta(hours=8), "CST")

# Limits. Sources: /work/shared/reference/mainland-carriers.md unless noted.
SEND_SMS_MAX_NUMBERS = 1_000
SEND_BATCH_SMS_MAX_NUMBERS = 100
# Per-variable length. The reference doc only says limits exist ("set by the provider and the template type");
# the figure is Aliyun's FAQ help.aliyun.com/zh/document_detail/3041859.html: "默认的 35 字符上限" for a
# variable unless the account has the limit lifted (verification-code variables are shorter, 4-6).
VARIABLE_MAX_CHARS = 35
# Not documented for voice TTS templates in the sources read; the same figure is assumed.
VOICE_VARIABLE_MAX_CHARS = 35
SMS_OUT_ID_MAX_CHARS = 255  # SendBatchSms API doc: OutId "长度小于 256 的字符串"
VOICE_OUT_ID_MAX_BYTES = 15  # IvrCall SDK model: OutId "must be 1 to 15 bytes in length"
PLAY_TIMES = range(1, 4)  # IvrCall: PlayTimes 1-3
QUERY_PAGE_SIZE_MAX = 50  # QuerySendDetails: PageSize 1-50
SIGNATURE_MAX_SKEW_S = 15 * 60  # V3: x-acs-date must be within 15 minutes
SMS_NOTICE_DAILY_LIMIT = 50  # same sign + template + number, per natural day
VOICE_CALLEE_LIMITS = ((60.0, 1), (3_600.0, 5), (86_400.0, 20))  # (window seconds, calls) per callee
SINGLE_SMS_CHARS, MULTIPART_SMS_CHARS = 70, 67  # sms_size: one message up to 70 characters, then 67 per part

SMS_ACTIONS = frozenset({"SendSms", "SendBatchSms", "QuerySendDetails"})
VOICE_ACTIONS = frozenset({"SingleCallByTts", "IvrCall"})
SEND_ACTIONS = frozenset({"SendSms", "SendBatchSms", "SingleCallByTts", "IvrCall"})
# RPC (V2) parameters that are about the request, not the operation.
_COMMON_PARAMS = frozenset({"Action", "Version", "Format", "Timestamp", "SignatureNonce", "SignatureMethod",
                            "SignatureVersion", "AccessKeyId", "Signature", "SecurityToken", "SignatureType"})

_MOBILE = re.compile(r"^(?:\+86|0086|86|\+)?(1[3-9]\d{9})$")
_LANDLINE = re.compile(r"^(?:\+86|0086|86)?(0[1-9]\d{8,10})$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
_MENU_KEY = re.compile(r"^MenuKeyMap\.(\d+)\.(Key|Code|TtsParams)$")
_DTMF = re.compile(r"^[0-9*#]$")

RECEIPT_MESSAGES = {"DELIVERED": "用户接收成功"}
VOICE_STATUS = {  # help.aliyun.com/document_detail/55085.htm (呼叫状态码), the ones a notice call can end with
    "200000": "用户听完语音", "200001": "用户提前挂机未完整收听", "200002": "用户占线",
    "200003": "用户收到呼叫但未接听", "200004": "用户号码不合法", "200005": "被叫用户无法接通",
    "200007": "用户无法接通(不在服务区)", "200008": "获取按键超时", "200010": "关机", "200011": "停机",
    "300000": "DTMF按键消息",
}
ANSWERED = frozenset({"200000", "200001", "200008"})  # the callee picked up



class Poster(Protocol):
    def post(self, url: str, *, json: Any = ...) -> Any: ...


@dataclass(frozen=True)
class Received:
    """One authenticated request as the fake understood it (refused ones included: see ``code``)."""

    action: str
    request_id: str
    params: dict[str, str]  # the operation's parameters, query and form merged
    numbers: tuple[str, ...] = ()  # as sent (SendSms/SendBatchSms: each recipient; voice: the callee)
    out_id: str = ""
    biz_id: str = ""  # SMS sends, when accepted
    call_id: str = ""  # voice sends, when accepted
    code: str = "OK"  # the answer's Code, or "HTTP <status>" for a fault
    sign_names: tuple[str, ...] = ()  # one per number
    template_code: str = ""  # SMS template, or IvrCall StartCode / SingleCallByTts TtsCode
    template_params: tuple[dict[str, Any], ...] = ()  # one per number (voice: the start prompt's)
    menu_key_map: tuple[dict[str, str], ...] = ()  # IvrCall: [{"Key", "Code", "TtsParams"}]
    signature: str = ""  # "ACS3-HMAC-SHA256" or "HMAC-SHA1"
    at: float = field(default_factory=time.time)

    @property
    def accepted(self) -> bool:
        return self.code == "OK"

    @property
    def id(self) -> str:
        return self.biz_id or self.call_id

    def param(self, name: str) -> str:
        return self.params.get(name, "")

    def params_for(self, number: str) -> dict[str, Any]:
        return self.template_params[self.numbers.index(number)]


@dataclass
class Callback:
    """One push to the app and what it answered."""

    kind: str  # SmsReport | SmsUp | VoiceCallReport | VoiceReport
    url: str
    payload: list[dict[str, Any]]
    status: int | None = None
    answer: Any = None  # the parsed JSON answer, or its text
    error: str = ""
    attempts: int = 0
    lost: bool = False
    at: float = field(default_factory=time.time)
    client: Poster | None = field(default=None, repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        """Aliyun's rule: HTTP 200 and a numeric ``code`` (the value is not checked); otherwise retried."""
        code = self.answer.get("code") if isinstance(self.answer, dict) else None
        return self.status == 200 and isinstance(code, int | float) and not isinstance(code, bool)


@dataclass
class _Sms:
    biz_id: str
    phone: str
    out_id: str
    template_code: str
    content: str
    sent: float
    status: int = 1  # QuerySendDetails SendStatus: 1 waiting for receipt, 2 failed, 3 delivered
    err_code: str = ""
    received: float | None = None


@dataclass
class _Call:
    record: Received
    dtmf: str = ""


@dataclass(frozen=True)
class _Template:
    code: str
    names: tuple[str, ...]
    text: str | None

    @property
    def is_sms(self) -> bool:
        return self.code.startswith("SMS_")


@dataclass(frozen=True)
class _Fault:
    status: int | None  # None: hang
    code: str = ""
    message: str = ""
    hang: float = 0.0
    deliver: bool = False
    retry_after: int | None = None


class _GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code, self.message = code, message


def _server_fault(status: int, code: str | None, message: str | None) -> _Fault:
    default = {500: ("InternalError", "The request processing has failed due to some unknown error, exception "
                                      "or failure."),
               503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")}
    dcode, dmessage = default.get(status, ("InternalError", f"fake provider error {status}"))
    return _Fault(status, code or dcode, message or dmessage)


def _pct(value: str) -> str:
    """Aliyun's percent-encoding: RFC 3986 unreserved characters kept, the rest %XX of UTF-8 (space is %20)."""
    return quote(value, safe="~")


def _beijing(at: float) -> str:
    return datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"the fake only pushes to loopback, not {url!r}")


def mainland_mobile(number: str) -> str | None:
    """The 11-digit national form of a mainland mobile number (prefixes +, +86, 0086, 86), or None."""
    match = _MOBILE.match(number.strip())
    return match[1] if match else None


class FakeAliyun:
    def __init__(self, access_key_id: str = "LTAI5tFakeJiaoyingKey01", access_key_secret: str = "fake-aliyun-secret",
                 *, sign_names: Iterable[str] = ("某某县应急管理局",),
                 templates: Mapping[str, Iterable[str] | str] | None = None, show_numbers: Iterable[str] = (),
                 auto_callbacks: bool = False, sms_report_url: str | None = None,
                 voice_report_url: str | None = None, voice_call_report_url: str | None = None,
                 callback_client: Poster | None = None, callback_delay: float = 0.0,
                 enforce_flow_control: bool = False, qps: Mapping[str, int] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``templates`` maps a code to its variable names, or to its text with ``${name}`` placeholders
        (then QuerySendDetails shows the rendered Content). Codes starting with ``SMS_`` are SMS templates,
        any other code is a voice TTS template. ``qps`` caps requests per second per action (gateway
        ``Throttling.User``), e.g. ``{"SendSms": 5000, "IvrCall": 100}`` as the reference documents."""
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.sign_names = list(sign_names)
        self.templates = {code: self._template(code, spec) for code, spec in (templates or {}).items()}
        self.show_numbers = set(show_numbers)
        self.auto_callbacks = auto_callbacks
        self.sms_report_url, self.voice_report_url = sms_report_url, voice_report_url
        self.voice_call_report_url = voice_call_report_url or voice_report_url
        self.callback_client, self.callback_delay = callback_client, callback_delay
        self.enforce_flow_control, self.qps, self.clock = enforce_flow_control, dict(qps or {}), clock
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._faults: list[_Fault] = []
        self._always: _Fault | None = None  # fail_all(): the answer to every request once the queue is empty
        self._sms: list[_Sms] = []
        self._calls: dict[str, _Call] = {}
        self._callbacks: list[Callback] = []
        self._dropped: list[Callback] = []
        self._nonces: set[str] = set()
        self._limited: set[str] = set()
        self._limit_all = False
        self._arrears = False
        self._lose = False
        self._sms_outcomes: dict[str, tuple[bool, str, str]] = {}
        self._voice_outcomes: dict[str, tuple[str, str]] = {}
        self._sms_counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._callee_calls: dict[str, deque[float]] = defaultdict(deque)
        self._action_times: dict[str, deque[float]] = defaultdict(deque)
        self._seq = itertools.count(1)
        self._up_seq = itertools.count(1_000_000_001)
        self.auth_failures: list[tuple[str, str]] = []  # (error code, AccessKeyId presented)
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _template(code: str, spec: Iterable[str] | str) -> _Template:
        if isinstance(spec, str):
            return _Template(code, tuple(dict.fromkeys(_VARIABLE.findall(spec))), spec)
        return _Template(code, tuple(spec), None)

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

            def do_GET(self) -> None:  # noqa: N802 - RPC style also allows GET
                fake._handle(self)

        self._stopping.clear()
        self._server = ThreadingHTTPServer((HOST, port), Handler)
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, args=(0.02,), name="fake-aliyun",
                                          daemon=True),
                         threading.Thread(target=self._work, name="fake-aliyun-push", daemon=True)]
        for thread in self._threads:
            thread.start()
        return self.url

    @property
    def endpoint(self) -> str:
        """What goes in ``Config(endpoint=...)`` (with ``protocol="http"``)."""
        assert self._server is not None, "start() the fake first"
        return f"{HOST}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = []

    def __enter__(self) -> FakeAliyun:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it received ------------------------------------------------------------------

    def received(self, action: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if action is None or r.action == action]

    def messages(self) -> list[Received]:
        """Accepted SMS sends (SendSms and SendBatchSms)."""
        return [r for r in self.received() if r.accepted and r.action in {"SendSms", "SendBatchSms"}]

    def calls(self) -> list[Received]:
        """Accepted calls (SingleCallByTts and IvrCall)."""
        return [r for r in self.received() if r.accepted and r.action in VOICE_ACTIONS]

    def keys_seen(self, *, accepted_only: bool = False) -> list[str]:
        """The OutId of every send request that got past authentication, in arrival order."""
        return [r.out_id for r in self.received()
                if r.action in SEND_ACTIONS and (r.accepted or not accepted_only)]

    def callbacks(self, kind: str | None = None) -> list[Callback]:
        with self._lock:
            return [c for c in self._callbacks if kind is None or c.kind == kind]

    def dropped_callbacks(self) -> list[Callback]:
        with self._lock:
            return list(self._dropped)

    # -- switches --------------------------------------------------------------------------

    def fail_next(self, status: int = 500, *, code: str | None = None, message: str | None = None,
                  count: int = 1) -> None:
        """The next ``count`` authenticated requests get HTTP ``status`` with Aliyun's error body."""
        with self._lock:
            self._faults.extend(_server_fault(status, code, message) for _ in range(count))

    def fail_all(self, status: int | None = 503, *, code: str | None = None, message: str | None = None) -> None:
        """Every authenticated request (after those ``fail_next``/``hang_next`` queued) gets HTTP ``status``
        with Aliyun's error body, until ``fail_all(None)``: the provider down for good."""
        with self._lock:
            self._always = None if status is None else _server_fault(status, code, message)

    def hang_next(self, seconds: float, *, count: int = 1, deliver: bool = False) -> None:
        """The next ``count`` authenticated requests get no answer for ``seconds``; with ``deliver`` the send is
        processed (recorded, receipts scheduled) before the silence, as a send that went out but timed out."""
        with self._lock:
            self._faults.extend(_Fault(None, hang=seconds, deliver=deliver) for _ in range(count))

    def throttle_next(self, count: int = 1, *, retry_after: int | None = None, status: int = 400,
                      code: str = "Throttling.User") -> None:
        """The gateway's flow control: HTTP 400 ``Throttling.User`` "Request was denied due to user flow
        control." (the SDK raises ClientException). ``retry_after`` (seconds) adds the ``x-acs-retry-after``
        header, which makes the SDK raise ThrottlingException with ``retry_after``."""
        with self._lock:
            self._faults.extend(_Fault(status, code, "Request was denied due to user flow control.",
                                       retry_after=retry_after) for _ in range(count))

    def business_limit(self, number: str | None = None, on: bool = True) -> None:
        """``isv.BUSINESS_LIMIT_CONTROL`` (HTTP 200) for any send to ``number`` (None: every number)."""
        with self._lock:
            if number is None:
                self._limit_all = on
            elif on:
                self._limited.add(self._key(number))
            else:
                self._limited.discard(self._key(number))

    def arrears(self, on: bool = True) -> None:
        """``isv.AMOUNT_NOT_ENOUGH`` for every send while on."""
        self._arrears = on

    def lose_callbacks(self, on: bool = True) -> None:
        """Automatic pushes are dropped (kept in ``dropped_callbacks()``) while on; explicit ones still go."""
        self._lose = on

    def sms_outcome(self, number: str, *, success: bool = False, err_code: str = "", err_msg: str = "") -> None:
        """What the automatic SmsReport says for ``number`` (default: delivered)."""
        self._sms_outcomes[self._key(number)] = (success, err_code or ("DELIVERED" if success else "UNDELIV"),
                                                 err_msg)

    def voice_outcome(self, number: str, *, status_code: str = "200000", digits: str = "") -> None:
        """What the automatic voice pushes say for ``number``: the final status and, for an IvrCall, the
        key pressed (a VoiceCallReport 300000 before the VoiceReport)."""
        self._voice_outcomes[self._key(number)] = (status_code, digits)

    @staticmethod
    def _key(number: str) -> str:
        return mainland_mobile(number) or number.strip()

    # -- HTTP ------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        split = urlsplit(h.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        form: dict[str, str] = {}
        if body and "x-www-form-urlencoded" in (h.headers.get("Content-Type") or ""):
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        request_id = str(uuid.uuid4()).upper()
        action = h.headers.get("x-acs-action") or query.get("Action", "")
        try:
            scheme = self._authenticate(h.command, split.path or "/", query, form, h.headers, body)
            version = h.headers.get("x-acs-version") or query.get("Version", "")
            if action not in SMS_ACTIONS | VOICE_ACTIONS:
                raise _GatewayError(404, "InvalidAction.NotFound",
                                    "Specified api is not found, please check your url and method.")
            if version != API_VERSION:
                raise _GatewayError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            self._check_qps(action)
            with self._lock:
                fault = self._faults.pop(0) if self._faults else self._always
            params = {k: v for k, v in {**query, **form}.items() if k not in _COMMON_PARAMS}
            if fault is not None and fault.status is not None:
                self._record_fault(action, request_id, params, scheme, fault.status)
                headers = {"x-acs-retry-after": str(fault.retry_after)} if fault.retry_after else {}
                raise _GatewayError(fault.status, fault.code, fault.message, headers)
            if fault is not None and not fault.deliver:
                self._record_fault(action, request_id, params, scheme, None)
                self._stopping.wait(fault.hang)
                h.close_connection = True
                return
            payload, after = self._dispatch(action, request_id, params, scheme)
            if fault is not None:  # deliver, then say nothing
                if after is not None:
                    self._jobs.put(after)
                self._stopping.wait(fault.hang)
                h.close_connection = True
                return
            if after is not None:  # queued before the answer, so drain() after a send always sees it
                self._jobs.put(after)
            self._answer(h, 200, payload, request_id)
        except _GatewayError as err:
            host = "dyvmsapi.aliyuncs.com" if action in VOICE_ACTIONS else "dysmsapi.aliyuncs.com"
            product = "Dyvmsapi" if action in VOICE_ACTIONS else "Dysmsapi"
            self._answer(h, err.status, {"RequestId": request_id, "HostId": host, "Code": err.code,
                                         "Message": err.message,
                                         "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}"
                                                      f"&product={product}"},
                         request_id, err.headers)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], request_id: str,
                headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json;charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("x-acs-request-id", request_id)
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            h.close_connection = True

    def _record_fault(self, action: str, request_id: str, params: dict[str, str], scheme: str,
                      status: int | None) -> None:
        code = f"HTTP {status}" if status is not None else "HANG"
        numbers = self._numbers_of(action, params)
        with self._lock:
            self._received.append(Received(action, request_id, params, numbers, params.get("OutId", ""),
                                           code=code, signature=scheme, at=self.clock()))

    @staticmethod
    def _numbers_of(action: str, params: Mapping[str, str]) -> tuple[str, ...]:
        if action == "SendSms":
            return tuple(n.strip() for n in params.get("PhoneNumbers", "").split(",") if n.strip())
        if action == "SendBatchSms":
            try:
                numbers = json.loads(params.get("PhoneNumberJson", "[]"))
            except ValueError:
                return ()
            return tuple(str(n) for n in numbers) if isinstance(numbers, list) else ()
        if action == "QuerySendDetails":
            return (params["PhoneNumber"],) if params.get("PhoneNumber") else ()
        return (params["CalledNumber"],) if params.get("CalledNumber") else ()

    def _check_qps(self, action: str) -> None:
        limit = self.qps.get(action)
        if not limit:
            return
        now = time.monotonic()
        with self._lock:
            times = self._action_times[action]
            while times and now - times[0] >= 1.0:
                times.popleft()
            if len(times) >= limit:
                raise _GatewayError(400, "Throttling.User", "Request was denied due to user flow control.")
            times.append(now)

    # -- signatures ------------------------------------------------------------------------

    def _authenticate(self, method: str, path: str, query: dict[str, str], form: dict[str, str], headers: Any,
                      body: bytes) -> str:
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("ACS3-"):
            self._verify_v3(method, path, query, headers, body, authorization)
            return "ACS3-HMAC-SHA256"
        if "Signature" in query:
            self._verify_v2(method, {**query, **form})
            return "HMAC-SHA1"
        raise _GatewayError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")

    def _known_key(self, access_key_id: str) -> None:
        if access_key_id != self.access_key_id:
            with self._lock:
                self.auth_failures.append(("InvalidAccessKeyId.NotFound", access_key_id))
            raise _GatewayError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")

    def _mismatch(self, access_key_id: str, string_to_sign: str) -> _GatewayError:
        with self._lock:
            self.auth_failures.append(("SignatureDoesNotMatch", access_key_id))
        return _GatewayError(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation. "
                                                           f"server string to sign is:{string_to_sign}")

    def _fresh(self, stamp: str, nonce: str) -> None:
        try:
            at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise _GatewayError(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not "
                                                                "well formatted.") from None
        if abs(time.time() - at) > SIGNATURE_MAX_SKEW_S:
            raise _GatewayError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        with self._lock:
            if not nonce or nonce in self._nonces:
                raise _GatewayError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces.add(nonce)

    def _verify_v3(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes,
                   authorization: str) -> None:
        algorithm, _, rest = authorization.partition(" ")
        parts = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        access_key_id, signed, signature = (parts.get(k, "") for k in ("Credential", "SignedHeaders", "Signature"))
        incomplete = _GatewayError(400, "IncompleteSignature",
                                   "The request signature does not conform to Aliyun standards.")
        if algorithm != "ACS3-HMAC-SHA256" or not (access_key_id and signed and signature):
            raise incomplete
        self._known_key(access_key_id)
        names = sorted(signed.split(";"))
        # Every x-acs-* header sent must be signed, and these must be present.
        required = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                    "x-acs-content-sha256"}
        sent_acs = {k.lower() for k in headers if k.lower().startswith("x-acs-")}
        if not required <= set(names) or not sent_acs <= set(names) or any(headers.get(n) is None for n in names):
            raise incomplete
        canonical_headers = "".join(f"{n}:{','.join(sorted(v.strip() for v in headers.get_all(n)))}\n"
                                    for n in names)
        canonical_query = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(query.items()))
        payload_hash = headers["x-acs-content-sha256"]
        canonical_request = "\n".join([method, path, canonical_query, canonical_headers, ";".join(names),
                                       payload_hash])
        string_to_sign = f"{algorithm}\n{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"
        expected = hmac.new(self.access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature) or hashlib.sha256(body).hexdigest() != payload_hash:
            raise self._mismatch(access_key_id, string_to_sign)
        self._fresh(headers["x-acs-date"], headers["x-acs-signature-nonce"])

    def _verify_v2(self, method: str, params: dict[str, str]) -> None:
        params = dict(params)
        signature = params.pop("Signature", "")
        access_key_id = params.get("AccessKeyId", "")
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0" \
                or not access_key_id:
            raise _GatewayError(400, "IncompleteSignature",
                                "The request signature does not conform to Aliyun standards.")
        self._known_key(access_key_id)
        canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()))
        string_to_sign = f"{method}&{_pct('/')}&{_pct(canonical)}"
        expected = base64.b64encode(hmac.new(f"{self.access_key_secret}&".encode(), string_to_sign.encode("utf-8"),
                                             hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            raise self._mismatch(access_key_id, string_to_sign)
        self._fresh(params.get("Timestamp", ""), params.get("SignatureNonce", ""))

    # -- operations ------------------------------------------------------------------------

    def _dispatch(self, action: str, request_id: str, params: dict[str, str],
                  scheme: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
        required = {"SendSms": ("PhoneNumbers", "SignName", "TemplateCode"),
                    "SendBatchSms": ("PhoneNumberJson", "SignNameJson", "TemplateCode"),
                    "QuerySendDetails": ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"),
                    "SingleCallByTts": ("CalledNumber", "TtsCode"),
                    "IvrCall": ("CalledNumber", "CalledShowNumber", "StartCode")}[action]
        for name in required:
            if not params.get(name):
                raise _GatewayError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if action == "QuerySendDetails":
            return self._query_send_details(request_id, params, scheme), None
        handler = {"SendSms": self._send_sms, "SendBatchSms": self._send_batch_sms,
                   "SingleCallByTts": self._single_call_by_tts, "IvrCall": self._ivr_call}[action]
        return handler(request_id, params, scheme)

    def _refuse(self, record: Received, err: _Refused) -> dict[str, Any]:
        with self._lock:
            self._received.append(record)
        return {"Code": err.code, "Message": err.message, "RequestId": record.request_id}

    def _check_variables(self, template: _Template, raw: str | None, limit: int) -> dict[str, Any]:
        values: Any = {}
        if raw:
            try:
                values = json.loads(raw)
            except ValueError:
                raise _Refused("isv.INVALID_JSON_PARAM", "JSON参数不合法,只接受字符串值") from None
        return self._check_values(template, values, limit)

    @staticmethod
    def _check_values(template: _Template, values: Any, limit: int) -> dict[str, Any]:
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise _Refused("isv.INVALID_JSON_PARAM", "JSON参数不合法,只接受字符串值")
        missing = [n for n in template.names if n not in values]
        if missing:
            raise _Refused("isv.TEMPLATE_MISSING_PARAMETERS", f"模板变量缺少对应参数值:{','.join(missing)}")
        extra = [k for k in values if k not in template.names]
        if extra:
            raise _Refused("isv.TEMPLATE_PARAMS_ILLEGAL", f"模板变量中存在模板未声明的变量:{','.join(extra)}")
        too_long = [k for k, v in values.items() if len(v) > limit]
        if too_long:
            raise _Refused("isv.PARAM_LENGTH_LIMIT", f"参数超出长度限制:{','.join(too_long)} 超过{limit}个字符")
        return values

    def _sms_template(self, code: str) -> _Template:
        template = self.templates.get(code)
        if template is None or not template.is_sms:
            raise _Refused("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        return template

    def _voice_template(self, code: str) -> _Template:
        template = self.templates.get(code)
        if template is None or template.is_sms:
            raise _Refused("isv.TTS_TEMPLATE_ILLEGAL", "TTS模板不合法")
        return template

    def _sign(self, sign_name: str) -> None:
        if sign_name not in self.sign_names:
            raise _Refused("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")

    @staticmethod
    def _mobiles(numbers: Iterable[str]) -> list[str]:
        national = [mainland_mobile(n) for n in numbers]
        if not national or any(n is None for n in national):
            raise _Refused("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        return [n for n in national if n is not None]

    def _account_checks(self, numbers: Iterable[str]) -> None:
        if self._arrears:
            raise _Refused("isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
        with self._lock:
            limited = self._limit_all or any(n in self._limited for n in numbers)
        if limited:
            raise _Refused("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:1")

    def _sms_flow_control(self, sends: list[tuple[str, str]], template_code: str, now: float) -> None:
        """Notification SMS: the same sign + template + number at most SMS_NOTICE_DAILY_LIMIT per Beijing day."""
        if not self.enforce_flow_control:
            return
        day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
        with self._lock:
            keys = [(day, sign, template_code, phone) for phone, sign in sends]
            if any(self._sms_counts[k] + keys.count(k) > SMS_NOTICE_DAILY_LIMIT for k in keys):
                raise _Refused("isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{SMS_NOTICE_DAILY_LIMIT}")
            for key in keys:
                self._sms_counts[key] += 1

    def _callee_flow_control(self, callee: str, now: float) -> None:
        if not self.enforce_flow_control:
            return
        with self._lock:
            times = self._callee_calls[callee]
            while times and now - times[0] >= VOICE_CALLEE_LIMITS[-1][0]:
                times.popleft()
            for window, permits in VOICE_CALLEE_LIMITS:
                if sum(1 for t in times if now - t < window) >= permits:
                    unit = {60.0: "分钟", 3_600.0: "小时", 86_400.0: "天"}[window]
                    raise _Refused("isv.BUSINESS_LIMIT_CONTROL", f"触发{unit}级流控Permits:{permits}")
            times.append(now)

    def _new_biz_id(self, now: float) -> str:
        return f"{int(now * 1000) % 10**12:012d}{next(self._seq):06d}^0"

    def _new_call_id(self) -> str:
        return f"{116_000_000_000 + next(self._seq)}^{random.randrange(10**10, 10**11)}"

    def _content(self, template: _Template, sign_name: str, values: Mapping[str, Any]) -> str:
        if template.text is not None:
            text = _VARIABLE.sub(lambda m: str(values.get(m[1], "")), template.text)
        else:
            text = ",".join(f"{k}:{v}" for k, v in values.items())
        return f"【{sign_name}】{text}"

    def _send_sms(self, request_id: str, p: dict[str, str],
                  scheme: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
        now = self.clock()
        numbers = self._numbers_of("SendSms", p)
        out_id, sign_name, code = p.get("OutId", ""), p["SignName"], p["TemplateCode"]
        raw = p.get("TemplateParam")
        parsed = _loose_json(raw)
        base = {"action": "SendSms", "request_id": request_id, "params": p, "numbers": numbers, "out_id": out_id,
                "sign_names": (sign_name,) * len(numbers), "template_code": code,
                "template_params": (parsed,) * len(numbers), "signature": scheme, "at": now}
        try:
            if len(numbers) > SEND_SMS_MAX_NUMBERS:
                raise _Refused("isv.MOBILE_COUNT_OVER_LIMIT", f"手机号码数量超过限制:{SEND_SMS_MAX_NUMBERS}")
            phones = self._mobiles(numbers)
            if len(out_id) > SMS_OUT_ID_MAX_CHARS:
                raise _Refused("isv.INVALID_PARAMETERS", "OutId 过长")
            self._sign(sign_name)
            template = self._sms_template(code)
            values = self._check_variables(template, raw, VARIABLE_MAX_CHARS)
            self._account_checks(phones)
            self._sms_flow_control([(phone, sign_name) for phone in phones], code, now)
        except _Refused as err:
            return self._refuse(Received(code=err.code, **base), err), None
        biz_id = self._new_biz_id(now)
        record = Received(biz_id=biz_id, **base)
        content = self._content(template, sign_name, values)
        self._commit_sms(record, [(phone, content) for phone in phones])
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}, self._auto_sms(record)

    def _send_batch_sms(self, request_id: str, p: dict[str, str],
                        scheme: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
        now = self.clock()
        numbers = self._numbers_of("SendBatchSms", p)
        out_id, code = p.get("OutId", ""), p["TemplateCode"]

        def array(name: str) -> list[Any] | None:
            try:
                value = json.loads(p[name]) if p.get(name) else None
            except ValueError:
                return None
            return value if isinstance(value, list) else None

        signs, param_sets = array("SignNameJson"), array("TemplateParamJson")
        base = {"action": "SendBatchSms", "request_id": request_id, "params": p, "numbers": numbers,
                "out_id": out_id, "sign_names": tuple(str(s) for s in signs or ()), "template_code": code,
                "template_params": tuple(v if isinstance(v, dict) else {} for v in param_sets or ()),
                "signature": scheme, "at": now}
        try:
            if array("PhoneNumberJson") is None or signs is None or (p.get("TemplateParamJson") and param_sets is None):
                raise _Refused("isv.INVALID_JSON_PARAM", "JSON参数不合法")
            if len(numbers) > SEND_BATCH_SMS_MAX_NUMBERS:
                raise _Refused("isv.MOBILE_COUNT_OVER_LIMIT", f"手机号码数量超过限制:{SEND_BATCH_SMS_MAX_NUMBERS}")
            if param_sets is None:
                param_sets = [{} for _ in numbers]
            if not (len(signs) == len(numbers) == len(param_sets)):
                raise _Refused("isv.INVALID_PARAMETERS", "PhoneNumberJson、SignNameJson、TemplateParamJson 数量不一致")
            phones = self._mobiles(numbers)
            if len(out_id) > SMS_OUT_ID_MAX_CHARS:
                raise _Refused("isv.INVALID_PARAMETERS", "OutId 过长")
            for sign in signs:
                self._sign(str(sign))
            template = self._sms_template(code)
            values = [self._check_values(template, v, VARIABLE_MAX_CHARS) for v in param_sets]
            self._account_checks(phones)
            self._sms_flow_control(list(zip(phones, (str(s) for s in signs), strict=True)), code, now)
        except _Refused as err:
            return self._refuse(Received(code=err.code, **base), err), None
        biz_id = self._new_biz_id(now)
        record = Received(biz_id=biz_id, **base)
        contents = [self._content(template, str(s), v) for s, v in zip(signs, values, strict=True)]
        self._commit_sms(record, list(zip(phones, contents, strict=True)))
        return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}, self._auto_sms(record)

    def _commit_sms(self, record: Received, sends: list[tuple[str, str]]) -> None:
        with self._lock:
            self._received.append(record)
            self._sms.extend(_Sms(record.biz_id, phone, record.out_id, record.template_code, content, record.at)
                             for phone, content in sends)

    def _query_send_details(self, request_id: str, p: dict[str, str], scheme: str) -> dict[str, Any]:
        phone = mainland_mobile(p["PhoneNumber"])
        record = Received("QuerySendDetails", request_id, p, (p["PhoneNumber"],), signature=scheme, at=self.clock())
        try:
            if phone is None:
                raise _Refused("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
            try:
                datetime.strptime(p["SendDate"], "%Y%m%d")
                page_size, page = int(p["PageSize"]), int(p["CurrentPage"])
            except ValueError:
                raise _Refused("isv.INVALID_PARAMETERS", "参数格式不正确") from None
            if not 1 <= page_size <= QUERY_PAGE_SIZE_MAX or page < 1:
                raise _Refused("isv.INVALID_PARAMETERS", f"PageSize 取值 1-{QUERY_PAGE_SIZE_MAX}")
        except _Refused as err:
            return self._refuse(dataclasses.replace(record, code=err.code), err)
        biz_id = p.get("BizId")
        with self._lock:
            self._received.append(record)
            rows = [s for s in self._sms if s.phone == phone and (not biz_id or s.biz_id == biz_id)
                    and datetime.fromtimestamp(s.sent, BEIJING).strftime("%Y%m%d") == p["SendDate"]]
            rows.sort(key=lambda s: s.sent, reverse=True)
            shown = rows[(page - 1) * page_size: page * page_size]
            details = [{"PhoneNum": s.phone, "SendStatus": s.status, "ErrCode": s.err_code,
                        "TemplateCode": s.template_code, "Content": s.content, "SendDate": _beijing(s.sent),
                        "ReceiveDate": _beijing(s.received) if s.received is not None else "", "OutId": s.out_id}
                       for s in shown]
        return {"Code": "OK", "Message": "OK", "RequestId": request_id, "TotalCount": len(rows),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}

    def _voice_common(self, p: dict[str, str]) -> str:
        """Checks shared by the two call operations; returns the callee's national number."""
        called = p["CalledNumber"].strip()
        callee = mainland_mobile(called)
        if callee is None:
            landline = _LANDLINE.match(called)
            if landline is None:
                raise _Refused("isv.MOBILE_NUMBER_ILLEGAL", "号码格式非法")
            callee = landline[1]
        show = p.get("CalledShowNumber", "")
        if show and self.show_numbers and show not in self.show_numbers:
            raise _Refused("isv.DISPLAY_NUMBER_ILLEGAL", "号显不合法")
        if len(p.get("OutId", "").encode("utf-8")) > VOICE_OUT_ID_MAX_BYTES:
            raise _Refused("isv.INVALID_PARAMETERS", f"OutId 长度须为 1-{VOICE_OUT_ID_MAX_BYTES} 字节")
        if p.get("PlayTimes") and (not p["PlayTimes"].isdigit() or int(p["PlayTimes"]) not in PLAY_TIMES):
            raise _Refused("isv.INVALID_PARAMETERS", "PlayTimes 取值 1-3")
        return callee

    def _single_call_by_tts(self, request_id: str, p: dict[str, str],
                            scheme: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
        now = self.clock()
        raw = p.get("TtsParam")
        base = {"action": "SingleCallByTts", "request_id": request_id, "params": p, "numbers": (p["CalledNumber"],),
                "out_id": p.get("OutId", ""), "template_code": p["TtsCode"],
                "template_params": (_loose_json(raw),), "signature": scheme, "at": now}
        try:
            callee = self._voice_common(p)
            template = self._voice_template(p["TtsCode"])
            self._check_variables(template, raw, VOICE_VARIABLE_MAX_CHARS)
            self._account_checks([callee])
            self._callee_flow_control(callee, now)
        except _Refused as err:
            return self._refuse(Received(code=err.code, **base), err), None
        return self._commit_call(Received(call_id=self._new_call_id(), **base))

    def _ivr_call(self, request_id: str, p: dict[str, str],
                  scheme: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
        now = self.clock()
        entries: dict[int, dict[str, str]] = defaultdict(dict)
        for name, value in p.items():
            match = _MENU_KEY.match(name)
            if match:
                entries[int(match[1])][match[2]] = value
        menu = tuple(entries[i] for i in sorted(entries))
        raw = p.get("StartTtsParams")
        base = {"action": "IvrCall", "request_id": request_id, "params": p, "numbers": (p["CalledNumber"],),
                "out_id": p.get("OutId", ""), "template_code": p["StartCode"], "template_params": (_loose_json(raw),),
                "menu_key_map": menu, "signature": scheme, "at": now}
        try:
            callee = self._voice_common(p)
            self._check_variables(self._voice_template(p["StartCode"]), raw, VOICE_VARIABLE_MAX_CHARS)
            if p.get("ByeCode"):
                self._check_variables(self._voice_template(p["ByeCode"]), p.get("ByeTtsParams"),
                                      VOICE_VARIABLE_MAX_CHARS)
            keys = [entry.get("Key", "") for entry in menu]
            if any(not _DTMF.match(k) for k in keys) or len(set(keys)) != len(keys):
                raise _Refused("isv.INVALID_PARAMETERS", "MenuKeyMap 按键须为 0-9、*、#,且不重复")
            for entry in menu:
                self._check_variables(self._voice_template(entry.get("Code", "")), entry.get("TtsParams"),
                                      VOICE_VARIABLE_MAX_CHARS)
            if p.get("Timeout") and not p["Timeout"].isdigit():
                raise _Refused("isv.INVALID_PARAMETERS", "Timeout 须为毫秒数")
            self._account_checks([callee])
            self._callee_flow_control(callee, now)
        except _Refused as err:
            return self._refuse(Received(code=err.code, **base), err), None
        return self._commit_call(Received(call_id=self._new_call_id(), **base))

    def _commit_call(self, record: Received) -> tuple[dict[str, Any], Callable[[], None] | None]:
        with self._lock:
            self._received.append(record)
            self._calls[record.call_id] = _Call(record)
        answer = {"Code": "OK", "Message": "OK", "CallId": record.call_id, "RequestId": record.request_id}
        return answer, self._auto_voice(record)

    # -- pushes ----------------------------------------------------------------------------

    def report(self, client_or_url: Poster | str, received: Received, success: bool = True,
               err_code: str = "DELIVERED", *, err_msg: str | None = None, numbers: Iterable[str] | None = None,
               url: str | None = None) -> Callback:
        """SmsReport for an SMS send: one receipt per number (or for ``numbers``), in one pushed array."""
        client, target = self._target(client_or_url, url, self.sms_report_url)
        return self._push("SmsReport", client, target, self._receipts(received, success, err_code, err_msg, numbers))

    def _receipts(self, received: Received, success: bool, err_code: str, err_msg: str | None,
                  numbers: Iterable[str] | None, outcomes: Mapping[str, tuple[bool, str, str]] | None = None,
                  ) -> list[dict[str, Any]]:
        assert received.biz_id, "receipts are for accepted SMS sends"
        wanted = {self._key(n) for n in numbers} if numbers is not None else None
        now = self.clock()
        payload = []
        with self._lock:
            for row in self._sms:
                if row.biz_id != received.biz_id or (wanted is not None and row.phone not in wanted):
                    continue
                ok, code, msg = (outcomes or {}).get(row.phone, (success, err_code, err_msg or ""))
                msg = msg or (RECEIPT_MESSAGES.get(code, "用户接收成功") if ok else code)
                row.status, row.err_code, row.received = (3 if ok else 2), code, now
                size = 1 if len(row.content) <= SINGLE_SMS_CHARS else math.ceil(len(row.content) / MULTIPART_SMS_CHARS)
                payload.append({"phone_number": row.phone, "send_time": _beijing(row.sent),
                                "report_time": _beijing(now), "success": ok, "err_code": code, "err_msg": msg,
                                "sms_size": str(size), "biz_id": row.biz_id, "out_id": row.out_id})
        return payload

    def reply(self, client_or_url: Poster | str, phone: str, content: str, *, sign_name: str | None = None,
              url: str | None = None) -> Callback:
        """SmsUp: the person at ``phone`` replied ``content`` to a message with ``sign_name``."""
        client, target = self._target(client_or_url, url, None)
        sign = sign_name or self.sign_names[0]
        dest_code = str(1000 + (self.sign_names.index(sign) if sign in self.sign_names else 0))
        payload = [{"phone_number": self._key(phone), "send_time": _beijing(self.clock()), "content": content,
                    "sign_name": sign, "dest_code": dest_code, "sequence_id": next(self._up_seq)}]
        return self._push("SmsUp", client, target, payload)

    def voice_report(self, client_or_url: Poster | str, call: Received, status_code: str = "200000", *,
                     dtmf: str | None = None, url: str | None = None) -> Callback:
        """VoiceReport, the record after the call ended (200000: answered and heard it all)."""
        client, target = self._target(client_or_url, url, self.voice_report_url)
        return self._push("VoiceReport", client, target, [self._voice_record(call, status_code, dtmf)])

    def _voice_record(self, call: Received, status_code: str, dtmf: str | None) -> dict[str, Any]:
        assert call.call_id, "voice pushes are for accepted calls"
        with self._lock:
            state = self._calls[call.call_id]
            digits = state.dtmf if dtmf is None else dtmf
        now = self.clock()
        answered = status_code in ANSWERED
        start, end = call.at + 8, max(now, call.at + 20)
        return {"call_id": call.call_id, "caller": call.param("CalledShowNumber"),
                "callee": self._key(call.numbers[0]), "status_code": status_code,
                "status_msg": VOICE_STATUS.get(status_code, "呼叫失败"), "originate_time": _beijing(call.at),
                "ring_time": _beijing(call.at + 2), "start_time": _beijing(start) if answered else "",
                "end_time": _beijing(end) if answered else "",
                "duration": str(int(end - start)) if answered else "0",
                "hangup_direction": "用户" if answered else "", "out_id": call.out_id, "dtmf": digits,
                "voice_type": "voice"}

    def keypress(self, client_or_url: Poster | str, call: Received, digits: str = "1", *,
                 url: str | None = None) -> Callback:
        """VoiceCallReport with status_code 300000: the callee pressed ``digits`` during an IvrCall."""
        client, target = self._target(client_or_url, url, self.voice_call_report_url)
        assert call.call_id, "voice pushes are for accepted calls"
        with self._lock:
            self._calls[call.call_id].dtmf = digits
        payload = [{"call_id": call.call_id, "status_code": "300000", "status_time": _beijing(self.clock()),
                    "out_id": call.out_id, "dtmf": digits}]
        return self._push("VoiceCallReport", client, target, payload)

    def redeliver(self) -> list[Callback]:
        """Aliyun pushes again what was not accepted (1, 5 and 10 minutes later, 3 retries at most): now."""
        with self._lock:
            due = [c for c in self._callbacks if not c.accepted and c.attempts < 4]
        for callback in due:
            self._deliver(callback)
        return due

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the automatic pushes queued so far have been made."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not self._jobs.unfinished_tasks, "automatic pushes still pending"

    @staticmethod
    def _target(client_or_url: Poster | str, url: str | None, default: str | None) -> tuple[Poster | None, str]:
        if isinstance(client_or_url, str):
            return None, client_or_url
        target = url or default
        assert target, "give the push a url (or configure the fake's callback urls)"
        return client_or_url, target

    def _push(self, kind: str, client: Poster | None, url: str, payload: list[dict[str, Any]]) -> Callback:
        callback = Callback(kind, url, payload, client=client, at=self.clock())
        with self._lock:
            self._callbacks.append(callback)
        self._deliver(callback)
        return callback

    @staticmethod
    def _deliver(callback: Callback) -> None:
        callback.attempts += 1
        try:
            if callback.client is None:
                _require_loopback(callback.url)
                data = json.dumps(callback.payload, ensure_ascii=False).encode("utf-8")
                with httpx.Client(trust_env=False, timeout=5.0) as http:
                    response: Any = http.post(callback.url, content=data,
                                              headers={"Content-Type": "application/json;charset=UTF-8"})
            else:
                response = callback.client.post(callback.url, json=callback.payload)
        except (httpx.HTTPError, OSError) as exc:
            callback.status, callback.answer, callback.error = None, None, repr(exc)
            return
        callback.status, callback.error = response.status_code, ""
        try:
            callback.answer = response.json()
        except ValueError:
            callback.answer = response.text

    def _auto_sms(self, record: Received) -> Callable[[], None] | None:
        if not self.auto_callbacks or not self.sms_report_url:
            return None
        url, client = self.sms_report_url, self.callback_client

        def job() -> None:
            outcomes = {n: self._sms_outcomes.get(n, (True, "DELIVERED", "")) for n in self._mobiles(record.numbers)}
            self._auto_push("SmsReport", client, url, self._receipts(record, True, "DELIVERED", None, None, outcomes))
        return job

    def _auto_voice(self, record: Received) -> Callable[[], None] | None:
        if not self.auto_callbacks or not self.voice_report_url:
            return None
        client = self.callback_client
        status_code, digits = self._voice_outcomes.get(self._key(record.numbers[0]), ("200000", ""))

        def job() -> None:
            if record.action == "IvrCall" and digits and status_code in ANSWERED and self.voice_call_report_url:
                with self._lock:
                    self._calls[record.call_id].dtmf = digits
                self._auto_push("VoiceCallReport", client, self.voice_call_report_url,
                                [{"call_id": record.call_id, "status_code": "300000",
                                  "status_time": _beijing(self.clock()), "out_id": record.out_id, "dtmf": digits}])
            assert self.voice_report_url
            self._auto_push("VoiceReport", client, self.voice_report_url,
                            [self._voice_record(record, status_code, None)])
        return job

    def _auto_push(self, kind: str, client: Poster | None, url: str, payload: list[dict[str, Any]]) -> None:
        if self._lose:
            with self._lock:
                self._dropped.append(Callback(kind, url, payload, lost=True, client=client, at=self.clock()))
            return
        self._push(kind, client, url, payload)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self.callback_delay:
                    self._stopping.wait(self.callback_delay)
                job()
            except Exception as exc:  # a push must not kill the worker; keep what happened
                with self._lock:
                    self._dropped.append(Callback("error", "", [], error=repr(exc), lost=True))
            finally:
                self._jobs.task_done()


def _loose_json(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- as a process (benchmarks) --------------------------------------------------------------------


class ServedAliyun(ServedProcess, FakeAliyun):
    """The fake as its own process (``python -m tests.fakes.aliyun_server``), so a benchmark's engine does not
    share its GIL. Besides the API it answers two read-only, unauthenticated introspection paths:

    ``GET /_fake/summary``   {"requests", "send_requests", "codes": {code: requests}, "actions": {action: requests
                             past authentication}, "accepted_numbers",
                             "unique_numbers", "refused_numbers", "first_at", "last_new_at", "handle_s",
                             "handle_ms": {"p50", "p99", "max"}} — ``first_at``/``last_new_at``: time.time() of the
                             first accepted number and of the last number accepted for the first time;
                             ``handle_s``: the summed wall time of the API requests (the fake's own time)
    ``GET /_fake/arrivals``  {"messages": [{"at", "number", "key", "action", "code", "biz_id"}]} — one record per
                             number of every SendSms/SendBatchSms that got past authentication, refused ones too
                             (``code`` "OK" when accepted); ``key`` is the request's OutId (a batch's is its first
                             message's key), ``number`` the national form, ``at`` time.time() on arrival
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handled: list[float] = []  # seconds each API request took to handle
        self._cursor = 0  # how far into _received the summary has read
        self._first_seen: dict[str, float] = {}
        self._counts = {"send_requests": 0, "accepted_numbers": 0, "refused_numbers": 0}
        self._codes: dict[str, int] = defaultdict(int)
        self._actions: dict[str, int] = defaultdict(int)

    def _introspect(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        if path == "/_fake/summary":
            self._answer(h, 200, self.summary(), "")
        elif path == "/_fake/arrivals":
            self._answer(h, 200, {"messages": self.arrivals()}, "")
        else:
            self._answer(h, 404, {"Code": "NotFound", "Message": path}, "")

    def arrivals(self) -> list[dict[str, Any]]:
        return [{"at": r.at, "number": mainland_mobile(n) or n, "key": r.out_id, "action": r.action, "code": r.code,
                 "biz_id": r.biz_id}
                for r in self.received() if r.action in ("SendSms", "SendBatchSms") for n in r.numbers]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            fresh, self._cursor = self._received[self._cursor:], len(self._received)
            handled = sorted(self._handled)
            for r in fresh:
                self._actions[r.action] += 1
                if r.action not in ("SendSms", "SendBatchSms"):
                    continue
                self._counts["send_requests"] += 1
                self._codes[r.code] += 1
                if not r.accepted:
                    self._counts["refused_numbers"] += len(r.numbers)
                    continue
                self._counts["accepted_numbers"] += len(r.numbers)
                for n in r.numbers:
                    number = mainland_mobile(n) or n
                    if r.at < self._first_seen.get(number, math.inf):
                        self._first_seen[number] = r.at
            seen = self._first_seen.values()
            return {"requests": len(handled), **self._counts, "codes": dict(self._codes),
                    "actions": dict(self._actions), "unique_numbers": len(self._first_seen),
                    "first_at": min(seen, default=None), "last_new_at": max(seen, default=None),
                    "handle_s": sum(handled), "handle_ms": _quantiles_ms(handled)}


def _quantiles_ms(ordered: list[float]) -> dict[str, float | None]:
    if not ordered:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": ordered[len(ordered) // 2] * 1000, "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            * 1000, "max": ordered[-1] * 1000}


def templates_from_file(path: str) -> dict[str, list[str]]:
    """The Aliyun codes of a JIAOYING_CARRIER_TEMPLATES file (templates/carriers.sample.yaml) with their variables,
    as the fake's ``templates`` (a voice entry's ``confirm`` prompt is a template without variables)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        section = (yaml.safe_load(handle) or {}).get("aliyun") or {}
    found: dict[str, list[str]] = {}
    for channel in ("sms", "voice"):
        for entry in (section.get(channel) or {}).values():
            found[str(entry["code"])] = list(entry.get("variables") or [])
            if entry.get("confirm"):
                found.setdefault(str(entry["confirm"]), [])
    return found


def served_from_config(config: Mapping[str, Any]) -> ServedAliyun:
    """A ServedAliyun from a JSON config: ``access_key_id``, ``access_key_secret``, ``sign_names``, ``templates``
    (code -> variable names) and/or ``template_file`` (a carrier template file, see ``templates_from_file``),
    ``show_numbers``, ``qps``, ``enforce_flow_control``, ``fail_all``: an HTTP status every request gets, and
    ``arrears``: every send refused ``isv.AMOUNT_NOT_ENOUGH`` (an account refusal, HTTP 200)."""
    known = {"access_key_id", "access_key_secret", "sign_names", "templates", "template_file", "show_numbers", "qps",
             "enforce_flow_control", "fail_all", "arrears"}
    unknown = set(config) - known
    if unknown:
        raise SystemExit(f"aliyun fake: unknown config keys {sorted(unknown)} (known: {sorted(known)})")
    templates = dict(templates_from_file(config["template_file"]) if config.get("template_file") else {})
    templates.update(config.get("templates") or {})
    kwargs: dict[str, Any] = {k: config[k] for k in ("access_key_id", "access_key_secret") if k in config}
    fake = ServedAliyun(**kwargs, sign_names=config.get("sign_names", ("某某县应急管理局",)), templates=templates,
                        show_numbers=config.get("show_numbers", ()), qps=config.get("qps"),
                        enforce_flow_control=bool(config.get("enforce_flow_control", False)))
    if config.get("fail_all"):
        fake.fail_all(int(config["fail_all"]))
    fake.arrears(bool(config.get("arrears", False)))
    return fake


def main(argv: list[str] | None = None) -> None:
    serve_fake("Aliyun SMS/voice API", served_from_config, argv)


if __name__ == "__main__":
    main()
