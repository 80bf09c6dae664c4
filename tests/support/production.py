"""The production runtime's processes for end-to-end tests: Celery workers and `jiaoying scheduler`
started as `docker compose up` would start them (minus the API, which runs in the test), against a
real PostgreSQL and Redis. The fixtures that start them are in tests/e2e/conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.clock import system_clock, write_offset
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.services.keys import create_key
from dispatcher.services.site import load_site_files
from tests.conftest import FIXTURES, ROOT
from tests.fakes.simserver import SimServer
from tests.support.harness import Harness, Sent, engine_quiet, wait_until

E2E_SECRET = "celery-e2e-secret-" + "s" * 32  # the scheduler refuses to start without a real one
TINY_SITE = FIXTURES / "sites" / "tiny"


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
