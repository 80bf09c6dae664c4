"""Guarantees of SPEC 6 on the embedded engine: red before orange when work is queued, a stalled
worker visible on /readyz, the record's hash chain intact after a whole escalation."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.channels.simulator import SimOutbox
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.runtime.engine import Engine
from tests.support.harness import Harness


def test_red_attempts_go_before_orange_ones_when_work_is_queued(harness: Harness, engine: Engine,
                                                               outbox: SimOutbox) -> None:
    # Queue an orange warning's attempts and then a red one's without letting any worker send…
    harness.post(identifier="O-1", level="orange", areas=["330599100"], hazard="rainstorm")
    engine.tick()
    harness.post(identifier="T-1", level="red", hazard="rainstorm", areas=["330599100202"])
    engine.tick()
    # … then one worker drains the backlog a message at a time.
    while engine.send_batch(limit=1):
        pass
    order = [(m.message.level.value, m.message.to.person_id) for m in outbox.messages()]
    assert order == [("red", "zheng"), ("orange", "sun")]
    harness.expect("zheng", "sms", "alert")
    harness.expect("sun", "sms", "alert")
    harness.reply_sms("zheng", "1")
    harness.reply_sms("sun", "1")


def test_a_worker_that_consumes_nothing_shows_on_readyz(harness: Harness, engine: Engine) -> None:
    harness.post()
    engine.tick()  # the scheduler queues step 0 … but no worker takes it
    assert harness.client.get("/readyz").status_code == 200
    harness._move(timedelta(seconds=75))
    engine.tick()
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["workers"] == "stalled: 3 attempts queued, the oldest waiting 75 s"
    engine.drain()  # a worker comes back: everything due goes out, once
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
        harness.reply_sms(person, "收到")
    assert harness.client.get("/readyz").json()["checks"]["workers"] == "ok"


def test_the_record_of_a_whole_escalation_verifies(harness: Harness) -> None:
    wid = harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.reply_sms("sun", "收到")
    harness.advance(minutes=3)
    harness.expect("zhou", "voice", "reminder")
    harness.expect("zheng", "voice", "reminder")
    harness.advance(minutes=13)
    harness.expect("wu", "sms", "to_deputy")
    harness.expect("sun", "voice", "to_superior")
    harness.expect("sun", "voice", "to_superior")
    for person in ("sun", "zhao", "qian"):
        harness.expect(person, "sms", "unreached")
        harness.expect(person, "sms", "unreached")
    with transaction(harness.url) as session:
        assert record_repo.verify(session, wid) == []
        kinds = [e.kind for e in record_repo.events(session, wid)]
    # step 0 runs in the transaction that starts the call-outs: its steps event comes before applied
    assert kinds[:4] == ["received", "matched", "steps", "applied"]
    assert {"attempts", "acknowledged", "unreached"} <= set(kinds)
    csv = harness.client.get(f"/api/v1/warnings/{wid}/record", params={"format": "csv"}, headers=harness.headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.lstrip("\ufeff").splitlines()[0] == "seq,at,actor,kind,data,hash"
    assert len(csv.text.strip().splitlines()) == len(kinds) + 1


def test_an_im_message_from_the_engine_carries_a_link_that_confirms(database_url: str, clock, auth) -> None:
    """The sample county's red plan sends SMS and IM at step 0: the IM message's signed link opens
    the confirm page (which acknowledges nothing) and its button acknowledges the call-out."""
    import re

    from fastapi.testclient import TestClient

    from dispatcher.api.app import create_app
    from dispatcher.channels.registry import build_adapters
    from dispatcher.config import Settings
    from dispatcher.db.tables import CalloutRow
    from dispatcher.services.site import load_site_files
    from tests.conftest import SAMPLE_SITE

    with transaction(database_url) as session:
        load_site_files(session, SAMPLE_SITE, clock())
    settings = Settings(database_url=database_url, public_url="http://testserver")
    box = SimOutbox()
    engine = Engine(settings, clock, lambda: build_adapters(settings, box))
    try:
        with TestClient(create_app(settings, clock=clock)) as client:
            posted = client.post("/api/v1/warnings", headers=auth, json={
                "sender": "qingxi-qx", "identifier": "L-1", "hazard": "rainstorm", "level": "red",
                "areas": ["330599100"], "headline": "暴雨红色预警", "sent": clock().isoformat()})
            assert posted.status_code == 202
            engine.tick()
            engine.drain()
            im = next(m.message for m in box.messages() if m.message.channel.value == "im")
            assert im.link and im.link in im.text
            path = im.link.removeprefix("http://testserver")
            page = client.get(path)
            assert page.status_code == 200 and "暴雨红色预警" in page.text
            with transaction(database_url) as session:
                callout = session.get(CalloutRow, int(im.key.split(":")[0]))
                assert callout.state == "notified"  # the GET (a link preview) acknowledged nothing
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            done = client.post(path, data={"csrf": csrf})
            assert done.status_code == 200
            with transaction(database_url) as session:
                callout = session.get(CalloutRow, int(im.key.split(":")[0]))
                assert (callout.state, callout.ack_via, callout.acknowledged_by) == (
                    "acknowledged", "link", im.to.person_id)
    finally:
        engine.close()
