"""The embedded runtime: the engine inside ``jiaoying serve``, with no broker and no other service.

By default (``JIAOYING_EMBEDDED_WORKER=thread``) a scheduler thread and a worker thread run in the
``serve`` process. Each owns an Engine (its own event loop and adapter clients). The worker sleeps
until it is kicked — by intake after a commit, or by the scheduler after it queued work — and at
least once a second regardless, so a lost kick only delays. While attempts are queued but held back
(a rate limit's next slot, a person called less than the callee spacing ago) it looks again every
``HELD_POLL`` seconds, as a Celery worker does: a call whose spacing ends must go then, not up to a
second later, or every later call to that person slips with it.

With ``JIAOYING_EMBEDDED_WORKER=process`` the same loops run in child processes of ``serve`` — one
scheduler and ``processes`` workers (``spawn``ed: fresh interpreters, never forks of a process that
runs threads) — and ``serve`` itself only answers requests. One Python process uses one core at a
time: in one process the API, the timers and the senders of a 10,000-official fan-out share it, and a
posted warning waits for the interpreter behind them. The children are woken by the same kicks
(multiprocessing events), started again when one dies (a dead worker's claimed attempts are settled
when their lease runs out, as after a Celery worker's death), and end when ``serve`` stops or dies.
Workers run at a lower CPU priority (``WORKER_NICE``) than the API and the timers. The processes take
turns on SQLite's write lock through a lock file beside the database, requests first
(``db.session.ProcessTurn``). Only the first worker sends the channels a rate limit, callee spacing
or a per-number limit paces: its meter is kept in memory (a Celery deployment shares one in Redis).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Protocol

from ..channels.registry import build_adapters
from ..channels.simulator import SimOutbox
from ..config import Settings
from ..db.session import lock_file, write_turns
from .engine import AdapterFactory, Engine

log = logging.getLogger("jiaoying.embedded")
HELD_POLL = 0.05  # seconds
RESTART_EVERY = 5.0  # seconds at least between two starts of a child process that keeps dying
STOP_WAIT = 15.0  # seconds the children get to finish the batch in hand when serve stops
# Call-outs started (and due steps run) per transaction by the scheduler process. With three processes
# writing, a posted warning waits for whichever transaction holds SQLite's lock: parts of 250 held
# it up to 45 ms (intake p99 57-65 ms in bench/carriers.py), parts of 100 up to 20 ms (p99 40 ms),
# at no cost to the fan-out. Workers keep claiming 500 at a time: 250 made the fan-out 25 % slower.
PROCESS_PART = 100
WORKER_NICE = 10  # sending yields the CPU to the API and the timers (a bulk fan-out can wait a moment)


class _Sleep(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...

    def clear(self) -> None: ...


class _Wake(Protocol):
    def set(self) -> None: ...


class Doorbell:
    """A wake-up from one process to another that never makes the ringer wait: a byte written into a
    pipe the sleeper polls. (A multiprocessing Event's ``set`` waits until every sleeper has woken:
    with the workers busy at a lower CPU priority, a posted warning's kick waited for them.)"""

    def __init__(self, context: BaseContext) -> None:
        self._reader, self._writer = context.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)  # a full pipe already holds a wake-up

    def set(self) -> None:
        with contextlib.suppress(OSError):  # full (the sleeper will wake anyway), or the sleeper is gone
            os.write(self._writer.fileno(), b"!")

    def wait(self, timeout: float | None = None) -> bool:
        if not self._reader.poll(timeout):
            return False
        with contextlib.suppress(OSError):
            os.read(self._reader.fileno(), 65536)  # every ring so far: one wake-up
        return True

    def clear(self) -> None:
        """Nothing to do: ``wait`` takes the rings it woke for."""


class Bells:
    """Rings every doorbell of a group (all the worker processes)."""

    def __init__(self, bells: list[Doorbell]) -> None:
        self.bells = bells

    def set(self) -> None:
        for bell in self.bells:
            bell.set()


@dataclass
class _Child:
    role: str  # "scheduler" or "worker"
    number: int
    bell: Doorbell
    process: BaseProcess | None = None
    started: float = 0.0


