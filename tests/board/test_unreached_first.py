"""What the duty officer sees at 3 a.m. (issue #12), over HTTP on SQLite and PostgreSQL.

The tiny county with more of what a real one has: 周村长 has three numbers (手机, 备用手机, 办公电话),
石桥村 has a second flood officer (冯防汛员), and 青溪镇 keeps a duty room with a duty phone. The
warning grows by updates, so that one board holds every kind of row at once: 周村长 unreached, 郑防汛员
overdue, 孙镇长 open, 冯防汛员 acknowledged.

Each test says what the duty officer notices: the order of the rows, the told-already line, the
numbers to phone (whole for officers, masked for viewers), the follow-up on the record, the
for-whom chips, someone else's "收到" shown as theirs, the export's columns, Chinese that reads as
Chinese. Bad inputs to the new actions each get a clear answer and change nothing."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import EventRow
from dispatcher.domain.callouts import AckVia
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, receipts
from dispatcher.services.site import load_site_files
from tests.board.conftest import create_users, csrf_of, warning_body
from tests.conftest import FIXED_NOW, Clock
from tests.e2e.conftest import TINY_SITE
from tests.support.harness import settle_engine

ZHOU_MOBILE, ZHOU_BACKUP, ZHOU_OFFICE = "+8613800000005", "+8613800000105", "+865725012345"
PEOPLE = """\
roles:
  emergency_head: 应急管理局局长
  duty_officer: 县应急值班员
  town_head: 乡镇长
  town_secretary: 乡镇党委书记
  village_head: 村党组织书记/村主任
  village_flood_officer: 村防汛责任人(村级)
people:
  - { id: zhao, name: 赵局长, phone: "+8613800000001", area: "330599", roles: [emergency_head], unit: 县应急管理局 }
  - { id: qian, name: 钱值班长, phone: "+8613800000002", area: "330599", roles: [duty_officer], unit: 县应急管理局 }
  - id: sun
    name: 孙镇长
    phone: "+8613800000003"
    area: "330599100"
    roles: [town_head]
    unit: 青溪镇人民政府
    deputy: li
    superior: zhao
  - { id: li, name: 李书记, phone: "+8613800000004", area: "330599100", roles: [town_secretary], unit: 青溪镇人民政府 }
  - id: zhou
    name: 周村长
    phone: "+8613800000005"
    phones:
      - "13800000105"
      - { number: "0572-5012345", kind: landline }
    area: "330599100201"
    roles: [village_flood_officer]
    unit: 溪口村民委员会
    deputy: wu
    superior: sun
  - { id: wu, name: 吴主任, phone: "+8613800000006", area: "330599100201", roles: [village_head], unit: 溪口村民委员会 }
  - id: zheng
    name: 郑防汛员
    phone: "+8613800000007"
    area: "330599100202"
    roles: [village_flood_officer]
    unit: 石桥村民委员会
    superior: sun
  - id: feng
    name: 冯防汛员
    phone: "+8613800000008"
    area: "330599100202"
    roles: [village_flood_officer]
    unit: 石桥村民委员会
    superior: sun
"""
DUTY = """\
weekly:
  - { day: mon, start: "00:00", hours: 168, leader: zhao, chief: qian, staff: [] }
rooms:
  - area: "330599100"
    name: 青溪镇值班室
    phone: "0572-5010110"
    weekly:
      - { day: mon, start: "00:00", hours: 168, leader: li, chief: wu }
