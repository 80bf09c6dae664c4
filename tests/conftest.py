"""Shared fixtures: a fresh database per test on SQLite and on a real PostgreSQL server, the
sample site, a fixed clock and an HTTP client for the app."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.services import users
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.support.servers import Postgres, start_postgres

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SITE = ROOT / "rosters" / "qingxi"
FIXTURES = ROOT / "tests" / "fixtures"
FIXED_NOW = datetime(2026, 7, 16, 3, 12, tzinfo=UTC)  # 11:12 Beijing time, a Thursday
_counter = itertools.count()
# What the service hashes passwords with, before the fixture below swaps it for these tests
# (tests/unit/test_passwords.py holds it to a strong cost).
PRODUCTION_HASHER = users._hasher  # noqa: SLF001


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Argon2, at its lowest cost, for the accounts these tests make and sign in with. At the
    service's cost (64 MiB, 3 passes: 0.3 s of CPU a hash on the 2-core build machine) the three duty
    officers every board test creates, and each sign-in, were about a sixth of the suite's CPU. Tests
    of what a slow hash must not hold up bring their own stand-in; the CLI in a subprocess keeps the
    real cost."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    server = start_postgres()
    try:
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE jy_template")
        upgrade(server.url("jy_template"))
        engine_for(server.url("jy_template")).dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine_for(url).dispose()
    return path


@pytest.fixture
def sqlite_database_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated, empty SQLite database. A module whose tests are about what is shown, not
    about the database (the queries behind it run on both elsewhere), overrides ``database_url``
    with a fixture returning it, which halves its run time."""
    path = tmp_path / "test.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    yield url
    engine_for(url).dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database — on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_database_url")
        return
    server: Postgres = request.getfixturevalue("postgres_server")
    name = f"t_{next(_counter)}"
    admin = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE jy_template")
    url = server.url(name)
    yield url
    engine_for(url).dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, public_url="http://127.0.0.1:8000")


@pytest.fixture
def site_loaded(database_url: str) -> str:
    with transaction(database_url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    return database_url


class Clock:
    """A clock the test moves forward."""

    def __init__(self, start: datetime = FIXED_NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, site_loaded: str, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as c:
        yield c


@pytest.fixture
def make_key(database_url: str) -> Callable[..., str]:
    def make(agency: str = "qingxi-qx", hazards=None, senders=None) -> str:
        with transaction(database_url) as session:
            _, token = create_key(session, agency, FIXED_NOW, hazards, senders)
        return token

    return make


@pytest.fixture
def auth(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key()}"}
