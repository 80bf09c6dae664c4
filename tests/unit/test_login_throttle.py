"""The sign-in throttle on a clock the test moves: backoff per address and per name, no lockout."""

from __future__ import annotations

from dispatcher.services.throttle import LoginThrottle


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: LoginThrottle, address: str, name: str, times: int) -> None:
    for _ in range(times):
        throttle.failed(address, name)


def test_an_address_gets_five_free_failures_then_waits_twice_as_long_each_time() -> None:
    """Bad input: one address guessing, over and over."""
    time = FakeTime()
    throttle = LoginThrottle(time, address_cap=60)
    fail(throttle, "203.0.113.66", "nobody-1", 4)
    assert throttle.wait("203.0.113.66", "nobody-2") == 0
    waits = []
    for n in range(5, 13):
        throttle.failed("203.0.113.66", f"nobody-{n}")  # a different name each time: the address still counts
        waits.append(throttle.wait("203.0.113.66", "anyone"))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]  # capped
    time.now += 59
    assert throttle.wait("203.0.113.66", "anyone") == 1


def test_a_name_slows_only_the_addresses_that_failed_on_it() -> None:
    """Bad input: wrong passwords for one officer's name, from many addresses (a botnet)."""
    time = FakeTime()
    throttle = LoginThrottle(time, name_cap=30)
    for bot in range(20):
        throttle.failed(f"198.18.0.{bot}", "liu")
    assert throttle.wait("198.18.0.3", "liu") == 30  # each bot is held back on that name (capped)…
    assert throttle.wait("198.18.0.3", "chen") == 0  # …not on other names (1 failure of its own)…
    assert throttle.wait("198.51.100.20", "liu") == 0  # …and the officer's own address never


def test_an_officer_who_mistypes_during_an_attack_waits_at_most_the_name_cap() -> None:
    time = FakeTime()
    throttle = LoginThrottle(time, name_cap=30)
    fail(throttle, "203.0.113.66", "liu", 40)
    throttle.failed("198.51.100.20", "liu")  # a typo
    assert throttle.wait("198.51.100.20", "liu") == 30
    time.now += 30
    assert throttle.wait("198.51.100.20", "liu") == 0
    throttle.succeeded("198.51.100.20", "liu")
    fail(throttle, "203.0.113.66", "liu", 1)  # the attacker goes on; the officer's mark is gone
    assert throttle.wait("198.51.100.20", "liu") == 0


def test_a_success_does_not_buy_an_address_more_guesses() -> None:
    """Bad input: an insider guessing liu's password, signing in to his own account in between."""
    time = FakeTime()
    throttle = LoginThrottle(time)
    fail(throttle, "203.0.113.66", "mallory", 1)  # his own typo
    fail(throttle, "203.0.113.66", "liu", 6)
    throttle.succeeded("203.0.113.66", "mallory")  # takes back his typo only
    assert throttle.wait("203.0.113.66", "liu") == 2
    assert throttle.wait("203.0.113.66", "mallory") == 2


def test_an_office_behind_one_address_does_not_pile_up_its_typos() -> None:
    """Officers of one county office share a NAT address: each mistypes, then gets it right."""
    time = FakeTime()
    throttle = LoginThrottle(time)
    for n in range(20):
        officer = f"officer-{n}"
        fail(throttle, "198.51.100.1", officer, 2)
        assert throttle.wait("198.51.100.1", officer) == 0
        throttle.succeeded("198.51.100.1", officer)
    assert throttle.wait("198.51.100.1", "officer-20") == 0


def test_failures_are_forgotten_an_hour_after_the_last() -> None:
    time = FakeTime()
    throttle = LoginThrottle(time, address_cap=900, forget_after=3600)
    fail(throttle, "203.0.113.66", "liu", 30)
    time.now += 3599
    throttle.failed("203.0.113.66", "liu")
    assert throttle.wait("203.0.113.66", "liu") == 900  # still remembered: straight back to the cap
    time.now += 3600
    throttle.failed("203.0.113.66", "liu")
    assert throttle.wait("203.0.113.66", "liu") == 0  # forgotten: counting starts again from one


def test_memory_is_bounded_however_many_names_and_addresses_are_tried() -> None:
    """Bad input: a spray of random names from random addresses, to fill the process's memory."""
    throttle = LoginThrottle(FakeTime(), max_tracked=100, max_per_name=10)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", f"name-{n}")
        throttle.failed(f"10.1.{n // 256}.{n % 256}", "liu")
    assert len(throttle._addresses) == 100 and len(throttle._names) == 100
    assert len(throttle._names["liu"].by_address) == 10


def test_a_huge_count_does_not_overflow() -> None:
    throttle = LoginThrottle(FakeTime(), address_cap=900)
    tally = throttle._addresses
    throttle.failed("203.0.113.66", "liu")
    tally["203.0.113.66"].count = 10**6
    assert throttle.wait("203.0.113.66", "liu") == 900
