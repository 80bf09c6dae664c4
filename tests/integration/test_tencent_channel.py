"""Tencent Cloud end to end: the REAL tencentcloud SDK clients (via dispatcher/channels/tencent.py)
against tests/fakes/tencent_server.py on 127.0.0.1, and the REAL callback webhooks
(dispatcher/api/routes/tencent.py) fed by the fake's own callback payloads through a TestClient,
from a red warning to its acknowledgement (SQLite and PostgreSQL).

First a contract table: what the adapter makes of each answer Tencent can give."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import dispatcher.channels.tencent  # noqa: F401 - registers the Tencent adapters (not yet in ADAPTER_MODULES)
from dispatcher.api.app import create_app
from dispatcher.api.routes import tencent as tencent_routes
from dispatcher.channels.base import (
    Address,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    Purpose,
    SendResult,
    TransientError,
)
from dispatcher.channels.carrier_templates import load_carrier_templates
from dispatcher.channels.carriers import callback_token
from dispatcher.channels.registry import build_adapters, choose_provider, rate_limits
from dispatcher.channels.simulator import SimOutbox
from dispatcher.channels.tencent import BATCH_SIZE, TencentSmsAdapter, TencentVoiceAdapter, classify
from dispatcher.config import Settings
from dispatcher.db.record_repo import events
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, EventRow, InboundRow
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.rendering import MessageContext
from dispatcher.runtime.engine import Engine
from tests.conftest import FIXED_NOW, ROOT, Clock
from tests.e2e.conftest import tiny_site  # noqa: F401 - the fixture
from tests.fakes.tencent_server import CALLBACK_OK, FakeTencent, Received
from tests.support.harness import settle_engine

SECRET_ID = "AKIDjiaoyingTencentTest0000000000001"
SECRET_KEY = "jiaoyingTencentTestSecretKey000001"
SMS_APP = "1400000001"
VOICE_APP = "1400000002"
SIGN = "小溪县应急管理局"
PUBLIC = "http://testserver"
SAMPLE_TEMPLATES = ROOT / "templates" / "carriers.sample.yaml"
PHONE = {"zhao": "+8613800000001", "qian": "+8613800000002", "sun": "+8613800000003", "li": "+8613800000004",
         "zhou": "+8613800000005", "wu": "+8613800000006", "zheng": "+8613800000007"}
A, B, C = "+8613900000001", "+8613900000002", "+8613900000003"


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _fake(templates: dict[str, int], **kw: Any) -> FakeTencent:
    return FakeTencent(secret_id=SECRET_ID, secret_key=SECRET_KEY, sms_app_id=SMS_APP, voice_app_id=VOICE_APP,
                       signs={SIGN}, templates=templates, **kw)


def tencent_settings(fake: FakeTencent, templates: Path | str, database_url: str = "sqlite://",
                     **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "public_url": PUBLIC, "tencent_secret_id": SECRET_ID,
        "tencent_secret_key": SECRET_KEY, "tencent_sms_app_id": SMS_APP, "tencent_voice_app_id": VOICE_APP,
        "tencent_sms_sign_name": SIGN, "tencent_sms_endpoint": fake.url, "tencent_voice_endpoint": fake.url,
        "carrier_templates": str(templates)}
    return Settings(**(values | overrides))


# == the adapter: a contract table ========================================================================

ADAPTER_TEMPLATES = """\
tencent:
  max_variable_length: 12
  sms:
    alert: {code: "100001", variables: [title, headline, areas]}        # the same for everyone: batched
    reminder: {code: "100002", variables: [official, title, ack_code]}  # personalised: one request each
    update: {code: "999999", variables: [title, headline, areas]}       # never approved at Tencent
    cancel: {code: "100001", variables: [title, headline]}              # one variable short
  voice:
    alert: {code: "200001", variables: [official, headline]}
