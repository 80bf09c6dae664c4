"""Several numbers per person, end to end (embedded runtime, SQLite and PostgreSQL): a voice step not
answered on the first number calls the next one in the same step, and the step counts as
unanswered only when the last number was not answered either. SMS goes to the first number that
takes SMS. One test goes through the real ``twilio`` client and the fake Twilio's status callback."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.channels.base import PermanentError
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox, SimSent
from dispatcher.config import Settings
from dispatcher.db.record_repo import events
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, EventRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services import receipts
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, Clock
from tests.e2e.conftest import TINY_SITE
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_aliyun_channel import template_file  # noqa: F401 - the fixture
from tests.integration.test_twilio import PUBLIC, fake, twilio_settings  # noqa: F401 - the fixture
from tests.support.harness import Harness, settle_engine

MOBILE, BACKUP, OFFICE = "+8613800000005", "+8613800000105", "+865725012345"  # 周村长: 手机, 备用手机, 办公电话
ZHENG_DESK, ZHENG_MOBILE = "+865725012346", "+8613800000007"  # 郑防汛员: a landline first, the mobile second

PEOPLE = """\
roles:
  emergency_head: 应急管理局局长
  duty_officer: 县应急值班员
  town_head: 乡镇长
  town_secretary: 乡镇党委书记
  village_head: 村党组织书记/村主任
  village_flood_officer: 村防汛责任人
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
    phone: "0572-5012346"
    phones: ["+8613800000007"]
    area: "330599100202"
    roles: [village_flood_officer]
    unit: 石桥村民委员会
    superior: sun
"""

XIKOU, SHIQIAO = "330599100201", "330599100202"  # 溪口村 (周村长), 石桥村 (郑防汛员)


@pytest.fixture
def tiny_site(database_url: str, tmp_path: Path) -> str:
    """The tiny county, its two village officials with several numbers (overrides the e2e fixture)."""
    site = tmp_path / "site"
    shutil.copytree(TINY_SITE, site)
    (site / "people.yaml").write_text(PEOPLE, encoding="utf-8")
    with transaction(database_url) as session:
        load_site_files(session, site, FIXED_NOW)
    return database_url


# -- helpers -------------------------------------------------------------------------------------


def calls(outbox: SimOutbox, person: str) -> list[SimSent]:
    return [m for m in outbox.messages() if m.message.channel is Channel.VOICE and m.message.to.person_id == person]


def texts(outbox: SimOutbox, person: str) -> list[SimSent]:
    return [m for m in outbox.messages() if m.message.channel is Channel.SMS and m.message.to.person_id == person]


def report(url: str, now: datetime, call: SimSent, status: str = "no-answer") -> bool:
    """The provider's status callback for a simulated call."""
    with transaction(url) as session:
        return receipts.record_status(session, now, call.provider_id, status, attempt_ref=call.message.key,
                                      provider="simulator")


def ring_out(harness: Harness, outbox: SimOutbox, reported: set[str]) -> int:
    """Every simulated call to a number left unanswered rings out: its no-answer is reported (once)."""
    done = 0
    for call in outbox.messages():
        if call.message.channel is Channel.VOICE and not call.answered and call.message.key not in reported:
            reported.add(call.message.key)
            done += report(harness.url, harness.now(), call)
    return done


def callout_row(url: str, person: str) -> CalloutRow:
    with transaction(url) as session:
        row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person)).one()
        session.expunge(row)
        return row


def attempt_rows(url: str, person: str, channel: str = "voice") -> list[tuple[str, int, str, int]]:
    with transaction(url) as session:
        return [tuple(r) for r in session.execute(
            select(AttemptRow.key, AttemptRow.number, AttemptRow.status, AttemptRow.step_index)
            .where(AttemptRow.recipient_id == person, AttemptRow.channel == channel).order_by(AttemptRow.id))]


def next_number_events(url: str) -> list[dict[str, Any]]:
    with transaction(url) as session:
        ids = session.scalars(select(EventRow.warning_id).distinct()).all()
        return [e.data for wid in ids for e in events(session, wid) if e.kind == "next_number"]


