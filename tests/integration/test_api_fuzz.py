"""Property-based fuzzing of the HTTP API: whatever a caller sends, the answer is never a server
error (5xx). Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).

1. ``test_no_request_from_the_openapi_schema_gets_a_server_error``: Schemathesis turns every
   operation of the app's own ``/openapi.json`` into a Hypothesis strategy of requests, ones that
   follow the schema and ones that break it (wrong types and formats, missing fields). They are
   sent as an agency (Bearer key), as each kind of user (HTTP Basic: viewer, officer, admin) or
   with no credentials, and path parameters are sometimes swapped for the ids of a real warning,
   its call-outs and signed acknowledgement links, so the fuzzing gets past the 404s.
2. ``test_no_nearly_valid_warning_gets_a_server_error``: a valid warning (JSON, or one of the
   CAP fixtures) with one to three fields replaced by hostile values (NUL characters, lone
   surrogates, times at the ends of the calendar, numbers of thousands of digits, deep nesting,
   wrong types); an accepted one must then survive an engine pass and be readable.
3. ``test_no_signed_webhook_gets_a_server_error``: Twilio's webhooks and the broadcast platform's
   receipts, correctly signed (as the provider would), with hostile form fields, attempt refs,
   receipt bodies and headers. The schema knows nothing of their bodies (they are read raw, for
   the signature), so Schemathesis alone only ever reaches their 403.
4. ``test_no_board_request_gets_a_server_error``: the duty officers' board (not in the schema: HTML
   pages and forms), signed in as an admin with a valid CSRF token (or not), with hostile path ids,
   form fields and query strings.

Requests go through the app's own TestClient with exceptions raised rather than turned into a
500, so a failure shows its traceback and Hypothesis's smallest example. Bounded for CI: a fixed
number of examples (``settings`` below), no deadline (a PostgreSQL round trip is not a bug),
derandomised (the same requests on every run) and no example database.

Left out: nothing the schema lists. Of the board, only its two server-sent event streams
(``/board/live`` and ``/board/warnings/{id}/live``): they never end, and TestClient reads a response
to its end. ``GET /readyz`` may answer 503: its documented "not ready" answer (no scheduler has
reported here).
"""

from __future__ import annotations

import base64
import json
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from dispatcher.api.app import create_app
from dispatcher.channels.broadcast import sign
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, BroadcastOrderRow
from dispatcher.links import make_token
from dispatcher.runtime.engine import Engine
from dispatcher.services import users
from dispatcher.services.keys import create_key
from dispatcher.services.users import Role, create_user
from tests.conftest import FIXED_NOW, FIXTURES, Clock
from tests.support.board import sign_in
from tests.support.harness import settle_engine

PASSWORD = "correct horse battery"
USERS = {"fuzz-viewer": Role.VIEWER, "fuzz-officer": Role.OFFICER, "fuzz-admin": Role.ADMIN}
TWILIO_TOKEN = "fuzz-twilio-auth-token"
BROADCAST_SECRET = "fuzz-broadcast-secret-0123456789abcdef"
PUBLIC_URL = "http://127.0.0.1:8000"
ALLOWED_5XX = {("GET", "/readyz"): {503}}  # documented: "not ready" (no scheduler heartbeat here)
WARNING = {
    "sender": "qingxi-qx", "identifier": "FUZZ-1", "msg_type": "alert", "hazard": "rainstorm", "level": "red",
    "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号", "sent": "2026-07-16T11:10:00+08:00",
    "expires": "2026-07-16T23:00:00+08:00",
}