"""


@pytest.fixture
def fake() -> Iterator[FakeTencent]:
    server = _fake({"100001": 3, "100002": 3, "200001": 2})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def adapter_templates(tmp_path: Path) -> Path:
    path = tmp_path / "carriers.yaml"
    path.write_text(ADAPTER_TEMPLATES, encoding="utf-8")
    return path


def message(phone: str = A, *, person: str = "sun", name: str = "孙镇长", purpose: Purpose = Purpose.ALERT,
            channel: Channel = Channel.SMS, n: int = 1, level: Level = Level.RED) -> OutboundMessage:
    context = MessageContext(headline="小溪县气象台发布暴雨红色预警信号", hazard=Hazard.RAINSTORM, level=level,
                             areas=["青溪镇"], description="", instruction="立即组织转移", sent=FIXED_NOW,
                             official=name, ack_code=f"{1000 + n}")
    return OutboundMessage(key=f"9:{n}:{channel.value}:{person}", channel=channel, purpose=purpose,
                           to=Address(person, name, phone), subject="", text="暴雨红色预警", level=level,
                           ack_code=f"{1000 + n}", context=context, attempt_id=n)


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


def send_one(adapter: TencentSmsAdapter | TencentVoiceAdapter, msg: OutboundMessage) -> SendResult | ChannelError:
    async def go() -> SendResult | ChannelError:
        try:
            return await adapter.send(msg)
        except ChannelError as exc:
            return exc
        finally:
            await adapter.aclose()

    return run(go)


def send_many(adapter: TencentSmsAdapter, msgs: list[OutboundMessage]) -> list[SendResult | ChannelError]:
    async def go() -> list[SendResult | ChannelError]:
        try:
            return await adapter.send_many(msgs)
        finally:
            await adapter.aclose()

    return run(go)


@dataclass(frozen=True)
class Row:
    """One answer Tencent can give, and what the engine must be told."""

    name: str  # which answer or bad input
    expect: type  # SendResult or the ChannelError subclass
    says: str = ""  # a word the error must carry (Tencent's code, the variable to fix)
    prepare: Callable[[FakeTencent], None] = lambda fake: None
    settings: dict[str, Any] = field(default_factory=dict)
    msg: dict[str, Any] = field(default_factory=dict)
    channel: Channel = Channel.SMS
    calls_out: bool = True  # whether anything reaches the provider


SMS_ROWS = [
    Row("sent", SendResult),
    Row("bad input: an invalid number (+86138)", PermanentError, "IncorrectPhoneNumber", msg={"phone": "+86138"}),
    Row("provider state: API rate limit hit", TransientError, "RequestLimitExceeded", prepare=lambda f: f.throttle()),
    Row("bad input: wrong SecretKey", ConfigurationError, "AuthFailure.SignatureFailure",
        settings={"tencent_secret_key": "not-the-key"}),
    Row("bad input: unknown SecretId", ConfigurationError, "AuthFailure.SecretIdNotFound",
        settings={"tencent_secret_id": "AKIDunknown"}),
    Row("provider outage: 502 from the gateway", TransientError, "HTTP 502", prepare=lambda f: f.fail_next(502)),
    Row("provider outage: 503", TransientError, "HTTP 503", prepare=lambda f: f.fail_next(503)),
    Row("provider outage: no answer at all (hang)", TransientError, "ClientNetworkError",
        prepare=lambda f: f.hang_next(3)),
    Row("provider outage: nothing listening", TransientError, "ClientNetworkError",
        settings={"tencent_sms_endpoint": "http://127.0.0.1:9"}, calls_out=False),
    Row("bad input: a sign never approved", ConfigurationError, "SignatureIncorrectOrUnapproved",
        settings={"tencent_sms_sign_name": "小溪县气象局"}),
    Row("bad input: a template id Tencent never approved", ConfigurationError, "TemplateIncorrectOrUnapproved",
        msg={"purpose": Purpose.UPDATE}),
    Row("bad input: the voice app's id as SmsSdkAppId", ConfigurationError, "SdkAppIdNotExist",
        settings={"tencent_sms_app_id": VOICE_APP}),
    Row("provider state: the SMS package is used up", ConfigurationError, "InsufficientBalanceInSmsPackage",
        prepare=lambda f: f.arrears()),
    Row("provider state: the number's daily limit", PermanentError, "PhoneNumberDailyLimit",
        prepare=lambda f: f.daily_limit(A)),
    Row("bad input: one parameter short for the approved template", PermanentError,
        "TemplateParamSetNotMatchApprovedTemplate", msg={"purpose": Purpose.CANCEL}),
    Row("bad input: no template for the purpose in the file", PermanentError, "tencent.sms.to_deputy",
        msg={"purpose": Purpose.TO_DEPUTY}, calls_out=False),
    Row("bad input: a number outside the mainland", PermanentError, "+86", msg={"phone": "+14155550100"},
        calls_out=False),
    Row("bad input: plain http to a host that is not loopback", ConfigurationError, "JIAOYING_TENCENT_SMS_ENDPOINT",
        settings={"tencent_sms_endpoint": "http://sms.example.com"}, calls_out=False),
    Row("bad input: no sign name configured", ConfigurationError, "JIAOYING_TENCENT_SMS_SIGN_NAME",
        settings={"tencent_sms_sign_name": ""}, calls_out=False),
    Row("bad input: no template file at all", ConfigurationError, "JIAOYING_CARRIER_TEMPLATES",
        settings={"carrier_templates": ""}, calls_out=False),
]

VOICE_ROWS = [
    Row("sent", SendResult, channel=Channel.VOICE),
    Row("bad input: an invalid number (+86138)", PermanentError, "CalledNumberVerifyFail",
        msg={"phone": "+86138"}, channel=Channel.VOICE),
    Row("provider state: the voice package is used up", ConfigurationError, "InsufficientBalanceInVoicePackage",
        prepare=lambda f: f.arrears(), channel=Channel.VOICE),
    Row("provider state: calls to this number limited", PermanentError, "DeliveryFrequencyLimit",
        prepare=lambda f: f.daily_limit(A), channel=Channel.VOICE),
    Row("provider state: API rate limit hit", TransientError, "RequestLimitExceeded", prepare=lambda f: f.throttle(),
        channel=Channel.VOICE),
    Row("bad input: wrong SecretKey", ConfigurationError, "AuthFailure", settings={"tencent_secret_key": "nope"},
        channel=Channel.VOICE),
    Row("provider outage: 500", TransientError, "HTTP 500", prepare=lambda f: f.fail_next(500), channel=Channel.VOICE),
    Row("provider outage: no answer at all (hang)", TransientError, "ClientNetworkError",
        prepare=lambda f: f.hang_next(3), channel=Channel.VOICE),
    Row("bad input: plain http to a host that is not loopback", ConfigurationError, "JIAOYING_TENCENT_VOICE_ENDPOINT",
        settings={"tencent_voice_endpoint": "http://10.0.0.8:8080"}, calls_out=False, channel=Channel.VOICE),
]


@pytest.mark.parametrize("row", SMS_ROWS + VOICE_ROWS, ids=lambda r: f"{r.channel.value}: {r.name}")
def test_contract(row: Row, fake: FakeTencent, adapter_templates: Path) -> None:
    row.prepare(fake)
    settings = tencent_settings(fake, adapter_templates, **row.settings)
    kind = TencentSmsAdapter if row.channel is Channel.SMS else TencentVoiceAdapter
    msg = message(channel=row.channel, **row.msg)
    started = time.monotonic()
    outcome = send_one(kind(settings, timeout=0.4), msg)
    assert time.monotonic() - started < 2.5  # a hang is cut by the SDK's reqTimeout
    assert isinstance(outcome, row.expect), outcome
    if isinstance(outcome, ChannelError):
        assert row.says in str(outcome), outcome
    if not row.calls_out:
        assert fake.attempts() == []
    if isinstance(outcome, SendResult) and row.channel is Channel.SMS:
        (sent,) = fake.messages()
        assert outcome.provider_id == sent.serial(A) and sent.session_context == msg.key
        assert (sent.template_id, sent.params["SignName"], sent.params["SmsSdkAppId"]) == ("100001", SIGN, SMS_APP)
        assert sent.template_params == ["暴雨红色预警", "小溪县气象台发布暴雨红…", "青溪镇"]  # cut to 12 with "…"
    if isinstance(outcome, SendResult) and row.channel is Channel.VOICE:
        (call,) = fake.calls()
        assert outcome.provider_id == call.call_id and call.session_context == msg.key
        assert (call.template_id, call.params["PlayTimes"], call.params["VoiceSdkAppid"]) == ("200001", 3, VOICE_APP)
        assert call.numbers == (A,) and call.template_params == ["孙镇长", "小溪县气象台发布暴雨红…"]


def test_batch_with_one_refused_number_fails_only_that_message(fake: FakeTencent, adapter_templates: Path) -> None:
    # Provider state: B is over its daily limit; A, B and C get the same alert (one SendSms).
    fake.daily_limit(B)
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=2)
    msgs = [message(A, n=1), message(B, person="zhou", n=2), message(C, person="zheng", n=3)]
    a, b, c = send_many(adapter, msgs)
    (request,) = fake.messages()
    assert request.numbers == (A, B, C) and request.session_context.startswith("batch:3:")
    assert isinstance(a, SendResult) and isinstance(c, SendResult) and a.provider_id != c.provider_id
    assert (a.provider_id, c.provider_id) == (request.serial(A), request.serial(C))
    assert isinstance(b, PermanentError) and "PhoneNumberDailyLimit" in str(b)


def test_batch_refused_as_a_whole_fails_each_message_alike(fake: FakeTencent, adapter_templates: Path) -> None:
    # Provider state: rate limit hit for the one batch request.
    fake.throttle()
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=2)
    outcomes = send_many(adapter, [message(A, n=1), message(B, n=2), message(C, n=3)])
    assert [type(o) for o in outcomes] == [TransientError] * 3
    assert fake.attempts() == [("SendSms", "RequestLimitExceeded")]


def test_personalised_messages_go_one_request_each_and_batches_split(fake: FakeTencent,
                                                                     adapter_templates: Path) -> None:
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=2)
    msgs = [message(A, n=1), message(B, n=2),  # equal: one request
            message(A, n=3),  # equal again, but A is in that request already: a second one
            message(C, n=4, purpose=Purpose.REMINDER, name="郑防汛员"),  # personalised (name, code)
            message(B, n=5, purpose=Purpose.REMINDER, name="周村长"),
            message(C, n=6, purpose=Purpose.TO_DEPUTY)]  # no template: refused here, never sent
    outcomes = send_many(adapter, msgs)
    assert [type(o) for o in outcomes] == [SendResult] * 5 + [PermanentError]
    requests = sorted(fake.messages(), key=lambda r: (len(r.numbers), r.numbers))
    assert sorted(r.numbers for r in requests) == [(A,), (A, B), (B,), (C,)]
    contexts = {r.numbers: r.session_context for r in requests}
    assert contexts[(B,)] == msgs[4].key and contexts[(C,)] == msgs[3].key and contexts[(A,)] == msgs[2].key
    personal = {r.numbers[0]: r.template_params for r in requests if r.template_id == "100002"}
    assert personal == {C: ["郑防汛员", "暴雨红色预警", "1004"], B: ["周村长", "暴雨红色预警", "1005"]}
    assert len({o.provider_id for o in outcomes if isinstance(o, SendResult)}) == 5


def test_a_batch_never_exceeds_200_numbers(fake: FakeTencent, adapter_templates: Path) -> None:
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=5)
    msgs = [message(f"+86137{i:08d}", n=i) for i in range(BATCH_SIZE + 1)]
    outcomes = send_many(adapter, msgs)
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert sorted(len(r.numbers) for r in fake.messages()) == [1, BATCH_SIZE]


def test_warm_makes_the_sdk_client_ahead_of_the_first_send_without_a_request(fake: FakeTencent,
                                                                            adapter_templates: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle worker calls ``warm`` (engine): the SDK's client is made then, not by the first send of
    a fan-out; nothing reaches Tencent. A spy, not a mock: the adapter's own factory runs."""
    made: list[int] = []
    real = TencentSmsAdapter._make_client

    def counting(self: Any, endpoint: Any) -> Any:
        made.append(1)
        return real(self, endpoint)

    monkeypatch.setattr(TencentSmsAdapter, "_make_client", counting)
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=5)
    adapter.warm()
    assert made == [1] and fake.received() == []
    assert isinstance(send_one(adapter, message()), SendResult)
    assert made == [1] and len(fake.messages()) == 1
    # settings that cannot work: warm leaves them to the send, which says what is wrong
    unconfigured = TencentSmsAdapter(tencent_settings(fake, adapter_templates).model_copy(
        update={"tencent_sms_sign_name": ""}), timeout=5)
    unconfigured.warm()
    assert isinstance(send_one(unconfigured, message()), ChannelError)


