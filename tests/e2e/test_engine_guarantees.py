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
    assert kinds[:3] == ["received", "matched", "applied"]
    assert {"steps", "attempts", "acknowledged", "unreached"} <= set(kinds)
    csv = harness.client.get(f"/api/v1/warnings/{wid}/record", params={"format": "csv"}, headers=harness.headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.lstrip("\ufeff").splitlines()[0] == "seq,at,actor,kind,data,hash"
    assert len(csv.text.strip().splitlines()) == len(kinds) + 1