def bounded(examples: int) -> settings:
    """The same requests on every run, as many as CI can afford on two cores."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _schema() -> Any:
    app = create_app(Settings(database_url="sqlite://", public_url=PUBLIC_URL))
    return schemathesis.openapi.from_dict(app.openapi())


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


# -- the world the requests act on: the sample county, a warning with call-outs, keys and users ------


@dataclass
class World:
    client: TestClient
    settings: Settings
    clock: Clock
    credentials: dict[str, dict[str, str]]
    ids: dict[str, list[str]]  # path parameter -> real values
    phones: list[str]
    attempts: list[str]
    broadcasts: dict[str, list[str]]  # broadcast id -> its areas

    def engine_pass(self) -> None:
        engine = Engine(self.settings, self.clock, lambda: build_adapters(self.settings, SimOutbox()), name="fuzz")
        try:
            settle_engine(engine)
        finally:
            engine.close()


def _basic(name: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()}


@pytest.fixture
def world(database_url: str, site_loaded: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Cheap password hashes: a correct password is checked on every user's request.
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    config = Settings(database_url=database_url, public_url=PUBLIC_URL, twilio_auth_token=TWILIO_TOKEN,
                      broadcast_secret=BROADCAST_SECRET)
    with transaction(site_loaded) as session:
        _, key = create_key(session, "qingxi-qx", FIXED_NOW, None, ["qingxi-qx", "33059941600000"])
        for name, role in USERS.items():
            create_user(session, name, role, PASSWORD, FIXED_NOW)
    credentials = {"agency": {"Authorization": f"Bearer {key}"}, "none": {}}
    credentials |= {role.value: _basic(name) for name, role in USERS.items()}
    with TestClient(create_app(config, clock=clock)) as client:
        posted = client.post("/api/v1/warnings", json=WARNING, headers=credentials["agency"])
        assert posted.status_code == 202, posted.text
        warning = posted.json()["id"]
        world = World(client, config, clock, credentials, {}, [], [], {})
        world.engine_pass()
        listed = client.get(f"/api/v1/warnings/{warning}/callouts", headers=credentials["admin"]).json()["callouts"]
        callouts = [str(c["id"]) for c in listed][:3]
        assert callouts, listed
        world.ids = {"warning_id": [warning], "callout_id": callouts,
                     "token": [make_token(config, int(c), "fuzz", clock()) for c in callouts]}
        world.phones = sorted({c["official"]["phone"] for c in listed if c["official"].get("phone")})[:3]
        with transaction(database_url) as session:
            world.attempts = [str(a) for a in session.scalars(select(AttemptRow.id).limit(3))]
            world.attempts += list(session.scalars(select(AttemptRow.key).limit(2)))
            world.broadcasts = {o.id: list(o.areas) for o in session.scalars(select(BroadcastOrderRow))}
        yield world


def summary(exc: BaseException) -> str:
    """Each failure Hypothesis found: the exception, where it was raised, and the example."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(summary(e) for e in exc.exceptions)
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"{f.filename}:{f.lineno}" for f in reversed(frames) if "/dispatcher/" in f.filename), "")
    notes = "\n".join(getattr(exc, "__notes__", []))
    return "".join(traceback.format_exception_only(exc)).strip() + (f"\n  raised at {where}" if where else "") + (
        f"\n{notes}" if notes else "")


def send(world: World, what: str, allowed: set[int] | frozenset[int] = frozenset(),
         client: TestClient | None = None, **request: Any) -> Any:
    """The app's answer to ``request``; fails on a 5xx or an exception, saying what was sent."""
    try:
        response = (client or world.client).request(**request)
    except Exception as exc:
        raise AssertionError(f"{what}\n  -> {summary(exc)}") from exc
    assert response.status_code < 500 or response.status_code in allowed, (
        f"{what}\n  -> {response.status_code}: {response.text[:500]}")
    return response


def _clip(value: Any, limit: int = 300) -> Any:
    if len(value) <= limit:
        return value
    return value[:limit] + ("…" if isinstance(value, str) else b"...")


def _shown(request: dict[str, Any]) -> str:
    shown = {k: (_clip(v) if isinstance(v, str | bytes) else v) for k, v in request.items() if v is not None}
    return _clip(repr(shown), 1000)


# -- 1. everything in the OpenAPI schema ----------------------------------------------------------------


