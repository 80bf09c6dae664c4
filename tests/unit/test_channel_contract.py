"""The port's contract, run against every adapter the registry knows (today: the simulators)."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.channels.base import Address, ChannelAdapter, ConfigurationError, OutboundMessage, SendResult
from dispatcher.channels.registry import (
    SIMULATOR,
    AdapterDeps,
    Registration,
    _registry,
    build_adapters,
    choose_provider,
    registrations,
)
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.domain.callouts import Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level

SETTINGS = Settings(database_url="sqlite://")
REGISTERED = registrations()


def build(registration: Registration) -> ChannelAdapter:
    return registration.factory(AdapterDeps(SETTINGS, SimOutbox()))


def message(channel: Channel, key: str = "contract-1") -> OutboundMessage:
    return OutboundMessage(key=key, channel=channel, purpose=Purpose.ALERT,
                           to=Address("qx-001", "张建国", phone="+8613800000001", email="zhang@example.cn",
                                      im={"dingtalk": "+8613800000001"}),
                           subject="暴雨红色预警", text="【暴雨红色预警】张建国同志：请回复1确认收到。",
                           level=Level.RED, ack_code="4821", link="https://jy.example.cn/a/t")


@pytest.fixture(params=REGISTERED, ids=lambda r: f"{r.channel}-{r.provider}")
def registration(request: pytest.FixtureRequest) -> Registration:
    return request.param


def test_every_channel_has_a_simulator() -> None:
    assert {r.channel for r in REGISTERED if r.provider == SIMULATOR} == set(Channel)


def test_adapter_declares_its_channel_and_provider(registration: Registration) -> None:
    adapter = build(registration)

    assert adapter.channel == registration.channel
    assert adapter.provider == registration.provider


def test_send_returns_a_provider_id(registration: Registration) -> None:
    adapter = build(registration)

    async def scenario() -> SendResult:
        try:
            return await adapter.send(message(registration.channel))
        finally:
            await adapter.aclose()

    if registration.provider != SIMULATOR and not registration.configured(SETTINGS):
        # A real adapter without its credentials refuses, and never calls out (its own tests send
        # through a local counterpart of the provider).
        with pytest.raises(ConfigurationError):
            asyncio.run(scenario())
        return
    result = asyncio.run(scenario())
    assert isinstance(result, SendResult)
    assert isinstance(result.provider_id, str) and result.provider_id


def test_lookup_of_an_unknown_key_is_none(registration: Registration) -> None:
    adapter = build(registration)

    async def scenario() -> SendResult | None:
        try:
            return await adapter.lookup("never-sent-key")
        finally:
            await adapter.aclose()

    assert asyncio.run(scenario()) is None


def test_aclose_is_safe_unused_and_twice(registration: Registration) -> None:
    adapter = build(registration)

    async def scenario() -> None:
        await adapter.aclose()
        await adapter.aclose()

    asyncio.run(scenario())


def test_credentials_select_the_real_adapter_else_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Registration(Channel.SMS, "fake-real", lambda deps: build(_registry[(Channel.SMS, SIMULATOR)]),
                        configured=lambda s: bool(s.twilio_account_sid))
    monkeypatch.setitem(_registry, (Channel.SMS, "fake-real"), real)

    assert choose_provider(Channel.SMS, SETTINGS) == SIMULATOR
    assert choose_provider(Channel.SMS, Settings(database_url="sqlite://", twilio_account_sid="AC1")) == "fake-real"
    assert choose_provider(Channel.VOICE, Settings(database_url="sqlite://", twilio_account_sid="AC1")) == SIMULATOR
    assert set(build_adapters(SETTINGS, SimOutbox())) == set(Channel)
