#!/usr/bin/env python
"""Fault benchmark (SPEC section 7, "Faults"): a red warning's call-outs while things break.

    .venv/bin/python bench/faults.py [--quick] [--scenario NAME ...] [--keep]

Production mode, everything on 127.0.0.1 and started here (stopped by PID / process group at the
end, also on an error or Ctrl-C): PostgreSQL and Redis (tests/support/servers.py), the fake
provider (tests/fakes/simserver.py, every channel's endpoint through JIAOYING_SIMULATOR_URL), the
API (``python -m dispatcher serve`` with a broker URL, so it runs no engine), one ``jiaoying
scheduler`` and two Celery workers (``celery -A worker worker --pool prefork -c 1`` each). The
process helpers come from bench/fanout.py, which starts the same processes.

Each scenario: a fresh database holding a synthetic county (tests/support/bigsite.py) with a red
rainstorm plan — SMS + IM at once, voice after V s, the 未叫醒 list to the duty officer by SMS
after F s — and production table statistics: before the warning the attempts table gets a batch
of old 'sent' rows and is ANALYZEd, so the planner has never seen a queued row. Then the red
warning is posted and the scenario's faults are played:

  baseline        no faults; a slow provider (0.5-2.5 s a request)
  worker-kill     one worker SIGKILLed (its whole process group) every 15 s, the two in turn,
                  each started again at once
  redis           Redis stopped twice (once across the voice step's due time) and flushed once
  postgres        PostgreSQL restarted once (fast shutdown, down a few seconds) mid-fan-out
  scheduler-kill  the scheduler SIGKILLed while the warning's call-outs are being started in
                  parts of 1,000 (so this county is bigger and its plan has no voice step),
                  started again at once
  workers-down    both workers SIGKILLed before the voice step is due and kept down past it;
                  one comes back: how long until the overdue step is handed over (target 30 s)
  provider        500s, 429s (Retry-After 1) and hangs (half of them kept by the provider: the
                  "sent, answer lost" case) at first, then a 30 s total outage (connections
                  dropped unanswered) across the 未叫醒 step's due time
  acks            1,500 signed SMS replies ("1") in a burst through POST /webhooks/twilio/sms
                  (a valid X-Twilio-Signature each; the API has a Twilio auth token) while the
                  voice step comes due

Per scenario, one row:

- attempts: attempt rows of the warning (the history rows excluded).
- lost: keys that had to reach the provider and never did: every step of every call-out (frozen
  on the call-out when it started: recipients x channels), except, for an acknowledged call-out,
  the steps it stopped (attempts never made, or cancelled). A missing call-out counts its keys.
- dup: keys the provider received more than once.
- stuck: attempts still queued/sending at the end (the run waits until every call-out has
  ended and nothing is queued, bounded).
- timer max / p99 s: how late each escalation step ran (its attempts were created, or the
  call-out was marked unreached) after its due time, steps 1.. only; steps due while the
  scheduler or PostgreSQL was down are left out (and reported apart). Target: within 2 s.
- hand-over max s: the latest arrival of a key at the provider after its step's due time, over
  every step (what a person waits: includes the provider's latency, outages and leases;
  information only). The notes give step 0's p50/max and how many keys waited over 10 s, the
  retries on the record (why hand-overs were retried) and what the scheduler found in doubt
  when a dead worker's lease ran out.
- acks/s: replies answered per second in the burst (target 1,000).

Targets: zero lost, zero duplicated, nothing stuck, timers within 2 s outside the outage, every
escalation delivered after a provider outage, overdue steps handed over within 30 s of one worker
returning, 1,000 acks/s and an acknowledgement stopping the official's pending steps within 1 s.
--quick runs every scenario on a small county with shorter steps (V 15 s, F 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support and tests.fakes when run as bench/faults.py

from _common import fmt, machine, percentile, render, restart_postgres, spied, spy_on  # noqa: E402
from fanout import (  # noqa: E402 - bench/fanout.py starts the same processes
    AGENCY,
    PY,
    Backends,
    Processes,
    base_env,
    cpu_seconds,
    free_port,
    http_ok,
    interrupted,
    prepare,
    start_backends,
    start_sim,
    tree_pids,
    wait_for,
    warm_up_workers,
    warning_body,
)
from sqlalchemy import text  # noqa: E402

from dispatcher.db.session import engine_for, transaction  # noqa: E402
from dispatcher.db.tables import CalloutRow, WarningRow  # noqa: E402
from tests.support.bigsite import COUNTY, write_big_site  # noqa: E402

TIMER_TARGET_S = 2.0
RECOVERY_TARGET_S = 30.0
ACKS_TARGET = 1000.0
ACK_STOP_TARGET_S = 1.0
SLOW = (0.5, 2.5)  # seconds a request, the slow provider
BRISK = (0.1, 0.5)
FINAL = ("sent", "delivered", "failed", "cancelled")


@dataclass(frozen=True)
class Size:
    officials: int  # the county of most scenarios
    voice_after: int  # V, seconds
    final_after: int  # F, seconds
    history: int  # old 'sent' attempt rows before the warning
    start_officials: int  # scheduler-kill: enough for several start parts of 1,000
    ack_officials: int
    replies: int
    fault_count: int  # provider: how many 500s and how many 429s
    hangs: int
    settle: int  # seconds allowed after F for everything to end


FULL = Size(officials=1000, voice_after=30, final_after=60, history=200_000, start_officials=2500,
            ack_officials=1600, replies=1500, fault_count=150, hangs=20, settle=180)
QUICK = Size(officials=150, voice_after=15, final_after=30, history=20_000, start_officials=1100,
             ack_officials=300, replies=250, fault_count=40, hangs=6, settle=150)


# -- one scenario's world ----------------------------------------------------------------------

@dataclass
class Row:
    scenario: str
    officials: int = 0
    attempts: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    timer_max: float = float("nan")
    timer_p99: float = float("nan")
    handover_max: float = float("nan")
    acks_per_s: float = float("nan")
    misses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""


class Db:
    """One autocommit connection for polling; reconnects after a restart, None while it is down."""

    def __init__(self, url: str) -> None:
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self._conn: Any = None

    def rows(self, sql: str, *params: Any) -> list[Any] | None:
        import psycopg

        for _ in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
                return self._conn.execute(sql, params or None).fetchall()
            except psycopg.OperationalError:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
        return None

    def one(self, sql: str, *params: Any) -> Any:
        rows = self.rows(sql, *params)
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()


class Run:
    """Fresh database, site and processes for one scenario; the fault helpers; the bookkeeping."""

    def __init__(self, name: str, size: Size, backends: Backends, workdir: Path, latency: tuple[float, float]) -> None:
        self.name, self.size, self.backends, self.latency = name, size, backends, latency
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(self.workdir)
        self.row = Row(name)
        # Wall-clock spans of an outage: (start, end, what). Steps due while the timer runner itself
        # (the scheduler, PostgreSQL) was down are left out of the timer columns; Redis is not one.
        self.windows: list[tuple[float, float, str]] = []
        self.t0 = float("nan")
        self.url = ""
        self.db: Db | None = None
        self.workers: list[subprocess.Popen[bytes] | None] = [None, None]
        self.scheduler: subprocess.Popen[bytes] | None = None
        self._starts: dict[str, int] = {}
        self.twilio_token = secrets.token_hex(16)
        self.back_at: float | None = None  # workers-down: when one worker was started again
        self.outage_end: float | None = None  # provider: when the total outage ended
        self.acks: list[Ack] | None = None  # acks: each reply's answer
        self.api_proc: subprocess.Popen[bytes] | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def start(self, officials: int, plan: dict[str, Any]) -> None:
        site = self.workdir / "site"
        self.row.officials = write_big_site(site, officials)
        (site / "plans.yaml").write_text(yaml.safe_dump({"plans": [plan]}, allow_unicode=True, sort_keys=False))
        self.url = self.backends.database(self.name.replace("-", "_"))
        self.token = prepare(self.url, site)
        add_history(self.url, self.size.history, self.row.officials)
        self.db = Db(self.url)
        self.sim = start_sim(self.procs, base_env(), "simserver")
        httpx.post(f"{self.sim}latency", json={"min": self.latency[0], "max": self.latency[1]}, timeout=5)
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        self.env = base_env(JIAOYING_DATABASE_URL=self.url, JIAOYING_SIMULATOR_URL=self.sim,
                            JIAOYING_BROKER_URL=self.backends.redis.url, JIAOYING_ENVIRONMENT="production",
                            JIAOYING_ALLOW_SIMULATORS="1",
                            JIAOYING_PUBLIC_URL=self.api)
        # Only the API checks webhook signatures; the workers keep the simulator for every channel.
        self.api_proc = self.procs.start(
            "api", [PY, "-m", "dispatcher", "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(API_PROCESSES)],
            self.env | {"JIAOYING_TWILIO_AUTH_TOKEN": self.twilio_token})
        wait_for(lambda: http_ok(f"{self.api}/healthz"), 60, "the API to answer /healthz")
        for i in range(2):
            self.start_worker(i)
        self.start_scheduler()
        import redis as redis_client

        broker = redis_client.Redis.from_url(self.backends.redis.url)
        try:
            warm_up_workers(self.backends.redis.url, broker, 2)
        finally:
            broker.close()

    def _name(self, base: str) -> str:
        n = self._starts[base] = self._starts.get(base, 0) + 1
        return base if n == 1 else f"{base}-{n}"

    def start_worker(self, i: int) -> None:
        name = self._name(f"worker{i + 1}")
        self.workers[i] = self.procs.start(name, [
            PY, "-m", "celery", "-A", "worker", "worker", "--pool", "prefork", "-c", "1", "--loglevel", "WARNING",
            "-Q", "jiaoying", "-n", f"w{i + 1}@%h", "--without-mingle", "--without-gossip"], self.env)

    def start_scheduler(self) -> None:
        name = self._name("scheduler")
        self.scheduler = self.procs.start(name, [PY, "-m", "dispatcher", "scheduler", "--interval", "1"], self.env)
        wait_for(lambda: "scheduler started" in self.procs.log_text(name), 60, "the scheduler")

    def post_warning(self) -> None:
        with httpx.Client(timeout=30) as client:
            response = client.post(f"{self.api}/api/v1/warnings", json=warning_body(self.name),
                                   headers={"Authorization": f"Bearer {self.token}"})
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/v1/warnings answered {response.status_code}: {response.text[:300]}")
        self.t0 = time.time()
        self.warning_id = response.json()["id"]

    # -- faults ---------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.time() - self.t0

    def sleep_until(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the warning was accepted (at most 10 minutes)."""
        time.sleep(max(0.0, min(600.0, self.t0 + seconds - time.time())))

    def log(self, what: str) -> None:
        print(f"  [{self.name} +{self.elapsed():6.1f} s] {what}", file=sys.stderr, flush=True)

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        """SIGKILL a process we started and everything in its process group (a prefork worker's
        children too), as a crash or an OOM kill would."""
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def kill_worker(self, i: int, restart: bool = True) -> None:
        self.kill(self.workers[i])
        self.log(f"worker{i + 1} SIGKILLed" + ("; starting it again" if restart else ""))
        self.workers[i] = None
        if restart:
            self.start_worker(i)

    def wait_until(self, condition: Callable[[], bool], until: float, poll: float = 0.25) -> bool:
        """Poll until ``condition`` or ``until`` seconds after the warning."""
        while self.elapsed() < until:
            with contextlib.suppress(Exception):
                if condition():
                    return True
            time.sleep(poll)
        return False

    def count(self, where: str) -> int:
        assert self.db is not None
        value = self.db.one(f"SELECT count(*) FROM attempts WHERE key NOT LIKE 'hist:%' AND {where}")
        return int(value) if value is not None else -1

    # -- the end ---------------------------------------------------------------------------------

    def finished(self, expected_callouts: int) -> bool:
        assert self.db is not None
        rows = self.db.rows(
            "SELECT (SELECT count(*) FROM callouts WHERE plan_id <> 'history'),"
            " (SELECT count(*) FROM callouts WHERE plan_id <> 'history' AND state IN ('pending', 'notified')),"
            " (SELECT count(*) FROM attempts WHERE status IN ('queued', 'sending')),"
            " (SELECT count(*) FROM warnings WHERE applied_at IS NULL)")
        if not rows:
            return False
        started, still_open, in_flight, unapplied = rows[0]
        return started >= expected_callouts and not still_open and not in_flight and not unapplied

    def wait_finished(self) -> None:
        deadline = self.size.final_after + self.size.settle
        if not self.wait_until(lambda: self.finished(self.row.officials), deadline, poll=0.5):
            self.row.notes.append(f"not finished {deadline} s after the warning (see stuck)")
        time.sleep(1.0)  # anything still in flight would show up as a duplicate

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
        self.procs.stop_all()
        if self.url:
            with contextlib.suppress(Exception):
                engine_for(self.url).dispose()
            with contextlib.suppress(Exception):
                self.backends.drop(self.url)


