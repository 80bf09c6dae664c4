"""SMS replies taken in batches (services.replies): replies arriving together are written in one
transaction, in arrival order, with the same outcomes as one by one — a duplicate of a message in
the same batch, a reply that is not a confirmation, an unknown number, a code."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import func, select, text

from dispatcher.api.replies import ReplyBatcher
from dispatcher.db import record_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import CalloutRow, InboundRow
from dispatcher.runtime.engine import Engine
from dispatcher.services.replies import IncomingReply
from tests.support.harness import Harness

PHONE = {"sun": "+8613800000003", "zhou": "+8613800000005", "zheng": "+8613800000007"}


def test_replies_arriving_together_are_taken_in_order_with_their_own_outcomes(harness: Harness,
                                                                              engine: Engine) -> None:
    wid = harness.post()
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
    batcher = ReplyBatcher(harness.url, harness.now)
    with transaction(harness.url) as session:  # 郑 answers with his call-out's code
        zheng_code = session.get(CalloutRow, harness.callout("zheng")["id"]).ack_code
    replies = [
        IncomingReply(PHONE["sun"], "收到", "SM1"),
        IncomingReply(PHONE["sun"], "收到", "SM1"),  # bad input: the provider delivered the same webhook twice
        IncomingReply(PHONE["zhou"], "什么情况？", "SM2"),  # not a confirmation
        IncomingReply("+8613899999999", "1", "SM3"),  # bad input: a number nobody on the roster has
        IncomingReply(PHONE["zheng"], f"确认 {zheng_code}", "SM4"),
        IncomingReply(PHONE["sun"], "好的", "SM5"),  # a second answer: 孙's call-out is already closed
    ]

    async def together() -> list:
        return await asyncio.gather(*(batcher.take(r) for r in replies))

    outcomes = asyncio.run(together())
    results = [o.result.outcome if o.result else None for o in outcomes]
    assert results == ["acknowledged", "duplicate", None, "unknown_sender", "acknowledged", "already_acknowledged"]
    assert [o.confirms for o in outcomes] == [True, True, False, True, True, True]
    assert harness.states() == {"sun": "acknowledged", "zhou": "notified", "zheng": "acknowledged"}
    with transaction(harness.url) as session:
        kept = session.scalar(select(func.count()).select_from(InboundRow))
        kinds = [e.kind for e in record_repo.events(session, wid)]
        assert record_repo.verify(session, wid) == []
    assert kept == 5  # every reply once, the duplicate not at all
    assert kinds.count("acknowledged") == 2 and kinds.count("inbound_sms") == 4
    harness.reply_sms("zhou", "收到")


def test_a_reply_concerns_the_current_call_outs_not_every_past_one(harness: Harness, engine: Engine) -> None:
    """An official's history must not answer for today: a "收到" to this week's warning must not close
    (late) last week's unreached call-outs that 孙 was asked about as their superior, nor write
    "answer ignored" onto the record of every warning he ever acknowledged — which also made every
    reply's work grow with the years (the production acknowledgement bench: ~200 old attempts a person)."""
    old = harness.post(identifier="OLD-ACKED")
    harness.expect("sun", "sms", "alert")
    assert harness.reply_sms("sun", "收到").outcome == "acknowledged"  # last week: 孙 answered …
    harness.advance(hours=2)  # … 周 and 郑 never did: unreached, and 孙 was asked about them
    assert {harness.states()[p] for p in ("zhou", "zheng")} == {"unreached"}
    harness.advance(days=8)
    new = harness.post(identifier="NEW")
    harness.expect("sun", "sms", "alert")
    result = harness.reply_sms("sun", "收到")
    assert result.outcome == "acknowledged" and result.records == [new]
    with transaction(harness.url) as session:
        old_kinds = [e.kind for e in record_repo.events(session, old)]
    assert "ack_ignored" not in old_kinds  # the old record is left as it was
    # a second "收到" today: already acknowledged (today's), not "nothing open"
    assert harness.reply_sms("sun", "收到").outcome == "already_acknowledged"
    harness.settle()
    harness.unclaimed.clear()  # the rest of both ladders (周 and 郑 are still being chased today)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # row locks and deadlocks: PostgreSQL's
def test_a_batch_that_loses_a_deadlock_is_written_again_not_lost(harness: Harness, engine: Engine) -> None:
    """Two writers lock two records' heads the other way round (a reply batch in one API process,
    another writer on another connection): PostgreSQL breaks the circle by rolling one back. The
    batch it rolled back must be written again — Twilio does not retry its webhook, so a failed
    batch was an official's "收到" lost and the ladder calling their deputy."""
    real = harness.post()
    drill = harness.post(identifier="D-1", drill=True)  # a drill never takes over a real call-out: two records
    for person in ("sun", "zhou", "zheng"):
        harness.expect(person, "sms", "alert")
        harness.expect(person, "sms", "alert")
    with transaction(harness.url) as session:  # 孙 answers the real warning, 周 the drill, by their codes
        codes = dict(session.execute(select(CalloutRow.warning_id, CalloutRow.ack_code).where(
            ((CalloutRow.person_id == "sun") & (CalloutRow.warning_id == real))
            | ((CalloutRow.person_id == "zhou") & (CalloutRow.warning_id == drill)))).all())
    replies = [IncomingReply(PHONE["sun"], f"收到 {codes[real]}", "SM-D1"),
               IncomingReply(PHONE["zhou"], f"收到 {codes[drill]}", "SM-D2")]
    first, second = sorted((real, drill))
    batcher = ReplyBatcher(harness.url, harness.now)
    taken: list[object] = []
    with transaction(harness.url) as other:
        other.execute(text("SET LOCAL deadlock_timeout = '10s'"))  # the batch's detector runs first
        mine = other.scalar(text("SELECT pg_backend_pid()"))
        record_repo.append_event(other, second, "recall", "liu", harness.now(), {"note": "holds the second head"})
        worker = threading.Thread(target=lambda: taken.append(_outcomes(batcher, replies)))
        worker.start()
        waiting = f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> {mine}"
        for _ in range(200):  # the batch holds the first head and waits for the second
            with transaction(harness.url, write=False) as look:
                if look.scalar(text(waiting)):
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the reply batch never waited for the second record's head")
        # now this writer wants the first head: a circle, which PostgreSQL breaks by rolling the batch back
        record_repo.append_event(other, first, "recall", "liu", harness.now(), {"note": "wants the first head"})
    worker.join(timeout=30)
    assert len(taken) == 1 and not isinstance(taken[0], BaseException), taken
    outcomes = taken[0]
    assert isinstance(outcomes, list)
    assert [(o.result.outcome, o.result.records) for o in outcomes] == [("acknowledged", [real]),
                                                                        ("acknowledged", [drill])]
    with transaction(harness.url) as session:
        for record in (first, second):
            assert record_repo.verify(session, record) == []
            assert [e.kind for e in record_repo.events(session, record)].count("acknowledged") == 1
    harness.settle()
    harness.unclaimed.clear()  # the others' ladders


def _outcomes(batcher: ReplyBatcher, replies: list[IncomingReply]) -> object:
    async def together() -> list[object]:
        return list(await asyncio.gather(*(batcher.take(r) for r in replies)))

    try:
        return asyncio.run(together())
    except BaseException as exc:  # the test reports it
        return exc
