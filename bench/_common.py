"""Shared helpers for bench/ratelimit.py, bench/drill.py and bench/faults.py (not for bench/fanout.py).

- ``machine()``: the machine line printed at the top of every run.
- ``write_site()``: a site folder (areas, people, duty, plans) from plain Python lists.
- ``Rig``: a fresh SQLite database with a site loaded, an in-memory ``SimOutbox`` as the fake
  provider (every message's arrival is ``SimSent.at_monotonic``), and the engine running in this
  process exactly as ``jiaoying serve`` runs it: ``EmbeddedRuntime`` (one scheduler thread, one
  worker thread, each with its own Engine); ``workers=2`` adds a second worker thread with its own
  Engine (with a redis:// broker URL each Engine has its own ``RedisPacer`` on the same Redis key,
  as two Celery worker processes would).
- ``window_counts()`` / ``pace()``: what a provider enforcing "N per window" would see.
- ``restart_postgres()``: a fast shutdown and a start again of a server from tests/support/servers.py
  (same data, same port), for the fault benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.support when run as bench/<name>.py

from dispatcher.channels.simulator import SimOutbox, SimSent  # noqa: E402
from dispatcher.config import Settings  # noqa: E402
from dispatcher.db.migrate import upgrade  # noqa: E402
from dispatcher.db.session import engine_for, transaction  # noqa: E402
from dispatcher.intake.schema import parse_warning_dict  # noqa: E402
from dispatcher.runtime.embedded import EmbeddedRuntime, default_adapters  # noqa: E402
from dispatcher.services.intake import receive_warning  # noqa: E402
from dispatcher.services.site import load_site_files  # noqa: E402

NOISE_NOTE = ("NOTE: 2 shared cores — the engine's threads, SQLite, Redis (with --redis) and this "
              "script's bookkeeping compete for them; timer jitter of a few ms is normal. Repeat before "
              "concluding.")


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: nproc {len(os.sched_getaffinity(0))} (of {os.cpu_count()} CPUs), {model}, "
            f"{mem_gb:.1f} GB RAM; load average {load}; Python {platform.python_version()}; "
            f"host speed: a 10M-addition loop in {host_speed():.2f} s, 200k JSON round trips of a small "
            f"dict in {host_speed_objects():.2f} s")


@dataclass(frozen=True)
class MachineTimes:
    """The whole machine's CPU time so far (/proc/stat, all cores, in clock ticks): busy (user, nice,
    system, interrupts), idle (idle and waiting for I/O), and stolen (the hypervisor ran something
    else on a core this machine wanted: a shared host's slow hour shows here)."""

    busy: int
    idle: int
    steal: int

    @classmethod
    def now(cls) -> MachineTimes:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return cls(user + nice + system + irq + softirq, idle + iowait, steal)

    def since(self, before: MachineTimes) -> str:
        """'busy B %, idle I %, stolen S %' of the cores' time between the two readings."""
        busy, idle, steal = self.busy - before.busy, self.idle - before.idle, self.steal - before.steal
        total = busy + idle + steal
        if total <= 0:
            return "no time passed"
        return f"busy {100 * busy / total:.0f} %, idle {100 * idle / total:.0f} %, stolen {100 * steal / total:.0f} %"


def host_speed() -> float:
    """Seconds one core takes for a fixed pure-Python loop, best of three: a shared host's speed moves
    by 2-3x from hour to hour, and figures from different hours compare only beside this."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def host_speed_objects() -> float:
    """Seconds one core takes to make, encode and decode 200,000 small dicts, best of three. The loop
    above moves least with the host: on 2026-12-03 it ran in 0.57 s (the fast hours' figure) while the
    engine and the fakes took 3-5 times their CPU of a fast hour, and this measure 1.9 s."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(200_000):
            json.loads(json.dumps({"id": i, "name": "责任人", "to": ["sms", "im"], "at": 1.5}))
        best = min(best, time.perf_counter() - started)
    return best


# -- site files --------------------------------------------------------------------------------

def write_site(folder: Path, areas: list[dict[str, Any]], roles: dict[str, str], people: list[dict[str, Any]],
               plans: list[dict[str, Any]], duty: tuple[str, str] | None = None, name: str = "压测县") -> Path:
    """``areas``: the county node with its ``children``; ``duty``: (leader, chief) on shift all week."""
    folder.mkdir(parents=True, exist_ok=True)
    dump = {"allow_unicode": True, "sort_keys": False}
    (folder / "areas.yaml").write_text(yaml.safe_dump({"site": "bench", "name": name, "areas": areas}, **dump))
    (folder / "people.yaml").write_text(yaml.safe_dump({"roles": roles, "people": people}, **dump))
    leader, chief = duty or (people[0]["id"], people[0]["id"])
    (folder / "duty.yaml").write_text(yaml.safe_dump({"weekly": [
        {"day": "mon", "start": "00:00", "hours": 168, "leader": leader, "chief": chief, "staff": []}]}, **dump))
    (folder / "plans.yaml").write_text(yaml.safe_dump({"plans": plans}, **dump))
    return folder


def person(pid: str, n: int, area: str, roles: Sequence[str], *, phone: bool = True, im: bool = False,
           superior: str | None = None) -> dict[str, Any]:
    number = f"+86138{n:08d}"
    out: dict[str, Any] = {"id": pid, "name": f"人员{pid}", "area": area, "roles": list(roles)}
    if phone:
        out["phone"] = number
    if im:
        out["im"] = {"dingtalk": number}
    if superior:
        out["superior"] = superior
    return out


# -- the engine in this process ----------------------------------------------------------------

def now_utc() -> datetime:
    return datetime.now(UTC)


class Rig:
    """One scenario: fresh database + site, the embedded runtime (+ extra workers), the outbox."""

    def __init__(self, site: Path, *, rate_limits: str, callee_spacing: float = 0.0, broker_url: str = "",
                 workers: int = 1, interval: float = 1.0, workdir: Path | None = None, sms_batch: int = 0) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jy-bench-rl-"))
        self.url = f"sqlite:///{self.workdir / f'bench-{time.time_ns()}.db'}"
        upgrade(self.url)
        with transaction(self.url) as session:
            load_site_files(session, site, now_utc())
        self.settings = Settings(database_url=self.url, simulator_url="", broker_url=broker_url,
                                 rate_limits=rate_limits, callee_spacing_seconds=callee_spacing)
        self.outbox = SimOutbox()
        # sms_batch > 0: SMS through a batch provider's simulator (one request per up to sms_batch
        # messages, as Aliyun's and Tencent's); each request's monotonic time and size lands here.
        self.requests: list[tuple[float, int]] = []
        factory = default_adapters(self.settings, self.outbox)
        if sms_batch:
            factory = self._batch_sms(factory, sms_batch)
        self.runtime = EmbeddedRuntime(self.settings, now_utc, factory, interval=interval)
        self.workers = workers
        # monotonic <-> wall clock, to compare arrivals with the due times the engine stores
        self.wall_offset = time.time() - time.monotonic()
        self._started = False

    def _batch_sms(self, factory: Any, size: int) -> Any:
        from dispatcher.channels.simulator import BatchSimulatorAdapter
        from dispatcher.domain.channels import Channel

        requests = self.requests

        class Recorded(BatchSimulatorAdapter):
            async def send_many(self, messages):  # type: ignore[no-untyped-def]
                requests.append((time.monotonic(), len(messages)))
                return await super().send_many(messages)

        def build() -> Any:
            return {**factory(), Channel.SMS: Recorded(Channel.SMS, self.outbox, batch_size=size)}

        return build

    def start(self) -> None:
        self.runtime.start()
        for i in range(1, self.workers):
            # Another worker with its own Engine (and its own pacer object), as a second Celery
            # worker process would be. EmbeddedRuntime has no public knob for this.
            thread = threading.Thread(target=self.runtime._worker, name=f"jiaoying-worker-{i + 1}",  # noqa: SLF001
                                      daemon=True)
            thread.start()
            self.runtime._threads.append(thread)  # noqa: SLF001 - stop() joins it with the others
        self._started = True
        time.sleep(0.5)  # the threads build their engines and make a first pass

    def post(self, hazard: str, level: str, areas: list[str], tag: str) -> float:
        """Store a warning as intake does and kick the runtime; returns the monotonic time of the commit."""
        body = {"sender": "bench-qx", "identifier": f"BENCH-{tag}-{time.time_ns()}", "msg_type": "alert",
                "hazard": hazard, "level": level, "areas": areas, "headline": f"压测 {hazard} {level}",
                "sent": now_utc().isoformat()}
        with transaction(self.url) as session:
            receive_warning(session, parse_warning_dict(body), key=None, source_format="json", raw=str(body),
                            now=now_utc())
        at = time.monotonic()
        self.runtime.kick()
        return at

    def wall(self, monotonic: float) -> float:
        return monotonic + self.wall_offset

    def queued(self) -> int:
        from sqlalchemy import func, select

        from dispatcher.db.tables import AttemptRow

        with transaction(self.url) as session:
            return session.scalar(select(func.count()).where(AttemptRow.status.in_(("queued", "sending")))) or 0

    def wait_until(self, done: Any, timeout: float, poll: float = 0.25) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            time.sleep(poll)
        return False

    def stop(self) -> None:
        if self._started:
            self.runtime.stop()
            alive = [t.name for t in self.runtime._threads if t.is_alive()]  # noqa: SLF001
            if alive:
                print(f"  WARNING: threads still running after stop(): {alive}", file=sys.stderr)
            self._started = False
        engine_for(self.url).dispose()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -- what the provider saw ---------------------------------------------------------------------

def step_of(sent: SimSent) -> int:
    """The plan step of a message, from its attempt key ``callout:step:channel:recipient``."""
    return int(sent.message.key.split(":")[1])


def window_counts(times: Sequence[float], window: float) -> list[int]:
    """For each arrival t (sorted), how many arrivals fall in the half-open window [t, t + window)."""
    ts = sorted(times)
    return [bisect_left(ts, t + window) - i for i, t in enumerate(ts)]


@dataclass
class Pace:
    n: int
    elapsed: float
    allowed: float  # per second
    achieved: float  # per second: (n - 1) / elapsed, the first message going at once
    used_pct: float
    violations: int
    worst: int  # the largest count in any window
    min_gap: float
    near_misses: int  # windows over the limit only by a message within 5 ms of the window's end

    def ok(self) -> bool:
        return self.violations == 0 and self.used_pct >= 95.0


def pace(times: Sequence[float], count: float, window: float) -> Pace:
    ts = sorted(times)
    n = len(ts)
    elapsed = ts[-1] - ts[0] if n > 1 else 0.0
    allowed = count / window
    achieved = (n - 1) / elapsed if elapsed > 0 else float("nan")
    counts = window_counts(ts, window)
    limit = int(count)
    violations = sum(1 for c in counts if c > limit)
    strict = window_counts(ts, window - 0.005)
    near = sum(1 for c, s in zip(counts, strict, strict=True) if c > limit >= s)
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    return Pace(n, elapsed, allowed, achieved, achieved / allowed * 100 if elapsed > 0 else float("nan"),
                violations, max(counts, default=0), min(gaps, default=float("nan")), near)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def fmt(value: float, spec: str = ".2f") -> str:
    return "-" if value != value else format(value, spec)


def render(rows: Iterable[Sequence[str]]) -> str:
    rows = [tuple(r) for r in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def redis_server() -> Any:
    """A Redis on 127.0.0.1 (tests/support/servers.py), stopped by its PID at the end."""
    from tests.support.servers import start_redis

    try:
        server = start_redis()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pytest's Skipped when redis-server is missing
        raise RuntimeError(f"cannot start Redis: {exc}") from None
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


# -- PostgreSQL restarts -----------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def postmaster_pid(server: Any) -> int:
    """The postmaster of a tests.support.servers.Postgres: its process, or (run as root, the
    server runs under ``runuser``) that process's ``postgres`` child."""
    pid = server.process.pid
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            argv0 = Path(f"/proc/{candidate}/cmdline").read_bytes().split(b"\0", 1)[0]
            if argv0.endswith(b"postgres"):
                return candidate
    raise RuntimeError(f"no postgres process under pid {pid}")


def stop_postgres(server: Any, timeout: float = 30.0) -> None:
    """Fast shutdown (SIGINT to the postmaster: open sessions are ended, then a clean stop)."""
    import signal
    import subprocess

    if server.process.poll() is not None:
        return
    os.kill(postmaster_pid(server), signal.SIGINT)
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # immediate shutdown, as `pg_ctl stop -m immediate`
        with contextlib.suppress(RuntimeError, ProcessLookupError):
            os.kill(postmaster_pid(server), signal.SIGQUIT)
        server.process.wait(timeout=timeout)


def start_postgres_again(server: Any, timeout: float = 30.0) -> None:
    """Start a stopped server again with the same command line (data folder, port, settings)."""
    import subprocess

    import psycopg

    server.process = subprocess.Popen(server.process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                            connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if server.process.poll() is not None:
                raise RuntimeError("postgres exited while starting again") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def restart_postgres(server: Any, down: float = 0.0) -> None:
    """Stop the server (fast shutdown), leave it down ``down`` seconds, start it again."""
    stop_postgres(server)
    time.sleep(down)
    start_postgres_again(server)


# -- py-spy -------------------------------------------------------------------------------------

def spy_on(pids: Iterable[int], prefix: Path, seconds: float = 120.0) -> list[tuple[Any, Path]]:
    """py-spy on each process (non-idle threads, raw stacks, 100 Hz) until ``spied`` stops them."""
    import subprocess

    spy = Path(sys.executable).parent / "py-spy"
    # BENCH_PY_SPY_GIL=1: only samples holding the GIL (CPU spent in Python), not threads waiting in C
    # (psycopg's wait for the server is not always seen as idle).
    gil = ["--gil"] if os.environ.get("BENCH_PY_SPY_GIL") == "1" else []
    started = []
    for pid in pids:
        out = prefix.with_name(f"{prefix.name}-{pid}.txt")
        proc = subprocess.Popen([str(spy), "record", "--nonblocking", "-p", str(pid), "-f", "raw", "-o", str(out),
                                 "-d", str(int(seconds)), "-r", "100", *gil],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        started.append((proc, out))
    time.sleep(0.5)
    return started


def spied(started: list[tuple[Any, Path]]) -> tuple[int, Counter[str], Counter[str]]:
    """Stop the recorders: the samples, and per frame (``func (package/module.py)``) those it was the
    innermost of (self) and those it was on the stack of (inclusive)."""
    import signal
    import subprocess

    for proc, _ in started:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
    for proc, _ in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for _, out in started:
        for line in out.read_text(errors="replace").splitlines() if out.exists() else []:
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            total += samples
            frames = [short_frame(f) for f in stack.split(";")]
            own[frames[-1]] += samples
            for frame in set(frames):
                under[frame] += samples
    return total, own, under


def short_frame(frame: str) -> str:
    """``func (path:line)`` as ``func (package/module.py)``: the path from site-packages/ or the project root."""
    root = str(Path(__file__).resolve().parent.parent)
    name, _, where = frame.partition(" (")
    path = where.split(":")[0].rstrip(")")
    for anchor in ("site-packages/", "/lib/python3.11/", f"{root}/"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            break
    return f"{name} ({path})"
