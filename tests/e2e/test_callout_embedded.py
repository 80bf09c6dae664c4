"""The call-out engine end to end (embedded runtime, on SQLite and PostgreSQL): warnings in,
messages out, acknowledgements, escalation by the clock, unreached, cancel. Every message sent
must be declared; an undeclared one fails the test."""

from __future__ import annotations

from tests.support.harness import Harness


def test_red_warning_escalates_until_someone_answers(harness: Harness) -> None:
    wid = harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    assert harness.states() == {"sun": "notified", "zhou": "notified", "zheng": "notified"}

    assert harness.reply_sms("sun", " 收到！").acknowledged
    harness.expect_nothing_more()

    harness.advance(minutes=3)  # step 1: voice to the officials who have not answered
    harness.expect("zhou", "voice", "reminder")
    harness.expect("zheng", "voice", "reminder")
    assert harness.press_1("zhou", callout_of="zhou").acknowledged

    harness.advance(minutes=3)  # step 2: to the deputy — 郑 has none, so nothing goes out
    harness.expect_nothing_more()

    harness.advance(minutes=4)  # step 3: voice to the superior (孙镇长)
    harness.expect("sun", "voice", "to_superior")

    harness.advance(minutes=5)  # the last step passed: unreached, the 未叫醒 list goes out
    harness.expect("sun", "sms", "unreached")
    harness.expect("zhao", "sms", "unreached")
    harness.expect("qian", "sms", "unreached")
    assert harness.states() == {"sun": "acknowledged", "zhou": "acknowledged", "zheng": "unreached"}
    assert harness.callout("sun")["via"] == "sms" and harness.callout("zhou")["via"] == "voice"
    unreached = harness.client.get(f"/api/v1/warnings/{wid}/callouts", params={"state": "unreached"},
                                   headers=harness.headers).json()["callouts"]
    assert [(c["official"]["name"], c["official"]["phone"]) for c in unreached] == [("郑防汛员", "+86138****0007")]
    bad = harness.client.get(f"/api/v1/warnings/{wid}/callouts", params={"state": "asleep"}, headers=harness.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"  # bad input: unknown state

    harness.advance(minutes=30)  # nothing more is due, ever
    harness.expect_nothing_more()

    r = harness.client.post(f"/api/v1/warnings/{wid}/cancel", headers=harness.headers)
    assert r.status_code == 200, r.text
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "cancel")


def test_deputy_is_called_and_the_deputy_can_answer_for_the_official(harness: Harness) -> None:
    harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.reply_sms("sun", "1")
    harness.reply_sms("zheng", "确认")
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    harness.advance(minutes=3)
    harness.expect("wu", "sms", "to_deputy")  # 吴主任 is asked to act for 周村长
    assert harness.reply_sms("wu", "收到").acknowledged
    assert harness.callout("zhou") | {"id": 0} == {"id": 0, "state": "acknowledged", "via": "sms", "by": "wu",
                                                   "level": "red", "reason": None}
    harness.advance(minutes=20)
    harness.expect_nothing_more()


def test_cancel_stops_every_pending_step_at_once(harness: Harness) -> None:
    harness.post(identifier="R-1")
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.reply_sms("zhou", "ok")
    harness.advance(minutes=1)
    harness.post(identifier="R-2", msg_type="cancel", references=["R-1"])
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "cancel")
    assert harness.states() == {"sun": "cancelled", "zhou": "acknowledged", "zheng": "cancelled"}
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_duplicate_late_unknown_and_post_cancel_acks_change_nothing(harness: Harness) -> None:
    harness.post(identifier="R-1")
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    assert harness.reply_sms("sun", "收到").outcome == "acknowledged"
    assert harness.reply_sms("sun", "收到").outcome == "already_acknowledged"  # duplicate
    assert harness.reply_from("+8613999999999", "1").outcome == "unknown_sender"  # unknown number
    assert harness.reply_sms("wu", "1").outcome == "nothing_open"  # nothing reached 吴 yet
    harness.post(identifier="R-2", msg_type="cancel", references=["R-1"])
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "cancel")
    assert harness.reply_sms("zheng", "收到").outcome == "cancelled"  # after the cancel
    assert harness.states() == {"sun": "acknowledged", "zhou": "cancelled", "zheng": "cancelled"}
    events = harness.client.get("/api/v1/warnings", headers=harness.headers).json()["warnings"]
    record = harness.client.get(f"/api/v1/warnings/{events[-1]['id']}/record", headers=harness.headers).json()
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.count("acknowledged") == 1 and kinds.count("ack_ignored") == 2


