"""Operations findings, run as a user runs them, each with its bad input: `serve` and `scheduler`
with unsafe secrets, unknown environment names, the secret file `db upgrade` creates, link tokens in
the access log of a running server, and intake while PostgreSQL is down."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from dispatcher import config
from dispatcher.api.app import create_app
from dispatcher.config import Settings, UnsafeSecret
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE
from tests.support.servers import Postgres, free_port, start_postgres

GOOD_SECRET = "integration-secret-" + "q" * 32


def jiaoying(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(("secret", "expected"), [
    (None, "no secret key is configured"),                  # bad input: nothing configured
    ("", "JIAOYING_SECRET_KEY is empty"),                   # bad input: JIAOYING_SECRET_KEY=
    ("short-secret", "12 characters long"),                 # bad input: short
    ("dev-insecure-secret", "public development secret"),   # bad input: the development value
])
def test_serve_refuses_an_unsafe_secret_and_says_how_to_fix_it(tmp_path: Path, secret: str | None,
                                                              expected: str) -> None:
    env = {"JIAOYING_DATABASE_URL": f"sqlite:///{tmp_path / 'jy.db'}"}
    if secret is not None:
        env["JIAOYING_SECRET_KEY"] = secret
    r = jiaoying("serve", "--port", str(free_port()), cwd=tmp_path, timeout=30, **env)
    assert r.returncode == 1, r.stderr
    message = " ".join(r.stderr.split())
    assert "refusing to start" in message and expected in message
    assert "JIAOYING_SECRET_KEY" in message and "at least 32 random characters" in message
    assert "jiaoying db upgrade" in message


def test_the_scheduler_refuses_the_development_secret(tmp_path: Path) -> None:
    # bad input: JIAOYING_SECRET_KEY=dev-insecure-secret on the production timer process
    r = jiaoying("scheduler", cwd=tmp_path, timeout=30, JIAOYING_DATABASE_URL=f"sqlite:///{tmp_path / 'jy.db'}",
                 JIAOYING_BROKER_URL="redis://127.0.0.1:1/0", JIAOYING_SECRET_KEY="dev-insecure-secret")
    assert r.returncode == 1
    assert "refusing to start" in r.stderr and "public development secret" in " ".join(r.stderr.split())


@pytest.mark.parametrize("name", ["prod", "Prod", "live"])
def test_an_unknown_environment_name_is_refused_by_every_command(tmp_path: Path, name: str) -> None:
    # bad input: JIAOYING_ENVIRONMENT=prod used to mean development, silently
    r = jiaoying("db", "upgrade", cwd=tmp_path, JIAOYING_DATABASE_URL=f"sqlite:///{tmp_path / 'jy.db'}",
                 JIAOYING_ENVIRONMENT=name)
    assert r.returncode == 1
    message = " ".join(r.stderr.split())
    assert f"JIAOYING_ENVIRONMENT: unknown environment '{name}'; accepted: development, production" in message
    assert "Traceback" not in r.stderr


def test_production_in_capitals_is_production(tmp_path: Path) -> None:
    # bad input: JIAOYING_ENVIRONMENT=Production used to mean development, so SQLite was accepted
    r = jiaoying("db", "upgrade", cwd=tmp_path, JIAOYING_DATABASE_URL=f"sqlite:///{tmp_path / 'jy.db'}",
                 JIAOYING_ENVIRONMENT="Production", JIAOYING_SECRET_KEY=GOOD_SECRET)
    assert r.returncode == 1 and "production mode needs PostgreSQL" in r.stderr


def _wait_up(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


def _serve(tmp_path: Path, db: Path, **env: str) -> tuple[subprocess.Popen[str], int, Path]:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    clean |= {"JIAOYING_DATABASE_URL": f"sqlite:///{db}", "PYTHONUNBUFFERED": "1", **env}
    log = tmp_path / f"serve-{port}.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "dispatcher", "serve", "--port", str(port)], cwd=tmp_path,
                                  env=clean, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(port, server)
    except BaseException:
        _stop(server)
        raise
    return server, port, log


def _stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def test_db_upgrade_creates_a_secret_file_beside_the_database_that_serve_uses(tmp_path: Path) -> None:
    # bad input: nothing configured but the package — the embedded default must still serve
    db = tmp_path / "data" / "jy.db"
    db.parent.mkdir()
    first = jiaoying("db", "upgrade", cwd=tmp_path, JIAOYING_DATABASE_URL=f"sqlite:///{db}")
    assert first.returncode == 0, first.stderr
    secret_file = db.parent / "jiaoying.secret"  # beside the database file, not in it
    assert str(secret_file) in " ".join(first.stderr.split())
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    key = secret_file.read_text().strip()
    assert len(key) >= 32
    again = jiaoying("db", "upgrade", cwd=tmp_path, JIAOYING_DATABASE_URL=f"sqlite:///{db}")
    assert again.returncode == 0 and secret_file.read_text().strip() == key  # never replaced
    assert key.encode() not in db.read_bytes()
    server, port, _ = _serve(tmp_path, db)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        _stop(server)


def test_a_link_token_stays_out_of_the_access_log(tmp_path: Path) -> None:
    db = tmp_path / "jy.db"
    upgrade(f"sqlite:///{db}")
    engine_for(f"sqlite:///{db}").dispose()
    server, port, log = _serve(tmp_path, db, JIAOYING_SECRET_KEY=GOOD_SECRET)
    # bad input: a link token in the URL, which uvicorn's access log wrote out in full
    token = "eyJjIjo0MiwiZSI6MTc4NDE3MTUyMH0.c2VjcmV0LXNpZ25hdHVyZS1vZi10aGUtbGluaw"
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/ack/{token}", timeout=10)
        assert page.status_code == 400  # not a token signed with this server's key
        deadline = time.monotonic() + 10
        while "/ack/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(server)
    text = log.read_text()
    assert "GET /ack/[redacted]" in text, text
    assert token not in text and token[:20] not in text


def test_the_app_factory_refuses_an_unsafe_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bad input: `uvicorn --factory dispatcher.api.app:create_app` with no secret configured
    for name in [n for n in os.environ if n.startswith("JIAOYING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JIAOYING_DATABASE_URL", f"sqlite:///{tmp_path / 'jy.db'}")
    config.get_settings.cache_clear()
    try:
        with pytest.raises(UnsafeSecret, match="no secret key is configured"):
            create_app()
        monkeypatch.setenv("JIAOYING_SECRET_KEY", GOOD_SECRET)
        config.get_settings.cache_clear()
        assert create_app().state.settings.secret_key == GOOD_SECRET
    finally:
        config.get_settings.cache_clear()


# -- 503 while the database is down --------------------------------------------------------------

@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """A server of this test's own: stopping it disturbs no other test."""
    server = start_postgres()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


