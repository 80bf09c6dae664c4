"""Drills (演练) on the board, on the tiny county: an admin schedules a blind drill (双盲) in a window; until
it ends, officers and viewers find no drill — not in the drill list, not on the overview, the warning's
board, its record or its printed file — while the admin sees it labelled; once it ends it is revealed
everywhere and its report (the bars, the unreached, what took over, the drills beside it) and workbook
open for everyone. Refusals change nothing: an officer scheduling, a time in the past, an unknown channel."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from dispatcher.db.session import transaction
from dispatcher.db.tables import DrillRow
from dispatcher.domain.callouts import AckVia
from dispatcher.services import ack, drills
from dispatcher.services.site import current_site
from tests.board.conftest import Desk, desk_on
from tests.conftest import FIXED_NOW, Clock
from tests.support.harness import settle_engine

FORM = {"hazard": "rainstorm", "level": "red", "areas": "330599100", "sender": "qingxi-qx",
        "headline": "青溪县气象台发布暴雨红色预警信号", "instruction": "请立即组织危险区人员转移",
        # 11:30 to 12:00 Beijing (the board's clock starts at 11:12)
        "window_from": "2026-07-16T11:30", "window_to": "2026-07-16T12:00", "mode": "blind", "action": "schedule"}
LABEL = re.compile(r'class="drill"|is-drill|【演练】|双盲演练')


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url  # what the pages show; the queries behind them run on both in tests/e2e


class DrillDesk(Desk):
    def drills(self) -> list[DrillRow]:
        with transaction(self.url, write=False) as session:
            rows = list(session.scalars(select(DrillRow)))
            session.expunge_all()
            return rows

    def reply(self, person: str) -> None:
        with transaction(self.url) as session:
            phone = current_site(session).people[person].phone
            ack.acknowledge_reply(session, self.clock(), phone=phone or "", via=AckVia.SMS, body="1")


@pytest.fixture
def desk(tiny_site: str) -> Iterator[DrillDesk]:
    clock = Clock(FIXED_NOW)
    with desk_on(tiny_site, clock, "board-drills") as (client, engine):
        yield DrillDesk(client, engine, clock, tiny_site)


def test_a_blind_drill_is_a_real_warning_to_officers_until_it_ends_then_revealed_and_reported(
        desk: DrillDesk) -> None:
    token = desk.login("chen")  # admin
    scheduled = desk.client.post("/board/drills", data=FORM | {"csrf": token}, follow_redirects=False)
    assert scheduled.status_code == 303, scheduled.text
    page_url = scheduled.headers["location"]
    (drill,) = desk.drills()
    assert page_url == f"/board/drills/{drill.id}" and drill.kind == "blind" and drill.at is not None
    page = desk.client.get(page_url).text
    assert "待开始" in page and "2026-07-16 11:30 – 2026-07-16 12:00" in page
    moment = f"{drill.at.astimezone(current_tz(desk)):%H:%M}"
    assert f"开始：2026-07-16 {moment}" not in page  # the moment drawn in the window is never shown
    assert drill.id in desk.client.get("/board/drills").text

    # officers and viewers do not know it is coming
    desk.login("liu")
    assert drill.id not in desk.client.get("/board/drills").text
    assert desk.client.get(page_url).status_code == 404

    # it starts: to the officer it is a real red warning on every page
    desk.clock.now = drill.at + timedelta(seconds=1)
    settle_engine(desk.engine)
    (drill,) = desk.drills()
    record = drill.record_id
    assert drill.state == "running" and record is not None
    for name in ("liu", "wang"):
        desk.login(name)
        overview = desk.client.get("/board").text
        assert record in overview and not LABEL.search(overview)
        board = desk.client.get(f"/board/warnings/{record}").text
        assert "青溪县气象台发布暴雨红色预警信号" in board and not LABEL.search(board)
        shown = desk.client.get(f"/board/warnings/{record}/record").text
        assert "收到预警" in shown and not LABEL.search(shown), LABEL.search(shown)
        assert drill.id not in desk.client.get("/board/drills").text
    desk.login("liu")
    printed = desk.client.get(f"/board/warnings/{record}/print").text
    assert not LABEL.search(printed)
    exported = desk.client.get(f"/board/warnings/{record}/export.json").text
    assert '"drill": true' not in exported and "drill_started" not in exported
    # the admin sees it labelled, and may end it
    desk.login("chen")
    assert LABEL.search(desk.client.get(f"/board/warnings/{record}").text)
    assert "值班员和查看员在看板上看到的是真实预警" in desk.client.get(page_url).text

    # 孙 and 周 answer within a minute; 郑 never does — the drill settles at 15 minutes and is revealed
    desk.clock.now += timedelta(seconds=40)
    desk.reply("sun")
    desk.reply("zhou")
    desk.clock.now = drill.at + timedelta(minutes=16)
    settle_engine(desk.engine)
    (drill,) = desk.drills()
    assert drill.state == "ended" and drill.revealed_at is not None
    desk.login("liu")
    assert LABEL.search(desk.client.get(f"/board/warnings/{record}").text)
    assert "演练结束" in desk.client.get(f"/board/warnings/{record}/record").text
    report = desk.client.get(page_url)
    assert report.status_code == 200
    text = report.text
    assert "已结束" in text and "全部叫应已结束" in text
    assert re.search(r'id="acked"><th>已确认</th><td class="num">2/3</td><td class="num short">2</td>', text)
    assert "郑防汛员" in text.split('id="unreached"')[1].split("</section>")[0]
    assert drill.id in text.split('id="beside"')[1]
    book = load_workbook(io.BytesIO(desk.client.get(f"{page_url}/export.xlsx").content))
    assert book.sheetnames == ["概况", "人员", "未确认", "通道失败", "历次演练"]
    rows = {r[0].value: r[1].value for r in book["概况"].iter_rows(min_row=2)}
    assert rows["叫应人数"] == 3 and rows["5分钟内确认"] == 2 and rows["类型"] == "双盲演练"


def current_tz(desk: DrillDesk):  # noqa: ANN201 - the site's zone
    with transaction(desk.url, write=False) as session:
        return current_site(session).tz


def test_an_announced_drill_without_sms_shows_what_took_over(desk: DrillDesk) -> None:
    token = desk.login("chen")
    started = desk.client.post("/board/drills", data=FORM | {"csrf": token, "action": "start", "without_sms": "on",
                                                              "window_from": "", "window_to": ""},
                               follow_redirects=False)
    assert started.status_code == 303, started.text
    settle_engine(desk.engine)
    desk.login("wang")  # a viewer sees an announced drill at once
    board = desk.client.get(started.headers["location"]).text
    took = board.split('id="took-over"')[1].split("</section>")[0]
    assert took.count('class="took-over"') == 3 and "语音电话" in took
    failures = board.split('id="failures"')[1].split("</section>")[0]
    assert failures.count('class="imposed"') == 3 and "drill outage: channel sms" in failures


@pytest.mark.parametrize(("who", "data", "status", "says"), [
    ("liu", {}, 403, "权限不足"),  # bad input: an officer may not schedule a drill
    ("wang", {"action": "start"}, 403, "权限不足"),  # bad input: nor a viewer start one
    ("chen", {"window_from": "", "window_to": "", "at": "2026-07-16T09:00"}, 422, "at: 2026-07-16T09:00:00+08:00 is "
     "not in the future"),  # bad input: a time in the past
    ("chen", {"without": "fax"}, 422, "without[0]: &#39;fax&#39; is neither a channel nor a provider"),  # bad input
    ("chen", {"areas": "110101"}, 422, "areas[0]: 110101 is not an area of this site"),  # bad input: elsewhere
    ("chen", {"window_to": ""}, 422, "to: a window needs both its start and its end"),  # bad input: half a window
])
def test_refused_drills_change_nothing(desk: DrillDesk, who: str, data: dict[str, str], status: int, says: str) -> None:
    token = desk.login(who)
    answer = desk.client.post("/board/drills", data=FORM | {"csrf": token} | data, follow_redirects=False)
    assert answer.status_code == status and says in answer.text, answer.text[-800:]
    assert desk.drills() == []


def test_ending_and_calling_off_need_an_admin_and_an_unknown_drill_is_404(desk: DrillDesk) -> None:
    token = desk.login("chen")
    desk.client.post("/board/drills", data=FORM | {"csrf": token})
    (drill,) = desk.drills()
    officer = desk.login("liu")
    # bad input: an officer calling off the admin's drill
    assert desk.client.post(f"/board/drills/{drill.id}/cancel", data={"csrf": officer}).status_code == 403
    assert desk.drills()[0].state == "scheduled"
    token = desk.login("chen")
    # bad input: ending a drill that has not started
    assert desk.client.post(f"/board/drills/{drill.id}/end", data={"csrf": token}).status_code == 409
    assert desk.client.post(f"/board/drills/{drill.id}/cancel", data={"csrf": token},
                            follow_redirects=False).status_code == 303
    assert desk.drills()[0].state == "cancelled"
    assert desk.client.get("/board/drills/D-nothing").status_code == 404  # bad input: no such drill


# -- the drills beside this one: newest first, the latest ten, a blind one running hidden from officers -------

BESIDE_ID = re.compile(r'<a href="/board/drills/([^"]+)">')


def _beside_on_page(desk: DrillDesk, drill_id: str) -> list[str]:
    page = desk.client.get(f"/board/drills/{drill_id}")
    assert page.status_code == 200, page.text[-500:]
    return BESIDE_ID.findall(page.text.split('id="beside"')[1].split("</section>")[0])


def _beside_in_workbook(desk: DrillDesk, drill_id: str) -> list[list[Any]]:
    answer = desk.client.get(f"/board/drills/{drill_id}/export.xlsx")
    assert answer.status_code == 200, answer.text[-500:]
    book = load_workbook(io.BytesIO(answer.content))
    return [[c.value for c in r] for r in book["历次演练"].iter_rows(min_row=2)]


def _start_announced(desk: DrillDesk, headline: str) -> str:
    token = desk.login("chen")
    started = desk.client.post("/board/drills", data=FORM | {
        "csrf": token, "action": "start", "mode": "announced", "window_from": "", "window_to": "",
        "headline": headline}, follow_redirects=False)
    assert started.status_code == 303, started.text[-800:]
    settle_engine(desk.engine)
    return started.headers["location"].rsplit("/", 1)[1]


def _end(desk: DrillDesk, drill_id: str) -> None:
    token = desk.login("chen")
    ended = desk.client.post(f"/board/drills/{drill_id}/end", data={"csrf": token}, follow_redirects=False)
    assert ended.status_code == 303, ended.text[-800:]
    settle_engine(desk.engine)


def test_drills_beside_this_one_are_the_latest_first_and_a_running_blind_one_is_only_the_admins(
        desk: DrillDesk) -> None:
    first = _start_announced(desk, "第一次公开演练")
    _end(desk, first)
    desk.clock.now += timedelta(minutes=2)
    second = _start_announced(desk, "第二次公开演练")
    _end(desk, second)
    # a blind drill in the window 11:30–12:00; once it runs, an announced drill scheduled for two minutes
    # later starts beside it
    token = desk.login("chen")
    assert desk.client.post("/board/drills", data=FORM | {"csrf": token, "headline": "县气象台暴雨红色预警（双盲）"},
                            follow_redirects=False).status_code == 303
    (blind,) = [d for d in desk.drills() if d.kind == "blind"]
    assert blind.at is not None
    desk.clock.now = blind.at + timedelta(seconds=1)
    settle_engine(desk.engine)
    token = desk.login("chen")
    # bad input: an announced drill started now, while the blind one runs, would find everyone already being
    # called and call nobody: refused, naming the running drill, and nothing stored
    refused = desk.client.post("/board/drills", data=FORM | {
        "csrf": token, "action": "start", "mode": "announced", "window_from": "", "window_to": "",
        "headline": "被拒绝的公开演练"}, follow_redirects=False)
    assert refused.status_code == 422 and f"演练 {blind.id} 正在进行" in refused.text, refused.text[-800:]
    assert len(desk.drills()) == 3
    at = blind.at + timedelta(minutes=2)
    scheduled = desk.client.post("/board/drills", data=FORM | {
        "csrf": token, "mode": "announced", "window_from": "", "window_to": "", "headline": "第三次公开演练",
        "at": f"{at.astimezone(current_tz(desk)):%Y-%m-%dT%H:%M}"}, follow_redirects=False)
    assert scheduled.status_code == 303, scheduled.text[-800:]
    third = scheduled.headers["location"].rsplit("/", 1)[1]
    desk.clock.now = at + timedelta(seconds=1)
    settle_engine(desk.engine)
    states = {d.id: d.state for d in desk.drills()}
    assert states[blind.id] == "running" and states[third] in ("running", "ended")

    # a drill scheduled for its moment still starts then; the blind drill's open call-outs held the same
    # three officials, so it called nobody — and its report says who was skipped and why
    with transaction(desk.url, write=False) as session:
        result = drills.report(session, third, admin=True)
        hidden = drills.report(session, third, admin=False)
    assert result.figures.called == 0
    assert sorted((s.person_id, s.by) for s in result.skipped) == [("sun", blind.id), ("zheng", blind.id),
                                                                   ("zhou", blind.id)]
    assert sorted((s.person_id, s.by) for s in hidden.skipped) == [("sun", None), ("zheng", None), ("zhou", None)]
    page = desk.client.get(f"/board/drills/{third}").text
    skipped = page.split('id="skipped"')[1].split("</section>")[0]
    assert skipped.count("<tr>") == 4 and "孙镇长" in skipped and f"正被演练 {blind.id} 叫应" in skipped
    book = load_workbook(io.BytesIO(desk.client.get(f"/board/drills/{third}/export.xlsx").content))
    assert sorted(r[2].value for r in book["未确认"].iter_rows(min_row=2)) == [f"未叫应：正被演练 {blind.id} 叫应"] * 3
    assert {r[0].value: r[1].value for r in book["概况"].iter_rows(min_row=2)}["未叫应（正被其他叫应占用）"] == 3

    # an officer: the running blind drill is in neither the page nor the workbook, and takes no place
    desk.login("liu")
    page = desk.client.get(f"/board/drills/{third}").text
    assert blind.id not in page and "双盲" not in page
    skipped = page.split('id="skipped"')[1].split("</section>")[0]
    assert skipped.count("<tr>") == 4 and "正被其他叫应占用" in skipped
    book = load_workbook(io.BytesIO(desk.client.get(f"/board/drills/{third}/export.xlsx").content))
    assert sorted(r[2].value for r in book["未确认"].iter_rows(min_row=2)) == ["未叫应：正被其他叫应占用"] * 3
    assert _beside_on_page(desk, third) == [third, second, first]
    rows = _beside_in_workbook(desk, third)
    assert [r[-1] for r in rows] == [third, second, first]
    assert [r[1] for r in rows] == ["第三次公开演练", "第二次公开演练", "第一次公开演练"]
    assert not any("双盲" in str(cell) for r in rows for cell in r)
    # the admin sees all four, the blind one labelled
    desk.login("chen")
    assert _beside_on_page(desk, third) == [third, blind.id, second, first]
    rows = _beside_in_workbook(desk, third)
    assert [(r[-1], r[2]) for r in rows] == [(third, "公开演练"), (blind.id, "双盲演练"), (second, "公开演练"),
                                             (first, "公开演练")]
    assert [r[3] for r in rows][2:] == [3, 3]  # the finished ones called the tiny county's three officials

    # the limit counts what the reader may see: the latest two for an officer are this one and the second
    with transaction(desk.url, write=False) as session:
        assert [c.id for c in drills.report(session, third, admin=False, beside=2).beside] == [third, second]
        assert [c.id for c in drills.report(session, third, admin=True, beside=2).beside] == [third, blind.id]
        assert [c.id for c in drills.report(session, second, admin=True).beside] == [second, first]

    # once the blind drill is over it is revealed: beside the third drill for everyone
    _end(desk, blind.id)
    desk.login("liu")
    assert _beside_on_page(desk, third) == [third, blind.id, second, first]
    assert f"正被演练 {blind.id} 叫应" in desk.client.get(f"/board/drills/{third}").text
    assert [r[-1] for r in _beside_in_workbook(desk, third)] == [third, blind.id, second, first]
