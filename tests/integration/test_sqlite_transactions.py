"""SQLite transactions (db/session.py). In-process writers take turns (WriteTurns): a request (a
warning posted, an acknowledgement) waits only for the transaction in progress, not behind the
engine's queued passes; an engine pass kept waiting too long goes first; each kind is served in
arrival order. Read-only transactions (the board, /readyz, /metrics) neither wait for nor hold up
a writer, and cannot write."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pytest

from dispatcher.db.session import ProcessTurn, WriteTurns, lock_file


def queue_up(turns: WriteTurns, name: str, served: list[str], background: bool = False) -> threading.Thread:
    def write() -> None:
        with turns.turn(background):
            served.append(name)

    waiting = len(turns._requests) + len(turns._background)
    thread = threading.Thread(target=write)
    thread.start()
    deadline = time.monotonic() + 5
    while len(turns._requests) + len(turns._background) == waiting:  # until it is in the queue
        assert time.monotonic() < deadline
        time.sleep(0.002)
    return thread


def test_requests_go_before_queued_engine_passes_each_in_arrival_order() -> None:
    turns, served = WriteTurns(patience=5), []
    with turns.turn(background=True):  # the scheduler holds the database …
        threads = [queue_up(turns, "worker", served, background=True),  # … the worker queues,
                   queue_up(turns, "warning posted", served),  # then two requests come
                   queue_up(turns, "acknowledgement", served),
                   queue_up(turns, "scheduler again", served, background=True)]
    for thread in threads:
        thread.join(5)
    assert served == ["warning posted", "acknowledgement", "worker", "scheduler again"]


def test_an_engine_pass_kept_waiting_past_its_patience_goes_first() -> None:
    turns, served = WriteTurns(patience=0.05), []
    with turns.turn():
        threads = [queue_up(turns, "worker", served, background=True)]
        time.sleep(0.1)  # the worker has now waited longer than its patience
        threads.append(queue_up(turns, "acknowledgement", served))
    for thread in threads:
        thread.join(5)
    assert served == ["worker", "acknowledgement"]


def test_a_writer_that_gave_up_does_not_hold_up_the_ones_behind_it() -> None:
    turns, served = WriteTurns(timeout=0.2), []
    with turns.turn(background=True):
        # bad case: the database is held longer than a writer waits
        with pytest.raises(TimeoutError, match="locked for 0 s"), turns.turn():
            pass
        behind = queue_up(turns, "warning posted", served)
    behind.join(5)
    with turns.turn(background=True):  # and the queue keeps moving
        served.append("engine")
    assert served == ["warning posted", "engine"]


def test_a_connection_lost_mid_transaction_gives_its_turn_back(tmp_path) -> None:
    """Bad case: the connection is invalidated inside a write; the next writer must not wait."""
    from sqlalchemy import text

    from dispatcher.db.session import transaction

    url = f"sqlite:///{tmp_path}/turns.db"
    with transaction(url) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    with pytest.raises(Exception, match="rolled back|invalidated"), transaction(url) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.connection().invalidate()
        session.execute(text("INSERT INTO t VALUES (2)"))
    started = time.monotonic()
    with transaction(url) as session:
        session.execute(text("INSERT INTO t VALUES (3)"))
        assert session.scalar(text("SELECT group_concat(x) FROM t")) == "3"
    assert time.monotonic() - started < 5, "the next writer waited for the lost connection's turn"


def test_a_board_read_in_progress_does_not_hold_up_a_write(tmp_path) -> None:
    """The board's reads (its live stream polls twice a second) are read-only transactions: an
    acknowledgement written while one is open goes through at once, and the read keeps its snapshot."""
    from sqlalchemy import text

    from dispatcher.db.session import transaction

    url = f"sqlite:///{tmp_path}/board.db"
    with transaction(url) as session:
        session.execute(text("CREATE TABLE acks (who TEXT)"))
    written = threading.Event()

    def acknowledge() -> None:
        with transaction(url) as session:
            session.execute(text("INSERT INTO acks VALUES ('sun')"))
        written.set()

    with transaction(url, write=False) as board:
        assert board.scalar(text("SELECT count(*) FROM acks")) == 0
        writer = threading.Thread(target=acknowledge)
        writer.start()
        assert written.wait(10), "the write waited for the board's read to end"
        assert board.scalar(text("SELECT count(*) FROM acks")) == 0  # one snapshot for the whole read
    writer.join(5)
    with transaction(url, write=False) as board:
        assert board.scalar(text("SELECT count(*) FROM acks")) == 1


def test_a_read_only_transaction_that_tries_to_write_is_refused_and_changes_nothing(tmp_path) -> None:
    """Bad input: a write inside transaction(write=False) — refused on SQLite, so a read path that
    starts writing is caught by the tests instead of quietly racing for the lock."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from dispatcher.db.session import transaction

    url = f"sqlite:///{tmp_path}/ro.db"
    with transaction(url) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
    with pytest.raises(OperationalError, match="readonly"), transaction(url, write=False) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    with transaction(url) as session:  # the same pooled connection writes again afterwards
        session.execute(text("INSERT INTO t VALUES (2)"))
        assert session.scalar(text("SELECT group_concat(x) FROM t")) == "2"


