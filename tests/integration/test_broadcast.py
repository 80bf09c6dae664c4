"""The rural broadcast contract: a signed order to a loopback platform (which checks the signature),
and signed playback receipts recorded per area on the warning's record; forged, old, unsigned or
unconfigured receipts are refused with 403 and change nothing. With no platform configured the
engine hands orders to the BroadcastSimulator; the spoken text comes from templates/broadcast/."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.channels.base import ConfigurationError, TransientError
from dispatcher.channels.broadcast import (
    BroadcastAdapter,
    BroadcastOrder,
    BroadcastSimulator,
    broadcast_adapter,
    villages,
)
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings, project_root
from dispatcher.db.record_repo import events, verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import BroadcastOrderRow, RecordHeadRow, WarningRow
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.rendering import MessageContext, render_broadcast
from dispatcher.runtime.engine import Engine
from dispatcher.services.broadcasts import order_broadcast, record_sent
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, FIXTURES, SAMPLE_SITE, Clock
from tests.fakes import im_servers as fakes
from tests.fakes.im_servers import FakeIm

VILLAGES = ["330599100201", "330599100202"]
RECEIPT = "/webhooks/broadcast/receipt"


@pytest.fixture
def fake_platform() -> Iterator[FakeIm]:
    fake = FakeIm().start()
    yield fake
    fake.stop()


@dataclass
class World:
    url: str
    settings: Settings
    client: TestClient
    clock: Clock
    warning: str
    auth: dict[str, str]


@pytest.fixture
def world(database_url: str, clock: Clock, auth: dict[str, str], fake_platform: FakeIm) -> Iterator[World]:
    with transaction(database_url) as session:
        load_site_files(session, FIXTURES / "sites" / "tiny", FIXED_NOW)
    settings = Settings(database_url=database_url, secret_key="k" * 40, public_url="http://testserver",
                        broadcast_url=fake_platform.broadcast_url, broadcast_secret=fakes.BROADCAST_SECRET)
    with TestClient(create_app(settings, clock=clock)) as client:
        response = client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "BC-1", "msg_type": "alert", "hazard": "rainstorm",
            "level": "red", "areas": ["330599100"], "headline": "小溪县气象台发布暴雨红色预警信号",
            "instruction": "请立即转移危险区人员。", "sent": clock().isoformat()})
        assert response.status_code == 202, response.text
        yield World(database_url, settings, client, clock, response.json()["id"], auth)


def send(settings: Settings, order: BroadcastOrder) -> str:
    """One order through a BroadcastAdapter, its client closed in the same event loop."""
    async def go() -> str:
        adapter = BroadcastAdapter(settings)
        try:
            return await adapter.send(order)
        finally:
            await adapter.aclose()

    return asyncio.run(go())


def ordered(world: World) -> BroadcastOrder:
    with transaction(world.url) as session:
        targets = villages(current_site(session).areas, session.get(WarningRow, world.warning).areas)
        assert targets == VILLAGES  # the warning names the town; the loudspeakers are in its villages
        return order_broadcast(session, world.clock(), world.warning, targets, repeat=3)


def signed(secret: str, ts: int, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    sig = hmac.new(secret.encode(), str(ts).encode() + b"." + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Jiaoying-Timestamp": str(ts), "X-Jiaoying-Signature": sig}


def receipt(order: BroadcastOrder, area: str = VILLAGES[0], state: str = "completed") -> dict[str, Any]:
    return {"id": order.id, "area": area, "state": state, "at": "2026-07-16T11:14:00+08:00",
            "detail": "播发完成，覆盖 12 个终端"}


def record(world: World) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    with transaction(world.url) as session:
        count = session.get(RecordHeadRow, world.warning).count
        return count, [(e.kind, e.data) for e in events(session, world.warning)]


def post_receipt(world: World, body: dict[str, Any], *, secret: str = fakes.BROADCAST_SECRET,
                 ts: int | None = None, drop: tuple[str, ...] = ()) -> Any:
    raw, headers = signed(secret, int(world.clock().timestamp()) if ts is None else ts, body)
    for name in drop:
        headers.pop(name)
    return world.client.post(RECEIPT, content=raw, headers=headers)


def test_broadcast_order_is_signed_received_by_the_platform_and_recorded(world: World,
                                                                        fake_platform: FakeIm) -> None:
    order = ordered(world)
    assert order.id == f"bc-{world.warning}" and order.repeat == 3 and not order.drill
    assert "暴雨红色预警" in order.text and "请立即转移危险区人员" in order.text
    platform_id = send(world.settings, order)
    with transaction(world.url) as session:
        record_sent(session, world.clock(), order, platform_id)
    [got] = fake_platform.of("broadcast")  # the platform checked X-Jiaoying-Signature before accepting
    assert platform_id == "EBM-1"
    assert {k: got.body[k] for k in ("id", "areas", "level", "repeat", "drill")} == {
        "id": order.id, "areas": VILLAGES, "level": "red", "repeat": 3, "drill": False}
    assert got.body["text"] == order.text and got.body["receipt_url"] == "http://testserver" + RECEIPT
    assert got.headers["idempotency-key"] == order.id
    kinds = [k for k, _ in record(world)[1]]
    assert kinds.count("broadcast_ordered") == 1 and kinds[-1] == "broadcast_sent"
    assert ordered(world) == order and [k for k, _ in record(world)[1]].count("broadcast_ordered") == 1


def test_broadcast_with_a_wrong_secret_is_refused_by_the_platform_as_a_configuration_error(
        world: World, fake_platform: FakeIm) -> None:
    order = ordered(world)
    wrong = world.settings.model_copy(update={"broadcast_secret": "not-the-platform-secret"})
    with pytest.raises(ConfigurationError):
        send(wrong, order)
    assert fake_platform.of("broadcast") == []


def test_signed_receipt_is_recorded_per_area_on_the_warning_record(world: World) -> None:
    order = ordered(world)
    for area, state in ((VILLAGES[0], "playing"), (VILLAGES[0], "completed"), (VILLAGES[1], "failed")):
        answer = post_receipt(world, receipt(order, area, state))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"id": order.id, "area": area, "outcome": "recorded"}
    receipts = [d for k, d in record(world)[1] if k == "broadcast_receipt"]
    assert [(r["area"], r["state"]) for r in receipts] == [
        (VILLAGES[0], "playing"), (VILLAGES[0], "completed"), (VILLAGES[1], "failed")]
    assert receipts[0]["at"] == "2026-07-16T03:14:00+00:00" and receipts[0]["detail"].startswith("播发完成")
    with transaction(world.url) as session:
        assert verify(session, world.warning) == []  # the hash chain still holds


def test_duplicate_receipt_is_acknowledged_and_changes_nothing(world: World) -> None:
    order = ordered(world)
    assert post_receipt(world, receipt(order)).json()["outcome"] == "recorded"
    before = record(world)
    again = post_receipt(world, receipt(order))
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert record(world) == before


def test_forged_receipt_is_refused_403_and_changes_nothing(world: World) -> None:
    order = ordered(world)
    before = record(world)
    assert post_receipt(world, receipt(order), secret="guessed").status_code == 403
    raw, headers = signed(fakes.BROADCAST_SECRET, int(world.clock().timestamp()), receipt(order))
    tampered = raw.replace(b"completed", b"failed\x20\x20\x20")  # body changed after signing
    assert world.client.post(RECEIPT, content=tampered, headers=headers).status_code == 403
    assert record(world) == before


def test_old_receipt_is_refused_403_and_changes_nothing(world: World) -> None:
    order = ordered(world)
    before = record(world)
    old = int((world.clock() - timedelta(minutes=5, seconds=1)).timestamp())
    assert post_receipt(world, receipt(order), ts=old).status_code == 403
    future = int((world.clock() + timedelta(minutes=6)).timestamp())
    assert post_receipt(world, receipt(order), ts=future).status_code == 403
    assert record(world) == before


def test_unsigned_receipt_is_refused_403_and_changes_nothing(world: World) -> None:
    order = ordered(world)
    before = record(world)
    assert post_receipt(world, receipt(order), drop=("X-Jiaoying-Signature",)).status_code == 403
    assert post_receipt(world, receipt(order), drop=("X-Jiaoying-Timestamp",)).status_code == 403
    assert world.client.post(RECEIPT, json=receipt(order)).status_code == 403
    assert record(world) == before


def test_receipt_is_refused_403_when_no_secret_is_configured(world: World, clock: Clock) -> None:
    order = ordered(world)
    before = record(world)
    open_settings = world.settings.model_copy(update={"broadcast_secret": ""})
    with TestClient(create_app(open_settings, clock=clock)) as client:
        for secret in ("", fakes.BROADCAST_SECRET):  # never fail open, whatever the caller signs with
            raw, headers = signed(secret, int(clock().timestamp()), receipt(order))
            assert client.post(RECEIPT, content=raw, headers=headers).status_code == 403
    assert record(world) == before


def test_receipt_for_an_id_never_issued_is_404_and_for_an_area_outside_the_order_422(world: World) -> None:
    order = ordered(world)
    before = record(world)
    assert post_receipt(world, {**receipt(order), "id": "bc-W20260716-NOPE00"}).status_code == 404
    assert post_receipt(world, {**receipt(order), "id": "something-else"}).status_code == 404
    assert post_receipt(world, receipt(order, area="330599100299")).status_code == 422
    assert post_receipt(world, {**receipt(order), "state": "exploded"}).status_code == 422
    assert record(world) == before


def test_the_engine_orders_the_broadcast_a_plan_asks_for_and_retries_until_the_platform_takes_it(
        database_url: str, clock: Clock, auth: dict[str, str], fake_platform: FakeIm) -> None:
    with transaction(database_url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)  # its red rainstorm plan: broadcast, repeat 3
        town_villages = villages(current_site(session).areas, ["330599100"])
    settings = Settings(database_url=database_url, secret_key="k" * 40, public_url="http://testserver",
                        broadcast_url=fake_platform.broadcast_url, broadcast_secret=fakes.BROADCAST_SECRET)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()))
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            wid = client.post("/api/v1/warnings", headers=auth, json={
                "sender": "qingxi-qx", "identifier": "BC-E", "hazard": "rainstorm", "level": "red",
                "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
                "sent": clock().isoformat()}).json()["id"]
        fake_platform.fail_next("broadcast", {"error": "busy"}, status=503)
        engine.tick()  # the platform answers 503: the order waits for a later pass
        with transaction(database_url) as session:
            row = session.get(BroadcastOrderRow, f"bc-{wid}")
            assert (row.state, row.tries, row.areas, row.repeat) == ("pending", 1, town_villages, 3)
        engine.tick()  # not due yet: nothing is sent again
        assert fake_platform.of("broadcast") == []  # the fake keeps only the orders it accepted
        clock.now += timedelta(seconds=15)
        engine.tick()
        engine.tick()
        sent = fake_platform.of("broadcast")
        assert len(sent) == 1 and sent[0].body["areas"] == town_villages and sent[0].body["repeat"] == 3
        with transaction(database_url) as session:
            assert session.get(BroadcastOrderRow, f"bc-{wid}").state == "sent"
            kinds = [e.kind for e in events(session, wid)]
        assert kinds.count("broadcast_ordered") == 1 and kinds.count("broadcast_failed") == 1
        assert kinds.count("broadcast_sent") == 1
    finally:
        engine.close()


# -- the adapter the engine uses: the platform, else the simulator ---------------------------------------


def test_the_factory_picks_the_platform_only_when_its_url_is_set(fake_platform: FakeIm) -> None:
    configured = Settings(broadcast_url=fake_platform.broadcast_url, broadcast_secret=fakes.BROADCAST_SECRET)
    assert isinstance(broadcast_adapter(configured), BroadcastAdapter)
    assert broadcast_adapter(configured).provider == "broadcast-platform"
    assert isinstance(broadcast_adapter(Settings(broadcast_url="")), BroadcastSimulator)


def simulated_engine(database_url: str, clock: Clock, auth: dict[str, str], identifier: str) -> tuple[Engine, str]:
    """An engine with no broadcast platform configured, and a red rainstorm warning for the sample
    county (whose plan asks for a broadcast, repeat 3) stored but not yet applied."""
    with transaction(database_url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    settings = Settings(database_url=database_url, secret_key="k" * 40, public_url="http://testserver")
    assert not settings.broadcast_url
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()))
    with TestClient(create_app(settings, clock=clock)) as client:
        wid = client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": identifier, "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
            "sent": clock().isoformat()}).json()["id"]
    return engine, wid


def test_with_no_platform_configured_the_simulator_takes_the_order_and_it_is_recorded_as_sent(
        database_url: str, clock: Clock, auth: dict[str, str], fake_platform: FakeIm) -> None:
    engine, wid = simulated_engine(database_url, clock, auth, "BC-S")
    try:
        simulator = engine.broadcaster
        assert isinstance(simulator, BroadcastSimulator)
        engine.tick()
        assert [o.id for o in simulator.sent()] == [f"bc-{wid}"] and simulator.sent()[0].repeat == 3
        with transaction(database_url) as session:
            row = session.get(BroadcastOrderRow, f"bc-{wid}")
            assert (row.state, row.platform_id, row.tries) == ("sent", f"sim-bc-{wid}", 1)
            sent = [e.data for e in events(session, wid) if e.kind == "broadcast_sent"]
        assert sent == [{"id": f"bc-{wid}", "platform_id": f"sim-bc-{wid}", "error": None, "retry": False}]
        assert fake_platform.of("broadcast") == []  # nothing left the process
    finally:
        engine.close()


def test_a_simulated_platform_outage_is_transient_the_order_is_retried_later_and_then_sent(
        database_url: str, clock: Clock, auth: dict[str, str]) -> None:
    """Bad input: the simulator told to fail the next send (``fail_next``, a TransientError)."""
    engine, wid = simulated_engine(database_url, clock, auth, "BC-T")
    try:
        simulator = engine.broadcaster
        assert isinstance(simulator, BroadcastSimulator)
        simulator.fail_next(1, TransientError("loudspeaker network down"))
        engine.tick()  # the simulator refuses: the order waits for a later pass
        with transaction(database_url) as session:
            row = session.get(BroadcastOrderRow, f"bc-{wid}")
            assert (row.state, row.tries, row.error) == ("pending", 1, "loudspeaker network down")
            failed = [e.data for e in events(session, wid) if e.kind == "broadcast_failed"]
        assert failed == [{"id": f"bc-{wid}", "platform_id": None, "retry": True,
                           "error": "TransientError: loudspeaker network down"}]
        engine.tick()  # not due yet (backoff 10 s): not handed over again
        assert simulator.sent() == []
        clock.now += timedelta(seconds=15)
        engine.tick()
        assert [o.id for o in simulator.sent()] == [f"bc-{wid}"]
        with transaction(database_url) as session:
            row = session.get(BroadcastOrderRow, f"bc-{wid}")
            assert (row.state, row.platform_id, row.tries, row.error) == ("sent", f"sim-bc-{wid}", 2, None)
            kinds = [e.kind for e in events(session, wid)]
        assert kinds.count("broadcast_ordered") == 1 and kinds.count("broadcast_failed") == 1
        assert kinds.count("broadcast_sent") == 1
    finally:
        engine.close()


# -- the spoken text: templates/broadcast/ ----------------------------------------------------------------


def drill_words(lang: str) -> tuple[str, str]:
    """What templates/broadcast/_drill.<lang>.j2 says before and after a drill's text."""
    source = (project_root() / "templates" / "broadcast" / f"_drill.{lang}.j2").read_text(encoding="utf-8")
    before, after = re.findall(r"{% if drill %}\s*(.*?)\s*{% endif %}", source, re.S)
    return before, after