def test_a_reply_with_the_code_acknowledges_that_call_out_only(harness: Harness) -> None:
    harness.post(identifier="R-1")
    first = harness.expect("sun", "sms", "alert")
    harness.expect("zhou", "sms", "alert")
    harness.expect("zheng", "sms", "alert")
    code = harness.callout("sun")
    assert first.text  # the code travels in the text; the test reads it from the database
    from dispatcher.db.session import transaction
    from dispatcher.db.tables import CalloutRow

    with transaction(harness.url) as session:
        ack_code = session.get(CalloutRow, code["id"]).ack_code
    assert ack_code in first.text
    assert harness.reply_sms("sun", f"确认 {ack_code}").acknowledged
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    harness.expect("zheng", "voice", "reminder")


def test_a_red_warning_supersedes_an_orange_one_for_the_same_officials(harness: Harness) -> None:
    harness.post(identifier="O-1", level="orange", sender="qingxi-qx")
    harness.expect("sun", "sms", "alert")
    harness.post(identifier="R-1", level="red")
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    with_levels = harness.client.get("/api/v1/warnings", headers=harness.headers).json()["warnings"]
    assert {w["level"] for w in with_levels} == {"orange", "red"}
    assert harness.callout("sun")["level"] == "red"
    from sqlalchemy import select

    from dispatcher.db.session import transaction
    from dispatcher.db.tables import CalloutRow, EventRow

    with transaction(harness.url) as session:
        orange = session.scalars(select(CalloutRow).where(CalloutRow.level == "orange")).one()
    assert orange.state == "cancelled" and orange.closed_reason.startswith("superseded by")
    with transaction(harness.url) as session:  # the red warning's APPLIED event names what it superseded
        red = session.scalars(select(CalloutRow).where(CalloutRow.level == "red",
                                                       CalloutRow.person_id == "sun")).one()
        applied = session.scalars(select(EventRow).where(EventRow.warning_id == red.record_id,
                                                         EventRow.kind == "applied")).all()
    assert [e.data["superseded"] for e in applied if e.data["warning"] == red.warning_id] == [[orange.id]]
    # the orange plan's 10-minute voice step never runs: the red one governs 孙镇长 now
    harness.reply_sms("sun", "收到")
    harness.reply_sms("zhou", "收到")
    harness.reply_sms("zheng", "收到")
    harness.advance(minutes=20)
    harness.expect_nothing_more()


def test_an_orange_warning_after_a_red_one_is_muted(harness: Harness) -> None:
    harness.post(identifier="R-1", level="red")
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.post(identifier="O-1", level="orange")
    harness.expect_nothing_more()  # 孙镇长 already has the red call-out


