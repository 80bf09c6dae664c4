"""The shared pacing meter in a real Redis: workers reserving at the same time never get slots
closer than the rate allows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dispatcher.domain.channels import Channel
from dispatcher.domain.limits import parse_limits
from dispatcher.runtime.limits import MARGIN, RedisPacer
from tests.support.servers import Redis, start_redis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    yield server
    server.stop()


def test_concurrent_workers_share_one_meter(redis_server: Redis) -> None:
    limits = parse_limits("voice=50/s")
    pacers = [RedisPacer(limits, redis_server.url, prefix="t1:") for _ in range(4)]
    slots: list[float] = []
    lock = threading.Lock()

    def worker(pacer: RedisPacer) -> None:
        for _ in range(10):
            s = pacer.reserve(Channel.VOICE, 3, horizon=5.0)
            end = float(s.end)
            with lock:  # absolute slot times on Redis's clock
                slots.extend(end - (s.granted - i) * s.spacing for i in range(s.granted))

    threads = [threading.Thread(target=worker, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots.sort()
    assert len(slots) == 120
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.02 / MARGIN, abs=5e-6)  # the meter keeps microseconds


def test_unused_slots_go_back_only_if_nobody_reserved_after(redis_server: Redis) -> None:
    pacer = RedisPacer(parse_limits("im=20/min"), redis_server.url, prefix="t2:")
    first = pacer.reserve(Channel.IM, 5, horizon=30.0)
    pacer.release(Channel.IM, first, used=2)
    second = pacer.reserve(Channel.IM, 1, horizon=30.0)
    assert second.first_in == pytest.approx(first.first_in + 2 * 3.0 / MARGIN, abs=0.05)  # after the 2 used
    third = pacer.reserve(Channel.IM, 1, horizon=30.0)
    pacer.release(Channel.IM, second, used=0)  # too late: 'third' reserved after it — a gap is kept
    fourth = pacer.reserve(Channel.IM, 1, horizon=30.0)
    assert fourth.first_in == pytest.approx(third.first_in + 3.0 / MARGIN, abs=0.05)