class EmbeddedRuntime:
    def __init__(self, settings: Settings, clock: Callable[[], datetime], adapters: AdapterFactory,
                 interval: float = 1.0, processes: int = 0) -> None:
        """``processes`` > 0: the scheduler and that many workers in child processes, built from
        ``settings`` with the default adapters and the system clock (so not with a test's clock or
        a demo's outbox); 0: threads of this process using ``clock`` and ``adapters``."""
        self.settings, self.clock, self.adapters, self.interval = settings, clock, adapters, interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._context = multiprocessing.get_context("spawn")
        self._ended = self._context.Event()
        self._children: list[_Child] = []
        self._work: _Wake
        self._tick: _Wake
        self._tick_sleep: _Sleep
        self._work_sleep: _Sleep
        if processes > 0:
            self._children = [_Child("scheduler", 0, Doorbell(self._context))] + [
                _Child("worker", n, Doorbell(self._context)) for n in range(processes)]
            self._tick = self._children[0].bell
            self._work = Bells([c.bell for c in self._children[1:]])
        else:
            tick, work = threading.Event(), threading.Event()
            self._tick, self._work, self._tick_sleep, self._work_sleep = tick, work, tick, work

    def kick(self) -> None:
        """New work may be waiting: a warning was stored, a step was brought forward or recalled.
        In the process form only the scheduler is rung, and it rings the workers after the pass it
        was woken for: every process woken from a request's thread may take its CPU for a moment
        (three of them added 2-4 ms to each posted warning)."""
        self._tick.set()
        if not self._children:
            self._work.set()

    def start(self) -> None:
        if self._children:
            turns_file = lock_file(self.settings.database_url)
            if turns_file is None:
                raise ValueError("JIAOYING_EMBEDDED_WORKER=process needs a SQLite database file: "
                                 "other processes cannot open this one")
            write_turns(self.settings.database_url).share(turns_file)
            for child in self._children:
                self._start_child(child)
            targets: list[tuple[str, Callable[[], None]]] = [("jiaoying-children", self._watch_children)]
        else:
            targets = [("jiaoying-scheduler", self._scheduler), ("jiaoying-worker", self._worker)]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._ended.set()
        self._tick.set()
        self._work.set()  # every child looks at ``ended`` now, not at the end of its wait
        for thread in self._threads:
            thread.join(timeout=10)
        deadline = time.monotonic() + STOP_WAIT
        for child in self._children:
            process = child.process
            if process is None:
                continue
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("the %s process %s did not stop within %.0f s; killing it", child.role, process.pid,
                          STOP_WAIT)
                process.kill()
                process.join(timeout=5)

    def _start_child(self, child: _Child) -> None:
        child.started = time.monotonic()
        child.process = self._context.Process(
            target=run_child, name=f"jiaoying-{child.role}-{child.number}", daemon=True,
            args=(child.role, self.settings, child.bell, self._work, self._ended, os.getpid(), child.number == 0,
                  self.interval))
        child.process.start()
        log.info("embedded %s process %s started", child.role, child.process.pid)

    def _watch_children(self) -> None:
        """Start a child again when it died (not more often than every RESTART_EVERY seconds)."""
        while not self._stop.wait(1.0):
            for child in self._children:
                process = child.process
                if process is None or process.is_alive() or time.monotonic() - child.started < RESTART_EVERY:
                    continue
                log.error("the embedded %s process %s ended (exit code %s); starting another", child.role,
                          process.pid, process.exitcode)
                process.join(timeout=0)
                if not self._stop.is_set():
                    self._start_child(child)

    def _scheduler(self) -> None:
        scheduler_loop(Engine(self.settings, self.clock, self.adapters, name="embedded", on_work=self._work.set),
                       self._tick_sleep, self._work, self._stop.is_set, self.interval)

    def _worker(self) -> None:
        worker_loop(Engine(self.settings, self.clock, self.adapters, name="embedded"), self._work_sleep,
                    self._stop.is_set, self.interval)


def scheduler_loop(engine: Engine, tick: _Sleep, work: _Wake, over: Callable[[], bool], interval: float) -> None:
    kicked = False
    try:
        while not over():
            try:
                if engine.tick(rung=kicked).queued_work or kicked:  # a kick may have been for work already queued
                    work.set()
            except Exception:
                log.exception("scheduler pass failed; retrying")
            kicked = tick.wait(interval)
            tick.clear()
    finally:
        engine.close()


def worker_loop(engine: Engine, work: _Sleep, over: Callable[[], bool], interval: float) -> None:
    held = False
    try:
        while not over():
            work.wait(HELD_POLL if held else interval)
            work.clear()
            try:
                engine.drain(patience=1.0, stop=over)  # keep pacing rate-limited channels
                held = engine.waiting()
            except Exception:
                log.exception("worker pass failed; retrying")
    finally:
        engine.close()


def run_child(role: str, settings: Settings, bell: Doorbell, workers: Bells, ended: ProcessEvent,
              parent: int, first: bool, interval: float) -> None:
    """A child process of the process mode: the scheduler's or a worker's loop, until the runtime
    stops or the process that started it is gone (a SIGKILLed ``serve`` must not leave one behind)."""
    from ..clock import system_clock
    from ..gcpause import tune_for_service

    leaving = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: serve stops us
    signal.signal(signal.SIGTERM, lambda *_: leaving.set())  # finish the batch in hand, then go

    def over() -> bool:
        return ended.is_set() or leaving.is_set() or os.getppid() != parent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    turns_file = lock_file(settings.database_url)
    assert turns_file is not None, "checked by EmbeddedRuntime.start"
    write_turns(settings.database_url).share(turns_file)
    clock, adapters = system_clock(settings), default_adapters(settings)
    if role == "scheduler":
        engine = Engine(settings, clock, adapters, name="embedded", on_work=workers.set,
                        start_part=PROCESS_PART, due_batch=PROCESS_PART)
        tune_for_service()
        scheduler_loop(engine, bell, workers, over, interval)
        return
    os.nice(WORKER_NICE)
    # Only the first worker sends what the in-memory meter paces (see the module's docstring).
    engine = Engine(settings, clock, adapters, name=f"embedded:{os.getpid()}", paced=first)
    tune_for_service()
    worker_loop(engine, bell, over, interval)


def default_adapters(settings: Settings, outbox: SimOutbox | None = None) -> AdapterFactory:
    """Real adapters where credentials are set, simulators otherwise (recording into ``outbox``)."""
    box = outbox if outbox is not None else SimOutbox()
    return lambda: build_adapters(settings, box, sim_endpoint=settings.simulator_url or None)
