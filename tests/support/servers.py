"""Real servers for the tests, started on 127.0.0.1 in a temporary folder and stopped by PID.

A missing server binary skips the tests that need it locally and fails them under CI=true.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing(what: str) -> None:
    message = f"{what} is not installed (scripts/test installs it from Debian packages)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass
class Postgres:
    port: int
    datadir: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the 'postgres' account the package creates."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_postgres(*settings: str) -> Postgres:
    """A throw-away PostgreSQL on a free loopback port; ``settings`` are more ``name=value`` for ``-c``
    (the benchmarks' ``--pg-statements`` preloads pg_stat_statements this way)."""
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        missing("PostgreSQL (initdb/postgres)")
    assert initdb and postgres
    base = Path(tempfile.mkdtemp(prefix="jy-pg-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            missing("the 'postgres' system user")
        os.chown(base, user.pw_uid, user.pw_gid)
    subprocess.run(_as_postgres_user([initdb, "-D", str(datadir), "-U", "postgres", "--auth=trust",
                                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
                   check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        _as_postgres_user([postgres, "-D", str(datadir), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                           "-c", f"unix_socket_directories={base}", "-c", "fsync=off",
                           "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                           "-c", "max_connections=200", *(a for s in settings for a in ("-c", s))]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Postgres(port, datadir, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("postgres exited during start-up") from None
            time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError("postgres did not start within 30 s")
    _wait_accepting(server)
    return server


def _wait_accepting(server: Postgres) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres").close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class Redis:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            missing("Redis (redis-server)")
        assert binary
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis did not start within 15 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            s.recv(16)


def start_redis() -> Redis:
    server = Redis(free_port(), Path(tempfile.mkdtemp(prefix="jy-redis-")))
    server.start()
    return server
