"""Security findings on the board and the read API, each with its bad input: formula cells in
CSV exports, phone numbers shown to viewers and agencies, an SSE stream outliving its sign-in, and
SSE version tags that are garbage or beyond any calendar."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from typing import Any

import pytest

from dispatcher.board import sse
from dispatcher.db.session import transaction
from dispatcher.domain.callouts import AckVia
from dispatcher.services import ack
from dispatcher.services.receipts import inbound_sms
from dispatcher.services.users import end_sessions_of
from tests.board.conftest import Board

SUN_PHONE, SUN_MASKED = "+8613800000003", "+86138****0003"
FORMULAS = ['=HYPERLINK("http://evil.example/x","点击查看详情")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "+cmd|' /C calc'!A0"]


def _callout_of(board: Board, person: str) -> int:
    return next(c["id"] for c in board.callouts() if c["official"]["id"] == person)


def _csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_board_csv_export_neutralises_formula_cells(board: Board) -> None:
    # bad input: notes typed by whoever acknowledges on someone's behalf, opened later in Excel/WPS
    callouts = [c["id"] for c in board.callouts()]
    for callout, note in zip(callouts, FORMULAS, strict=False):
        response = board.client.post(f"/api/v1/callouts/{callout}/ack", json={"note": note}, headers=board.api)
        assert response.status_code == 200, response.text
    board.login("liu")
    export = board.client.get(f"/board/warnings/{board.warning}/export.csv")
    assert export.status_code == 200
    header, *rows = _csv_rows(export.text)
    notes = {row[header.index("note")] for row in rows}
    assert notes == {"'" + f for f in FORMULAS[:len(callouts)]}
    phones = {row[header.index("phone")] for row in rows}
    assert SUN_PHONE not in phones and "'" + SUN_PHONE in phones  # "+86…" is formula-leading too
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row


def _sms_from_sun(board: Board) -> None:
    """Sun replies 收到 by SMS: the record's inbound_sms event has his number as its actor."""
    with transaction(board.database_url) as session:
        outcome = inbound_sms(session, board.clock(), sender=SUN_PHONE, body="收到")
    assert outcome.result is not None and outcome.result.acknowledged


def test_the_record_page_masks_an_sms_senders_number_for_viewers(board: Board) -> None:
    # bad input: an inbound SMS (its sender is the event's actor), then a viewer opens the record
    _sms_from_sun(board)
    board.login("wang")  # viewer
    page = board.client.get(f"/board/warnings/{board.warning}/record")
    assert page.status_code == 200
    assert "inbound_sms" in page.text and SUN_MASKED in page.text
    assert SUN_PHONE not in page.text
    board.client.cookies.clear()
    board.login("liu")  # officers see numbers, as in the rows
    assert SUN_PHONE in board.client.get(f"/board/warnings/{board.warning}/record").text


def test_an_acknowledger_who_is_a_phone_number_is_masked_for_agencies_and_viewers(
        board: Board, auth: dict[str, str]) -> None:
    # bad input: an acknowledgement whose actor is the replying phone number
    zhou = _callout_of(board, "zhou")
    with transaction(board.database_url) as session:
        assert ack.acknowledge_callout(session, board.clock(), zhou, via=AckVia.SMS, by="+8613800000005").acknowledged
    url = f"/api/v1/warnings/{board.warning}/callouts"
    as_agency = next(c for c in board.client.get(url, headers=auth).json()["callouts"] if c["id"] == zhou)
    assert as_agency["acknowledged_by"] == "+86138****0005"
    as_admin = next(c for c in board.callouts() if c["id"] == zhou)
    assert as_admin["acknowledged_by"] == "+8613800000005"
    board.login("wang")
    record = board.client.get(f"/board/warnings/{board.warning}/record").text
    assert "+8613800000005" not in record and "+86138****0005" in record


def test_the_record_api_masks_an_sms_senders_number_for_agencies(board: Board, auth: dict[str, str]) -> None:
    # bad input: an inbound SMS, then the posting agency reads the warning's record
    _sms_from_sun(board)
    body = board.client.get(f"/api/v1/warnings/{board.warning}/record", headers=auth).text
    assert "inbound_sms" in body and SUN_PHONE not in body and SUN_MASKED in body


def test_the_record_csv_neutralises_formula_cells(board: Board) -> None:
    # bad input: an actor that starts with "+" (an SMS sender) in the record's CSV export
    _sms_from_sun(board)
    text = board.client.get(f"/api/v1/warnings/{board.warning}/record", params={"format": "csv"},
                            headers=board.api).text
    header, *rows = _csv_rows(text)
    actors = [row[header.index("actor")] for row in rows]
    assert "'" + SUN_PHONE in actors and SUN_PHONE not in actors


# -- SSE -----------------------------------------------------------------------------------------

def _read_stream(board: Board, url: str, headers: dict[str, Any] | None = None,
                 on_open: Any = None) -> tuple[int, str, float]:
    started = time.monotonic()
    with board.client.stream("GET", url, headers=headers or {}) as response:
        if response.status_code != 200:
            return response.status_code, response.read().decode(), time.monotonic() - started
        if on_open is not None:
            on_open()
        text = "".join(f"{line}\n" for line in response.iter_lines())
    return response.status_code, text, time.monotonic() - started


def test_an_open_stream_ends_soon_after_its_user_is_signed_out(board: Board,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # bad input: a board left streaming on a lost laptop after `jiaoying users sign-out liu`
    monkeypatch.setattr(sse, "SESSION_CHECK", 0.3, raising=False)
    monkeypatch.setattr(sse, "STREAM_LIFETIME", 30.0)
    board.login("liu")

    def sign_out_soon() -> None:
        def later() -> None:
            time.sleep(1.0)
            with transaction(board.database_url) as session:
                assert end_sessions_of(session, "liu", board.clock()) == 1

        threading.Thread(target=later, daemon=True).start()

    for url in (f"/board/warnings/{board.warning}/live", "/board/live"):
        status, text, took = _read_stream(board, url, on_open=sign_out_soon)
        assert status == 200
        assert "event: signed_out" in text and took < 10, (took, text[-300:])
        assert board.client.get(url).status_code == 401  # and the reconnect is refused
        board.client.cookies.clear()
        assert board.login("liu").status_code == 303


@pytest.mark.parametrize("bad", ["garbage", "abc.def", f"{'0' * 16}.{2 ** 70}", "0123456789abcdef.²³",
                                 "0123456789abcdef." + "9" * 300])
def test_a_bad_since_or_last_event_id_streams_from_the_start(board: Board, monkeypatch: pytest.MonkeyPatch,
                                                              bad: str) -> None:
    # bad input: ?since=<bad> and Last-Event-ID: <bad> (2**70 used to overflow into a 500)
    monkeypatch.setattr(sse, "STREAM_LIFETIME", 0.3)
    board.login("liu")
    url = f"/board/warnings/{board.warning}/live"
    for status, text, _ in (_read_stream(board, f"{url}?since={bad}"),
                            _read_stream(board, url, headers={"Last-Event-ID": bad.encode()})):
        assert status == 200, text
        first = next(line for line in text.splitlines() if line.startswith("data: "))
        assert len(json.loads(first.removeprefix("data: "))["rows"]) == len(board.callouts())  # every row
