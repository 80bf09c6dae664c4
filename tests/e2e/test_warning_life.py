"""A warning's whole life: one already expired when received calls nobody (and says so); one that
reaches its expires stops escalating, closes its open call-outs as expired, sends no lifting notice
and leaves the active overview."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.runtime.engine import Engine
from tests.support.harness import Harness


def test_a_warning_already_expired_when_received_calls_nobody(harness: Harness, engine: Engine) -> None:
    # bad input: July's example warning posted months later — sent and expired long ago
    now = harness.now()
    body = {"sender": "qingxi-qx", "identifier": "OLD-1", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号",
            "sent": (now - timedelta(days=140)).isoformat(), "expires": (now - timedelta(days=139)).isoformat()}
    answer = harness.client.post("/api/v1/warnings", json=body, headers=harness.headers)
    assert answer.status_code == 202
    assert answer.json()["warning_status"] == "expired" and "不叫应任何人" in answer.json()["note"]
    harness.settle()
    assert harness.states() == {}
    active = harness.client.get("/api/v1/warnings", params={"active": "true"}, headers=harness.headers).json()
    assert active["warnings"] == []


def test_a_warning_that_reaches_its_expires_stops_escalating(harness: Harness, engine: Engine) -> None:
    wid = harness.post(expires=(harness.now() + timedelta(minutes=2)).isoformat())
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.reply_sms("sun", "收到")
    harness.advance(minutes=3)  # the warning expired at 2 min: no voice reminders at 3 min, no 解除 notice
    assert harness.states() == {"sun": "acknowledged", "zhou": "expired", "zheng": "expired"}
    harness.advance(minutes=20)  # and nothing later either (the harness fails on any unexpected message)
    with transaction(harness.url) as session:
        kinds = [e.kind for e in record_repo.events(session, wid)]
    assert "expired" in kinds and "callouts_expired" in kinds
    assert harness.client.get("/api/v1/warnings", params={"active": "true"},
                              headers=harness.headers).json()["warnings"] == []
    late = harness.reply_sms("zhou", "收到")  # a late answer is recorded and changes nothing
    assert late.outcome == "expired"
    assert harness.states()["zhou"] == "expired"
