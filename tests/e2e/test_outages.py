"""Provider outages through a real loopback HTTP provider (the simulator's endpoint mode): 500s,
429 with Retry-After, and a hang where the provider kept the message but the answer was lost.
Transient failures are retried within bounds; nothing is lost or sent twice (keys counted at the
provider); a provider that stays down fails the attempt over to the plan's next step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.runtime.engine import Engine
from tests.fakes.simserver import SimServer
from tests.support.harness import Harness


@pytest.fixture
def provider() -> Iterator[SimServer]:
    server = SimServer(hang_seconds=1.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http_engine(tiny_site: str, clock, provider: SimServer) -> Iterator[Engine]:
    settings = Settings(database_url=tiny_site, simulator_url=provider.url)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox(), sim_endpoint=provider.url))
    yield engine
    engine.close()


def post_and_send(harness: Harness, engine: Engine) -> None:
    harness.post()
    engine.tick()
    engine.drain()


def attempts(url: str) -> dict[str, tuple[str, int]]:
    with transaction(url) as session:
        return {a.key: (a.status, a.tries) for a in session.scalars(select(AttemptRow))}


def test_500s_are_retried_and_every_message_arrives_once(harness: Harness, http_engine: Engine,
                                                         provider: SimServer) -> None:
    provider.fail_next(2, status=500)
    post_and_send(harness, http_engine)
    assert sorted(provider.counts.values()) == [1, 1, 1]
    assert {status for status, _ in attempts(harness.url).values()} == {"sent"}


def test_429_waits_for_retry_after(harness: Harness, http_engine: Engine, provider: SimServer) -> None:
    provider.fail_next(1, status=429, retry_after=0.4)
    started = time.monotonic()
    post_and_send(harness, http_engine)
    assert time.monotonic() - started >= 0.4
    assert sorted(provider.counts.values()) == [1, 1, 1]


def test_a_lost_answer_is_not_sent_twice(harness: Harness, http_engine: Engine, provider: SimServer) -> None:
    provider.hang_next(1, record=True)  # the provider keeps the message, the answer never comes
    post_and_send(harness, http_engine)
    assert sorted(provider.counts.values()) == [1, 1, 1]  # the retry asked first, and found it
    assert {status for status, _ in attempts(harness.url).values()} == {"sent"}


def test_a_provider_that_stays_down_delays_messages_and_fails_over_to_the_next_step(
        harness: Harness, http_engine: Engine, provider: SimServer, clock) -> None:
    provider.fail_next(1000, status=503)
    post_and_send(harness, http_engine)
    recorded = attempts(harness.url)
    sms = {k: v for k, v in recorded.items() if ":0:sms:" in k}
    # an outage is a wait, not a failure: each SMS waits for its retry time … and a 503 says the
    # request was not taken, so it is not counted as a try (its next one needs no lookup first)
    assert len(sms) == 3 and all(status == "queued" and tries == 0 for status, tries in sms.values())
    # … and the voice step is due now instead of at 3 min
    with transaction(harness.url) as session:
        due = [c.next_due for c in session.scalars(select(CalloutRow))]
    assert all(d is not None and d <= harness.now() for d in due)
    assert provider.counts == {}  # nothing ever reached the provider
    provider.state.reset()  # the outage ends
    # Past the first retry time and the circuit's 5 s cooldown: nine 503s in a row (three tries of
    # three messages, none of them a lookup now that a 503 leaves nothing in doubt) opened it.
    clock.now += timedelta(seconds=6)
    http_engine.tick()
    http_engine.drain()  # the half-open circuit's trial goes and closes it …
    clock.now += timedelta(seconds=2)
    http_engine.drain()  # … and the messages refused meanwhile follow at their next try
    # every message delivered once: the delayed SMS and the voice step brought forward
    assert sorted(provider.counts.values()) == [1] * 6
    assert {k.split(":")[2] for k in provider.counts} == {"sms", "voice"}
    for person in ("sun", "zhou", "zheng"):  # (answered, so the harness's own engine has nothing left to send)
        harness.press_1(person, callout_of=person)