def test_next_number_keys_keep_the_first_numbers_key_and_count_on() -> None:
    from dispatcher.services.escalation import called_number, next_number_key

    assert next_number_key("7:1:voice:zhou", 0) == "7:1:voice:zhou#2"
    assert next_number_key("7:1:voice:zhou#2", 1) == "7:1:voice:zhou#3"
    assert next_number_key("7:recall1:voice:zhou#3", 2) == "7:recall1:voice:zhou#4"
    from dispatcher.domain.roster import Person, PhoneKind, PhoneNumber

    person = Person("zhou", "周村长", MOBILE, XIKOU, phones=(PhoneNumber(MOBILE), PhoneNumber(BACKUP),
                                                            PhoneNumber(OFFICE, PhoneKind.LANDLINE)))
    assert person.voice_numbers == (MOBILE, BACKUP, OFFICE)  # the repeated mobile is called once
    assert [called_number(person, n) for n in (0, 1, 2, 3)] == [MOBILE, BACKUP, OFFICE, MOBILE]  # 3: gone, the first


# -- the ladder over several numbers ------------------------------------------------------------


def test_an_unanswered_call_tries_the_next_number_in_the_same_step_and_only_the_last_brings_the_next_step(
        harness: Harness, outbox: SimOutbox) -> None:
    reported: set[str] = set()
    outbox.leave_unanswered(MOBILE, BACKUP, OFFICE)  # 周村长 is nowhere near a phone
    harness.post(areas=[XIKOU])
    harness.expect("zhou", "sms", "alert")
    assert [m.message.to.phone for m in texts(outbox, "zhou")] == [MOBILE]

    harness.advance(minutes=3)  # step 1: voice, the first number
    first = harness.expect("zhou", "voice", "reminder")
    assert first.key.endswith(":1:voice:zhou")  # the first number's key is what it always was
    assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE]
    step_2_due = callout_row(harness.url, "zhou").next_due
    assert step_2_due == harness.now() + timedelta(minutes=3)

    harness.advance(seconds=30)
    assert ring_out(harness, outbox, reported) == 1  # no answer on the mobile: the backup, at once
    second = harness.expect("zhou", "voice", "reminder")
    assert second.key == first.key + "#2"
    assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE, BACKUP]
    assert callout_row(harness.url, "zhou").next_due == step_2_due  # not brought forward: a number is left
    assert [e["calls"] for e in next_number_events(harness.url)] == [[{
        "callout": callout_row(harness.url, "zhou").id, "to": "zhou", "step": 1, "failed": first.key,
        "failed_number": MOBILE, "attempt": second.key, "number": BACKUP, "why": "simulator: no-answer"}]]

    # a duplicate (or late) no-answer for the first call queues nothing more
    assert report(harness.url, harness.now(), calls(outbox, "zhou")[0])
    harness.expect_nothing_more()
    assert len(next_number_events(harness.url)) == 1

    harness.advance(seconds=30)
    assert ring_out(harness, outbox, reported) == 1  # no answer on the backup: the office landline
    third = harness.expect("zhou", "voice", "reminder")
    assert third.key == first.key + "#3"
    assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE, BACKUP, OFFICE]
    assert callout_row(harness.url, "zhou").next_due == step_2_due

    harness.advance(seconds=30)
    assert ring_out(harness, outbox, reported) == 1  # the last number not answered either: the step is unanswered
    assert callout_row(harness.url, "zhou").next_due == harness.now()
    harness.expect("wu", "sms", "to_deputy")  # step 2 at once, not at 6 minutes
    assert [(n, s, i) for _, n, s, i in attempt_rows(harness.url, "zhou")] == [
        (0, "failed", 1), (1, "failed", 1), (2, "failed", 1)]
    assert len(next_number_events(harness.url)) == 2
    harness.expect_nothing_more()
    assert harness.reply_sms("wu", "收到").acknowledged
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_an_answer_after_the_second_call_stops_the_third(harness: Harness, outbox: SimOutbox) -> None:
    harness.post(areas=[XIKOU])
    harness.expect("zhou", "sms", "alert")
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    assert report(harness.url, harness.now(), calls(outbox, "zhou")[0], "busy")
    harness.expect("zhou", "voice", "reminder")  # the backup
    assert harness.press_1("zhou", callout_of="zhou").acknowledged  # he answers the backup and presses 1
    assert report(harness.url, harness.now(), calls(outbox, "zhou")[1], "no-answer")  # a stray late status
    harness.advance(minutes=30)
    harness.expect_nothing_more()  # no third call, no deputy, no superior
    assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE, BACKUP]
    assert len(next_number_events(harness.url)) == 1


