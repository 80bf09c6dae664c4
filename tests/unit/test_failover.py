"""Provider failover (channels/failover.py): losing a provider must not stop a call-out, and a message
that may have reached a provider is never sent through another at once."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.channels.base import (
    Address,
    ConfigurationError,
    OutboundMessage,
    Purpose,
    SendResult,
    TransientError,
)
from dispatcher.channels.failover import ProviderChain
from dispatcher.channels.simulator import BatchSimulatorAdapter, SimOutbox, SimulatorAdapter
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def named(name: str, outbox: SimOutbox, batch: bool = False) -> SimulatorAdapter:
    adapter = BatchSimulatorAdapter(Channel.SMS, outbox) if batch else SimulatorAdapter(Channel.SMS, outbox)
    adapter.provider = name  # type: ignore[misc]
    return adapter


def message(n: int) -> OutboundMessage:
    return OutboundMessage(key=f"k{n}", channel=Channel.SMS, purpose=Purpose.ALERT,
                           to=Address(f"p{n}", f"责任人{n}", phone=f"+86138{n:08d}"), subject="", text="暴雨红色预警",
                           level=Level.RED)


def test_an_account_refusal_moves_the_message_to_the_next_provider_at_once() -> None:
    # bad input: the first provider refuses our account (isv.AMOUNT_NOT_ENOUGH: arrears)
    outbox = SimOutbox()
    first, second = named("aliyun", outbox), named("tencent", outbox)
    first.fail_next(1, ConfigurationError("isv.AMOUNT_NOT_ENOUGH"))
    chain = ProviderChain(Channel.SMS, [first, second])
    result = asyncio.run(chain.send(message(1)))
    assert result.provider == "tencent"  # recorded on the attempt
    assert chain.status().current == "tencent" and chain.status().why == "aliyun halted: isv.AMOUNT_NOT_ENOUGH"
    assert asyncio.run(chain.send(message(2))).provider == "tencent"  # the halted one is not asked again
    assert [m.message.key for m in outbox.messages()] == ["k1", "k2"]


def test_a_transient_failure_is_not_sent_elsewhere_but_an_open_circuit_moves_the_rest() -> None:
    # bad input: the first provider answers 500 (the message may or may not be there)
    outbox, clock = SimOutbox(), FakeTime()
    first, second = named("aliyun", outbox), named("tencent", outbox)
    first.fail_next(5, TransientError("HTTP 500"))
    chain = ProviderChain(Channel.SMS, [first, second], threshold=5, cooldown=5.0, now=clock)
    for n in range(5):
        with pytest.raises(TransientError):  # it waits for its next try (which first looks it up)
            asyncio.run(chain.send(message(n)))
    assert outbox.messages() == []  # nothing went through the second provider behind the first's back
    assert chain.status().current == "tencent" and chain.status().why == "aliyun failing"
    assert asyncio.run(chain.send(message(9))).provider == "tencent"
    clock.t += 5.0  # the first provider's circuit half-opens: one trial goes to it, and it is back
    assert asyncio.run(chain.send(message(10))).provider == "aliyun"
    assert chain.status().current == "aliyun" and chain.status().why == ""


def test_a_batch_refused_for_the_account_goes_to_the_next_provider_whole() -> None:
    outbox = SimOutbox()
    first, second = named("aliyun", outbox, batch=True), named("tencent", outbox, batch=True)
    first.fail_next(1, ConfigurationError("isv.SMS_SIGNATURE_ILLEGAL"))
    chain = ProviderChain(Channel.SMS, [first, second])
    results = asyncio.run(chain.send_many([message(n) for n in range(30)]))
    assert all(isinstance(r, SendResult) and r.provider == "tencent" for r in results)
    assert len(outbox.messages()) == 30 and chain.batch_size == 100


def test_every_provider_refusing_is_a_configuration_error_and_lookup_asks_them_all() -> None:
    first, second = named("aliyun", SimOutbox()), named("tencent", SimOutbox())  # each provider its own log
    first.fail_next(1, ConfigurationError("InvalidAccessKeyId.NotFound"))
    second.fail_next(1, ConfigurationError("AuthFailure.SecretIdNotFound"))
    chain = ProviderChain(Channel.SMS, [first, second])
    with pytest.raises(ConfigurationError, match="tencent: AuthFailure.SecretIdNotFound"):
        asyncio.run(chain.send(message(1)))
    assert chain.status().current == ""
    asyncio.run(second.send(message(2)))  # a message the second provider has (sent before a crash)
    found = asyncio.run(chain.lookup("k2"))
    assert found is not None and found.provider == "tencent"
    assert asyncio.run(chain.lookup("never-sent")) is None
