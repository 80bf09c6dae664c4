"""Aliyun (阿里云) end to end: the REAL official SDKs (alibabacloud-dysmsapi20170525, -dyvmsapi20170525) against
the loopback fake tests/fakes/aliyun_server.py, and the REAL webhooks (dispatcher/api/routes/aliyun.py) fed by
the fake's pushes through a TestClient, from a red warning to its acknowledgement (SQLite and PostgreSQL).

Every test runs with HTTP(S)_PROXY pointing at a dead port: the SDK reads those itself, and the adapter must
never send a loopback request through a proxy."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client as SmsClient
from alibabacloud_tea_openapi import models as open_api_models
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.api.routes import aliyun as aliyun_routes
from dispatcher.channels import aliyun
from dispatcher.channels.aliyun import AliyunSmsAdapter, AliyunVoiceAdapter, classify, national_number
from dispatcher.channels.base import (
    Address,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    Purpose,
    SendResult,
    TransientError,
)
from dispatcher.channels.carriers import callback_token
from dispatcher.channels.registry import build_adapters, choose_provider, rate_limits
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import events
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, EventRow, InboundRow
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.domain.limits import RateLimit
from dispatcher.rendering import MessageContext
from dispatcher.runtime.engine import Engine
from tests.conftest import ROOT, Clock
from tests.e2e.conftest import tiny_site  # noqa: F401 - the fixture
from tests.fakes.aliyun_server import FakeAliyun, Received
from tests.support.harness import settle_engine

AK_ID = "LTAI5tJiaoyingAliyunTest01"
AK_SECRET = "jiaoying-aliyun-test-secret-0123456789"
SIGN = "小溪县应急管理局"
SHOW = "057156781234"
PUBLIC = "http://testserver"
CONFIRM = "TTS_000010"  # the "已确认" prompt key 1 plays (the alert entry's ``confirm``)
PHONE = {"zhao": "+8613800000001", "qian": "+8613800000002", "sun": "+8613800000003", "li": "+8613800000004",
         "zhou": "+8613800000005", "wu": "+8613800000006", "zheng": "+8613800000007"}
DEAD_PROXY = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _hostile_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def template_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample's Aliyun codes, with a ``confirm`` prompt on the voice alert."""
    sample = yaml.safe_load((ROOT / "templates" / "carriers.sample.yaml").read_text(encoding="utf-8"))
    section = sample["aliyun"]
    section["voice"]["alert"]["confirm"] = CONFIRM
    path = tmp_path_factory.mktemp("aliyun") / "carriers.yaml"
    path.write_text(yaml.safe_dump({"aliyun": section}, allow_unicode=True), encoding="utf-8")
    return path


def fake_templates(path: Path) -> dict[str, list[str]]:
    section = yaml.safe_load(path.read_text(encoding="utf-8"))["aliyun"]
    found = {entry["code"]: entry["variables"] for channel in ("sms", "voice") for entry in section[channel].values()}
    return found | {CONFIRM: []}


@pytest.fixture
def fake(template_file: Path) -> Iterator[FakeAliyun]:
    server = FakeAliyun(AK_ID, AK_SECRET, sign_names={SIGN}, templates=fake_templates(template_file),
                        show_numbers={SHOW})
    server.start()
    yield server
    server.stop()


def aliyun_settings(database_url: str, fake: FakeAliyun, template_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "public_url": PUBLIC, "aliyun_access_key_id": AK_ID,
        "aliyun_access_key_secret": AK_SECRET, "aliyun_sms_sign_name": SIGN, "aliyun_voice_show_number": SHOW,
        "aliyun_sms_endpoint": fake.url, "aliyun_voice_endpoint": fake.url, "carrier_templates": str(template_file)}
    return Settings(**(values | overrides))


def with_aliyun_routes(app: FastAPI) -> FastAPI:
    """The app as served: its router is included by create_app once it is wired in, else here."""
    if not any(getattr(route, "path", "").startswith("/webhooks/aliyun/") for route in app.routes):
        app.include_router(aliyun_routes.router)
    return app


# -- the adapters against the fake: one contract, both channels ------------------------------------------

CONTEXT = MessageContext(headline="青溪县气象台发布暴雨红色预警信号", hazard=Hazard("rainstorm"), level=Level.RED,
                         areas=["青溪镇"], description="", instruction="请立即组织转移",
                         sent=datetime(2026, 7, 16, 3, 10, tzinfo=UTC), official="孙镇长", ack_code="4821")
