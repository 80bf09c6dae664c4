"""SMS replies taken in batches (services.replies): replies arriving together are written in one
transaction, in arrival order, with the same outcomes as one by one — a duplicate of a message in
the same batch, a reply that is not a confirmation, an unknown number, a code."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

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
