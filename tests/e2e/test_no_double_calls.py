"""No double calls when the field is slow: a provider that takes longer than a worker's lease, a
try whose answer was lost and that is claimed again later, an acknowledgement that arrives while a
claimed call waits for its slot, and a worker that finishes a batch whose lease was taken over.
Keys are counted at a real loopback provider (the simulator's endpoint mode) or in the outbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import AttemptRow, CalloutRow
from dispatcher.domain.callouts import AckVia
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack, dispatch
from tests.conftest import Clock
from tests.fakes.simserver import SimServer
from tests.support.harness import Harness


class RunningClock(Clock):
    """The test's clock, also moving with real time: leases run out while a slow provider works."""

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now + timedelta(seconds=time.monotonic() - self._t0)


@pytest.fixture
def clock() -> Clock:
    return RunningClock()


def _http_engine(url: str, clock: Clock, provider: SimServer, name: str, **settings: object) -> Engine:
    config = Settings(database_url=url, simulator_url=provider.url, **settings)
    return Engine(config, clock, lambda: build_adapters(config, SimOutbox(), sim_endpoint=provider.url), name=name)


def test_a_provider_slower_than_the_lease_is_not_sent_twice(harness: Harness, tiny_site: str, clock: Clock) -> None:
    """Each request takes 1.5 s, the lease is 0.5 s; a second worker and the scheduler's reconcile
    run all along. The live worker's lease is renewed, so nobody takes its batch for dead."""
    provider = SimServer(latency=1.5)
    provider.start()
    first = _http_engine(tiny_site, clock, provider, "worker-a", attempt_lease_seconds=0.5)
    second = _http_engine(tiny_site, clock, provider, "worker-b", attempt_lease_seconds=0.5)
    try:
        harness.post()
        second.tick()
        sending = threading.Thread(target=first.send_batch)
        sending.start()
        while sending.is_alive():
            second.tick()  # reconciles leases that ran out
            second.send_batch()
            time.sleep(0.05)
        sending.join()
        second.tick()
        stats = provider.stats()
        assert stats["duplicates"] == [] and stats["unique"] == 3
    finally:
        first.close()
        second.close()
        provider.stop()


def test_a_try_whose_answer_was_lost_is_looked_up_when_claimed_again(harness: Harness, tiny_site: str,
                                                                    clock: Clock) -> None:
    """No retry inside the claim (one try per hand-over): the attempt goes back to the queue and
    the next claim must ask the provider before sending it again."""
    provider = SimServer(hang_seconds=0.5)
    provider.start()
    engine = _http_engine(tiny_site, clock, provider, "worker-a", send_attempts=1)
    try:
        provider.hang_next(1, record=True)  # the provider keeps the message, the answer never comes
        harness.post()
        engine.tick()
        engine.drain()
        clock.now += timedelta(seconds=3)  # the failed try's retry time
        engine.drain()
        with transaction(tiny_site) as session:
            tried = {a.key: (a.status, a.tries) for a in session.scalars(select(AttemptRow))}
        assert sorted(provider.counts.values()) == [1, 1, 1]
        assert {status for status, _ in tried.values()} == {"sent"}
        assert sorted(t for _, t in tried.values()) == [1, 1, 2]
        for person in ("sun", "zhou", "zheng"):  # (the failed try brought 孙's next step forward: answered)
            harness.press_1(person, callout_of=person)
    finally:
        engine.close()
        provider.stop()


