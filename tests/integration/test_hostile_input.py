"""Hostile input the API fuzz test (tests/integration/test_api_fuzz.py) answered with a server
error, on SQLite and on PostgreSQL: each now gets a clear 4xx — 404 for an id that cannot exist,
422 naming the field for a value that cannot be stored, 403 for a signature that is not one — and
changes nothing. Every test says which bad input it sends; most broke only PostgreSQL (NUL in
text it cannot compare, integers past its int4), some both databases.

Requests go through TestClient with server exceptions raised, so a regression shows its traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from dispatcher.api.app import create_app
from dispatcher.channels.broadcast import sign
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.db.tables import (
    ApiKeyRow,
    AttemptRow,
    BroadcastOrderRow,
    CalloutRow,
    EventRow,
    InboundRow,
    WarningRow,
)
from dispatcher.runtime.engine import Engine
from dispatcher.services.keys import KeyInputError, create_key
from dispatcher.services.users import Role, create_user
from tests.conftest import FIXED_NOW, Clock
from tests.support.board import sign_in
from tests.support.harness import settle_engine

PASSWORD = "correct horse battery"
TWILIO_TOKEN = "hostile-twilio-auth-token"
BROADCAST_SECRET = "hostile-broadcast-secret-0123456789abcdef"
PUBLIC_URL = "http://127.0.0.1:8000"
ADMIN = {"Authorization": "Basic aG9zdGlsZS1hZG1pbjpjb3JyZWN0IGhvcnNlIGJhdHRlcnk="}  # hostile-admin
WARNING = {
    "sender": "qingxi-qx", "identifier": "HOSTILE-1", "msg_type": "alert", "hazard": "rainstorm", "level": "red",
    "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号", "sent": "2026-07-16T11:10:00+08:00",
    "expires": "2026-07-16T23:00:00+08:00",
}
HTML = {"Accept": "text/html"}


@dataclass
class World:
    """The sample county, a red rainstorm warning whose call-outs (and broadcast) went out, an
    admin signed in to the board, Twilio and the broadcast platform configured."""

    url: str
    client: TestClient
    clock: Clock
    warning: str
    callout: int
    attempt: int
    broadcast: str
    area: str
    csrf: str = ""

    def state(self) -> dict[str, Any]:
        """What a refused request must leave as it was."""
        with transaction(self.url, write=False) as session:
            count = {row.__tablename__: session.scalar(select(func.count()).select_from(row))
                     for row in (EventRow, InboundRow, ApiKeyRow)}
            return count | {
                "revoked": session.scalar(select(func.count()).select_from(ApiKeyRow)
                                          .where(ApiKeyRow.revoked_at.is_not(None))),
                "warnings": sorted(tuple(r) for r in session.execute(select(WarningRow.id, WarningRow.status))),
                "callouts": sorted(tuple(r) for r in session.execute(select(CalloutRow.id, CalloutRow.state))),
                "attempts": sorted(tuple(r) for r in session.execute(select(AttemptRow.id, AttemptRow.status))),
            }

    def sign_in(self) -> None:
        self.csrf = sign_in(self.client, "hostile-admin", PASSWORD)

    def twilio(self, path: str, form: dict[str, str], attempt: str | None = None) -> Any:
        """A POST to a Twilio webhook, signed as Twilio signs it (the URL with its query, the form)."""
        url = path + (f"?{urlencode({'attempt': attempt})}" if attempt is not None else "")
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + url, form)
        return self.client.post(url, content=urlencode(form).encode(), headers={
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})

    def receipt(self, body: bytes, timestamp: str | None = None, signature: str | bytes | None = None) -> Any:
        """A broadcast receipt, signed with the platform's secret unless ``signature`` is given."""
        timestamp = timestamp or str(int(self.clock().timestamp()))
        return self.client.post("/webhooks/broadcast/receipt", content=body, headers={
            "X-Jiaoying-Timestamp": timestamp.encode(),
            "X-Jiaoying-Signature": signature or sign(BROADCAST_SECRET, timestamp, body),
            "Content-Type": "application/json"})


