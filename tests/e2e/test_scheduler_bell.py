"""The production scheduler is rung by the API (runtime/wakeup.py): a posted warning wakes the
`jiaoying scheduler` at once through Redis instead of waiting for its next pass; with Redis away
the post is still accepted at once and the scheduler sleeps its interval as before. A real Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.runtime.wakeup import SchedulerBell, SchedulerWait
from tests.conftest import Clock
from tests.support.servers import Redis, start_redis


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    yield server
    server.stop()


def post(client: TestClient, auth: dict[str, str], clock: Clock, identifier: str) -> int:
    return client.post("/api/v1/warnings", headers=auth, json={
        "sender": "qingxi-qx", "identifier": identifier, "msg_type": "alert", "hazard": "rainstorm",
        "level": "red", "areas": ["330599100"], "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code


def test_a_posted_warning_rings_the_scheduler_at_once(tiny_site: str, redis_server: Redis, auth: dict[str, str],
                                                      clock: Clock) -> None:
    pause = SchedulerWait(redis_server.url, threading.Event())
    settings = Settings(database_url=tiny_site, broker_url=redis_server.url)
    with TestClient(create_app(settings, clock=clock, runtime=SchedulerBell(redis_server.url))) as client:
        assert pause.wait(0.2) is False  # nothing posted: the interval runs out
        assert post(client, auth, clock, "BELL-1") == 202
        assert pause.wait(10) is True, "the scheduler slept its whole interval: the post did not ring"
        assert client.get("/api/v1/warnings", headers=auth).status_code == 200
        assert pause.wait(0.2) is False  # a read creates no work and rings nothing; the ring was taken once


def test_with_redis_away_a_post_is_accepted_and_the_scheduler_sleeps_its_interval(
        tiny_site: str, redis_server: Redis, auth: dict[str, str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url
    redis_server.stop()  # bad input of the field: the broker is down
    pause = SchedulerWait(url, threading.Event())
    settings = Settings(database_url=tiny_site, broker_url=url)
    with TestClient(create_app(settings, clock=clock, runtime=SchedulerBell(url))) as client:
        assert post(client, auth, clock, "BELL-2") == 202  # accepted: the ring is the waker thread's business
        assert pause.wait(0.3) is False  # no exception: it slept its interval
    assert "cannot wait for wake-ups on the broker" in caplog.text
