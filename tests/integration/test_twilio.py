"""Twilio end to end: the REAL twilio client against tests/fakes/twilio_server.py, and the REAL
webhooks with REAL signatures, from a warning to its acknowledgement (SQLite and PostgreSQL).
Outages and provider errors are checked at the adapter level."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.api.app import create_app
from dispatcher.channels.base import (
    Address,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    Purpose,
    TransientError,
)
from dispatcher.channels.registry import build_adapters, choose_provider
from dispatcher.channels.simulator import SimOutbox
from dispatcher.channels.twilio import TwilioSmsAdapter, TwilioVoiceAdapter
from dispatcher.config import Settings
from dispatcher.db.record_repo import events
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, EventRow, InboundRow
from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level
from dispatcher.runtime.engine import Engine
from tests.conftest import Clock
from tests.e2e.conftest import tiny_site  # noqa: F401 - the fixture
from tests.fakes.twilio_server import FakeTwilio, Received
from tests.support.harness import settle_engine

ACCOUNT = "AC" + "a" * 32
TOKEN = "test-auth-token-0123456789abcdef"
FROM = "+15005550006"
PUBLIC = "http://testserver"
PHONE = {"sun": "+8613800000003", "zhou": "+8613800000005", "zheng": "+8613800000007", "wu": "+8613800000006"}


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(ACCOUNT, TOKEN, PUBLIC)
    server.start()
    yield server
    server.stop()


def twilio_settings(database_url: str, fake: FakeTwilio, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN,
                              "twilio_from_number": FROM, "twilio_api_base": fake.url, "public_url": PUBLIC}
    return Settings(**(values | overrides))


@dataclass
class World:
    url: str
    fake: FakeTwilio
    client: TestClient
    engine: Engine
    clock: Clock
    headers: dict[str, str]

    def drive(self) -> None:
        settle_engine(self.engine, rounds=50)

    def advance(self, minutes: float) -> None:
        self.drive()
        self.clock.now += timedelta(minutes=minutes)
        self.drive()

    def post_warning(self) -> str:
        body = {"sender": "qingxi-qx", "identifier": "TW-1", "msg_type": "alert", "hazard": "rainstorm",
                "level": "red", "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
                "instruction": "请立即组织转移", "sent": self.clock.now.isoformat()}
        response = self.client.post("/api/v1/warnings", json=body, headers=self.headers)
        assert response.status_code == 202, response.text
        self.drive()
        return response.json()["id"]

    def callout(self, person: str) -> CalloutRow:
        with transaction(self.url) as session:
            row = session.scalars(select(CalloutRow).where(CalloutRow.person_id == person)).one()
            session.expunge(row)
            return row

    def attempt(self, sid: str) -> AttemptRow:
        with transaction(self.url) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.provider_id == sid)).one()
            session.expunge(row)
            return row

    def message_to(self, person: str) -> Received:
        found = [m for m in self.fake.messages() if m.to == PHONE[person]]
        assert len(found) == 1, f"{len(found)} messages to {person}"
        return found[0]

    def call_to(self, person: str) -> Received:
        found = [c for c in self.fake.calls() if c.to == PHONE[person]]
        assert len(found) == 1, f"{len(found)} calls to {person}"
        return found[0]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused webhook must leave alone."""
        with transaction(self.url) as session:
            callouts = session.execute(select(CalloutRow.id, CalloutRow.state, CalloutRow.next_due,
                                              CalloutRow.ack_via).order_by(CalloutRow.id)).all()
            attempts = session.execute(select(AttemptRow.id, AttemptRow.status).order_by(AttemptRow.id)).all()
            inbound = session.scalar(select(func.count()).select_from(InboundRow))
            recorded = session.scalar(select(func.count()).select_from(EventRow))
        return tuple(callouts), tuple(attempts), inbound, recorded


@pytest.fixture
def world(tiny_site: str, fake: FakeTwilio, clock: Clock, auth: dict[str, str]) -> Iterator[World]:  # noqa: F811
    settings = twilio_settings(tiny_site, fake)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="twilio-test")
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            yield World(tiny_site, fake, client, engine, clock, auth)
    finally:
        engine.close()


def twiml(response: Any) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


# -- from warning to acknowledgement -----------------------------------------------------------


