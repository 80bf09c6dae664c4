"""End-to-end fixtures: the tiny site, and a Harness driving the embedded engine in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.runtime.engine import Engine
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, FIXTURES, Clock
from tests.support.harness import Harness, Sent, settle_engine

TINY_SITE = FIXTURES / "sites" / "tiny"


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