_ids = iter(range(1, 10**6))


def message(phone: str | None = PHONE["sun"], channel: Channel = Channel.SMS, purpose: Purpose = Purpose.ALERT,
            official: str = "孙镇长", key: str | None = None) -> OutboundMessage:
    attempt_id = next(_ids)
    context = MessageContext(**{**CONTEXT.__dict__, "official": official})
    return OutboundMessage(key=key or f"{attempt_id}:alert:W-1:{channel.value}:p{attempt_id}", channel=channel,
                           purpose=purpose, to=Address(f"p{attempt_id}", official, phone), subject="", text="…",
                           level=Level.RED, context=context, attempt_id=attempt_id)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def send_all(adapter: ChannelAdapter, messages: list[OutboundMessage]) -> list[SendResult | ChannelError]:
    async def go() -> list[SendResult | ChannelError]:
        try:
            return await adapter.send_many(messages)
        finally:
            await adapter.aclose()

    return run(go())


@dataclass(frozen=True)
class Row:
    """One contract row: what goes wrong (on the fake or in the settings), and each message's outcome."""

    name: str
    phones: tuple[str, ...]
    expected: tuple[type, ...]
    setup: Callable[[FakeAliyun], Any] = lambda fake: None
    settings: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None


CONTRACT = [
    Row("sent", (PHONE["sun"],), (SendResult,)),
    # Bad input: a ten-digit number (Aliyun: isv.MOBILE_NUMBER_ILLEGAL).
    Row("invalid number is permanent", ("+86138000000",), (PermanentError,)),
    # Bad luck: the gateway's flow control, asking to wait 1,500 ms (x-acs-retry-after is in milliseconds).
    Row("throttled is transient with its retry-after", (PHONE["sun"],), (TransientError,),
        lambda fake: fake.throttle_next(retry_after=1_500), retry_after=1.5),
    # Bad input: the right AccessKeyId signed with another secret.
    Row("bad credentials are a configuration error", (PHONE["sun"],), (ConfigurationError,),
        settings={"aliyun_access_key_secret": "not-the-secret"}),
    # Bad luck: HTTP 503.
    Row("5xx is transient", (PHONE["sun"],), (TransientError,), lambda fake: fake.fail_next(503)),
    # Bad luck: no answer at all; the adapter's 0.3 s read timeout gives up.
    Row("a hang is transient within the timeout", (PHONE["sun"],), (TransientError,),
        lambda fake: fake.hang_next(5.0)),
    # Bad input: one number of three is under Aliyun's per-number flow control.
    Row("batch with one refused number fails only that message", (PHONE["sun"], PHONE["zhou"], PHONE["zheng"]),
        (SendResult, PermanentError, SendResult), lambda fake: fake.business_limit(PHONE["zhou"])),
]


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE])
@pytest.mark.parametrize("row", CONTRACT, ids=[r.name for r in CONTRACT])
def test_contract(row: Row, channel: Channel, fake: FakeAliyun, template_file: Path) -> None:
    settings = aliyun_settings("sqlite://", fake, template_file, **row.settings)
    adapter_type = AliyunSmsAdapter if channel is Channel.SMS else AliyunVoiceAdapter
    adapter = adapter_type(settings, timeout=0.3)
    row.setup(fake)
    started = time.monotonic()
    outcomes = send_all(adapter, [message(p, channel, official=f"官员{i}") for i, p in enumerate(row.phones)])
    assert time.monotonic() - started < 2.5
    assert [type(o) for o in outcomes] == list(row.expected), outcomes
    for outcome in outcomes:
        if isinstance(outcome, TransientError):
            assert outcome.retry_after == row.retry_after
    sent = fake.messages() if channel is Channel.SMS else fake.calls()
    ids = [o.provider_id for o in outcomes if isinstance(o, SendResult)]
    assert len(set(ids)) == len(ids) == sum(len(r.numbers) for r in sent)  # one provider id per message
    if channel is Channel.SMS:
        assert sorted(ids) == sorted(aliyun.sms_provider_id(r.biz_id, national_number(n) or "")
                                     for r in sent for n in r.numbers)
    else:
        assert sorted(ids) == sorted(r.call_id for r in sent)