def _request(case: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Schemathesis's request (requests-style keywords) as keywords for the httpx TestClient."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    url = urlsplit(kwargs["url"])
    request: dict[str, Any] = {
        "method": kwargs["method"], "url": url.path + (f"?{url.query}" if url.query else ""),
        "headers": {k: v for k, v in kwargs.get("headers", {}).items() if k.lower() != "authorization"} | headers,
        "params": kwargs.get("params") or None, "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        if isinstance(data, dict):
            request["data"] = data
        else:
            request["content"] = data.encode() if isinstance(data, str) else data
    if kwargs.get("files"):
        request["files"] = kwargs["files"]
    return request


# Path segments (percent-encoded, as sent) that broke a database: NUL (PostgreSQL refuses it in text),
# integers past int4/int8, bytes that are not UTF-8.
HOSTILE_PATH = st.sampled_from(["%00", "W20260716-%00", str(2**31), str(2**63), str(2**64), "9" * 5000, "-1", "0",
                                "%C2%B2", "%ED%A0%80", "%FF", "%20", "..", "a%2Fb"])


def _cases(operation: Any) -> st.SearchStrategy[Any]:
    """Requests that follow the schema and requests that break it."""
    return st.one_of([operation.as_strategy(mode) for mode in schemathesis.GenerationMode])


def _fuzz_operation(world: World, operation: Any, examples: int) -> None:
    allowed = ALLOWED_5XX.get((operation.method.upper(), operation.path), set())
    params = [p.name for p in operation.path_parameters]

    @bounded(examples)
    @given(case=_cases(operation), who=st.sampled_from(sorted(world.credentials)), data=st.data())
    def run(case: Any, who: str, data: st.DataObject) -> None:
        for name in params:
            choice = data.draw(st.sampled_from(["generated", "real", "hostile"]), label=name)
            if choice == "real" and world.ids.get(name):
                case.path_parameters[name] = data.draw(st.sampled_from(world.ids[name]), label=f"real {name}")
            elif choice == "hostile":
                case.path_parameters[name] = data.draw(HOSTILE_PATH, label=f"hostile {name}")
        request = _request(case, world.credentials[who])
        send(world, f"{_shown(request)} as {who}", allowed, **request)

    run()


def test_no_request_from_the_openapi_schema_gets_a_server_error(world: World) -> None:
    failures = []
    for operation in OPERATIONS:
        try:
            _fuzz_operation(world, operation, examples=40)
        except Exception as exc:  # report every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}:\n{summary(exc)}")
    assert not failures, "\n\n".join(failures)


# -- hostile values -----------------------------------------------------------------------------------------


class Raw(str):
    """JSON text put into a document as it is (numbers too long for Python, nesting too deep)."""


HOSTILE_TEXT = st.one_of(
    st.sampled_from(["", " ", "\x00", "收到\x00", "a\ud800b", "\udfff", "\u202e1", "<&>\"'", "=1+1", "x" * 5000,
                     "1" * 300, "%00", "../../etc/passwd", "null", "\r\n\t", "😀" * 50]),
    st.text(max_size=40),
)
HOSTILE_TIME = st.one_of(
    st.sampled_from([
        "9999-12-31T00:00:00+00:00", "0001-01-03T00:00:00+00:00", "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00", "9999-12-25T00:00:00+08:00", "2026-07-16T11:10:00", "2026-02-30T00:00:00Z",
        "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z", "2026-07-16T11:17:01+08:00", "2027-07-17T11:10:00+08:00",
        "2026-07-16T03:10:00+23:59", "2026-07-16T03:10:00-23:59", "2026-07-16 03:10:00+08:00", "20260716031000",
        "2026-07-16T03:10:00.123456789+08:00", "+002026-07-16T03:10:00Z",
    ]),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
                 ).map(lambda d: d.isoformat()),
)
HOSTILE_NUMBER = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1, 1e308, 253402300799, 253402300800000, 0.5]),
    st.sampled_from(["9" * 5000, "-" + "9" * 5000, "9" * 5000 + ".5", "1e999", "NaN", "Infinity", "-Infinity"]
                    ).map(Raw),
    st.integers(),
)
HOSTILE_NESTING = st.sampled_from([10, 500, 1000, 5000, 100_000]).flatmap(
    lambda n: st.sampled_from([Raw("[" * n + "]" * n), Raw('{"a":' * n + "1" + "}" * n)]))
HOSTILE = st.one_of(
    HOSTILE_TEXT, HOSTILE_TIME, HOSTILE_NUMBER, HOSTILE_NESTING, st.none(), st.booleans(),
    st.lists(HOSTILE_TEXT, max_size=4), st.dictionaries(st.text(max_size=5), HOSTILE_TEXT, max_size=3),
)