def post_warning(world: World, identifier: str, **fields: Any) -> str:
    response = world.client.post("/api/v1/warnings", headers=world.auth, json={
        "sender": "qingxi-qx", "identifier": identifier, "msg_type": "alert", "hazard": "rainstorm",
        "level": "red", "areas": ["330599100"], "headline": "小溪县气象台发布暴雨红色预警信号",
        "sent": world.clock().isoformat(), **fields})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def context_of(row: WarningRow) -> MessageContext:
    return MessageContext(headline=row.headline, hazard=Hazard(row.hazard), level=Level(row.level), areas=[],
                          description=row.description, instruction=row.instruction, sent=row.sent,
                          drill=row.drill, official="", ack_code="")


def test_a_drill_broadcast_speaks_the_templates_text_inside_its_drill_words(world: World) -> None:
    wid = post_warning(world, "BC-D", drill=True, description="预计未来3小时降雨量将达100毫米以上。",
                       instruction="请立即转移危险区人员。")
    with transaction(world.url) as session:
        order = order_broadcast(session, world.clock(), wid, VILLAGES, repeat=2)
        context = context_of(session.get(WarningRow, wid))
    before, after = drill_words("zh")
    assert (before, after) == ("演练，演练。", "演练结束。")
    assert order.drill and order.text.startswith(before) and order.text.endswith(after)
    assert order.text == render_broadcast("zh", context) == (
        "演练，演练。暴雨红色预警。小溪县气象台发布暴雨红色预警信号。预计未来3小时降雨量将达100毫米以上。"
        "请立即转移危险区人员。演练结束。")
    assert render_broadcast("zh", replace(context, drill=False)) == order.text[len(before):-len(after)]


