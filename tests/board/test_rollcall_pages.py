"""Duty roll-calls (值班点名) on the board, on the sample county: an officer starts one, the page
shows each duty room's outcome and who answered when and how; the list and the workbook; refusals
(a viewer, an unknown roll-call, an unknown id) change nothing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.services import ack
from dispatcher.services.site import current_site
from tests.board.conftest import Desk, desk_on
from tests.conftest import FIXED_NOW, Clock
from tests.support.harness import settle_engine

DAY = FIXED_NOW.replace(hour=2, minute=0)  # 10:00 Beijing, between the scheduled roll-calls


class Duty(Desk):
    def rollcalls(self) -> int:
        with transaction(self.url, write=False) as session:
            return int(session.scalar(select(func.count()).select_from(WarningRow)
                                      .where(WarningRow.kind == "rollcall")) or 0)

    def reply(self, person: str, body: str = "1") -> None:
        with transaction(self.url) as session:
            phone = current_site(session).people[person].phone
            ack.acknowledge_reply(session, self.clock(), phone=phone, via=AckVia.SMS, body=body)


@pytest.fixture
def duty(site_loaded: str) -> Iterator[Duty]:
    clock = Clock(DAY)
    with desk_on(site_loaded, clock) as (client, engine):
        yield Duty(client, engine, clock, site_loaded)


def test_an_officer_starts_a_roll_call_and_sees_each_room_answer(duty: Duty) -> None:
    token = duty.login("liu")
    listing = duty.client.get("/board/rollcalls").text
    assert "立即点名" in listing and '<option value="daily">每日值班点名</option>' in listing
    started = duty.client.post("/board/rollcalls", data={"csrf": token, "rollcall": "daily"}, follow_redirects=False)
    assert started.status_code == 303
    page_url = started.headers["location"]
    assert re.fullmatch(r"/board/rollcalls/W\d{8}-\w{6}", page_url)
    waiting = duty.client.get(page_url).text
    assert 'http-equiv="refresh"' in waiting  # not yet applied: the page comes back by itself
    settle_engine(duty.engine)
    duty.clock.now += timedelta(minutes=2)
    duty.reply("chen-li")  # the county room's chief answers; 龙潭镇 and 白云镇 do not
    duty.clock.now += timedelta(minutes=10)
    settle_engine(duty.engine)
    page = duty.client.get(page_url).text
    county = page.split('id="room-330599"')[1].split("</section>")[0]
    baiyun = page.split('id="room-330599103"')[1].split("</section>")[0]
    assert "青溪县值班室" in county and '<span class="room-verdict ok">到岗</span>' in county
    assert "<td>陈立</td><td>值班长</td><td>按时应答</td>" in county and "短信" in county
    assert '<span class="room-verdict no">未到岗</span>' in baiyun and "<td>未应答</td>" in baiyun
    assert 'http-equiv="refresh"' not in page  # settled
    listing = duty.client.get("/board/rollcalls").text
    assert "青溪县值班室 到岗" in listing and "白云镇值班室 未到岗" in listing
    record = duty.client.get(f"/board/warnings/{page_url.rsplit('/', 1)[1]}/record")
    assert record.status_code == 200 and "每日值班点名" in record.text
    english = duty.client.get(page_url + "?lang=en").text
    assert "manned" in english and "No answer" in english
    report = duty.client.get("/board/report?from=2026-07-01&to=2026-07-31&lang=zh").text
    rates = report.split('id="rollcalls-rate"')[1].split("</table>")[0]
    assert "<td>青溪县值班室</td><td>2026-07</td><td class=\"num\">1</td><td class=\"num\">1</td>" in rates
    assert "<td>白云镇值班室</td><td>全期</td>" in rates and "0.0%" in rates
    workbook = duty.client.get("/board/rollcalls/export.xlsx")
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.content))["值班点名"]
    assert [c.value for c in next(sheet.iter_rows(min_row=2, max_row=2))][2:8] == [
        "青溪县值班室", 3, 1, 0, 2, "到岗"]


def test_refusals_start_nothing(duty: Duty) -> None:
    token = duty.login("wang")  # a viewer may look, not start
    assert duty.client.get("/board/rollcalls").status_code == 200
    assert "立即点名" not in duty.client.get("/board/rollcalls").text
    refused = duty.client.post("/board/rollcalls", data={"csrf": token, "rollcall": "daily"})
    assert refused.status_code == 403 and "权限不足" in refused.text
    assert duty.client.get("/board/rollcalls/export.xlsx").status_code == 403
    token = duty.login("liu")
    # bad input: a roll-call the site does not have
    unknown = duty.client.post("/board/rollcalls", data={"csrf": token, "rollcall": "nightly"})
    assert unknown.status_code == 422 and "没有这个值班点名：nightly" in unknown.text
    # bad input: no CSRF token
    assert duty.client.post("/board/rollcalls", data={"rollcall": "daily"}).status_code == 403
    # bad input: an id no roll-call has, and a warning's id is not a roll-call
    assert duty.client.get("/board/rollcalls/W20260716-NOPE00").status_code == 404
    assert duty.client.get("/board/rollcalls/" + "x" * 300).status_code == 404
    assert duty.rollcalls() == 0
