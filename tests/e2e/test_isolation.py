"""One bad warning, or one call-out the engine cannot run, never stops the others: the failure is
kept on that warning or call-out, on its record and on /readyz, tried again a minute later, and
every other warning and step goes on in the same pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, WarningRow
from dispatcher.runtime.engine import Engine
from tests.support.harness import Harness


def test_a_warning_the_engine_cannot_apply_does_not_stop_the_next_one(harness: Harness, engine: Engine) -> None:
    bad = harness.post(identifier="BAD-1")
    with transaction(harness.url) as session:  # stored by an older release, before intake bounded times
        session.execute(update(WarningRow).where(WarningRow.id == bad).values(
            sent=datetime(9999, 12, 31, 23, 0, tzinfo=UTC)))
    harness.post(identifier="GOOD-1", areas=["330599100202"])  # 郑's village: one official
    harness.expect("zheng", "sms", "alert")  # the good warning went out in the same pass
    with transaction(harness.url) as session:
        row = session.get(WarningRow, bad)
        assert row.applied_at is None and row.apply_error.startswith("OverflowError")
        failures = [e for e in record_repo.events(session, bad) if e.kind == "apply_failed"]
    assert len(failures) == 1
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["warnings"].startswith(f"1 warning(s) could not be applied ({bad}: OverflowError")
    harness.advance(seconds=61)  # tried again a minute later: still failing, said once on the record
    with transaction(harness.url) as session:
        assert [e.kind for e in record_repo.events(session, bad)].count("apply_failed") == 1
    harness.reply_sms("zheng", "1")


def test_a_call_out_whose_step_cannot_run_does_not_stop_the_others(harness: Harness, engine: Engine) -> None:
    wid = harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    with transaction(harness.url) as session:  # 周's frozen step names a channel this release lacks
        callout = session.scalars(select(CalloutRow).where(CalloutRow.person_id == "zhou")).one()
        steps = [dict(s) for s in callout.steps]
        steps[1]["channels"] = ["pigeon"]
        callout.steps = steps
    harness.advance(minutes=3)
    harness.expect("sun", "voice", "reminder")  # the others' step 1 ran in the same pass
    harness.expect("zheng", "voice", "reminder")
    with transaction(harness.url) as session:
        zhou = session.scalars(select(CalloutRow).where(CalloutRow.person_id == "zhou")).one()
        assert zhou.error.startswith("ValueError") and zhou.next_step == 1
        assert zhou.next_due == harness.now() + timedelta(seconds=60)
        assert [e.kind for e in record_repo.events(session, wid)].count("step_failed") == 1
    assert harness.client.get("/readyz").json()["checks"]["warnings"] == "1 call-out(s) could not run their step"
    for person in ("sun", "zhou", "zheng"):
        harness.reply_sms(person, "1")
    assert harness.client.get("/readyz").json()["checks"]["warnings"] == "ok"
