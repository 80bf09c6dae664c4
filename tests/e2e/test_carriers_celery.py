"""The mainland carrier story in the production runtime: PostgreSQL, Redis, a Celery worker process and
the `jiaoying scheduler` process sending through the real Aliyun (and Tencent) SDK to the loopback fake, and the
fake's callbacks coming back to the webhooks: alert by SMS → a reply "收到" → acknowledged; no reply →
an IVR call → key 1 → acknowledged; nobody answers → the deputy, the superior, the 未叫醒 list. (The
embedded runtime runs the same story in tests/integration/test_aliyun_channel.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from dispatcher.channels.aliyun import national_number
from dispatcher.channels.carriers import callback_token
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow
from tests.fakes.aliyun_server import FakeAliyun, Received
from tests.fakes.simserver import SimServer
from tests.fakes.tencent_server import FakeTencent
from tests.integration import test_aliyun_channel as ali
from tests.integration import test_tencent_channel as ten
from tests.support.harness import Harness
from tests.support.production import Production, make_harness

pytestmark = pytest.mark.postgres
SAMPLE = ali.ROOT / "templates" / "carriers.sample.yaml"
PHONE = {"zhao": "+8613800000001", "qian": "+8613800000002", "sun": "+8613800000003",
         "zhou": "+8613800000005", "zheng": "+8613800000007"}


@pytest.fixture
def aliyun() -> Iterator[FakeAliyun]:
    fake = FakeAliyun(ali.AK_ID, ali.AK_SECRET, sign_names={ali.SIGN}, templates=ali.fake_templates(SAMPLE),
                      show_numbers={ali.SHOW})
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def carriers(production: Production, aliyun: FakeAliyun) -> Production:  # noqa: F811
    values = {"aliyun_access_key_id": ali.AK_ID, "aliyun_access_key_secret": ali.AK_SECRET,
              "aliyun_sms_sign_name": ali.SIGN, "aliyun_voice_show_number": ali.SHOW,
              "aliyun_sms_endpoint": aliyun.url, "aliyun_voice_endpoint": aliyun.url,
              "carrier_templates": str(SAMPLE)}
    production.settings = production.settings.model_copy(update=values)
    production.env.update({f"JIAOYING_{k.upper()}": v for k, v in values.items()})
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        production.env.pop(name, None)
    return production


def _to(fake: FakeAliyun, person: str, calls: bool = False) -> list[Received]:
    number = national_number(PHONE[person])
    return [r for r in (fake.calls() if calls else fake.messages()) if number in r.numbers]


def _wait(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _states(h: Harness) -> dict[str, str]:
    with transaction(h.url) as session:
        return dict(session.execute(select(CalloutRow.person_id, CalloutRow.state)).all())


def test_the_whole_story_through_aliyun_on_celery(carriers: Production, aliyun: FakeAliyun,
                                                 sim: SimServer, tmp_path: Path) -> None:  # noqa: F811
    carriers.start_worker()
    carriers.start_scheduler()
    h = make_harness(carriers, sim)
    token = callback_token(carriers.settings)
    h.post()
    _wait(lambda: all(_to(aliyun, p) for p in ("sun", "zhou", "zheng")), "the SMS alerts at Aliyun")
    # 孙 replies "收到" (Aliyun's SmsUp push to our webhook): acknowledged.
    answer = aliyun.reply(h.client, PHONE["sun"], "收到", url=f"/webhooks/aliyun/{token}/sms-up")
    assert answer.accepted, answer
    _wait(lambda: _states(h)["sun"] == "acknowledged", "孙's acknowledgement")
    # Nobody else answered: three minutes on, an IVR call each; 周 presses 1.
    h.advance(minutes=3)
    _wait(lambda: _to(aliyun, "zhou", calls=True) and _to(aliyun, "zheng", calls=True), "the IVR calls")
    (call,) = _to(aliyun, "zhou", calls=True)
    assert call.action == "IvrCall" and call.menu_key_map and call.menu_key_map[0]["Key"] == "1"
    assert aliyun.keypress(h.client, call, "1", url=f"/webhooks/aliyun/{token}/voice-keypress").accepted
    _wait(lambda: _states(h)["zhou"] == "acknowledged", "周's keypress")
    # 郑 never answers: the superior's call at 10 minutes, the 未叫醒 list by SMS at 15.
    h.advance(minutes=7)
    _wait(lambda: _to(aliyun, "sun", calls=True), "the call to 郑's superior (孙)")
    h.advance(minutes=5)
    _wait(lambda: _states(h)["zheng"] == "unreached", "郑 on the 未叫醒 list")
    _wait(lambda: all(len(_to(aliyun, p)) >= 1 for p in ("zhao", "qian")), "the 未叫醒 list to the duty officers")
    assert _states(h) == {"sun": "acknowledged", "zhou": "acknowledged", "zheng": "unreached"}
    keys = [k for k in aliyun.keys_seen(accepted_only=True)]
    assert len(keys) == len(set(keys)), "a message reached Aliyun twice"


@pytest.fixture
def tencent() -> Iterator[FakeTencent]:
    fake = ten._fake(_tencent_templates())
    fake.start()
    yield fake
    fake.stop()


def _tencent_templates() -> dict[str, int]:
    """Every Tencent code of the sample file, with its number of variables."""
    section = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["tencent"]
    return {str(e["code"]): len(e["variables"]) for channel in ("sms", "voice") for e in section[channel].values()}


def test_the_whole_story_through_tencent_on_celery(production: Production, tencent: FakeTencent,  # noqa: F811
                                                  sim: SimServer) -> None:  # noqa: F811
    values = {"tencent_secret_id": ten.SECRET_ID, "tencent_secret_key": ten.SECRET_KEY,
              "tencent_sms_app_id": ten.SMS_APP, "tencent_voice_app_id": ten.VOICE_APP,
              "tencent_sms_sign_name": ten.SIGN, "tencent_sms_endpoint": tencent.url,
              "tencent_voice_endpoint": tencent.url, "carrier_templates": str(SAMPLE)}
    production.settings = production.settings.model_copy(update=values)
    production.env.update({f"JIAOYING_{k.upper()}": v for k, v in values.items()})
    production.start_worker()
    production.start_scheduler()
    h = make_harness(production, sim)
    token = callback_token(production.settings)

    def to(person: str, calls: bool = False) -> list[Any]:
        return [r for r in (tencent.calls() if calls else tencent.messages()) if PHONE[person] in r.numbers]

    h.post()
    _wait(lambda: all(to(p) for p in ("sun", "zhou", "zheng")), "the SMS alerts at Tencent")
    assert tencent.reply(h.client, PHONE["sun"], "收到", url=f"/webhooks/tencent/{token}/sms-reply").ok
    _wait(lambda: _states(h)["sun"] == "acknowledged", "孙's acknowledgement")
    h.advance(minutes=3)
    _wait(lambda: to("zhou", calls=True) and to("zheng", calls=True), "the voice calls")
    (call,) = to("zhou", calls=True)
    assert tencent.keypress(h.client, call, "1", url=f"/webhooks/tencent/{token}/voice-keypress").ok
    _wait(lambda: _states(h)["zhou"] == "acknowledged", "周's keypress")
    h.advance(minutes=7)
    h.advance(minutes=5)
    _wait(lambda: _states(h)["zheng"] == "unreached", "郑 on the 未叫醒 list")
    _wait(lambda: all(to(p) for p in ("zhao", "qian")), "the 未叫醒 list to the duty officers")
    keys = tencent.keys_seen()
    assert len(keys) == len(set(keys)), "a message reached Tencent twice"