"""
XIKOU, SHIQIAO, TOWN = "330599100201", "330599100202", "330599100"
PASSWORD = "correct horse battery"


@pytest.fixture
def tiny_site(database_url: str, tmp_path: Path) -> str:
    """The tiny county with several numbers, a second official in 石桥村 and a town duty room
    (overrides the e2e fixture, so the engine and outbox fixtures use it too)."""
    site = tmp_path / "site"
    shutil.copytree(TINY_SITE, site)
    (site / "people.yaml").write_text(PEOPLE, encoding="utf-8")
    (site / "duty.yaml").write_text(DUTY, encoding="utf-8")
    with transaction(database_url) as session:
        load_site_files(session, site, FIXED_NOW)
    return database_url


@dataclass
class County:
    client: TestClient
    clock: Clock
    engine: Engine
    outbox: SimOutbox
    url: str
    auth: dict[str, str]
    warning: str = ""
    reported: set[str] | None = None

    def post(self, identifier: str, areas: list[str], **fields: Any) -> str:
        body = warning_body(self.clock(), identifier=identifier, areas=areas) | fields
        response = self.client.post("/api/v1/warnings", json=body, headers=self.auth)
        assert response.status_code == 202, response.text
        self.drive()
        return str(response.json()["id"])

    def drive(self) -> None:
        settle_engine(self.engine)

    def minutes(self, n: int) -> None:
        """The clock moves on ``n`` minutes, one at a time, the engine running each minute, and every
        call to a number left unanswered rings out (its no-answer reported)."""
        for _ in range(n):
            self.clock.now += timedelta(minutes=1)
            self.drive()
            self.ring_out()

    def ring_out(self) -> None:
        self.reported = self.reported or set()
        for call in self.outbox.messages():
            if call.message.channel is Channel.VOICE and not call.answered and call.message.key not in self.reported:
                self.reported.add(call.message.key)
                with transaction(self.url) as session:
                    receipts.record_status(session, self.clock(), call.provider_id, "no-answer",
                                           attempt_ref=call.message.key, provider="simulator")
        self.drive()

    def reply(self, phone: str, text: str = "收到") -> None:
        with transaction(self.url) as session:
            ack.acknowledge_reply(session, self.clock(), phone=phone, via=AckVia.SMS, body=text)
        self.drive()

    def login(self, name: str) -> str:
        self.client.cookies.clear()
        page = self.client.get("/board/login")
        self.client.post("/board/login", data={"name": name, "password": PASSWORD, "csrf": csrf_of(page.text)})
        return csrf_of(self.client.get("/board").text)

    def page(self, **params: str) -> str:
        response = self.client.get(f"/board/warnings/{self.warning}", params=params)
        assert response.status_code == 200, response.text
        return response.text

    def callouts(self) -> dict[str, dict[str, Any]]:
        body = self.client.get(f"/api/v1/warnings/{self.warning}/callouts",
                               headers={"Authorization": "Basic Y2hlbjpjb3JyZWN0IGhvcnNlIGJhdHRlcnk="}).json()
        return {c["official"]["id"]: c for c in body["callouts"]}

    def follow_up_events(self) -> int:
        with transaction(self.url) as session:
            return int(session.scalar(select(func.count()).select_from(EventRow).where(
                EventRow.kind.in_(("follow_up_assigned", "follow_up_result")))) or 0)


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: these tests are about what the board shows and says. The queries behind it (the
    follow-up service, the call-out views, the exports) run on PostgreSQL too, in tests/unit and
    tests/integration; running every page here twice cost the suite three minutes."""
    return sqlite_database_url


@pytest.fixture
def county(tiny_site: str, clock: Clock, engine: Engine, outbox: SimOutbox, auth: dict[str, str]) -> Iterator[County]:
    create_users(tiny_site)
    with TestClient(create_app(Settings(database_url=tiny_site), clock=clock)) as client:
        yield County(client, clock, engine, outbox, tiny_site, auth)


@pytest.fixture
def night(county: County) -> County:
    """The night's board: 周村长 called at 0 and never answering on any of his three numbers; the
    warning widened to 石桥村 at 10 minutes (郑防汛员 and 冯防汛员) and to the whole town at 13 (孙镇长);
    冯防汛员 answers at 11. At 16 minutes: 周村长 unreached, 郑防汛员 overdue, 孙镇长 open, 冯防汛员
    acknowledged."""
    county.outbox.leave_unanswered(ZHOU_MOBILE, ZHOU_BACKUP, ZHOU_OFFICE)
    county.warning = county.post("N-1", [XIKOU])
    county.minutes(10)
    county.post("N-2", [XIKOU, SHIQIAO], msg_type="update", references=["N-1"])
    county.minutes(1)
    county.reply("+8613800000008")  # 冯防汛员: 收到
    county.minutes(2)
    county.post("N-3", [TOWN], msg_type="update", references=["N-1"])
    county.minutes(3)
    return county