@pytest.fixture
def world(database_url: str, site_loaded: str, clock: Clock) -> Iterator[World]:
    settings = Settings(database_url=database_url, public_url=PUBLIC_URL, twilio_auth_token=TWILIO_TOKEN,
                        broadcast_secret=BROADCAST_SECRET)
    with transaction(site_loaded) as session:
        _, key = create_key(session, "qingxi-qx", FIXED_NOW)
        create_user(session, "hostile-admin", Role.ADMIN, PASSWORD, FIXED_NOW)
    with TestClient(create_app(settings, clock=clock)) as client:
        posted = client.post("/api/v1/warnings", json=WARNING, headers={"Authorization": f"Bearer {key}"})
        assert posted.status_code == 202, posted.text
        engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="hostile")
        try:
            settle_engine(engine)
        finally:
            engine.close()
        with transaction(database_url, write=False) as session:
            callout = session.scalars(select(CalloutRow.id).where(CalloutRow.state == "notified")
                                      .order_by(CalloutRow.id)).first()
            attempt = session.scalars(select(AttemptRow.id).order_by(AttemptRow.id)).first()
            order = session.scalars(select(BroadcastOrderRow)).first()
        assert callout is not None and attempt is not None and order is not None
        world = World(database_url, client, clock, posted.json()["id"], callout, attempt, order.id, order.areas[0])
        world.sign_in()
        yield world


def fields_of(response: Any) -> list[str]:
    return [p["field"] for p in response.json().get("errors", [])]


# -- 1. a warning id holding NUL: the API and the board ------------------------------------------------------


def test_a_warning_id_holding_nul_or_too_long_is_not_found_in_the_api(world: World) -> None:
    """Bad input: /api/v1/warnings/%00 (and an id with a NUL inside, or of 5,000 characters) — read,
    its record, cancelled. PostgreSQL could not even compare the NUL."""
    before = world.state()
    for warning_id in ("%00", f"{world.warning}%00", "W" * 5000):
        for method, path in (("GET", ""), ("GET", "/record"), ("GET", "/record?format=csv"), ("POST", "/cancel")):
            response = world.client.request(method, f"/api/v1/warnings/{warning_id}{path}", headers=ADMIN)
            assert response.status_code == 404, (method, warning_id[:20], path, response.text[:300])
            assert response.json()["error"].startswith("no warning")
    assert world.state() == before


def test_a_warning_id_holding_nul_is_not_found_on_the_board(world: World) -> None:
    """Bad input: /board/warnings/%00 — its board, record, printable page and CSV export, and its
    cancellation by an admin with a valid CSRF token, confirmed."""
    before = world.state()
    for path in ("", "/record", "/print", "/export.csv", "/export.json"):
        page = world.client.get(f"/board/warnings/%00{path}", headers=HTML)
        assert page.status_code == 404, (path, page.text[:300])
        assert "未找到" in page.text
    cancel = world.client.post("/board/warnings/%00/cancel", data={"csrf": world.csrf, "confirm": "yes"},
                               follow_redirects=False)
    assert cancel.status_code == 404 and "未找到" in cancel.text and "no warning" in cancel.text
    assert world.state() == before


# -- 2. an attempt ref no attempt can have, on signed Twilio webhooks ----------------------------------------

IMPOSSIBLE_ATTEMPTS = [str(2**31), "9" * 5000, "²", "١٢", "\x00", "1\x00"]


@pytest.mark.parametrize("attempt", IMPOSSIBLE_ATTEMPTS, ids=["int4+1", "5000-nines", "superscript-two",
                                                            "arabic-indic-12", "nul", "one-nul"])
