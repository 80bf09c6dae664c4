"""The production runtime end to end: PostgreSQL, a real Redis broker, Celery worker processes
(`celery -A worker worker`) and the `jiaoying scheduler` process, sending to a loopback simulator.
The clock is moved through a shared offset file; no test sleeps for minutes.

Also the crash tests: SIGKILL a worker in the middle of a fan-out, restart and flush Redis, and run
two workers with two schedulers — every official gets every due step exactly once (attempt keys
counted at the fake provider: none missing, none doubled)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.clock import system_clock, write_offset
from dispatcher.config import Settings
from dispatcher.db.session import engine_for, transaction
from dispatcher.db.tables import AttemptRow
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, ROOT
from tests.e2e.conftest import TINY_SITE
from tests.fakes.simserver import SimServer
from tests.support.bigsite import write_big_site
from tests.support.harness import Harness, Sent, engine_quiet, wait_until
from tests.support.servers import Postgres, Redis, start_redis

pytestmark = pytest.mark.postgres
E2E_SECRET = "celery-e2e-secret-" + "s" * 32  # the scheduler refuses to start without a real one


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    yield server
    server.stop()


class Production:
    """The set of processes `docker compose up` would start, minus the API (in-test)."""

    def __init__(self, settings: Settings, env: dict[str, str], workdir: Path) -> None:
        self.settings, self.env, self.workdir = settings, env, workdir
        self.workers: list[subprocess.Popen[bytes]] = []
        self.schedulers: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        log = self._log(f"worker-{len(self.workers)}.log")
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", "prefork",
                                 "-c", str(concurrency), "--loglevel", "INFO", "-Q", "jiaoying",
                                 "-n", f"w{len(self.workers)}@%h", "--without-mingle", "--without-gossip"],
                                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        self._wait_for(f"worker-{len(self.workers) - 1}.log", b" ready.", proc)
        return proc

    def start_scheduler(self) -> subprocess.Popen[bytes]:
        log = self._log(f"scheduler-{len(self.schedulers)}.log")
        proc = subprocess.Popen([sys.executable, "-m", "dispatcher", "scheduler", "--interval", "0.2"],
                                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.schedulers.append(proc)
        self._wait_for(f"scheduler-{len(self.schedulers) - 1}.log", b"scheduler started", proc)
        return proc

    def _wait_for(self, log: str, line: bytes, proc: subprocess.Popen[bytes]) -> None:
        """Cold starts are slow on a busy 2-core machine: post nothing until the process is up."""
        path = self.workdir / log
        deadline = time.monotonic() + 90
        while line not in path.read_bytes():
            if proc.poll() is not None:
                raise AssertionError(f"{log} exited with {proc.returncode}: {path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{log} did not say {line!r} within 90 s: {path.read_text()[-2000:]}")
            time.sleep(0.1)

    def _log(self, name: str) -> Any:
        handle = open(self.workdir / name, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(handle)
        return handle

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the whole process group: a Celery worker and its pool children, mid-work."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)

    def stop(self) -> None:
        for proc in self.workers + self.schedulers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers + self.schedulers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        for handle in self._logs:
            handle.close()


@pytest.fixture
def pg_url(postgres_server: Postgres, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"e2e_{abs(hash(request.node.nodeid)) % 10**8}"
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE jy_template")
    url = postgres_server.url(name)
    yield url
    engine_for(url).dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sim() -> Iterator[SimServer]:
    server = SimServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def production(pg_url: str, redis_server: Redis, sim: SimServer, tmp_path: Path) -> Iterator[Production]:
    redis_server.flush()
    offset_file = tmp_path / "clock-offset"
    write_offset(str(offset_file), (FIXED_NOW - datetime.now(UTC)).total_seconds())
    env = {**os.environ, "JIAOYING_DATABASE_URL": pg_url, "JIAOYING_BROKER_URL": redis_server.url,
           "JIAOYING_SIMULATOR_URL": sim.url, "JIAOYING_CLOCK_OFFSET_FILE": str(offset_file),
           "JIAOYING_ATTEMPT_LEASE_SECONDS": "5", "JIAOYING_SECRET_KEY": E2E_SECRET}
    settings = Settings(database_url=pg_url, broker_url=redis_server.url, simulator_url=sim.url,
                        clock_offset_file=str(offset_file), attempt_lease_seconds=5, secret_key=E2E_SECRET)
    prod = Production(settings, env, tmp_path)
    yield prod
    prod.stop()


def make_harness(prod: Production, sim: SimServer, site: Path = TINY_SITE) -> Harness:
    settings = prod.settings
    clock = system_clock(settings)
    with transaction(settings.database_url) as session:
        load_site_files(session, site, clock())
        _, token = create_key(session, "qingxi-qx", clock())
    offset_path = settings.clock_offset_file

    def move(delta: timedelta) -> None:
        current = float(Path(offset_path).read_text())
        write_offset(offset_path, current + delta.total_seconds())

    def sent() -> list[Sent]:
        return [Sent(m["key"], m["channel"], m["to"], m["purpose"], m.get("text", "")) for m in sim.received]

    def drive() -> None:
        time.sleep(0.3)  # let the scheduler see a new warning or a moved clock
        wait_until(lambda: engine_quiet(settings.database_url, clock()), 60, "the engine to go quiet")

    client = TestClient(create_app(settings, clock=clock))
    return Harness(settings.database_url, client, {"Authorization": f"Bearer {token}"}, clock, move, sent, drive)


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
