"""The door-to-door follow-up of an unreached official (services/follow_up.py), on SQLite and
PostgreSQL: on the record, read back per call-out, and every bad input refused with its reason in
Chinese and English, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow
from dispatcher.domain.callouts import AckVia
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, follow_up
from dispatcher.services.errors import NotFound
from dispatcher.services.follow_up import FollowUpRefused, Outcome, assign, clean, follow_ups, record_result
from tests.board.conftest import warning_body
from tests.conftest import Clock
from tests.e2e.conftest import engine, outbox, tiny_site  # noqa: F401 - fixtures
from tests.support.harness import settle_engine


@pytest.fixture
def unreached(tiny_site: str, clock: Clock, engine: Engine, auth: dict[str, str]) -> Iterator[dict[str, int]]:  # noqa: F811
    """The tiny county's red warning, nobody answering for 16 minutes but 周村长 (acknowledged at 1):
    孙镇长 and 郑防汛员 are unreached. Yields the call-out ids by person."""
    with TestClient(create_app(Settings(database_url=tiny_site), clock=clock)) as client:
        assert client.post("/api/v1/warnings", json=warning_body(clock()), headers=auth).status_code == 202
        settle_engine(engine)
        clock.now += timedelta(minutes=1)
        with transaction(tiny_site) as session:
            ack.acknowledge_reply(session, clock(), phone="+8613800000005", via=AckVia.SMS, body="收到")
        for _ in range(15):
            clock.now += timedelta(minutes=1)
            settle_engine(engine)
        with transaction(tiny_site) as session:
            rows = session.execute(select(CalloutRow.person_id, CalloutRow.id, CalloutRow.state)).all()
        assert {p: s for p, _, s in rows} == {"sun": "unreached", "zheng": "unreached", "zhou": "acknowledged"}
        yield {p: i for p, i, _ in rows}


def _record(url: str) -> tuple[str, int]:
    with transaction(url) as session:
        record = session.scalars(select(CalloutRow.record_id)).first()
        assert record is not None
        return record, record_repo.head(session, record).count


def test_a_follow_up_is_assigned_and_its_result_recorded_on_the_record(
        tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    sun = unreached["sun"]
    with transaction(tiny_site) as session:
        first = assign(session, clock(), sun, who=" 李书记 ", note="开车去镇政府宿舍", by="user:liu")
    clock.now += timedelta(minutes=12)
    with transaction(tiny_site) as session:
        result = record_result(session, clock(), sun, outcome="not_found", note="宿舍没人", by="user:liu")
    with transaction(tiny_site) as session:
        again = assign(session, clock(), sun, who="派出所民警", by="user:chen")
    clock.now += timedelta(minutes=20)
    with transaction(tiny_site) as session:
        found = record_result(session, clock(), sun, outcome=Outcome.REACHED, by="user:chen")
        read = follow_ups(session, first.record)
        check = record_repo.check(session, first.record)
    assert check.intact, check
    assert first.seq < result.seq < again.seq < found.seq
    visits = read[sun]["visits"]
    assert read[sun]["state"] == "reached" and unreached["zheng"] not in read
    assert [(v["who"], v["by"], v["note"]) for v in visits] == [("李书记", "user:liu", "开车去镇政府宿舍"),
                                                              ("派出所民警", "user:chen", "")]
    assert [r["outcome"] for r in visits[0]["results"]] == ["not_found"]
    assert [r["outcome"] for r in visits[1]["results"]] == ["reached"]
    with transaction(tiny_site) as session:
        events = {e.seq: e for e in record_repo.events(session, first.record)}
    assert events[first.seq].kind == "follow_up_assigned" and events[first.seq].actor == "user:liu"
    assert events[first.seq].data == {"callout": sun, "person": "sun", "who": "李书记", "note": "开车去镇政府宿舍"}
    assert events[found.seq].data["assigned"] == again.seq and events[result.seq].data["assigned"] == first.seq


def test_a_result_is_still_recorded_when_the_official_answered_meanwhile(
        tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    zheng = unreached["zheng"]
    with transaction(tiny_site) as session:
        assign(session, clock(), zheng, who="吴主任", by="user:liu")
    with transaction(tiny_site) as session:
        ack.acknowledge_reply(session, clock(), phone="+8613800000007", via=AckVia.SMS, body="收到")
    with transaction(tiny_site) as session:
        done = record_result(session, clock(), zheng, outcome="reached", note="路上遇到，已回复", by="user:liu")
    with transaction(tiny_site) as session:
        assert follow_ups(session, done.record)[zheng]["state"] == "reached"


# -- bad inputs: a reason in both languages, nothing recorded --------------------------------------------


def _refused(url: str, call: object, status: int, zh: str, en: str) -> None:
    _, before = _record(url)
    with pytest.raises(FollowUpRefused) as refused, transaction(url) as session:
        call(session)  # type: ignore[operator]
    assert refused.value.status == status
    assert zh in refused.value.text("zh") and en in refused.value.text("en")
    assert _record(url)[1] == before  # the record did not grow


def test_bad_input_an_unknown_callout(tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    with pytest.raises(NotFound), transaction(tiny_site) as session:
        assign(session, clock(), 999_999, who="吴主任", by="user:liu")
    with pytest.raises(NotFound), transaction(tiny_site) as session:
        record_result(session, clock(), 999_999, outcome="reached", by="user:liu")


def test_bad_input_an_acknowledged_callout(tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    _refused(tiny_site, lambda s: assign(s, clock(), unreached["zhou"], who="吴主任", by="user:liu"), 409,
             "该叫应已确认，无需上门核实", "is acknowledged: no follow-up is needed")


def test_bad_input_an_empty_or_over_long_name(tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    sun = unreached["sun"]
    _refused(tiny_site, lambda s: assign(s, clock(), sun, who=" \t ", by="user:liu"), 422,
             "请填写上门核实人员。", "Who goes is required.")
    _refused(tiny_site, lambda s: assign(s, clock(), sun, who="李" * (follow_up.MAX_WHO + 1), by="user:liu"), 422,
             "上门核实人员过长：最多 60 个字", "at most 60 characters, not 61")


def test_bad_input_an_over_long_note_or_control_characters(
        tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    sun = unreached["sun"]
    _refused(tiny_site, lambda s: assign(s, clock(), sun, who="李书记", note="路" * 501, by="user:liu"), 422,
             "说明过长：最多 500 个字", "The note is too long")
    _refused(tiny_site, lambda s: assign(s, clock(), sun, who="李\x00书记", by="user:liu"), 422,
             "不能包含控制字符", "must not contain control characters")


def test_bad_input_a_result_without_an_assignment_or_with_no_outcome(
        tiny_site: str, clock: Clock, unreached: dict[str, int]) -> None:  # noqa: F811
    sun = unreached["sun"]
    _refused(tiny_site, lambda s: record_result(s, clock(), sun, outcome="reached", by="user:liu"), 409,
             "尚未安排上门核实", "Nobody was sent")
    _refused(tiny_site, lambda s: record_result(s, clock(), sun, outcome="", by="user:liu"), 422,
             "请选择核实结果。", "Choose what the follow-up found (reached, relayed, not_found)")


def test_clean_keeps_line_breaks_and_strips_the_ends() -> None:
    assert clean("  吴主任\n王芳 ", limit=60, field_zh="人员", field_en="who goes", required=True) == "吴主任\n王芳"
    assert clean(None, limit=10, field_zh="说明", field_en="the note", required=False) == ""
    with pytest.raises(FollowUpRefused):
        clean("a\x1bb", limit=10, field_zh="说明", field_en="the note", required=False)
