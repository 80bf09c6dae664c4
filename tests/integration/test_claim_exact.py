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

from dispatcher.db.queue import claim_queued_attempts
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.postgres

_ATTEMPT = """insert into attempts (key, callout_id, record_id, step_index, purpose, channel, recipient_id,
    priority, status, tries, created_at, updated_at)
    select {prefix} || g, 1 + (g % 3000), 'w1', 0, 'alert', {channel}, 'p' || (g % 3000), 4, '{status}', 0,
           now(), now() from generate_series(1, {n}) g"""


def _production_statistics(url: str) -> None:
    """50,000 sent attempts, ANALYZEd while nothing was queued; then 8,000 queued ones arrive."""
    with transaction(url) as session:
        session.execute(text(
            """insert into warnings (id, sender, identifier, msg_type, "references", hazard, level, areas,
               headline, description, instruction, sent, drill, status, received_at, source_format, raw,
               record_count, record_head)
               values ('w1', 's', 'i', 'alert', '[]', 'rainstorm', 'red', '[]', 'h', '', '', now(), false,
                       'active', now(), 'json', '', 0, '0')"""))
        session.execute(text(
            """insert into callouts (warning_id, record_id, person_id, plan_id, hazard, level, priority, drill,
               reason, state, steps, next_step, ack_code, started_at)
               select 'w1', 'w1', 'p' || g, 'plan', 'rainstorm', 'red', 4, false, '', 'notified', '[]', 0,
                      '1234', now() from generate_series(1, 3000) g"""))
        session.execute(text(_ATTEMPT.format(prefix="'old'", channel="'sms'", status="sent", n=50_000)))
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as conn:
        conn.execute("ANALYZE attempts")
    with transaction(url) as session:
        session.execute(text(_ATTEMPT.format(prefix="'new'", channel="(array['sms','voice','im','email'])[1 + g % 4]",
                                             status="queued", n=8_000)))


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
