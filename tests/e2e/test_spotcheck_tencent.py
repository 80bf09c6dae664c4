"""A 六问 spot-check whose calls go by Tencent Cloud voice (腾讯云语音消息), through the engine, the real
SDK clients, a fake Tencent and our callbacks. A Tencent call reports one key (``voicekey_callback``),
not a key per question: the call reads the questions and asks for an SMS reply, the questions go by
SMS with it (also where the spot-check itself only calls), a key pressed on it is recorded as not an
answer, and the SMS reply answers.

The sample county's ``liuwen`` spot-check, seed 42: six people, one per town."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import dispatcher.channels.tencent  # noqa: F401 - registers the Tencent adapters
from dispatcher.api.app import create_app
from dispatcher.api.routes import tencent as tencent_routes
from dispatcher.channels.carrier_templates import load_carrier_templates
from dispatcher.channels.carriers import callback_token
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.cli_carriers import generate
from dispatcher.config import Settings
from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services import spotchecks
from dispatcher.services.record_words import say
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, ROOT, SAMPLE_SITE, Clock
from tests.fakes.tencent_server import CALLBACK_OK, FakeTencent
from tests.support.harness import settle_engine

TEMPLATES = ROOT / "templates" / "carriers.sample.yaml"
SECRET_ID, SECRET_KEY = "AKIDjiaoyingSpotCheckTencent000000001", "jiaoyingSpotCheckTencentSecret0001"
SMS_APP, VOICE_APP, SIGN, PUBLIC = "1400000001", "1400000002", "青溪县应急管理局", "http://testserver"
SEED = 42
DRAWN = ("ye-xingwang", "sun-hao", "zheng-shuigen", "mao-weimin", "li-shulin", "qiu-meijuan")


@dataclass
class World:
    url: str
    fake: FakeTencent
    client: TestClient
    engine: Engine
    clock: Clock
    settings: Settings

    def path(self, name: str) -> str:
        return f"/webhooks/tencent/{callback_token(self.settings)}/{name}"

    def mobile(self, person: str) -> str:
        with transaction(self.url, write=False) as session:
            return current_site(session).people[person].mobile or ""

    def texts_to(self, person: str) -> list[str]:
        return [m.template_id for m in self.fake.messages() if self.mobile(person) in m.numbers]

    def state(self, person: str, record: str) -> str:
        with transaction(self.url, write=False) as session:
            return session.scalar(select(CalloutRow.state).where(CalloutRow.record_id == record,
                                                                 CalloutRow.person_id == person)) or ""


@pytest.fixture(params=["voice", "voice+sms"])
def world(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[World]:
    """The sample county, its spot-check calling only (``channels: [voice]``) or calling and texting."""
    site = tmp_path / "site"
    shutil.copytree(SAMPLE_SITE, site)
    if request.param == "voice":
        checks = (site / "checks.yaml").read_text(encoding="utf-8")
        head, _, spot = checks.rpartition("spotchecks:")
        (site / "checks.yaml").write_text(head + "spotchecks:" + spot.replace("channels: [voice, sms]",
                                                                              "channels: [voice]"), encoding="utf-8")
    with transaction(database_url) as session:
        load_site_files(session, site, FIXED_NOW)
    approved = {t.code: len(t.variables) for t in load_carrier_templates(TEMPLATES).entries.values()
                if t.provider == "tencent"}
    fake = FakeTencent(secret_id=SECRET_ID, secret_key=SECRET_KEY, sms_app_id=SMS_APP, voice_app_id=VOICE_APP,
                       signs={SIGN}, templates=approved)
    fake.start()
    clock = Clock(FIXED_NOW)
    settings = Settings(database_url=database_url, public_url=PUBLIC, tencent_secret_id=SECRET_ID,
                        tencent_secret_key=SECRET_KEY, tencent_sms_app_id=SMS_APP, tencent_voice_app_id=VOICE_APP,
                        tencent_sms_sign_name=SIGN, tencent_sms_endpoint=fake.url, tencent_voice_endpoint=fake.url,
                        carrier_templates=str(TEMPLATES))
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="spotcheck-tencent")
    app = create_app(settings, clock=clock)
    if not any(str(getattr(r, "path", "")).startswith("/webhooks/tencent/") for r in app.routes):
        app.include_router(tencent_routes.router)
    try:
        with TestClient(app) as client:
            yield World(database_url, fake, client, engine, clock, settings)
    finally:
        engine.close()
        fake.stop()


def test_a_tencent_call_reads_the_questions_and_the_answers_come_by_sms(world: World) -> None:
    w = world
    with transaction(w.url) as session:
        started = spotchecks.start(session, None, w.clock(), "user:duty", seed=SEED)
    assert started.sample.drawn == DRAWN
    settle_engine(w.engine, rounds=50)
    # Everyone drawn is called by Tencent with the spot-check's voice template, and texted the
    # questions once — by the spot-check's own SMS step, or because the call cannot take the answers.
    assert sorted(c.numbers[0] for c in w.fake.calls()) == sorted(w.mobile(p) for p in DRAWN)
    assert {c.template_id for c in w.fake.calls()} == {"1000112"}
    for person in DRAWN:
        assert w.texts_to(person) == ["1000012"], person
    ye = DRAWN[0]
    with transaction(w.url, write=False) as session:
        keys = set(session.scalars(select(AttemptRow.key).where(AttemptRow.recipient_id == ye,
                                                                AttemptRow.channel == "sms")))
        callout = session.scalar(select(CalloutRow.id).where(CalloutRow.person_id == ye))
    assert keys == {f"{callout}:0:sms:{ye}"}

    # 叶兴旺 presses 1 on the call, as a call asking for keys would have him: not an answer, and no
    # second SMS (he has the questions); then he answers all six by SMS reply.
    (call,) = [c for c in w.fake.calls() if c.numbers[0] == w.mobile(ye)]
    pressed = w.fake.keypress(w.client, call, keys="1", url=w.path("voice-keypress"))
    assert pressed.status == 200 and pressed.answer == CALLBACK_OK
    assert w.state(ye, started.id) == "notified"
    settle_engine(w.engine, rounds=50)
    assert w.texts_to(ye) == ["1000012"]
    replied = w.fake.reply(w.client, w.mobile(ye), "1 1 2 1 1 1", url=w.path("sms-reply"))
    assert replied.status == 200
    assert w.state(ye, started.id) == "acknowledged"
    with transaction(w.url, write=False) as session:
        person = next(p for p in spotchecks.result(session, started.id).people if p.person_id == ye)
        lines = [s.text for s in say(events(session, started.id), current_site(session), "zh")]
        assert verify(session, started.id) == []
    assert person.answers == ("yes", "yes", "no", "yes", "yes", "yes") and person.via == "sms"
    assert "叶兴旺的电话按键“1”不是有效答案（此电话只能回传一个按键，须短信作答）" in lines, lines


def test_the_tencent_voice_template_asks_for_an_sms_reply_not_for_keys() -> None:
    tencent = generate(Channel.VOICE, "spotcheck", "tencent").text("tencent")
    aliyun = generate(Channel.VOICE, "spotcheck", "aliyun").text("aliyun")
    assert "按键作答" in aliyun and "请依次按键作答" not in tencent  # Aliyun's IVR takes a key per question
    assert tencent.endswith("6.是否在岗在位？本电话不能按键作答，请用短信回复作答，问题已用短信发到您的手机。")