def test_the_sdk_would_take_the_environments_proxy_the_adapter_never_does(fake: FakeAliyun,
                                                                           template_file: Path) -> None:
    # Bad environment: HTTP_PROXY names a dead port (autouse). The bare SDK follows it and fails ...
    bare = SmsClient(open_api_models.Config(access_key_id=AK_ID, access_key_secret=AK_SECRET, endpoint=fake.endpoint,
                                            protocol="http", connect_timeout=300, read_timeout=300))
    request = sms_models.SendSmsRequest(phone_numbers="13800000003", sign_name=SIGN, template_code="SMS_000008",
                                        template_param="{}")
    with pytest.raises(Exception, match="(?i)proxy|refused|connect"):
        bare.send_sms(request)
    assert fake.received() == []
    # ... the adapter goes straight to the loopback endpoint.
    result = run(AliyunSmsAdapter(aliyun_settings("sqlite://", fake, template_file)).send(message()))
    assert result.provider_id.endswith(":13800000003") and len(fake.messages()) == 1


# -- SMS batching --------------------------------------------------------------------------------------


def sms_adapter(fake: FakeAliyun, template_file: Path, **overrides: Any) -> AliyunSmsAdapter:
    return AliyunSmsAdapter(aliyun_settings("sqlite://", fake, template_file, **overrides), timeout=0.5)


def test_personalised_messages_go_in_one_send_batch_sms_identical_ones_in_one_send_sms(
        fake: FakeAliyun, template_file: Path) -> None:
    personal = [message(PHONE[p], official=name) for p, name in (("sun", "孙镇长"), ("zhou", "周村长"),
                                                                  ("zheng", "郑防汛员"))]
    same = [message(PHONE[p], official="同志") for p in ("li", "wu")]
    outcomes = send_all(sms_adapter(fake, template_file), personal + same)
    assert all(isinstance(o, SendResult) for o in outcomes)
    batch, shared = sorted(fake.messages(), key=lambda r: r.action)
    assert batch.action == "SendBatchSms" and batch.numbers == ("13800000003", "13800000005", "13800000007")
    assert [p["official"] for p in batch.template_params] == ["孙镇长", "周村长", "郑防汛员"]
    assert batch.sign_names == (SIGN,) * 3 and batch.out_id == personal[0].key
    assert shared.action == "SendSms" and shared.numbers == ("13800000004", "13800000006")
    assert [o.provider_id for o in outcomes if isinstance(o, SendResult)] == [
        f"{batch.biz_id}:13800000003", f"{batch.biz_id}:13800000005", f"{batch.biz_id}:13800000007",
        f"{shared.biz_id}:13800000004", f"{shared.biz_id}:13800000006"]


def test_a_number_is_never_twice_in_one_request(fake: FakeAliyun, template_file: Path) -> None:
    # Two call-outs to the same person at once (two warnings): two requests, so each receipt names one message.
    outcomes = send_all(sms_adapter(fake, template_file), [message(official="孙镇长"), message(official="孙镇长"),
                                                           message(PHONE["zhou"], official="周村长")])
    assert all(isinstance(o, SendResult) for o in outcomes)
    assert len({o.provider_id for o in outcomes if isinstance(o, SendResult)}) == 3
    assert all(len(set(r.numbers)) == len(r.numbers) for r in fake.messages())
    assert sum(len(r.numbers) for r in fake.messages()) == 3


def test_batch_refused_for_a_malformed_number_is_resent_singly(fake: FakeAliyun, template_file: Path) -> None:
    # Bad input: one number of three is not a mobile number; Aliyun refuses the whole SendBatchSms.
    messages = [message(PHONE["sun"], official="甲"), message("+86123", official="乙"),
                message(PHONE["zhou"], official="丙")]
    outcomes = send_all(sms_adapter(fake, template_file), messages)
    assert [type(o) for o in outcomes] == [SendResult, PermanentError, SendResult]
    assert "isv.MOBILE_NUMBER_ILLEGAL" in str(outcomes[1])
    assert [(r.action, r.code, len(r.numbers)) for r in fake.received()][0] == \
        ("SendBatchSms", "isv.MOBILE_NUMBER_ILLEGAL", 3)
    assert sorted(r.numbers[0] for r in fake.messages()) == ["13800000003", "13800000005"]


