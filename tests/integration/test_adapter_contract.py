"""One contract, every real SMS and voice adapter against its loopback fake, with the same rows: sent,
invalid number, throttled, bad credentials, 5xx, hang, and (batch providers) a batch in which one
number is refused. What the engine is told decides what it does (channels/base.py): sent; a
permanent error fails only that message; a transient one waits and tries again; a configuration
error halts the provider. The providers' own tables (test_twilio, test_aliyun_channel,
test_tencent_channel) go further into each one's codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from dispatcher.channels.aliyun import AliyunSmsAdapter, AliyunVoiceAdapter
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
from dispatcher.channels.tencent import TencentSmsAdapter, TencentVoiceAdapter
from dispatcher.channels.twilio import TwilioSmsAdapter, TwilioVoiceAdapter
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.rendering import MessageContext
from tests.fakes.aliyun_server import FakeAliyun
from tests.fakes.tencent_server import FakeTencent
from tests.fakes.twilio_server import FakeTwilio
from tests.integration import test_aliyun_channel as ali
from tests.integration import test_tencent_channel as ten
from tests.integration import test_twilio as twi

GOOD = ("+8613800000011", "+8613800000012", "+8613800000013")
INVALID = "+86138000000"  # ten digits: no mainland mobile
SAMPLE = ali.ROOT / "templates" / "carriers.sample.yaml"


@dataclass
class Provider:
    """How to reach one provider's fake and make each row happen there."""

    name: str
    channel: Channel
    start: Callable[[], Any]
    adapter: Callable[[Any, bool], ChannelAdapter]  # (fake, bad credentials)
    throttle: Callable[[Any], None]
    fail_5xx: Callable[[Any], None]
    hang: Callable[[Any], None]
    invalid: Callable[[Any], None] = lambda fake: None  # some fakes must be told; most refuse INVALID itself
    refuse_one: Callable[[Any, str], None] | None = None  # batch providers: refuse this number in a batch
    batch: bool = False


def _twilio() -> FakeTwilio:
    fake = FakeTwilio(twi.ACCOUNT, twi.TOKEN, twi.PUBLIC)
    fake.start()
    return fake


def _twilio_adapter(kind: type) -> Callable[[FakeTwilio, bool], ChannelAdapter]:
    def make(fake: FakeTwilio, bad: bool) -> ChannelAdapter:
        return kind(twi.twilio_settings("sqlite://", fake, **({"twilio_auth_token": "not-the-token"} if bad else {})),
                    timeout=0.4)
    return make


def _aliyun() -> FakeAliyun:
    fake = FakeAliyun(ali.AK_ID, ali.AK_SECRET, sign_names={ali.SIGN}, templates=ali.fake_templates(SAMPLE),
                      show_numbers={ali.SHOW})
    fake.start()
    return fake


def _aliyun_adapter(kind: type) -> Callable[[FakeAliyun, bool], ChannelAdapter]:
    def make(fake: FakeAliyun, bad: bool) -> ChannelAdapter:
        overrides = {"aliyun_access_key_secret": "not-the-secret"} if bad else {}
        return kind(ali.aliyun_settings("sqlite://", fake, SAMPLE, **overrides), timeout=0.4)
    return make


def _tencent() -> FakeTencent:
    fake = ten._fake({"1000001": 7, "1000101": 6})  # the sample's alert codes and their variable counts
    fake.start()
    return fake


def _tencent_adapter(kind: type) -> Callable[[FakeTencent, bool], ChannelAdapter]:
    def make(fake: FakeTencent, bad: bool) -> ChannelAdapter:
        settings = ten.tencent_settings(fake, SAMPLE, **({"tencent_secret_key": "not-the-key"} if bad else {}))
        return kind(settings, timeout=0.4)
    return make


PROVIDERS = [
    Provider("twilio", Channel.SMS, _twilio, _twilio_adapter(TwilioSmsAdapter),
             throttle=lambda f: f.fail_next(429, retry_after=2), fail_5xx=lambda f: f.fail_next(503),
             hang=lambda f: f.hang_next(3), invalid=lambda f: f.fail_next(400, code=21211)),
    Provider("twilio", Channel.VOICE, _twilio, _twilio_adapter(TwilioVoiceAdapter),
             throttle=lambda f: f.fail_next(429, retry_after=2), fail_5xx=lambda f: f.fail_next(503),
             hang=lambda f: f.hang_next(3), invalid=lambda f: f.fail_next(400, code=21211)),
    Provider("aliyun", Channel.SMS, _aliyun, _aliyun_adapter(AliyunSmsAdapter),
             throttle=lambda f: f.throttle_next(retry_after=2_000), fail_5xx=lambda f: f.fail_next(503),
             hang=lambda f: f.hang_next(3.0), refuse_one=lambda f, n: f.business_limit(n), batch=True),
    Provider("aliyun", Channel.VOICE, _aliyun, _aliyun_adapter(AliyunVoiceAdapter),
             throttle=lambda f: f.throttle_next(retry_after=2_000), fail_5xx=lambda f: f.fail_next(503),
             hang=lambda f: f.hang_next(3.0)),
    Provider("tencent", Channel.SMS, _tencent, _tencent_adapter(TencentSmsAdapter),
             throttle=lambda f: f.throttle(), fail_5xx=lambda f: f.fail_next(503), hang=lambda f: f.hang_next(3),
             refuse_one=lambda f, n: f.daily_limit(n), batch=True),
    Provider("tencent", Channel.VOICE, _tencent, _tencent_adapter(TencentVoiceAdapter),
             throttle=lambda f: f.throttle(), fail_5xx=lambda f: f.fail_next(503), hang=lambda f: f.hang_next(3)),
]

