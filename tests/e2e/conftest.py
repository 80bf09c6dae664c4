"""End-to-end fixtures: the tiny site, and a Harness driving the embedded engine in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.clock import write_offset
from dispatcher.config import Settings
from dispatcher.db.session import engine_for, transaction
from dispatcher.runtime.engine import Engine
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, Clock
from tests.fakes.simserver import SimServer
from tests.support.harness import Harness, Sent, settle_engine
from tests.support.production import E2E_SECRET, TINY_SITE, Production
from tests.support.servers import Postgres, Redis, start_redis

__all__ = ["TINY_SITE"]  # where the e2e modules have always imported it from


@pytest.fixture
def tiny_site(database_url: str) -> str:
    with transaction(database_url) as session:
        load_site_files(session, TINY_SITE, FIXED_NOW)
    return database_url


@pytest.fixture
def outbox() -> SimOutbox:
    return SimOutbox()


@pytest.fixture
def engine(tiny_site: str, clock: Clock, outbox: SimOutbox) -> Iterator[Engine]:
    settings = Settings(database_url=tiny_site)
    eng = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="test")
    yield eng
    eng.close()


@pytest.fixture
def harness(tiny_site: str, clock: Clock, outbox: SimOutbox, engine: Engine, auth: dict[str, str]) -> Iterator[Harness]:
    settings = Settings(database_url=tiny_site)

    def sent() -> list[Sent]:
        return [Sent(m.message.key, m.message.channel.value, m.message.to.person_id, m.message.purpose.value,
                     m.message.text) for m in outbox.messages()]

    def drive() -> None:
        settle_engine(engine)

    def move(delta: timedelta) -> None:
        clock.now += delta

    with TestClient(create_app(settings, clock=clock)) as client:
        h = Harness(tiny_site, client, auth, clock, move, sent, drive)
        yield h
        h.expect_nothing_more()


@pytest.fixture
def client_for(clock: Clock) -> Iterator[object]:
    """A TestClient for the app with given settings (closed at the end of the test)."""
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings, clock=clock))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


# -- the production runtime (tests/support/production.py): PostgreSQL, Redis, Celery workers, scheduler --


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    yield server
    server.stop()


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