def test_a_configuration_refusal_of_a_batch_is_every_messages_outcome_without_resending(
        fake: FakeAliyun, template_file: Path) -> None:
    # Bad luck: the account is out of money (isv.AMOUNT_NOT_ENOUGH halts the provider).
    fake.arrears()
    outcomes = send_all(sms_adapter(fake, template_file), [message(official="甲"), message(PHONE["zhou"],
                                                                                         official="乙")])
    assert all(isinstance(o, ConfigurationError) for o in outcomes)
    assert len(fake.received()) == 1


@pytest.mark.parametrize(("overrides", "needle"), [
    # Bad input: plain http to a host that is not loopback.
    ({"aliyun_sms_endpoint": "http://dysmsapi.aliyuncs.com"}, "JIAOYING_ALIYUN_SMS_ENDPOINT"),
    # Bad input: a sign name missing.
    ({"aliyun_sms_sign_name": ""}, "JIAOYING_ALIYUN_SMS_SIGN_NAME"),
    # Bad input: no template file.
    ({"carrier_templates": ""}, "JIAOYING_CARRIER_TEMPLATES"),
    # Bad input: a sign name Aliyun has not approved.
    ({"aliyun_sms_sign_name": "别的单位"}, "isv.SMS_SIGNATURE_ILLEGAL"),
])
def test_configuration_errors_name_what_to_fix(fake: FakeAliyun, template_file: Path, overrides: dict[str, str],
                                               needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle.replace(".", r"\.")):
        run(sms_adapter(fake, template_file, **overrides).send(message()))
    assert fake.messages() == []


def test_unapproved_template_halts_and_a_purpose_without_template_fails_only_its_message(
        fake: FakeAliyun, template_file: Path, tmp_path: Path) -> None:
    # Bad input: the file names a template code Aliyun has not approved.
    section = yaml.safe_load(template_file.read_text(encoding="utf-8"))
    section["aliyun"]["sms"]["alert"]["code"] = "SMS_999999"
    del section["aliyun"]["sms"]["cancel"]
    bad = tmp_path / "carriers.yaml"
    bad.write_text(yaml.safe_dump(section, allow_unicode=True), encoding="utf-8")
    adapter = sms_adapter(fake, template_file, carrier_templates=str(bad))
    with pytest.raises(ConfigurationError, match=r"isv\.SMS_TEMPLATE_ILLEGAL"):
        run(adapter.send(message()))
    # Bad input: no template for cancel notices.
    with pytest.raises(PermanentError, match="cancel"):
        run(adapter.send(message(purpose=Purpose.CANCEL)))
    assert fake.messages() == []


# -- lookup ----------------------------------------------------------------------------------------------


def test_lookup_finds_a_timed_out_send_that_went_out_by_its_key(fake: FakeAliyun, template_file: Path) -> None:
    # Bad luck: the send is accepted but the answer never comes (SendSms is not idempotent).
    adapter = sms_adapter(fake, template_file)
    sent = message()
    fake.hang_next(3.0, deliver=True)
    with pytest.raises(TransientError):
        run(adapter.send(sent))
    found = run(adapter.lookup(sent.key, sent.to))
    assert found is not None and found.status == "sent"
    assert run(adapter.lookup("no-such-key", sent.to)) is None
    assert run(adapter.lookup(sent.key, None)) is None  # QuerySendDetails needs the number
    assert [r.action for r in fake.received()].count("QuerySendDetails") == 3  # today, then yesterday when absent


def test_lookup_finds_each_message_of_a_timed_out_batch(fake: FakeAliyun, template_file: Path) -> None:
    # Bad luck: a SendBatchSms is accepted but its answer never comes: every message is in doubt.
    adapter = sms_adapter(fake, template_file)
    batch = [message(PHONE["sun"], official="甲"), message(PHONE["zhou"], official="乙")]
    fake.hang_next(3.0, deliver=True)
    assert all(isinstance(o, TransientError) for o in send_all(adapter, batch))
    (went,) = fake.messages()
    assert went.out_id == batch[0].key  # one OutId for the request: the first message's key
    for sent in batch:  # the second went under the first one's OutId, and is found too
        assert run(adapter.lookup(sent.key, sent.to)) is not None
    other = message(PHONE["zhou"], official="乙")  # never sent
    assert run(adapter.lookup(other.key, other.to)) is None


# -- voice -------------------------------------------------------------------------------------------------


