"""A drill that takes a channel or a provider out (断网断电断通讯, ``without``): its own messages on it fail at
once as if the provider were down, never sent, recorded as the drill's outage; a provider chain goes on by
its other providers for them; everyone else's messages — a real warning's at the same moment — go as
always, and the taken-out provider's circuit is not touched. Through the hand-over (services/dispatch.py
``deliver``) with simulators named as the providers, one by one and in batches."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.channels.base import Address, OutboundMessage, Purpose
from dispatcher.channels.failover import ProviderChain
from dispatcher.channels.resilience import CircuitBreaker
from dispatcher.channels.simulator import BatchSimulatorAdapter, SimOutbox, SimulatorAdapter
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level
from dispatcher.services.dispatch import Job, deliver


def named(name: str, outbox: SimOutbox, channel: Channel = Channel.SMS, batch: bool = False) -> SimulatorAdapter:
    adapter = BatchSimulatorAdapter(channel, outbox) if batch else SimulatorAdapter(channel, outbox)
    adapter.provider = name  # type: ignore[misc]
    return adapter


def job(n: int, channel: Channel = Channel.SMS, without: tuple[str, ...] = (), drill: bool = True) -> Job:
    message = OutboundMessage(key=f"k{n}", channel=channel, purpose=Purpose.ALERT,
                              to=Address(f"p{n}", f"责任人{n}", phone=f"+86138{n:08d}"), subject="",
                              text=("【演练】" if drill else "") + "暴雨红色预警", level=Level.RED, drill=drill)
    return Job(n, n, "W-drill" if drill else "W-real", True, message, without=without)


@pytest.mark.parametrize("batch", [False, True], ids=["one by one", "batches"])
def test_a_provider_taken_out_passes_the_drills_messages_to_the_next_and_leaves_real_ones_alone(batch: bool) -> None:
    outbox = SimOutbox()
    chain = ProviderChain(Channel.SMS, [named("aliyun", outbox, batch=batch), named("tencent", outbox, batch=batch)])
    jobs = [job(1, without=("aliyun",)), job(2, drill=False), job(3, without=("aliyun",)), job(4, drill=False)]
    outcomes = asyncio.run(deliver(jobs, {Channel.SMS: chain}))
    assert [(o.job.attempt_id, o.provider, o.sent) for o in outcomes] == [
        (1, "tencent", True), (2, "aliyun", True), (3, "tencent", True), (4, "aliyun", True)]
    assert chain.status().current == "aliyun" and chain.status().why == ""  # aliyun's circuit untouched
    assert sorted(m.message.key for m in outbox.messages()) == ["k1", "k2", "k3", "k4"]


def test_a_channel_taken_out_fails_the_drills_messages_at_once_without_sending_and_opens_no_circuit() -> None:
    outbox = SimOutbox()
    breaker = CircuitBreaker()
    adapters = {Channel.SMS: named("aliyun", outbox), Channel.VOICE: named("aliyun", outbox, Channel.VOICE)}
    jobs = [job(1, without=("sms",)), job(2, Channel.VOICE, without=("sms",)), job(3, drill=False)]
    for _ in range(6):  # more than the breaker's threshold: a drill's outage is not the provider failing
        outcomes = asyncio.run(deliver(jobs, adapters, breaker=breaker))
    cut, call, real = outcomes
    assert (cut.sent, cut.transient, cut.outage, cut.provider) == (False, False, True, "drill")
    assert cut.error == "drill outage: channel sms taken out by the drill, not sent (演练断开：sms，未发送)"
    assert call.sent and real.sent and not call.outage
    assert breaker.allow(Channel.SMS)
    assert "k1" not in {m.message.key for m in outbox.messages()}


def test_the_only_provider_taken_out_is_the_channel_down_for_the_drill() -> None:
    outbox = SimOutbox()
    outcomes = asyncio.run(deliver([job(1, without=("aliyun",)), job(2, without=("tencent",))],
                                   {Channel.SMS: named("aliyun", outbox)}))
    assert [(o.outage, o.provider, o.sent) for o in outcomes] == [(True, "aliyun", False), (False, "aliyun", True)]
    assert outcomes[0].error is not None and outcomes[0].error.startswith("drill outage: provider aliyun")
    assert [m.message.key for m in outbox.messages()] == ["k2"]


# -- update and lifting notices: by the channel that reached the official -----------------------------------


def _ladder() -> list:  # noqa: ANN202 - PlannedSteps
    from datetime import UTC, datetime, timedelta

    from dispatcher.domain.plans import Recipient
    from dispatcher.domain.rules import PlannedStep

    at = datetime(2026, 7, 16, 3, 12, tzinfo=UTC)
    own = (Recipient.SELF,)
    return [PlannedStep(0, timedelta(0), at, (Channel.SMS, Channel.IM), own, ("zhou",)),
            PlannedStep(1, timedelta(minutes=3), at, (Channel.VOICE,), own, ("zhou",)),
            PlannedStep(2, timedelta(minutes=6), at, (Channel.SMS,), (Recipient.DEPUTY,), ("wu",)),
            PlannedStep(3, timedelta(minutes=15), at, (Channel.EMAIL,), own, ("zhou",), final=True)]


@pytest.mark.parametrize(("got_through", "taken_out", "can_take", "expected"), [
    # nothing failed: the first step's channels that reached them, as always
    ((Channel.SMS, Channel.IM, Channel.VOICE), (), set(Channel), [Channel.SMS, Channel.IM]),
    ((Channel.IM, Channel.VOICE), (), set(Channel), [Channel.IM]),  # their SMS was refused: the IM
    # the drill took SMS and IM out (or their providers were down): the voice call that reached them
    ((Channel.VOICE,), ("sms", "im"), set(Channel), [Channel.VOICE]),
    # reached only through their deputy: their own ladder's first channel the drill left, that they take
    ((), ("sms",), set(Channel), [Channel.IM]),
    ((), ("sms",), {Channel.SMS, Channel.VOICE}, [Channel.VOICE]),  # no IM account: the voice call
    ((), (), set(), [Channel.SMS, Channel.IM]),  # nothing they can take: the first step, as before
])
def test_a_notice_goes_by_the_channel_that_reached_the_official_never_one_the_drill_took_out(
        got_through: tuple[Channel, ...], taken_out: tuple[str, ...], can_take: set[Channel],
        expected: list[Channel]) -> None:
    from dispatcher.services.callouts import notice_channels

    assert notice_channels(_ladder(), "zhou", got_through, can_take.__contains__, taken_out) == expected
