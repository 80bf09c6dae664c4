"""SQLite transactions (db/session.py). In-process writers take turns (WriteTurns): a request (a
warning posted, an acknowledgement) waits only for the transaction in progress, not behind the
engine's queued passes; an engine pass kept waiting too long goes first; each kind is served in
arrival order. Read-only transactions (the board, /readyz, /metrics) neither wait for nor hold up
a writer, and cannot write."""

from __future__ import annotations

import threading
import time

import pytest

from dispatcher.db.session import WriteTurns


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