def test_an_alert_call_is_an_ivr_call_with_key_1_and_a_notice_a_tts_call(fake: FakeAliyun,
                                                                         template_file: Path) -> None:
    voice = AliyunVoiceAdapter(aliyun_settings("sqlite://", fake, template_file), timeout=0.5)
    alert, cancel = message(channel=Channel.VOICE), message(PHONE["zhou"], Channel.VOICE, Purpose.CANCEL)
    first, second = run(voice.send(alert)), run(voice.send(cancel))
    ivr, tts = fake.calls()
    assert (ivr.action, ivr.call_id, ivr.out_id, ivr.template_code) == ("IvrCall", first.provider_id,
                                                                         str(alert.attempt_id), "TTS_000001")
    assert ivr.menu_key_map == ({"Key": "1", "Code": CONFIRM},)
    assert ivr.param("PlayTimes") == "3" and ivr.param("CalledShowNumber") == SHOW
    assert ivr.template_params[0]["official"] == "孙镇长" and ivr.template_params[0]["title"] == "暴雨红色预警"
    assert (tts.action, tts.call_id, tts.out_id, tts.template_code) == ("SingleCallByTts", second.provider_id,
                                                                         str(cancel.attempt_id), "TTS_000008")


def test_voice_caller_number_not_ours_halts_the_provider(fake: FakeAliyun, template_file: Path) -> None:
    # Bad input: a caller number (CalledShowNumber) the account has not bought.
    settings = aliyun_settings("sqlite://", fake, template_file, aliyun_voice_show_number="01012345678")
    voice = AliyunVoiceAdapter(settings)
    with pytest.raises(ConfigurationError, match=r"isv\.DISPLAY_NUMBER_ILLEGAL"):
        run(voice.send(message(channel=Channel.VOICE)))


# -- the classification table ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "message_text", "status", "expected"), [
    ("InvalidAccessKeyId.NotFound", "", 404, ConfigurationError),
    ("SignatureDoesNotMatch", "", 400, ConfigurationError),
    ("Forbidden.RAM", "", 403, ConfigurationError),
    ("isv.AMOUNT_NOT_ENOUGH", "账户余额不足", 200, ConfigurationError),
    ("isv.SMS_SIGNATURE_ILLEGAL", "", 200, ConfigurationError),
    ("isv.SMS_TEMPLATE_ILLEGAL", "", 200, ConfigurationError),
    ("isv.TTS_TEMPLATE_ILLEGAL", "", 200, ConfigurationError),
    ("isv.DISPLAY_NUMBER_ILLEGAL", "", 200, ConfigurationError),
    ("Throttling.User", "", 400, TransientError),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发账号级流控", 200, TransientError),
    ("ServiceUnavailable", "", 503, TransientError),
    ("InternalError", "", 500, TransientError),
    ("isp.SYSTEM_ERROR", "", 200, TransientError),
    ("isv.MOBILE_NUMBER_ILLEGAL", "", 200, PermanentError),
    ("isv.TEMPLATE_MISSING_PARAMETERS", "", 200, PermanentError),
    ("isv.PARAM_LENGTH_LIMIT", "", 200, PermanentError),
    ("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:1", 200, PermanentError),
    ("MissingPhoneNumbers", "", 400, PermanentError),
])
def test_classification(code: str, message_text: str, status: int, expected: type) -> None:
    assert type(classify(code, message_text, status=status, action="SendSms")) is expected


def test_registry_picks_aliyun_and_its_documented_rates(fake: FakeAliyun, template_file: Path) -> None:
    settings = aliyun_settings("sqlite://", fake, template_file)
    assert choose_provider(Channel.SMS, settings) == "aliyun" and choose_provider(Channel.VOICE, settings) == "aliyun"
    limits = rate_limits(settings)
    # SendSms's 5,000 requests/s is beyond any worker: not paced (bench/carriers.py: slots 0.2 ms apart
    # were missed and whole batches sent back to the queue); IvrCall's 100/s is kept.
    assert Channel.SMS not in limits and limits[Channel.VOICE] == RateLimit(100, 1.0)
    assert AliyunSmsAdapter.default_limit(settings) == RateLimit(5_000, 1.0)  # still declared
    assert rate_limits(settings.model_copy(update={"rate_limits": "sms=50/s"}))[Channel.SMS] == RateLimit(50, 1.0)
    assert choose_provider(Channel.SMS, Settings(database_url="sqlite://")) == "simulator"


