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


# -- the record in words (services/record_words.py) ----------------------------------------------------

ZHOU_PHONE, WU_PHONE = "+8613800000005", "+8613800000006"  # 周村长 and his AB岗 吴主任 (the tiny county)


def _ids(board: Board) -> dict[str, int]:
    return {c["official"]["id"]: c["id"] for c in board.callouts()}


def _night(board: Board) -> None:
    """Zheng replies 收到; Liu, the duty officer, acknowledges Sun on his behalf; Zhou does not
    answer the SMS nor the call, and his AB岗 Wu, asked at six minutes, replies 收到 for him."""
    from datetime import timedelta

    from dispatcher.services.receipts import inbound_sms
    from tests.board.conftest import csrf_of

    ids = _ids(board)
    start = board.clock()
    board.clock.now = start + timedelta(minutes=1, seconds=5)
    with transaction(board.database_url) as session:
        inbound_sms(session, board.clock(), sender="+8613800000007", body="收到")
    board.login("liu")
    board.clock.now = start + timedelta(minutes=1, seconds=35)
    done = board.client.post(f"/board/callouts/{ids['sun']}/ack",
                             data={"csrf": csrf_of(board.page()), "note": "已通过座机联系本人确认"})
    assert done.status_code == 200
    board.clock.now = start + timedelta(minutes=6, seconds=1)
    board.drive()  # Zhou: the call at three minutes, the SMS to his AB岗 at six
    board.clock.now = start + timedelta(minutes=6, seconds=41)
    with transaction(board.database_url) as session:
        inbound_sms(session, board.clock(), sender=WU_PHONE, body="收到")


def test_the_record_page_reads_as_sentences_with_names_and_local_time(board: Board) -> None:
    _night(board)
    html = board.client.get(f"/board/warnings/{board.warning}/record").text
    assert "11:12:00" in html  # 03:12 UTC is 11:12 in Beijing
    assert "第1步：短信发出 3 人（孙镇长、周村长、郑防汛员）" in html
    assert "郑防汛员短信回复“收到”，本人确认，用时 1:05" in html
    assert "吴主任（AB岗）短信回复“收到”，代周村长确认，用时 6:41" in html
    assert "第3步：1 人未确认，短信通知AB岗：周村长→吴主任" in html
    assert "liu 代孙镇长确认（说明：已通过座机联系本人确认），用时 1:35" in html
    # actors in words, and none of the record's raw data on the page
    assert ">系统<" in html and ">发送进程<" in html and ">qingxi-qx<" in html
    for raw in ("steps=[", "{&#39;", "drill=False", "+00:00", ">engine<", ">worker<", "user:liu"):
        assert raw not in html, raw
    english = board.client.get(f"/board/warnings/{board.warning}/record?lang=en").text
    assert "Step 1: SMS to 3 people (孙镇长, 周村长, 郑防汛员)" in english
    assert "liu acknowledged for 孙镇长 (note: 已通过座机联系本人确认), after 1:35" in english


def test_the_raw_record_stays_in_the_json_export_and_the_api(board: Board) -> None:
    import json

    _night(board)
    exported = json.loads(board.client.get(f"/board/warnings/{board.warning}/export.json").text)["events"]
    steps = next(e for e in exported if e["kind"] == "steps")
    assert steps["actor"] == "engine" and steps["data"]["steps"][0]["step"] == 0
    api = board.client.get(f"/api/v1/warnings/{board.warning}/record", headers=board.api).json()["events"]
    assert [e["kind"] for e in api] == [e["kind"] for e in exported]
    assert set(api[0]) == {"seq", "at", "actor", "kind", "data", "hash"} and api[0]["at"].endswith("+00:00")


def test_the_printed_file_says_who_answered_for_whom(board: Board) -> None:
    _night(board)
    html = board.client.get(f"/board/warnings/{board.warning}/print").text
    assert "11:18:41 短信回复“收到”，由AB岗吴主任确认" in html
    assert "11:18:00</span> 短信（AB岗吴主任）已发出" in html
    assert "11:13:35 人工代确认，由值班员 liu 确认（说明：已通过座机联系本人确认）" in html
    assert "11:13:05 短信回复“收到”，本人确认" in html  # 郑防汛员, himself
    assert "3 分钟内叫到（首条消息已发出）" in html and "值班领导（签名）" in html
    assert "<th>预警区域</th><td>小溪县/青溪镇</td>" in html and "<th>发布时间</th><td>2026-07-16 11:12</td>" in html
    english = board.client.get(f"/board/warnings/{board.warning}/print?lang=en").text
    assert "acknowledged by duty officer liu (note: 已通过座机联系本人确认)" in english
    assert "Duty leader (signature)" in english and "Reached within 3 min" in english


def test_a_viewer_reads_the_record_in_words_with_numbers_masked(board: Board) -> None:
    _night(board)
    board.client.cookies.clear()
    board.login("wang")
    html = board.client.get(f"/board/warnings/{board.warning}/record").text
    assert "吴主任（+86138****0006）短信回复" in html and WU_PHONE not in html
    assert "print.pdf" not in html  # exports are the officers'
