"""`jiaoying serve --workers N`: several API processes on one port in the production mode (how a
county takes a burst of webhook replies), refused in the embedded mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from dispatcher.db.migrate import upgrade
from tests.support.servers import free_port

SECRET = "workers-test-secret-" + "w" * 32


def _env(db: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    return clean | {"JIAOYING_DATABASE_URL": f"sqlite:///{db}", "JIAOYING_SECRET_KEY": SECRET, **extra}


def _api_processes(pid: int) -> set[int]:
    """The uvicorn worker processes under the supervisor (multiprocessing's own helpers left out)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if "resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_workers_are_refused_in_the_embedded_mode(tmp_path: Path) -> None:
    # bad input: --workers 2 without JIAOYING_BROKER_URL (each process would run its own engine)
    r = subprocess.run([sys.executable, "-m", "dispatcher", "serve", "--port", str(free_port()), "--workers", "2"],
                       cwd=tmp_path, env=_env(tmp_path / "jy.db"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    message = " ".join(r.stderr.split())
    assert "--workers needs the production mode (JIAOYING_BROKER_URL set)" in message
    assert "Traceback" not in r.stderr


def test_two_api_processes_share_the_port_and_one_dying_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "jy.db"
    upgrade(f"sqlite:///{db}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    # The broker is never reached by the API (it only reads and writes the database).
    server = subprocess.Popen([sys.executable, "-m", "dispatcher", "serve", "--port", str(port), "--workers", "2"],
                              cwd=tmp_path, env=_env(db, JIAOYING_BROKER_URL="redis://127.0.0.1:1/0"),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _up(url), 60, "the API")
        _wait(lambda: len(_api_processes(server.pid)) == 2, 30, "two API processes")
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: httpx.get(f"{url}/healthz", timeout=10).status_code, range(64)))
        assert answers == [200] * 64
        victim = min(_api_processes(server.pid))
        os.kill(victim, signal.SIGKILL)
        # The other process goes on answering while the supervisor starts a new one.
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        _wait(lambda: len(_api_processes(server.pid) - {victim}) == 2, 60, "a new API process")
        assert all(httpx.get(f"{url}/healthz", timeout=10).status_code == 200 for _ in range(10))
        text = (tmp_path / "serve.log").read_text()
        assert "production, 2 API processes" in text
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()