def to_json(value: Any) -> str:
    """JSON text, with Raw values spliced in as they are."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


# -- 2. nearly valid warnings, JSON and CAP -------------------------------------------------------------------

WARNING_FIELDS = [*WARNING, "description", "instruction", "references", "drill", "colour"]
CAP_FILES = ["oasis-alert", "oasis-update", "cn-alert", "cn-update"]
CAP_ELEMENTS = ["identifier", "sender", "sent", "status", "msgType", "references", "event", "severity",
                "expires", "headline", "description", "value", "valueName", "language", "senderCode"]


FITTING = {
    "sent": HOSTILE_TIME, "expires": HOSTILE_TIME, "drill": st.one_of(st.booleans(), HOSTILE_NUMBER),
    "areas": st.lists(st.one_of(st.sampled_from(["330599100", "330599", "33", "330599100001", "440106"]),
                                HOSTILE_TEXT), max_size=5),
    "references": st.lists(HOSTILE_TEXT, max_size=3),
    "hazard": st.one_of(st.sampled_from(["rainstorm", "暴雨", "RAINSTORM", "flash_flood"]), HOSTILE_TEXT),
    "level": st.one_of(st.sampled_from(["red", "Red", "红色", "orange", "blue"]), HOSTILE_TEXT),
}


@st.composite
def json_warnings(draw: st.DrawFn) -> tuple[str, str]:
    body: dict[str, Any] = dict(WARNING, identifier=draw(st.from_regex(r"FZ-[0-9A-Z]{1,8}", fullmatch=True)))
    for name in draw(st.lists(st.sampled_from(WARNING_FIELDS), min_size=1, max_size=3, unique=True)):
        choice = draw(st.sampled_from(["fitting", "any", "missing"]))
        if choice == "fitting":  # a hostile value of the field's own kind: it gets past the type checks
            body[name] = draw(FITTING.get(name, HOSTILE_TEXT))
        elif choice == "any":
            body[name] = draw(HOSTILE)
        elif name in body:
            del body[name]
    if draw(st.integers(0, 3)) == 0:
        body["msg_type"] = draw(st.sampled_from(["update", "cancel"]))
        body["references"] = draw(st.sampled_from([["FUZZ-1"], ["NOPE"], [], ["FUZZ-1", "FUZZ-1"]]))
    return "application/json", to_json(body)


@st.composite
def raw_warnings(draw: st.DrawFn) -> tuple[str, str]:
    """A valid warning with one field holding what Python's JSON reader itself chokes on: numbers of
    thousands of digits, nesting thousands deep."""
    raw = st.one_of(HOSTILE_NESTING, st.sampled_from(["9" * 5000, "-" + "9" * 5000, "9" * 5000 + ".5"]).map(Raw))
    body = dict(WARNING, identifier=draw(st.from_regex(r"RW-[0-9A-Z]{1,8}", fullmatch=True)))
    body[draw(st.sampled_from(WARNING_FIELDS))] = draw(raw)
    return "application/json", to_json(body)


@st.composite
def timed_warnings(draw: st.DrawFn) -> tuple[str, str]:
    """A valid warning but for its times: the bounds at intake stand between these and the engine."""
    body = dict(WARNING, identifier=draw(st.from_regex(r"TM-[0-9A-Z]{1,8}", fullmatch=True)),
                sent=draw(HOSTILE_TIME), expires=draw(st.one_of(st.none(), st.none(), HOSTILE_TIME)))
    return "application/json", to_json(body)


@st.composite
def cap_warnings(draw: st.DrawFn) -> tuple[str, str]:
    text = (FIXTURES / "cap" / f"{draw(st.sampled_from(CAP_FILES))}.xml").read_text(encoding="utf-8")
    identifier = draw(st.from_regex(r"AFZ-[0-9A-Z]{1,8}", fullmatch=True))
    text = re.sub(r"<identifier>[^<]*</identifier>", f"<identifier>{identifier}</identifier>", text, count=1)
    for element in draw(st.lists(st.sampled_from(CAP_ELEMENTS), min_size=1, max_size=3, unique=True)):
        value = draw(st.one_of(HOSTILE_TEXT, HOSTILE_TIME, HOSTILE_NUMBER.map(str)))
        replacement = escape(value) if draw(st.booleans()) else value  # unescaped: malformed XML too
        text = re.sub(rf"(<{element}>)[^<]*(</{element}>)", lambda m, r=replacement: m.group(1) + r + m.group(2),
                      text, count=1)
    return draw(st.sampled_from(["application/cap+xml", "application/xml", "text/xml"])), text


def test_no_nearly_valid_warning_gets_a_server_error(world: World) -> None:
    agency = world.credentials["agency"]

    @bounded(200)
    @given(posted=st.one_of(json_warnings(), raw_warnings(), timed_warnings(), cap_warnings()))
    def run(posted: tuple[str, str]) -> None:
        content_type, body = posted
        data = body.encode("utf-8", "surrogatepass")
        what = f"POST /api/v1/warnings ({content_type}) {_clip(body)!r}"
        response = send(world, what, method="POST", url="/api/v1/warnings", content=data,
                        headers={**agency, "Content-Type": content_type})
        if response.status_code == 202:  # accepted: the engine applies it, and it reads back
            try:
                world.engine_pass()
            except Exception as exc:
                raise AssertionError(f"an engine pass after {what}\n  -> {summary(exc)}") from exc
            warning = response.json()["id"]
            for path in ("", "/callouts", "/record", "/record?format=csv"):
                send(world, f"GET {warning}{path} after {what}", method="GET",
                     url=f"/api/v1/warnings/{warning}{path}", headers=agency)

    run()


# -- 3. signed webhooks ----------------------------------------------------------------------------------------

TWILIO_PATHS = ["/webhooks/twilio/status", "/webhooks/twilio/sms", "/webhooks/twilio/voice",
                "/webhooks/twilio/voice/gather"]
TWILIO_FIELDS = ["From", "To", "Body", "MessageSid", "SmsSid", "CallSid", "MessageStatus", "SmsStatus",
                 "CallStatus", "ErrorCode", "Digits"]


def wire(text: str) -> str:
    """``text`` as it reaches the server over HTTP: UTF-8, so a lone surrogate arrives as U+FFFD."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _twilio_form(world: World) -> st.SearchStrategy[dict[str, str]]:
    value = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER.map(str), st.sampled_from(
        ["1", "收到", "ok", "2", "delivered", "failed", "no-answer", "completed", "SM" + "0" * 32, *world.phones]))
    return st.dictionaries(st.sampled_from(TWILIO_FIELDS), value.map(wire), max_size=5)