def plan(voice_after: int | None, final_after: int, step0: tuple[str, ...] = ("sms", "im")) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"after": "0", "channels": list(step0), "to": "self"}]
    if voice_after is not None:
        steps.append({"after": f"{voice_after}s", "channels": ["voice"], "to": "self"})
    return {"id": "rain-red", "name": "暴雨红色", "match": {"hazards": ["rainstorm"], "levels": ["red"]},
            "targets": [{"roles": ["village_flood_officer"], "scope": "affected"}], "steps": steps,
            "final": {"after": f"{final_after}s", "to": ["duty"], "channels": ["sms"]}}


def add_history(url: str, rows: int, officials: int) -> None:
    """Production statistics: ``rows`` old 'sent' attempts (of an old, acknowledged call-out),
    then ANALYZE — the planner's statistics never saw a queued row."""
    import psycopg

    old = datetime.now(UTC) - timedelta(days=40)
    with transaction(url) as session:
        warning = WarningRow(id="hist0000000000000000000000000000", sender=AGENCY, identifier="HIST-1",
                             msg_type="alert", references=[], hazard="rainstorm", level="blue", areas=[COUNTY],
                             headline="历史预警", sent=old, expires=old + timedelta(days=1), status="expired",
                             received_at=old, source_format="json", applied_at=old)
        session.add(warning)
        session.flush()
        callout = CalloutRow(warning_id=warning.id, record_id=warning.id, person_id="duty", plan_id="history",
                             hazard="rainstorm", level="blue", priority=1, state="acknowledged", steps=[],
                             next_step=1, next_due=None, ack_code="0000", started_at=old, notified_at=old,
                             acknowledged_at=old, closed_at=old)
        session.add(callout)
        session.flush()
        session.execute(text(
            "INSERT INTO attempts (key, callout_id, record_id, step_index, purpose, channel, recipient_id, priority,"
            " status, tries, provider, provider_id, created_at, sent_at, updated_at)"
            " SELECT 'hist:' || g, :cid, :rid, g % 3, 'alert', (ARRAY['sms', 'im', 'voice'])[1 + g % 3],"
            " 'p' || (1 + g % :people), 1, 'sent', 1, 'simulator', 'h' || g,"
            " :old + make_interval(secs => g), :old + make_interval(secs => g), :old + make_interval(secs => g)"
            " FROM generate_series(1, :n) AS g"),
            {"cid": callout.id, "rid": warning.id, "people": officials, "old": old, "n": rows})
    engine_for(url).dispose()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("ANALYZE")


