"""Engines and sessions. SQLite gets WAL and a busy timeout so the embedded worker and the API
can share the file; PostgreSQL gets a normal pool."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for SQLite's write lock
BACKGROUND = "jiaoying_background"  # execution option: the engine's passes (see WriteTurns)
_TURN = "jiaoying_turn"  # connection info: this connection holds the process's write turn
_QUERY_ONLY = "jiaoying_query_only"  # connection info: PRAGMA query_only is on
READ_ONLY = "jiaoying_read_only"  # execution option: begin the SQLite transaction without the write lock


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT})
        turns = write_turns(url)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        # Single writer: every transaction takes the write lock up front, so two writers queue
        # behind each other instead of failing on a stale snapshot — in this process in the
        # order WriteTurns gives, from other processes through the busy timeout. WAL keeps
        # readers unblocked: a transaction opened with write=False reads one snapshot and takes
        # no lock, so it neither waits for a writer nor holds one up.
        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            options = conn.get_execution_options()
            read_only = bool(options.get(READ_ONLY))
            if conn.info.get(_QUERY_ONLY, False) != read_only:  # a read-only transaction cannot write by mistake
                conn.exec_driver_sql(f"PRAGMA query_only = {int(read_only)}")
                conn.info[_QUERY_ONLY] = read_only
            if read_only:
                conn.exec_driver_sql("BEGIN")
                return
            turns.acquire(background=bool(options.get(BACKGROUND)))
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                turns.release()
                raise
            conn.info[_TURN] = True

        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _end(conn):  # type: ignore[no-untyped-def]
            if conn.info.pop(_TURN, False):
                turns.release()

        # A connection lost mid-transaction never commits or rolls back: its turn is given back
        # when it leaves the pool's hands, or every writer in the process would wait for it.
        @event.listens_for(engine, "checkin")
        @event.listens_for(engine, "invalidate")
        def _lost(_dbapi_conn, record, *_):  # type: ignore[no-untyped-def]
            if record.info.pop(_TURN, False):
                turns.release()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class _Waiter:
    __slots__ = ("since",)

    def __init__(self, since: float) -> None:
        self.since = since


class WriteTurns:
    """The writers of one SQLite file in this process take turns: requests first, then the engine.

    SQLite's write lock is not fair: a writer that finds it taken sleeps in the busy handler and
    polls, and the engine's threads, releasing and retaking it back to back, could keep a request
    (a warning posted, an acknowledgement) waiting for seconds. Here a request waits only for the
    transaction in progress and the requests ahead of it; the engine's passes (``background``) go
    next, except that one kept waiting longer than ``patience`` goes first, so a flood of
    acknowledgements cannot stop the escalation timers. Each kind is served in arrival order."""

    def __init__(self, timeout: float = SQLITE_BUSY_TIMEOUT, patience: float = 0.2) -> None:
        self.timeout, self.patience = timeout, patience
        self._cond = threading.Condition()
        self._busy = False
        self._requests: deque[_Waiter] = deque()
        self._background: deque[_Waiter] = deque()
        self._across: ProcessTurn | None = None

    def share(self, lock_file: str) -> None:
        """Take turns with the other processes that share ``lock_file`` too (the embedded runtime's
        process form): the holder of this process's turn also holds that file's lock."""
        if self._across is None or self._across.path != lock_file:
            self._across = ProcessTurn(lock_file)

    def acquire(self, background: bool = False) -> None:
        queue = self._background if background else self._requests
        me = _Waiter(time.monotonic())
        with self._cond:
            queue.append(me)
            if not self._cond.wait_for(lambda: not self._busy and self._next_up() is me, self.timeout):
                queue.remove(me)
                self._cond.notify_all()
                raise TimeoutError(f"the database stayed locked for {self.timeout:.0f} s")
            queue.popleft()
            self._busy = True
        if self._across is not None:
            try:
                self._across.acquire(background)
            except BaseException:
                self.release(across=False)
                raise

    def release(self, across: bool = True) -> None:
        if across and self._across is not None:
            self._across.release()
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    @contextmanager
    def turn(self, background: bool = False) -> Iterator[None]:
        self.acquire(background)
        try:
            yield
        finally:
            self.release()

    def _next_up(self) -> _Waiter | None:
        if self._background and (not self._requests or
                                 time.monotonic() - self._background[0].since > self.patience):
            return self._background[0]
        return self._requests[0] if self._requests else None


class ProcessTurn:
    """The write turn between processes on one machine, requests first: an exclusive ``flock`` on
    a lock file beside the database, and a second file a request holds (shared) while it waits.

    SQLite's own busy handler makes a writer that finds the lock taken sleep and poll (1, 2, 5 …
    100 ms), so a process writing back to back kept the others out for up to a second at a time;
    a waiter here is woken by the kernel as soon as the lock is free. An engine pass (background)
    that finds a request waiting lets it go first, unless it has itself waited ``patience`` (as
    WriteTurns does within a process). The kernel drops the locks of a process that dies, so a
    killed worker never leaves the database locked. The wait has no timeout of its own: the lock is
    held only for a SQLite write transaction, which SQLite's busy timeout already bounds."""

    POLL = 0.0005  # seconds between looks while a request waits ahead of an engine pass

    def __init__(self, path: str, patience: float = 0.2) -> None:
        self.path, self.patience = path, patience
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._write = os.open(path, flags, 0o600)
        # Separate open files for the two roles: flock locks belong to an open file, and a second
        # lock taken through the same one would convert the first instead of waiting for it.
        self._asking = os.open(f"{path}.requests", flags, 0o600)
        self._yielding = os.open(f"{path}.requests", flags, 0o600)

    def acquire(self, background: bool = False) -> None:
        if background:
            self._let_requests_go_first()
            fcntl.flock(self._write, fcntl.LOCK_EX)  # blocks without the GIL
            return
        fcntl.flock(self._asking, fcntl.LOCK_SH)  # "a request is waiting", seen by the other processes
        try:
            fcntl.flock(self._write, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._asking, fcntl.LOCK_UN)

    def release(self) -> None:
        fcntl.flock(self._write, fcntl.LOCK_UN)

    def _let_requests_go_first(self) -> None:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                fcntl.flock(self._yielding, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a request of another process is waiting for the write lock
                if time.monotonic() >= deadline:
                    return
                time.sleep(self.POLL)
                continue
            fcntl.flock(self._yielding, fcntl.LOCK_UN)
            return


def lock_file(url: str) -> str | None:
    """The file beside a SQLite database whose lock its writing processes take turns on (None: an
    in-memory database, which no other process can open)."""
    path = url.split("///", 1)[1].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    return f"{path}-writer.lock" if path and path != ":memory:" else None


@lru_cache(maxsize=8)
def write_turns(url: str) -> WriteTurns:
    return WriteTurns()


@lru_cache(maxsize=16)
def session_factory(url: str, background: bool = False) -> sessionmaker[Session]:
    bind = engine_for(url)
    return sessionmaker(bind.execution_options(**{BACKGROUND: True}) if background else bind,
                        expire_on_commit=False)


_READ_ONLY_SQLITE = {READ_ONLY: True}
_READ_ONLY_SERVER = {"isolation_level": "AUTOCOMMIT"}


@contextmanager
def transaction(url: str, write: bool = True, background: bool = False) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back on any error. ``write=False`` is for
    a transaction that only reads: on SQLite it does not take the single write lock; on PostgreSQL
    its statements run without BEGIN and COMMIT around them (autocommit), which at the default
    READ COMMITTED sees what a transaction would — each statement its own snapshot — and saves
    two round trips to the server. On a saturated machine each round trip waits for a core twice
    (the server's backend, then this thread): a posted warning made 26 of them, its key's look-up
    and its site check among them, while a fan-out had both cores busy. (``snapshot`` is the
    read of one snapshot.)
    ``background``: the engine's passes, which on SQLite let requests write first (WriteTurns)."""
    session = session_factory(url, background)()
    try:
        with session.begin():
            if not write:
                session.connection(execution_options=_READ_ONLY_SQLITE if url.startswith("sqlite")
                                   else _READ_ONLY_SERVER)
            yield session
    finally:
        session.close()


# PostgreSQL's deadlock_detected and serialization_failure: the server rolled the whole transaction
# back to let another go on; run again, it sees the other's commit and succeeds.
_RACES = ("40P01", "40001")


def lost_a_race(exc: BaseException) -> bool:
    """The transaction was chosen to give way to a concurrent one (a deadlock, a serialization
    failure): nothing of it was kept, and the same work may simply be run again."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _RACES
