"""The record is chained: editing or deleting an event is detected (see also test_record_integrity)."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import EventRow
from tests.integration.test_intake_api import URL, red_rainstorm


def post_and_cancel(client, auth) -> str:
    wid = client.post(URL, json=red_rainstorm(), headers=auth).json()["id"]
    client.post(URL, headers=auth, json={"sender": "qingxi-qx", "identifier": "QX-2026-0716-009",
                                         "msg_type": "cancel", "references": ["QX-2026-0716-001"],
                                         "sent": "2026-07-16T11:12:00+08:00"})
    return wid


def test_an_untouched_record_verifies(client, auth, database_url) -> None:
    wid = post_and_cancel(client, auth)
    with transaction(database_url) as s:
        assert record_repo.verify(s, wid) == []
        assert len(record_repo.events(s, wid)) == 3


def test_an_edited_event_is_detected(client, auth, database_url) -> None:
    wid = post_and_cancel(client, auth)
    with transaction(database_url) as s:
        # bad input: someone rewrites who posted the warning
        s.execute(update(EventRow).where(EventRow.warning_id == wid, EventRow.seq == 1)
                  .values(actor="agency:someone-else"))
    with transaction(database_url) as s:
        assert record_repo.verify(s, wid) == ["event 1 (received) was changed after it was recorded"]


def test_a_deleted_event_is_detected(client, auth, database_url) -> None:
    wid = post_and_cancel(client, auth)
    with transaction(database_url) as s:
        s.execute(delete(EventRow).where(EventRow.warning_id == wid, EventRow.seq == 2))
    with transaction(database_url) as s:
        problems = record_repo.verify(s, wid)
    assert "event 2 is missing (next found is 3)" in problems
    assert "event 3 does not follow the event before it" in problems


def test_removing_the_last_event_is_detected(client, auth, database_url) -> None:
    wid = post_and_cancel(client, auth)
    with transaction(database_url) as s:
        last = s.scalar(select(EventRow.seq).where(EventRow.warning_id == wid).order_by(EventRow.seq.desc()))
        s.execute(delete(EventRow).where(EventRow.warning_id == wid, EventRow.seq == last))
    with transaction(database_url) as s:
        problems = record_repo.verify(s, wid)
    assert problems[0].startswith("the record should hold 3 events")
    # … and the warning's row says cancelled, which no event left on the record says any more
    assert f"warning {wid} is marked 'cancelled', but by the record it is 'active' (event 1)" in problems
