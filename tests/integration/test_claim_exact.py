"""A claim takes exactly the batch it asked for, whatever plan the database chooses.

Production's attempts table is mostly 'sent': its statistics see no queued rows. With those
statistics PostgreSQL planned the old one-statement claim as a nested-loop semi-join that re-ran
the limited subquery per outer row — asked for 500, it took every queued row (8,000 here), one
worker held them all past its lease and another worker re-sent what the first was still sending.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from dispatcher.db.bulk import update_rows
from dispatcher.db.queue import claim_queued_attempts
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.postgres

_ATTEMPT = """insert into attempts (key, callout_id, record_id, step_index, purpose, channel, recipient_id,
    priority, status, tries, created_at, updated_at)
    select {prefix} || g, 1 + (g % 3000), 'w1', 0, 'alert', {channel}, 'p' || (g % 3000), 4, '{status}', 0,
           now(), now() from generate_series(1, {n}) g"""


def _analysed_then_arriving(url: str, analysed: str, arriving: str) -> None:
    """A warning and 3,000 call-outs; the ``analysed`` attempts, then ANALYZE; then the ``arriving`` ones
    (each an insert of ``_ATTEMPT``), which the table's statistics have not seen."""
    with transaction(url) as session:
        session.execute(text(
            """insert into warnings (id, sender, identifier, msg_type, "references", hazard, level, areas,
               headline, description, instruction, sent, drill, status, received_at, source_format, raw)
               values ('w1', 's', 'i', 'alert', '[]', 'rainstorm', 'red', '[]', 'h', '', '', now(), false,
                       'active', now(), 'json', '')"""))
        session.execute(text(
            """insert into callouts (warning_id, record_id, person_id, plan_id, hazard, level, priority, drill,
               reason, state, steps, next_step, ack_code, started_at)
               select 'w1', 'w1', 'p' || g, 'plan', 'rainstorm', 'red', 4, false, '', 'notified', '[]', 0,
                      '1234', now() from generate_series(1, 3000) g"""))
        session.execute(text(analysed))
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as conn:
        conn.execute("ANALYZE attempts")
    with transaction(url) as session:
        session.execute(text(arriving))


def _production_statistics(url: str) -> None:
    """50,000 sent attempts, ANALYZEd while nothing was queued; then 8,000 queued ones arrive."""
    _analysed_then_arriving(
        url, _ATTEMPT.format(prefix="'old'", channel="'sms'", status="sent", n=50_000),
        _ATTEMPT.format(prefix="'new'", channel="(array['sms','voice','im','email'])[1 + g % 4]", status="queued",
                        n=8_000))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the plan in question is PostgreSQL's
@pytest.mark.parametrize("channels, spacing", [
    (None, None), (["sms"], None), (["voice"], timedelta(seconds=30))])
def test_a_claim_takes_exactly_its_batch_with_production_statistics(database_url: str, channels, spacing) -> None:
    _production_statistics(database_url)
    lease = timedelta(seconds=60)
    with transaction(database_url) as session:
        first = claim_queued_attempts(session, FIXED_NOW, 500, "w-1", lease, channels, spacing)
    with transaction(database_url) as session:
        second = claim_queued_attempts(session, FIXED_NOW, 500, "w-2", lease, channels, spacing)
    assert len(first) == 500
    # with callee spacing the second claim skips people the first is calling: fewer, never more
    assert len(second) == 500 if spacing is None else 0 < len(second) <= 500
    assert not set(first) & set(second)
    with transaction(database_url, write=False) as session:
        held = dict(session.execute(select(AttemptRow.worker, func.count()).where(AttemptRow.status == "sending")
                                    .group_by(AttemptRow.worker)).all())
    assert held == {"w-1": 500, "w-2": len(second)}


def _young_statistics(url: str) -> None:
    """A county's first big warning: the attempts table was ANALYZEd at 2,000 rows, all sent (a
    drill, the roll-calls), and 20,000 queued ones have arrived since (autovacuum has not caught up)."""
    _analysed_then_arriving(url, _ATTEMPT.format(prefix="'a'", channel="'im'", status="sent", n=2_000),
                            _ATTEMPT.format(prefix="'b'", channel="'im'", status="queued", n=20_000))


def _reads(session, relation: str) -> int:  # type: ignore[no-untyped-def]
    """Rows (tuples) this transaction has read through ``relation`` (a table: by sequential scans)."""
    return session.scalar(text("select pg_stat_get_xact_tuples_returned(cast(:r as regclass))"), {"r": relation})


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the plans in question are PostgreSQL's
def test_claims_and_their_outcomes_go_by_id_in_a_young_table(database_url: str) -> None:
    """Each claim of 500 and the outcomes written for them read a few hundred rows, not the whole queue:
    with the statistics of a young table PostgreSQL once walked the queue index over every queued row
    for a claim's 500 ids (0.4 s a claim), and a hash join scanned every attempt for each outcome
    written. Eight rounds: the driver prepares a statement after its fifth run, and the server may
    then plan it once for all parameters."""
    _young_statistics(database_url)
    lease = timedelta(seconds=60)
    for round_ in range(8):
        with transaction(database_url) as session:
            before_queue, before_table = _reads(session, "ix_attempts_queue"), _reads(session, "attempts")
            ids = claim_queued_attempts(session, FIXED_NOW, 500, "w-1", lease)
            queue_read = _reads(session, "ix_attempts_queue") - before_queue
            update_rows(session, AttemptRow.__table__, [
                {"id": i, "status": "sent", "lease_until": None, "sent_at": FIXED_NOW} for i in ids])
            table_read = _reads(session, "attempts") - before_table
        assert len(ids) == 500
        assert queue_read < 5_000, f"round {round_}: the claim read {queue_read} queue entries for 500 attempts"
        assert table_read == 0, f"round {round_}: writing 500 outcomes scanned {table_read} rows of the table"
    with transaction(database_url, write=False) as session:
        assert session.scalar(select(func.count()).where(AttemptRow.status == "sent")) == 6_000