# -- the scenarios -----------------------------------------------------------------------------

def baseline(run: Run) -> None:
    run.start(run.size.officials, plan(run.size.voice_after, run.size.final_after))
    run.post_warning()
    run.wait_finished()


def worker_kill(run: Run) -> None:
    size = run.size
    run.start(size.officials, plan(size.voice_after, size.final_after))
    run.post_warning()
    kills, at = 0, 3.0
    while at <= size.final_after + 15 and kills < 40:
        run.sleep_until(at)
        run.kill_worker(kills % 2)
        kills, at = kills + 1, at + 15
        if run.finished(run.row.officials):
            break
    run.row.notes.append(f"{kills} worker kills, 15 s apart")
    run.wait_finished()


def redis_faults(run: Run) -> None:
    size = run.size
    run.start(size.officials, plan(size.voice_after, size.final_after))
    redis = run.backends.redis
    run.post_warning()
    v = size.voice_after
    for down, up in ((v * 0.15, v * 0.45), (v - 2, v + v / 3)):
        run.sleep_until(down)
        redis.stop()
        run.log("Redis stopped")
        stopped = time.time()
        run.sleep_until(up)
        redis.start()
        run.log("Redis started again")
        run.windows.append((stopped, time.time(), "redis"))
    run.sleep_until(v + v * 2 / 3)
    redis.flush()
    run.log("Redis flushed")
    run.wait_finished()


