"""A warning's call-outs are started a part at a time (services/callouts.py, START_PART), on SQLite
and PostgreSQL: the first calls go out before the last official's call-out is started, a start cut
short by a crash is resumed without calling anyone twice, two schedulers never double a call-out,
and an update or a cancel that comes between two parts stops the rest."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow, WarningRow
from dispatcher.intake.schema import parse_warning_dict
from dispatcher.runtime.engine import Engine
from dispatcher.services import callouts, escalation
from dispatcher.services.intake import receive_warning
from dispatcher.services.site import load_site_files
from tests.conftest import Clock
from tests.support.bigsite import COUNTY, write_big_site
from tests.support.harness import settle_engine

OFFICIALS = 45  # 9 villages of 5; a part is 10 call-outs here, so 5 parts


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callouts, "START_PART", 10)
    monkeypatch.setattr(callouts, "START_PART_SQLITE", 10)


@pytest.fixture
def county(database_url: str, tmp_path: Path, clock: Clock) -> str:
    write_big_site(tmp_path / "big", OFFICIALS)
    with transaction(database_url) as session:
        load_site_files(session, tmp_path / "big", clock())
    return database_url


@pytest.fixture
def engine(county: str, clock: Clock) -> Iterator[Engine]:
    settings = Settings(database_url=county)
    eng = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="parts")
    yield eng
    eng.close()


def post(url: str, clock: Clock, identifier: str = "R-1", **extra: object) -> str:
    body = {"sender": "big-qx", "identifier": identifier, "hazard": "rainstorm", "level": "red",
            "areas": [COUNTY], "headline": "大县气象台发布暴雨红色预警信号", "sent": clock().isoformat(), **extra}
    with transaction(url) as session:
        return receive_warning(session, parse_warning_dict(body), key=None, source_format="json",
                               raw=json.dumps(body), now=clock()).id


def callouts_per_person(url: str) -> Counter[str]:
    with transaction(url) as session:
        return Counter(session.scalars(select(CalloutRow.person_id)))


def events_of(url: str, record: str, kind: str) -> list[dict[str, object]]:
    with transaction(url) as session:
        return [e.data for e in record_repo.events(session, record) if e.kind == kind]


def parts(url: str, start: callouts.Start, clock: Clock, n: int) -> None:
    for _ in range(n):
        with transaction(url) as session:
            assert not callouts.apply_part(session, start, clock())


def begin(url: str, wid: str, clock: Clock) -> callouts.Start:
    with transaction(url, write=False) as session:
        start = callouts.begin_start(session, wid, clock())
    assert start is not None
    return start


def test_the_first_calls_go_out_before_the_last_call_out_is_started(engine: Engine, county: str,
                                                                   clock: Clock) -> None:
    started_at_wake: list[int] = []

    def count_callouts() -> None:
        with transaction(county) as session:
            started_at_wake.append(session.scalar(select(func.count()).select_from(CalloutRow)) or 0)

    engine.on_work = count_callouts
    wid = post(county, clock)
    settle_engine(engine)
    assert started_at_wake[0] == 10, "the workers were woken only after every call-out had started"
    assert callouts_per_person(county) == Counter({f"p{n}": 1 for n in range(1, OFFICIALS + 1)})
    with transaction(county) as session:
        assert session.scalar(select(func.count()).where(AttemptRow.status == "sent")) == 2 * OFFICIALS
        assert record_repo.verify(session, wid) == []
    assert len(events_of(county, wid, "matched")) == 1
    [applied] = events_of(county, wid, "applied")
    assert applied["started"] == OFFICIALS and "stopped" not in applied


def test_a_start_cut_short_by_a_crash_is_resumed_without_calling_anyone_twice(engine: Engine, county: str,
                                                                             clock: Clock) -> None:
    wid = post(county, clock)
    parts(county, begin(county, wid, clock), clock, 2)  # … and the scheduler dies: its Start is lost
    with transaction(county) as session:
        assert callouts.pending_warnings(session) == [wid], "a half-started warning must stay pending"
    assert sum(callouts_per_person(county).values()) == 20
    settle_engine(engine)  # another scheduler takes it up
    assert callouts_per_person(county) == Counter({f"p{n}": 1 for n in range(1, OFFICIALS + 1)})
    assert len(events_of(county, wid, "matched")) == 1, "the resumed start wrote the rules' decision again"
    [applied] = events_of(county, wid, "applied")
    assert applied["started"] == OFFICIALS


def test_two_schedulers_starting_the_same_warning_start_each_official_once(county: str, clock: Clock) -> None:
    wid = post(county, clock)
    first, second = begin(county, wid, clock), begin(county, wid, clock)
    finished = {"first": False, "second": False}
    while not all(finished.values()):  # their parts interleave
        for name, start in (("first", first), ("second", second)):
            if not finished[name]:
                with transaction(county) as session:
                    finished[name] = callouts.apply_part(session, start, clock())
    assert callouts_per_person(county) == Counter({f"p{n}": 1 for n in range(1, OFFICIALS + 1)})
    assert len(events_of(county, wid, "applied")) == 1


def test_a_cancel_between_parts_stops_the_rest(county: str, clock: Clock) -> None:
    wid = post(county, clock)
    start = begin(county, wid, clock)
    parts(county, start, clock, 2)
    with transaction(county) as session:
        callouts.cancel_event(session, wid, clock(), "user:admin")
    with transaction(county) as session:
        assert callouts.apply_part(session, start, clock()) is True  # nothing more to do
        states = Counter(session.scalars(select(CalloutRow.state)))
        assert callouts.pending_warnings(session) == []
    assert states == Counter({"cancelled": 20}), "call-outs started after the cancel, or left open"


def test_an_update_between_parts_stops_the_alert_and_the_update_calls_the_rest(engine: Engine, county: str,
                                                                               clock: Clock) -> None:
    wid = post(county, clock)
    start = begin(county, wid, clock)
    parts(county, start, clock, 2)
    post(county, clock, identifier="R-2", msg_type="update", references=["R-1"],
         headline="暴雨红色预警信号更新")
    with transaction(county) as session:
        assert callouts.apply_part(session, start, clock()) is True
    [applied] = events_of(county, wid, "applied")
    assert applied["started"] == 20 and applied["stopped"] == "updated"
    settle_engine(engine)  # the update is applied: everyone not yet started is called now
    assert callouts_per_person(county) == Counter({f"p{n}": 1 for n in range(1, OFFICIALS + 1)})


def waiting_for_a_lock(url: str) -> bool:
    with transaction(url, write=False) as session:  # a new transaction: pg_stat_activity is read fresh
        return bool(session.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND wait_event_type = 'Lock'")))


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_cancel_waiting_for_a_part_closes_that_part_too(county: str, clock: Clock) -> None:
    """PostgreSQL only: on SQLite every writer takes the one write lock, so the two cannot overlap."""
    wid = post(county, clock)
    start = begin(county, wid, clock)
    done = threading.Event()
    errors: list[BaseException] = []

    def cancel() -> None:
        try:
            with transaction(county) as session:
                callouts.cancel_event(session, wid, clock(), "user:admin")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            done.set()

    with transaction(county) as session:
        assert not callouts.apply_part(session, start, clock())  # 10 call-outs, not committed yet …
        canceller = threading.Thread(target=cancel)
        canceller.start()  # … while the admin's cancel runs: it finds none open, then waits for the row
        deadline = time.monotonic() + 10
        while not waiting_for_a_lock(county):
            assert time.monotonic() < deadline and not done.is_set(), "the cancel did not wait for the part"
            time.sleep(0.02)
    canceller.join(10)
    assert not errors, errors
    with transaction(county) as session:
        states = Counter(session.scalars(select(CalloutRow.state)))
        assert session.get(WarningRow, wid).status == "cancelled"
        assert callouts.apply_part(session, start, clock()) is True
    assert states == Counter({"cancelled": 10}), "the part committed during the cancel was left open"


def test_each_part_queues_its_first_steps_in_the_same_commit(county: str, clock: Clock) -> None:
    """Step 0 is written with the call-outs (not by a later pass reading them back): a scheduler that
    dies right after a part's commit leaves those officials' first messages queued, their keys on the
    right call-out (the inserted ids come back in the rows' order on both databases), and their
    timers on step 1."""
    wid = post(county, clock)
    start = begin(county, wid, clock)
    parts(county, start, clock, 2)
    with transaction(county) as session:
        rows = {c.id: c for c in session.scalars(select(CalloutRow))}
        attempts = list(session.scalars(select(AttemptRow)))
    assert len(rows) == 20
    assert len(attempts) == 40, "a part's first messages were not queued with it"
    for attempt in attempts:
        callout = rows[attempt.callout_id]
        assert attempt.recipient_id == callout.person_id, "an attempt hangs on another official's call-out"
        assert attempt.key == f"{callout.id}:0:{attempt.channel}:{callout.person_id}"
        assert attempt.status == "queued" and attempt.step_index == 0
    assert {(c.state, c.next_step) for c in rows.values()} == {("pending", 1)}
    step_1 = rows[min(rows)].steps[1]["due"]
    assert all(c.next_due.replace(tzinfo=None) == datetime.fromisoformat(step_1).replace(tzinfo=None)
               for c in rows.values()), "the timers did not move on to step 1"
    ran = [entry["callout"] for event in events_of(county, wid, "steps") for entry in event["steps"]]
    assert sorted(ran) == sorted(rows), "the record does not say which call-outs ran their step"


def test_a_first_step_that_cannot_be_made_is_left_to_the_pass_and_the_rest_go_out(
        engine: Engine, county: str, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injected: making p3's attempts raises (standing in for a roster or template fault). The
    part still starts everyone and queues the others' messages; p3's call-out waits on step 0, and the
    scheduler's pass records the failure on the record and tries again later."""
    real = escalation.step_attempts

    def broken_for_p3(site, callout, step, now):  # type: ignore[no-untyped-def]
        if callout.person_id == "p3":
            raise RuntimeError("p3 cannot be reached today")
        return real(site, callout, step, now)

    monkeypatch.setattr(escalation, "step_attempts", broken_for_p3)
    wid = post(county, clock)
    start = begin(county, wid, clock)
    parts(county, start, clock, 1)
    with transaction(county) as session:
        p3 = session.scalars(select(CalloutRow).where(CalloutRow.person_id == "p3")).one()
        assert (p3.state, p3.next_step) == ("pending", 0)
        assert not session.scalars(select(AttemptRow).where(AttemptRow.callout_id == p3.id)).all()
        others = session.scalar(select(func.count()).select_from(AttemptRow)) or 0
    assert others == 18, "one official's fault held back the others' first messages"
    settle_engine(engine)
    [failed] = events_of(county, wid, "step_failed")
    assert [s["person"] for s in failed["steps"]] == ["p3"]
    assert "p3 cannot be reached today" in failed["steps"][0]["error"]
    with transaction(county) as session:
        sent = Counter(session.scalars(select(AttemptRow.recipient_id).where(AttemptRow.status == "sent")))
    assert sent == Counter({f"p{n}": 2 for n in range(1, OFFICIALS + 1) if n != 3})


def test_a_worker_appending_to_the_record_does_not_stop_the_start_for_the_pass(engine: Engine, county: str,
                                                                            clock: Clock) -> None:
    """Workers append their outcomes to the warning's record, which locks the warning's row for a
    moment (PostgreSQL). The scheduler's part found it locked, took that for another scheduler and
    left the rest of the warning to its next pass, which decided everyone again (seen in
    bench/carriers.py: 70 look-ups for 10 parts, and a second's stall at a time). On SQLite the
    worker's transaction holds the database's write lock instead, and the part waits for it."""
    wid = post(county, clock)
    start = begin(county, wid, clock)
    parts(county, start, clock, 1)  # one part started; its attempts are out and recorded
    locked, release = threading.Event(), threading.Event()

    def worker_appending() -> None:  # as record_repo.append_event does for a worker's outcomes
        with transaction(county) as session:
            session.execute(select(WarningRow.id).where(WarningRow.id == wid).with_for_update())
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=worker_appending)
    holder.start()
    assert locked.wait(10)
    threading.Timer(0.3, release.set).start()  # the worker commits 0.3 s later
    engine.tick()  # one scheduler pass
    holder.join(10)
    with transaction(county) as session:
        assert callouts.pending_warnings(session) == [], "the pass gave the warning up while a worker wrote"
    assert callouts_per_person(county) == Counter({f"p{n}": 1 for n in range(1, OFFICIALS + 1)})
    assert len(events_of(county, wid, "matched")) == 1
