"""The last look before a hand-over (services/handover.py): the claim counts as a look for a moment,
an older look is repeated with one query for everyone waiting, and a stop found by either holds."""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatcher.services.handover import ANSWERED, FRESH, LEASE_LOST, HandOverGuard, HandOverStopped


class Database:
    """The check's answers, and how often it was asked (a stand-in for stops_before_hand_over)."""

    def __init__(self, stops: dict[int, str] | None = None) -> None:
        self.stops = dict(stops or {})
        self.asked: list[list[int]] = []

    def check(self, ids: list[int]) -> dict[int, str]:
        self.asked.append(ids)
        return {i: self.stops[i] for i in ids if i in self.stops}


def test_a_hand_over_right_after_its_claim_needs_no_second_query() -> None:
    db = Database()
    guard = HandOverGuard(db.check)
    guard.looked(1, time.monotonic())
    asyncio.run(guard.clear(1))
    assert db.asked == []


def test_an_older_look_is_repeated_and_an_answer_since_then_stops_the_hand_over() -> None:
    db = Database({1: ANSWERED})  # answered after its claim, which was FRESH seconds ago or more
    guard = HandOverGuard(db.check)
    guard.looked(1, time.monotonic() - FRESH - 0.01)
    with pytest.raises(HandOverStopped) as stopped:
        asyncio.run(guard.clear(1))
    assert stopped.value.reason == ANSWERED and db.asked == [[1]]


def test_a_call_out_closed_when_claimed_is_stopped_without_a_query() -> None:
    db = Database()
    guard = HandOverGuard(db.check)
    guard.looked(1, time.monotonic(), ANSWERED)
    with pytest.raises(HandOverStopped):
        asyncio.run(guard.clear(1))
    assert db.asked == []


def test_waiting_hand_overs_share_one_query_and_its_answer_is_a_fresh_look() -> None:
    db = Database({3: LEASE_LOST})

    async def run() -> list[str | None]:
        guard = HandOverGuard(db.check)

        async def one(i: int) -> str | None:
            try:
                await guard.clear(i)
            except HandOverStopped as stop:
                return stop.reason
            return None

        first = await asyncio.gather(*(one(i) for i in (1, 2, 3)))
        again = await asyncio.gather(one(1), one(3))  # within FRESH of that query: no new one
        return [*first, *again]

    assert asyncio.run(run()) == [None, None, LEASE_LOST, None, LEASE_LOST]
    assert db.asked == [[1, 2, 3]]


def test_without_a_look_every_hand_over_is_checked() -> None:
    db = Database()
    guard = HandOverGuard(db.check)
    asyncio.run(guard.clear(7))
    assert db.asked == [[7]]