# -- from warning to acknowledgement, through the webhooks -------------------------------------------------


@dataclass
class World:
    url: str
    fake: FakeAliyun
    client: TestClient
    engine: Engine
    clock: Clock
    headers: dict[str, str]
    token: str

    def path(self, name: str, token: str | None = None) -> str:
        return f"/webhooks/aliyun/{token or self.token}/{name}"

    def drive(self) -> None:
        settle_engine(self.engine, rounds=50)

    def advance(self, minutes: float) -> None:
        self.drive()
        self.clock.now += timedelta(minutes=minutes)
        self.drive()

    def post_warning(self, identifier: str = "AL-1") -> None:
        body = {"sender": "qingxi-qx", "identifier": identifier, "msg_type": "alert", "hazard": "rainstorm",
                "level": "red", "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
                "instruction": "请立即组织转移", "sent": self.clock.now.isoformat()}
        response = self.client.post("/api/v1/warnings", json=body, headers=self.headers)
        assert response.status_code == 202, response.text
        self.drive()

    def sms_to(self, person: str) -> Received:
        found = [m for m in self.fake.messages() if national_number(PHONE[person]) in m.numbers]
        assert len(found) == 1, f"{len(found)} SMS requests to {person}"
        return found[0]

    def call_to(self, person: str) -> Received:
        found = [c for c in self.fake.calls() if c.numbers == (national_number(PHONE[person]),)]
        assert len(found) == 1, f"{len(found)} calls to {person}"
        return found[0]

    def callout(self, person: str) -> CalloutRow:
        with transaction(self.url) as session:
            row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person)).one()
            session.expunge(row)
            return row

    def attempt(self, provider_id: str) -> AttemptRow:
        with transaction(self.url) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.provider_id == provider_id)).one()
            session.expunge(row)
            return row

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
def world(tiny_site: str, fake: FakeAliyun, clock: Clock, auth: dict[str, str],  # noqa: F811
          template_file: Path) -> Iterator[World]:
    settings = aliyun_settings(tiny_site, fake, template_file)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="aliyun-test")
    try:
        with TestClient(with_aliyun_routes(create_app(settings, clock=clock))) as client:
            yield World(tiny_site, fake, client, engine, clock, auth, callback_token(settings))
    finally:
        engine.close()


def accepted(push: Any) -> None:
    assert push.status == 200 and push.accepted and push.answer == {"code": 0, "msg": "成功"}, push


def test_red_warning_reply_keypress_and_an_unreachable_official_escalating_to_the_deputy(world: World) -> None:
    fake = world.fake
    world.post_warning()
    # Step 0: the SMS alerts, personalised, in one SendBatchSms; one provider id per message.
    (batch,) = fake.messages()
    assert (batch.action, batch.template_code, batch.sign_names) == ("SendBatchSms", "SMS_000001", (SIGN,) * 3)
    assert sorted(batch.numbers) == ["13800000003", "13800000005", "13800000007"]
    for person in ("sun", "zhou", "zheng"):
        number = national_number(PHONE[person])
        assert batch.params_for(number)["ack_code"] == world.callout(person).ack_code
        attempt = world.attempt(aliyun.sms_provider_id(batch.biz_id, number))
        assert (attempt.provider, attempt.status, attempt.recipient_id) == ("aliyun", "sent", person)
    # The receipts (one push for the three numbers) map back by biz_id + phone_number.
    accepted(fake.report(world.client, batch, url=world.path("sms-report")))
    assert world.attempt(aliyun.sms_provider_id(batch.biz_id, "13800000003")).status == "delivered"

    # 孙镇长 replies "收到": acknowledged by SMS.
    accepted(fake.reply(world.client, PHONE["sun"], " 收到！", url=world.path("sms-up")))
    assert (world.callout("sun").state, world.callout("sun").ack_via) == ("acknowledged", "sms")

    # No reply from the two others: step 1 calls them (IVR); 郑防汛员 presses 1.
    world.advance(minutes=3)
    assert sorted(c.numbers[0] for c in fake.calls()) == ["13800000005", "13800000007"]
    zheng = world.call_to("zheng")
    # A reminder: its entry names no confirm prompt, so key 1 plays the start template again.
    assert (zheng.action, zheng.template_code) == ("IvrCall", "TTS_000002")
    assert [(k["Key"], k["Code"]) for k in zheng.menu_key_map] == [("1", "TTS_000002")]
    assert world.attempt(zheng.call_id).status == "sent"
    accepted(fake.keypress(world.client, zheng, "1", url=world.path("voice-keypress")))
    assert (world.callout("zheng").state, world.callout("zheng").ack_via) == ("acknowledged", "voice")
    accepted(fake.voice_report(world.client, zheng, "200000", url=world.path("voice-report")))
    assert world.attempt(zheng.call_id).status == "delivered"

    # Bad luck: 周村长's number cannot be reached (200005): the call fails, the next step runs now.
    zhou = world.call_to("zhou")
    assert world.callout("zhou").next_due > world.clock.now
    accepted(fake.voice_report(world.client, zhou, "200005", url=world.path("voice-report")))
    failed = world.attempt(zhou.call_id)
    assert failed.status == "failed" and "200005" in (failed.error or "")
    assert world.callout("zhou").next_due == world.clock.now
    world.drive()  # step 2 (due at 6m) now: an SMS to 周村长's deputy 吴主任, with the to_deputy template
    wu = world.sms_to("wu")
    assert wu.template_code == "SMS_000003"
    values = wu.params_for("13800000006")
    assert (values["official"], values["subject_official"]) == ("吴主任", "周村长")
    # … and 吴主任 answers with the call-out's code: 周村长's call-out is acknowledged, by the deputy.
    accepted(fake.reply(world.client, PHONE["wu"], f"确认{world.callout('zhou').ack_code}", url=world.path("sms-up")))
    zhou_callout = world.callout("zhou")
    assert (zhou_callout.state, zhou_callout.acknowledged_by) == ("acknowledged", "wu")