def test_loopback_endpoint_is_never_reached_through_a_proxy(fake: FakeTencent, adapter_templates: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Bad environment: HTTP_PROXY points at a dead proxy and NO_PROXY does not name the fake.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    outcome = send_one(TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=1), message())
    assert isinstance(outcome, SendResult)


def test_lookup_finds_a_delivered_message_by_number_and_session_context(fake: FakeTencent,
                                                                        adapter_templates: Path) -> None:
    fake.report_context = True  # Tencent echoes SessionContext only once its support enabled it
    adapter = TencentSmsAdapter(tencent_settings(fake, adapter_templates), timeout=2)
    msg = message()

    async def go() -> tuple[Any, ...]:
        sent = await adapter.send(msg)
        before = await adapter.lookup(msg.key, msg.to)  # no delivery report yet: Tencent lists nothing
        fake.report(None, fake.messages()[0], A)
        found = await adapter.lookup(msg.key, msg.to)
        other = await adapter.lookup("9:99:sms:sun", msg.to)
        nobody = await adapter.lookup(msg.key, None)
        await adapter.aclose()
        return sent, before, found, other, nobody

    sent, before, found, other, nobody = run(go)
    assert before is None and other is None and nobody is None
    assert found == SendResult(sent.provider_id, "sent", "tencent")
    assert TencentSmsAdapter.can_look_up is False and TencentSmsAdapter.calls_back is True


