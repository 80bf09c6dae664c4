"""A pass woken by new work (a posted warning rings the scheduler: runtime/wakeup.py) does what the
work calls for at once, and leaves the look for a dead worker's attempts and the heartbeat to a
pass at most a second after the last one that did them (Engine.tick). Rings that never stop — a
fan-out while warnings keep arriving — must not starve that look: the attempts a dead worker held
are still recovered within the interval. Likewise a worker's heartbeat is written at most once a
second while it sends batch after batch, but at once when it has news (a provider halted)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatcher.channels.base import ConfigurationError
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox, SimulatorAdapter
from dispatcher.config import Settings
from dispatcher.db.queue import queued_up_to
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, HeartbeatRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime import engine as engine_module
from dispatcher.runtime.engine import Engine
from dispatcher.services import dispatch
from tests.conftest import Clock
from tests.support.harness import Harness

EVERY = 2.0  # HOUSEKEEPING_EVERY for these tests: room for a slow machine between two passes


def _then_sent(harness: Harness) -> None:
    """The warning's alerts go out once a worker drains the queue (each exactly once)."""
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")


def _statuses(url: str) -> set[str]:
    with transaction(url) as session:
        return set(session.scalars(select(AttemptRow.status)))


def test_a_rung_pass_starts_a_posted_warning_at_once(harness: Harness, tiny_site: str, clock: Clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "HOUSEKEEPING_EVERY", EVERY)
    settings = Settings(database_url=tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="scheduler")
    try:
        engine.tick()  # the interval's pass, nothing to do yet
        harness.post()
        assert engine.tick(rung=True).applied == 1  # within the second: the new work is not left for later
        assert _statuses(tiny_site) == {"queued"}
    finally:
        engine.close()
    _then_sent(harness)


def test_rings_that_never_stop_still_let_a_dead_workers_attempts_be_recovered(
        harness: Harness, tiny_site: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "HOUSEKEEPING_EVERY", EVERY)
    harness.post()
    settings = Settings(database_url=tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="scheduler")
    try:
        engine.tick()  # queues the warning's attempts, and looks for dead workers' ones (none)
        looked = time.monotonic()
        with transaction(tiny_site) as session:  # a worker takes them and dies before sending
            taken = dispatch.claim(session, clock(), 10, "dead-worker", timedelta(seconds=1), read=False).ids
        assert len(taken) == 3
        clock.now += timedelta(seconds=1.5)  # its lease ran out (the engine's clock: under EVERY)

        engine.tick(rung=True)  # rung again at once: the look waits for its second
        if time.monotonic() - looked < EVERY:  # (a machine too slow for this check skips only it)
            assert _statuses(tiny_site) == {"sending"}

        while _statuses(tiny_site) == {"sending"} and time.monotonic() - looked < 3 * EVERY:
            engine.tick(rung=True)  # rung ten times a second, never by the interval
            time.sleep(0.1)
        assert _statuses(tiny_site) == {"queued"}, "the dead worker's attempts were never looked at"
        assert time.monotonic() - looked < 3 * EVERY
    finally:
        engine.close()
    _then_sent(harness)


def test_the_count_of_queued_attempts_stops_where_asked(harness: Harness, tiny_site: str, engine: Engine) -> None:
    harness.post()
    engine.tick()
    with transaction(tiny_site) as session:
        assert queued_up_to(session, 2) == 2  # three are queued: counted no further than two
        assert queued_up_to(session, 100) == 3
    _then_sent(harness)


def _worker_heartbeat(url: str) -> tuple[object, dict[str, object]]:
    with transaction(url) as session:
        row = session.get(HeartbeatRow, "worker:worker")
        assert row is not None
        return row.at, dict(row.info)


def test_a_workers_heartbeat_waits_for_its_second_unless_it_has_news(
        harness: Harness, tiny_site: str, clock: Clock, outbox: SimOutbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "HOUSEKEEPING_EVERY", 60.0)  # no second passes during the test
    settings = Settings(database_url=tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="worker")
    try:
        harness.post()
        engine.tick()
        assert engine.send_batch(limit=1) == 1  # batch after batch, one alert each
        first_at, first = _worker_heartbeat(tiny_site)
        assert first["halted"] == {}

        clock.now += timedelta(seconds=30)  # under the (patched) second
        assert engine.send_batch(limit=1) == 1
        assert _worker_heartbeat(tiny_site)[0] == first_at  # nothing new to say: not written again

        sms = engine.adapter(Channel.SMS)
        assert isinstance(sms, SimulatorAdapter)
        sms.fail_next(1, ConfigurationError("simulated: the account's signature was withdrawn"))
        assert engine.send_batch(limit=1) == 1
        at, info = _worker_heartbeat(tiny_site)
        assert at > first_at and "sms" in info["halted"], "the halted provider waited for the next second"
    finally:
        engine.close()
    harness.expect("sun", "sms", "alert")
    harness.expect("zhou", "sms", "alert")
    harness.expect("zheng", "voice", "reminder")  # SMS halted: the next step was brought forward
