"""The period assessment (考核) as a county office reads it: call-outs built in the database of the
tiny site (SQLite and PostgreSQL) — acknowledged at 3, 10, 20 and 40 minutes and at exactly five,
unreached, by a deputy and by a duty officer, cancelled, a drill, a call-out in another month, a
person who left the roster, and call-outs just outside the period in the county's time zone."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from dispatcher.csvsafe import BOM
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, PersonRow, WarningRow
from dispatcher.services.assessment import (
    Assessment,
    Line,
    PeriodError,
    assess,
    check_period,
    parse_period,
    tables,
    to_csv,
    to_xlsx,
)
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW
from tests.e2e.conftest import TINY_SITE

CST = ZoneInfo("Asia/Shanghai")
JULY_1 = datetime(2026, 7, 1, 0, 0, 30, tzinfo=CST)  # 30 s into the period, local (16:00:30 UTC the day before)
AUGUST_5 = datetime(2026, 8, 5, 14, 0, tzinfo=CST)
DRILL_DAY = datetime(2026, 7, 20, 9, 0, tzinfo=CST)
PERIOD = (date(2026, 7, 1), date(2026, 8, 31))


def _warning(session, wid: str, at: datetime, drill: bool = False) -> None:
    session.add(WarningRow(id=wid, sender="qingxi-qx", identifier=wid, msg_type="alert", references=[],
                           hazard="rainstorm", level="red", areas=["330599100"], headline=f"暴雨红色预警 {wid}",
                           sent=at, drill=drill, status="expired", received_at=at, source_format="json"))
    session.flush()


def _callout(session, wid: str, person: str, at: datetime, state: str, after: timedelta | None = None,
             by: str | None = None, drill: bool = False) -> None:
    acked = at + after if after is not None else None
    session.add(CalloutRow(
        warning_id=wid, record_id=wid, person_id=person, plan_id="rainstorm-red", hazard="rainstorm", level="red",
        priority=4, drill=drill, state=state, steps=[], next_step=5, ack_code="1234", started_at=at,
        notified_at=at, acknowledged_at=acked, acknowledged_by=(by or person) if acked else None,
        ack_via=("manual" if by and by.startswith("user:") else "sms") if acked else None,
        unreached_at=at + timedelta(minutes=15) if state == "unreached" else None))


def build_period(url: str, load: bool = True) -> None:
    """The tiny county's summer: two real warnings (July and August), one drill, and call-outs just
    outside 2026-07-01 .. 2026-08-31 (local) on both sides."""
    with transaction(url) as session:
        if load:
            load_site_files(session, TINY_SITE, FIXED_NOW)
        # 离任者 left the roster: kept in the people table, deactivated, as a site reload leaves them.
        session.add(PersonRow(id="gone", name="离任者", phone="+8613800000099", area_code="330599100202",
                              roles=["village_flood_officer"], unit="石桥村民委员会", active=False))
        _warning(session, "W-JUNE", JULY_1 - timedelta(minutes=2))
        _callout(session, "W-JUNE", "qian", JULY_1 - timedelta(minutes=2), "acknowledged", timedelta(minutes=1))
        _warning(session, "W-JULY", JULY_1)
        _callout(session, "W-JULY", "sun", JULY_1, "acknowledged", timedelta(minutes=3))
        _callout(session, "W-JULY", "zhou", JULY_1, "acknowledged", timedelta(minutes=10), by="wu")  # the deputy
        _callout(session, "W-JULY", "zheng", JULY_1, "acknowledged", timedelta(minutes=20))
        _callout(session, "W-JULY", "zhao", JULY_1, "acknowledged", timedelta(minutes=40), by="user:liu")
        _callout(session, "W-JULY", "qian", JULY_1, "unreached")
        _callout(session, "W-JULY", "li", JULY_1, "cancelled")  # taken over or cancelled: left out
        _warning(session, "D-DRILL", DRILL_DAY, drill=True)
        _callout(session, "D-DRILL", "sun", DRILL_DAY, "acknowledged", timedelta(minutes=1), drill=True)
        _callout(session, "D-DRILL", "zheng", DRILL_DAY, "unreached", drill=True)
        _warning(session, "W-AUG", AUGUST_5)
        _callout(session, "W-AUG", "sun", AUGUST_5, "unreached")
        _callout(session, "W-AUG", "zhou", AUGUST_5, "acknowledged", timedelta(minutes=5))  # exactly 5:00
        _callout(session, "W-AUG", "gone", AUGUST_5, "acknowledged", timedelta(minutes=2))
        september = datetime(2026, 9, 1, 0, 0, tzinfo=CST)  # the first moment after the period
        _warning(session, "W-SEPT", september)
        _callout(session, "W-SEPT", "sun", september, "unreached")


def run(url: str, start: date = PERIOD[0], end: date = PERIOD[1]) -> Assessment:
    with transaction(url, write=False) as session:
        return assess(session, current_site(session), start, end, FIXED_NOW)


def figures(line: Line) -> tuple:
    return (line.warnings, line.callouts, line.acknowledged, line.within, line.by_others, line.unreached,
            line.median_seconds)


@pytest.fixture
def report(database_url: str) -> Assessment:
    build_period(database_url)
    return run(database_url)


def test_the_totals_a_county_office_reads(report: Assessment) -> None:
    # 8 real call-outs in 2 warnings: 6 acknowledged (at 2, 3, 5:00, 10, 20 and 40 min), 2 unreached;
    # within 5 min: 2, 3 and exactly 5:00; within 15 adds 10; within 30 adds 20; 40 min is in none.
    assert figures(report.real.total) == (2, 8, 6, (3, 4, 5), 2, 2, 450.0)  # median of 2,3,5,10,20,40 min
    assert report.real.total.rate(0) == 3 / 8
    assert (report.site, report.timezone, report.start, report.end) == ("小溪县", "Asia/Shanghai", *PERIOD)


def test_the_deputy_and_the_duty_officer_count_as_acknowledged_and_are_told_apart(report: Assessment) -> None:
    people = {x.key: x for x in report.real.by_person}
    assert people["zhou"].acknowledged == 2 and people["zhou"].by_others == 1  # 吴主任 answered once for him
    assert people["zhao"].acknowledged == 1 and people["zhao"].by_others == 1  # a duty officer, on his behalf
    assert people["sun"].by_others == 0


def test_by_month_in_local_time(report: Assessment) -> None:
    months = {x.name: x for x in report.real.by_month}
    assert list(months) == ["2026-07", "2026-08"]
    assert figures(months["2026-07"]) == (1, 5, 4, (1, 2, 3), 2, 1, 900.0)  # 3, 10, 20, 40 min
    assert figures(months["2026-08"]) == (1, 3, 2, (2, 2, 2), 0, 1, 210.0)  # 2 and 5 min


def test_by_town_with_county_level_officials_apart(report: Assessment) -> None:
    towns = {x.name: x for x in report.real.by_town}
    assert list(towns) == ["县级", "青溪镇"]
    assert figures(towns["县级"]) == (1, 2, 1, (0, 0, 0), 1, 1, 2400.0)  # 赵局长 at 40 min, 钱值班长 unreached
    assert figures(towns["青溪镇"]) == (2, 6, 5, (3, 4, 5), 1, 1, 300.0)  # villages count in their town


def test_by_role_with_the_sites_role_names(report: Assessment) -> None:
    roles = {x.name: x for x in report.real.by_role}
    assert list(roles) == ["应急管理局局长", "县应急值班员", "乡镇长", "村防汛责任人"]  # the site's order
    assert figures(roles["乡镇长"]) == (2, 2, 1, (1, 1, 1), 0, 1, 180.0)
    assert figures(roles["村防汛责任人"]) == (2, 4, 4, (2, 3, 4), 1, 0, 450.0)  # with the one who left


def test_a_person_who_left_the_roster_still_counts(report: Assessment) -> None:
    gone = next(x for x in report.real.by_person if x.key == "gone")
    assert (gone.name, gone.town, gone.roles, gone.on_roster) == ("离任者", "青溪镇", ("村防汛责任人",), False)
    assert figures(gone) == (1, 1, 1, (1, 1, 1), 0, 0, 120.0)
    assert all(x.on_roster for x in report.real.by_person if x.key != "gone")


def test_the_people_most_often_unreached(report: Assessment) -> None:
    assert [(x.name, x.unreached) for x in report.real.most_unreached] == [("孙镇长", 1), ("钱值班长", 1)]
    assert [x.name for x in report.drills.most_unreached] == ["郑防汛员"]


def test_drills_are_apart(report: Assessment) -> None:
    assert figures(report.drills.total) == (1, 2, 1, (1, 1, 1), 0, 1, 60.0)
    assert [x.name for x in report.drills.by_month if x.callouts] == ["2026-07"]
    assert all(x.key not in ("D-DRILL",) for x in report.real.by_person)
    assert "孙镇长" in {x.name for x in report.drills.by_person}


def test_the_period_is_local_calendar_days_inclusive(database_url: str) -> None:
    build_period(database_url)
    june = run(database_url, date(2026, 6, 30), date(2026, 6, 30))  # 23:58 local on 30 June: in June
    assert figures(june.real.total)[:3] == (1, 1, 1)
    one_day = run(database_url, date(2026, 7, 1), date(2026, 7, 1))  # 00:00:30 local on 1 July
    assert one_day.real.total.callouts == 5
    assert run(database_url, date(2026, 9, 1), date(2026, 9, 1)).real.total.unreached == 1
    empty = run(database_url, date(2025, 1, 1), date(2025, 12, 31))
    assert figures(empty.real.total) == (0, 0, 0, (0, 0, 0), 0, 0, None)
    assert len(empty.real.by_month) == 12 and not empty.real.by_person and empty.real.total.rate(0) is None


def test_tables_and_json_name_people_and_translate(report: Assessment) -> None:
    shown = {t.key: t for t in tables(report.real)}
    assert list(shown) == ["total", "month", "town", "role", "unreached", "person"]
    assert shown["person"].lead == ("姓名", "乡镇", "岗位", "单位", "备注")
    english = {t.key: t for t in tables(report.real, {"县级": "County level", "按乡镇": "By town"}.get)}
    assert english["town"].title == "By town" and english["town"].lines[0].name == "County level"
    data = report.as_json()
    gone = next(p for p in data["real"]["by_person"] if p["key"] == "gone")
    assert gone["on_roster"] is False and gone["acknowledged_within"] == {"5": 1, "15": 1, "30": 1}


def test_csv_has_a_bom_and_numbers(report: Assessment) -> None:
    text = to_csv(report)
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text.removeprefix(BOM))))
    header = rows[0]
    assert header[:3] == ["类别", "分组", "名称"] and "5分钟确认率(%)" in header
    total = dict(zip(header, rows[1], strict=True))
    assert (total["类别"], total["分组"], total["叫应次数"]) == ("真实预警", "合计", "8")
    assert total["5分钟确认率(%)"] == "37.5"
    assert total["确认用时中位数（分钟）"] == "7.5"
    drills = [r for r in rows[1:] if r[0] == "演练"]
    assert drills and drills[0][1] == "合计"


def test_xlsx_sheets_headers_and_numbers(report: Assessment) -> None:
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(report)))
    assert book.sheetnames == ["汇总", "按月份", "按乡镇", "按岗位", "按人员", "未叫醒最多", "演练"]
    for sheet in book:
        assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold
    people = book["按人员"]
    header = [c.value for c in people[1]]
    gone = next(dict(zip(header, [c.value for c in row], strict=True)) for row in people.iter_rows(min_row=2)
                if row[0].value == "离任者")
    assert gone["备注"] == "已不在名册" and gone["叫应次数"] == 1 and gone["5分钟确认率"] == 1
    rate = next(c for c in people[2] if c.column == header.index("5分钟确认率") + 1)
    assert rate.number_format == "0.0%"
    assert book["按人员"].column_dimensions["C"].width >= 12


def test_cells_from_outside_never_run_as_formulas(database_url: str) -> None:
    build_period(database_url)
    with transaction(database_url) as session:
        session.add(PersonRow(id="evil", name='=HYPERLINK("http://x.invalid","点击")', area_code="330599100",
                              roles=[], unit="@SUM(1)", active=False))
        _callout(session, "W-AUG", "evil", AUGUST_5, "unreached")
    result = run(database_url)
    assert "'=HYPERLINK" in to_csv(result) and ",'@SUM(1)," in to_csv(result)
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(result)))["按人员"]
    cell = next(row[0] for row in sheet.iter_rows(min_row=2) if str(row[0].value).startswith("="))
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


@pytest.mark.parametrize(("start", "end", "said"), [
    ("2026-13-01", "2026-09-30", "--from 不是有效日期"),
    ("2026-06-01", "2026/09/30", "--to 不是有效日期"),
    ("", "2026-09-30", "--from 不是有效日期"),
    ("2026-09-01", "2026-06-30", "晚于"),
    ("2021-06-01", "2026-06-01", "超过 5 年"),
    ("1900-01-01", "1900-01-02", "超出范围"),
])
def test_bad_periods_are_refused_by_name(start: str, end: str, said: str) -> None:
    with pytest.raises(PeriodError) as refused:
        parse_period(start, end)
    assert said in refused.value.zh and refused.value.en


def test_five_years_is_the_longest_period() -> None:
    assert parse_period("2021-06-01", "2026-05-31") == (date(2021, 6, 1), date(2026, 5, 31))
    check_period(date(2024, 2, 29), date(2029, 2, 27))
    with pytest.raises(PeriodError):
        check_period(date(2024, 2, 29), date(2029, 2, 28))