def _attempt_refs(world: World) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(world.attempts or ["1"]), st.sampled_from(
        ["0", "-1", str(2**31), str(2**63), "9" * 5000, "²", "١٢", "\x00", "key\x00"]),
        st.text(max_size=20).map(wire))


def _receipts(world: World) -> st.SearchStrategy[bytes]:
    ids = st.one_of(st.sampled_from(sorted(world.broadcasts) or ["bc-x"]), HOSTILE_TEXT)
    areas = st.one_of(st.sampled_from(sorted({a for v in world.broadcasts.values() for a in v}) or ["330599100"]),
                      HOSTILE_TEXT)
    receipt = st.fixed_dictionaries({
        "id": ids, "area": areas, "state": st.sampled_from(["playing", "completed", "failed", "lost"]),
        "at": st.one_of(HOSTILE_TIME, st.just(FIXED_NOW.isoformat())),
    }, optional={"detail": HOSTILE_TEXT, "extra": HOSTILE})
    return st.one_of(receipt.map(lambda r: to_json(r).encode("utf-8", "surrogatepass")),
                     HOSTILE_NESTING.map(lambda raw: str(raw).encode()), st.binary(max_size=50))


def test_no_signed_webhook_gets_a_server_error(world: World) -> None:
    validator = RequestValidator(TWILIO_TOKEN)
    now = str(int(world.clock().timestamp()))

    @bounded(60)
    @given(path=st.sampled_from(TWILIO_PATHS), form=_twilio_form(world), attempt=_attempt_refs(world))
    def twilio(path: str, form: dict[str, str], attempt: str | None) -> None:
        url = path + (f"?{urlencode({'attempt': attempt})}" if attempt is not None else "")
        signature = validator.compute_signature(PUBLIC_URL + url, form)
        send(world, f"signed POST {_clip(url)} form {_clip(repr(form))}", method="POST", url=url,
             content=urlencode(form).encode(),
             headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})

    @bounded(60)
    @given(body=_receipts(world), timestamp=st.one_of(st.just(now), st.sampled_from(
        ["", "x", "-1", "9" * 400, "9" * 5000, "１２３", now + ".5", str(2**63)])), signed=st.booleans())
    def broadcast(body: bytes, timestamp: str, signed: bool) -> None:
        signature = sign(BROADCAST_SECRET, timestamp, body) if signed else "0" * 64
        send(world, f"POST /webhooks/broadcast/receipt ({'signed' if signed else 'bad signature'}) "
                    f"X-Jiaoying-Timestamp {_clip(timestamp)!r} body {_clip(body)!r}",
             method="POST", url="/webhooks/broadcast/receipt", content=body, headers={
                 "X-Jiaoying-Timestamp": timestamp.encode(), "X-Jiaoying-Signature": signature,
                 "Content-Type": "application/json"})

    failures = []
    for name, run in (("twilio", twilio), ("broadcast", broadcast)):
        try:
            run()
        except Exception as exc:
            failures.append(f"{name}:\n{summary(exc)}")
    assert not failures, "\n\n".join(failures)