def postgres_restart(run: Run) -> None:
    size = run.size
    run.start(size.officials, plan(size.voice_after, size.final_after))
    run.post_warning()
    run.sleep_until(max(3.0, size.voice_after * 0.2))
    stopped = time.time()
    run.log("PostgreSQL: fast shutdown")
    restart_postgres(run.backends.pg, down=5.0 if size is FULL else 3.0)
    run.log(f"PostgreSQL up again after {time.time() - stopped:.1f} s")
    run.windows.append((stopped, time.time(), "postgres"))
    run.wait_finished()


def scheduler_kill(run: Run) -> None:
    size = run.size
    run.start(size.start_officials, plan(None, size.voice_after, step0=("sms",)))
    run.post_warning()
    assert run.db is not None
    seen = 0
    while run.elapsed() < 120:
        seen = int(run.db.one("SELECT count(*) FROM callouts WHERE plan_id <> 'history'") or 0)
        if seen:
            break
        time.sleep(0.02)
    if 0 < seen < run.row.officials:
        killed = time.time()
        run.kill(run.scheduler)
        run.log(f"scheduler SIGKILLed with {seen} of {run.row.officials} call-outs started; starting it again")
        run.start_scheduler()
        run.windows.append((killed, time.time(), "scheduler"))
        run.row.notes.append(f"scheduler killed after {seen}/{run.row.officials} call-outs were started")
    else:
        run.row.misses.append(f"could not kill mid-start ({seen}/{run.row.officials} call-outs seen)")
    run.wait_finished()


def workers_down(run: Run) -> None:
    size = run.size
    v = size.voice_after
    run.start(size.officials, plan(v, size.final_after))
    run.post_warning()
    # Step 0 out first, so nothing is in flight when they die: this measures the timer, not leases.
    run.wait_until(lambda: run.count("step_index = 0 AND status IN ('queued', 'sending')") == 0
                   and run.count("step_index = 0") >= 2 * run.row.officials, v - 6)
    run.sleep_until(v - 6)
    for i in range(2):
        run.kill_worker(i, restart=False)
    run.sleep_until(v + (20 if size is FULL else 10))
    back = time.time()
    run.start_worker(0)
    run.log("worker1 started again (worker2 stays down)")
    officials = run.row.officials
    run.wait_until(lambda: run.count("step_index = 1 AND status IN ('sent', 'delivered')") >= officials,
                   run.elapsed() + 90)
    run.start_worker(1)
    run.log("worker2 started again")
    run.back_at = back
    run.wait_finished()


