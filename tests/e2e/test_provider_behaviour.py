"""Provider behaviour on the embedded engine: transient failures retried, a failed call bringing the
next step forward, a down provider's circuit opening, and red going before orange when a rate
limit saturates the channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dispatcher.channels.base import PermanentError, TransientError
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.session import transaction
from dispatcher.domain.channels import Channel
from dispatcher.runtime.engine import Engine
from dispatcher.services.site import load_site_files
from tests.support.bigsite import write_big_site
from tests.support.harness import Harness


def test_a_transient_failure_is_retried_and_the_message_goes_out_once(harness: Harness, engine: Engine,
                                                                      outbox: SimOutbox) -> None:
    engine.adapter(Channel.SMS).fail_next(2, TransientError("503 from the provider"))
    harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")  # each exactly once: the harness fails on a second copy
        harness.reply_sms(person, "1")


def test_a_failed_call_lets_the_next_step_run_at_once(harness: Harness, engine: Engine) -> None:
    harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    harness.reply_sms("sun", "1")
    engine.adapter(Channel.VOICE).fail_next(2, PermanentError("the number cannot take calls"))
    harness.advance(minutes=3)  # step 1: the voice calls fail …
    harness.expect("wu", "sms", "to_deputy")  # … so 周's deputy is asked at 3 min, not 6
    harness.reply_sms("wu", "收到")
    harness.advance(minutes=7)  # 郑 has no deputy; his superior's call is still due at 10 min
    harness.expect("sun", "voice", "to_superior")
    harness.reply_sms("zheng", "1")


@pytest.fixture
def two_level_site(tmp_path: Path) -> Path:
    """The synthetic county with an orange plan too (same officials, SMS only)."""
    site = tmp_path / "big"
    write_big_site(site, 40)
    plans = yaml.safe_load((site / "plans.yaml").read_text())
    orange = {**plans["plans"][0], "id": "rain-orange", "match": {"hazards": ["rainstorm"], "levels": ["orange"]}}
    plans["plans"].append(orange)
    (site / "plans.yaml").write_text(yaml.safe_dump(plans, allow_unicode=True))
    return site


@pytest.fixture
def limited(database_url: str, two_level_site: Path, clock) -> Iterator[tuple[Engine, SimOutbox]]:
    with transaction(database_url) as session:
        load_site_files(session, two_level_site, clock())
    settings = Settings(database_url=database_url, rate_limits="sms=20/s")
    box = SimOutbox()
    eng = Engine(settings, clock, lambda: build_adapters(settings, box), name="limited")
    yield eng, box
    eng.close()


def test_a_reminder_names_the_round_it_belongs_to(database_url: str, tmp_path: Path, clock, client_for,
                                                 auth) -> None:
    """The IM reminder of the plan's second step says 第2轮叫应 — the round of the attempt itself,
    however late the queue hands it over."""
    from datetime import timedelta

    site = tmp_path / "rounds"
    write_big_site(site, 3)
    plans = yaml.safe_load((site / "plans.yaml").read_text())
    plans["plans"][0]["steps"] = [{"after": 0, "channels": ["sms"], "to": "self"},
                                  {"after": "1m", "channels": ["im"], "to": "self"}]
    (site / "plans.yaml").write_text(yaml.safe_dump(plans, allow_unicode=True))
    with transaction(database_url) as session:
        load_site_files(session, site, clock())
    settings = Settings(database_url=database_url)
    box = SimOutbox()
    engine = Engine(settings, clock, lambda: build_adapters(settings, box), name="rounds")
    try:
        assert client_for(settings).post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "ROUND", "hazard": "rainstorm", "level": "red",
            "areas": ["330599"], "headline": "暴雨红色预警", "sent": clock().isoformat()}).status_code == 202
        engine.tick()
        engine.drain()
        clock.now += timedelta(minutes=1)
        engine.tick()
        engine.drain()
    finally:
        engine.close()
    reminders = [m.message for m in box.messages() if m.message.channel is Channel.IM]
    assert reminders and all(m.purpose.value == "reminder" for m in reminders)
    assert all("第2轮叫应" in m.text for m in reminders), reminders[0].text


def test_red_goes_before_orange_when_a_rate_limit_saturates_the_channel(limited, client_for, auth) -> None:
    engine, box = limited
    client = client_for(engine.settings)
    post = {"sender": "qingxi-qx", "hazard": "rainstorm", "headline": "暴雨预警", "sent": engine.clock().isoformat()}
    assert client.post("/api/v1/warnings", headers=auth, json={
        **post, "identifier": "O", "level": "orange", "areas": ["330599100201", "330599100202", "330599100203",
                                                                 "330599100204", "330599100205"]}).status_code == 202
    engine.tick()
    engine.send_batch()  # the orange fan-out has started: 20 SMS/s, a 2-second window of slots
    assert client.post("/api/v1/warnings", headers=auth, json={
        **post, "identifier": "R", "level": "red", "areas": ["330599100208", "330599100207"]}).status_code == 202
    engine.tick()
    engine.drain(patience=10)
    sms = [m.message for m in box.messages() if m.message.channel is Channel.SMS]
    assert len(sms) == 35  # 25 orange + 10 red, each once
    first_red = next(i for i, m in enumerate(sms) if m.level.value == "red")
    # once the red attempts were queued, no orange went out until every red one had
    assert all(m.level.value == "red" for m in sms[first_red:first_red + 10])
    times = [m.at_monotonic for m in box.messages() if m.message.channel is Channel.SMS]
    # paced at 20/s: no second of the provider's log holds more than 20 (the embedded meter keeps
    # the window itself: a message late for its slot may go close to the next, never a 21st in a second)
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 20
    # … so 35 of them cannot all go within one second: the 21st waits for the first one's second
    assert times[20] - times[0] >= 1.0


def test_a_down_provider_opens_its_circuit_the_next_channel_goes_at_once_and_metrics_show_it(
        harness: Harness, engine: Engine) -> None:
    engine.adapter(Channel.SMS).fail_next(50, TransientError("connection refused"))
    harness.post()
    # every SMS fails (retried within the claim, then waiting for a later try): the plan's voice
    # step runs now, not at 3 minutes
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "voice", "reminder")
    harness.advance(seconds=3)  # the SMS are tried again and fail again: five failures in a row open the circuit
    text = harness.client.get("/metrics").text
    assert 'jiaoying_channel_circuit_open{channel="sms"} 1.0' in text
    assert 'jiaoying_channel_circuit_open{channel="voice"} 0.0' in text
    assert 'jiaoying_attempts{channel="sms",status="queued"} 3.0' in text  # waiting, never failed for good
    assert 'jiaoying_callouts{state="notified"} 3.0' in text
    assert "jiaoying_heartbeat_age_seconds" in text and "jiaoying_queue_oldest_seconds" in text
    for person in ("sun", "zhou", "zheng"):
        harness.press_1(person, callout_of=person)


def test_red_gets_the_earliest_slots_even_in_the_same_claim_as_orange(limited, client_for, auth) -> None:
    engine, box = limited
    client = client_for(engine.settings)
    post = {"sender": "qingxi-qx", "hazard": "rainstorm", "headline": "暴雨预警", "sent": engine.clock().isoformat()}
    client.post("/api/v1/warnings", headers=auth, json={**post, "identifier": "O", "level": "orange",
                                                         "areas": ["330599100201", "330599100202"]})
    client.post("/api/v1/warnings", headers=auth, json={**post, "identifier": "R", "level": "red",
                                                         "areas": ["330599100208"]})
    engine.tick()  # both queued before any worker claims: one claim takes orange (lower ids) and red
    engine.drain(patience=5)
    sms = [m.message.level.value for m in box.messages() if m.message.channel is Channel.SMS]
    assert sms == ["red"] * 5 + ["orange"] * 10


def test_callee_spacing_holds_for_an_unlimited_voice_channel_and_calls_queued_together(
        tiny_site: str, clock, auth, client_for) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from dispatcher.db.queue import attempt_values, insert_attempts
    from dispatcher.db.tables import CalloutRow

    settings = Settings(database_url=tiny_site, callee_spacing_seconds=60)  # no rate limit at all
    box = SimOutbox()
    engine = Engine(settings, clock, lambda: build_adapters(settings, box))
    try:
        client = client_for(settings)
        client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "S-1", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100202"], "headline": "暴雨红色预警", "sent": clock().isoformat()})
        engine.tick()
        with transaction(tiny_site) as session:
            callout = session.scalars(select(CalloutRow)).one()
            insert_attempts(session, [attempt_values(callout, f"{callout.id}:x{i}:voice:zheng", -1, "reminder",
                                                     "voice", "zheng", clock()) for i in (1, 2)])
        engine.drain()
        calls = [m for m in box.messages() if m.message.channel is Channel.VOICE]
        assert len(calls) == 1  # two calls were queued for 郑 at once: one goes, one waits
        clock.now += timedelta(seconds=30)
        engine.drain()
        assert len([m for m in box.messages() if m.message.channel is Channel.VOICE]) == 1
        clock.now += timedelta(seconds=31)
        engine.drain()
        assert len([m for m in box.messages() if m.message.channel is Channel.VOICE]) == 2
    finally:
        engine.close()


def test_per_number_limits_hold_messages_over_a_window_until_it_frees(tiny_site: str, clock, auth,
                                                                        client_for) -> None:
    """JIAOYING_NUMBER_LIMITS=sms=2/h: a third SMS to the same person within the hour waits (the
    provider would refuse it: Tencent's LimitExceeded.PhoneNumberOneHourLimit) and goes once the
    hour has moved on; other people are not held."""
    from datetime import timedelta

    from sqlalchemy import select

    from dispatcher.db.queue import attempt_values, insert_attempts
    from dispatcher.db.tables import CalloutRow

    settings = Settings(database_url=tiny_site, number_limits="sms=2/h")
    box = SimOutbox()
    engine = Engine(settings, clock, lambda: build_adapters(settings, box))

    def sms_to(person: str) -> int:
        return len([m for m in box.messages() if m.message.channel is Channel.SMS and m.message.to.person_id == person])

    try:
        client = client_for(settings)
        client.post("/api/v1/warnings", headers=auth, json={
            "sender": "qingxi-qx", "identifier": "N-1", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "暴雨红色预警", "sent": clock().isoformat()})
        engine.tick()
        engine.drain()
        assert sms_to("zheng") == 1 and sms_to("zhou") == 1  # the alerts
        with transaction(tiny_site) as session:
            callout = session.scalars(select(CalloutRow).where(CalloutRow.person_id == "zheng")).one()
            insert_attempts(session, [attempt_values(callout, f"{callout.id}:n{i}:sms:zheng", -1, "reminder",
                                                     "sms", "zheng", clock()) for i in (1, 2)])
        clock.now += timedelta(minutes=1)
        engine.drain()
        assert sms_to("zheng") == 2  # the second of the hour goes; the third waits
        clock.now += timedelta(minutes=30)
        engine.drain()
        assert sms_to("zheng") == 2
        clock.now += timedelta(minutes=30)  # an hour after the alert: one of the two leaves the window
        engine.drain()
        assert sms_to("zheng") == 3
    finally:
        engine.close()


def test_a_bad_per_number_limit_is_refused_naming_the_item() -> None:
    # bad input: JIAOYING_NUMBER_LIMITS=voice=1.5/h (a count must be whole) and sms=1/week
    import pytest
    from pydantic import ValidationError

    for bad, says in (("voice=1.5/h", "the count must be a whole number"), ("sms=1/week", "unknown unit 'week'")):
        with pytest.raises(ValidationError, match=says):
            Settings(database_url="sqlite://", number_limits=bad)
