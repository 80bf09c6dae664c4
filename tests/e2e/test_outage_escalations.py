"""A provider outage delays messages; it never fails them for good. The final escalation — the 未叫醒
list to the superiors and the duty officers, which has no next step to fall back on — is retried
until it is delivered or a person answers the call-out, and loud on /readyz meanwhile."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatcher.channels.base import ConfigurationError, TransientError
from dispatcher.channels.simulator import SimOutbox
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from tests.support.harness import Harness


def _nobody_answers_until_the_final_step(harness: Harness) -> None:
    harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.advance(minutes=3)
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "voice", "reminder")
    harness.advance(minutes=3)
    harness.expect("li", "sms", "to_deputy")  # 孙's deputy
    harness.expect("wu", "sms", "to_deputy")  # 周's (郑 has none)
    harness.advance(minutes=4)
    harness.expect("zhao", "voice", "to_superior")  # 孙's superior
    harness.expect("sun", "voice", "to_superior")  # 周's and 郑's
    harness.expect("sun", "voice", "to_superior")


def _unreached_list(url: str) -> list[tuple[str, str, int]]:
    with transaction(url) as session:
        return [(a.recipient_id, a.status, a.tries) for a in session.scalars(
            select(AttemptRow).where(AttemptRow.purpose == "unreached").order_by(AttemptRow.id))]


def test_the_final_escalation_waits_out_an_outage_and_is_delivered(harness: Harness, engine: Engine,
                                                                   outbox: SimOutbox) -> None:
    _nobody_answers_until_the_final_step(harness)
    engine.adapter(Channel.SMS).fail_next(1000, TransientError("provider outage"))
    harness.advance(minutes=5)  # the final step is due: every SMS of it fails
    listed = _unreached_list(harness.url)
    assert listed and all(status == "queued" for _, status, _ in listed), listed  # waiting, not failed
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["escalations"].startswith(f"{len(listed)} final escalation(s) not delivered")
    harness.advance(minutes=10)  # still down ten minutes later: still retrying
    assert all(status == "queued" for _, status, _ in _unreached_list(harness.url))
    engine.adapter(Channel.SMS)._pending.clear()  # the outage ends
    harness.advance(minutes=1)  # the circuit half-opens: one trial goes, and closes it …
    harness.advance(seconds=2)  # … and the rest follow at their next try
    for person in ("sun", "sun", "zhao", "zhao", "zhao", "qian", "qian", "qian"):  # superiors, duty leader, chief
        harness.expect(person, "sms", "unreached")
    assert {status for _, status, _ in _unreached_list(harness.url)} == {"sent"}
    assert harness.client.get("/readyz").json()["checks"]["escalations"] == "ok"


def test_an_answer_stops_the_retries_of_the_final_escalation(harness: Harness, engine: Engine) -> None:
    _nobody_answers_until_the_final_step(harness)
    engine.adapter(Channel.SMS).fail_next(1000, TransientError("provider outage"))
    harness.advance(minutes=5)
    for person in ("sun", "zhou", "zheng"):  # they answer at last: their 未叫醒 messages are not needed
        harness.reply_sms(person, "收到")
    engine.adapter(Channel.SMS)._pending.clear()
    harness.advance(minutes=1)
    harness.advance(seconds=2)
    assert {status for _, status, _ in _unreached_list(harness.url)} == {"cancelled"}
    assert harness.client.get("/readyz").json()["checks"]["escalations"] == "ok"


def test_a_configuration_error_halts_the_provider_keeps_its_messages_and_says_so(
        harness: Harness, engine: Engine, outbox: SimOutbox) -> None:
    # bad input: the SMS provider refuses our account (bad credentials, template not approved, arrears)
    engine.adapter(Channel.SMS).fail_next(1000, ConfigurationError("HTTP 401: authentication failed"))
    harness.post()
    harness.settle()
    with transaction(harness.url) as session:
        alerts = [(a.status, a.tries) for a in session.scalars(
            select(AttemptRow).where(AttemptRow.channel == "sms", AttemptRow.purpose == "alert"))]
    # One refusal halts the provider: its messages wait (none failed), nothing more is tried for now.
    assert alerts and {status for status, _ in alerts} == {"queued"}, alerts
    assert sum(tries for _, tries in alerts) == 1
    ready = harness.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["channels"] == (
        "sms halted (simulator: HTTP 401: authentication failed): fix the provider's configuration; "
        "its messages wait")
    # The official's own step has no working channel now: the voice re-call runs at once, not in 3 minutes.
    harness.advance(seconds=2)
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "voice", "reminder")
    harness.advance(seconds=30)  # still halted: no new try inside the halt's minute
    with transaction(harness.url) as session:
        assert session.scalar(select(func.sum(AttemptRow.tries)).where(AttemptRow.channel == "sms")) == 1
    engine.adapter(Channel.SMS)._pending.clear()  # someone fixed the account
    harness.advance(seconds=31)  # the halt's minute is over: a trial goes and closes the circuit …
    harness.advance(seconds=3)  # … and the waiting messages follow
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    assert harness.client.get("/readyz").json()["checks"]["channels"] == "ok"
