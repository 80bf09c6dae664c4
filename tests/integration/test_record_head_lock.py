"""A worker recording what it sent never waits for a start holding its warning's row.

A big warning is started a part (up to a thousand officials) per transaction, each under the
warning's row lock, and its first parts' calls go out while the rest are being started. Every
worker finishing a batch appends to the warning's record. When the record's head was kept on the
warning's row, that append waited for the part in progress: 2-5 s of a 10,000-official fan-out on
PostgreSQL were workers waiting (bench/README.md), their next batches unclaimed. The head now has
its own row, and the start's lock (FOR NO KEY UPDATE) lets the event's foreign-key check through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.services import callouts, dispatch
from tests.conftest import Clock
from tests.support.bigsite import post_big_warning

pytestmark = pytest.mark.postgres

OFFICIALS = 60
PART = 20


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks: SQLite locks the database
def test_a_worker_finishes_its_batch_while_the_next_part_of_the_start_is_in_progress(
        database_url: str, tmp_path: Path, clock: Clock) -> None:
    wid = post_big_warning(database_url, tmp_path / "big", OFFICIALS, clock())
    with transaction(database_url) as session:
        start = callouts.begin_start(session, wid, clock())
        assert start is not None
    with transaction(database_url) as session:  # the first part is started and committed: its calls may go
        assert not callouts.apply_part(session, start, clock(), part=PART)
    now = clock()
    with transaction(database_url) as session:
        jobs = dispatch.claim(session, now, 100, "worker-a").jobs(None)
    assert jobs
    outcomes = [dispatch.Outcome(j, "simulator", provider_id=f"sim-{j.attempt_id}") for j in jobs]
    with transaction(database_url) as starting:  # the scheduler, in the middle of the second part:
        assert callouts.hold_for_start(starting, wid) is not None  # the part's lock on the warning's row
        with transaction(database_url) as worker:  # the worker, on its own connection, meanwhile
            worker.execute(text("SET LOCAL lock_timeout = '3s'"))  # before: it waited for the part's commit
            dispatch.finish(worker, outcomes, now, "worker-a")
    with transaction(database_url) as session:
        statuses = set(session.scalars(select(AttemptRow.status).where(
            AttemptRow.id.in_([j.attempt_id for j in jobs]))))
        notified = session.scalar(select(CalloutRow.id).where(CalloutRow.state == "notified").limit(1))
        kinds = [e.kind for e in record_repo.events(session, wid)]
        problems = record_repo.verify(session, wid)
    assert statuses == {"sent"} and notified is not None
    assert kinds.count("attempts") == 1
    assert problems == []  # the chain is whole: the worker's event in its place
