"""A replayed webhook changes nothing: a signed Twilio reply or keypress recorded once by the
provider's own id (MessageSid; CallSid with the attempt and digits) is a duplicate the second
time — even when it is replayed against a later warning's call-out for the same official."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, EventRow, InboundRow
from tests.integration.test_twilio import PHONE, PUBLIC, World, _reply_params, twiml, world  # noqa: F401
from tests.e2e.conftest import tiny_site  # noqa: F401 - the fixture
from tests.integration.test_twilio import fake  # noqa: F401 - the fixture


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