def test_registry_picks_twilio_for_sms_and_voice_when_configured(fake: FakeTwilio) -> None:
    settings = twilio_settings("sqlite://", fake)
    assert choose_provider(Channel.SMS, settings) == "twilio"
    assert choose_provider(Channel.VOICE, settings) == "twilio"
    assert choose_provider(Channel.SMS, Settings(database_url="sqlite://")) == "simulator"


def test_warning_sends_sms_through_twilio_and_records_the_sid(world: World) -> None:
    world.post_warning()
    assert sorted(m.to for m in world.fake.messages()) == sorted(PHONE[p] for p in ("sun", "zhou", "zheng"))
    message = world.message_to("sun")
    assert message.first("From") == FROM and "暴雨红色预警" in message.first("Body")
    assert message.first("StatusCallback").startswith(f"{PUBLIC}/webhooks/twilio/status")
    attempt = world.attempt(message.sid)
    assert (attempt.provider, attempt.status, attempt.channel) == ("twilio", "sent", "sms")
    assert world.callout("sun").state == "notified"


def test_status_callbacks_are_recorded_and_never_go_backwards(world: World) -> None:
    wid = world.post_warning()
    message = world.message_to("sun")
    for status in ("sent", "delivered", "sent"):  # the last one arrives late
        assert world.fake.status(world.client, message, status).status_code == 200
    assert world.attempt(message.sid).status == "delivered"
    undelivered = world.message_to("zhou")
    world.fake.status(world.client, undelivered, "undelivered", "30003")
    assert world.attempt(undelivered.sid).status == "failed"
    with transaction(world.url) as session:
        receipts = [e for e in events(session, wid) if e.kind == "provider_receipt"]
    assert [(e.data["provider_status"], e.data["status"]) for e in receipts] == [
        ("sent", "sent"), ("delivered", "delivered"), ("sent", "delivered"), ("undelivered", "failed")]


def test_status_callback_for_unknown_sid_changes_nothing(world: World) -> None:
    world.post_warning()
    before = world.snapshot()
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT}
    assert world.fake.post_signed(world.client, "/webhooks/twilio/status", params).status_code == 200
    assert world.snapshot() == before


def test_inbound_reply_shou_dao_acknowledges_the_senders_sms_callouts(world: World) -> None:
    wid = world.post_warning()
    doc = twiml(world.fake.inbound_sms(world.client, PHONE["sun"], " 收到！"))
    assert "已确认" in (doc.findtext("Message") or "")
    sun = world.callout("sun")
    assert (sun.state, sun.ack_via, sun.acknowledged_by) == ("acknowledged", "sms", "sun")
    assert world.callout("zhou").state == "notified"
    with transaction(world.url) as session:
        assert "inbound_sms" in [e.kind for e in events(session, wid)]


@pytest.mark.parametrize("text", ["1", "确认", " OK. ", "好", "１"])
def test_inbound_confirmation_words_acknowledge(world: World, text: str) -> None:
    world.post_warning()
    world.fake.inbound_sms(world.client, PHONE["zhou"], text)
    assert world.callout("zhou").state == "acknowledged"


def test_inbound_code_in_full_width_digits_acknowledges_that_callout(world: World) -> None:
    world.post_warning()
    code = world.callout("zheng").ack_code
    full_width = code.translate({ord("0") + i: ord("０") + i for i in range(10)})
    world.fake.inbound_sms(world.client, PHONE["zheng"], f"确认{full_width}")
    assert world.callout("zheng").state == "acknowledged"
    assert world.callout("sun").state == "notified"


def test_inbound_other_text_gets_a_chinese_help_reply_and_changes_no_callout(world: World) -> None:
    world.post_warning()
    doc = twiml(world.fake.inbound_sms(world.client, PHONE["sun"], "什么情况？"))
    assert "回复" in (doc.findtext("Message") or "") and "1" in (doc.findtext("Message") or "")
    assert world.callout("sun").state == "notified"


