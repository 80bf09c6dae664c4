"""六问 spot-checks (抽查) on the board, on the sample county: an officer starts one during a warning
with a seed; the page shows the seed and the draw, each question's tally, each person's answers and
the follow-up list; the history and the workbooks; a short sample says so; refusals and bad input
(a viewer, no CSRF token, an unknown spot-check or warning, a bad size or seed, nobody left to draw)
start nothing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import WarningRow
from dispatcher.services import spotchecks
from dispatcher.services.replies import IncomingReply, take_replies
from dispatcher.services.site import current_site
from tests.board.conftest import Desk, desk_on, warning_body
from tests.conftest import FIXED_NOW, Clock
from tests.support.harness import settle_engine

DAY = FIXED_NOW.replace(hour=2, minute=0)  # 10:00 Beijing
QUESTIONS = ["是否收到预警", "是否知晓危险区范围", "是否已巡查隐患点", "是否落实人员转移", "是否知晓转移路线和安置点",
             "是否在岗在位"]
PAGE = re.compile(r"/board/spotchecks/W\d{8}-\w{6}")
EMOJI = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff\ufe0f]")


@dataclass
class Duty(Desk):
    replies: int = 0

    def spotchecks(self) -> int:
        with transaction(self.url, write=False) as session:
            return int(session.scalar(select(func.count()).select_from(WarningRow)
                                      .where(WarningRow.kind == "spotcheck")) or 0)

    def start(self, token: str, **fields: str) -> str:
        form = {"csrf": token, "spotcheck": "liuwen", "size": "6", "seed": "", "during": ""} | fields
        started = self.client.post("/board/spotchecks", data=form, follow_redirects=False)
        assert started.status_code == 303, started.text
        assert PAGE.fullmatch(started.headers["location"])
        return started.headers["location"]

    def drawn(self, record_id: str) -> list[tuple[str, str]]:
        """(person id, name) of the people drawn, in the order drawn."""
        with transaction(self.url, write=False) as session:
            site = current_site(session)
            return [(p, site.people[p].name) for p in spotchecks.result(session, record_id).frozen.drawn]

    def text(self, person: str, body: str) -> None:
        self.replies += 1
        with transaction(self.url) as session:
            phone = current_site(session).people[person].mobile
            take_replies(session, self.clock(), [IncomingReply(phone, body, f"SM{self.replies}")])



@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url  # what the pages show; the queries behind them run on both in tests/e2e

@pytest.fixture
def duty(site_loaded: str, auth: dict[str, str]) -> Iterator[Duty]:
    clock = Clock(DAY)
    with desk_on(site_loaded, clock) as (client, engine):
        posted = client.post("/api/v1/warnings", json=warning_body(clock(), identifier="SC-1"), headers=auth)
        assert posted.status_code == 202, posted.text
        yield Duty(client, engine, clock, site_loaded)


def _section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"')[1].split("</section>")[0]


def test_an_officer_starts_a_spot_check_and_sees_the_answers_and_who_to_follow_up(duty: Duty) -> None:
    token = duty.login("liu")
    listing = duty.client.get("/board/spotchecks").text
    assert '<a href="/board/spotchecks">六问抽查</a>' in listing  # in the nav
    assert "开始抽查" in listing and '<option value="liuwen" selected>' not in listing
    assert '<option value="liuwen">基层防汛责任人“六问”抽查（默认抽6人）</option>' in listing
    assert 'name="size" inputmode="numeric" maxlength="20" size="6" value="6"' in listing  # checks.yaml's size
    (warning_id,) = re.findall(r'<option value="(W\d{8}-\w{6})">青溪县气象台发布暴雨红色预警信号', listing)
    assert "还没有六问抽查" in listing

    page_url = duty.start(token, seed="42", during=warning_id)
    record_id = page_url.rsplit("/", 1)[1]
    waiting = duty.client.get(page_url).text
    assert 'http-equiv="refresh"' in waiting and "引擎正在发起呼叫…" in waiting
    draw = _section(waiting, "draw")
    assert '随机种子：<strong class="seed">42</strong>' in draw
    assert "<dt>要求抽取</dt><dd>6</dd>" in draw and "<dt>实际抽取</dt><dd>6</dd>" in draw
    assert "<dt>可抽取</dt><dd>55</dd>" in draw and "<dt>近30天已抽查、未再抽取</dt><dd>0</dd>" in draw
    assert "可抽取人数不足" not in waiting
    assert f'关联预警：<a href="/board/warnings/{warning_id}">青溪县气象台发布暴雨红色预警信号</a>' in waiting

    settle_engine(duty.engine)
    (said_no, first_not_an_answer, all_yes, *silent) = duty.drawn(record_id)
    duty.clock.now += timedelta(minutes=2)
    duty.text(said_no[0], "1 1 2 1 1 1")
    duty.text(first_not_an_answer[0], "好的")  # not an answer: recorded, and asked once more by SMS
    duty.text(all_yes[0], "是是是是是是")
    settle_engine(duty.engine)
    duty.text(first_not_an_answer[0], "1，1，1，1，1，1")
    page = duty.client.get(page_url).text
    assert 'http-equiv="refresh"' in page  # three people are still to answer
    people = _section(page, "people")
    row = people.split(f"<td>{first_not_an_answer[1]}</td>")[1].split("</tr>")[0]
    assert "回复未能识别，已再次询问" in row and '<span class="room-verdict ok">全部为是</span>' in row
    assert '<span class="room-verdict wait">作答中</span>' in people

    duty.clock.now += timedelta(minutes=31)  # answer_within (30 min) has passed: silence is 未答全
    settle_engine(duty.engine)
    page = duty.client.get(page_url).text
    assert 'http-equiv="refresh"' not in page
    # the follow-up list comes before the tallies and the people, with what to follow up
    assert page.index('id="follow-up"') < page.index('id="tallies"') < page.index('id="people"')
    follow = _section(page, "follow-up")
    assert '<span class="count">4</span>' in follow
    assert f"<td>{said_no[1]}</td>" in follow and "第3问 是否已巡查隐患点：否" in follow
    for _, name in silent:
        assert f"<td>{name}</td>" in follow
    assert f"<td>{all_yes[1]}</td>" not in follow and f"<td>{first_not_an_answer[1]}</td>" not in follow
    tallies = _section(page, "tallies")
    assert ('<tr id="q-3"><td class="num">3</td><td>是否已巡查隐患点</td><td class="num">2</td>'
            '<td class="num mark-no">1</td><td class="num">3</td></tr>') in tallies
    assert '<td>是否收到预警</td><td class="num">3</td><td class="num">0</td><td class="num">3</td>' in tallies
    row = _section(page, "people").split(f"<td>{said_no[1]}</td>")[1].split("</tr>")[0]
    assert row.count('<td class="mark-yes">是</td>') == 5 and '<td class="mark-no">否</td>' in row
    assert '<span class="room-verdict no">有“否”</span>' in row and "短信" in row
    assert '<span class="room-verdict no">未答全</span>' in _section(page, "people")
    assert "全部为是 2" in page and "有“否” 1" in page and "未答全 3" in page
    assert f'href="/board/warnings/{record_id}/record"' in page

    listing = duty.client.get("/board/spotchecks").text
    history = listing.split('id="spotchecks"')[1]
    assert f'id="sc-{record_id}"' in history and '<td class="num seed">42</td>' in history
    assert "全部为是 2" in history and "有“否” 1" in history and "未答全 3" in history
    record = duty.client.get(f"/board/warnings/{record_id}/record")
    assert record.status_code == 200 and "六问" in record.text

    for html in (page, listing):  # icons are the board's SVG symbols: no emoji, arrows or dingbats
        assert not EMOJI.search(html.split("<main>")[1])
    assert '<svg class="ic"><use href="#i-unreached"/></svg> 需跟进' in page

    english = duty.client.get(page_url + "?lang=en").text
    assert "Follow up" in english and "Seed" in english and "said no" in english and "Q3" in english
    assert "需跟进" not in english

    workbook = duty.client.get(f"{page_url}/export.xlsx")
    assert workbook.status_code == 200 and "attachment" in workbook.headers["content-disposition"]
    book = load_workbook(io.BytesIO(workbook.content))
    sheet = list(book["六问抽查"].values)
    assert list(sheet[0][6:12]) == QUESTIONS and sheet[0][2] == "随机种子"
    rows = {r[3]: r for r in sheet[1:]}
    assert len(rows) == 6 and rows[said_no[1]][2] == 42
    assert list(rows[said_no[1]][6:13]) == ["是", "是", "否", "是", "是", "是", "有“否”"]
    assert list(rows[silent[0][1]][6:13]) == ["未答"] * 6 + ["未答全"]
    follow_up = list(book["跟进"].values)
    assert sorted(r[2] for r in follow_up[1:]) == sorted([said_no[1], *(name for _, name in silent)])


def test_a_sample_larger_than_the_people_available_says_so(duty: Duty) -> None:
    token = duty.login("liu")
    first = duty.start(token, size="50", seed="7")
    page_url = duty.start(token, size="12", seed="7")  # the first 50 are left out as checked lately
    page = duty.client.get(page_url).text
    draw = _section(page, "draw")
    assert "<dt>要求抽取</dt><dd>12</dd>" in draw and "<dt>实际抽取</dt><dd>5</dd>" in draw
    assert "<dt>可抽取</dt><dd>5</dd>" in draw and "<dt>近30天已抽查、未再抽取</dt><dd>50</dd>" in draw
    assert 'role="alert"' in draw and "可抽取人数不足：要求抽取12人，只有5人可抽。" in draw
    assert "Not enough people to draw: 12 asked, only 5 available." in duty.client.get(page_url + "?lang=en").text
    history = duty.client.get("/board/spotchecks?lang=zh").text.split('id="spotchecks"')[1]
    short = history.split(f'id="sc-{page_url.rsplit("/", 1)[1]}"')[1].split("</tr>")[0]
    assert "5 / 12" in short and "可抽取人数不足" in short
    assert "可抽取人数不足" not in history.split(f'id="sc-{first.rsplit("/", 1)[1]}"')[1].split("</tr>")[0]
    # the workbook of all spot-checks holds both, a row per person called
    settle_engine(duty.engine)
    book = load_workbook(io.BytesIO(duty.client.get("/board/spotchecks/export.xlsx").content))
    assert len(list(book["六问抽查"].values)) == 1 + 50 + 5
    # and now nobody is left: refused, with why
    nobody = duty.client.post("/board/spotchecks", data={"csrf": token, "spotcheck": "liuwen", "size": "6"})
    assert nobody.status_code == 422
    assert "无人可抽：担任抽查岗位的55人均在近30天内抽查过，未再抽取。" in nobody.text
    assert duty.spotchecks() == 2


@pytest.mark.parametrize(("fields", "message"), [
    ({"spotcheck": "nope"}, "没有这个抽查：nope"),
    ({"size": "0"}, "抽取人数须为1至500的整数，而不是“0”。"),
    ({"size": "501"}, "抽取人数须为1至500的整数，而不是“501”。"),
    ({"size": "六"}, "抽取人数须为1至500的整数，而不是“六”。"),
    ({"seed": "-1"}, "随机种子须为不小于0的整数（留空则随机生成），而不是“-1”。"),
    ({"seed": "4.2"}, "随机种子须为不小于0的整数（留空则随机生成），而不是“4.2”。"),
    ({"seed": "99999999999999999999"}, "随机种子须为不小于0的整数"),
    ({"during": "W20260716-NOPE00"}, "没有这个预警：W20260716-NOPE00"),
])
def test_bad_input_is_refused_and_starts_nothing(duty: Duty, fields: dict[str, str], message: str) -> None:
    token = duty.login("liu")
    form = {"csrf": token, "spotcheck": "liuwen", "size": "6", "seed": "42"} | fields
    refused = duty.client.post("/board/spotchecks", data=form)
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text and message in refused.text
    # the form comes back as it was filled in, to correct
    assert f'name="seed" inputmode="numeric" maxlength="30" size="12" value="{form["seed"]}"' in refused.text
    assert duty.spotchecks() == 0


def test_full_width_digits_are_whole_numbers(duty: Duty) -> None:
    token = duty.login("liu")
    page = duty.client.get(duty.start(token, size="３", seed="０４２")).text
    assert '<strong class="seed">42</strong>' in page and "<dt>实际抽取</dt><dd>3</dd>" in page


def test_refusals_start_nothing(duty: Duty) -> None:
    token = duty.login("wang")  # a viewer may look, not start or export
    listing = duty.client.get("/board/spotchecks")
    assert listing.status_code == 200 and "开始抽查" not in listing.text and "导出 Excel" not in listing.text
    refused = duty.client.post("/board/spotchecks", data={"csrf": token, "spotcheck": "liuwen"})
    assert refused.status_code == 403 and "权限不足" in refused.text
    assert duty.client.get("/board/spotchecks/export.xlsx").status_code == 403
    token = duty.login("liu")
    # no CSRF token
    assert duty.client.post("/board/spotchecks", data={"spotcheck": "liuwen"}).status_code == 403
    # ids no spot-check has; a warning's id is not a spot-check
    warning_id = re.search(r'<option value="(W\d{8}-\w{6})">', duty.client.get("/board/spotchecks").text).group(1)
    for bad in ("W20260716-NOPE00", "x" * 300, warning_id):
        assert duty.client.get(f"/board/spotchecks/{bad}").status_code == 404
        assert duty.client.get(f"/board/spotchecks/{bad}/export.xlsx").status_code == 404
    assert duty.spotchecks() == 0
    duty.client.cookies.clear()
    assert duty.client.get("/board/spotchecks", follow_redirects=False).headers["location"] == "/board/login"