def test_an_attempt_ref_no_attempt_can_have_is_an_unknown_attempt(world: World, attempt: str) -> None:
    """Bad input: ?attempt=2147483648 (past int4), 5,000 nines or ² (isdigit() but not int()), NUL —
    on a signed status callback, voice script request and keypress. And ١٢ (Arabic-Indic 12): int()
    took it for attempt 12, whose call was then read out."""
    before = world.state()
    status = world.twilio("/webhooks/twilio/status", {"MessageSid": "SM" + "9" * 32, "MessageStatus": "failed"},
                          attempt)
    assert status.status_code == 200 and status.text.startswith("<?xml"), status.text[:300]
    for path in ("/webhooks/twilio/voice", "/webhooks/twilio/voice/gather"):
        voice = world.twilio(path, {"CallSid": "CA" + "9" * 32, "Digits": "1"}, attempt)
        assert voice.status_code == 200 and "本次通知已失效" in voice.text, (path, voice.text[:300])
    assert world.state() == before


# -- 3. NUL in the fields of a signed Twilio form ------------------------------------------------------------


@pytest.mark.parametrize(("path", "form", "attempt", "field"), [
    ("/webhooks/twilio/sms", {"From": "+86\x00138", "Body": "1", "MessageSid": "SM" + "1" * 32}, None, "From"),
    ("/webhooks/twilio/sms", {"From": "+8613800000003", "Body": "收\x00到"}, None, "Body"),
    ("/webhooks/twilio/status", {"MessageSid": "SM\x00", "MessageStatus": "delivered"}, None, "MessageSid"),
    ("/webhooks/twilio/status", {"CallSid": "CA\x00", "CallStatus": "no-answer"}, "attempt", "CallSid"),
    ("/webhooks/twilio/voice/gather", {"CallSid": "CA" + "2" * 32, "Digits": "1\x00"}, "attempt", "Digits"),
    ("/webhooks/twilio/sms", {"From": "+86" + "1" * 5000, "Body": "1"}, None, "From"),
], ids=["sms-from-nul", "sms-body-nul", "status-sid-nul", "status-attempt-callsid-nul", "gather-digits-nul",
        "sms-from-5000-digits"])
def test_a_signed_twilio_form_holding_nul_is_refused_and_stores_nothing(
        world: World, path: str, form: dict[str, str], attempt: str | None, field: str) -> None:
    """Bad input: a correctly signed Twilio form with NUL in From, Body, MessageSid, CallSid (with a
    real ?attempt=) or Digits, or a From longer than any phone number: refused 422 naming the field."""
    before = world.state()
    response = world.twilio(path, form, str(world.attempt) if attempt else None)
    assert response.status_code == 422, response.text[:300]
    assert fields_of(response) == [field]
    assert world.state() == before


# -- 4. a broadcast receipt's timestamp of 400 digits, a signature that is not ASCII -------------------------


def test_a_receipt_timestamp_that_is_not_unix_seconds_is_refused_before_the_signature(world: World) -> None:
    """Bad input: X-Jiaoying-Timestamp of 400 digits (OverflowError comparing it with now), of 13
    digits, of full-width digits; an X-Jiaoying-Signature holding non-ASCII characters. Each 403."""
    body = json.dumps({"id": world.broadcast, "area": world.area, "state": "playing",
                       "at": FIXED_NOW.isoformat()}).encode()
    before = world.state()
    for timestamp in ("9" * 400, "1" * 13, "１２３"):
        refused = world.receipt(body, timestamp)
        assert refused.status_code == 403 and "unix seconds" in refused.json()["error"], refused.text[:300]
    forged = world.receipt(body, signature="\u00e9".encode("latin-1") * 64)  # read back as "é" * 64
    assert forged.status_code == 403 and "does not match" in forged.json()["error"], forged.text[:300]
    assert world.state() == before


# -- 5. a signed receipt nested 100,000 deep -----------------------------------------------------------------


