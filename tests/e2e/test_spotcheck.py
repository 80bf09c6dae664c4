"""六问 spot-checks (抽查) on the sample county, through the engine and the real providers' clients:
the sample drawn spread over the towns with its seed kept, each person asked every question by SMS
and on a call, answers by one SMS reply and by key on a Twilio call (one <Gather> a question) or an
Aliyun IVR call (the keys of the call in order), a reply that is not an answer asked again once, a
plain "1" never taken for answers, the follow-up list, and the bad inputs that start nothing.

The sample's checks.yaml: ``liuwen``, six questions, six people from 村防汛责任人, 地质灾害群测群防员,
山洪灾害监测员, 村民小组长 and 网格员 (55 in the sample), 30 minutes to answer, voice and SMS.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.channels.carriers import callback_token
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import AnswerRow, AttemptRow, CalloutRow, EventRow, WarningRow
from dispatcher.domain.spotcheck import town_of
from dispatcher.links import csrf_for, make_token
from dispatcher.runtime.engine import Engine
from dispatcher.services import spotchecks
from dispatcher.services.assessment import assess, to_csv, to_xlsx
from dispatcher.services.record_words import say
from dispatcher.services.site import current_site
from tests.conftest import FIXED_NOW, Clock
from tests.fakes.aliyun_server import FakeAliyun
from tests.fakes.twilio_server import FakeTwilio, Received
from tests.support.carriers import start_sample_aliyun
from tests.support.harness import settle_engine

ACCOUNT, TOKEN, FROM, PUBLIC = "AC" + "b" * 32, "spotcheck-auth-token-0123456789", "+15005550006", "http://testserver"
SEED = 42
# Seed 42 on the sample county: one person from each of six towns, in the order drawn.
DRAWN = ("ye-xingwang", "sun-hao", "zheng-shuigen", "mao-weimin", "li-shulin", "qiu-meijuan")


def _start(url: str, clock: Clock, **kwargs: Any) -> spotchecks.Started:
    with transaction(url) as session:
        return spotchecks.start(session, None, clock(), "user:duty", **kwargs)


def _result(url: str, record_id: str) -> spotchecks.Result:
    with transaction(url, write=False) as session:
        return spotchecks.result(session, record_id)


def record_lines(session: Any, record_id: str, lang: str) -> list[str]:
    """The record as the board words it."""
    return [s.text for s in say(events(session, record_id), current_site(session), lang)]


def _counts(url: str) -> tuple[int, int, int, int]:
    """What a refused start must leave alone: records, call-outs, attempts, events."""
    with transaction(url, write=False) as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0  # type: ignore[return-value]
                     for t in (WarningRow, CalloutRow, AttemptRow, EventRow))


# -- the draw ------------------------------------------------------------------------------------------


def test_the_sample_is_spread_over_the_towns_kept_with_its_seed_and_drawn_again_by_the_same_seed(
        site_loaded: str) -> None:
    clock = Clock(FIXED_NOW)
    with transaction(site_loaded, write=False) as session:
        _, sample, seed = spotchecks.preview(session, None, clock(), seed=SEED)
        _, again, _ = spotchecks.preview(session, None, clock(), seed=SEED)
        _, other, _ = spotchecks.preview(session, None, clock(), seed=SEED + 1)
        people = current_site(session).people
    assert (seed, sample.drawn, sample.available, sample.short) == (SEED, DRAWN, 55, False)
    assert again == sample and other.drawn != sample.drawn  # the seed decides the sample, and only the seed
    assert len({town_of(people[p].area) for p in sample.drawn}) == 6  # six people, six towns

    started = _start(site_loaded, clock, seed=SEED)
    assert started.sample.drawn == DRAWN
    with transaction(site_loaded, write=False) as session:
        (opening,) = [e for e in events(session, started.id) if e.kind == "spotcheck_started"]
        lines = record_lines(session, started.id, "zh")
    assert (opening.data["seed"], opening.data["drawn"], opening.actor) == (SEED, list(DRAWN), "user:duty")
    assert any("随机种子 42，抽取 6 人" in line for line in lines), lines


def test_people_checked_lately_are_left_out_and_a_sample_larger_than_the_people_available_says_so(
        site_loaded: str) -> None:
    clock = Clock(FIXED_NOW)
    first = _start(site_loaded, clock, seed=SEED)
    clock.now += timedelta(days=3)
    # Bad input: a sample of 100 from the 55 who hold the roles, six of whom were checked three days ago.
    second = _start(site_loaded, clock, size=100, seed=7)
    assert not set(first.sample.drawn) & set(second.sample.drawn)
    assert (len(second.sample.drawn), second.sample.available, second.sample.short) == (49, 49, True)
    assert sorted(second.sample.skipped) == sorted(DRAWN)
    with transaction(site_loaded, write=False) as session:
        lines = record_lines(session, second.id, "zh")
    assert any("只有 49 人可抽，不足 100 人" in line for line in lines), lines
    # Four weeks on (the first 31 days ago, the second 28) the first six may be drawn again, not the others.
    clock.now += timedelta(days=28)
    with transaction(site_loaded, write=False) as session:
        _, later, _ = spotchecks.preview(session, None, clock(), size=100, seed=7)
    assert later.available == 6 and sorted(later.drawn) == sorted(DRAWN)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"size": 0}, ValueError, "from 1 to 500"),  # bad input: an empty sample
    ({"size": 501}, ValueError, "from 1 to 500"),  # bad input: a sample over the limit
    ({"seed": -1}, ValueError, "seed"),  # bad input: a negative seed
    ({"during": "W20260716-NOSUCH"}, spotchecks.UnknownSpotCheck, "no warning"),  # bad input: an unknown warning
])
def test_a_bad_start_says_why_and_starts_nothing(site_loaded: str, kwargs: dict[str, Any], error: type[Exception],
                                                 words: str) -> None:
    before = _counts(site_loaded)
    with pytest.raises(error, match=words):
        _start(site_loaded, Clock(FIXED_NOW), **kwargs)
    assert _counts(site_loaded) == before


def test_when_everyone_was_checked_lately_nobody_is_drawn_and_nothing_starts(site_loaded: str) -> None:
    clock = Clock(FIXED_NOW)
    _start(site_loaded, clock, size=500, seed=1)  # all 55
    before = _counts(site_loaded)
    with pytest.raises(spotchecks.NobodyToDraw, match="55 of the people holding its roles were checked"):
        _start(site_loaded, clock)
    assert _counts(site_loaded) == before
    # Bad input: a spot-check the site does not have.
    with pytest.raises(spotchecks.UnknownSpotCheck, match="no spot-check 'nope'"), transaction(site_loaded) as session:
        spotchecks.start(session, "nope", clock(), "cli")


# -- through Twilio: SMS answers, answers on the call ----------------------------------------------------


@dataclass
class TwilioWorld:
    url: str
    fake: FakeTwilio
    client: TestClient
    engine: Engine
    clock: Clock

    def drive(self) -> None:
        settle_engine(self.engine, rounds=50)

    def phone(self, person: str) -> str:
        with transaction(self.url, write=False) as session:
            return current_site(session).people[person].mobile or ""

    def reply(self, person: str, body: str) -> ET.Element:
        response = self.fake.inbound_sms(self.client, self.phone(person), body)
        assert response.status_code == 200, response.text
        return ET.fromstring(response.text)

    def texts_to(self, person: str) -> list[str]:
        return [m.first("Body") for m in self.fake.messages() if m.to == self.phone(person)]

    def call_to(self, person: str) -> Received:
        (call,) = [c for c in self.fake.calls() if c.to == self.phone(person)]
        return call

    def callout(self, person: str, record: str) -> CalloutRow:
        with transaction(self.url) as session:
            row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person,
                                                           CalloutRow.record_id == record)).one()
            session.expunge(row)
            return row


@pytest.fixture
def twilio_world(site_loaded: str) -> Iterator[TwilioWorld]:
    fake = FakeTwilio(ACCOUNT, TOKEN, PUBLIC)
    fake.start()
    clock = Clock(FIXED_NOW)
    settings = Settings(database_url=site_loaded, twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                        twilio_from_number=FROM, twilio_api_base=fake.url, public_url=PUBLIC)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="spotcheck-twilio")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            yield TwilioWorld(site_loaded, fake, client, engine, clock)
    finally:
        engine.close()
        fake.stop()


def _gather(doc: ET.Element) -> tuple[str, str]:
    gather = doc.find("Gather")
    assert gather is not None, ET.tostring(doc, encoding="unicode")
    assert gather.get("numDigits") == "1" and gather.get("actionOnEmptyResult") == "true"
    return gather.get("action") or "", gather.findtext("Say") or ""


def test_answers_by_sms_and_key_by_key_on_the_call_with_the_follow_up_list(twilio_world: TwilioWorld) -> None:
    w = twilio_world
    started = _start(w.url, w.clock, seed=SEED)
    w.drive()
    ye, sun, zheng, mao, li, qiu = DRAWN
    # Everyone drawn gets the questions by SMS and a call, nobody else anything.
    assert sorted(c.to for c in w.fake.calls()) == sorted(w.phone(p) for p in DRAWN)
    (text,) = w.texts_to(ye)
    assert text.startswith("【六问抽查】叶兴旺同志：现进行防汛责任人抽查，请在30分钟内逐项作答。"
                           "1.是否收到预警？2.是否知晓危险区范围？")
    assert text.endswith("6.是否在岗在位？请按顺序一次回复6个答案，是回1，否回2，如“1 1 1 1 1 1”。")

    # 叶兴旺 answers all six in one reply, one of them 否: thanked, answered in full.
    doc = w.reply(ye, "1 1 2 1 1 1")
    assert doc.findtext("Message") == "叫应系统：抽查答案已记录，谢谢。"
    assert (w.callout(ye, started.id).state, w.callout(ye, started.id).ack_via) == ("acknowledged", "sms")
    # 孙浩 replies "好的": recorded, asked again once by SMS (not a third time), then answers in words.
    assert w.reply(sun, "好的").findtext("Message") is None
    w.drive()
    assert len(w.texts_to(sun)) == 2 and w.texts_to(sun)[1].startswith("【六问抽查】孙浩同志：您的回复未能识别为答案。")
    w.reply(sun, "好的，收到")
    w.drive()
    assert len(w.texts_to(sun)) == 2  # asked again once, not twice
    assert w.callout(sun, started.id).state == "notified"
    w.reply(sun, "是，是，是，是，是，是")
    assert w.callout(sun, started.id).state == "acknowledged"
    # 李树林 replies a plain "1": not six answers, so his spot-check stays open and he is asked again.
    w.reply(li, "1")
    assert w.callout(li, started.id).state == "notified"

    # 郑水根 answers on the call, a question at a time.
    call = w.call_to(zheng)
    doc = ET.fromstring(w.fake.fetch_twiml(w.client, call).text)
    assert "现在进行防汛责任人六问抽查，共6个问题。请逐题按键作答" in (doc.findtext("Say") or "")
    action, said = _gather(doc)
    assert "q=0" in action and said == "第1问：是否收到预警？是请按1，否请按2。"
    action, said = _gather(ET.fromstring(w.fake.gather(w.client, action, call, "1").text))
    assert said.startswith("第2问")
    replayed = w.fake.gather(w.client, action.replace("q=1", "q=0"), call, "1")  # the first key's webhook again
    assert replayed.status_code == 200
    action, said = _gather(ET.fromstring(w.fake.gather(w.client, action, call, "9").text))  # not 1 or 2
    assert said == "请按1或2作答。第2问：是否知晓危险区范围？是请按1，否请按2。" and "again=1" in action
    action, said = _gather(ET.fromstring(w.fake.gather(w.client, action, call, "").text))  # no key again
    assert said.startswith("第3问")  # question 2 is left unanswered
    for _ in range(3, 6):
        response = w.fake.gather(w.client, action, call, "2")
        doc = ET.fromstring(response.text)
        if doc.find("Gather") is not None:
            action, _ = _gather(doc)
    response = w.fake.gather(w.client, action, call, "1")
    assert ET.fromstring(response.text).find("Hangup") is not None
    assert "答案已记录" in response.text

    # Thirty minutes pass: who has not answered everything is listed for follow-up.
    w.clock.now += timedelta(minutes=31)
    w.drive()
    result = _result(w.url, started.id)
    by = {p.person_id: p for p in result.people}
    assert by[ye].answers == ("yes", "yes", "no", "yes", "yes", "yes") and by[ye].verdict == "no"
    assert by[sun].answers == ("yes",) * 6 and by[sun].verdict == "ok" and not by[sun].follow_up
    assert by[zheng].answers == ("yes", None, "no", "no", "no", "yes") and by[zheng].state == "unreached"
    assert by[mao].answers == (None,) * 6 and by[mao].verdict == "missing"
    assert {p.person_id for p in result.follow_up} == {ye, zheng, mao, li, qiu}
    assert result.tally(0) == {"yes": 3, "no": 0, "none": 3} and result.tally(2) == {"yes": 1, "no": 2, "none": 3}
    with transaction(w.url, write=False) as session:
        assert verify(session, started.id) == []
        # the first answer stands: the replayed keypress wrote nothing more
        assert session.scalar(select(func.count()).select_from(AnswerRow).where(
            AnswerRow.person_id == zheng)) == 5
        lines = record_lines(session, started.id, "zh")
        # the spot-check is no warning: the period's statistics leave it out
        day = FIXED_NOW.date()
        report = assess(session, current_site(session), day, day)
    assert report.real.total.callouts == 0
    county = report.spotchecks[0]  # the period report's 六问抽查 table: the county first, then each town
    assert (county.town, county.checked, county.complete, county.said_no, county.missing) == ("", 6, 2, 2, 4)
    assert {f.town for f in report.spotchecks[1:]} == {p.town for p in result.people}
    sheet = load_workbook(io.BytesIO(to_xlsx(report)))["六问抽查"]
    assert [c.value for c in sheet[2]] == ["全县", 6, 2, 2, 4, 33.3]  # 答全率 33.3 %
    assert "六问抽查" not in to_csv(report).split("\r\n")[0] and "全县,6,2,2,4,33.3" in to_csv(report)
    assert any("孙浩的短信回复“好的”不是有效答案，已短信请其重新作答" in line for line in lines), lines
    assert any("叶兴旺作答（短信回复，原文“1 1 2 1 1 1”）" in line for line in lines), lines
    # Settled (every call-out closed): the summary is on the record once, however many passes run.
    (summary,) = _summaries(w.url, started.id)
    assert (summary.actor, summary.data["checked"], summary.data["ok"], summary.data["no"],
            summary.data["missing"]) == ("engine", 6, 1, 2, 3)
    assert summary.data["questions"][2] == {"yes": 1, "no": 2, "none": 3}
    assert [(f["person"], f["no"], f["missing"]) for f in summary.data["follow_up"]] == [
        (ye, [2], []), (zheng, [2, 3, 4], [1]), (mao, [], [0, 1, 2, 3, 4, 5]), (li, [], [0, 1, 2, 3, 4, 5]),
        (qiu, [], [0, 1, 2, 3, 4, 5])]
    assert any(line.startswith("抽查结果：抽查 6 人，全部为是 1 人，有“否” 2 人，未答全 3 人；"
                               "答“否”：第3问 2 人、第4问 1 人、第5问 1 人；"
                               "需跟进 5 人（叶兴旺（第3问否）、郑水根（第3问、第4问、第5问否，第2问未答）")
               for line in lines), lines
    w.reply(mao, "1 1 1 1 1 1")  # a late reply fills in 毛's answers on the board, and writes no second summary
    w.clock.now += timedelta(minutes=1)
    w.drive()
    assert len(_summaries(w.url, started.id)) == 1 and _result(w.url, started.id).people[3].verdict == "ok"
    with transaction(w.url, write=False) as session:
        assert verify(session, started.id) == []


def _summaries(url: str, record_id: str) -> list[Any]:
    with transaction(url, write=False) as session:
        return [e for e in events(session, record_id) if e.kind == "spotcheck_result"]


def test_a_plain_one_goes_to_the_warning_also_open_not_to_the_spot_check(twilio_world: TwilioWorld,
                                                                         auth: dict[str, str]) -> None:
    w = twilio_world
    started = _start(w.url, w.clock, seed=SEED)
    w.drive()
    li = DRAWN[4]  # 李树林, 村防汛责任人 of 大坑村 in 龙潭镇
    with transaction(w.url) as session:
        area = current_site(session).people[li].area
    body = {"sender": "qingxi-qx", "identifier": "SC-W1", "msg_type": "alert", "hazard": "rainstorm", "level": "red",
            "areas": [area], "headline": "青溪县气象台发布暴雨红色预警信号", "sent": w.clock.now.isoformat()}
    response = w.client.post("/api/v1/warnings", json=body, headers=auth)
    assert response.status_code == 202, response.text
    w.drive()
    w.reply(li, "1")
    with transaction(w.url, write=False) as session:
        states = dict(session.execute(select(CalloutRow.record_id, CalloutRow.state).where(
            CalloutRow.person_id == li)).all())
    assert states.pop(started.id) == "notified"
    assert list(states.values()) == ["acknowledged"]


# -- through Aliyun: an IVR call whose keys answer in order ------------------------------------------------


AK_ID, AK_SECRET = "LTAI5tJiaoyingSpotCheck1", "jiaoying-aliyun-spotcheck-secret"


@pytest.fixture
def aliyun_world(site_loaded: str, tmp_path: Path) -> Iterator[tuple[FakeAliyun, TestClient, Engine, Clock, str]]:
    fake, aliyun = start_sample_aliyun(AK_ID, AK_SECRET)
    clock = Clock(FIXED_NOW)
    settings = Settings(database_url=site_loaded, public_url=PUBLIC, **aliyun)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="spotcheck-aliyun")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            yield fake, client, engine, clock, callback_token(settings)
    finally:
        engine.close()
        fake.stop()


def test_an_aliyun_ivr_call_reads_every_question_and_its_keys_answer_them_in_order(
        aliyun_world: tuple[FakeAliyun, TestClient, Engine, Clock, str]) -> None:
    fake, client, engine, clock, token = aliyun_world
    started = _start(site_loaded_url(engine), clock, seed=SEED)
    settle_engine(engine, rounds=50)
    zheng = DRAWN[2]
    with transaction(site_loaded_url(engine), write=False) as session:
        number = (current_site(session).people[zheng].mobile or "").removeprefix("+86")
    (call,) = [c for c in fake.calls() if c.numbers[0] == number]
    assert (call.action, call.template_code) == ("IvrCall", "TTS_000012")
    assert [k["Key"] for k in call.menu_key_map] == ["1", "2"]
    # The call's record: four keys, then the caller hung up. Pushed twice (a provider retry).
    for _ in range(2):
        push = fake.voice_report(client, call, "200000", dtmf="1121", url=f"/webhooks/aliyun/{token}/voice-report")
        assert push.status == 200 and push.accepted
    settle_engine(engine, rounds=50)
    result = _result(site_loaded_url(engine), started.id)
    (person,) = [p for p in result.people if p.person_id == zheng]
    assert person.answers == ("yes", "yes", "no", "yes", None, None) and person.state == "notified"
    # The missing two are asked for once by SMS, with the spot-check_again template.
    again = [m for m in fake.messages() if number in m.numbers and m.template_code == "SMS_000013"]
    assert len(again) == 1


def site_loaded_url(engine: Engine) -> str:
    return engine.settings.database_url


# -- the signed link: the questions on a page ------------------------------------------------------------


def test_the_link_page_asks_the_questions_and_a_form_with_one_left_out_is_refused(twilio_world: TwilioWorld) -> None:
    w = twilio_world
    started = _start(w.url, w.clock, seed=SEED)
    w.drive()
    qiu = DRAWN[5]
    settings = Settings(database_url=w.url, public_url=PUBLIC)
    callout = w.callout(qiu, started.id)
    token = make_token(settings, callout.id, qiu, w.clock())
    page = w.client.get(f"/ack/{token}")
    assert page.status_code == 200 and "是否知晓转移路线和安置点？" in page.text and 'value="no"' in page.text
    assert "预警</span>" not in page.text  # a spot-check is no warning: no level badge
    form = {"csrf": csrf_for(settings, token)} | {f"q{q}": "yes" for q in range(6)}
    # Bad input: question 4 left out. Nothing is recorded, and the page says which one.
    refused = w.client.post(f"/ack/{token}", data={k: v for k, v in form.items() if k != "q3"})
    assert refused.status_code == 422 and "第4问未作答" in refused.text
    assert _result(w.url, started.id).people[5].answers == (None,) * 6
    done = w.client.post(f"/ack/{token}", data=form | {"q1": "no"})
    assert done.status_code == 200 and "答案已记录" in done.text
    person = _result(w.url, started.id).people[5]
    assert person.answers == ("yes", "no", "yes", "yes", "yes", "yes") and person.via == "link"
