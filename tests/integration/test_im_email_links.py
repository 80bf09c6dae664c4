"""IM robots, e-mail and the acknowledgement link, against real local counterparts.

A red rainstorm warning is posted through the API and the engine makes its call-outs; each IM kind
and e-mail then sends a message carrying the official's signed link to a loopback impersonation of
the provider (which verifies the signature as the provider would) or a real aiosmtpd server; the
link from what arrived is opened (GET: no acknowledgement) and confirmed (POST with the page's
anti-CSRF value: acknowledged through the ack service).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dispatcher.api.app import create_app
from dispatcher.channels.base import (
    Address,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from dispatcher.channels.email import EmailAdapter
from dispatcher.channels.im import DingTalkRobot, FeishuBot, ImAdapter, dingtalk_sign, feishu_sign, robots_from
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import events
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, RecordHeadRow
from dispatcher.domain.callouts import CalloutState, Purpose
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level
from dispatcher.links import BadSignature, ExpiredLink, MalformedLink, csrf_for, link_url, make_token, read_token
from dispatcher.runtime.engine import Engine
from dispatcher.services.chain import newest
from dispatcher.services.messages import compose
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, FIXTURES, Clock
from tests.fakes import im_servers as fakes
from tests.fakes.im_servers import FakeIm
from tests.support.mail import MailSink, smtp_server

TINY_SITE = FIXTURES / "sites" / "tiny"
SECRET = "k" * 40
PUBLIC = "http://testserver"


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def tiny_db(database_url: str) -> str:
    with transaction(database_url) as session:
        load_site_files(session, TINY_SITE, FIXED_NOW)
    return database_url


@pytest.fixture
def fake_im() -> Iterator[FakeIm]:
    fake = FakeIm().start()
    yield fake
    fake.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[MailSink, int]]:
    with smtp_server() as server:
        yield server


@dataclass
class World:
    url: str
    settings: Settings
    client: TestClient
    clock: Clock
    callouts: dict[str, int]


@pytest.fixture
def world(tiny_db: str, clock: Clock, auth: dict[str, str]) -> Iterator[World]:
    """A posted red rainstorm warning for 青溪镇 and its call-outs (sun, zhou, zheng)."""
    settings = Settings(database_url=tiny_db, secret_key=SECRET, public_url=PUBLIC)
    engine = Engine(Settings(database_url=tiny_db), clock, lambda: build_adapters(settings, SimOutbox()),
                    name="test")
    with TestClient(create_app(settings, clock=clock)) as client:
        response = client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "IM-1", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": ["330599100"], "headline": "小溪县气象台发布暴雨红色预警信号",
            "instruction": "请立即组织山洪地质灾害危险区人员转移。", "sent": clock().isoformat()})
        assert response.status_code == 202, response.text
        engine.tick()
        engine.close()
        with transaction(tiny_db) as session:
            callouts = {c.person_id: c.id for c in session.scalars(select(CalloutRow))}
        assert set(callouts) == {"sun", "zhou", "zheng"}
        yield World(tiny_db, settings, client, clock, callouts)


def message_for(world: World, person: str, channel: Channel, *, email: str | None = None,
                link: str | None = "make") -> OutboundMessage:
    """What dispatch would hand the adapter: the template text with the official's link in it."""
    with transaction(world.url) as session:
        callout = session.get(CalloutRow, world.callouts[person])
        site = current_site(session)
        if link == "make":
            link = link_url(world.settings, make_token(world.settings, callout.id, person, world.clock()))
        subject, text = compose(site, channel, Purpose.ALERT, newest(session, callout.record_id), callout,
                                site.people[person], site.people[person], link=link)
        p = site.people[person]
        to = Address(p.id, p.name, p.phone, email or p.email, dict(p.im))
        return OutboundMessage(key=f"{callout.id}:0:{channel.value}:{person}", channel=channel,
                               purpose=Purpose.ALERT, to=to, subject=subject, text=text, level=Level(callout.level),
                               ack_code=callout.ack_code, link=link, drill=callout.drill)


