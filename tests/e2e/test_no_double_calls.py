"""No double calls when the field is slow: a provider that takes longer than a worker's lease, a
try whose answer was lost and that is claimed again later, an acknowledgement that arrives while a
claimed call waits for its slot, and a worker that finishes a batch whose lease was taken over.
Keys are counted at a real loopback provider (the simulator's endpoint mode) or in the outbox."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

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
    """Voice at one call a second: 郑's reminder call waits a second behind 周's. 郑 answers by SMS
    in that second; the call is not placed."""
    outbox = SimOutbox()
    settings = Settings(database_url=tiny_site, rate_limits="voice=1/s")
    engine = Engine(settings, clock, lambda: build_adapters(settings, outbox), name="worker-a")
    first_call = threading.Event()
    outbox.subscribe(lambda sent: first_call.set() if sent.message.channel.value == "voice" else None)
    try:
        harness.post()
        engine.tick()
        engine.drain()
        harness.reply_sms("sun", "收到")
        clock.now += timedelta(minutes=3)
        engine.tick()  # the voice reminders to zhou and zheng are queued

        def zheng_answers() -> None:
            assert first_call.wait(10)
            with transaction(tiny_site) as session:
                callout = session.scalars(select(CalloutRow).where(CalloutRow.person_id == "zheng")).one()
                ack.acknowledge_callout(session, clock(), callout.id, via=AckVia.SMS, by="zheng")

        answering = threading.Thread(target=zheng_answers)
        answering.start()
        engine.send_batch()
        answering.join()
        calls = [s.message.to.person_id for s in outbox.messages() if s.message.channel.value == "voice"]
        assert len(calls) == 1 and calls[0] in ("zhou", "zheng")
        stopped = "zheng" if calls == ["zhou"] else "zhou"
        with transaction(tiny_site) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.channel == "voice",
                                                           AttemptRow.recipient_id == stopped)).one()
            assert (row.status, row.error) == ("cancelled", "answered before hand-over")
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
        jobs = dispatch.claim_jobs(session, now, 10, "worker-a", timedelta(seconds=60))
    with transaction(tiny_site) as session:  # worker-a stalled; its lease ran out; worker-b took the batch
        session.execute(update(AttemptRow).values(status="queued", lease_until=None))
        taken = dispatch.claim_jobs(session, now, 10, "worker-b", timedelta(seconds=60))
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