@pytest.mark.postgres
def test_intake_answers_503_with_retry_after_while_postgresql_is_down(own_postgres: Postgres) -> None:
    with psycopg.connect(f"host=127.0.0.1 port={own_postgres.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE outage")
    url = own_postgres.url("outage")
    upgrade(url)
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
        _, key = create_key(session, "qingxi-qx", FIXED_NOW)
    body = {"sender": "qingxi-qx", "identifier": "OUTAGE-1", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
            "sent": FIXED_NOW.isoformat()}
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with TestClient(create_app(Settings(database_url=url), clock=lambda: FIXED_NOW)) as client:
            assert client.post("/api/v1/warnings", json=body, headers=headers).status_code == 202
            own_postgres.stop()  # bad input: the database goes away under a running server
            for method, path, kwargs in (
                    ("POST", "/api/v1/warnings", {"json": body | {"identifier": "OUTAGE-2"}}),
                    ("GET", "/api/v1/warnings", {}),
                    ("GET", "/api/v1/plans/preview", {"params": {"hazard": "rainstorm", "level": "red",
                                                                 "areas": "330599100"}})):
                response = client.request(method, path, headers=headers, **kwargs)
                assert response.status_code == 503, (path, response.text)
                assert 1 <= int(response.headers["Retry-After"]) <= 30
                assert "database is unavailable" in response.json()["error"]
                assert "数据库暂时不可用" in response.json()["error"]
    finally:
        engine_for(url).dispose()
