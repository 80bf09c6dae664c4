"""Duty roll-calls (值班点名) on the sample county, through the engine: started once at the scheduled
minute however many schedulers run, the people on shift in the county room and each town's room
called, answers by reply and keypress, the room's duty leader told of a missed answer (and unable to
answer for the person), results per room, on demand, and a roll-call the engine missed on /readyz.

The sample's checks.yaml: ``daily`` at 09:00 and 21:00 (chief and staff, 10 minutes), and the
weekly unannounced one. On Thursday 16 July (the dated shift): county room 陈立 (chief), 刘洋 and 张静
(staff), leader 王建国; 龙潭镇 周建新 (chief), leader 余建华; 白云镇 施荣华 (chief), leader 方云飞.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, receipts, rollcalls
from dispatcher.services.assessment import assess, to_csv, to_xlsx
from dispatcher.services.heartbeat import engine_health
from dispatcher.services.record_words import say
from dispatcher.services.site import current_site
from tests.conftest import FIXED_NOW, Clock
from tests.support.harness import settle_engine

EVENING = FIXED_NOW.replace(hour=12, minute=59)  # 20:59 Beijing, a minute before the 21:00 roll-call
COUNTY, LONGTAN, BAIYUN = "330599", "330599102", "330599103"


@pytest.fixture
def evening(site_loaded: str) -> Clock:
    return Clock(EVENING)


@pytest.fixture
def outbox() -> SimOutbox:
    return SimOutbox()


@pytest.fixture
def engines(site_loaded: str, evening: Clock, outbox: SimOutbox) -> Iterator[list[Engine]]:
    settings = Settings(database_url=site_loaded)
    made = [Engine(settings, evening, lambda: build_adapters(settings, outbox), name=f"scheduler-{i}")
            for i in range(2)]
    yield made
    for engine in made:
        engine.close()


def _rollcalls(url: str) -> list[WarningRow]:
    with transaction(url, write=False) as session:
        rows = list(session.scalars(select(WarningRow).where(WarningRow.kind == "rollcall")))
        session.expunge_all()
        return rows


def _to(outbox: SimOutbox, purpose: str) -> list[tuple[str, str]]:
    return sorted((m.message.to.person_id, m.message.channel.value) for m in outbox.messages()
                  if m.message.purpose.value == purpose)


def _phone(url: str, person: str) -> str:
    with transaction(url, write=False) as session:
        return current_site(session).people[person].phone


def test_the_evening_roll_call_calls_every_room_once_and_tells_the_leaders_who_did_not_answer(
        site_loaded: str, evening: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    url = site_loaded
    first, second = engines
    settle_engine(first)
    assert _rollcalls(url) == []  # 20:59: not yet
    evening.now += timedelta(minutes=1)  # 21:00
    first.tick()
    second.tick()  # a second scheduler in the same minute starts nothing more
    (rollcall,) = _rollcalls(url)
    assert rollcall.headline == "每日值班点名（7月16日21:00）" and rollcall.instruction == "请在10分钟内确认在岗"
    settle_engine(first)
    called = _to(outbox, "rollcall")
    assert called == sorted((p, c) for p in ("chen-li", "liu-yang", "zhang-jing", "zhou-jianxin", "shi-ronghua")
                            for c in ("voice", "sms"))
    sms = next(m.message for m in outbox.messages() if m.message.to.person_id == "chen-li"
               and m.message.channel is Channel.SMS)
    assert sms.text.startswith("【值班点名】陈立同志：每日值班点名（7月16日21:00）。"
                               "请在10分钟内确认在岗，回复1或确认码")

    # 陈立 replies by SMS; 周建新 presses 1 on the call
    evening.now += timedelta(minutes=2)
    with transaction(url) as session:
        ack.acknowledge_reply(session, evening(), phone=_phone(url, "chen-li"), via=AckVia.SMS, body="1")
    call = next(m.message for m in outbox.messages() if m.message.to.person_id == "zhou-jianxin"
                and m.message.channel is Channel.VOICE)
    with transaction(url) as session:
        receipts.voice_keypress(session, evening(), call.key, "1", "CA-zhou")
    # ten minutes pass: 刘洋, 张静 and 施荣华 have not answered; their rooms' duty leaders are told
    evening.now = EVENING + timedelta(minutes=11, seconds=30)
    settle_engine(first)
    assert _to(outbox, "rollcall_missed") == [("fang-yunfei", "sms"), ("fang-yunfei", "voice"),
                                              ("wang-jianguo", "sms"), ("wang-jianguo", "sms"),
                                              ("wang-jianguo", "voice"), ("wang-jianguo", "voice")]
    told = next(m.message for m in outbox.messages() if m.message.purpose.value == "rollcall_missed"
                and m.message.to.person_id == "fang-yunfei" and m.message.channel is Channel.SMS)
    assert told.text == ("【值班点名·未应答】方云飞同志：施荣华未在规定时间内应答每日值班点名（7月16日21:00），"
                         "请立即核实在岗情况。")
    # the leader's "收到" to being told is not 施荣华 answering; 刘洋 answers late himself
    with transaction(url) as session:
        ack.acknowledge_reply(session, evening(), phone=_phone(url, "fang-yunfei"), via=AckVia.SMS, body="收到")
        ack.acknowledge_reply(session, evening(), phone=_phone(url, "liu-yang"), via=AckVia.SMS, body="1")
    with transaction(url, write=False) as session:
        results = {r.area: r for r in rollcalls.results(session, rollcall.id)}
        states = dict(session.execute(select(CalloutRow.person_id, CalloutRow.state)
                                      .where(CalloutRow.record_id == rollcall.id)).all())
        assert verify(session, rollcall.id) == []
    assert states["shi-ronghua"] == "unreached" and states["liu-yang"] == "acknowledged"
    county, longtan, baiyun = results[COUNTY], results[LONGTAN], results[BAIYUN]
    assert (county.name, county.called, county.present, county.late, county.absent) == ("青溪县值班室", 3, 1, 1, 1)
    assert (longtan.name, longtan.present, longtan.manned) == ("龙潭镇值班室", 1, True)
    assert (baiyun.present, baiyun.absent, baiyun.manned) == (0, 1, False)
    assert [(a.name, a.post, a.outcome, a.via) for a in county.people] == [
        ("陈立", "值班长", "present", "sms"), ("刘洋", "值班员", "late", "sms"), ("张静", "值班员", "absent", None)]
    assert [(a.name, a.outcome, a.via) for a in longtan.people] == [("周建新", "present", "voice")]
    # the next evening: one more roll-call, not two
    evening.now = EVENING + timedelta(days=1, minutes=1)
    first.tick()
    second.tick()
    assert len(_rollcalls(url)) == 2
    settle_engine(first)
    # the period report: 到岗率 per room and month, and the roll-calls are not warnings' call-outs
    with transaction(url, write=False) as session:
        report = assess(session, current_site(session), date(2026, 7, 1), date(2026, 7, 31))
    assert report.real.total.callouts == 0 and report.drills.total.callouts == 0
    whole = {a.name: (a.held, a.manned, a.rate) for a in report.rollcalls if a.month == ""}
    assert whole == {"青溪县值班室": (2, 1, 0.5), "龙潭镇值班室": (2, 1, 0.5), "白云镇值班室": (2, 0, 0.0)}
    assert {a.month for a in report.rollcalls} == {"", "2026-07"}
    # the roll-calls as a workbook: a row per roll-call and room, a row per person called
    with transaction(url, write=False) as session:
        book = load_workbook(io.BytesIO(rollcalls.to_xlsx(session)))
    assert book.sheetnames == ["值班点名", "明细"]
    rows = [[c.value for c in row] for row in book["值班点名"].iter_rows()]
    assert rows[0][:8] == ["时间", "点名", "值班室", "呼叫", "按时应答", "迟到应答", "未应答", "结果"]
    baiyun_row = ["2026-07-16 21:00", "每日值班点名（7月16日21:00）", "白云镇值班室", 1, 0, 0, 1, "未到岗"]
    assert baiyun_row in [r[:8] for r in rows]
    details = [[c.value for c in row][3:6] for row in book["明细"].iter_rows()]
    assert ["刘洋", "值班员", "迟到应答"] in details and ["张静", "值班员", "未应答"] in details
    assert load_workbook(io.BytesIO(to_xlsx(report))).sheetnames[-1] == "值班点名"
    assert "白云镇值班室,全期,2,0,0,0.0" in to_csv(report)
    assert report.as_json()["rollcalls"][0] == {"area": COUNTY, "name": "青溪县值班室", "month": "2026-07",
                                                "held": 2, "manned": 1, "unmanned": 0, "rate": 0.5}


def test_a_roll_call_on_demand_and_an_unknown_one(site_loaded: str, evening: Clock, engines: list[Engine],
                                                  outbox: SimOutbox) -> None:
    with transaction(site_loaded) as session:
        started = rollcalls.start_now(session, "weekly-spot", evening(), actor="user:chen")
    settle_engine(engines[0])
    assert started.created
    # weekly-spot calls the chiefs only, by voice
    assert _to(outbox, "rollcall") == [("chen-li", "voice"), ("shi-ronghua", "voice"), ("zhou-jianxin", "voice")]
    # bad input: a roll-call the site does not have starts nothing
    # a second one half a minute later, the first still unanswered: everyone is called again, not muted
    evening.now += timedelta(seconds=30)
    with transaction(site_loaded) as session:
        rollcalls.start_now(session, "weekly-spot", evening(), actor="user:chen")
    settle_engine(engines[0])
    assert len(_to(outbox, "rollcall")) == 6
    unknown = "no roll-call 'nightly' \\(roll-calls: daily, weekly-spot\\)"
    with pytest.raises(rollcalls.UnknownRollCall, match=unknown), transaction(site_loaded) as session:
        rollcalls.start_now(session, "nightly", evening(), actor="user:chen")
    assert len(_rollcalls(site_loaded)) == 2


def test_a_roll_call_the_scheduler_missed_is_not_made_up_late_but_shows_on_readyz(
        site_loaded: str, evening: Clock, engines: list[Engine]) -> None:
    engine = engines[0]
    evening.now = EVENING + timedelta(minutes=45)  # 21:44: the scheduler was away since before 21:00
    engine.tick()
    assert _rollcalls(site_loaded) == []  # too late to call it now: a roll-call is about that minute
    with transaction(site_loaded, write=False) as session:
        health = engine_health(session, evening())
    assert health["rollcalls"] == "1 scheduled roll-call(s) did not run: daily@2026-07-16T21:00:00+08:00"


def test_a_settled_roll_call_has_each_rooms_verdict_on_its_record_once(
        site_loaded: str, evening: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    url = site_loaded
    first, second = engines
    evening.now += timedelta(minutes=1)  # 21:00
    settle_engine(first)
    (rollcall,) = _rollcalls(url)
    evening.now += timedelta(minutes=2)
    with transaction(url) as session:  # 陈立 replies; 周建新 presses 1; the rest do not answer
        ack.acknowledge_reply(session, evening(), phone=_phone(url, "chen-li"), via=AckVia.SMS, body="1")
    call = next(m.message for m in outbox.messages() if m.message.to.person_id == "zhou-jianxin"
                and m.message.channel is Channel.VOICE)
    with transaction(url) as session:
        receipts.voice_keypress(session, evening(), call.key, "1", "CA-zhou")
    settle_engine(first)
    settle_engine(second)
    assert _results_on_record(url, rollcall.id) == []  # 刘洋, 张静 and 施荣华 still have time to answer
    evening.now = EVENING + timedelta(minutes=11, seconds=30)  # every call-out closed: each room decided
    first.tick()
    second.tick()  # a second scheduler writes nothing more
    settle_engine(second)
    settle_engine(first)
    (result,) = _results_on_record(url, rollcall.id)
    assert result.actor == "engine"
    assert [(r["name"], r["verdict"], r["called"], r["present"], r["absent"]) for r in result.data["rooms"]] == [
        ("青溪县值班室", "manned", 3, 1, 2), ("龙潭镇值班室", "manned", 1, 1, 0), ("白云镇值班室", "missing", 1, 0, 1)]
    assert (result.data["manned"], result.data["missing"], result.data["unmanned"]) == (2, 1, 0)
    with transaction(url, write=False) as session:
        assert verify(session, rollcall.id) == []
        lines = [s.text for s in say(events(session, rollcall.id), current_site(session), "zh")]
    assert ("点名结果：3 个值班室，到岗 2 个，未到岗 1 个，无人值班 0 个。"
            "青溪县值班室到岗（呼叫 3 人，按时应答 1，未应答 2）；龙潭镇值班室到岗（呼叫 1 人，按时应答 1）；"
            "白云镇值班室未到岗（呼叫 1 人，按时应答 0，未应答 1）") in lines, lines
    # 刘洋 answers late: the board's result counts him late; the record's result stays as it was
    with transaction(url) as session:
        ack.acknowledge_reply(session, evening(), phone=_phone(url, "liu-yang"), via=AckVia.SMS, body="1")
    settle_engine(first)
    assert len(_results_on_record(url, rollcall.id)) == 1


def _results_on_record(url: str, record_id: str) -> list[Any]:
    with transaction(url, write=False) as session:
        return [e for e in events(session, record_id) if e.kind == "rollcall_result"]