# -- between processes (ProcessTurn: the embedded runtime's process mode) ----------------------

def _hold_and_hang(path: str, held: Any) -> None:  # in another process, killed while it holds the lock
    turn = ProcessTurn(path)
    turn.acquire(background=True)
    held.set()
    time.sleep(60)


def _engine_passes(path: str, held: Any, release: Any, order: str) -> None:  # in another process
    """An engine writing back to back: it releases the lock and at once wants it again."""
    turn = ProcessTurn(path, patience=10)
    turn.acquire(background=True)
    held.set()
    release.wait(30)
    turn.release()
    turn.acquire(background=True)
    with open(order, "a") as f:
        f.write("engine pass\n")
    turn.release()


def _requests_waiting(path: str) -> bool:
    fd = os.open(f"{path}.requests", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_request_goes_before_another_process_writing_back_to_back(tmp_path) -> None:
    path, order = str(tmp_path / "jy.db-writer.lock"), str(tmp_path / "order")
    spawn = multiprocessing.get_context("spawn")
    held, release = spawn.Event(), spawn.Event()
    engine = spawn.Process(target=_engine_passes, args=(path, held, release, order))
    engine.start()
    try:
        assert held.wait(30)
        turn = ProcessTurn(path)

        def request() -> None:
            turn.acquire()
            with open(order, "a") as f:
                f.write("request\n")
            time.sleep(0.05)  # the engine's next pass must not slip in meanwhile
            turn.release()

        waiting = threading.Thread(target=request)
        waiting.start()
        deadline = time.monotonic() + 10
        while not _requests_waiting(path):
            assert time.monotonic() < deadline, "the request never said it was waiting"
            time.sleep(0.005)
        release.set()  # the engine releases and asks again at once: the waiting request goes first
        waiting.join(10)
        engine.join(10)
        assert engine.exitcode == 0
    finally:
        release.set()
        engine.join(10)
    with open(order) as f:
        assert f.read().splitlines() == ["request", "engine pass"]


def test_a_process_killed_while_it_writes_does_not_leave_the_database_locked(tmp_path) -> None:
    path = str(tmp_path / "jy.db-writer.lock")
    spawn = multiprocessing.get_context("spawn")
    held = spawn.Event()
    victim = spawn.Process(target=_hold_and_hang, args=(path, held))
    victim.start()
    assert held.wait(30)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    got = threading.Event()
    turn = ProcessTurn(path)

    def write() -> None:
        turn.acquire()
        got.set()
        turn.release()

    threading.Thread(target=write, daemon=True).start()
    assert got.wait(5), "the dead process's lock was never released"


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:////srv/jy/jiaoying.db", "/srv/jy/jiaoying.db-writer.lock"),
    ("sqlite:///jy.db?timeout=5", "jy.db-writer.lock"),
    ("sqlite://", None), ("sqlite:///:memory:", None), ("postgresql+psycopg://u:p@db/jy", None)])
def test_the_lock_file_sits_beside_a_sqlite_file_only(url: str, expected: str | None) -> None:
    assert lock_file(url) == expected