def provider_faults(run: Run) -> None:
    size = run.size
    run.start(size.officials, plan(size.voice_after, size.final_after))
    run.post_warning()
    run.sleep_until(1.0)
    with httpx.Client(timeout=5) as client:
        for _ in range(size.fault_count):
            client.post(f"{run.sim}fault", json={"status": 500, "count": 1})
            client.post(f"{run.sim}fault", json={"status": 429, "count": 1, "retry_after": 1})
        client.post(f"{run.sim}fault", json={"hang": True, "record": True, "count": size.hangs // 2})
        client.post(f"{run.sim}fault", json={"hang": True, "count": size.hangs - size.hangs // 2})
        run.log(f"{size.fault_count} x 500, {size.fault_count} x 429 and {size.hangs} hangs queued")
        run.sleep_until(size.final_after - 10)
        client.post(f"{run.sim}outage", json={"seconds": 30, "drop": True})
    run.outage_end = time.time() + 30
    run.log("provider outage: 30 s, every connection dropped")
    run.wait_finished()


@dataclass(frozen=True)
class Ack:
    phone: str
    started: float
    ended: float
    status: int
    acknowledged: bool


def acks(run: Run) -> None:
    size = run.size
    v = size.voice_after
    run.start(size.ack_officials, plan(v, size.final_after))
    run.post_warning()
    officials = run.row.officials
    # The replies come once each official's SMS is out (a reply matches an SMS that reached them)
    # and just before the voice step is due, so some arrive while it is being handed over.
    run.wait_until(lambda: run.count("step_index = 0 AND channel = 'sms' AND status IN ('sent', 'delivered')")
                   >= officials, v + 30)
    run.sleep_until(v - 2)
    phones = [f"+86138{n:08d}" for n in range(1, min(size.replies, officials) + 1)]
    run.log(f"{len(phones)} signed SMS replies, " + (f"sent at {ACK_RATE:g}/s whatever the answers (open loop)"
                                                      if ACK_RATE else "64 at a time"))
    assert run.api_proc is not None
    pg_root = run.backends.pg.process.pid
    api0, pg0 = cpu_seconds([run.api_proc.pid]), cpu_seconds([pg_root])
    waits: Counter[str] = Counter()
    done = threading.Event()
    sampler = threading.Thread(target=sample_waits, args=(run.url, done, waits), daemon=True)
    sampler.start()
    spies = spy_on(tree_pids(run.api_proc.pid), run.workdir / "py-spy-api") if PY_SPY else []
    try:
        run.acks = asyncio.run(burst(f"{run.api}/webhooks/twilio/sms", run.twilio_token, phones, rate=ACK_RATE))
    finally:
        done.set()
        sampler.join(timeout=10)
        if spies:
            run.row.notes.append(busiest_frames(spies))
    n = len(phones)
    api_ms = (cpu_seconds([run.api_proc.pid]) - api0) / n * 1000
    pg_ms = (cpu_seconds([pg_root]) - pg0) / n * 1000
    run.log("replies answered")
    samples = waits.pop("samples", 0)
    top = ", ".join(f"{w} {c / max(samples, 1):.1f}" for w, c in waits.most_common(6))
    run.row.notes.append(f"CPU per reply: API process {api_ms:.1f} ms, PostgreSQL {pg_ms:.1f} ms; PostgreSQL "
                         f"sessions per sample (every 50 ms) by what they were doing: {top or '-'}")
    run.wait_finished()


def busiest_frames(started: list[tuple[Any, Path]], top: int = 25) -> str:
    total, own, under = spied(started)
    if not total:
        return "py-spy recorded nothing (ptrace not permitted?)"
    lines = [f"py-spy, API processes during the burst: {total} samples"]
    lines += [f"  self {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines += [f"  incl {100 * c / total:5.1f}%  {f}" for f, c in under.most_common(top)]
    return "\n".join(lines)


def sample_waits(url: str, done: threading.Event, waits: Counter[str]) -> None:
    """While the burst runs: what the database's other sessions are doing (a lock, I/O, the CPU)."""
    db = Db(url)
    try:
        while not done.wait(0.05):
            rows = db.rows("SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU'), count(*)"
                           " FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
                           " AND backend_type = 'client backend' GROUP BY 1")
            waits["samples"] += 1
            for what, count in rows or ():
                waits[what] += count
            # Whose row they queue for: the table of every row lock waited on.
            for table_, count in db.rows("SELECT relation::regclass::text, count(*) FROM pg_locks"
                                         " WHERE NOT granted AND locktype = 'tuple' GROUP BY 1") or ():
                waits[f"row lock on {table_}"] += count
    finally:
        db.close()


async def burst(url: str, token: str, phones: list[str], concurrency: int = 64, rate: float | None = None,
                ) -> list[Ack]:
    """Post the signed replies: ``concurrency`` at a time (closed loop: a reply is sent when an earlier one is
    answered), or with ``rate`` the i-th at i/rate seconds whatever the answers (open loop, as a provider
    pushes its replies as they arrive; up to 1,000 connections)."""
    import aiohttp
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token)
    signed = []
    for phone in phones:
        params = {"AccountSid": "AC" + "0" * 32, "MessageSid": "SM" + secrets.token_hex(16), "From": phone,
                  "To": "+15005550006", "Body": "1", "NumMedia": "0"}
        signed.append((phone, urlencode(params), validator.compute_signature(url, params)))
    if rate:
        concurrency = 1000
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:

        t0 = time.monotonic() + 0.05

        async def one(n: int, phone: str, body: str, signature: str) -> Ack:
            if rate:
                await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            async with gate:
                started = time.time()
                try:
                    async with session.post(url, data=body, headers={
                            "Content-Type": "application/x-www-form-urlencoded",
                            "X-Twilio-Signature": signature}) as response:
                        answer = await response.text()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    answer, status = "", 0
                return Ack(phone, started, time.time(), status, "已确认收到" in answer)

        return list(await asyncio.gather(*(one(n, *s) for n, s in enumerate(signed))))


SCENARIOS: dict[str, tuple[Callable[[Run], None], tuple[float, float]]] = {
    "baseline": (baseline, SLOW),
    "worker-kill": (worker_kill, SLOW),
    "redis": (redis_faults, SLOW),
    "postgres": (postgres_restart, SLOW),
    "scheduler-kill": (scheduler_kill, BRISK),
    "workers-down": (workers_down, BRISK),
    "provider": (provider_faults, BRISK),
    "acks": (acks, BRISK),
}


# -- what happened -----------------------------------------------------------------------------

def ts(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


@dataclass(frozen=True)
class StepRun:
    """One step of one call-out: when it was due, when it ran, its keys."""

    callout: int
    index: int
    due: float
    ran: float | None  # None: it never ran (the call-out was acknowledged first)
    keys: tuple[str, ...]
    final: bool


def assess(run: Run) -> None:
    """Compare what the database says should have gone out with what the provider received."""
    assert run.db is not None
    row = run.row
    callouts = run.db.rows("SELECT id, person_id, state, steps, acknowledged_at, unreached_at FROM callouts"
                           " WHERE plan_id <> 'history' ORDER BY id")
    attempts = run.db.rows("SELECT key, callout_id, step_index, status, created_at FROM attempts"
                           " WHERE key NOT LIKE 'hist:%'")
    if callouts is None or attempts is None:
        raise RuntimeError("the database is not answering at the end")
    arrivals: dict[str, list[float]] = httpx.get(f"{run.sim}arrivals", timeout=30).json()["keys"]
    by_key = {a[0]: a for a in attempts}
    created: dict[tuple[int, int], float] = {}
    for _, callout_id, step_index, _, created_at in attempts:
        slot = (callout_id, step_index)
        created[slot] = min(created.get(slot, float("inf")), ts(created_at))
    row.attempts = len(attempts)

    expected: set[str] = set()
    steps_run: list[StepRun] = []
    keys_per_callout = 0
    for callout_id, _, _, steps, acknowledged_at, unreached_at in callouts:
        every = []
        for step in steps:
            keys = tuple(f"{callout_id}:{step['index']}:{ch}:{r}"
                         for r in step["recipients"] for ch in step["channels"])
            every.extend(keys)
            ran = ts(unreached_at) if step["final"] and unreached_at else created.get((callout_id, step["index"]))
            steps_run.append(StepRun(callout_id, step["index"], ts(step["due"]), ran, keys, step["final"]))
        keys_per_callout = max(keys_per_callout, len(every))
        if acknowledged_at is None:
            expected.update(every)
        else:  # an acknowledgement stops what had not gone out
            expected.update(k for k in every if k in by_key and by_key[k][3] != "cancelled")

    people = [c[1] for c in callouts]
    missing, doubled = row.officials - len(set(people)), len(people) - len(set(people))
    lost = sorted(k for k in expected if k not in arrivals)
    row.lost = len(lost) + missing * keys_per_callout
    row.duplicated = sum(1 for times in arrivals.values() if len(times) > 1)
    in_flight = [a[0] for a in attempts if a[3] not in FINAL]
    row.stuck = len(in_flight)

    def window(due: float) -> tuple[float, float, str] | None:
        """The outage of the timer runner itself in which this step fell due, if any."""
        return next((w for w in run.windows if w[0] <= due <= w[1] and w[2] != "redis"), None)

    timed = [s for s in steps_run if s.ran is not None and s.index > 0]  # the escalation timers
    late = [s.ran - s.due for s in timed if window(s.due) is None]  # type: ignore[operator]
    if late:
        row.timer_max, row.timer_p99 = max(late), percentile(late, 99)
    handed = [(s.index, min(arrivals[k]) - s.due) for s in steps_run for k in s.keys if k in arrivals]
    if handed:
        row.handover_max = max(h for _, h in handed)
        first = [h for i, h in handed if i == 0]
        slow = Counter("step 0" if i == 0 else "escalations" for i, h in handed if h > 10)
        row.notes.append(f"hand-over after due: step 0 p50 {fmt(percentile(first, 50))} s, max "
                         f"{fmt(max(first, default=float('nan')))} s; over 10 s: "
                         + (", ".join(f"{n} {what}" for what, n in sorted(slow.items())) or "none"))

    if missing or doubled:
        row.notes.append(f"call-outs: {missing} officials never started, {doubled} started twice")
    if lost:
        row.notes.append(f"lost e.g. {lost[:3]} (statuses: {_statuses(lost, by_key)})")
    if in_flight:
        row.notes.append(f"stuck: {_statuses(in_flight, by_key)}")
    strays = [k for k in arrivals if k not in by_key]
    if strays:
        row.notes.append(f"{len(strays)} keys at the provider that are no attempt of ours, e.g. {strays[:3]}")
    sent_cancelled = [k for k, a in by_key.items() if a[3] == "cancelled" and k in arrivals]
    if sent_cancelled:
        row.notes.append(f"{len(sent_cancelled)} attempts recorded cancelled reached the provider anyway")
    still_open = sum(1 for c in callouts if c[2] in ("pending", "notified"))
    if still_open:
        row.notes.append(f"{still_open} call-outs still open at the end")
    for start, end, label in run.windows:
        inside = [s for s in timed if start <= s.due <= end]
        if not inside:
            continue
        worst = max(s.ran - s.due for s in inside)  # type: ignore[operator]
        if label == "redis":  # the timers do not need Redis: these count against the target
            row.notes.append(f"{len(inside)} steps due while Redis was down ({end - start:.0f} s): "
                             f"up to {worst:.2f} s late")
        else:
            back = max(s.ran for s in inside) - end  # type: ignore[type-var, operator]
            row.notes.append(f"{len(inside)} steps due while the {label} was down ({end - start:.0f} s): up to "
                             f"{worst:.1f} s late, all run {back:.1f} s after it was back (not in the timer columns)")

    retries = retry_reasons(run.db)
    if retries:
        row.notes.append("retries on the record: " + ", ".join(f"{n} {why}" for why, n in retries.most_common()))

    for what, value in (("lost", row.lost), ("duplicated", row.duplicated), ("stuck", row.stuck)):
        if value:
            row.misses.append(f"{value} {what}")
    if row.timer_max == row.timer_max and row.timer_max > TIMER_TARGET_S:
        row.misses.append(f"timers up to {row.timer_max:.1f} s late (target {TIMER_TARGET_S:g} s)")
    if run.back_at is not None:
        recovery(run, steps_run, arrivals)
    if run.outage_end is not None:
        after_outage(run, steps_run, arrivals)
    if run.acks is not None:
        acknowledgements(run, run.acks, callouts, by_key, arrivals)


RETRY_KINDS = (("circuit open", "circuit open"), ("answered 500", "500"), ("answered 429", "429"),
               ("timed out", "timed out"), ("unreachable", "unreachable/dropped"))


def retry_reasons(db: Db) -> Counter[str]:
    """Why hand-overs were retried, from the 'attempts' events the workers append to the record."""
    rows = db.rows("SELECT e->>'error' FROM events, json_array_elements((data::json)->'attempts') AS e"
                   " WHERE kind = 'attempts' AND e->>'status' = 'retrying'") or []
    reasons: Counter[str] = Counter()
    for (error,) in rows:
        reasons[next((label for needle, label in RETRY_KINDS if needle in (error or "")), (error or "?")[:60])] += 1
    return reasons


def recovery(run: Run, steps_run: list[StepRun], arrivals: dict[str, list[float]]) -> None:
    """workers-down: from one worker's return to the overdue voice step at the provider."""
    assert run.back_at is not None
    row = run.row
    step1 = [min(arrivals[k]) - run.back_at for s in steps_run if s.index == 1 for k in s.keys if k in arrivals]
    if not step1:
        row.misses.append("the overdue step never reached the provider")
        return
    first, last = min(step1), max(step1)
    row.notes.append(f"one worker back -> overdue voice step at the provider: first after {first:.1f} s, "
                     f"all {len(step1)} after {last:.1f} s (target {RECOVERY_TARGET_S:g} s)")
    if last > RECOVERY_TARGET_S:
        row.misses.append(f"the overdue step took {last:.1f} s after a worker returned")


def after_outage(run: Run, steps_run: list[StepRun], arrivals: dict[str, list[float]]) -> None:
    """provider: every escalation, the 未叫醒 list included, delivered once the outage is over."""
    assert run.outage_end is not None
    row = run.row
    keys = [k for s in steps_run if s.index > 0 and s.ran is not None for k in s.keys]
    final = [k for s in steps_run if s.final for k in s.keys]
    reached = [min(arrivals[k]) for k in keys if k in arrivals]
    final_reached = sum(1 for k in final if k in arrivals)
    last = max(reached) - run.outage_end if reached else float("nan")
    row.notes.append(f"after the 30 s outage: {len(reached)}/{len(keys)} escalation attempts at the provider, the "
                     f"last {fmt(last, '.1f')} s after it ended; 未叫醒 list {final_reached}/{len(final)}")
    if len(reached) < len(keys) or final_reached < len(final):
        row.misses.append("escalations not all delivered after the outage")


def acknowledgements(run: Run, results: list[Ack], callouts: list[Any], by_key: dict[str, Any],
                     arrivals: dict[str, list[float]]) -> None:
    """acks: the burst's rate, and whether each acknowledgement stopped its official's steps."""
    row = run.row
    ok = [a for a in results if a.status == 200]
    span = max(a.ended for a in results) - min(a.started for a in results)
    row.acks_per_s = len(ok) / span if span > 0 else float("nan")
    waits = [(a.ended - a.started) * 1000 for a in ok]
    acknowledged = {a.phone: a.ended for a in ok if a.acknowledged}
    if ACK_RATE and len(ok) > 1:  # open loop: the rate the answers came at, first to last (the server's pace)
        answers = sorted(a.ended for a in ok)
        row.acks_per_s = (len(ok) - 1) / (answers[-1] - answers[0]) if answers[-1] > answers[0] else float("nan")
    offered = f"offered at {ACK_RATE:g}/s, " if ACK_RATE else "64 in flight, "
    row.notes.append(f"{len(results)} replies ({offered}first sent to last answered {span:.2f} s): {len(ok)} "
                     f"answered 200, {len(acknowledged)} acknowledged; p50 {fmt(percentile(waits, 50), '.0f')} ms, "
                     f"p99 {fmt(percentile(waits, 99), '.0f')} ms")
    if row.acks_per_s != row.acks_per_s or row.acks_per_s < ACKS_TARGET:
        row.misses.append(f"{fmt(row.acks_per_s, '.0f')} acks/s (target {ACKS_TARGET:g})")
    if len(acknowledged) < len(results):
        row.misses.append(f"{len(results) - len(acknowledged)} replies not acknowledged")
    phone_of = {f"p{n}": f"+86138{n:08d}" for n in range(1, row.officials + 1)}
    acked_at = {c[0]: acknowledged[phone_of[c[1]]] for c in callouts if phone_of.get(c[1]) in acknowledged}
    after: list[float] = []  # seconds from an acknowledgement's answer to a later send of its call-out
    for key, attempt in by_key.items():
        if attempt[1] in acked_at and key in arrivals and min(arrivals[key]) > acked_at[attempt[1]]:
            after.append(min(arrivals[key]) - acked_at[attempt[1]])
    late = [x for x in after if x > ACK_STOP_TARGET_S]
    cancelled = sum(1 for a in by_key.values() if a[1] in acked_at and a[3] == "cancelled")
    voice_made = {a[1] for a in by_key.values() if a[2] == 1}
    never = sum(1 for c in acked_at if c not in voice_made)
    row.notes.append(f"after the acknowledgements: {never} voice steps never ran, {cancelled} queued attempts "
                     f"cancelled, {len(after)} sends still arrived (in flight), {len(late)} of them more than "
                     f"{ACK_STOP_TARGET_S:g} s later (max {fmt(max(after, default=float('nan')), '.2f')} s)")
    if late:
        row.misses.append(f"{len(late)} sends > {ACK_STOP_TARGET_S:g} s after their acknowledgement")


def _statuses(keys: list[str], by_key: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for k in keys:
        status = by_key[k][3] if k in by_key else "no attempt row"
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


IN_DOUBT = re.compile(r"in-doubt attempts after a worker died: (\d+) already sent, (\d+) queued again")


def log_problems(run: Run) -> None:
    """Tracebacks and errors in the processes' logs: where to look first; and what the
    scheduler found in doubt (attempts a dead worker held)."""
    found = requeued = 0
    for log in sorted(run.workdir.glob("scheduler*.log")):
        for match in IN_DOUBT.finditer(log.read_text(errors="replace")):
            found, requeued = found + int(match[1]), requeued + int(match[2])
    if found or requeued:
        run.row.notes.append(f"in doubt after a lease ran out: {found} found at the provider (recorded sent), "
                             f"{requeued} queued again")
    for log in sorted(run.workdir.glob("*.log")):
        text_ = log.read_text(errors="replace")
        tracebacks = text_.count("Traceback (most recent call last)")
        errors = sum(1 for line in text_.splitlines() if " ERROR " in line or "ERROR/" in line)
        if tracebacks or errors:
            run.row.notes.append(f"{log.stem}.log: {tracebacks} tracebacks, {errors} ERROR lines")


# -- main --------------------------------------------------------------------------------------

def run_scenario(name: str, size: Size, backends: Backends, workdir: Path) -> Row:
    script, latency = SCENARIOS[name]
    run = Run(name, size, backends, workdir, latency)
    run.row.notes.append(f"provider latency {latency[0]:g}-{latency[1]:g} s")
    started = time.monotonic()
    try:
        backends.redis.flush()
        script(run)
        assess(run)
        log_problems(run)
    except Exception as exc:  # reported in the table; the logs are kept
        run.row.error = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            log_problems(run)
    finally:
        run.close()
    print(f"  {name}: done in {time.monotonic() - started:.0f} s"
          f"{'; ' + run.row.error if run.row.error else ''}", file=sys.stderr, flush=True)
    return run.row


def table(rows: list[Row]) -> str:
    lines = [("scenario", "officials", "attempts", "lost", "dup", "stuck", "timer max s", "timer p99 s",
              "hand-over max s", "acks/s", "targets")]
    for r in rows:
        verdict = "ERROR" if r.error else "met" if not r.misses else "MISSED"
        lines.append((r.scenario, str(r.officials), str(r.attempts), str(r.lost), str(r.duplicated), str(r.stuck),
                      fmt(r.timer_max), fmt(r.timer_p99), fmt(r.handover_max, ".1f"), fmt(r.acks_per_s, ".0f"),
                      verdict))
    out = [render(lines), ""]
    for r in rows:
        out += [f"{r.scenario}:"] + [f"  ERROR: {r.error}"] * bool(r.error) + [f"  MISSED: {m}" for m in r.misses]
        out += [f"  {n}" for n in r.notes]
    return "\n".join(out)


API_PROCESSES = 1  # API processes behind the port (jiaoying serve --workers)
PY_SPY = False  # acks: sample the API processes with py-spy during the burst
ACK_RATE: float | None = None  # acks: replies sent at this rate whatever the answers (open loop); None: 64 in flight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small county and short steps (V 15 s, F 30 s)")
    parser.add_argument("--scenario", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, site files)")
    parser.add_argument("--api-processes", type=int, default=1, help="jiaoying serve --workers (default 1)")
    parser.add_argument("--py-spy", action="store_true", help="acks: sample the API processes during the burst "
                                                              "(py-spy, 100 Hz) and print the busiest frames")
    parser.add_argument("--ack-rate", type=float, default=None,
                        help="acks: send the replies at this many per second whatever the answers (open loop, as a "
                             "provider pushes them) and report the rate the answers came at; default: 64 in flight")
    args = parser.parse_args(argv)
    global API_PROCESSES, PY_SPY, ACK_RATE
    API_PROCESSES, PY_SPY, ACK_RATE = args.api_processes, args.py_spy, args.ack_rate

    signal.signal(signal.SIGTERM, interrupted)
    size = QUICK if args.quick else FULL
    print(machine())
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {'--quick' if args.quick else 'full'}: "
          f"{size.officials} officials (V {size.voice_after} s, F {size.final_after} s), "
          f"{size.history:,} old 'sent' attempts ANALYZEd before each warning; {API_PROCESSES} API process(es)")
    print("NOTE: 2 shared cores — PostgreSQL, Redis, the API, the scheduler, two workers, the fake provider and "
          "this script compete for them; repeat before concluding.\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="jy-faults-"))
    rows: list[Row] = []
    backends: Backends | None = None
    stopped = False
    try:
        backends = start_backends()
        for name in args.scenario:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.append(run_scenario(name, size, backends, workdir))
    except KeyboardInterrupt:
        print("interrupted; stopping everything", file=sys.stderr)
        stopped = True
    except RuntimeError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 1
    finally:
        if backends is not None:
            backends.stop()
        if args.keep or any(r.error or r.misses for r in rows):
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if rows:
        print(table(rows))
    return 130 if stopped else 1 if any(r.error or r.misses for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