def test_an_acknowledgement_stops_a_claimed_call_waiting_for_its_slot(harness: Harness, tiny_site: str,
                                                                     clock: Clock) -> None:
    """Voice at one call a second: the second reminder call (周's or 郑's) waits a second behind the
    first. Its official answers by SMS while the first call is being placed; the second is not."""
    outbox = SimOutbox()
    settings = Settings(database_url=tiny_site, rate_limits="voice=1/s")
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="worker-a")
    answered: list[str] = []

    def the_other_answers(sent: Any) -> None:
        # Within the first call's hand-over, before the worker moves on: whatever the machine's load,
        # the answer is in before the second call's slot comes (a thread racing the slot was not).
        if sent.message.channel.value != "voice" or answered:
            return
        other = "zheng" if sent.message.to.person_id == "zhou" else "zhou"
        answered.append(other)
        with transaction(tiny_site) as session:
            callout = session.scalars(select(CalloutRow).where(CalloutRow.person_id == other)).one()
            ack.acknowledge_callout(session, clock(), callout.id, via=AckVia.SMS, by=other)

    outbox.subscribe(the_other_answers)
    try:
        harness.post()
        engine.tick()
        engine.drain()
        harness.reply_sms("sun", "收到")
        clock.now += timedelta(minutes=3)
        engine.tick()  # the voice reminders to zhou and zheng are queued
        engine.send_batch()
        calls = [s.message.to.person_id for s in outbox.messages() if s.message.channel.value == "voice"]
        assert len(calls) == 1 and answered == ["zheng" if calls == ["zhou"] else "zhou"]
        with transaction(tiny_site) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.channel == "voice",
                                                           AttemptRow.recipient_id == answered[0])).one()
            assert (row.status, row.error) == ("cancelled", "answered before hand-over")
    finally:
        engine.close()


def test_a_call_out_already_closed_when_its_attempt_is_claimed_is_not_sent(harness: Harness, tiny_site: str,
                                                                          clock: Clock) -> None:
    """The claim is the last look for a hand-over right after it (no second query): it reads the
    call-out's state too. Here 孙's call-out was closed without its queued alert being cancelled."""
    outbox = SimOutbox()
    settings = Settings(database_url=tiny_site)
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="worker-a")
    try:
        harness.post()
        engine.tick()
        with transaction(tiny_site) as session:
            session.execute(update(CalloutRow).where(CalloutRow.person_id == "sun").values(state="acknowledged"))
        engine.drain()
        sent_to = {s.message.to.person_id for s in outbox.messages()}
        assert "sun" not in sent_to and sent_to  # the others' alerts went
        with transaction(tiny_site) as session:
            rows = session.scalars(select(AttemptRow).where(AttemptRow.recipient_id == "sun")).all()
        assert rows and {(r.status, r.error) for r in rows} == {("cancelled", "answered before hand-over")}
    finally:
        engine.close()


def test_finishing_a_batch_whose_lease_was_taken_over_changes_nothing_but_says_so(harness: Harness,
                                                                                 tiny_site: str,
                                                                                 clock: Clock) -> None:
    harness.post()
    engine = Engine(Settings(database_url=tiny_site), clock, lambda: {}, name="scheduler")
    try:
        engine.tick()
    finally:
        engine.close()
    now = clock()
    with transaction(tiny_site) as session:
        jobs = dispatch.claim(session, now, 10, "worker-a", timedelta(seconds=60)).jobs(None)
    with transaction(tiny_site) as session:  # worker-a stalled; its lease ran out; worker-b took the batch
        session.execute(update(AttemptRow).values(status="queued", lease_until=None))
        taken = dispatch.claim(session, now, 10, "worker-b", timedelta(seconds=60)).jobs(None)
    assert {j.attempt_id for j in taken} == {j.attempt_id for j in jobs}
    outcomes = [dispatch.Outcome(j, "simulator", provider_id=f"late-{j.attempt_id}") for j in jobs]
    with transaction(tiny_site) as session:
        dispatch.finish(session, outcomes, now, "worker-a")
    with transaction(tiny_site) as session:
        rows = list(session.scalars(select(AttemptRow)))
        assert {(r.status, r.worker, r.provider_id) for r in rows} == {("sending", "worker-b", None)}
        wid = rows[0].record_id
        loud = [e for e in record_repo.events(session, wid) if e.kind == "sent_after_lease_lost"]
    assert len(loud) == 1 and len(loud[0].data["attempts"]) == 3
    assert {a["held_by"] for a in loud[0].data["attempts"]} == {"worker-b"}
