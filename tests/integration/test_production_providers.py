"""Production never pretends: a channel that a loaded plan uses with no provider configured stops
the production processes at start-up (it used to become the in-memory simulator, with /readyz
green); JIAOYING_ALLOW_SIMULATORS=1 lets them run, and the board and /readyz say so."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.db.session import engine_for, transaction
from dispatcher.runtime.embedded import default_adapters
from dispatcher.runtime.engine import Engine
from dispatcher.services.providers import startup_problems
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE, Clock
from tests.support.servers import Postgres, free_port

SECRET = "production-providers-secret-" + "p" * 32
pytestmark = pytest.mark.postgres


@pytest.fixture
def site_loaded(postgres_server: Postgres) -> Iterator[str]:
    """A fresh migrated PostgreSQL database with the sample county: the production mode refuses SQLite."""
    name = f"prod_{next(_counter)}"
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE jy_template")
    url = postgres_server.url(name)
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    yield url
    engine_for(url).dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_counter = itertools.count(1)


def _jiaoying(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    clean |= {"JIAOYING_DATABASE_URL": url, "JIAOYING_SECRET_KEY": SECRET, "JIAOYING_ENVIRONMENT": "production",
              "JIAOYING_BROKER_URL": "redis://127.0.0.1:1/0", **env}
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env=clean, capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent)


def test_serve_and_scheduler_refuse_a_plan_channel_without_a_provider(site_loaded: str) -> None:
    # bad input: production with the sample county's plans (SMS, voice, IM) and no provider configured
    for command in (("serve", "--port", str(free_port())), ("scheduler",)):
        r = _jiaoying(*command, url=site_loaded)
        assert r.returncode == 1, r.stderr
        message = " ".join(r.stderr.split())
        assert "refusing to start: sms: a loaded plan uses it" in message
        assert "sms: a loaded plan uses it but no provider is configured; set aliyun (JIAOYING_ALIYUN_ACCESS_KEY_ID" \
            in message and "or twilio (JIAOYING_TWILIO_ACCOUNT_SID" in message
        assert "voice: a loaded plan uses it" in message and "JIAOYING_ALLOW_SIMULATORS=1" in message
        assert "Traceback" not in r.stderr


def test_configured_providers_and_no_site_are_not_refused(site_loaded: str) -> None:
    configured = Settings(database_url=site_loaded, secret_key=SECRET, environment="production",
                          twilio_account_sid="AC" + "1" * 32, twilio_auth_token="t", twilio_from_number="+15005550006",
                          dingtalk_webhook_url="https://oapi.dingtalk.com/robot/send?access_token=x")
    assert startup_problems(configured) == []
    # The development mode never refuses: the simulators are its point.
    assert startup_problems(Settings(database_url=site_loaded, secret_key=SECRET)) == []


def test_allowed_simulators_run_and_the_board_and_readyz_say_so(site_loaded: str, clock: Clock) -> None:
    settings = Settings(database_url=site_loaded, secret_key=SECRET, environment="production", allow_simulators=True)
    assert startup_problems(settings) == []
    engine = Engine(settings, clock, default_adapters(settings))
    try:
        engine.tick()
        engine.drain()  # a worker pass: its heartbeat names the channels on the simulator
    finally:
        engine.close()
    with TestClient(create_app(settings, clock=clock)) as client:
        checks = client.get("/readyz").json()["checks"]
    assert checks["channels"] == ("email, im, sms, voice on the simulator (JIAOYING_ALLOW_SIMULATORS=1): "
                                  "these messages reach no phone")