def order_of(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tbody id="c-(\d+)"', html)]


def row_of(html: str, callout: int) -> str:
    found = re.search(rf'<tbody id="c-{callout}".*?</tbody>', html, re.S)
    assert found, f"no row for call-out {callout}"
    return found.group(0)


class _Text(HTMLParser):
    """The text a person reads on a page (no tags, attributes, scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


# -- 1. 未叫醒 first, with the next move ------------------------------------------------------------


def test_rows_go_unreached_then_overdue_then_open_then_acknowledged(night: County) -> None:
    night.login("liu")
    ids = {person: c["id"] for person, c in night.callouts().items()}
    states = {person: c["state"] for person, c in night.callouts().items()}
    assert states == {"zhou": "unreached", "zheng": "notified", "sun": "notified", "feng": "acknowledged"}
    html = night.page()
    assert order_of(html) == [ids["zhou"], ids["zheng"], ids["sun"], ids["feng"]]
    assert "超时未确认" in row_of(html, ids["zheng"]) and "超时未确认" not in row_of(html, ids["sun"])


def test_an_unreached_row_says_who_was_already_told_and_when(night: County) -> None:
    night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    row = row_of(night.page(), zhou)
    # 周村长's own calls rang out on all three numbers by 11:16, which brought his AB岗 吴主任's step
    # forward; his superior 孙镇长 at 11:21; the duty leader and chief with the 未叫醒 list at 11:26
    told = re.search(r'<p class="told">(.*?)</p>', row, re.S)
    assert told is not None
    line = visible(told.group(1))
    assert re.search(r"AB岗 吴主任 11:16.*上级 孙镇长 11:21.*值班领导 赵局长 11:26.*值班长 钱值班长 11:26", line), line
    assert "已通知AB岗、上级及值班人员" in line


def test_an_unreached_row_says_whom_to_phone_now_with_every_number_for_officers(night: County) -> None:
    night.login("liu")
    row = row_of(night.page(), night.callouts()["zhou"]["id"])
    phone = re.search(r'<p class="phone-now">(.*?)</p>', row, re.S)
    assert phone is not None
    text = re.sub(r"\s+", " ", visible(phone.group(1)))
    assert "本人 手机 138 0000 0005 备用手机 138 0000 0105 办公电话 0572 501 2345" in text, text
    assert "AB岗 吴主任 手机 138 0000 0006" in text and "上级 孙镇长 手机 138 0000 0003" in text
    assert "青溪镇值班室 值班电话 0572 501 0110" in text
    assert 'href="tel:+865725012345"' in row  # a softphone dials it with a click


def test_a_viewer_sees_whom_to_phone_but_every_number_masked(night: County) -> None:
    night.login("wang")
    row = row_of(night.page(), night.callouts()["zhou"]["id"])
    assert "现在请拨打" in row and "办公电话" in row and "****" in row
    for whole in ("138 0000 0005", "0572 501 2345", ZHOU_OFFICE, "0572 501 0110", "tel:"):
        assert whole not in row, whole
    assert "安排上门/现场核实" not in row  # and no forms


def test_a_follow_up_is_arranged_shown_on_the_row_recorded_and_exported(night: County) -> None:
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    assert "尚未安排" in row_of(night.page(), zhou)
    response = night.client.post(f"/board/callouts/{zhou}/follow-up", follow_redirects=False, data={
        "csrf": token, "who": "吴主任、网格员王芳", "note": "骑摩托车去溪口村",
        "back": f"/board/warnings/{night.warning}"})
    assert response.status_code == 303 and response.headers["location"].endswith("done=follow_up")
    night.minutes(1)
    row = row_of(night.page(done="follow_up"), zhou)
    assert "已安排 吴主任、网格员王芳 11:28" in visible(row) and "骑摩托车去溪口村" in row
    assert "值班员 liu" in visible(row)

    night.minutes(10)
    response = night.client.post(f"/board/callouts/{zhou}/follow-up/result", follow_redirects=False, data={
        "csrf": token, "outcome": "reached", "note": "在家中睡着，已当面告知并转移"})
    assert response.status_code == 303
    html = night.page()
    assert "11:39 已当面告知本人" in visible(row_of(html, zhou)) and "在家中睡着" in html
    # found and told: still on the 未叫醒 list (the record says so), below the ones still to find
    with transaction(night.url) as session:
        events = [e for e in record_repo.events(session, night.warning) if e.kind.startswith("follow_up")]
        assert record_repo.check(session, night.warning).intact
    assert [(e.kind, e.actor, e.data["who"] if "who" in e.data else e.data["outcome"]) for e in events] == [
        ("follow_up_assigned", "user:liu", "吴主任、网格员王芳"), ("follow_up_result", "user:liu", "reached")]
    assert events[1].data["assigned"] == events[0].seq and events[0].data["person"] == "zhou"

    exported = json.loads(night.client.get(f"/board/warnings/{night.warning}/export.json").text)
    follow = next(c for c in exported["callouts"] if c["id"] == zhou)["follow_up"]
    assert follow["state"] == "reached" and follow["visits"][0]["who"] == "吴主任、网格员王芳"
    assert follow["visits"][0]["results"][0]["outcome"] == "reached"
    kinds = {e["kind"] for e in exported["events"]}
    assert {"follow_up_assigned", "follow_up_result"} <= kinds
    header, *rows = list(csv.reader(io.StringIO(
        night.client.get(f"/board/warnings/{night.warning}/export.csv?lang=zh").text.lstrip("\ufeff"))))
    line = next(r for r in rows if r[0] == str(zhou))
    assert line[header.index("上门核实")] == "吴主任、网格员王芳 11:28（骑摩托车去溪口村）"
    assert line[header.index("核实结果")] == "11:39 已当面告知本人：在家中睡着，已当面告知并转移"


def test_the_follow_up_kinds_are_named_in_chinese_and_english() -> None:
    from dispatcher.board.i18n import translator
    from dispatcher.board.views import EVENT_ZH
    from dispatcher.domain.record import EventKind

    for kind in (EventKind.FOLLOW_UP_ASSIGNED, EventKind.FOLLOW_UP_RESULT):
        zh = EVENT_ZH[kind.value]
        assert re.fullmatch(r"[\u4e00-\u9fff]+", zh) and translator("en")(zh) != zh


# -- bad inputs to the new actions: a clear answer, nothing changed ---------------------------------------


def _refused(county: County, url: str, data: dict[str, str], status: int, says: str) -> None:
    before = county.follow_up_events()
    response = county.client.post(url, data=data, headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == status, (response.status_code, response.text[-400:])
    assert says in response.text, response.text[-600:]
    assert county.follow_up_events() == before  # nothing was recorded


def test_bad_input_an_unknown_callout(night: County) -> None:
    token = night.login("liu")
    _refused(night, "/board/callouts/999999/follow-up", {"csrf": token, "who": "吴主任"}, 404, "未找到")
    _refused(night, "/board/callouts/99999999999/follow-up", {"csrf": token, "who": "吴主任"}, 404, "未找到")
    _refused(night, "/board/callouts/999999/follow-up/result", {"csrf": token, "outcome": "reached"}, 404, "未找到")


def test_bad_input_a_follow_up_for_an_acknowledged_callout(night: County) -> None:
    token = night.login("liu")
    feng = night.callouts()["feng"]["id"]
    _refused(night, f"/board/callouts/{feng}/follow-up", {"csrf": token, "who": "吴主任"}, 409,
             "该叫应已确认，无需上门核实，未作更改。")


def test_bad_input_a_follow_up_for_a_callout_still_being_called(night: County) -> None:
    token = night.login("liu")
    sun = night.callouts()["sun"]["id"]
    _refused(night, f"/board/callouts/{sun}/follow-up", {"csrf": token, "who": "吴主任"}, 409,
             "只有未叫醒的叫应才能安排上门核实（当前：已通知）")


def test_bad_input_a_viewer_trying_it(night: County) -> None:
    token = night.login("wang")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token, "who": "吴主任"}, 403,
             "权限不足：此操作需要值班员或更高权限（wang：查看员）")


def test_bad_input_an_empty_name(night: County) -> None:
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token, "who": "   "}, 422, "请填写上门核实人员。")
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token}, 422, "请填写上门核实人员。")


def test_bad_input_over_long_text(night: County) -> None:
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token, "who": "吴" * 61}, 422,
             "上门核实人员过长：最多 60 个字，现有 61 个。")
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token, "who": "吴主任", "note": "x" * 501}, 422,
             "说明过长：最多 500 个字，现有 501 个。")


def test_bad_input_text_a_database_cannot_hold(night: County) -> None:
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"csrf": token, "who": "吴\x00主任"}, 422,
             "上门核实人员不能包含控制字符")


def test_bad_input_the_csrf_token_missing_or_wrong(night: County) -> None:
    night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"who": "吴主任"}, 403, "请求无效（缺少或错误的校验码）")
    _refused(night, f"/board/callouts/{zhou}/follow-up", {"who": "吴主任", "csrf": "0" * 64}, 403, "请求无效")
    _refused(night, f"/board/callouts/{zhou}/follow-up/result", {"outcome": "reached"}, 403, "请求无效")


def test_bad_input_a_result_with_nobody_sent_or_no_outcome(night: County) -> None:
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    _refused(night, f"/board/callouts/{zhou}/follow-up/result", {"csrf": token, "outcome": "reached"}, 409,
             "尚未安排上门核实，无法记录结果，未作更改。")
    night.client.post(f"/board/callouts/{zhou}/follow-up", data={"csrf": token, "who": "吴主任"})
    _refused(night, f"/board/callouts/{zhou}/follow-up/result", {"csrf": token, "outcome": "maybe"}, 422,
             "请选择核实结果。")


def test_bad_input_refusals_speak_the_boards_language(night: County) -> None:
    token = night.login("liu")
    feng = night.callouts()["feng"]["id"]
    night.client.get("/board?lang=en")
    _refused(night, f"/board/callouts/{feng}/follow-up", {"csrf": token, "who": "吴主任"}, 409,
             "This call-out is acknowledged: no follow-up is needed; nothing changed.")


# -- 2. who was called, who answered ------------------------------------------------------------------


def test_every_attempt_chip_says_to_whom_on_which_channel_and_number(night: County) -> None:
    night.login("liu")
    row = row_of(night.page(), night.callouts()["zhou"]["id"])
    chips = [visible(m) for m in re.findall(r'<div class="to to-[a-z_]+">(.*?)</div>', row, re.S)]
    text = " | ".join(re.sub(r"\s+", " ", c) for c in chips)
    assert text.startswith("本人 短信 11:11:59 语音电话·手机 11:14:59 语音电话·备用手机 11:14:59 "
                           "语音电话·办公电话 11:15:59"), text  # his three numbers, one after the other
    assert "| AB岗 吴主任 短信 11:16:59 |" in text and "| 上级 孙镇长 语音电话·手机 11:21:59 " in text
    assert "| 值班领导 赵局长 短信 11:26:59 |" in text and "| 值班长 钱值班长 短信 11:26:59" in text


def test_a_deputys_answer_is_shown_as_the_deputys_on_the_board_and_in_the_exports(county: County) -> None:
    county.warning = county.post("D-1", [TOWN])
    county.minutes(7)  # 6 min: 李书记, 孙镇长's AB岗, is texted
    county.reply("+8613800000004")  # 李书记: 收到
    county.login("liu")
    sun = county.callouts()["sun"]
    assert sun["state"] == "acknowledged" and sun["acknowledged_relation"] == "deputy"
    row = row_of(county.page(), sun["id"])
    assert "由AB岗李书记确认" in visible(row) and "短信回复" in row
    header, *rows = list(csv.reader(io.StringIO(
        county.client.get(f"/board/warnings/{county.warning}/export.csv").text.lstrip("\ufeff"))))
    assert header[:14] == ["callout", "official", "phone", "roles", "unit", "area", "town", "state",
                           "acknowledged_at", "time_to_ack", "via", "by", "note", "attempts"]  # the contract, kept
    assert header[14:] == ["acknowledged_by_name", "acknowledged_by_relation", "attempts_to", "unreached_at",
                           "follow_up", "follow_up_result"]  # added at the end
    line = dict(zip(header, next(r for r in rows if r[0] == str(sun["id"])), strict=True))
    assert line["by"] == "li" and line["acknowledged_by_name"] == "李书记"
    assert line["acknowledged_by_relation"] == "deputy"
    assert line["attempts_to"].startswith("sms:sent@11:11:59>sun(self); voice[mobile]:sent@11:14:59>sun(self); ")
    assert line["attempts_to"].endswith(">li(deputy)")
    zh_header, *zh_rows = list(csv.reader(io.StringIO(
        county.client.get(f"/board/warnings/{county.warning}/export.csv?lang=zh").text.lstrip("\ufeff"))))
    zh = dict(zip(zh_header, next(r for r in zh_rows if r[0] == str(sun["id"])), strict=True))
    assert zh["确认人"] == "李书记" and zh["确认人身份"] == "AB岗" and zh["状态"] == "已确认"
    assert "AB岗 李书记 短信" in zh["各次尝试（对象）"]
    exported = json.loads(county.client.get(f"/board/warnings/{county.warning}/export.json").text)
    row_json = next(c for c in exported["callouts"] if c["id"] == sun["id"])
    assert row_json["ack_relation"] == "deputy" and row_json["ack_by_name"] == "李书记"


def test_the_chinese_export_has_chinese_headers_and_states_and_the_same_columns(night: County) -> None:
    night.login("liu")
    contract = list(csv.reader(io.StringIO(
        night.client.get(f"/board/warnings/{night.warning}/export.csv").text.lstrip("\ufeff"))))
    chinese = list(csv.reader(io.StringIO(
        night.client.get(f"/board/warnings/{night.warning}/export.csv?lang=zh").text.lstrip("\ufeff"))))
    assert len(contract[0]) == len(chinese[0]) and len(contract) == len(chinese)
    assert chinese[0][:8] == ["叫应编号", "责任人", "电话", "岗位", "单位", "区域", "乡镇", "状态"]
    assert not [h for h in chinese[0] if re.search(r"[A-Za-z]", h)]
    states = {r[7] for r in chinese[1:]}
    assert states == {"未叫醒", "已通知", "已确认"}
    attempts = " ".join(r[13] for r in chinese[1:])
    assert "短信 已发出" in attempts and not re.search(r"sms|voice|delivered|sent", attempts)
    assert {r[7] for r in contract[1:]} == {"unreached", "notified", "acknowledged"}  # the contract keeps codes
    board = night.page()
    assert f'href="/board/warnings/{night.warning}/export.csv?lang=zh"' in board  # the Chinese board's link


# -- 6. Chinese that reads as Chinese ------------------------------------------------------------------

EMOJI = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff\ufe0f]")  # arrows, symbols, dingbats, emoji


def test_no_emoji_or_dingbats_on_the_board_pages_only_svg_icons(night: County) -> None:
    night.login("chen")
    zhou = night.callouts()["zhou"]["id"]
    token = csrf_of(night.page())
    night.client.post(f"/board/callouts/{zhou}/follow-up", data={"csrf": token, "who": "吴主任"})
    for path in ("/board", f"/board/warnings/{night.warning}", f"/board/warnings/{night.warning}?done=ack"):
        html = night.client.get(path).text
        found = sorted({m.group(0) for m in EMOJI.finditer(html)})
        assert not found, f"{path}: {found}"
        assert '<svg class="ic"><use href="#i-' in html and '<symbol id="i-unreached"' in html


def test_no_emoji_or_dingbats_on_the_other_pages_either(night: County) -> None:
    """The login with a wrong password, an error page, the keys page after a key is created and after
    one is revoked, the record and the print: every mark an SVG icon or a character CJK fonts draw."""
    night.client.cookies.clear()
    login = night.client.get("/board/login")
    pages = {"login refused": night.client.post("/board/login", data={"name": "chen", "password": "wrong",
                                                                     "csrf": csrf_of(login.text)}).text}
    night.login("chen")
    pages["error"] = night.client.get("/board/warnings/999999").text
    token = csrf_of(night.client.get("/board/keys").text)
    pages["key created"] = night.client.post("/board/keys", data={"csrf": token, "agency": "qingxi-qx"}).text
    key_id = re.findall(r'action="/board/keys/(k_[0-9a-f]+)/revoke"', pages["key created"])[-1]
    pages["key revoked"] = night.client.post(f"/board/keys/{key_id}/revoke",
                                             data={"csrf": token, "confirm": "yes"}).text
    pages["record"] = night.client.get(f"/board/warnings/{night.warning}/record").text
    pages["print"] = night.client.get(f"/board/warnings/{night.warning}/print").text
    assert "已吊销" in pages["key revoked"] and "预警叫应一事一档" in pages["print"]  # the pages asked for
    for name, html in pages.items():
        # → and √ are in GB 2312 (Noto CJK draws them): the record's "周村长→吴主任", the print's √/×
        found = sorted({m.group(0) for m in EMOJI.finditer(html)} - {"→", "√"})
        assert not found, f"{name}: {found}"


def test_the_chinese_board_has_no_english_words(night: County) -> None:
    """What a duty officer reads: no English beside the Chinese (the names of things the county
    itself wrote in Latin letters, the brand's CSV/JSON/PDF and the language switch excepted)."""
    night.login("liu")
    for path in ("/board", f"/board/warnings/{night.warning}"):
        text = visible(night.client.get(path).text)
        words = set(re.findall(r"[A-Za-z]{2,}", text)) - {"CSV", "JSON", "English", "liu", "AB"}
        assert not words, f"{path}: {sorted(words)}"


def test_times_since_read_as_chinese(night: County) -> None:
    night.login("liu")
    assert "发布于 16分钟前" in night.page()
    assert "发布于 3分钟前" in night.client.get("/board").text  # the latest update, at 11:25
    night.clock.now += timedelta(hours=2)
    assert "发布于 2小时前" in night.page()
    english = night.client.get(f"/board/warnings/{night.warning}?lang=en").text
    assert "issued 2 h ago" in english


def test_role_names_take_chinese_punctuation_and_the_level_reads_one_ji(night: County) -> None:
    night.login("liu")
    html = night.page()
    assert "村防汛责任人（村级）" in html and "村防汛责任人(村级)</" not in html
    assert "红色 · Ⅰ级" in html


def test_the_duty_chief_is_shown_as_the_duty_chief_and_the_fallback_in_chinese(county: County) -> None:
    county.warning = county.post("H-1", [TOWN], hazard="heat", headline="青溪县气象台发布高温红色预警信号")
    county.login("liu")
    html = county.page()
    ids = {person: c["id"] for person, c in county.callouts().items()}
    assert set(ids) == {"zhao", "qian"}  # no plan for heat: the duty leader and chief
    assert re.search(r"<td>值班长、县应急值班员<small>", row_of(html, ids["qian"]))
    assert re.search(r"<td>值班领导、应急管理局局长<small>", row_of(html, ids["zhao"]))
    assert "无匹配方案，已通知值班领导" in html and "no plan for" not in html
    assert "no plan for heat" in county.client.get(f"/board/warnings/{county.warning}?lang=en").text


def test_the_terminal_status_view_names_people_not_roster_ids(night: County) -> None:
    from rich.console import Console

    from dispatcher.views import status_view

    console = Console(record=True, width=400)
    console.print(status_view(night.url, night.warning, night.clock()))
    text = console.export_text()
    assert "→AB岗吴主任" in text and "→上级孙镇长" in text and "→值班长钱值班长" in text
    assert not re.search(r"→(wu|sun|zhao|qian)\b", text)
    lines = [line for line in text.splitlines() if "周村长" in line or "冯防汛员" in line]
    assert "周村长" in lines[0] and "冯防汛员" in lines[-1]  # 未叫醒 first, as on the board


def test_in_english_the_unreached_line_and_the_chips_are_english_but_the_countys_names(night: County) -> None:
    from dispatcher.services.site import current_site

    with transaction(night.url) as session:
        site = current_site(session)
        names = [p.name for p in site.people.values()] + [p.unit for p in site.people.values()]
        names += list(site.roles.values()) + [a.name for a in site.areas] + [r.name for r in site.rooms]
    names += ["青溪县气象台发布暴雨红色预警信号", "叫应", "中文", "吴主任、网格员王芳"]
    token = night.login("liu")
    zhou = night.callouts()["zhou"]["id"]
    night.client.post(f"/board/callouts/{zhou}/follow-up", data={"csrf": token, "who": "吴主任、网格员王芳"})
    html = night.client.get(f"/board/warnings/{night.warning}?lang=en").text
    row = visible(row_of(html, zhou))
    assert "deputy 吴主任" in row and "superior 孙镇长" in row and "duty chief 钱值班长" in row
    assert "Phone now" in row and "office phone" in row and "town duty room" in row
    assert "deputy, superior and duty officers told" in row and "Sent: 吴主任、网格员王芳" in row
    text = visible(html)
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "")
    cjk = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
    left = sorted({text[max(0, m.start() - 15):m.end() + 15] for m in cjk.finditer(text)})
    assert not left, f"Chinese left in the English board: {left}"
