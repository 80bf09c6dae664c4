"""The pacing meter and the circuit breaker, on a clock the test moves."""

from __future__ import annotations

from dispatcher.channels.resilience import BreakerState, CircuitBreaker
from dispatcher.domain.channels import Channel
from dispatcher.domain.limits import RateLimit, parse_limits
from dispatcher.runtime.limits import MARGIN, MemoryPacer


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_slots_are_spaced_at_the_rate_and_reach_only_the_horizon_ahead() -> None:
    t = FakeTime()
    pacer = MemoryPacer({Channel.VOICE: RateLimit(3, 1)}, now=t)
    first = pacer.reserve(Channel.VOICE, 100, horizon=2.0)
    spacing = 1 / (3 * MARGIN)  # paced 2 % under the limit
    assert first.granted == 6  # slots at 0, 0.34, …, 1.70 s: the next would be past the horizon
    assert [round(first.delay(i), 3) for i in range(3)] == [0.0, round(spacing, 3), round(2 * spacing, 3)]
    second = pacer.reserve(Channel.VOICE, 100, horizon=2.0)
    assert second.granted == 0  # the next free slot is beyond the horizon
    t.t += 1.0
    third = pacer.reserve(Channel.VOICE, 2, horizon=2.0)
    assert third.granted == 2 and round(third.first_in, 3) == round(6 * spacing - 1.0, 3)


def test_two_workers_sharing_a_pacer_never_get_the_same_slot() -> None:
    t = FakeTime()
    pacer = MemoryPacer({Channel.SMS: RateLimit(10, 1)}, now=t)
    a = pacer.reserve(Channel.SMS, 5)
    b = pacer.reserve(Channel.SMS, 5)
    times = sorted([a.delay(i) for i in range(a.granted)] + [b.delay(i) for i in range(b.granted)])
    assert all(round(y - x, 6) >= round(0.1 / MARGIN, 6) for x, y in zip(times, times[1:], strict=False))


def test_unused_slots_are_handed_back_when_nobody_reserved_after() -> None:
    t = FakeTime()
    pacer = MemoryPacer({Channel.IM: RateLimit(20, 60)}, now=t)
    slots = pacer.reserve(Channel.IM, 10, horizon=30.0)
    assert slots.granted == 10
    pacer.release(Channel.IM, slots, used=1)  # only one attempt was queued
    again = pacer.reserve(Channel.IM, 1, horizon=30.0)
    assert again.granted == 1 and round(again.first_in, 3) == round(3.0 / MARGIN, 3)  # right after the used slot


def test_a_channel_without_a_limit_is_not_paced() -> None:
    pacer = MemoryPacer(parse_limits("voice=1/s"))
    assert pacer.reserve(Channel.SMS, 500).first_in == 0.0


def test_the_breaker_opens_after_repeated_failures_and_a_trial_closes_it() -> None:
    t = FakeTime()
    breaker = CircuitBreaker(threshold=3, cooldown=30, now=t)
    for _ in range(3):
        assert breaker.allow(Channel.VOICE)
        breaker.record(Channel.VOICE, ok=False)
    assert breaker.state(Channel.VOICE) is BreakerState.OPEN and not breaker.allow(Channel.VOICE)
    t.t += 31
    assert breaker.allow(Channel.VOICE)  # one trial …
    assert not breaker.allow(Channel.VOICE)  # … at a time
    breaker.record(Channel.VOICE, ok=True)
    assert breaker.state(Channel.VOICE) is BreakerState.CLOSED
