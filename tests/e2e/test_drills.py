"""Drills (演练) through the engine, on SQLite and PostgreSQL (and the Celery runtime at the end): a blind
drill (双盲) scheduled in a window starts once at its unseen moment however many schedulers run, goes
through every real channel with 【演练】 on every message, ends when its call-outs settle and is revealed;
a drill without SMS proves the fallback (voice at once) while a real warning at the same time still
goes by SMS; a drill missed while the engine was down is not started late and shows on /readyz; the
rural broadcast only when the drill asks for it; real statistics never count a drill; every bad input
is refused and changes nothing.

The tiny site: 孙镇长 (sun) town head, 周村长 (zhou) and 郑防汛员 (zheng) village flood officers; the red
rainstorm plan texts them at once, calls them at 3 min, their deputies at 6, superiors at 10 and sends the
未叫醒 list at 15.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.record_repo import verify
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, BroadcastOrderRow, CalloutRow, DrillRow, EventRow, WarningRow
from dispatcher.domain.callouts import AckVia
from dispatcher.domain.drills import DrillError, Options
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, drills
from dispatcher.services.assessment import assess
from dispatcher.services.heartbeat import engine_health
from dispatcher.services.metrics import engine_gauges
from dispatcher.services.site import current_site
from tests.conftest import FIXED_NOW, Clock
from tests.support.cli import run_cli
from tests.support.harness import settle_engine
from tests.support.production import Production, make_harness

KEY = b"test drill key"
SCENARIO = {"hazard": "rainstorm", "level": "red", "areas": ["330599100"], "sender": "qingxi-qx",
            "headline": "青溪县气象台发布暴雨红色预警信号", "instruction": "请立即组织危险区人员转移"}


@pytest.fixture
def engines(tiny_site: str, clock: Clock, outbox: SimOutbox) -> Iterator[list[Engine]]:
    settings = Settings(database_url=tiny_site)
    made = [Engine(settings, clock, lambda: build_adapters(settings, outbox), name=f"scheduler-{i}")
            for i in range(2)]
    yield made
    for engine in made:
        engine.close()


def _schedule(url: str, clock: Clock, **kw: Any) -> str:
    options = kw.pop("options", Options())
    with transaction(url) as session:
        scenario = drills.scenario_from(session, kw.pop("scenario", SCENARIO))
        row = drills.schedule(session, scenario, options, by="user:admin", now=clock(), key=KEY, **kw)
        return row.id


def _drill(url: str, drill_id: str) -> DrillRow:
    with transaction(url, write=False) as session:
        row = session.get(DrillRow, drill_id)
        assert row is not None
        session.expunge(row)
        return row


def _messages(outbox: SimOutbox, purpose: str | None = None) -> list[Any]:
    return [m.message for m in outbox.messages() if purpose is None or m.message.purpose.value == purpose]


def _reply(url: str, clock: Clock, person: str, text: str = "1") -> None:
    with transaction(url) as session:
        phone = current_site(session).people[person].phone
        ack.acknowledge_reply(session, clock(), phone=phone or "", via=AckVia.SMS, body=text)


def test_a_blind_drill_starts_once_at_its_unseen_moment_says_drill_everywhere_and_is_revealed_when_settled(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    url = tiny_site
    first, second = engines
    window = (FIXED_NOW + timedelta(hours=1), FIXED_NOW + timedelta(hours=2))
    drill_id = _schedule(url, clock, window=window)
    at = _drill(url, drill_id).at
    assert at is not None and window[0] <= at < window[1]
    settle_engine(first)
    assert _drill(url, drill_id).state == "scheduled" and outbox.messages() == []  # not yet
    clock.now = at + timedelta(seconds=1)
    first.tick()
    second.tick()  # a second scheduler in the same second starts nothing more
    settle_engine(first)
    drill = _drill(url, drill_id)
    assert drill.state == "running" and drill.record_id is not None and drill.revealed_at is None
    with transaction(url, write=False) as session:
        assert session.scalar(select(func.count()).select_from(WarningRow).where(WarningRow.drill.is_(True))) == 1
        assert drills.concealed(session) == {drill.record_id}
        # while it runs, the period report shows it nowhere: not as a drill, not as a warning
        during = assess(session, current_site(session), date(2026, 7, 1), date(2026, 7, 31))
        assert during.drills.total.callouts == during.real.total.callouts == 0
    alerts = _messages(outbox, "alert")
    assert sorted(m.to.person_id for m in alerts) == ["sun", "zheng", "zhou"]
    assert all(m.text.startswith("【演练】【暴雨红色预警】") for m in alerts), [m.text for m in alerts]

    # 孙 answers; the others are called (the reminder speaks 演练 first), then their deputies are texted
    clock.now += timedelta(minutes=1)
    _reply(url, clock, "sun")
    clock.now += timedelta(minutes=3)
    settle_engine(first)
    calls = _messages(outbox, "reminder")
    assert sorted(m.to.person_id for m in calls) == ["zheng", "zhou"]
    assert all(m.text.startswith("【演练】") and "【演练】" in m.subject for m in calls), [m.text for m in calls]
    clock.now += timedelta(minutes=3)
    settle_engine(first)
    (to_deputy,) = _messages(outbox, "to_deputy")
    assert to_deputy.to.person_id == "wu"
    assert to_deputy.text.startswith("【演练】【暴雨红色预警·请代为落实】吴主任同志：周村长")
    _reply(url, clock, "zhou")
    # 郑 never answers: superior at 10 min, the 未叫醒 list at 15 — all labelled, and then the drill is over
    clock.now = at + timedelta(minutes=16)
    settle_engine(first)
    later = _messages(outbox, "to_superior") + _messages(outbox, "unreached")
    assert later and all(m.text.startswith("【演练】") for m in later)
    assert all("演练" in m.text[:6] or "DRILL" in m.text[:8] for m in _messages(outbox))
    drill = _drill(url, drill_id)
    assert (drill.state, drill.ending) == ("ended", "settled") and drill.revealed_at == clock.now
    with transaction(url, write=False) as session:
        assert drills.concealed(session) == set()
        assert assess(session, current_site(session), date(2026, 7, 1), date(2026, 7, 31)).drills.total.callouts == 3
        kinds = list(session.scalars(select(EventRow.kind).where(EventRow.warning_id == drill.record_id)
                                     .order_by(EventRow.seq)))
        # ended once its last call-out settled (the 未叫醒 list's messages go out after that, still labelled)
        assert kinds[:2] == ["received", "drill_started"] and kinds.count("drill_ended") == 1
        assert kinds.index("drill_ended") > kinds.index("unreached")
        assert verify(session, drill.record_id) == []
        result = drills.report(session, drill_id, admin=True)
    f = result.figures
    assert (f.called, f.reached, f.acknowledged) == (3, 3, 2)
    assert f.reached_within == (3, 3) and f.acked_within == (1, 1)  # 孙 at 1 min; 周 after 7
    assert [p.name for p in result.unreached] == ["郑防汛员"]
    assert result.failures == ()
    assert [c.id for c in result.beside] == [drill_id]


def test_a_drill_without_sms_reaches_people_by_voice_at_once_and_a_real_warning_meanwhile_still_texts(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    url = tiny_site
    engine = engines[0]
    with transaction(url) as session:
        scenario = drills.scenario_from(session, SCENARIO)
        drill = drills.start_now(session, scenario, drills.options_from(without=["sms"]), by="user:admin",
                                 now=clock())
        drill_id, record = drill.id, drill.record_id
    # a real red warning for the same town arrives at the same moment: not muted by the drill's call-outs
    with transaction(url) as session:
        from dispatcher.intake.schema import parse_warning_dict
        from dispatcher.services.intake import receive_warning
        real = receive_warning(session, parse_warning_dict({
            "sender": "qingxi-qx", "identifier": "REAL-1", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "暴雨红色预警", "sent": clock().isoformat()}),
            key=None, source_format="json", raw="{}", now=clock()).id
    settle_engine(engine)
    sms = [m for m in _messages(outbox) if m.channel.value == "sms"]
    # nothing of the drill went by SMS; the real warning did, and the drill did not mute it
    assert sms and all(not m.drill for m in sms)
    with transaction(url, write=False) as session:
        real_people = set(session.scalars(select(CalloutRow.person_id).where(CalloutRow.record_id == real)))
        outages = session.execute(select(AttemptRow.recipient_id, AttemptRow.status, AttemptRow.provider,
                                         AttemptRow.error).where(AttemptRow.record_id == record,
                                                                 AttemptRow.channel == "sms")).all()
    assert real_people == {"sun", "zhou", "zheng"}
    assert sorted(m.to.person_id for m in sms) == ["sun", "zheng", "zhou"]
    assert sorted(o.recipient_id for o in outages) == ["sun", "zheng", "zhou"]
    assert all(o.status == "failed" and o.provider == "drill" and o.error.startswith("drill outage: channel sms")
               for o in outages)
    # the ladder did not wait: the voice step ran at once, labelled
    calls = [m for m in _messages(outbox, "reminder") if m.drill]
    assert sorted(m.to.person_id for m in calls) == ["sun", "zheng", "zhou"]
    with transaction(url, write=False) as session:
        result = drills.report(session, drill_id, admin=True)
        words = [e.data for e in session.scalars(select(EventRow).where(EventRow.warning_id == record,
                                                                        EventRow.kind == "attempts"))]
    assert any("drill outage" in (a.get("error") or "") for d in words for a in d["attempts"])
    assert {p.person_id: (p.channel, p.step) for p in result.people} == {
        "sun": ("voice", 1), "zhou": ("voice", 1), "zheng": ("voice", 1)}
    assert [p.person_id for p in result.took_over] == [p.person_id for p in result.people]
    assert all(p.later_s == 0.0 for p in result.people)  # reached at once, not 3 minutes later
    assert {(x.channel, x.imposed) for x in result.failures} == {("sms", True)}


def test_a_drill_without_sms_tells_the_people_its_voice_calls_reached_that_it_is_lifted_by_voice_as_a_drill(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    """The lifting notice goes by the channel that reached each official — here the voice call that took
    over from the SMS the drill took out — never by the channel taken out (which would tell nobody)."""
    url = tiny_site
    with transaction(url) as session:
        drill_id = drills.start_now(session, drills.scenario_from(session, SCENARIO),
                                    drills.options_from(without=["sms"]), by="user:admin", now=clock()).id
    settle_engine(engines[0])
    assert sorted(m.to.person_id for m in _messages(outbox, "reminder")) == ["sun", "zheng", "zhou"]
    clock.now += timedelta(minutes=1)
    with transaction(url) as session:
        drills.end(session, drill_id, by="user:admin", now=clock())
    settle_engine(engines[0])
    lifted = _messages(outbox, "cancel")
    assert sorted((m.to.person_id, m.channel.value) for m in lifted) == [
        ("sun", "voice"), ("zheng", "voice"), ("zhou", "voice")]
    assert all(m.text.startswith("【演练】") and "已解除" in m.text for m in lifted), [m.text for m in lifted]
    with transaction(url, write=False) as session:
        notices = session.execute(select(AttemptRow.channel, AttemptRow.status).where(
            AttemptRow.purpose == "cancel")).all()
    assert sorted(notices) == [("voice", "sent")] * 3  # none tried on the SMS the drill took out


def test_a_real_warnings_cancel_notice_goes_by_the_channel_that_reached_each_official_when_sms_failed(
        harness: Any, engine: Engine) -> None:
    """The same rule for a real warning: 周's SMS was refused for good, the voice call reached him at once;
    the cancel tells him by voice. 孙 and 郑, reached by SMS, are told by SMS as always."""
    from dispatcher.channels.base import PermanentError
    from dispatcher.domain.channels import Channel

    engine.adapter(Channel.SMS).fail_next(1, PermanentError("the number cannot take SMS"))
    harness.post(identifier="R-1")
    harness.settle()
    texted = {m.to for m in harness.unclaimed if m.channel == "sms"}
    refused = ({"sun", "zhou", "zheng"} - texted).pop()  # the one whose text was refused …
    for person in texted:
        harness.expect(person, "sms", "alert")
    harness.expect(refused, "voice", "reminder")  # … was called at once
    harness.post(identifier="R-2", msg_type="cancel", references=["R-1"])
    for person in texted:
        harness.expect(person, "sms", "cancel")
    harness.expect(refused, "voice", "cancel")


def test_a_scheduled_drill_missed_while_the_engine_was_down_is_not_started_late_and_shows_on_readyz(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    drill_id = _schedule(tiny_site, clock, at=FIXED_NOW + timedelta(minutes=30))
    clock.now = FIXED_NOW + timedelta(minutes=45)  # the engine was away from before until after its catch-up
    settle_engine(engines[0])
    assert _drill(tiny_site, drill_id).state == "missed" and outbox.messages() == []
    with transaction(tiny_site, write=False) as session:
        health = engine_health(session, clock())
    assert health["drills"] == f"1 scheduled drill(s) did not run: {drill_id}@2026-07-16T03:42:00+00:00"


def test_a_restarted_engine_starts_a_drill_due_within_its_catch_up(
        tiny_site: str, clock: Clock, outbox: SimOutbox) -> None:
    drill_id = _schedule(tiny_site, clock, at=FIXED_NOW + timedelta(minutes=30))
    clock.now = FIXED_NOW + timedelta(minutes=35)  # a new engine, five minutes late: still started
    settings = Settings(database_url=tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="after-restart")
    try:
        settle_engine(engine)
    finally:
        engine.close()
    assert _drill(tiny_site, drill_id).state == "running"
    assert len(_messages(outbox, "alert")) == 3


def test_an_admin_ends_a_running_drill_its_people_are_told_as_a_drill_and_it_is_revealed(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    with transaction(tiny_site) as session:
        scenario = drills.scenario_from(session, SCENARIO)
        drill_id = drills.schedule(session, scenario, Options(), by="user:admin", now=clock(),
                                   at=FIXED_NOW + timedelta(minutes=1)).id
    clock.now += timedelta(minutes=1)
    settle_engine(engines[0])
    with transaction(tiny_site) as session:
        drills.end(session, drill_id, by="user:admin", now=clock())
    settle_engine(engines[0])
    cancels = _messages(outbox, "cancel")
    assert sorted(m.to.person_id for m in cancels) == ["sun", "zheng", "zhou"]
    assert all(m.text.startswith("【演练】") for m in cancels)
    drill = _drill(tiny_site, drill_id)
    assert (drill.state, drill.ending, drill.ended_by) == ("ended", "ended", "user:admin")
    with transaction(tiny_site, write=False) as session:
        assert drills.concealed(session) == set()


@pytest.mark.parametrize(("bad", "field"), [
    ({"at": FIXED_NOW - timedelta(minutes=1)}, "at"),  # bad input: a time in the past
    ({"at": FIXED_NOW}, "at"),  # bad input: now is not in the future either
    # bad input: the window ends before it starts
    ({"window": (FIXED_NOW + timedelta(hours=2), FIXED_NOW + timedelta(hours=1))}, "to"),
    ({"at": FIXED_NOW + timedelta(hours=1), "window": (FIXED_NOW + timedelta(hours=1),
                                                        FIXED_NOW + timedelta(hours=2))}, "at"),  # bad input: both
    ({}, "at"),  # bad input: neither a time nor a window
    ({"at": FIXED_NOW + timedelta(days=400)}, "at"),  # bad input: more than a year ahead
])
def test_a_drill_scheduled_at_a_bad_time_is_refused_and_stores_nothing(
        tiny_site: str, clock: Clock, bad: dict[str, Any], field: str) -> None:
    with pytest.raises(DrillError) as refused:
        _schedule(tiny_site, clock, **bad)
    assert refused.value.field == field
    with transaction(tiny_site, write=False) as session:
        assert session.scalar(select(func.count()).select_from(DrillRow)) == 0


@pytest.mark.parametrize(("scenario", "field", "says"), [
    (SCENARIO | {"hazard": "tsunami"}, "hazard", "unknown hazard 'tsunami'"),  # bad input: unknown hazard
    (SCENARIO | {"level": "purple"}, "level", "unknown level"),  # bad input: unknown level
    (SCENARIO | {"areas": ["110101"]}, "areas[0]", "not an area of this site"),  # bad input: outside the site
    (SCENARIO | {"areas": []}, "areas", "required"),  # bad input: no areas
    (SCENARIO | {"headline": "  "}, "headline", "required"),  # bad input: no headline
])
def test_a_drill_with_a_bad_scenario_is_refused(tiny_site: str, scenario: dict[str, Any], field: str,
                                                says: str) -> None:
    with pytest.raises(DrillError, match=says) as refused, transaction(tiny_site) as session:
        drills.scenario_from(session, scenario)
    assert refused.value.field == field


def test_without_naming_an_unknown_channel_or_provider_is_refused_naming_the_accepted_ones() -> None:
    # bad input: "fax" is neither a channel nor a provider
    with pytest.raises(DrillError, match=r"without\[1\]: 'fax' is neither a channel nor a provider; accepted "
                                         r"channels: sms, voice, im, email; providers: aliyun, smtp, tencent, twilio"):
        drills.options_from(without=["sms", "fax"])
    # bad input: every channel out — nobody could be reached
    with pytest.raises(DrillError, match="every channel taken out"):
        drills.options_from(without=["sms", "voice", "im", "email"])
    assert drills.options_from(without=["SMS", "aliyun", "sms"]).without == ("sms", "aliyun")


def test_real_statistics_never_count_a_drill(tiny_site: str, clock: Clock, engines: list[Engine]) -> None:
    with transaction(tiny_site) as session:
        scenario = drills.scenario_from(session, SCENARIO)
        drills.start_now(session, scenario, Options(), by="user:admin", now=clock())
    settle_engine(engines[0])
    _reply(tiny_site, clock, "sun")
    with transaction(tiny_site, write=False) as session:
        report = assess(session, current_site(session), date(2026, 7, 1), date(2026, 7, 31))
        gauges = engine_gauges(session, clock())
    assert report.real.total.callouts == 0 and report.drills.total.callouts == 3
    assert gauges.callouts == {} and sum(gauges.drill_callouts.values()) == 3


# -- the HTTP API and /metrics: a running blind drill is a real warning to officers and viewers, counted nowhere ---


def _basic(name: str) -> dict[str, str]:
    import base64

    from tests.board.conftest import PASSWORD

    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()}


def _api_reads(client: TestClient, who: dict[str, str], record: str) -> dict[str, Any]:
    """Every API read that shows a warning: the list, the warning, its record (JSON and CSV), its call-outs."""
    answers = {"list": client.get("/api/v1/warnings", headers=who), "one": client.get(f"/api/v1/warnings/{record}",
                                                                                       headers=who),
               "record": client.get(f"/api/v1/warnings/{record}/record", headers=who),
               "csv": client.get(f"/api/v1/warnings/{record}/record?format=csv", headers=who),
               "callouts": client.get(f"/api/v1/warnings/{record}/callouts", headers=who)}
    return {k: (a.status_code, a.text) for k, a in answers.items()}


def _metrics(client: TestClient) -> dict[str, float]:
    """The call-out gauges of /metrics (no login), by series and state."""
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(("jiaoying_callouts{", "jiaoying_drill_callouts{")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_the_api_shows_a_running_blind_drill_to_officers_and_viewers_as_real_and_metrics_count_it_nowhere(
        tiny_site: str, clock: Clock, engines: list[Engine], auth: dict[str, str]) -> None:
    from dispatcher.api.app import create_app
    from tests.board.conftest import create_users

    url = tiny_site
    create_users(url)  # wang viewer, liu officer, chen admin
    drill_id = _schedule(url, clock, at=FIXED_NOW + timedelta(minutes=1), options=drills.options_from(without=["sms"]))
    clock.now += timedelta(minutes=1)
    with TestClient(create_app(Settings(database_url=url), clock=clock)) as client:
        # a real warning of the agency (qingxi-qx: the sender the blind drill plays) at the same time
        real = _post(client, auth, "REAL-3", sent=clock().isoformat()).json()["id"]
        settle_engine(engines[0])
        record = _drill(url, drill_id).record_id
        assert record is not None and _drill(url, drill_id).state == "running"

        for name in ("liu", "wang"):
            reads = _api_reads(client, _basic(name), record)
            assert {k: code for k, (code, _) in reads.items()} == dict.fromkeys(reads, 200)
            listed = {w["id"]: w["drill"] for w in json.loads(reads["list"][1])["warnings"]}
            assert listed == {record: False, real: False}
            assert json.loads(reads["one"][1])["drill"] is False
            events = json.loads(reads["record"][1])["events"]
            assert [e["kind"] for e in events][:2] == ["received", "matched"]
            assert events[0]["data"]["drill"] is False and events[0]["actor"] == "agency:qingxi-qx"
            callouts = json.loads(reads["callouts"][1])["callouts"]
            assert len(callouts) == 3 and not any(c["drill"] for c in callouts)
            errors = {a["error"] for c in callouts for a in c["attempts"] if a["error"]}
            assert errors == {"channel unavailable (通道不可用)"}  # SMS taken out: a plain channel failure
            for what, (_, text) in reads.items():
                assert not any(word in text for word in ("drill_started", "drill outage", '"drill": true',
                                                         '"drill":true', "演练")), (name, what)
        # the admin reads the truth
        reads = _api_reads(client, _basic("chen"), record)
        assert {w["id"]: w["drill"] for w in json.loads(reads["list"][1])["warnings"]} == {record: True, real: False}
        assert json.loads(reads["one"][1])["drill"] is True
        assert "drill_started" in reads["record"][1] and "drill outage" in reads["callouts"][1]
        assert all(c["drill"] for c in json.loads(reads["callouts"][1])["callouts"])
        # the agency whose sender the drill plays never sees the county's drill: it is not theirs
        assert [w["id"] for w in client.get("/api/v1/warnings", headers=auth).json()["warnings"]] == [real]
        mine = _api_reads(client, auth, record)
        assert {k: code for k, (code, _) in mine.items() if k != "list"} == {"one": 404, "record": 404, "csv": 404,
                                                                             "callouts": 404}
        assert client.post(f"/api/v1/warnings/{record}/cancel", headers=auth).status_code == 404
        # /metrics, with no login: the real warning's three call-outs, the running blind drill's in no series
        assert _metrics(client) == {'jiaoying_callouts{state="notified"}': 3.0}

        with transaction(url) as session:
            drills.end(session, drill_id, by="user:chen", now=clock())
        settle_engine(engines[0])
        # revealed: a drill to everyone, and counted as one
        for name in ("liu", "wang", "chen"):
            reads = _api_reads(client, _basic(name), record)
            assert {w["id"]: w["drill"] for w in json.loads(reads["list"][1])["warnings"]} == {record: True,
                                                                                               real: False}
            kinds = [e["kind"] for e in json.loads(reads["record"][1])["events"]]
            assert "drill_started" in kinds and "drill_ended" in kinds
            assert all(c["drill"] for c in json.loads(reads["callouts"][1])["callouts"])
        assert client.get(f"/api/v1/warnings/{record}", headers=auth).status_code == 404
        assert _metrics(client) == {'jiaoying_callouts{state="notified"}': 3.0,
                                    'jiaoying_drill_callouts{state="cancelled"}': 3.0}


# -- the rural broadcast only when the drill asks for it (the sample county's red plan has one) ------------


def _post(client: TestClient, auth: dict[str, str], identifier: str, **fields: Any) -> Any:
    return client.post("/api/v1/warnings", headers=auth, json={
        "sender": "qingxi-qx", "identifier": identifier, "hazard": "rainstorm", "level": "red",
        "areas": ["330599100"], "headline": "青溪县气象台发布暴雨红色预警信号", "sent": FIXED_NOW.isoformat(),
        **fields})


def _orders(url: str) -> dict[str, int]:
    with transaction(url, write=False) as session:
        return dict(session.execute(select(BroadcastOrderRow.warning_id, BroadcastOrderRow.repeat)).all())


def test_a_drill_orders_the_rural_broadcast_only_when_it_asks_and_a_real_warning_as_before(
        client: TestClient, auth: dict[str, str], site_loaded: str, clock: Clock) -> None:
    plain = _post(client, auth, "D-1", drill=True).json()["id"]
    asked = _post(client, auth, "D-2", drill=True, drill_broadcast=True).json()["id"]
    real = _post(client, auth, "R-1").json()["id"]
    # bad input: drill_broadcast on a real warning is refused, naming the field, and stores nothing
    refused = _post(client, auth, "R-2", drill_broadcast=True)
    assert refused.status_code == 422
    assert "drill_broadcast" in refused.text and "only a drill" in refused.text
    settings = Settings(database_url=site_loaded)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()))
    try:
        engine.tick()
    finally:
        engine.close()
    assert set(_orders(site_loaded)) == {asked, real}
    assert plain not in _orders(site_loaded)
    with transaction(site_loaded, write=False) as session:
        assert session.scalar(select(func.count()).select_from(WarningRow).where(
            WarningRow.identifier == "R-2")) == 0
        # an agency's drill is kept as a drill too: reported and ended like the county's own
        kinds = dict(session.execute(select(DrillRow.record_id, DrillRow.kind)).all())
    assert kinds == {plain: "posted", asked: "posted"}


# -- the CLI and the sample county's drill files ---------------------------------------------------------


def _jiaoying(url: str, *args: str) -> Any:
    return run_cli("drill", *args, env={"JIAOYING_DATABASE_URL": url})


def test_the_cli_schedules_starts_shows_and_calls_off_drills_from_the_sample_files(sqlite_database_url: str) -> None:
    from datetime import UTC, datetime

    from dispatcher.services.site import load_site_files
    from tests.conftest import SAMPLE_SITE

    url = sqlite_database_url
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    files = SAMPLE_SITE / "drills"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scheduled = _jiaoying(url, "schedule", "--file", str(files / "flood-season-blind.yaml"),
                          "--from", tomorrow.isoformat(), "--to", (tomorrow + timedelta(hours=8)).isoformat())
    assert scheduled.returncode == 0, scheduled.stderr
    blind = scheduled.stdout.strip().splitlines()[-1]
    assert "已安排双盲演练" in scheduled.stdout and "the moment is not shown" in scheduled.stdout
    started = _jiaoying(url, "start", "--file", str(files / "no-sms.yaml"))
    assert started.returncode == 0, started.stderr
    announced = started.stdout.strip().splitlines()[-1]
    listed = json.loads(_jiaoying(url, "list", "--json").stdout)
    assert {(d["id"], d["kind"], d["state"]) for d in listed} == {(blind, "blind", "scheduled"),
                                                                  (announced, "announced", "running")}
    assert next(d for d in listed if d["id"] == blind)["at"] is None  # the drawn moment stays unseen
    shown = json.loads(_jiaoying(url, "show", announced, "--json").stdout)
    assert shown["without"] == ["sms"] and shown["broadcast"] is True and shown["state"] == "running"
    # the third sample file is valid too
    with transaction(url) as session:
        import yaml
        data = yaml.safe_load((files / "no-sms-provider.yaml").read_text(encoding="utf-8"))
        drills.scenario_from(session, data["warning"])
        assert drills.options_from(without=data["without"]).without == ("aliyun",)
    # bad input, each refused with a message naming what is wrong, and nothing stored
    for args, says in (
            (("schedule", "--file", str(files / "no-sms.yaml"), "--at", "2020-01-01T09:00"), "at: 2020-01-01T09:00"),
            (("schedule", "--file", str(files / "no-sms.yaml"), "--without", "fax", "--at", tomorrow.isoformat()),
             "'fax' is neither a channel nor a provider"),
            (("start", "--file", str(files / "no-sms.yaml"), "--level", "purple"), "level: unknown level"),
            (("end", blind), "is scheduled, not running"),
            # a second drill now, while the announced one runs: it would call nobody (everyone already called)
            (("start", "--file", str(files / "no-sms.yaml")), f"演练 {announced} 正在进行"),
            (("show", "D-nothing"), "no drill 'D-nothing'")):
        refused = _jiaoying(url, *args)
        assert refused.returncode == 1 and says in " ".join(refused.stderr.split()), (args, refused.stderr)
    assert len(json.loads(_jiaoying(url, "list", "--json").stdout)) == 2
    called_off = _jiaoying(url, "cancel", blind)
    assert called_off.returncode == 0 and "已撤销" in called_off.stdout
    ended = _jiaoying(url, "end", announced)
    assert ended.returncode == 0 and "ended and revealed" in ended.stdout
    states = {d["id"]: d["state"] for d in json.loads(_jiaoying(url, "list", "--json").stdout)}
    assert states == {blind: "cancelled", announced: "ended"}


# -- the production runtime: the `jiaoying scheduler` process starts the drill, Celery workers send it ------


@pytest.mark.postgres
def test_a_blind_drill_runs_on_celery_started_by_the_scheduler_process(
        production: Production, sim: Any) -> None:  # noqa: F811 - the fixtures imported above
    production.start_worker()
    production.start_scheduler()
    h = make_harness(production, sim)
    url = h.url
    with transaction(url) as session:
        scenario = drills.scenario_from(session, SCENARIO)
        drill_id = drills.schedule(session, scenario, drills.options_from(without=["sms"]), by="user:admin",
                                   now=h.now(), at=h.now() + timedelta(minutes=2), key=KEY).id
    h.settle()
    assert h.unclaimed == [] and _drill(url, drill_id).state == "scheduled"
    h.advance(minutes=2, seconds=1)
    # SMS taken out: nothing by SMS; the voice step ran at once, and it says 演练 first
    for person in ("sun", "zhou", "zheng"):
        call = h.expect(person, "voice", "reminder")
        assert call.text.startswith("【演练】"), call.text
    drill = _drill(url, drill_id)
    assert drill.state == "running" and drill.revealed_at is None
    with transaction(url) as session:
        drills.end(session, drill_id, by="user:admin", now=h.now())
    # the lifting notices go by the voice calls that reached them, not by the SMS taken out, as a drill
    for person in ("sun", "zhou", "zheng"):
        lifted = h.expect(person, "voice", "cancel")
        assert lifted.text.startswith("【演练】"), lifted.text
    h.expect_nothing_more()
    with transaction(url, write=False) as session:
        notices = session.execute(select(AttemptRow.channel, AttemptRow.status).where(
            AttemptRow.purpose == "cancel")).all()
    assert sorted(notices) == [("voice", "sent")] * 3
    drill = _drill(url, drill_id)
    assert (drill.state, drill.ending) == ("ended", "ended") and drill.revealed_at is not None


def test_a_plain_reply_to_a_drill_never_confirms_a_real_warning_open_at_the_same_time(
        tiny_site: str, clock: Clock, engines: list[Engine], outbox: SimOutbox) -> None:
    """Bad input, as the field has it: 孙 has a drill's text and a real warning's text, and replies a
    bare "1". It answers the drill (the safe reading: a real warning left open is chased again, a
    real warning closed by a drill's answer is not); a second "1", or the real warning's code, answers it."""
    url = tiny_site
    with transaction(url) as session:
        drills.start_now(session, drills.scenario_from(session, SCENARIO), Options(), by="user:admin", now=clock())
        from dispatcher.intake.schema import parse_warning_dict
        from dispatcher.services.intake import receive_warning
        real = receive_warning(session, parse_warning_dict({
            "sender": "qingxi-qx", "identifier": "REAL-2", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "暴雨红色预警", "sent": clock().isoformat()}),
            key=None, source_format="json", raw="{}", now=clock()).id
    settle_engine(engines[0])

    def states() -> dict[bool, str]:
        with transaction(url, write=False) as session:
            return {bool(d): s for d, s in session.execute(select(CalloutRow.drill, CalloutRow.state).where(
                CalloutRow.person_id == "sun"))}

    assert states() == {True: "notified", False: "notified"}
    _reply(url, clock, "sun", "1")
    assert states() == {True: "acknowledged", False: "notified"}
    _reply(url, clock, "sun", "收到")
    assert states() == {True: "acknowledged", False: "acknowledged"}
    with transaction(url, write=False) as session:
        assert session.scalar(select(CalloutRow.ack_via).where(CalloutRow.record_id == real,
                                                               CalloutRow.person_id == "sun")) == "sms"
