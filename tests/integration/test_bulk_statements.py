"""Statements over many rows (db/bulk.py) store and find exactly what the plain forms did.

On PostgreSQL they send the rows as one JSON text (``json_populate_recordset``) and lists of ids or
names as one array literal (``= ANY``): a wrong cast there would corrupt a call-out's frozen steps,
shift a time or find the wrong person, so each column kind is written and read back, on both
databases, through the functions the engine uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, select, text
from sqlalchemy.exc import StatementError

from dispatcher.db.bulk import among, insert_rows, update_rows
from dispatcher.db.queue import attempt_values, insert_attempts, insert_returning_ids
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from tests.conftest import FIXED_NOW

STEPS = [{"index": 0, "at": "PT0S", "to": ["self"], "channels": ["sms", "im"], "final": False},
         {"index": 1, "at": "PT5M", "to": ["deputy"], "channels": ["voice"], "note": "叫应 二次"}]


def _warning(session, warning_id: str = "w1") -> None:  # type: ignore[no-untyped-def]
    session.execute(text(
        """insert into warnings (id, sender, identifier, msg_type, "references", hazard, level, areas,
           headline, description, instruction, sent, drill, status, received_at, source_format, raw)
           values (:id, 's', :id, 'alert', '[]', 'rainstorm', 'red', '[]', 'h', '', '', :now, false,
                   'active', :now, 'json', '')"""), {"id": warning_id, "now": FIXED_NOW})


def _callout(person: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "warning_id": "w1", "record_id": "w1", "person_id": person, "plan_id": "p", "hazard": "rainstorm",
        "level": "red", "priority": 4, "drill": False, "reason": "镇长", "state": "pending", "steps": STEPS,
        "next_step": 0, "next_due": FIXED_NOW, "ack_code": "1234", "started_at": FIXED_NOW, "room": None}
    row.update(extra)
    return row


def test_callouts_inserted_in_bulk_read_back_as_written(database_url: str) -> None:
    east8 = timezone(timedelta(hours=8))
    rows = [_callout("p1"), _callout("p2", drill=True, next_due=None, room="town-1"),
            _callout("p3", next_due=datetime(2026, 7, 1, 20, 0, tzinfo=east8), steps=[]),
            _callout("p4", next_due=datetime(2026, 7, 1, 20, 0, 0, 7, tzinfo=east8))]
    with transaction(database_url) as session:
        _warning(session)
        ids = insert_returning_ids(session, CalloutRow.__table__, rows)
    assert len(set(ids)) == 4
    with transaction(database_url, write=False) as session:
        found = {c.person_id: c for c in session.scalars(select(CalloutRow).where(CalloutRow.id.in_(ids)))}
    assert [found[p].id for p in ("p1", "p2", "p3", "p4")] == ids  # ids in the rows' order
    assert found["p1"].steps == STEPS and found["p3"].steps == []  # the frozen steps, unicode and all
    assert found["p1"].next_due == FIXED_NOW and found["p2"].next_due is None
    assert found["p3"].next_due == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # the same instant, in UTC
    assert found["p4"].next_due == datetime(2026, 7, 1, 12, 0, 0, 7, tzinfo=UTC)  # to the microsecond
    assert (found["p1"].drill, found["p2"].drill) == (False, True)
    assert (found["p1"].room, found["p2"].room) == (None, "town-1")


def test_attempts_with_a_key_already_there_are_skipped_not_doubled(database_url: str) -> None:
    with transaction(database_url) as session:
        _warning(session)
        [callout_id] = insert_returning_ids(session, CalloutRow.__table__, [_callout("p1")])
        callout = session.get(CalloutRow, callout_id)
        first = [attempt_values(callout, f"k{n}", 0, "alert", "sms", "p1", FIXED_NOW) for n in range(3)]
        assert insert_attempts(session, first) == 3
    with transaction(database_url) as session:
        callout = session.get(CalloutRow, callout_id)
        again = [attempt_values(callout, f"k{n}", 0, "alert", "sms", "p1", FIXED_NOW) for n in range(2, 5)]
        assert insert_attempts(session, again) == 2  # k2 was there: a retried step never doubles
        assert sorted(session.scalars(select(AttemptRow.key))) == ["k0", "k1", "k2", "k3", "k4"]


def test_update_rows_sets_each_rows_own_values_and_nulls(database_url: str) -> None:
    later = FIXED_NOW + timedelta(seconds=30)
    with transaction(database_url) as session:
        _warning(session)
        [callout_id] = insert_returning_ids(session, CalloutRow.__table__, [_callout("p1")])
        callout = session.get(CalloutRow, callout_id)
        insert_attempts(session, [attempt_values(callout, f"k{n}", 0, "alert", "sms", "p1", FIXED_NOW)
                                  for n in range(4)])
        ids = sorted(session.scalars(select(AttemptRow.id)))
        session.execute(AttemptRow.__table__.update().values(lease_until=later, worker="w"))
        update_rows(session, AttemptRow.__table__, [
            {"id": ids[0], "status": "sent", "provider_id": "SM1", "error": None, "sent_at": later,
             "lease_until": None},
            {"id": ids[2], "status": "queued", "provider_id": None, "error": "429 稍后再试", "sent_at": None,
             "lease_until": None}])
    with transaction(database_url, write=False) as session:
        rows = {a.id: a for a in session.scalars(select(AttemptRow))}
    assert (rows[ids[0]].status, rows[ids[0]].provider_id, rows[ids[0]].sent_at) == ("sent", "SM1", later)
    assert (rows[ids[2]].status, rows[ids[2]].error, rows[ids[2]].sent_at) == ("queued", "429 稍后再试", None)
    assert rows[ids[0]].lease_until is None and rows[ids[2]].lease_until is None
    # the rows not named are untouched
    assert [(rows[i].status, rows[i].lease_until) for i in (ids[1], ids[3])] == [("queued", later)] * 2


def test_among_finds_the_ids_given_and_nothing_for_none(database_url: str) -> None:
    with transaction(database_url) as session:
        _warning(session)
        ids = insert_returning_ids(session, CalloutRow.__table__, [_callout(f"p{n}") for n in range(5)])
    with transaction(database_url, write=False) as session:
        picked = [ids[1], ids[3], 2**31 - 1]
        assert sorted(session.scalars(select(CalloutRow.id).where(among(session, CalloutRow.id, picked)))) == \
            [ids[1], ids[3]]
        assert list(session.scalars(select(CalloutRow.id).where(among(session, CalloutRow.id, [])))) == []
        with pytest.raises(ValueError):  # integers only: a stray text never reaches the statement
            among(session, CalloutRow.id, [ids[0], "1; drop table callouts"])


def test_among_finds_people_whatever_their_ids_hold(database_url: str) -> None:
    # bad input for an array literal written by hand: quotes, backslashes, braces, commas, spaces, NULL
    people = ['p"1', "p\\2", "{p3}", "p,4", " p 5 ", "NULL", "王建国", "p'6", 'x\\"}']
    with transaction(database_url) as session:
        _warning(session)
        insert_returning_ids(session, CalloutRow.__table__, [_callout(p) for p in [*people, "other"]])
    with transaction(database_url, write=False) as session:
        found = sorted(session.scalars(select(CalloutRow.person_id).where(among(session, CalloutRow.person_id,
                                                                                people))))
        assert found == sorted(people)  # each exactly, and not "other"
        assert list(session.scalars(select(CalloutRow.id).where(among(session, CalloutRow.person_id, [])))) == []
        with pytest.raises(TypeError):  # bad input: a number where a person's id (text) is compared
            among(session, CalloutRow.person_id, ["p1", 7])


def test_rows_naming_different_columns_are_refused_and_nothing_is_written(database_url: str) -> None:
    """Bad input: one row leaves out a column the others set (it would take the column's default
    on one database and fail on the other): refused before anything is written."""
    with transaction(database_url) as session:
        _warning(session)
        [callout_id] = insert_returning_ids(session, CalloutRow.__table__, [_callout("p1")])
        callout = session.get(CalloutRow, callout_id)
        rows = [attempt_values(callout, "a", 0, "alert", "sms", "p1", FIXED_NOW),
                {k: v for k, v in attempt_values(callout, "b", 0, "alert", "voice", "p1", FIXED_NOW).items()
                 if k != "number"}]
        with pytest.raises(ValueError, match="same columns"):
            insert_rows(session, AttemptRow.__table__, rows, conflict="key")
        with pytest.raises(ValueError, match="same columns"):
            update_rows(session, AttemptRow.__table__, [{"id": 1, "status": "sent"}, {"id": 2}])
        assert list(session.scalars(select(AttemptRow.key))) == []


def test_a_time_without_its_offset_is_refused_and_nothing_is_written(database_url: str) -> None:
    """Bad input: a naive time (no UTC offset) in a time column, on insert and on update — refused
    on both databases (which instant it meant is unknown), and none of the rows is written."""
    naive = datetime(2026, 7, 1, 20, 0)
    with transaction(database_url) as session:
        _warning(session)
        [callout_id] = insert_returning_ids(session, CalloutRow.__table__, [_callout("p1")])
    # (SQLite's path refuses it in UTCDateTime, which SQLAlchemy reports as a StatementError)
    with pytest.raises((ValueError, StatementError), match="naive datetime refused"), \
            transaction(database_url) as session:
        insert_returning_ids(session, CalloutRow.__table__, [_callout("p2"), _callout("p3", next_due=naive)])
    with pytest.raises((ValueError, StatementError), match="naive datetime refused"), \
            transaction(database_url) as session:
        update_rows(session, CalloutRow.__table__, [{"id": callout_id, "next_due": naive}])
    with transaction(database_url, write=False) as session:
        assert list(session.scalars(select(CalloutRow.person_id))) == ["p1"]
        assert session.scalar(select(CalloutRow.next_due)) == FIXED_NOW


def test_a_value_json_cannot_hold_is_refused(database_url: str) -> None:
    """Bad input: a value with no JSON form (a set) in a call-out's frozen steps — refused, not
    written as something else; nothing is written."""
    with pytest.raises((TypeError, StatementError), match="set"), transaction(database_url) as session:
        _warning(session)
        insert_returning_ids(session, CalloutRow.__table__, [_callout("p1", steps=[{"to": {"self"}}])])
    with transaction(database_url, write=False) as session:
        assert list(session.scalars(select(CalloutRow.person_id))) == []


def test_a_column_whose_type_converts_values_is_refused_on_both_databases(database_url: str) -> None:
    """Bad input for this path: a column type that does more to a value than JSON can say (here raw
    bytes) — refused before any SQL, on SQLite too, so a caller does not find out in production."""
    blobs = Table("blobs", MetaData(), Column("id", Integer, primary_key=True), Column("body", LargeBinary))
    with transaction(database_url) as session:
        with pytest.raises(TypeError, match="blobs.body"):
            insert_rows(session, blobs, [{"id": 1, "body": b"\x00"}])
        with pytest.raises(TypeError, match="blobs.body"):
            update_rows(session, blobs, [{"id": 1, "body": b"\x00"}])