def test_a_signed_receipt_nested_too_deeply_is_unreadable(world: World) -> None:
    """Bad input: a correctly signed receipt body of 60,000 "[" (within the body limit), of 5,000
    nested arrays and of 5,000 nested objects: Python's JSON reader gives up with RecursionError. 422."""
    before = world.state()
    for body in (b"[" * 60_000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000):
        response = world.receipt(body)
        assert response.status_code == 422, response.text[:300]
        assert response.json()["error"].startswith("unreadable receipt")
    assert world.state() == before


# -- 6. a signed receipt at the first instant of the calendar, or with NUL in its id -------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"at": "0001-01-01T00:00:00+14:00"}, "at"),
    ({"id": "bc-\x00"}, "id"),
    ({"detail": "播放\x00完毕"}, "detail"),
], ids=["at-year-1-plus-14", "id-nul", "detail-nul"])
def test_a_signed_receipt_with_a_time_or_text_that_cannot_be_stored_is_refused(
        world: World, change: dict[str, str], field: str) -> None:
    """Bad input: a correctly signed receipt for a real order and area but "at" 0001-01-01T00:00:00+14:00
    (no UTC form: OverflowError), or "id" (or "detail") holding NUL. 422 naming the field."""
    receipt = {"id": world.broadcast, "area": world.area, "state": "completed", "at": FIXED_NOW.isoformat()}
    before = world.state()
    response = world.receipt(json.dumps(receipt | change).encode())
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"].startswith(f"{field}:")
    assert world.state() == before
    # the same receipt without the bad value is recorded
    assert world.receipt(json.dumps(receipt).encode()).json()["outcome"] == "recorded"


# -- 7. a static asset name holding NUL ----------------------------------------------------------------------


def test_a_static_name_holding_nul_or_too_long_is_not_found(settings: Settings) -> None:
    """Bad input: /static/%00 ("embedded null byte" from the file system), /static/board.css%00,
    and a name of 5,000 characters ending .css ("File name too long")."""
    with TestClient(create_app(settings)) as client:
        for name in ("%00", "board.css%00", "x" * 5000 + ".css", "..%2Fconfig.py", ".hidden.css"):
            response = client.get(f"/static/{name}")
            assert response.status_code == 404, (name[:20], response.text[:300])
        assert client.get("/static/board.css").status_code == 200


# -- 8. a CSRF token that is not ASCII -----------------------------------------------------------------------


def test_a_csrf_token_that_is_not_ascii_is_a_wrong_token(world: World) -> None:
    """Bad input: csrf=😀 on board POSTs (compare_digest raised TypeError on a non-ASCII str):
    refused as any wrong token, 403."""
    before = world.state()
    for path, form in ((f"/board/callouts/{world.callout}/recall", {}),
                       (f"/board/callouts/{world.callout}/ack", {"note": "电话确认"}),
                       (f"/board/warnings/{world.warning}/cancel", {"confirm": "yes"}),
                       ("/board/keys", {"agency": "rogue"}), ("/board/keys/k_00000000/revoke", {"confirm": "yes"})):
        response = world.client.post(path, data=form | {"csrf": "😀"}, follow_redirects=False)
        assert response.status_code == 403 and "请求无效" in response.text, (path, response.text[:300])
    logout = world.client.post("/board/logout", data={"csrf": "😀"}, follow_redirects=False)
    assert logout.status_code == 403
    world.client.cookies.clear()
    world.client.get("/board/login")
    login = world.client.post("/board/login", data={"name": "hostile-admin", "password": PASSWORD, "csrf": "😀"},
                              follow_redirects=False)
    assert login.status_code == 403 and "请求无效" in login.text
    assert world.state() == before


# -- 9. an agency key for an agency that cannot be stored ----------------------------------------------------


