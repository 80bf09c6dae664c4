"""A duty roll-call with ``call: duty_phone`` (checks.yaml) on the sample county, through the engine:
a town room with a duty phone in duty.yaml gets one call on that phone, counted for the first person
on shift there, answered by keypress 1 only; the county room, which has no phone, is called person by
person as before. A reply from the person's own mobile does not answer for the room, an unanswered
room call does not go on to the person's own numbers, and the room's duty leader is told.

21:00 on Thursday 16 July: county room 陈立 (chief), 刘洋 and 张静 (staff), leader 王建国; 龙潭镇 (duty
phone 0572-5016110) 周建新 (chief), leader 余建华; 白云镇 (0572-5017110) 施荣华 (chief), leader 方云飞."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.channels.carriers import callback_token
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, callout_views, receipts, rollcalls
from dispatcher.services.record_words import say
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE, Clock
from tests.support.carriers import start_sample_aliyun
from tests.support.harness import settle_engine

NINE_PM = FIXED_NOW.replace(hour=13, minute=0)  # 21:00 Beijing: the daily roll-call
COUNTY, LONGTAN, BAIYUN = "330599", "330599102", "330599103"
LONGTAN_PHONE, BAIYUN_PHONE = "+865725016110", "+865725017110"


@pytest.fixture
def url(database_url: str, tmp_path: Path) -> str:
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    checks = (site / "checks.yaml").read_text(encoding="utf-8")
    daily = "    positions: [chief, staff]\n"
    assert checks.count(daily) == 1
    (site / "checks.yaml").write_text(checks.replace(daily, daily + "    call: duty_phone\n"), encoding="utf-8")
    with transaction(database_url) as session:
        load_site_files(session, site, FIXED_NOW)
    return database_url


@pytest.fixture
def outbox() -> SimOutbox:
    return SimOutbox()


@pytest.fixture
def clock() -> Clock:
    return Clock(NINE_PM - timedelta(seconds=30))


@pytest.fixture
def engine(url: str, clock: Clock, outbox: SimOutbox) -> Iterator[Engine]:
    settings = Settings(database_url=url)
    made = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="duty-phone")
    yield made
    made.close()


def _sent(outbox: SimOutbox, purpose: str) -> list[tuple[str, str, str | None]]:
    return sorted((m.message.to.person_id, m.message.channel.value, m.message.to.phone) for m in outbox.messages()
                  if m.message.purpose.value == purpose)


def _mobile(url: str, person: str) -> str:
    with transaction(url, write=False) as session:
        return current_site(session).people[person].mobile or ""


def test_a_town_room_with_a_duty_phone_is_called_on_it_and_only_a_key_on_that_call_answers(
        url: str, clock: Clock, engine: Engine, outbox: SimOutbox) -> None:
    settle_engine(engine)
    clock.now = NINE_PM
    settle_engine(engine)
    with transaction(url, write=False) as session:
        (record,) = session.scalars(select(WarningRow.id).where(WarningRow.kind == "rollcall"))
    county = [(p, ch, _mobile(url, p) if ch == "sms" else None) for p in ("chen-li", "liu-yang", "zhang-jing")
              for ch in ("sms", "voice")]
    called = _sent(outbox, "rollcall")
    # the county room has no duty phone: its people on their own numbers, as before
    assert [c for c in called if c[0] in ("chen-li", "liu-yang", "zhang-jing") and c[1] == "sms"] == [
        c for c in county if c[1] == "sms"]
    # each town room: one call on its duty phone, for its chief on shift, and nothing to their mobiles
    assert [c for c in called if c[0] in ("zhou-jianxin", "shi-ronghua")] == [
        ("shi-ronghua", "voice", BAIYUN_PHONE), ("zhou-jianxin", "voice", LONGTAN_PHONE)]
    assert len(called) == 8

    # 龙潭镇's phone is answered and 1 pressed; 施荣华 replies "1" from his own mobile: not the room
    call = next(m.message for m in outbox.messages() if m.message.to.phone == LONGTAN_PHONE)
    # whoever picks up the room's phone is greeted as the room, not as the chief the call counts for
    assert call.text.startswith("龙潭镇值班室，您好，现在进行") and "周建新" not in call.text
    clock.now += timedelta(minutes=2)
    with transaction(url) as session:
        pressed = receipts.voice_keypress(session, clock(), call.key, "1", "CA-longtan")
        replied = ack.acknowledge_reply(session, clock(), phone=_mobile(url, "shi-ronghua"), via=AckVia.SMS,
                                        body="1")
    assert pressed is not None and pressed.acknowledged and not replied.acknowledged
    # 白云镇's phone rings out: the chief's own numbers are not tried; the room's leader is told now,
    # and the room is 未到岗 (as when a person called on their last number does not answer)
    baiyun = next(m for m in outbox.messages() if m.message.to.phone == BAIYUN_PHONE)
    with transaction(url) as session:
        assert receipts.record_status(session, clock(), baiyun.provider_id, "no-answer")
    settle_engine(engine)
    assert [m for m in _sent(outbox, "rollcall") if m[0] == "shi-ronghua"] == [("shi-ronghua", "voice", BAIYUN_PHONE)]
    assert {(p, ch) for p, ch, _ in _sent(outbox, "rollcall_missed")} == {("fang-yunfei", "sms"),
                                                                          ("fang-yunfei", "voice")}
    with transaction(url, write=False) as session:
        voice_numbers = dict(session.execute(select(AttemptRow.recipient_id, AttemptRow.number).where(
            AttemptRow.record_id == record, AttemptRow.purpose == "rollcall", AttemptRow.channel == "voice")).all())
        results = {r.area: r for r in rollcalls.results(session, record)}
        lines = [s.text for s in say(events(session, record), current_site(session), "zh",
                                     callouts=callout_views.frozen_steps(session, record))]
        states = dict(session.execute(select(CalloutRow.person_id, CalloutRow.state)
                                      .where(CalloutRow.record_id == record)).all())
        assert verify(session, record) == []
    assert voice_numbers["zhou-jianxin"] == voice_numbers["shi-ronghua"] == -1 and voice_numbers["chen-li"] == 0
    assert states["zhou-jianxin"] == "acknowledged" and states["shi-ronghua"] == "unreached"
    longtan = results[LONGTAN]
    assert (longtan.called, longtan.present, longtan.verdict) == (1, 1, "manned")
    assert [(a.name, a.post, a.via) for a in longtan.people] == [("周建新", "值班电话（值班长）", "voice")]
    assert results[BAIYUN].verdict == "missing" and results[COUNTY].called == 3
    assert any("第1步：语音电话拨打值班室值班电话，找 2 人（周建新、施荣华）" in line for line in lines), lines

    clock.now = NINE_PM + timedelta(minutes=11)  # the ten minutes are up: nothing more for the towns
    settle_engine(engine)
    assert len([m for m in outbox.messages() if m.message.channel is Channel.VOICE
                and m.message.to.phone in (BAIYUN_PHONE, LONGTAN_PHONE)]) == 2
    told = [p for p, _, _ in _sent(outbox, "rollcall_missed")]
    assert told.count("fang-yunfei") == 2 and "yu-jianhua" not in told  # 方云飞 told once; 龙潭镇 answered


# -- through Aliyun: the call to a landline, and its record's key 1 ------------------------------------

AK_ID, AK_SECRET = "LTAI5tJiaoyingDutyPhone01", "jiaoying-aliyun-duty-phone-secret"


def test_an_aliyun_call_to_the_duty_phone_answered_with_1_makes_the_room_manned(
        url: str, clock: Clock, tmp_path: Path) -> None:
    fake, aliyun = start_sample_aliyun(AK_ID, AK_SECRET)
    settings = Settings(database_url=url, public_url="http://testserver", **aliyun)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="duty-phone-aliyun")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            clock.now = NINE_PM
            settle_engine(engine, rounds=50)
            (call,) = [c for c in fake.calls() if c.numbers[0] == "05725016110"]  # 龙潭镇值班室, dialled nationally
            assert not [c for c in fake.calls() if c.numbers[0] == _mobile(url, "zhou-jianxin").removeprefix("+86")]
            pushed = fake.voice_report(client, call, "200000", dtmf="1",
                                       url=f"/webhooks/aliyun/{callback_token(settings)}/voice-report")
            assert pushed.status == 200 and pushed.accepted
            with transaction(url, write=False) as session:
                (record,) = session.scalars(select(WarningRow.id).where(WarningRow.kind == "rollcall"))
                longtan = {r.area: r for r in rollcalls.results(session, record)}[LONGTAN]
            assert (longtan.present, longtan.verdict, longtan.people[0].name) == (1, "manned", "周建新")
    finally:
        engine.close()
        fake.stop()