def test_voice_step_says_the_warning_twice_in_mandarin_and_digit_1_acknowledges(world: World) -> None:
    world.post_warning()
    world.fake.inbound_sms(world.client, PHONE["sun"], "收到")
    world.advance(minutes=3)  # step 1: voice to those who have not answered
    assert sorted(c.to for c in world.fake.calls()) == [PHONE["zhou"], PHONE["zheng"]]
    call = world.call_to("zhou")
    assert call.first("Url").startswith(f"{PUBLIC}/webhooks/twilio/voice?attempt=")
    assert world.attempt(call.sid).status == "sent"

    doc = twiml(world.fake.fetch_twiml(world.client, call))
    gather = doc.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    action = gather.get("action") or ""
    assert action.startswith(f"{PUBLIC}/webhooks/twilio/voice/gather?attempt=")
    says = gather.findall("Say")
    assert len(says) == 2 and says[0].text == says[1].text and "按1" in (says[0].text or "")
    assert all(s.get("language") == "cmn-CN" for s in says)

    again = twiml(world.fake.gather(world.client, action, call, "5"))  # any other key: said again
    assert again.find("Gather") is not None
    assert world.callout("zhou").state == "notified"

    twiml(world.fake.gather(world.client, action, call, "1"))
    zhou = world.callout("zhou")
    assert (zhou.state, zhou.ack_via, zhou.acknowledged_by) == ("acknowledged", "voice", "zhou")
    world.fake.status(world.client, call, "completed")
    assert world.attempt(call.sid).status == "delivered"


def test_call_no_answer_fails_the_attempt_and_the_next_step_runs_at_once(world: World) -> None:
    world.post_warning()
    world.advance(minutes=3)
    call = world.call_to("zhou")
    assert world.callout("zhou").next_due > world.clock.now
    for status in ("initiated", "ringing", "no-answer"):
        assert world.fake.status(world.client, call, status).status_code == 200
    assert world.attempt(call.sid).status == "failed"
    assert world.callout("zhou").next_due == world.clock.now
    world.drive()  # step 2 (6m) runs now: SMS to 周村长's deputy 吴主任
    assert [m.to for m in world.fake.messages()].count(PHONE["wu"]) == 1


@pytest.mark.parametrize("status", ["busy", "failed", "canceled"])
def test_call_busy_failed_canceled_fail_the_attempt(world: World, status: str) -> None:
    world.post_warning()
    world.advance(minutes=3)
    call = world.call_to("zheng")
    world.fake.status(world.client, call, status)
    assert world.attempt(call.sid).status == "failed"
    assert world.callout("zheng").next_due == world.clock.now


# -- refusals: 403, and nothing changes -----------------------------------------------------------


def _reply_params(sender: str, body: str) -> dict[str, str]:
    return {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT, "From": sender, "To": FROM, "Body": body}


def test_forged_signature_is_refused(world: World) -> None:
    world.post_warning()
    before = world.snapshot()
    params = _reply_params(PHONE["sun"], "收到")
    forged = FakeTwilio(ACCOUNT, "not-the-token", PUBLIC).sign(f"{PUBLIC}/webhooks/twilio/sms", params)
    r = world.client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": forged})
    assert r.status_code == 403
    assert world.snapshot() == before


def test_unsigned_request_is_refused(world: World) -> None:
    world.post_warning()
    before = world.snapshot()
    r = world.client.post("/webhooks/twilio/sms", data=_reply_params(PHONE["sun"], "收到"))
    assert r.status_code == 403
    assert world.snapshot() == before