# -- 4. the board ------------------------------------------------------------------------------------------------

BOARD_GETS = ["/board", "/board/login", "/board/keys", "/board/warnings/{warning_id}",
              "/board/warnings/{warning_id}/record", "/board/warnings/{warning_id}/print",
              "/board/warnings/{warning_id}/export.{fmt}", "/static/{name}"]
BOARD_POSTS = ["/board/callouts/{callout_id}/ack", "/board/callouts/{callout_id}/recall",
               "/board/warnings/{warning_id}/cancel", "/board/keys", "/board/keys/{key_id}/revoke", "/board/login",
               "/board/logout"]
BOARD_FIELDS = ["csrf", "note", "back", "confirm", "agency", "senders", "hazards", "name", "password"]


class BoardSession:
    """A browser signed in to the board as the admin, signed in again whenever a request ended
    its session (a logout, a fuzzed login as someone else)."""

    def __init__(self, world: World) -> None:
        self.client = TestClient(world.client.app)
        self.csrf = ""
        self.sign_in()

    def sign_in(self) -> None:
        self.client.cookies.clear()
        self.csrf = sign_in(self.client, "fuzz-admin", PASSWORD)


def test_no_board_request_gets_a_server_error(world: World) -> None:
    board = BoardSession(world)
    segment = st.one_of(HOSTILE_PATH, st.text(alphabet="abcdefW0123456789-", max_size=12))
    path_values = {"warning_id": st.one_of(st.sampled_from(world.ids["warning_id"]), segment),
                   "callout_id": st.one_of(st.sampled_from(world.ids["callout_id"]), segment),
                   "key_id": segment, "fmt": st.sampled_from(["csv", "json", "xml", "%00"]),
                   "name": st.sampled_from(["board.css", "board.js", "..%2Fconfig.py", "%00", "x.css"])}
    field = st.one_of(HOSTILE_TEXT.map(wire), st.sampled_from(["yes", "rainstorm", "/board", "//evil.example",
                                                               "fuzz-admin", PASSWORD]))

    gets, posts = (st.sampled_from([(method, path) for path in paths])
                   for method, paths in (("GET", BOARD_GETS), ("POST", BOARD_POSTS)))

    @bounded(150)
    @given(route=st.one_of(gets, posts, posts), data=st.data(),
           form=st.dictionaries(st.sampled_from(BOARD_FIELDS), field, max_size=5),
           with_csrf=st.integers(0, 3).map(bool), query=st.one_of(st.none(), st.sampled_from(
               ["lang=en", "lang=%00", "done=ack", "done=%00", "state=x", "lang=" + "x" * 3000])))
    def run(route: tuple[str, str], data: st.DataObject, form: dict[str, str], with_csrf: bool,
            query: str | None) -> None:
        method, url = route
        for name in re.findall(r"{(\w+)}", url):
            url = url.replace("{" + name + "}", data.draw(path_values[name], label=name))
        url += f"?{query}" if query else ""
        if method == "GET":
            send(world, f"board GET {_clip(url)}", method="GET", url=url, client=board.client)
            return
        if with_csrf and route[1] != "/board/login":
            form = form | {"csrf": board.csrf}
        response = send(world, f"board POST {_clip(url)} form {_clip(repr(form))}", method="POST", url=url,
                        data=form, client=board.client, follow_redirects=False)
        if route[1] in ("/board/logout", "/board/login") and response.status_code == 303:
            board.sign_in()

    run()