CONTEXT = dict(headline="青溪县气象台发布暴雨红色预警信号", hazard=Hazard("rainstorm"), level=Level.RED,
               areas=["青溪镇"], description="", instruction="请立即组织转移",
               sent=datetime(2026, 7, 16, 3, 10, tzinfo=UTC), ack_code="4821")


def message(channel: Channel, phone: str, n: int) -> OutboundMessage:
    context = MessageContext(**CONTEXT, official=f"官员{n}")  # type: ignore[arg-type]
    return OutboundMessage(key=f"{n}:alert:W-1:{channel.value}:p{n}", channel=channel, purpose=Purpose.ALERT,
                           to=Address(f"p{n}", f"官员{n}", phone), subject="暴雨红色预警",
                           text="暴雨红色预警，请回复1确认。", level=Level.RED, ack_code="4821", context=context,
                           attempt_id=n)


def _running(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Provider, Any]]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # loopback only, whatever the environment says
    spec: Provider = request.param
    fake = spec.start()
    yield spec, fake
    fake.stop()


provider = pytest.fixture(params=PROVIDERS, ids=lambda p: f"{p.name}-{p.channel.value}")(_running)
batch_provider = pytest.fixture(params=[p for p in PROVIDERS if p.batch],
                                ids=lambda p: f"{p.name}-{p.channel.value}")(_running)


def _send(adapter: ChannelAdapter, messages: list[OutboundMessage]) -> list[SendResult | ChannelError]:
    async def go() -> list[SendResult | ChannelError]:
        try:
            if len(messages) > 1:
                return list(await adapter.send_many(messages))
            try:
                return [await adapter.send(messages[0])]
            except ChannelError as exc:
                return [exc]
        finally:
            await adapter.aclose()

    started = time.monotonic()
    outcomes = asyncio.run(go())
    assert time.monotonic() - started < 2.5  # a hang is cut by the adapter's own timeout
    return outcomes


def test_sent(provider: tuple[Provider, Any]) -> None:
    spec, fake = provider
    (outcome,) = _send(spec.adapter(fake, False), [message(spec.channel, GOOD[0], 1)])
    assert isinstance(outcome, SendResult) and outcome.provider_id


def test_an_invalid_number_fails_only_that_message(provider: tuple[Provider, Any]) -> None:
    # bad input: a number no mainland phone has
    spec, fake = provider
    spec.invalid(fake)
    (outcome,) = _send(spec.adapter(fake, False), [message(spec.channel, INVALID, 1)])
    assert isinstance(outcome, PermanentError), outcome


def test_throttled_is_transient(provider: tuple[Provider, Any]) -> None:
    # provider state: over the account's request rate
    spec, fake = provider
    spec.throttle(fake)
    (outcome,) = _send(spec.adapter(fake, False), [message(spec.channel, GOOD[0], 1)])
    assert isinstance(outcome, TransientError), outcome
    if spec.name in ("twilio", "aliyun"):  # these say how long to wait
        assert outcome.retry_after == 2.0


def test_bad_credentials_halt_the_provider(provider: tuple[Provider, Any]) -> None:
    # bad input: the right key id with another secret
    spec, fake = provider
    (outcome,) = _send(spec.adapter(fake, True), [message(spec.channel, GOOD[0], 1)])
    assert isinstance(outcome, ConfigurationError), outcome


def test_a_5xx_is_transient(provider: tuple[Provider, Any]) -> None:
    # provider state: 503 from its gateway
    spec, fake = provider
    spec.fail_5xx(fake)
    (outcome,) = _send(spec.adapter(fake, False), [message(spec.channel, GOOD[0], 1)])
    assert isinstance(outcome, TransientError), outcome


def test_a_hang_is_transient_within_the_timeout(provider: tuple[Provider, Any]) -> None:
    # provider state: the request is taken and never answered
    spec, fake = provider
    spec.hang(fake)
    (outcome,) = _send(spec.adapter(fake, False), [message(spec.channel, GOOD[0], 1)])
    assert isinstance(outcome, TransientError), outcome


def test_a_batch_with_one_refused_number_fails_only_that_message(batch_provider: tuple[Provider, Any]) -> None:
    # provider state: one number of three is over its own limit at the provider
    spec, fake = batch_provider
    assert spec.refuse_one is not None
    spec.refuse_one(fake, GOOD[1])
    outcomes = _send(spec.adapter(fake, False), [message(spec.channel, p, n) for n, p in enumerate(GOOD, 1)])
    assert [type(o) for o in outcomes] == [SendResult, PermanentError, SendResult], outcomes
    ids = [o.provider_id for o in outcomes if isinstance(o, SendResult)]
    assert len(set(ids)) == 2  # each message its own provider id, for its receipt
