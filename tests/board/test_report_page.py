"""The period assessment on the board (/board/report) over HTTP, SQLite and PostgreSQL: who sees it,
the tables, the downloads, bad periods, English — and that it agrees with a warning's record page."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import openpyxl

from dispatcher.board import stats, views
from dispatcher.csvsafe import BOM
from dispatcher.db.session import transaction
from dispatcher.services.assessment import assess
from dispatcher.services.site import current_site
from tests.board.conftest import Board, csrf_of

JULY = "from=2026-07-01&to=2026-07-31"


def _answer(board: Board, person: str, after: timedelta) -> None:
    """An officer acknowledges ``person``'s call-out on their behalf, ``after`` the warning."""
    callout = next(c["id"] for c in board.callouts() if c["official"]["id"] == person)
    board.clock.now += after
    token = csrf_of(board.page())
    response = board.client.post(f"/board/callouts/{callout}/ack", data={"csrf": token, "note": "电话联系上"},
                                 follow_redirects=False)
    assert response.status_code == 303, response.text


def test_an_officer_sees_the_tables_and_downloads(board: Board) -> None:
    board.login("liu")
    _answer(board, "sun", timedelta(minutes=3))
    page = board.client.get(f"/board/report?{JULY}")
    assert page.status_code == 200, page.text
    html = page.text
    for text in ("叫应考核", "小溪县", "2026-07-01 至 2026-07-31", "真实预警", "按月份", "按乡镇", "按岗位", "按人员",
                 "青溪镇", "乡镇长", "村防汛责任人", "孙镇长", "周村长", "郑防汛员", "他人代确认", "本期无演练"):
        assert text in html, text
    linked = JULY.replace("&", "&amp;")
    assert f'href="/board/report.xlsx?{linked}"' in html and f'href="/board/report.csv?{linked}"' in html
    assert 'href="/board/report"' in board.client.get("/board").text  # in the navigation
    assert not re.search("[\U0001F000-\U0001FAFF\u2600-\u27BF]", html.split("<main>")[1])  # no emoji

    book = board.client.get(f"/board/report.xlsx?{JULY}")
    assert book.status_code == 200 and "spreadsheetml" in book.headers["content-type"]
    assert 'filename="jiaoying-report-2026-07-01-2026-07-31.xlsx"' in book.headers["content-disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(book.content))
    assert workbook.sheetnames == ["汇总", "按月份", "按乡镇", "按岗位", "按人员", "未叫醒最多", "演练"]
    assert workbook["汇总"].freeze_panes == "A2" and workbook["汇总"]["C2"].value == 3  # three call-outs

    table = board.client.get(f"/board/report.csv?{JULY}")
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert table.content.startswith(BOM.encode("utf-8")) and "孙镇长" in table.content.decode("utf-8")


def test_the_report_agrees_with_the_warnings_record(board: Board) -> None:
    """The same definitions as the record page's statistics (board/stats.py): totals, and the share
    acknowledged within 5, 15 and 30 minutes."""
    board.login("liu")
    _answer(board, "sun", timedelta(minutes=3))
    _answer(board, "zhou", timedelta(minutes=9))  # 12 minutes after the warning
    with transaction(board.database_url, write=False) as session:
        record = next(c["warning"] for c in board.callouts())
        rows = views.board_rows(session, record, board.clock.now, show_phones=False)
        result = assess(session, current_site(session), date(2026, 7, 16), date(2026, 7, 16))
    [everyone] = stats.table(rows, lambda r: ["all"])
    total = result.real.total
    assert (total.callouts, total.acknowledged) == (everyone["total"], everyone["acknowledged"]) == (3, 2)
    assert [round(100 * n / total.callouts) for n in total.within] == everyone["rates"] == [33, 67, 67]
    by_town = {g["name"]: g for g in stats.table(rows, lambda r: [r["town"]])}
    town = next(x for x in result.real.by_town if x.name == "青溪镇")
    assert (town.callouts, town.acknowledged) == (by_town["青溪镇"]["total"], by_town["青溪镇"]["acknowledged"])
    assert total.by_others == 2  # on their behalf, by the officer


def test_viewers_see_the_page_but_not_the_downloads(board: Board) -> None:
    board.login("wang")
    page = board.client.get(f"/board/report?{JULY}")
    assert page.status_code == 200 and "孙镇长" in page.text
    assert "report.xlsx" not in page.text and "+86" not in page.text  # no phone numbers on it anyway
    refused = board.client.get(f"/board/report.xlsx?{JULY}", headers={"Accept": "text/html"})
    assert refused.status_code == 403 and "权限不足" in refused.text
    assert board.client.get(f"/board/report.csv?{JULY}").status_code == 403


def test_signed_out_is_sent_to_sign_in(board: Board) -> None:
    response = board.client.get(f"/board/report?{JULY}", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/board/login"
    assert board.client.get(f"/board/report.csv?{JULY}").status_code == 401


def test_without_dates_this_year_to_today(board: Board) -> None:
    board.login("liu")
    page = board.client.get("/board/report")
    assert page.status_code == 200
    assert "2026-01-01 至 2026-07-16" in page.text  # the fixed clock: 16 July 2026, Beijing time
    assert 'value="2026-01-01"' in page.text and 'value="2026-07-16"' in page.text


def test_a_bad_period_is_said_on_the_page(board: Board) -> None:
    board.login("liu")
    after = board.client.get("/board/report?from=2026-09-01&to=2026-06-01")
    assert after.status_code == 422 and "起始日期 2026-09-01 晚于 结束日期 2026-06-01" in after.text
    assert "report.xlsx" not in after.text
    wrong = board.client.get("/board/report?from=2026-02-30&to=2026-06-01")
    assert wrong.status_code == 422 and "起始日期 不是有效日期" in wrong.text
    long = board.client.get("/board/report?from=2020-01-01&to=2026-06-01")
    assert long.status_code == 422 and "超过 5 年" in long.text
    half = board.client.get("/board/report?from=2026-06-01")
    assert half.status_code == 422 and "结束日期 不是有效日期" in half.text
    assert board.client.get("/board/report.xlsx?from=2026-09-01&to=2026-06-01").status_code == 422


def test_in_english(board: Board) -> None:
    board.login("liu")
    page = board.client.get(f"/board/report?{JULY}&lang=en")
    assert page.status_code == 200
    for text in ("Call-out assessment", "Real warnings", "By town", "Ack ≤5 min", "Median time to ack",
                 "No drills in this period", "2026-07-01 to 2026-07-31"):
        assert text in page.text, text
    assert "English" not in page.text.split("<main>")[1]
    book = openpyxl.load_workbook(io.BytesIO(board.client.get(f"/board/report.xlsx?{JULY}").content))
    assert book.sheetnames[:3] == ["Summary", "By month", "By town"]
