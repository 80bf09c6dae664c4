"""The production runtime end to end: PostgreSQL, a real Redis broker, Celery worker processes
(`celery -A worker worker`) and the `jiaoying scheduler` process, sending to a loopback simulator.
The clock is moved through a shared offset file; no test sleeps for minutes.

Also the crash tests: SIGKILL a worker in the middle of a fan-out, restart and flush Redis, and run
two workers with two schedulers — every official gets every due step exactly once (attempt keys
counted at the fake provider: none missing, none doubled)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dispatcher.clock import system_clock
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from tests.fakes.simserver import SimServer
from tests.support.bigsite import write_big_site
from tests.support.harness import Harness, engine_quiet, wait_until
from tests.support.production import Production, make_harness
from tests.support.servers import Redis

pytestmark = pytest.mark.postgres


def test_escalation_on_celery_redis_and_postgres(production: Production, sim: SimServer) -> None:
    production.start_worker()
    production.start_scheduler()
    h = make_harness(production, sim)
    wid = h.post()
    for person in ("sun", "zhou", "zheng"):
        h.expect(person, "sms", "alert")
    h.reply_sms("sun", "收到")
    h.advance(minutes=3)
    h.expect("zhou", "voice", "reminder")
    h.expect("zheng", "voice", "reminder")
    h.press_1("zhou", callout_of="zhou")
    h.advance(minutes=3)
    h.expect_nothing_more()  # 郑 has no deputy
    h.advance(minutes=4)
    h.expect("sun", "voice", "to_superior")
    h.advance(minutes=5)
    for person in ("sun", "zhao", "qian"):
        h.expect(person, "sms", "unreached")
    assert h.states() == {"sun": "acknowledged", "zhou": "acknowledged", "zheng": "unreached"}
    r = h.client.post(f"/api/v1/warnings/{wid}/cancel", headers=h.headers)
    assert r.status_code == 200, r.text
    for person in ("sun", "zhou", "zheng"):
        h.expect(person, "sms", "cancel")
    h.advance(minutes=30)
    h.expect_nothing_more()
    assert sim.stats()["duplicates"] == []


# --- crashes and concurrency: every due step exactly once -----------------------------------

def big_fan_out(prod: Production, sim: SimServer, tmp_path: Path, officials: int = 600) -> Harness:
    site = tmp_path / "big"
    write_big_site(site, officials)
    h = make_harness(prod, sim, site)
    h.post(areas=["330599"])
    return h


def wait_for_sends(sim: SimServer, at_least: int) -> None:
    wait_until(lambda: len(sim.received) >= at_least, 60, f"{at_least} messages at the fake provider")


def assert_exactly_once(prod: Production, sim: SimServer, expected: int) -> None:
    url = prod.settings.database_url
    clock = system_clock(prod.settings)
    wait_until(lambda: engine_quiet(url, clock()), 90, "every due attempt to be handed over")
    with transaction(url) as session:
        keys = set(session.scalars(select(AttemptRow.key)))
        sent = session.scalar(select(func.count()).where(AttemptRow.status == "sent"))
    counts = sim.counts
    assert len(keys) == expected and sent == expected
    assert set(counts) == keys, f"missing at the provider: {sorted(keys - set(counts))[:5]}"
    doubled = sorted(k for k, n in counts.items() if n > 1)
    assert doubled == [], f"{len(doubled)} attempts reached the provider twice, e.g. {doubled[:5]}"


def test_sigkill_a_worker_mid_fan_out_loses_and_doubles_nothing(production: Production, tmp_path: Path) -> None:
    sim = SimServer(latency=0.02)
    sim.start()
    production.settings = production.settings.model_copy(update={"simulator_url": sim.url})
    production.env["JIAOYING_SIMULATOR_URL"] = sim.url
    try:
        first = production.start_worker()
        production.start_scheduler()
        big_fan_out(production, sim, tmp_path, 600)
        wait_for_sends(sim, 150)
        production.kill(first)  # mid fan-out: claimed rows and requests in flight die with it
        killed_at = len(sim.received)
        assert killed_at < 1200, "the fan-out finished before the kill; make it slower"
        production.start_worker()
        assert_exactly_once(production, sim, 1200)
    finally:
        sim.stop()


def test_redis_restarted_and_flushed_mid_run_loses_and_doubles_nothing(
        production: Production, redis_server: Redis, tmp_path: Path) -> None:
    sim = SimServer(latency=0.02)
    sim.start()
    production.settings = production.settings.model_copy(update={"simulator_url": sim.url})
    production.env["JIAOYING_SIMULATOR_URL"] = sim.url
    try:
        production.start_worker()
        production.start_scheduler()
        h = big_fan_out(production, sim, tmp_path, 600)
        wait_for_sends(sim, 150)
        redis_server.stop()  # the broker goes away mid fan-out …
        # intake does not need the broker: a warning posted now is accepted (a yellow typhoon warning:
        # no plan matches, and below orange nobody is called by the fallback either)
        assert h.client.post("/api/v1/warnings", headers=h.headers, json={
            "sender": "qingxi-qx", "identifier": "TY-1", "hazard": "typhoon", "level": "yellow",
            "areas": ["330599"], "headline": "台风黄色预警", "sent": h.now().isoformat()}).status_code == 202
        time.sleep(1.0)
        redis_server.start()  # … comes back empty-handed (no persistence) …
        redis_server.flush()  # … and is flushed for good measure: every wake-up is gone
        assert_exactly_once(production, sim, 1200)
        h.advance(minutes=5)  # the voice step is due: timers survived in the database
        redis_server.stop()
        redis_server.start()
        assert_exactly_once(production, sim, 1800)
    finally:
        sim.stop()


def test_two_workers_and_two_schedulers_never_double_send(production: Production, sim: SimServer,
                                                         tmp_path: Path) -> None:
    for _ in range(2):
        production.start_worker()
        production.start_scheduler()
    h = big_fan_out(production, sim, tmp_path, 400)
    assert_exactly_once(production, sim, 800)
    h.advance(minutes=5)
    assert_exactly_once(production, sim, 1200)


def test_sending_and_timers_go_on_while_redis_is_down(production: Production, redis_server: Redis, sim: SimServer,
                                                      tmp_path: Path) -> None:
    """The broker only carries wake-ups: with Redis down the whole time, the scheduler's passes are
    not held up by wake-ups it cannot publish, and the workers look at the database themselves."""
    production.start_worker()
    production.start_scheduler()
    redis_server.stop()
    try:
        h = big_fan_out(production, sim, tmp_path, 200)
        wait_until(lambda: len(sim.received) >= 400, 30, "step 0 (SMS and IM) sent while Redis is down")
        h.advance(minutes=5)  # the voice step is due (the harness waits for the engine to go quiet)
        wait_until(lambda: len(sim.received) >= 600, 30, "the voice step sent while Redis is down")
        assert sim.stats()["duplicates"] == []
    finally:
        redis_server.start()