def snapshot(world: World, person: str) -> tuple[Any, ...]:
    """Everything a confirmation could change: the call-out and the length of the record."""
    with transaction(world.url) as session:
        c = session.get(CalloutRow, world.callouts[person])
        count = session.get(RecordHeadRow, c.record_id).count
        return c.state, c.ack_via, c.acknowledged_by, c.acknowledged_at, count


def record_kinds(world: World, person: str) -> list[tuple[str, dict[str, Any]]]:
    with transaction(world.url) as session:
        c = session.get(CalloutRow, world.callouts[person])
        return [(e.kind, e.data) for e in events(session, c.record_id)]


LINK = re.compile(r"https?://[^\s)\"'<>\\]+/ack/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def path_of(link: str) -> str:
    return urlsplit(link).path


def page_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the confirm page carries no anti-CSRF value"
    return found.group(1)


def settings_for(world: World, fake: FakeIm, kind: str) -> Settings:
    extra = {
        "dingtalk": {"dingtalk_webhook_url": fake.dingtalk_url, "dingtalk_secret": fakes.DINGTALK_SECRET},
        "wecom": {"wecom_webhook_url": fake.wecom_url},
        "feishu": {"feishu_webhook_url": fake.feishu_url, "feishu_secret": fakes.FEISHU_SECRET},
        "webhook": {"im_webhook_url": fake.webhook_url, "im_webhook_secret": fakes.WEBHOOK_SECRET},
    }[kind]
    return world.settings.model_copy(update=extra)


def send(adapter: Any, message: OutboundMessage) -> SendResult:
    return asyncio.run(adapter.send(message))


def confirm_through_link(world: World, link: str, person: str) -> None:
    """GET shows the page and changes nothing; POST with its anti-CSRF value acknowledges."""
    before = snapshot(world, person)
    page = world.client.get(path_of(link))
    assert page.status_code == 200, page.text
    assert "小溪县气象台发布暴雨红色预警信号" in page.text and "红色" in page.text and "周村长" in page.text
    assert snapshot(world, person) == before, "a GET must never acknowledge"
    done = world.client.post(path_of(link), data={"csrf": page_csrf(page.text)},
                             headers={"User-Agent": "DingTalk/7.0 (test phone)"})
    assert done.status_code == 200, done.text
    assert "已确认收到" in done.text
    state, via, by, at, _ = snapshot(world, person)
    assert (state, via, by, at) == (CalloutState.ACKNOWLEDGED, "link", person, world.clock())


# -- each IM kind and e-mail: message → counterpart → link → confirmed --------------------------------


def test_dingtalk_robot_gets_signed_markdown_with_link_and_mention_and_the_link_confirms(
        world: World, fake_im: FakeIm) -> None:
    adapter = build_adapters(settings_for(world, fake_im, "dingtalk"), SimOutbox())[Channel.IM]
    assert isinstance(adapter, ImAdapter) and adapter.provider == "im" and adapter.kinds == "dingtalk"
    result = send(adapter, message_for(world, "zhou", Channel.IM))
    assert result.status == "sent"
    [got] = fake_im.of("dingtalk")
    assert got.body["msgtype"] == "markdown"
    assert got.body["at"]["atMobiles"] == ["13800000005"] and "@13800000005" in got.body["markdown"]["text"]
    links = LINK.findall(got.body["markdown"]["text"])
    assert links and "确认收到" in got.body["markdown"]["text"]
    confirm_through_link(world, links[0], "zhou")


@pytest.mark.parametrize(("account", "mobiles", "user_ids"), [
    ("manager4521", ["13800000005"], ["manager4521"]),  # a DingTalk userId: mentioned as one
    ("+8613800000005", ["13800000005"], None),  # the official's own mobile written as the account
    ("13900000077", ["13800000005", "13900000077"], None),  # the account opened with another mobile
])
def test_a_dingtalk_account_written_as_a_mobile_is_mentioned_by_that_mobile(
        world: World, fake_im: FakeIm, account: str, mobiles: list[str], user_ids: list[str] | None) -> None:
    """Counties often write 钉钉 as the phone the account was opened with; DingTalk only mentions a
    number through atMobiles (as a userId it mentions nobody, and the official is not pinged)."""
    adapter = build_adapters(settings_for(world, fake_im, "dingtalk"), SimOutbox())[Channel.IM]
    message = message_for(world, "zhou", Channel.IM)
    message = replace(message, to=replace(message.to, im={"dingtalk": account}))
    send(adapter, message)
    [got] = fake_im.of("dingtalk")
    assert got.body["at"]["atMobiles"] == mobiles and got.body["at"].get("atUserIds") == user_ids
    assert all(f"@{m}" in got.body["markdown"]["text"] for m in mobiles)


def test_wecom_robot_gets_text_with_link_and_mobile_mention_and_the_link_confirms(
        world: World, fake_im: FakeIm) -> None:
    adapter = build_adapters(settings_for(world, fake_im, "wecom"), SimOutbox())[Channel.IM]
    send(adapter, message_for(world, "zhou", Channel.IM))
    [got] = fake_im.of("wecom")
    assert got.body["msgtype"] == "text" and got.body["text"]["mentioned_mobile_list"] == ["13800000005"]
    confirm_through_link(world, LINK.findall(got.body["text"]["content"])[0], "zhou")


def test_feishu_bot_gets_signed_card_with_confirm_button_and_the_link_confirms(
        world: World, fake_im: FakeIm) -> None:
    adapter = build_adapters(settings_for(world, fake_im, "feishu"), SimOutbox())[Channel.IM]
    send(adapter, message_for(world, "zhou", Channel.IM))
    [got] = fake_im.of("feishu")
    card = got.body["card"]
    assert got.body["msg_type"] == "interactive" and card["header"]["template"] == "red"
    [button] = card["elements"][-1]["actions"]
    assert button["text"]["content"] == "确认收到"
    confirm_through_link(world, button["url"], "zhou")


def test_generic_webhook_gets_signed_json_and_the_link_confirms(world: World, fake_im: FakeIm) -> None:
    adapter = build_adapters(settings_for(world, fake_im, "webhook"), SimOutbox())[Channel.IM]
    message = message_for(world, "zhou", Channel.IM)
    result = send(adapter, message)
    [got] = fake_im.of("webhook")
    assert result.provider_id == "webhook:wh-1"
    assert {k: got.body[k] for k in ("key", "purpose", "level")} == {"key": message.key, "purpose": "alert",
                                                                     "level": "red"}
    assert got.body["to"]["id"] == "zhou" and got.body["link"] == message.link
    assert got.headers["idempotency-key"] == message.key
    confirm_through_link(world, got.body["link"], "zhou")


def test_email_reaches_the_smtp_server_with_link_in_text_and_html_and_the_link_confirms(
        world: World, smtp: tuple[MailSink, int]) -> None:
    sink, port = smtp
    settings = world.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                                 "smtp_from": "duty@xiaoxi.example", "smtp_starttls": False,
                                                 "smtp_timeout": 5.0})
    adapter = build_adapters(settings, SimOutbox())[Channel.EMAIL]
    assert isinstance(adapter, EmailAdapter)
    message = message_for(world, "zhou", Channel.EMAIL, email="zhou@xiaoxi.example")
    result = send(adapter, message)
    [envelope] = sink.messages
    assert envelope.mail_from == "duty@xiaoxi.example" and envelope.rcpt_tos == ["zhou@xiaoxi.example"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert result.provider_id in mail["Message-ID"] and "暴雨红色预警" in mail["Subject"]
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert message.link in plain and f'href="{message.link}"' in html and "确认收到" in html
    confirm_through_link(world, LINK.findall(plain)[0], "zhou")


# -- the link page's cases --------------------------------------------------------------------------


def token_for(world: World, person: str, **kw: Any) -> str:
    return make_token(world.settings, world.callouts[person], person, kw.get("now", world.clock()))


def test_link_get_shows_the_warning_and_a_confirm_button_but_never_acknowledges(world: World) -> None:
    token = token_for(world, "zhou")
    before = snapshot(world, "zhou")
    for _ in range(3):  # previewers and scanners fetch the link, sometimes repeatedly
        page = world.client.get(f"/ack/{token}")
        assert page.status_code == 200
    assert 'lang="zh-CN"' in page.text and "确认收到" in page.text and "<form method=\"post\"" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script" not in page.text and "<link" not in page.text and "src=" not in page.text  # no assets
    assert snapshot(world, "zhou") == before


def test_link_post_with_csrf_acknowledges_through_the_ack_service_and_records_ip_and_agent(world: World) -> None:
    token = token_for(world, "zhou")
    done = world.client.post(f"/ack/{token}", data={"csrf": csrf_for(world.settings, token)},
                             headers={"User-Agent": "Mozilla/5.0 (iPhone) test"})
    assert done.status_code == 200 and "已确认收到" in done.text
    state, via, by, at, _ = snapshot(world, "zhou")
    assert (state, via, by, at) == ("acknowledged", "link", "zhou", FIXED_NOW)
    kinds = record_kinds(world, "zhou")
    [acked] = [d for k, d in kinds if k == "acknowledged"]
    assert acked["callout"] == world.callouts["zhou"] and acked["via"] == "link"
    [used] = [d for k, d in kinds if k == "link_used"]
    assert used["user_agent"] == "Mozilla/5.0 (iPhone) test" and used["ip"] and used["recipient"] == "zhou"
    assert snapshot(world, "sun")[0] != "acknowledged", "only the link's own call-out is acknowledged"


def test_link_post_again_answers_already_confirmed_and_changes_nothing(world: World) -> None:
    token = token_for(world, "zhou")
    form = {"csrf": csrf_for(world.settings, token)}
    assert world.client.post(f"/ack/{token}", data=form).status_code == 200
    after_first = snapshot(world, "zhou")
    world.clock.now += timedelta(minutes=2)
    again = world.client.post(f"/ack/{token}", data=form)
    assert again.status_code == 200 and "already confirmed" in again.text and "已经确认过" in again.text
    assert snapshot(world, "zhou") == after_first
    # a fresh link for the same call-out is used up too: single use is the call-out's state
    other = token_for(world, "zhou")
    reused = world.client.post(f"/ack/{other}", data={"csrf": csrf_for(world.settings, other)})
    assert "already confirmed" in reused.text
    assert snapshot(world, "zhou") == after_first
    assert "已确认" in world.client.get(f"/ack/{token}").text


def test_link_post_without_csrf_is_refused_403_and_changes_nothing(world: World) -> None:
    token = token_for(world, "zhou")
    before = snapshot(world, "zhou")
    assert world.client.post(f"/ack/{token}").status_code == 403
    assert world.client.post(f"/ack/{token}", data={"csrf": "0" * 64}).status_code == 403
    other = token_for(world, "sun")  # a value from another link's page does not fit this one
    assert world.client.post(f"/ack/{token}", data={"csrf": csrf_for(world.settings, other)}).status_code == 403
    assert snapshot(world, "zhou") == before


def test_expired_link_answers_410_on_get_and_post_and_changes_nothing(world: World) -> None:
    token = token_for(world, "zhou", now=FIXED_NOW - timedelta(hours=24, seconds=1))
    before = snapshot(world, "zhou")
    page = world.client.get(f"/ack/{token}")
    assert page.status_code == 410 and "已过期" in page.text
    posted = world.client.post(f"/ack/{token}", data={"csrf": csrf_for(world.settings, token)})
    assert posted.status_code == 410
    assert snapshot(world, "zhou") == before


def test_tampered_link_answers_400_and_changes_nothing(world: World) -> None:
    token = token_for(world, "zhou")
    payload, sig = token.split(".")
    forged_payload = make_token(world.settings, world.callouts["sun"], "sun", FIXED_NOW).split(".")[0]
    before = snapshot(world, "zhou")
    for bad in (f"{forged_payload}.{sig}", f"{payload}.{sig[:-2]}AA", f"{payload}x.{sig}", "not-a-token",
                f"{payload}.{sig}.extra"):
        page = world.client.get(f"/ack/{bad}")
        assert page.status_code == 400, bad
        assert world.client.post(f"/ack/{bad}", data={"csrf": csrf_for(world.settings, bad)}).status_code == 400
    assert snapshot(world, "zhou") == before
    signed_elsewhere = make_token(world.settings.model_copy(update={"secret_key": "x" * 40}),
                                  world.callouts["zhou"], "zhou", FIXED_NOW)
    assert world.client.get(f"/ack/{signed_elsewhere}").status_code == 400


# -- tokens ------------------------------------------------------------------------------------------


def test_token_round_trip_binds_callout_and_recipient_and_expires_within_ttl() -> None:
    settings = Settings(database_url="sqlite://", secret_key=SECRET, link_ttl_hours=2)
    token = make_token(settings, 42, "zhou", FIXED_NOW)
    claims = read_token(settings, token, FIXED_NOW + timedelta(hours=1))
    assert (claims.callout_id, claims.recipient, claims.expires) == (42, "zhou", FIXED_NOW + timedelta(hours=2))
    assert make_token(settings, 42, "zhou", FIXED_NOW) != token  # a fresh nonce each time
    with pytest.raises(ExpiredLink):
        read_token(settings, token, FIXED_NOW + timedelta(hours=2))
    capped = make_token(settings, 42, "zhou", FIXED_NOW, not_after=FIXED_NOW + timedelta(minutes=30))
    assert read_token(settings, capped, FIXED_NOW).expires == FIXED_NOW + timedelta(minutes=30)
    with pytest.raises(BadSignature):
        read_token(settings.model_copy(update={"secret_key": "y" * 40}), token, FIXED_NOW)
    with pytest.raises(MalformedLink):
        read_token(settings, "a.b.c", FIXED_NOW)


# -- IM business errors, as the real services answer them (HTTP 200 + errcode) -----------------------


def test_signing_matches_the_reference_vectors() -> None:
    assert dingtalk_sign("SECtestsecret", 1700000000000) == "7LVwF0dAF3/+MRRulbpE4y72Ogzykc6bS2nG4I99T4s="
    assert feishu_sign("testsecret", 1700000000) == "AOc8oJ7//5OlQlfWC3nRL0R+IkuzcD1FKcAyibRK9Q8="


def test_dingtalk_throttle_130101_is_transient(world: World, fake_im: FakeIm) -> None:
    adapter = build_adapters(settings_for(world, fake_im, "dingtalk"), SimOutbox())[Channel.IM]
    fake_im.fail_next("dingtalk", {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
    with pytest.raises(TransientError) as caught:
        send(adapter, message_for(world, "zhou", Channel.IM))
    assert caught.value.retry_after == 600.0


def test_dingtalk_wrong_secret_is_a_configuration_error_310000(world: World, fake_im: FakeIm) -> None:
    settings = settings_for(world, fake_im, "dingtalk").model_copy(update={"dingtalk_secret": "SECwrong"})
    with pytest.raises(ConfigurationError, match="310000"):
        send(build_adapters(settings, SimOutbox())[Channel.IM], message_for(world, "zhou", Channel.IM))
    assert fake_im.of("dingtalk") == [] and fake_im.refused[0][0] == "dingtalk"


def test_wecom_throttle_45009_is_transient(world: World, fake_im: FakeIm) -> None:
    fake_im.fail_next("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"})
    with pytest.raises(TransientError):
        send(build_adapters(settings_for(world, fake_im, "wecom"), SimOutbox())[Channel.IM],
             message_for(world, "zhou", Channel.IM))


def test_feishu_wrong_secret_19021_is_configuration_and_throttle_11232_transient(world: World,
                                                                                fake_im: FakeIm) -> None:
    bad = settings_for(world, fake_im, "feishu").model_copy(update={"feishu_secret": "wrong"})
    with pytest.raises(ConfigurationError, match="19021"):
        send(build_adapters(bad, SimOutbox())[Channel.IM], message_for(world, "zhou", Channel.IM))
    fake_im.fail_next("feishu", {"code": 11232, "msg": "frequency limited"})
    with pytest.raises(TransientError):
        send(build_adapters(settings_for(world, fake_im, "feishu"), SimOutbox())[Channel.IM],
             message_for(world, "zhou", Channel.IM))


def test_generic_webhook_without_secret_refuses_to_send_unsigned(world: World, fake_im: FakeIm) -> None:
    settings = settings_for(world, fake_im, "webhook").model_copy(update={"im_webhook_secret": ""})
    with pytest.raises(ConfigurationError):
        send(build_adapters(settings, SimOutbox())[Channel.IM], message_for(world, "zhou", Channel.IM))
    assert fake_im.of("webhook") == []


def test_every_configured_robot_gets_the_message_and_one_failing_robot_does_not_fail_the_send(
        world: World, fake_im: FakeIm) -> None:
    settings = world.settings
    for kind in ("dingtalk", "wecom", "feishu", "webhook"):
        settings = settings_for(replace(world, settings=settings), fake_im, kind)
    adapter = build_adapters(settings, SimOutbox())[Channel.IM]
    assert isinstance(adapter, ImAdapter) and adapter.kinds == "dingtalk+wecom+feishu+webhook"
    assert send(adapter, message_for(world, "zhou", Channel.IM)).status == "sent"
    assert [len(fake_im.of(k)) for k in ("dingtalk", "wecom", "feishu", "webhook")] == [1, 1, 1, 1]
    fake_im.fail_next("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"})
    result = send(adapter, message_for(world, "zheng", Channel.IM))
    assert result.status.startswith("partial") and "45009" in result.status  # no retry: no double posts


def test_all_robots_failing_raises_the_most_retryable_error(world: World, fake_im: FakeIm) -> None:
    robots = [DingTalkRobot(fake_im.dingtalk_url, "SECwrong"), FeishuBot(fake_im.feishu_url, fakes.FEISHU_SECRET)]
    fake_im.fail_next("feishu", {"code": 11232, "msg": "frequency limited"})
    with pytest.raises(TransientError, match="310000"):
        send(ImAdapter(robots), message_for(world, "zhou", Channel.IM))
    fake_im.fail_next("wecom", {"errcode": 40008, "errmsg": "invalid message type"})
    with pytest.raises(PermanentError, match="40008"):
        send(ImAdapter(robots_from(settings_for(world, fake_im, "wecom"))), message_for(world, "zhou", Channel.IM))


def test_unreachable_robot_is_transient(world: World) -> None:
    settings = world.settings.model_copy(update={"wecom_webhook_url": f"http://127.0.0.1:{free_port()}/x?key=k"})
    with pytest.raises(TransientError, match="unreachable"):
        send(build_adapters(settings, SimOutbox())[Channel.IM], message_for(world, "zhou", Channel.IM))


# -- e-mail errors -------------------------------------------------------------------------------------


def email_settings(world: World, port: int) -> Settings:
    return world.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 5.0,
                                             "smtp_from": "duty@xiaoxi.example", "smtp_starttls": False})