def test_an_answer_while_the_next_number_is_queued_cancels_it(harness: Harness, outbox: SimOutbox) -> None:
    harness.post(areas=[XIKOU])
    harness.expect("zhou", "sms", "alert")
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    assert report(harness.url, harness.now(), calls(outbox, "zhou")[0])  # the backup is queued, not sent yet
    assert [n for _, n, _, _ in attempt_rows(harness.url, "zhou")] == [0, 1]
    assert harness.reply_sms("zhou", "收到").acknowledged  # the SMS reply arrives first
    harness.advance(minutes=30)
    harness.expect_nothing_more()
    assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE]
    assert [s for _, _, s, _ in attempt_rows(harness.url, "zhou")] == ["failed", "cancelled"]


def test_sms_goes_to_the_mobile_and_voice_starts_at_the_landline_listed_first(
        harness: Harness, outbox: SimOutbox) -> None:
    harness.post(areas=[SHIQIAO])
    harness.expect("zheng", "sms", "alert")
    assert [m.message.to.phone for m in texts(outbox, "zheng")] == [ZHENG_MOBILE]  # phone is his desk landline
    harness.advance(minutes=3)
    harness.expect("zheng", "voice", "reminder")
    assert [c.message.to.phone for c in calls(outbox, "zheng")] == [ZHENG_DESK]
    assert report(harness.url, harness.now(), calls(outbox, "zheng")[0])
    harness.expect("zheng", "voice", "reminder")
    assert [c.message.to.phone for c in calls(outbox, "zheng")] == [ZHENG_DESK, ZHENG_MOBILE]
    assert harness.reply_from(ZHENG_MOBILE, "收到").acknowledged  # the reply from his mobile answers
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_an_invalid_first_number_is_a_call_not_answered(harness: Harness, outbox: SimOutbox, engine: Engine) -> None:
    # bad input: the provider refuses 郑's desk number for good at send time
    engine.adapter(Channel.VOICE).failures[ZHENG_DESK] = PermanentError("invalid number")  # type: ignore[attr-defined]
    harness.post(areas=[SHIQIAO])
    harness.expect("zheng", "sms", "alert")
    harness.advance(minutes=3)
    harness.expect("zheng", "voice", "reminder")  # the refused desk number sends nothing; the mobile rings
    assert [c.message.to.phone for c in calls(outbox, "zheng")] == [ZHENG_MOBILE]
    rows = attempt_rows(harness.url, "zheng")
    assert [(n, s) for _, n, s, _ in rows] == [(0, "failed"), (1, "sent")]
    (event,) = next_number_events(harness.url)
    assert event["calls"][0]["failed_number"] == ZHENG_DESK and "invalid number" in event["calls"][0]["why"]
    assert callout_row(harness.url, "zheng").next_due > harness.now()  # the mobile still may answer
    assert report(harness.url, harness.now(), calls(outbox, "zheng")[0])  # … it does not: the step is unanswered
    assert callout_row(harness.url, "zheng").next_due == harness.now()
    harness.expect_nothing_more()  # the deputy's step runs now: 郑 has none
    assert harness.reply_from(ZHENG_MOBILE, "收到").acknowledged
    harness.advance(minutes=30)
    harness.expect_nothing_more()


def test_a_superiors_unanswered_call_tries_their_next_number_without_moving_the_ladder(
        harness: Harness, outbox: SimOutbox) -> None:
    """Any recipient of a voice step gets their next number; only the official's own calls move the ladder."""
    harness.post(areas=[XIKOU])
    harness.expect("zhou", "sms", "alert")
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    harness.advance(minutes=3)
    harness.expect("wu", "sms", "to_deputy")
    harness.advance(minutes=4)
    harness.expect("sun", "voice", "to_superior")  # 孙镇长 has one number: nothing after it
    due = callout_row(harness.url, "zhou").next_due
    assert report(harness.url, harness.now(), calls(outbox, "sun")[0])
    harness.expect_nothing_more()
    assert callout_row(harness.url, "zhou").next_due == due
    harness.press_1("zhou", callout_of="zhou")


def test_spacing_and_number_limits_count_the_number_called(tiny_site: str, clock: Clock, outbox: SimOutbox,
                                                             auth: dict[str, str], client_for) -> None:
    """Callee spacing and the per-number limit hold calls to one number, not the person's next one."""
    settings = Settings(database_url=tiny_site, callee_spacing_seconds=60, number_limits="voice=1/min")
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="spaced")
    try:
        client = client_for(settings)
        assert client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "S-1", "hazard": "rainstorm", "level": "red", "areas": [XIKOU],
            "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code == 202
        settle_engine(engine)
        clock.now += timedelta(minutes=3)
        settle_engine(engine)
        assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE]
        clock.now += timedelta(seconds=5)
        assert report(tiny_site, clock(), calls(outbox, "zhou")[0])
        settle_engine(engine)  # 5 s after the first call: the backup is another number, called at once
        assert [c.message.to.phone for c in calls(outbox, "zhou")] == [MOBILE, BACKUP]
    finally:
        engine.close()