@pytest.mark.parametrize(("form", "field", "en"), [
    ({"agency": "a" * 200}, "agency", "Agency: must be at most 128 characters (it has 200)"),
    ({"agency": "a\x00b"}, "agency", "Agency: must not contain NUL characters"),
    ({"agency": "qingxi-sl", "senders": "qingxi-sl, s\x00"}, "senders", "Sender ids: must not contain NUL"),
    ({"agency": "qingxi-sl", "senders": "s" * 129}, "senders", "Sender ids: must be at most 128 characters"),
], ids=["agency-200", "agency-nul", "sender-nul", "sender-129"])
def test_a_key_for_an_agency_that_cannot_be_stored_is_refused(
        world: World, form: dict[str, str], field: str, en: str) -> None:
    """Bad input: POST /board/keys (admin, valid CSRF) with an agency of 200 characters (varchar(128)
    on PostgreSQL) or "a\\x00b", or such a sender id; and the same given to create_key (which
    ``jiaoying keys create`` calls). 422 with the keys page saying why, in the board's language."""
    before = world.state()
    zh = world.client.post("/board/keys", data=form | {"csrf": world.csrf})
    assert zh.status_code == 422 and ("不能包含空字符" in zh.text or "最多" in zh.text), zh.text[:300]
    en_page = world.client.post("/board/keys?lang=en", data=form | {"csrf": world.csrf})
    assert en_page.status_code == 422 and en in en_page.text, en_page.text[:300]
    senders = [s.strip() for s in form.get("senders", "").split(",") if s.strip()] or None
    with pytest.raises(KeyInputError, match=f"^{field}: ") as refused, transaction(world.url) as session:
        create_key(session, form["agency"], FIXED_NOW, None, senders)
    assert isinstance(refused.value, ValueError) and refused.value.field == field
    assert world.state() == before


# -- 10. board actions on a call-out id past the integers, a note holding NUL --------------------------------


def test_board_actions_on_an_impossible_callout_or_with_a_nul_note_are_refused(world: World) -> None:
    """Bad input: /board/callouts/2147483648/ack (past PostgreSQL's int4),
    /board/callouts/9223372036854775808/recall (past SQLite's integer), and an acknowledgement of a
    real, open call-out with the note "a\\x00b". 404 and 422, each the board's refusal page."""
    before = world.state()
    for callout, action in ((2**31, "ack"), (2**31, "recall"), (2**63, "ack"), (2**63, "recall"), (0, "ack")):
        response = world.client.post(f"/board/callouts/{callout}/{action}",
                                     data={"csrf": world.csrf, "note": "电话确认"}, follow_redirects=False)
        assert response.status_code == 404, (callout, action, response.text[:300])
        assert "未找到" in response.text and f"no call-out {callout}" in response.text
    nul = world.client.post(f"/board/callouts/{world.callout}/ack", data={"csrf": world.csrf, "note": "a\x00b"},
                            follow_redirects=False)
    assert nul.status_code == 422 and "说明（note）：不能包含空字符" in nul.text, nul.text[:300]
    en = world.client.post(f"/board/callouts/{world.callout}/ack?lang=en",
                           data={"csrf": world.csrf, "note": "a\x00b"}, follow_redirects=False)
    assert en.status_code == 422 and "note: must not contain NUL characters" in en.text, en.text[:300]
    assert world.state() == before


# -- 11. revoking a key whose id holds NUL -------------------------------------------------------------------


def test_revoking_a_key_id_holding_nul_is_not_found(world: World) -> None:
    """Bad input: POST /board/keys/%00/revoke (and k_%00, and an id of 5,000 characters), admin,
    valid CSRF, confirmed: 404, the board's refusal page; no key is revoked."""
    before = world.state()
    for key_id in ("%00", "k_%00", "k" * 5000):
        response = world.client.post(f"/board/keys/{key_id}/revoke", data={"csrf": world.csrf, "confirm": "yes"},
                                     follow_redirects=False)
        assert response.status_code == 404 and "没有可吊销的密钥" in response.text, (key_id[:20], response.text[:300])
    assert world.state() == before