def test_an_update_resends_to_the_reached_and_a_level_rise_calls_again(harness: Harness) -> None:
    harness.post(identifier="O-1", level="orange", areas=["330599100201"])
    harness.expect("sun", "sms", "alert")  # orange reaches only the town head (above the village)
    harness.reply_sms("sun", "收到")
    harness.post(identifier="O-2", msg_type="update", references=["O-1"], level="orange",
                 areas=["330599100201"], headline="暴雨橙色预警信号（更新）")
    harness.expect("sun", "sms", "update")
    harness.post(identifier="O-3", msg_type="update", references=["O-1"], level="red", areas=["330599100"],
                 headline="暴雨红色预警信号（升级）")
    for person in ("sun", "zhou", "zheng"):  # the level rose: everyone the red plan reaches, sun again
        harness.expect(person, "sms", "alert")
    assert harness.callout("sun")["level"] == "red" and harness.callout("sun")["state"] == "notified"
    for person in ("sun", "zhou", "zheng"):
        harness.reply_sms(person, "收到")
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_manual_ack_and_recall_by_a_duty_officer(harness: Harness, database_url: str) -> None:
    from dispatcher.db.session import transaction
    from dispatcher.services.users import Role, create_user

    with transaction(database_url) as session:
        create_user(session, "duty1", Role.OFFICER, "correct horse battery", harness.now())
        create_user(session, "viewer1", Role.VIEWER, "correct horse battery", harness.now())
    officer, viewer = ("duty1", "correct horse battery"), ("viewer1", "correct horse battery")
    harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    zheng = harness.callout("zheng")["id"]
    # bad input: a manual acknowledgement without a note
    assert harness.client.post(f"/api/v1/callouts/{zheng}/ack", json={}, auth=officer).status_code == 422
    # bad input: a viewer may only look
    refused = harness.client.post(f"/api/v1/callouts/{zheng}/ack", json={"note": "座机确认"}, auth=viewer)
    assert refused.status_code == 403
    assert harness.callout("zheng")["state"] == "notified"
    ok = harness.client.post(f"/api/v1/callouts/{zheng}/ack", json={"note": "已通过座机联系本人确认"}, auth=officer)
    assert ok.status_code == 200, ok.text
    assert harness.callout("zheng") | {"id": 0} == {"id": 0, "state": "acknowledged", "via": "manual",
                                                    "by": "user:duty1", "level": "red", "reason": None}
    sun = harness.callout("sun")["id"]
    recalled = harness.client.post(f"/api/v1/callouts/{sun}/recall", auth=officer)
    assert recalled.status_code == 200 and recalled.json()["done"] == "step 1 runs now"
    harness.expect("sun", "voice", "reminder")  # step 1 at once, not at 3 minutes
    harness.reply_sms("sun", "1")
    harness.reply_sms("zhou", "1")
    assert harness.client.post(f"/api/v1/callouts/{sun}/recall", auth=officer).status_code == 409
    wid = harness.client.get("/api/v1/warnings", auth=officer).json()["warnings"][0]["id"]
    listing = harness.client.get(f"/api/v1/warnings/{wid}/callouts", auth=officer).json()
    assert listing["counts"] == {"pending": 0, "notified": 0, "acknowledged": 3, "unreached": 0, "cancelled": 0,
                                 "expired": 0, "total": 3}
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_recall_of_an_unreached_official_calls_them_again_and_a_late_answer_counts(
        harness: Harness, database_url: str) -> None:
    from dispatcher.db.session import transaction
    from dispatcher.services.users import Role, create_user

    with transaction(database_url) as session:
        create_user(session, "duty1", Role.OFFICER, "correct horse battery", harness.now())
    officer = ("duty1", "correct horse battery")
    harness.post(areas=["330599100202"])  # 石桥村: only 郑 is called
    harness.expect("zheng", "sms", "alert")
    harness.advance(minutes=3)
    harness.expect("zheng", "voice", "reminder")
    harness.advance(minutes=7)
    harness.expect("sun", "voice", "to_superior")
    harness.advance(minutes=5)
    for person in ("sun", "zhao", "qian"):
        harness.expect(person, "sms", "unreached")
    zheng = harness.callout("zheng")["id"]
    for round_ in (1, 2):  # each re-call is a new call, never a repeat of an earlier key
        r = harness.client.post(f"/api/v1/callouts/{zheng}/recall", auth=officer)
        assert r.json()["done"] == "called again on 1 channel(s)", round_
        harness.expect("zheng", "voice", "reminder")
    assert harness.press_1("zheng", callout_of="zheng").acknowledged  # late, but he is awake: it counts
    assert harness.callout("zheng")["state"] == "acknowledged"
