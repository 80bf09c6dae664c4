"""A try whose answer was lost, on a provider that cannot be asked by our key (Twilio): before the
try is repeated, its status callback — which carries the attempt key — is given time to arrive,
and when it has, the message is not sent again. (A stand-in adapter and receipts function: the
real Twilio path is covered against the fake Twilio in tests/integration/test_twilio.py.)"""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatcher.channels.base import Address, ChannelAdapter, OutboundMessage, SendResult, TransientError
from dispatcher.channels.resilience import RetryPolicy
from dispatcher.domain.callouts import Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level
from dispatcher.services import dispatch


class AnswerLost(ChannelAdapter):
    """Takes the first message, then the connection drops before its answer (a read timeout)."""

    channel = Channel.SMS
    provider = "fake"
    calls_back = True  # like Twilio: no lookup by key, a status callback that carries it

    def __init__(self, callback_after: float) -> None:
        self.sends = 0
        self.callback_at: float | None = None
        self.callback_after = callback_after

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sends += 1
        if self.sends == 1:
            self.callback_at = time.monotonic() + self.callback_after
            raise TransientError("read timeout: the answer was lost")
        return SendResult(f"SM-{self.sends}")


def _job() -> dispatch.Job:
    message = OutboundMessage(key="1:0:sms:sun", channel=Channel.SMS, purpose=Purpose.ALERT,
                              to=Address("sun", "孙镇长", "+8613800000003"), subject="", text="暴雨红色预警",
                              level=Level.RED)
    return dispatch.Job(1, 1, "W1", True, message)


@pytest.mark.parametrize("callback_after", [0.3])
def test_a_repeated_try_waits_for_the_callback_and_does_not_send_twice(monkeypatch: pytest.MonkeyPatch,
                                                                       callback_after: float) -> None:
    monkeypatch.setattr(dispatch, "CALLBACK_GRACE", 1.0)
    adapter = AnswerLost(callback_after)

    async def receipts(key: str) -> SendResult | None:
        arrived = adapter.callback_at is not None and time.monotonic() >= adapter.callback_at
        return SendResult("SM-1") if arrived and key == "1:0:sms:sun" else None

    outcomes = asyncio.run(dispatch.deliver([_job()], {Channel.SMS: adapter},
                                            retry=RetryPolicy(attempts=3, base=0.01), receipts=receipts))
    assert adapter.sends == 1  # the first try had arrived: not sent again
    assert outcomes[0].sent and outcomes[0].provider_id == "SM-1"


def test_without_a_callback_the_try_is_repeated_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "CALLBACK_GRACE", 0.2)
    adapter = AnswerLost(callback_after=60)  # the first try never reached the provider after all

    async def receipts(key: str) -> SendResult | None:
        return None

    outcomes = asyncio.run(dispatch.deliver([_job()], {Channel.SMS: adapter},
                                            retry=RetryPolicy(attempts=3, base=0.01), receipts=receipts))
    assert adapter.sends == 2 and outcomes[0].sent and outcomes[0].provider_id == "SM-2"
