"""The simulator adapter, its outbox, and the loopback server it can post to."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dispatcher.channels.base import (
    Address,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox, SimSent, SimulatorAdapter
from dispatcher.config import Settings
from dispatcher.domain.callouts import Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level
from tests.fakes.simserver import SimServer
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def message(key: str, channel: Channel = Channel.SMS, person: str = "qx-001") -> OutboundMessage:
    return OutboundMessage(key=key, channel=channel, purpose=Purpose.ALERT,
                           to=Address(person, "张建国", phone="+8613800000001"), subject="暴雨红色预警",
                           text="【暴雨红色预警】张建国同志：…回复1确认收到。", level=Level.RED, ack_code="4821")


async def send_all(adapter: SimulatorAdapter, *messages: OutboundMessage) -> list[SendResult]:
    try:
        return [await adapter.send(m) for m in messages]
    finally:
        await adapter.aclose()


@pytest.fixture
def server() -> Iterator[SimServer]:
    server = SimServer(hang_seconds=5)
    server.start()
    yield server
    server.stop()


# -- without an endpoint ------------------------------------------------------------------------


def test_sent_messages_are_recorded_in_order_with_provider_ids() -> None:
    outbox = SimOutbox()
    adapter = SimulatorAdapter(Channel.SMS, outbox)

    results = run(send_all(adapter, message("a"), message("b")))

    assert [r.provider_id for r in results] == ["sim-sms-1", "sim-sms-2"]
    sent = outbox.messages()
    assert [s.message.key for s in sent] == ["a", "b"]
    assert sent[0].at_monotonic <= sent[1].at_monotonic
    assert outbox.by_key("b") == [sent[1]] and outbox.by_key("zzz") == []
    outbox.clear()
    assert outbox.messages() == [] and len(outbox) == 0


def test_an_outbox_keeps_only_its_most_recent_sends() -> None:
    # A serve on the simulators for a season: its memory must not grow with every fan-out.
    outbox = SimOutbox(keep=3)
    adapter = SimulatorAdapter(Channel.SMS, outbox)

    run(send_all(adapter, message("a"), message("b"), message("a"), message("c"), message("d")))

    assert [s.message.key for s in outbox.messages()] == ["a", "c", "d"] and len(outbox) == 3
    assert [s.provider_id for s in outbox.by_key("a")] == ["sim-sms-3"]  # the first "a" is forgotten
    assert outbox.by_key("b") == []


def test_subscribers_hear_every_message_until_they_unsubscribe() -> None:
    outbox = SimOutbox()
    heard: list[SimSent] = []
    unsubscribe = outbox.subscribe(heard.append)
    adapter = SimulatorAdapter(Channel.VOICE, outbox)

    run(send_all(adapter, message("a", Channel.VOICE)))
    unsubscribe()
    run(send_all(adapter, message("b", Channel.VOICE)))

    assert [h.message.key for h in heard] == ["a"]
    assert heard[0].provider_id == "sim-voice-1"


def test_a_failing_subscriber_does_not_fail_the_send(caplog: pytest.LogCaptureFixture) -> None:
    outbox = SimOutbox()

    def broken(_: SimSent) -> None:
        raise RuntimeError("simulated person fell over")

    outbox.subscribe(broken)
    with caplog.at_level(logging.ERROR):
        run(send_all(SimulatorAdapter(Channel.SMS, outbox), message("a")))

    assert len(outbox) == 1
    assert "simulator listener failed" in caplog.text


def test_fail_next_raises_the_given_error_then_recovers() -> None:
    outbox = SimOutbox()
    adapter = SimulatorAdapter(Channel.SMS, outbox)
    adapter.fail_next(2, PermanentError("invalid number"))

    async def scenario() -> list[str]:
        outcomes = []
        for key in ("a", "b", "c"):
            try:
                await adapter.send(message(key))
                outcomes.append("sent")
            except PermanentError as exc:
                outcomes.append(str(exc))
        return outcomes

    assert run(scenario()) == ["invalid number", "invalid number", "sent"]
    assert [s.message.key for s in outbox.messages()] == ["c"]


def test_fail_next_defaults_to_a_transient_outage() -> None:
    adapter = SimulatorAdapter(Channel.IM, SimOutbox())
    adapter.fail_next()

    with pytest.raises(TransientError):
        run(adapter.send(message("a", Channel.IM)))


def test_per_person_failures_hit_only_that_person_every_time() -> None:
    outbox = SimOutbox()
    adapter = SimulatorAdapter(Channel.SMS, outbox, failures={"qx-bad": PermanentError("unsubscribed")})

    for _ in range(2):
        with pytest.raises(PermanentError, match="unsubscribed"):
            run(adapter.send(message("x", person="qx-bad")))
    run(adapter.send(message("y", person="qx-good")))

    assert [s.message.to.person_id for s in outbox.messages()] == ["qx-good"]


def test_lookup_finds_a_sent_key_on_its_own_channel_only() -> None:
    outbox = SimOutbox()
    sms, voice = SimulatorAdapter(Channel.SMS, outbox), SimulatorAdapter(Channel.VOICE, outbox)
    run(sms.send(message("k1")))

    assert run(sms.lookup("k1")) == SendResult("sim-sms-1")
    assert run(sms.lookup("unknown")) is None
    assert run(voice.lookup("k1")) is None


def test_build_adapters_gives_every_channel_a_simulator_without_credentials() -> None:
    outbox = SimOutbox()
    adapters = build_adapters(Settings(database_url="sqlite://"), outbox)

    assert set(adapters) == set(Channel)
    for channel, adapter in adapters.items():
        assert isinstance(adapter, SimulatorAdapter)
        assert adapter.channel == channel and adapter.outbox is outbox and adapter.endpoint is None


# -- with an endpoint ---------------------------------------------------------------------------


def test_endpoint_mode_posts_each_message_and_uses_the_servers_id(server: SimServer) -> None:
    outbox = SimOutbox()
    adapter = SimulatorAdapter(Channel.SMS, outbox, server.url)

    results = run(send_all(adapter, message("a"), message("b")))

    assert [r.provider_id for r in results] == ["1", "2"]
    assert [s.provider_id for s in outbox.messages()] == ["1", "2"]
    assert server.received[0] == {"key": "a", "channel": "sms", "to": "qx-001", "purpose": "alert",
                                  "text": message("a").text}


def test_endpoint_lookup_asks_the_server(server: SimServer) -> None:
    adapter = SimulatorAdapter(Channel.SMS, SimOutbox(), server.url)

    async def scenario() -> tuple[SendResult | None, SendResult | None]:
        try:
            await adapter.send(message("a"))
            await adapter.send(message("b"))
            return await adapter.lookup("b"), await adapter.lookup("never-sent")
        finally:
            await adapter.aclose()

    assert run(scenario()) == (SendResult("2"), None)


@pytest.mark.parametrize(("status", "error"), [
    (500, TransientError), (503, TransientError), (429, TransientError),
    (400, PermanentError), (404, PermanentError), (401, ConfigurationError),
])
def test_endpoint_errors_map_onto_the_error_tree(server: SimServer, status: int, error: type[Exception]) -> None:
    server.fail_next(1, status=status)
    outbox = SimOutbox()

    with pytest.raises(error):
        run(send_all(SimulatorAdapter(Channel.SMS, outbox, server.url), message("a")))
    assert outbox.messages() == [] and server.received == []


def test_a_throttled_endpoint_says_when_to_retry(server: SimServer) -> None:
    server.fail_next(1, status=429, retry_after=7)

    with pytest.raises(TransientError) as caught:
        run(send_all(SimulatorAdapter(Channel.SMS, SimOutbox(), server.url), message("a")))
    assert caught.value.retry_after == 7


def test_a_hanging_endpoint_times_out_as_transient(server: SimServer) -> None:
    server.hang_next(1)

    with pytest.raises(TransientError, match="timed out"):
        run(send_all(SimulatorAdapter(Channel.SMS, SimOutbox(), server.url, timeout=0.2), message("a")))


def test_an_unreachable_endpoint_is_transient() -> None:
    url = f"http://127.0.0.1:{free_port()}/"

    with pytest.raises(TransientError, match="unreachable"):
        run(send_all(SimulatorAdapter(Channel.SMS, SimOutbox(), url), message("a")))


def test_the_server_counts_duplicate_keys(server: SimServer) -> None:
    adapter = SimulatorAdapter(Channel.SMS, SimOutbox(), server.url)

    results = run(send_all(adapter, message("a"), message("b"), message("a")))

    assert [r.provider_id for r in results] == ["1", "2", "3"]
    assert server.counts == {"a": 2, "b": 1}
    assert server.stats() == {"received": 3, "unique": 2, "duplicates": ["a"]}
    assert httpx.get(server.url, params={"key": "a"}).json() == {"id": "1"}  # the first send's id


def test_the_server_is_controlled_over_http(server: SimServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/fault", json={"status": 503, "count": 1, "retry_after": 2}).json() == {"queued": 1}
        refused = client.post("/", json={"key": "a"})
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "2")
        assert client.post("/", json={"key": "a"}).json() == {"id": "1"}
        assert client.post("/", content=b"not json").status_code == 400
        assert client.get("/stats").json() == {"received": 1, "unique": 1, "duplicates": []}
        client.post("/reset")
        assert client.get("/stats").json() == {"received": 0, "unique": 0, "duplicates": []}


def test_the_server_runs_as_a_separate_process() -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.simserver", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        results = run(send_all(SimulatorAdapter(Channel.EMAIL, SimOutbox(), url), message("a", Channel.EMAIL)))
        assert results == [SendResult("1")]
        assert json.loads(httpx.get(f"{url}stats").text)["received"] == 1
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