def test_replayed_request_with_altered_body_is_refused(world: World) -> None:
    world.post_warning()
    params = _reply_params(PHONE["sun"], "什么事")
    signature = world.fake.sign(f"{PUBLIC}/webhooks/twilio/sms", params)
    assert world.client.post("/webhooks/twilio/sms", data=params,
                             headers={"X-Twilio-Signature": signature}).status_code == 200
    before = world.snapshot()
    altered = params | {"Body": "收到"}
    r = world.client.post("/webhooks/twilio/sms", data=altered, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 403
    assert world.snapshot() == before
    call_status = {"CallSid": "CA" + "2" * 32, "CallStatus": "completed"}
    signature = world.fake.sign(f"{PUBLIC}/webhooks/twilio/status", call_status)
    r = world.client.post("/webhooks/twilio/status", data=call_status | {"CallStatus": "no-answer"},
                          headers={"X-Twilio-Signature": signature})
    assert r.status_code == 403


def test_signature_for_another_url_is_refused(world: World) -> None:
    world.post_warning()
    before = world.snapshot()
    r = world.fake.post_signed(world.client, "/webhooks/twilio/sms", _reply_params(PHONE["sun"], "收到"),
                               signed_url="https://elsewhere.example/webhooks/twilio/sms")
    assert r.status_code == 403
    assert world.snapshot() == before


def test_voice_gather_with_forged_signature_is_refused(world: World) -> None:
    world.post_warning()
    world.advance(minutes=3)
    call = world.call_to("zhou")
    action = call.first("Url").replace("/voice?", "/voice/gather?")
    before = world.snapshot()
    params = world.fake.call_params(call, Digits="1")
    r = world.client.post(action, data=params, headers={"X-Twilio-Signature": "AAAA" + "=" * 24})
    assert r.status_code == 403
    assert world.snapshot() == before


def test_no_auth_token_configured_refuses_every_webhook(tiny_site: str, fake: FakeTwilio,  # noqa: F811
                                                        clock: Clock) -> None:
    settings = twilio_settings(tiny_site, fake, twilio_auth_token="")
    with TestClient(create_app(settings, clock=clock)) as client:
        for path, params in [("/webhooks/twilio/sms", _reply_params(PHONE["sun"], "收到")),
                             ("/webhooks/twilio/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}),
                             ("/webhooks/twilio/voice?attempt=1", {"CallSid": "CA1"}),
                             ("/webhooks/twilio/voice/gather?attempt=1", {"CallSid": "CA1", "Digits": "1"})]:
            # signed with the token Twilio would use: still refused, the app cannot check it
            assert fake.post_signed(client, path, params).status_code == 403, path
            assert client.post(path, data=params).status_code == 403, path
    with transaction(tiny_site) as session:
        assert session.scalar(select(func.count()).select_from(InboundRow)) == 0


# -- the adapter against outages and provider errors -------------------------------------------------


def _message(phone: str = PHONE["sun"], channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage(key="9:0:sms:sun", channel=channel, purpose=Purpose.ALERT,
                           to=Address("sun", "孙镇长", phone), subject="", text="暴雨红色预警", level=Level.RED)


def _send(adapter: Any, message: OutboundMessage | None = None) -> Any:
    async def go() -> Any:
        try:
            return await adapter.send(message or _message())
        finally:
            await adapter.aclose()

    return asyncio.run(go())


@pytest.fixture
def sms(fake: FakeTwilio) -> Callable[..., TwilioSmsAdapter]:
    # Seconds for the connection and for each read. Only the hang test wants it short: on a loaded
    # 2-core machine a pause of the test process past 0.5 s made a plain send time out (seen once).
    def make(timeout: float = 5.0, **overrides: Any) -> TwilioSmsAdapter:
        return TwilioSmsAdapter(twilio_settings("sqlite://", fake, **overrides), timeout=timeout)

    return make


def test_adapter_sends_sms_and_call_with_callbacks(fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    result = _send(sms())
    assert result.provider_id == fake.messages()[0].sid and result.provider_id.startswith("SM")
    voice = TwilioVoiceAdapter(twilio_settings("sqlite://", fake), timeout=5.0)
    call = _send(voice, _message(channel=Channel.VOICE))
    received = fake.calls()[0]
    assert call.provider_id == received.sid and received.first("Method") == "POST"
    assert received.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


class _ForwardProxy:
    """A plain HTTP forward proxy on loopback that notes each request it carries (a county's outbound
    proxy): it gets ``POST http://host/path`` and sends it on."""

    def __init__(self) -> None:
        carried = self.carried = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                target = urlsplit(self.path)
                carried.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                upstream.request("POST", target.path + (f"?{target.query}" if target.query else ""), body,
                                 {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"})
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_outbound_proxy_of_the_environment_is_used_as_it_was_when_the_client_was_built(
        fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter], monkeypatch: pytest.MonkeyPatch) -> None:
    """A county office reaches the internet through an HTTP proxy (HTTP_PROXY): every send goes
    through it. The environment is read once, when the adapter is built (not again per message)."""
    proxy = _ForwardProxy()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        adapter = sms()
        monkeypatch.delenv("HTTP_PROXY")  # read once: changing it now changes nothing for this client
        _send(adapter)
        assert len(fake.messages()) == 1 and len(proxy.carried) == 1
        assert proxy.carried[0].startswith(fake.url + "/2010-04-01/Accounts/")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the proxy is bypassed for a host NO_PROXY names
        _send(sms())
        assert len(fake.messages()) == 2 and len(proxy.carried) == 1
    finally:
        proxy.stop()


def test_adapter_provider_500_is_transient(fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    fake.fail_next(500)
    with pytest.raises(TransientError):
        _send(sms())


def test_adapter_provider_429_is_transient_with_retry_after(fake: FakeTwilio,
                                                            sms: Callable[..., TwilioSmsAdapter]) -> None:
    fake.fail_next(429, code=20429, retry_after=7)
    with pytest.raises(TransientError) as caught:
        _send(sms())
    assert caught.value.retry_after == 7


def test_adapter_provider_hangs_is_transient(fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    fake.hang_next(2.0)  # longer than the adapter's 0.5 s below
    started = time.monotonic()
    with pytest.raises(TransientError):
        _send(sms(timeout=0.5))
    assert time.monotonic() - started < 2.0


def test_adapter_provider_unreachable_is_transient(sms: Callable[..., TwilioSmsAdapter]) -> None:
    with pytest.raises(TransientError):
        _send(sms(twilio_api_base="http://127.0.0.1:9"))


def test_adapter_invalid_number_21211_is_permanent(fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    fake.fail_next(400, code=21211)
    with pytest.raises(PermanentError, match="invalid"):
        _send(sms())


def test_adapter_unsubscribed_21610_is_permanent(fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    fake.fail_next(400, code=21610)
    with pytest.raises(PermanentError, match="unsubscribed"):
        _send(sms())


def test_adapter_wrong_credentials_is_configuration_error(fake: FakeTwilio,
                                                          sms: Callable[..., TwilioSmsAdapter]) -> None:
    with pytest.raises(ConfigurationError):
        _send(sms(twilio_auth_token="wrong"))
    assert fake.refused == 1 and fake.messages() == []


def test_adapter_without_credentials_is_configuration_error_without_calling_out(
        fake: FakeTwilio, sms: Callable[..., TwilioSmsAdapter]) -> None:
    with pytest.raises(ConfigurationError):
        _send(sms(twilio_account_sid=""))
    assert fake.refused == 0 and fake.messages() == []


def test_adapter_no_phone_is_permanent(sms: Callable[..., TwilioSmsAdapter]) -> None:
    with pytest.raises(PermanentError):
        _send(sms(), _message(phone=""))


# -- replays: a signed request played back changes nothing ------------------------------------------
# A reply or keypress is recorded once by the provider's own id (MessageSid; CallSid with the attempt
# and digits): the second copy is a duplicate, even against a later warning's call-out.


def _second_warning(world: World) -> None:
    body = {"sender": "qingxi-qx", "identifier": "TW-2", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": ["330599100"], "headline": "青溪县气象台再次发布暴雨红色预警信号",
            "sent": world.clock.now.isoformat()}
    assert world.client.post("/api/v1/warnings", json=body, headers=world.headers).status_code == 202
    world.drive()


def test_a_replayed_sms_reply_does_not_acknowledge_a_later_warning(world: World) -> None:
    world.post_warning()
    params = _reply_params(PHONE["sun"], "收到")
    signature = world.fake.sign(f"{PUBLIC}/webhooks/twilio/sms", params)
    first = world.client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert first.status_code == 200 and "已确认" in first.text
    _second_warning(world)  # 孙镇长 is called again, for the new warning
    # bad input: the same signed request, captured and played back an hour later
    replay = world.client.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert replay.status_code == 200 and "已确认" not in replay.text
    with transaction(world.url) as session:
        states = session.scalars(select(CalloutRow.state).where(CalloutRow.person_id == "sun")
                                 .order_by(CalloutRow.id)).all()
        inbound = session.scalar(select(func.count()).select_from(InboundRow))
    assert states == ["acknowledged", "notified"]
    assert inbound == 1


def test_a_replayed_keypress_is_recorded_once(world: World) -> None:
    world.post_warning()
    world.advance(minutes=3)
    call = world.call_to("zhou")
    action = twiml(world.fake.fetch_twiml(world.client, call)).find("Gather").get("action")
    twiml(world.fake.gather(world.client, action, call, "1"))
    with transaction(world.url) as session:
        before = session.scalar(select(func.count()).select_from(EventRow))
    # bad input: the same signed keypress, played back
    twiml(world.fake.gather(world.client, action, call, "1"))
    with transaction(world.url) as session:
        after = session.scalar(select(func.count()).select_from(EventRow))
        keypresses = session.scalar(select(func.count()).select_from(InboundRow).where(InboundRow.via == "voice"))
    assert after == before and keypresses == 1
