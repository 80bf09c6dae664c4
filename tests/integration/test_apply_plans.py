"""An apply's look-ups by people stay planned for their own values on PostgreSQL.

Each part of a warning's start asks, for its people, who this warning already reached, who this
event reached at which level, which acknowledgement codes they hold and who has an open call-out for
the hazard (``person_id = ANY(:array)``, person_id the second column of its indexes). psycopg
prepares a statement on its fifth run and PostgreSQL then switches to a generic plan, made without
the parameters' values: in the county's first big fan-out (statistics of an empty table) that plan
kept the array as a filter, searched element by element for every call-out of the warning so far —
35-250 ms a look-up, 2.8 s of the server's 13.5-15.2 s of statement time in the 10,000-official
benchmark. Planned with the values, the array is a constant, hashed once. The benchmark shows the
time (bench/README.md); this test holds the plan choice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from dispatcher.db.session import transaction
from dispatcher.services import callouts
from tests.conftest import Clock
from tests.support.bigsite import post_big_warning

pytestmark = pytest.mark.postgres

OFFICIALS = 600
PART = 40  # 15 parts: each look-up runs 15 times on one connection, past psycopg's and the plan cache's 5


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the plan cache in question is PostgreSQL's
def test_the_look_ups_by_people_are_never_planned_without_their_values(database_url: str, tmp_path: Path,
                                                                          clock: Clock) -> None:
    wid = post_big_warning(database_url, tmp_path / "big", OFFICIALS, clock())
    # One transaction, so one connection: its prepared statements are the ones looked at below.
    with transaction(database_url) as session:
        start = callouts.begin_start(session, wid, clock())
        assert start is not None
        parts = 0
        while not callouts.apply_part(session, start, clock(), part=PART):
            parts += 1
        plans = session.execute(text(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%person_id = ANY%'")).all()
    assert parts + 1 == OFFICIALS // PART
    assert start.applied.started == OFFICIALS
    # the four look-ups (already reached, levels in the event, acknowledgement codes in use, open
    # call-outs of the hazard), each prepared
    assert len(plans) == 4, plans
    for statement, generic, custom in plans:
        assert custom >= 10 and generic == 0, (statement, generic, custom)