@pytest.mark.parametrize(("code", "expected"), [
    ("AuthFailure.SignatureExpire", ConfigurationError), ("AuthFailure.UnauthorizedOperation", ConfigurationError),
    ("UnauthorizedOperation.SdkAppIdIsDisabled", ConfigurationError),
    ("LimitExceeded.AppDailyLimit", ConfigurationError), ("InternalError.Timeout", TransientError),
    ("InternalError", TransientError), ("LimitExceeded.PhoneNumberThirtySecondLimit", TransientError),
    ("FailedOperation.PhoneNumberInBlacklist", PermanentError), ("InvalidParameterValue.Whatever", PermanentError),
    ("JSONDecodeError", TransientError),
])
def test_classify_codes_the_table_does_not_exercise(code: str, expected: type) -> None:
    assert type(classify(code, "…")) is expected


def test_classify_plain_http_statuses_through_error_for_status() -> None:
    assert type(classify("ServerNetworkError", status=401)) is ConfigurationError
    assert type(classify("ServerNetworkError", status=404)) is PermanentError
    throttled = classify("ServerNetworkError", status=429, retry_after="7")
    assert isinstance(throttled, TransientError) and throttled.retry_after == 7
    assert classify("LimitExceeded.PhoneNumberThirtySecondLimit").retry_after == 30  # type: ignore[attr-defined]