def test_email_5xx_recipient_refusal_is_permanent_and_4xx_transient(world: World,
                                                                    smtp: tuple[MailSink, int]) -> None:
    sink, port = smtp
    adapter = EmailAdapter(email_settings(world, port))
    with pytest.raises(PermanentError, match="550"):
        send(adapter, message_for(world, "zhou", Channel.EMAIL, email="nobody@xiaoxi.example"))
    with pytest.raises(TransientError, match="451"):
        send(adapter, message_for(world, "zhou", Channel.EMAIL, email="busy@xiaoxi.example"))
    assert sink.messages == []


def test_email_without_address_is_permanent_and_unreachable_server_transient(world: World) -> None:
    adapter = EmailAdapter(email_settings(world, free_port()))
    with pytest.raises(PermanentError):
        send(adapter, message_for(world, "zhou", Channel.EMAIL))  # the tiny site has no e-mail addresses
    with pytest.raises(TransientError):
        send(adapter, message_for(world, "zhou", Channel.EMAIL, email="zhou@xiaoxi.example"))


def test_email_requiring_starttls_from_a_server_without_it_is_a_configuration_error(
        world: World, smtp: tuple[MailSink, int]) -> None:
    _, port = smtp
    settings = email_settings(world, port).model_copy(update={"smtp_starttls": True})
    with pytest.raises(ConfigurationError):
        send(EmailAdapter(settings), message_for(world, "zhou", Channel.EMAIL, email="zhou@xiaoxi.example"))
