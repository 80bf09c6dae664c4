"""The printable 一事一档 page carries the record's head — the last event's code (its MAC, shortened),
the number of events and the key's id — so a paper copy can be checked against the database later."""

from __future__ import annotations

from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from tests.board.conftest import Board


def test_the_printed_record_carries_its_head(board: Board) -> None:
    board.login("liu")
    html = board.client.get(f"/board/warnings/{board.warning}/print").text
    with transaction(board.database_url) as session:
        head = record_repo.head(session, board.warning)
        events = record_repo.events(session, board.warning)
        assert record_repo.check(session, board.warning).intact
    assert head.count == len(events) and head.mac == events[-1].hash and head.key_id == events[-1].key_id
    assert f"{len(events)} · 末条事件校验码 <code>{head.mac[:16]}</code>" in html
    assert f"密钥编号 <code>{head.key_id}</code>" in html and "档案登记号 1" in html
    assert f"运行 jiaoying record {board.warning} --verify，须校验通过，且第 {head.count} 条事件的校验码" in html
    english = board.client.get(f"/board/warnings/{board.warning}/print?lang=en").text
    assert f"last event&#39;s code <code>{head.mac[:16]}</code>" in english
    assert f"and event {head.count}&#39;s code must be the one above" in english


def test_a_later_event_does_not_change_what_was_printed(board: Board) -> None:
    """The head printed is that of the events the page shows; the record grows after, the old code
    stays the code of that event."""
    board.login("liu")
    before = board.client.get(f"/board/warnings/{board.warning}/print").text
    with transaction(board.database_url) as session:
        printed = record_repo.head(session, board.warning)
        record_repo.append_event(session, board.warning, "recall", "liu", board.clock(), {"done": "test"})
    with transaction(board.database_url) as session:
        assert record_repo.head(session, board.warning, printed.count) == printed
        assert record_repo.head(session, board.warning).count == printed.count + 1
    assert f"<code>{printed.mac[:16]}</code>" in before