def test_a_url_in_the_instruction_is_not_spoken(world: World, fake_platform: FakeIm) -> None:
    """Bad input: an instruction carrying links (a loudspeaker cannot read out an address)."""
    wid = post_warning(world, "BC-U", instruction="请立即转移危险区人员，避险点见 https://qx.example.cn/map?id=1 或 "
                                                  "www.qx.example.cn 。")
    with transaction(world.url) as session:
        order = order_broadcast(session, world.clock(), wid, VILLAGES, repeat=1)
    assert order.text == "暴雨红色预警。小溪县气象台发布暴雨红色预警信号。请立即转移危险区人员，避险点见 或 。"
    send(world.settings, order)
    [got] = fake_platform.of("broadcast")
    assert got.body["text"] == order.text and "example" not in got.body["text"] and "://" not in got.body["text"]


def test_the_english_template_and_the_fallback_to_chinese() -> None:
    context = MessageContext(headline="Rainstorm red warning for Xiaoxi county.", hazard=Hazard.RAINSTORM,
                             level=Level.RED, areas=[], description="", instruction="Move to safety now.",
                             sent=FIXED_NOW, drill=True, official="", ack_code="")
    before, after = drill_words("en")
    assert render_broadcast("en", context) == (
        f"{before} Red rainstorm warning. Rainstorm red warning for Xiaoxi county. Move to safety now. {after}")
    assert render_broadcast("fr", context).startswith("演练，演练。暴雨红色预警。")  # no French file: Chinese
