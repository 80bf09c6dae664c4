"""`JIAOYING_EMBEDDED_WORKER=process`: the embedded runtime's scheduler and workers as child
processes of `jiaoying serve` (dispatcher/runtime/embedded.py), sharing one SQLite file.

A real `serve` process, a real loopback simulator provider (tests/fakes/simserver.py) that counts
every key it receives, and real signals: what a county running `serve` would see."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.fakes.simserver import SimServer
from tests.support.bigsite import COUNTY, write_big_site
from tests.support.servers import free_port

SECRET = "processes-test-secret-" + "p" * 32
AGENCY = "qx-met"


def _children(pid: int) -> dict[int, str]:
    """The direct children of ``pid`` (multiprocessing's resource tracker left out): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if "resource_tracker" not in cmdline:
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Serve:
    """`python -m dispatcher serve` in the process mode on a SQLite file with a synthetic county."""

    def __init__(self, tmp: Path, sim_url: str, officials: int = 200, workers: int = 2) -> None:
        self.db = tmp / "jy.db"
        url = f"sqlite:///{self.db}"
        upgrade(url)
        write_big_site(tmp / "site", officials)
        with transaction(url) as session:
            load_site_files(session, tmp / "site", datetime.now(UTC))
            _, self.token = create_key(session, AGENCY, datetime.now(UTC))
        engine_for(url).dispose()
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")} | {
            "JIAOYING_DATABASE_URL": url, "JIAOYING_SECRET_KEY": SECRET, "JIAOYING_SIMULATOR_URL": sim_url,
            "JIAOYING_EMBEDDED_WORKER": "process", "JIAOYING_EMBEDDED_WORKER_PROCESSES": str(workers),
            "JIAOYING_ATTEMPT_LEASE_SECONDS": "4"}
        self.log = tmp / "serve.log"
        with self.log.open("w") as out:  # the child has its own copy of the file
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dispatcher", "serve", "--port", self.url.rsplit(":", 1)[1]], cwd=tmp,
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(self._up, 60, "the API")
        _wait(lambda: len(self.children()) == 1 + workers, 60, "the scheduler and worker processes")

    def _up(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def children(self) -> dict[int, str]:
        return _children(self.process.pid)

    def post(self, tag: str) -> str:
        body = {"sender": AGENCY, "identifier": f"PROC-{tag}-{time.time_ns()}", "msg_type": "alert",
                "hazard": "rainstorm", "level": "red", "areas": [COUNTY], "headline": "大县暴雨红色预警",
                "sent": datetime.now(UTC).isoformat()}
        r = httpx.post(f"{self.url}/api/v1/warnings", json=body, headers={"Authorization": f"Bearer {self.token}"},
                       timeout=10)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def query(self, sql: str) -> list[tuple]:  # type: ignore[type-arg]
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute(sql).fetchall()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def sim() -> SimServer:
    server = SimServer()
    server.start()
    yield server
    server.stop()


def _everything_sent(serve: Serve, attempts: int) -> bool:
    return serve.query("SELECT count(*) FROM attempts WHERE status = 'sent'")[0][0] == attempts


def test_a_warning_goes_out_once_from_the_worker_processes(tmp_path: Path, sim: SimServer) -> None:
    serve = Serve(tmp_path, sim.url, officials=200, workers=2)
    try:
        children = serve.children()
        assert len(children) == 3 and all("multiprocessing" in c for c in children.values())
        serve.post("once")
        _wait(lambda: _everything_sent(serve, 400), 60, "400 attempts sent (SMS and IM to 200 officials)")
        stats = sim.stats()
        assert stats["unique"] == 400 and stats["duplicates"] == []  # every message once
        # The sending was done by the children, not by serve: their heartbeats carry their pids.
        senders = {int(name.rsplit(":", 1)[1]) for (name,) in serve.query(
            "SELECT name FROM heartbeats WHERE role = 'worker'")}
        assert senders and senders <= set(children)
        assert serve.process.pid not in senders
    finally:
        serve.stop()


def test_a_killed_worker_process_is_replaced_and_the_next_warning_still_goes_out(tmp_path: Path,
                                                                                  sim: SimServer) -> None:
    serve = Serve(tmp_path, sim.url, officials=50, workers=1)
    try:
        before = serve.children()
        worker = next(pid for pid in before if pid != min(before))  # the scheduler is started first
        os.kill(worker, signal.SIGKILL)
        _wait(lambda: worker not in serve.children() and len(serve.children()) == 2, 30,
              "a new worker process in place of the killed one")
        serve.post("after-kill")
        _wait(lambda: _everything_sent(serve, 100), 60, "100 attempts sent by the new worker")
        assert sim.stats()["duplicates"] == []
        assert "ended (exit code -9); starting another" in serve.log.read_text()
    finally:
        serve.stop()


def test_serve_stopped_stops_its_children(tmp_path: Path, sim: SimServer) -> None:
    serve = Serve(tmp_path, sim.url, officials=10, workers=2)
    children = list(serve.children())
    os.kill(serve.process.pid, signal.SIGINT)  # Ctrl-C in the terminal (serve alone: the children ignore it)
    assert serve.process.wait(timeout=40) == 0
    _wait(lambda: not any(_alive(pid) for pid in children), 10, "the children to end with serve")


def test_serve_killed_leaves_no_sender_behind(tmp_path: Path, sim: SimServer) -> None:
    serve = Serve(tmp_path, sim.url, officials=10, workers=2)
    children = list(serve.children())
    os.kill(serve.process.pid, signal.SIGKILL)  # no chance to stop them
    serve.process.wait(timeout=10)
    _wait(lambda: not any(_alive(pid) for pid in children), 15, "the orphaned children to notice and end")


def test_process_mode_refuses_a_database_other_processes_cannot_open(tmp_path: Path) -> None:
    # bad input: JIAOYING_EMBEDDED_WORKER=process with an in-memory SQLite database
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")} | {
        "JIAOYING_DATABASE_URL": "sqlite://", "JIAOYING_SECRET_KEY": SECRET, "JIAOYING_EMBEDDED_WORKER": "process"}
    r = subprocess.run([sys.executable, "-m", "dispatcher", "serve", "--port", str(free_port())], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "JIAOYING_EMBEDDED_WORKER=process needs a SQLite database file" in " ".join(r.stderr.split())


def test_an_unknown_worker_kind_is_refused(tmp_path: Path) -> None:
    # bad input: JIAOYING_EMBEDDED_WORKER=fork (only thread or process)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")} | {
        "JIAOYING_DATABASE_URL": f"sqlite:///{tmp_path / 'jy.db'}", "JIAOYING_SECRET_KEY": SECRET,
        "JIAOYING_EMBEDDED_WORKER": "fork"}
    r = subprocess.run([sys.executable, "-m", "dispatcher", "serve", "--port", str(free_port())], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "JIAOYING_EMBEDDED_WORKER" in r.stderr and "'thread' or 'process'" in r.stderr
    assert not (tmp_path / "jy.db").exists()  # nothing was created


def test_a_doorbell_never_makes_the_ringer_wait(tmp_path: Path) -> None:
    import multiprocessing

    from dispatcher.runtime.embedded import Doorbell

    bell = Doorbell(multiprocessing.get_context("spawn"))
    assert bell.wait(0.01) is False  # nobody rang
    import threading

    ringer = threading.Thread(target=lambda: [bell.set() for _ in range(100_000)], daemon=True)
    ringer.start()  # far more rings than the pipe holds, with nobody listening: a blocking write would hang
    ringer.join(60)
    assert not ringer.is_alive()
    assert bell.wait(0) is True  # every ring so far is one wake-up ...
    assert bell.wait(0.01) is False  # ... taken at once