def test_registry_picks_tencent_for_sms_and_voice_when_configured(fake: FakeTencent, adapter_templates: Path) -> None:
    settings = tencent_settings(fake, adapter_templates)
    assert (choose_provider(Channel.SMS, settings), choose_provider(Channel.VOICE, settings)) == ("tencent", "tencent")
    assert choose_provider(Channel.VOICE, tencent_settings(fake, adapter_templates, tencent_voice_app_id="")) != \
        "tencent"
    assert Channel.SMS not in rate_limits(settings)  # no documented Tencent rate in the reference: none assumed


# == end to end: warning -> Tencent -> callbacks -> acknowledgement ======================================


@dataclass
class World:
    url: str
    fake: FakeTencent
    client: TestClient
    engine: Engine
    clock: Clock
    headers: dict[str, str]
    settings: Settings

    def path(self, name: str, token: str | None = None) -> str:
        return f"/webhooks/tencent/{token or callback_token(self.settings)}/{name}"

    def drive(self) -> None:
        settle_engine(self.engine, rounds=50)

    def advance(self, minutes: float) -> None:
        self.drive()
        self.clock.now += timedelta(minutes=minutes)
        self.drive()

    def post_warning(self, identifier: str = "TC-1") -> str:
        body = {"sender": "qingxi-qx", "identifier": identifier, "msg_type": "alert", "hazard": "rainstorm",
                "level": "red", "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
                "instruction": "请立即组织转移", "sent": self.clock.now.isoformat()}
        response = self.client.post("/api/v1/warnings", json=body, headers=self.headers)
        assert response.status_code == 202, response.text
        self.drive()
        return response.json()["id"]

    def callout(self, person: str) -> CalloutRow:
        with transaction(self.url) as session:
            row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person)
                                  .order_by(CalloutRow.id)).first()
            assert row is not None
            session.expunge(row)
            return row

    def attempt(self, provider_id: str) -> AttemptRow:
        with transaction(self.url) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.provider_id == provider_id)).one()
            session.expunge(row)
            return row

    def sms_to(self, person: str) -> Received:
        found = [m for m in self.fake.messages() if PHONE[person] in m.numbers]
        assert len(found) == 1, f"{len(found)} SendSms to {person}"
        return found[0]

    def call_to(self, person: str) -> Received:
        found = [c for c in self.fake.calls() if c.numbers == (PHONE[person],)]
        assert len(found) == 1, f"{len(found)} calls to {person}"
        return found[0]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused or ignored callback must leave alone."""
        with transaction(self.url) as session:
            callouts = session.execute(select(CalloutRow.id, CalloutRow.state, CalloutRow.next_due,
                                              CalloutRow.ack_via).order_by(CalloutRow.id)).all()
            attempts = session.execute(select(AttemptRow.id, AttemptRow.status).order_by(AttemptRow.id)).all()
            inbound = session.scalar(select(func.count()).select_from(InboundRow))
            recorded = session.scalar(select(func.count()).select_from(EventRow))
        return tuple(callouts), tuple(attempts), inbound, recorded


@pytest.fixture
def world(tiny_site: str, clock: Clock, auth: dict[str, str]) -> Iterator[World]:  # noqa: F811
    approved = {t.code: len(t.variables) for t in load_carrier_templates(SAMPLE_TEMPLATES).entries.values()
                if t.provider == "tencent"}
    fake = _fake(approved)
    fake.start()
    settings = tencent_settings(fake, SAMPLE_TEMPLATES, tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="tencent-test")
    app = create_app(settings, clock=clock)
    if not any(str(getattr(r, "path", "")).startswith("/webhooks/tencent/") for r in app.routes):
        app.include_router(tencent_routes.router)
    try:
        with TestClient(app) as client:
            yield World(tiny_site, fake, client, engine, clock, auth, settings)
    finally:
        engine.close()
        fake.stop()


def _ok(callback: Any) -> None:
    assert callback.status == 200 and callback.answer == CALLBACK_OK, (callback.status, callback.answer)


def test_red_warning_goes_out_by_tencent_sms_and_a_reply_acknowledges(world: World) -> None:
    wid = world.post_warning()
    assert sorted(n for m in world.fake.messages() for n in m.numbers) == sorted(
        PHONE[p] for p in ("sun", "zhou", "zheng"))
    sms = world.sms_to("sun")  # personalised (name, code): one request each
    attempt = world.attempt(sms.serial(PHONE["sun"]))
    assert (attempt.provider, attempt.status, attempt.channel, attempt.purpose) == ("tencent", "sent", "sms", "alert")
    assert sms.session_context == attempt.key and sms.template_id == "1000001"
    assert sms.template_params[1] == "孙镇长" and sms.template_params[-1] == world.callout("sun").ack_code
    assert world.callout("sun").state == "notified"

    _ok(world.fake.report(world.client, sms, PHONE["sun"], url=world.path("sms-status")))
    assert world.attempt(sms.serial(PHONE["sun"])).status == "delivered"
    before = world.snapshot()
    # bad input: the same status report, delivered again by Tencent
    _ok(world.fake.report(world.client, sms, PHONE["sun"], url=world.path("sms-status")))
    assert world.snapshot() == before

    _ok(world.fake.reply(world.client, PHONE["sun"], "收到", url=world.path("sms-reply")))
    sun = world.callout("sun")
    assert (sun.state, sun.ack_via, sun.acknowledged_by) == ("acknowledged", "sms", "sun")
    assert world.callout("zhou").state == "notified"
    with transaction(world.url) as session:
        kinds = [e.kind for e in events(session, wid)]
    assert "inbound_sms" in kinds and "provider_receipt" in kinds


def test_a_replayed_reply_acknowledges_once(world: World) -> None:
    world.post_warning()
    first = world.fake.reply(world.client, PHONE["zhou"], "收到", url=world.path("sms-reply"))
    _ok(first)
    assert world.callout("zhou").state == "acknowledged"
    world.post_warning("TC-2")  # 周村长 is called again, for a new warning
    # bad input: the very same reply callback, played back
    replay = world.client.post(world.path("sms-reply"), json=first.payload)
    assert replay.status_code == 200 and replay.json() == CALLBACK_OK
    with transaction(world.url) as session:
        states = session.scalars(select(CalloutRow.state).where(CalloutRow.person_id == "zhou")
                                 .order_by(CalloutRow.id)).all()
        inbound = session.scalar(select(func.count()).select_from(InboundRow))
    assert states == ["acknowledged", "notified"] and inbound == 1


def test_no_reply_then_a_tencent_call_and_keypress_1_acknowledges(world: World) -> None:
    world.post_warning()
    world.fake.reply(world.client, PHONE["sun"], "1", url=world.path("sms-reply"))
    world.advance(minutes=3)  # step 1: a voice call to those who have not answered
    assert sorted(c.numbers[0] for c in world.fake.calls()) == [PHONE["zhou"], PHONE["zheng"]]
    call = world.call_to("zhou")
    attempt = world.attempt(call.call_id)
    assert (attempt.provider, attempt.channel, attempt.status) == ("tencent", "voice", "sent")
    assert call.session_context == attempt.key and call.params["PlayTimes"] == 3
    assert call.template_id == "1000102" and call.template_params[0] == "周村长"  # reminder, to him

    _ok(world.fake.keypress(world.client, call, keys="5", url=world.path("voice-keypress")))
    assert world.callout("zhou").state == "notified"  # any other key: recorded only
    pressed = world.fake.keypress(world.client, call, keys="1", url=world.path("voice-keypress"))
    _ok(pressed)
    zhou = world.callout("zhou")
    assert (zhou.state, zhou.ack_via, zhou.acknowledged_by) == ("acknowledged", "voice", "zhou")
    before = world.snapshot()
    # bad input: the keypress callback played back
    assert world.client.post(world.path("voice-keypress"), json=pressed.payload).json() == CALLBACK_OK
    assert world.snapshot() == before
    _ok(world.fake.call_status(world.client, call, "0", url=world.path("voice-status")))
    assert world.attempt(call.call_id).status == "delivered"
    assert world.callout("zheng").state == "notified"


def test_unreachable_number_fails_the_call_and_the_deputy_is_asked_at_once(world: World) -> None:
    world.post_warning()
    world.advance(minutes=3)
    zhou, zheng = world.call_to("zhou"), world.call_to("zheng")
    assert world.callout("zhou").next_due > world.clock.now
    _ok(world.fake.call_status(world.client, zhou, "2", url=world.path("voice-status")))  # call failed
    _ok(world.fake.call_status(world.client, zheng, "1", url=world.path("voice-status")))  # not answered
    assert world.attempt(zhou.call_id).status == "failed" and world.attempt(zheng.call_id).status == "failed"
    assert "not answered" in (world.attempt(zheng.call_id).error or "")
    assert world.callout("zhou").next_due == world.clock.now  # brought forward from 6 minutes
    before = world.snapshot()
    # bad input: the "call failed" result delivered again
    _ok(world.fake.call_status(world.client, zhou, "2", url=world.path("voice-status")))
    assert world.snapshot() == before
    world.drive()  # step 2 runs now: SMS to 周村长's deputy 吴主任, through Tencent
    deputy = world.sms_to("wu")
    assert deputy.template_id == "1000003" and deputy.template_params[1:3] == ["吴主任", "周村长"]
    assert world.attempt(deputy.serial(PHONE["wu"])).purpose == "to_deputy"


def test_callbacks_with_a_wrong_token_are_404_and_change_nothing(world: World,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    world.post_warning()
    sms = world.sms_to("sun")
    before = world.snapshot()
    report = [{"user_receive_time": "2026-07-16 11:13:00", "nationcode": "86", "mobile": "13800000003",
               "report_status": "FAIL", "errmsg": "UNDELIV", "description": "", "sid": sms.serial(PHONE["sun"])}]
    reply = {"extend": "", "mobile": "13800000003", "nationcode": "86", "sign": SIGN, "text": "收到", "time": 1}
    key = {"voicekey_callback": {"call_from": "", "callid": "x", "keypress": "1", "mobile": "13800000003",
                                 "nationcode": "86"}}
    wrong = "0" * 40
    caplog.set_level(logging.WARNING, logger="jiaoying.webhooks.tencent")
    # bad input: a right-looking token that is not ours, a non-ASCII one, none at all
    for token in (wrong, "收到" * 20, "-"):
        for name, body in (("sms-status", report), ("sms-reply", reply), ("voice-keypress", key),
                           ("voice-status", key)):
            assert world.client.post(world.path(name, token), json=body).status_code == 404, (token, name)
    assert world.client.post("/webhooks/tencent/sms-reply", json=reply).status_code == 404
    # bad input: a wrong token AND a body in no documented shape: the token is checked first
    assert world.client.post(world.path("sms-status", wrong), json={"not": "an array"}).status_code == 404
    assert world.snapshot() == before
    assert sum("wrong token" in r.getMessage() for r in caplog.records) == 13


def test_status_and_keypress_from_another_number_are_ignored(world: World) -> None:
    world.post_warning()
    sms = world.sms_to("sun")
    before = world.snapshot()
    # bad input: sun's SerialNo, reported FAIL for 周村长's number
    report = [{"user_receive_time": "2026-07-16 11:13:00", "nationcode": "86", "mobile": PHONE["zhou"][3:],
               "report_status": "FAIL", "errmsg": "UNDELIV", "description": "", "sid": sms.serial(PHONE["sun"])}]
    answer = world.client.post(world.path("sms-status"), json=report)
    assert answer.status_code == 200 and answer.json() == CALLBACK_OK
    # bad input: a report for a SerialNo Tencent never gave us
    unknown = [dict(report[0], mobile=PHONE["sun"][3:], sid="5000:1111")]
    assert world.client.post(world.path("sms-status"), json=unknown).json() == CALLBACK_OK
    assert world.snapshot() == before
    assert world.attempt(sms.serial(PHONE["sun"])).status == "sent"

    world.advance(minutes=3)
    call = world.call_to("zhou")
    before = world.snapshot()
    # bad input: "1" pressed on 周村长's call, reported from 孙镇长's number
    forged = {"voicekey_callback": {"call_from": "", "callid": call.call_id, "keypress": "1",
                                    "mobile": PHONE["sun"][3:], "nationcode": "86"}}
    assert world.client.post(world.path("voice-keypress"), json=forged).json() == CALLBACK_OK
    assert world.snapshot() == before and world.callout("zhou").state == "notified"


def test_callbacks_in_another_shape_are_refused_with_422(world: World) -> None:
    world.post_warning()
    sms = world.sms_to("sun")
    before = world.snapshot()
    good = {"user_receive_time": "", "nationcode": "86", "mobile": "13800000003", "report_status": "SUCCESS",
            "errmsg": "DELIVRD", "description": "", "sid": sms.serial(PHONE["sun"])}
    for name, body, why in [
        ("sms-status", good, "a single report, not the documented array"),
        ("sms-status", [dict(good, sid="5000:\x00")], "NUL in the sid"),
        ("sms-status", [dict(good, report_status="MAYBE")], "an unknown report status"),
        ("sms-status", [dict(good, mobile="13800000003; drop")], "a mobile that is not digits"),
        ("sms-reply", {"mobile": "13800000003", "nationcode": "86", "text": "收\x00到", "time": 1}, "NUL in the text"),
        ("voice-status", {"voiceprompt_callback": {"result": "7", "callid": "c", "mobile": "13800000005"}},
         "a call result Tencent does not document"),
        ("voice-keypress", {"keypress": "1"}, "no voicekey_callback wrapper"),
    ]:
        assert world.client.post(world.path(name), json=body).status_code == 422, why
    assert world.snapshot() == before


def test_a_report_echoing_our_session_context_finds_an_attempt_whose_answer_was_lost(world: World) -> None:
    # Provider state: SessionContext echo ("ext") enabled; our record of sun's SerialNo was lost
    # (the send's answer never arrived), so only the echoed attempt key can find the attempt.
    world.fake.report_context = True
    world.post_warning()
    sms = world.sms_to("sun")
    serial = sms.serial(PHONE["sun"])
    with transaction(world.url) as session:
        session.execute(AttemptRow.__table__.update().where(AttemptRow.provider_id == serial)
                        .values(provider_id=None))
    # bad input first: the echoed key, but from 周村长's number
    forged = [{"user_receive_time": "", "nationcode": "86", "mobile": PHONE["zhou"][3:], "report_status": "SUCCESS",
               "errmsg": "DELIVRD", "description": "", "sid": serial, "ext": sms.session_context}]
    before = world.snapshot()
    assert world.client.post(world.path("sms-status"), json=forged).json() == CALLBACK_OK
    assert world.snapshot() == before
    _ok(world.fake.report(world.client, sms, PHONE["sun"], url=world.path("sms-status")))
    with transaction(world.url) as session:
        status = session.scalar(select(AttemptRow.status).where(AttemptRow.key == sms.session_context))
    assert status == "delivered"
