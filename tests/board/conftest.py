"""Board fixtures: the tiny site with one red rainstorm warning whose call-outs have gone out,
three users (viewer, officer, admin) and a helper to sign in through the login form."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.runtime.engine import Engine
from dispatcher.services.users import Role, create_user
from tests.conftest import FIXED_NOW, Clock
from tests.e2e.conftest import engine, outbox, tiny_site  # noqa: F401 - fixtures
from tests.support.harness import settle_engine

PASSWORD = "correct horse battery"
USERS = {"wang": Role.VIEWER, "liu": Role.OFFICER, "chen": Role.ADMIN}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def create_users(database_url: str) -> None:
    with transaction(database_url) as session:
        for name, role in USERS.items():
            create_user(session, name, role, PASSWORD, FIXED_NOW)


def warning_body(now: Any, **fields: Any) -> dict[str, Any]:
    return {"sender": "qingxi-qx", "identifier": "T-1", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
            "sent": now.isoformat()} | fields


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Desk:
    """A duty desk for a page's tests: the board app with an engine on the test's clock (the tests
    drive it), and signing in as one of USERS."""

    client: TestClient
    engine: Engine
    clock: Clock
    url: str

    def login(self, name: str) -> str:
        """Sign in as ``name`` (after signing anyone else out); the board's CSRF value."""
        self.client.cookies.clear()
        page = self.client.get("/board/login")
        self.client.post("/board/login", data={"name": name, "password": PASSWORD, "csrf": csrf_of(page.text)})
        return csrf_of(self.client.get("/board").text)


@contextmanager
def desk_on(url: str, clock: Clock, name: str = "board-test") -> Iterator[tuple[TestClient, Engine]]:
    """The users created, the app and an engine with simulator channels on ``url``."""
    create_users(url)
    settings = Settings(database_url=url)
    made = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name=name)
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            yield client, made
    finally:
        made.close()


@dataclass
class Board:
    client: TestClient
    warning: str
    drive: Callable[[], None]
    clock: Clock
    database_url: str

    def login(self, name: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/board/login")
        return self.client.post("/board/login", data={"name": name, "password": password,
                                                      "csrf": csrf_of(page.text)}, follow_redirects=False)

    def page(self) -> str:
        response = self.client.get(f"/board/warnings/{self.warning}")
        assert response.status_code == 200, response.text
        return response.text

    def callouts(self) -> list[dict[str, Any]]:
        return self.client.get(f"/api/v1/warnings/{self.warning}/callouts", headers=self.api).json()["callouts"]

    @property
    def api(self) -> dict[str, str]:
        return {"Authorization": "Basic Y2hlbjpjb3JyZWN0IGhvcnNlIGJhdHRlcnk="}  # chen:correct horse battery


@pytest.fixture
def board(tiny_site: str, clock: Clock, engine: Engine, auth: dict[str, str]) -> Iterator[Board]:  # noqa: F811
    create_users(tiny_site)

    def drive() -> None:
        settle_engine(engine)

    with TestClient(create_app(Settings(database_url=tiny_site), clock=clock)) as client:
        response = client.post("/api/v1/warnings", json=warning_body(clock()), headers=auth)
        assert response.status_code == 202, response.text
        drive()
        yield Board(client, response.json()["id"], drive, clock, tiny_site)