def test_the_demos_people_away_from_their_first_number_leave_it_unanswered(tiny_site: str, clock: Clock,
                                                                          outbox: SimOutbox) -> None:
    from dispatcher.demo_people import DemoPeople, away_from_first_number, temperament

    assert all(temperament(p)[0] != "never" and away_from_first_number(p) for p in ("zhou", "zheng"))
    people = DemoPeople(tiny_site, outbox, clock)
    people.start()
    try:
        assert not outbox.answers(MOBILE) and outbox.answers(BACKUP) and outbox.answers(OFFICE)
        assert not outbox.answers(ZHENG_DESK) and outbox.answers(ZHENG_MOBILE)
        assert outbox.answers("+8613800000003")  # 孙镇长 has one number: always at it
    finally:
        people.stop()


# -- through the real twilio client ------------------------------------------------------------------


@pytest.fixture
def twilio_world(tiny_site: str, fake: FakeTwilio, clock: Clock) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    settings = twilio_settings(tiny_site, fake)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="twilio-numbers")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            yield engine, client
    finally:
        engine.close()


def test_twilio_no_answer_callback_calls_the_backup_number(
        twilio_world: tuple[Engine, TestClient], fake: FakeTwilio, clock: Clock, auth: dict[str, str],  # noqa: F811
        tiny_site: str) -> None:
    engine, client = twilio_world
    assert client.post("/api/v1/warnings", headers=auth, json={
        "sender": "qingxi-qx", "identifier": "TW-N", "hazard": "rainstorm", "level": "red", "areas": [SHIQIAO],
        "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code == 202
    settle_engine(engine)
    assert [m.to for m in fake.messages()] == [ZHENG_MOBILE]  # SMS to the mobile, though phone is the desk
    clock.now += timedelta(minutes=3)
    settle_engine(engine)
    (desk,) = fake.calls()
    assert desk.to == ZHENG_DESK and desk.first("Url").startswith(f"{PUBLIC}/webhooks/twilio/voice?attempt=")
    for status in ("initiated", "ringing", "no-answer"):
        assert fake.status(client, desk, status).status_code == 200
    settle_engine(engine)
    assert [c.to for c in fake.calls()] == [ZHENG_DESK, ZHENG_MOBILE]
    assert fake.status(client, desk, "no-answer").status_code == 200  # Twilio retries its callback
    settle_engine(engine)
    assert len(fake.calls()) == 2
    with transaction(tiny_site) as session:
        assert session.scalar(select(func.count()).where(AttemptRow.channel == "voice")) == 2
        due = session.scalars(select(CalloutRow)).one().next_due
    assert due is not None and due > clock()
    mobile = fake.calls()[1]
    assert fake.status(client, mobile, "in-progress").status_code == 200
    answered = fake.fetch_twiml(client, mobile)  # he picks up the mobile and presses 1
    assert answered.status_code == 200, answered.text
    gather = ET.fromstring(answered.text).find("Gather")
    assert gather is not None
    assert fake.gather(client, gather.get("action") or "", mobile, "1").status_code == 200
    with transaction(tiny_site) as session:
        callout = session.scalars(select(CalloutRow)).one()
        assert (callout.state, callout.ack_via, callout.acknowledged_by) == ("acknowledged", "voice", "zheng")


# -- the mainland providers' callbacks name the number called: any of the person's is theirs ------------


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aliyun_world(tiny_site: str, clock: Clock, template_file: Path, no_proxy: None,  # noqa: F811
                 ) -> Iterator[tuple[Engine, TestClient, Any, str]]:
    from dispatcher.channels.carriers import callback_token
    from tests.fakes.aliyun_server import FakeAliyun
    from tests.integration import test_aliyun_channel as al

    server = FakeAliyun(al.AK_ID, al.AK_SECRET, sign_names={al.SIGN}, templates=al.fake_templates(template_file),
                        show_numbers={al.SHOW})
    server.start()
    settings = al.aliyun_settings(tiny_site, server, template_file)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="aliyun-numbers")
    try:
        with TestClient(al.with_aliyun_routes(create_app(settings, clock=clock))) as client:
            yield engine, client, server, f"/webhooks/aliyun/{callback_token(settings)}"
    finally:
        engine.close()
        server.stop()


def test_aliyun_voice_report_for_the_backup_number_is_recorded_and_its_keypress_answers(
        aliyun_world: tuple[Engine, TestClient, Any, str], clock: Clock, auth: dict[str, str],
        tiny_site: str) -> None:
    engine, client, server, base = aliyun_world
    assert client.post("/api/v1/warnings", headers=auth, json={
        "sender": "qingxi-qx", "identifier": "AL-N", "hazard": "rainstorm", "level": "red", "areas": [XIKOU],
        "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code == 202
    settle_engine(engine)
    clock.now += timedelta(minutes=3)
    settle_engine(engine)
    (first,) = server.calls()
    assert first.numbers == ("13800000005",)
    push = server.voice_report(client, first, "200003", url=f"{base}/voice-report")  # rang, nobody answered
    assert push.status == 200 and push.accepted
    settle_engine(engine)
    assert [c.numbers for c in server.calls()] == [("13800000005",), ("13800000105",)]  # the backup, national
    backup = server.calls()[1]
    assert server.keypress(client, backup, "1", url=f"{base}/voice-keypress").status == 200
    assert server.voice_report(client, backup, "200000", url=f"{base}/voice-report").status == 200
    with transaction(tiny_site) as session:
        callout = session.scalars(select(CalloutRow)).one()
        statuses = session.execute(select(AttemptRow.number, AttemptRow.status)
                                   .where(AttemptRow.channel == "voice").order_by(AttemptRow.id)).all()
    assert (callout.state, callout.ack_via, callout.acknowledged_by) == ("acknowledged", "voice", "zhou")
    assert [tuple(s) for s in statuses] == [(0, "failed"), (1, "delivered")]  # the backup's report was taken


def test_tencent_call_status_for_the_next_number_is_recorded(
        tiny_site: str, clock: Clock, auth: dict[str, str], no_proxy: None) -> None:
    from dispatcher.api.routes import tencent as tencent_routes
    from dispatcher.channels.carrier_templates import load_carrier_templates
    from dispatcher.channels.carriers import callback_token
    from tests.integration import test_tencent_channel as tc

    approved = {t.code: len(t.variables) for t in load_carrier_templates(tc.SAMPLE_TEMPLATES).entries.values()
                if t.provider == "tencent"}
    server = tc._fake(approved)
    server.start()
    settings = tc.tencent_settings(server, tc.SAMPLE_TEMPLATES, tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="tencent-numbers")
    app = create_app(settings, clock=clock)
    if not any(str(getattr(r, "path", "")).startswith("/webhooks/tencent/") for r in app.routes):
        app.include_router(tencent_routes.router)
    status_url = f"/webhooks/tencent/{callback_token(settings)}/voice-status"
    try:
        with TestClient(app) as client:
            assert client.post("/api/v1/warnings", headers=auth, json={
                "sender": "qingxi-qx", "identifier": "TC-N", "hazard": "rainstorm", "level": "red",
                "areas": [SHIQIAO], "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code == 202
            settle_engine(engine)
            assert [n for m in server.messages() for n in m.numbers] == [ZHENG_MOBILE]  # SMS: the mobile
            clock.now += timedelta(minutes=3)
            settle_engine(engine)
            # Tencent's voice notices take mobiles only: the desk landline is refused at send time
            # (CalledNumberVerifyFail), a call not answered — the mobile is called at once.
            (mobile,) = server.calls()
            assert mobile.numbers == (ZHENG_MOBILE,)
            with transaction(tiny_site) as session:
                rows = session.execute(select(AttemptRow.number, AttemptRow.status, AttemptRow.error)
                                       .where(AttemptRow.channel == "voice").order_by(AttemptRow.id)).all()
                assert session.scalars(select(CalloutRow)).one().next_due > clock()
            assert [(n, st) for n, st, _ in rows] == [(0, "failed"), (1, "sent")]
            assert "CalledNumberVerifyFail" in (rows[0].error or "")
            assert server.call_status(client, mobile, "1", url=status_url).status == 200  # not answered either
            with transaction(tiny_site) as session:
                callout = session.scalars(select(CalloutRow)).one()
                statuses = session.scalars(select(AttemptRow.status).where(AttemptRow.channel == "voice")
                                           .order_by(AttemptRow.id)).all()
            assert statuses == ["failed", "failed"]  # the mobile's report was taken: it names one of his numbers
            assert callout.next_due == clock()  # his last number: the next step runs now
    finally:
        engine.close()
        server.stop()
