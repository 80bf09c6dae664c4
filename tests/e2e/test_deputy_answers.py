"""What a deputy's answer acknowledges when the deputy is also called in their own right, end to end
on the sample county (docs/site-files.md, "Deputies (AB岗) and chains").

A red rainstorm for 龙潭镇 and 桃源乡: 徐海涛 is called for 桃源乡, which he 包保; 周敏 for 龙潭镇, and
徐海涛 is her deputy (AB岗). At 6 minutes, 周敏 not having answered, her deputy step texts and calls
him. A plain reply ("收到", "1") answers every open call-out whose message reached him by SMS: after
the deputy message, both; before it, only his own. A reply with a code, a keypress on one call, or
the link in one message answers that call-out only.

The harness here sees 徐海涛's messages only (the sample calls 28 people): every one of them up to the
ninth minute must be expected, and none may come that the test does not expect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.runtime.engine import Engine
from dispatcher.services.site import load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE, Clock
from tests.support.harness import Harness, Sent, settle_engine

XU, ZHOU = "xu-haitao", "zhou-min"  # 周敏's deputy is 徐海涛; his own deputy is 俞晓华


@pytest.fixture
def tiny_site(database_url: str) -> str:  # this module's county: the sample, rosters/qingxi
    with transaction(database_url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    return database_url


@pytest.fixture
def harness(tiny_site: str, clock: Clock, outbox, engine: Engine, auth: dict[str, str]) -> Iterator[Harness]:
    settings = Settings(database_url=tiny_site)

    def sent() -> list[Sent]:
        return [Sent(m.message.key, m.message.channel.value, m.message.to.person_id, m.message.purpose.value,
                     m.message.text) for m in outbox.messages() if m.message.to.person_id == XU]

    def move(delta) -> None:
        clock.now += delta

    with TestClient(create_app(settings, clock=clock)) as client:
        h = Harness(tiny_site, client, auth, clock, move, sent, lambda: settle_engine(engine))
        yield h
        h.advance(minutes=3)  # to 9 minutes, before the superiors' step (he is the superior of three 局长)
        h.expect_nothing_more()


def start(h: Harness) -> Sent:
    """The warning, and 徐海涛's own alert (SMS and IM, with the link); the IM message is returned."""
    h.post(areas=["330599102", "330599200"], headline="青溪县气象台发布暴雨红色预警信号",
           instruction="请立即组织危险区人员转移")
    h.expect(XU, "sms", "alert")
    return h.expect(XU, "im", "alert")


def deputy_message(h: Harness) -> None:
    """6 minutes: 周敏 has not answered, her deputy step texts and calls 徐海涛."""
    h.advance(minutes=3)
    sms = h.expect(XU, "sms", "to_deputy")
    assert "周敏尚未确认" in sms.text
    h.expect(XU, "voice", "to_deputy")


def closed(h: Harness) -> dict[str, tuple[str, str | None, str | None]]:
    """周敏's and 徐海涛's call-outs: (state, how it was answered, by whom)."""
    out = {}
    for person in (XU, ZHOU):
        c = h.callout(person)
        out[person] = (c["state"], c["via"], c["by"])
    return out


def code_of(h: Harness, person: str) -> str:
    with transaction(h.url) as session:
        return session.scalars(select(CalloutRow.ack_code).where(CalloutRow.person_id == person)).one()


def click(h: Harness, im: Sent) -> None:
    """Open the link in an IM message and press its button, as the browser does."""
    path = "/ack/" + re.search(r"/ack/([A-Za-z0-9_.~-]+)", im.text).group(1)
    page = h.client.get(path)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert h.client.post(path, data={"csrf": csrf}).status_code == 200


OPEN = ("notified", None, None)


def test_a_plain_reply_after_the_deputy_message_answers_both_call_outs(harness: Harness) -> None:
    start(harness)
    harness.advance(minutes=3)
    harness.expect(XU, "voice", "reminder")  # his own call at 3 minutes
    deputy_message(harness)
    result = harness.reply_sms(XU, "收到")
    assert result.outcome == "acknowledged" and len(result.callouts) == 2
    assert closed(harness) == {XU: ("acknowledged", "sms", XU), ZHOU: ("acknowledged", "sms", XU)}
    # the deputy step reached the first deputy only, not 徐海涛's own deputy 俞晓华
    with transaction(harness.url) as session:
        zhou = session.scalars(select(CalloutRow.id).where(CalloutRow.person_id == ZHOU)).one()
        told = set(session.scalars(select(AttemptRow.recipient_id).where(
            AttemptRow.callout_id == zhou, AttemptRow.purpose == "to_deputy")))
    assert told == {XU}


@pytest.mark.parametrize("how", ["a plain reply", "a keypress on his own call", "the link in his own message"])
def test_an_answer_before_the_deputy_message_answers_his_own_call_out_only(harness: Harness, how: str) -> None:
    im = start(harness)
    harness.advance(minutes=1)
    if how == "a plain reply":
        harness.reply_sms(XU, "收到")
    elif how == "the link in his own message":
        click(harness, im)
    harness.advance(minutes=2)
    if how == "a keypress on his own call":
        harness.expect(XU, "voice", "reminder")  # not answered by then: called at 3 minutes, presses 1
        harness.press_1(XU, XU)
    via = {"a plain reply": "sms", "a keypress on his own call": "voice", "the link in his own message": "link"}[how]
    assert closed(harness) == {XU: ("acknowledged", via, XU), ZHOU: OPEN}
    deputy_message(harness)  # 周敏 is still to be answered for: her deputy is asked all the same
    assert closed(harness)[ZHOU] == OPEN


@pytest.mark.parametrize(("how", "answers"), [
    ("a reply with his own code", XU),
    ("a reply with 周敏's code (the one in the deputy message)", ZHOU),
    ("a keypress on the deputy call", ZHOU),
    ("the link in his own message", XU),
])
def test_after_the_deputy_message_a_code_a_keypress_or_a_link_answers_that_call_out_only(
    harness: Harness, how: str, answers: str
) -> None:
    im = start(harness)
    harness.advance(minutes=3)
    harness.expect(XU, "voice", "reminder")
    deputy_message(harness)
    if how.startswith("a reply"):
        result = harness.reply_sms(XU, f"收到 {code_of(harness, answers)}")
        assert len(result.callouts) == 1
    elif how == "a keypress on the deputy call":
        harness.press_1(XU, ZHOU)
    else:
        click(harness, im)
    via = "sms" if how.startswith("a reply") else "voice" if "keypress" in how else "link"
    other = ZHOU if answers == XU else XU
    assert closed(harness) == {answers: ("acknowledged", via, XU), other: OPEN}
