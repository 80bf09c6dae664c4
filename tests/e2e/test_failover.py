"""Failover through the engine: with the first SMS provider failing every request from the start of a
warning, every official's SMS still goes out through the second, nothing is sent twice, and /readyz
says which provider the channel is on and why."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.channels.base import TransientError
from dispatcher.channels.failover import ProviderChain
from dispatcher.channels.registry import build_adapters, provider_order_problems
from dispatcher.channels.simulator import BatchSimulatorAdapter, SimOutbox, SimulatorAdapter
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from tests.conftest import Clock
from tests.e2e.test_batch_sending import OFFICIALS, county, post  # noqa: F401 - the fixtures


def test_the_first_provider_failing_from_the_start_loses_no_official_and_doubles_none(
        county: str, clock: Clock, post) -> None:  # noqa: F811
    # bad input: the first SMS provider answers 500 to every request
    settings = Settings(database_url=county)
    first_log, second_log = SimOutbox(), SimOutbox()
    first, second = SimulatorAdapter(Channel.SMS, first_log), SimulatorAdapter(Channel.SMS, second_log)
    first.provider, second.provider = "aliyun", "tencent"  # type: ignore[misc]
    first.fail_next(10_000, TransientError("HTTP 500"))
    chain = ProviderChain(Channel.SMS, [first, second])
    engine = Engine(settings, clock, lambda: {**build_adapters(settings, SimOutbox()), Channel.SMS: chain},
                    name="failover")
    try:
        post()
        for _ in range(5):  # the messages the first provider failed wait for their next try
            engine.tick()
            engine.drain()
            with transaction(county) as session:
                waiting = session.scalars(select(AttemptRow).where(AttemptRow.channel == "sms",
                                                                   AttemptRow.status != "sent")).all()
            if not waiting:
                break
            clock.now += timedelta(seconds=61)  # past any retry delay
        with transaction(county) as session:
            rows = session.execute(select(AttemptRow.key, AttemptRow.status, AttemptRow.provider)
                                   .where(AttemptRow.channel == "sms")).all()
        with TestClient(create_app(settings, clock=clock)) as client:
            channels = client.get("/readyz").json()["checks"]["channels"]
    finally:
        engine.close()
    assert len(rows) == OFFICIALS and {r.status for r in rows} == {"sent"}
    assert {r.provider for r in rows} == {"tencent"}  # each attempt records who took it
    keys = [m.message.key for m in second_log.messages()]
    assert sorted(keys) == sorted(r.key for r in rows)  # every key once at the provider that took it
    assert first_log.messages() == []
    assert channels == "sms failed over: on tencent (aliyun failing)"


def test_a_misspelt_provider_order_is_refused() -> None:
    # bad input: JIAOYING_SMS_PROVIDERS=aliyn,twilio (a typo would silently drop a provider)
    settings = Settings(database_url="sqlite://", sms_providers="aliyn,twilio")
    assert provider_order_problems(settings) == [
        "JIAOYING_SMS_PROVIDERS names 'aliyn', which is not a sms provider (known: "
        + ", ".join(n for n in ("aliyun", "tencent", "twilio") if n in _known()) + ")",
        "JIAOYING_SMS_PROVIDERS names 'twilio', which is not configured (set JIAOYING_TWILIO_ACCOUNT_SID, "
        "JIAOYING_TWILIO_AUTH_TOKEN, JIAOYING_TWILIO_FROM_NUMBER)"]


def _known() -> set[str]:
    from dispatcher.channels.registry import registrations

    return {r.provider for r in registrations() if r.channel is Channel.SMS}


def test_a_first_provider_answering_503_to_every_batch_loses_no_time(county: str, clock: Clock,  # noqa: F811
                                                                      post) -> None:  # noqa: F811
    """bench/carriers.py found that with Aliyun answering 503 to every request nothing reached Tencent
    in a minute: the engine's own per-channel breaker opened over the chain's, and its trial sent a
    whole batch to the first provider again. A 503 says the request was not taken: the chain moves
    those messages to the next provider in the same hand-over, and nothing is looked up later."""
    # bad input: the first provider (a batch one) answers 503 to every request from the start
    settings = Settings(database_url=county)
    first_log, second_log = SimOutbox(), SimOutbox()
    first = BatchSimulatorAdapter(Channel.SMS, first_log, batch_size=100)
    second = BatchSimulatorAdapter(Channel.SMS, second_log, batch_size=100)
    first.provider, second.provider = "aliyun", "tencent"  # type: ignore[misc]
    looked_up: list[str] = []

    async def lookup(key: str, to: object = None) -> None:
        looked_up.append(key)

    first.lookup = lookup  # type: ignore[method-assign]
    first.fail_next(10_000, TransientError("HTTP 503", unsent=True))
    chain = ProviderChain(Channel.SMS, [first, second])
    engine = Engine(settings, clock, lambda: {**build_adapters(settings, SimOutbox()), Channel.SMS: chain},
                    name="failover-503")
    try:
        post()
        engine.tick()
        engine.drain()  # one pass, no clock moved: no retry delay is waited out
        with transaction(county) as session:
            rows = session.execute(select(AttemptRow.status, AttemptRow.provider, AttemptRow.tries)
                                   .where(AttemptRow.channel == "sms")).all()
    finally:
        engine.close()
    assert len(rows) == OFFICIALS and {(r.status, r.provider) for r in rows} == {("sent", "tencent")}
    assert {r.tries for r in rows} == {1}
    assert len(second_log.messages()) == OFFICIALS and first_log.messages() == []
    assert looked_up == []  # a refused request left nothing in doubt