@pytest.mark.parametrize("name", ["sms-report", "sms-up", "voice-report", "voice-keypress"])
def test_a_callback_with_a_wrong_token_is_404_and_changes_nothing(world: World, name: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    world.post_warning()
    world.advance(minutes=3)
    before = world.snapshot()
    sun, zhou = world.sms_to("sun"), world.call_to("zhou")
    # Bad input: a token one character off.
    wrong = world.token[:-1] + ("0" if world.token[-1] != "0" else "1")
    push = {"sms-report": lambda: world.fake.report(world.client, sun, url=world.path(name, wrong)),
            "sms-up": lambda: world.fake.reply(world.client, PHONE["zhou"], "收到", url=world.path(name, wrong)),
            "voice-report": lambda: world.fake.voice_report(world.client, zhou, "200005",
                                                            url=world.path(name, wrong)),
            "voice-keypress": lambda: world.fake.keypress(world.client, zhou, "1", url=world.path(name, wrong))}[name]()
    assert push.status == 404 and not push.accepted
    assert world.snapshot() == before
    assert any("wrong token" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_a_receipt_naming_another_number_than_the_recipients_is_ignored(world: World) -> None:
    world.post_warning()
    world.advance(minutes=3)
    before = world.snapshot()
    sun, zhou = world.sms_to("sun"), world.call_to("zhou")
    # Bad input: sun's SMS receipt (right biz_id and out_id) claiming 李书记's number, and failed.
    forged = [{"phone_number": "13800000004", "success": False, "err_code": "MK:0001", "err_msg": "MK:0001",
               "biz_id": sun.biz_id, "out_id": sun.out_id, "send_time": "", "report_time": "", "sms_size": "1"}]
    assert world.client.post(world.path("sms-report"), json=forged).json() == {"code": 0, "msg": "成功"}
    # Bad input: 周村长's call result (right call_id and out_id) for another callee, unanswered.
    record = {"call_id": zhou.call_id, "caller": SHOW, "callee": "13800000004", "status_code": "200003",
              "status_msg": "用户收到呼叫但未接听", "out_id": zhou.out_id, "dtmf": "", "duration": "0"}
    assert world.client.post(world.path("voice-report"), json=[record]).status_code == 200
    # Bad input: a receipt for a BizId and OutId we never had.
    unknown = [{"phone_number": "13800000003", "success": False, "err_code": "MK:0001", "biz_id": "999^0",
                "out_id": "no-such-attempt", "err_msg": "", "send_time": "", "report_time": "", "sms_size": "1"}]
    assert world.client.post(world.path("sms-report"), json=unknown).status_code == 200
    assert world.snapshot() == before


def test_replayed_reply_receipt_and_keypress_count_once(world: World) -> None:
    world.post_warning()
    sun = world.sms_to("sun")
    reply = world.fake.reply(world.client, PHONE["sun"], "收到", url=world.path("sms-up"))
    receipt = world.fake.report(world.client, sun, url=world.path("sms-report"))
    world.advance(minutes=3)
    zhou = world.call_to("zhou")
    keypress = world.fake.keypress(world.client, zhou, "1", url=world.path("voice-keypress"))
    final = world.fake.voice_report(world.client, zhou, "200000", url=world.path("voice-report"))  # dtmf "1" too
    before = world.snapshot()
    # Bad input: each push played again (Aliyun retrying, or someone replaying it).
    for push in (reply, receipt, keypress, final):
        assert world.client.post(push.url, json=push.payload).json() == {"code": 0, "msg": "成功"}
    assert world.snapshot() == before
    record, key = world.callout("sun").record_id, world.attempt(zhou.call_id).key
    with transaction(world.url) as session:
        inbound = session.execute(select(InboundRow.via, InboundRow.provider_ref).order_by(InboundRow.id)).all()
        receipts = [e.data["provider_status"] for e in events(session, record) if e.kind == "provider_receipt"]
    assert [via for via, _ in inbound] == ["sms", "voice"]  # one reply, one keypress
    assert inbound[1][1] == f"aliyun:gather:{zhou.call_id}:{key}:1"
    assert receipts.count("delivered") == 4  # the three alert SMS (one batch) and zhou's call: once each
    assert world.callout("sun").state == world.callout("zhou").state == "acknowledged"


@pytest.mark.parametrize(("name", "body"), [
    ("sms-report", {"phone_number": "13800000003", "success": True}),  # an object, not Aliyun's array
    ("sms-up", [{"phone_number": "13800000003", "content": "收到\x00", "sequence_id": 1}]),  # NUL in the text
    ("voice-report", [{"call_id": "1^2", "callee": "13800000003", "status_code": ["200000"]}]),  # a list code
    ("voice-keypress", [{"call_id": "x" * 65, "dtmf": "1", "out_id": "1"}]),  # a CallId over 64 characters
])
def test_malformed_pushes_are_422_and_change_nothing(world: World, name: str, body: Any) -> None:
    world.post_warning()
    before = world.snapshot()
    response = world.client.post(world.path(name), content=json.dumps(body), headers={
        "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert world.snapshot() == before


def test_concurrent_first_requests_build_the_sdks_http_session_once(fake: FakeAliyun, template_file: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A spy, not a mock: the SDK's own session factory runs; we count how often it is asked. Each build makes a
    # TLS context (~50 ms of CPU); a fan-out's first batch once built one per sending thread.
    from darabonba.core import DaraCore

    built, real = [], DaraCore.get_adapter

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(DaraCore, "get_adapter", staticmethod(counting))
    adapter = sms_adapter(fake, template_file)
    messages = [message(PHONE[p], official=p) for p in ("zhao", "qian", "sun", "li", "zhou", "wu")]

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(*(adapter.send(m) for m in messages), return_exceptions=True)
        finally:
            await adapter.aclose()

    outcomes = run(go())
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert len(fake.messages()) == 6  # six requests, each its own
    assert len(built) == 1


def test_an_idle_worker_loads_the_sdk_before_the_first_warning_and_sends_nothing(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's import and client (~0.5 s of CPU a process) were paid by the first send, in the first
    seconds of a worker's first fan-out, beside the start of its call-outs. An idle worker pays it
    instead; nothing reaches the provider. A spy, not a mock: the adapters' own client factories run."""
    made: list[str] = []
    for cls in (AliyunSmsAdapter, AliyunVoiceAdapter):
        real = cls._make_client

        def counting(self: Any, config: Any, real: Any = real, name: str = cls.__name__) -> Any:
            made.append(name)
            return real(self, config)

        monkeypatch.setattr(cls, "_make_client", counting)
    assert world.engine.send_batch() == 0  # idle: nothing queued
    assert sorted(made) == ["AliyunSmsAdapter", "AliyunVoiceAdapter"] and world.fake.received() == []
    assert world.engine.send_batch() == 0  # once only
    assert len(made) == 2
    world.post_warning()  # the first warning: its sends use the clients made while idle
    assert len(made) == 2 and world.fake.messages()
