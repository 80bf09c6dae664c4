"""Password checks cannot be used to lock duty officers out, to tell user names apart, or to starve
intake (SPEC 6, Security) — through the board's login form and HTTP Basic on the API, on SQLite
and on PostgreSQL.

Argon2 is replaced here by ``StandInHasher``: a stand-in for the real 64 MiB, ~0.5 s hash that
counts its checks and, for the pool test, holds each check until the test lets it go — as a slow
Argon2 hash would. Nothing is timed: equal timing is shown by every answer taking the same path
(one check, or none), and "intake does not wait" by intake answering while the checks are held."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from argon2.exceptions import VerificationError
from fastapi.testclient import TestClient

from dispatcher.db.session import transaction
from dispatcher.services import users
from dispatcher.services.throttle import LoginThrottle
from dispatcher.services.users import Role, create_user, end_sessions_of
from tests.conftest import FIXED_NOW
from tests.integration.test_intake_api import URL, red_rainstorm

PASSWORD = "correct horse battery"
ATTACKER = ("203.0.113.66", 40000)
OFFICE = ("198.51.100.20", 50000)
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class StandInHasher:
    """Stands in for Argon2: stores ``stand-in$<password>``, counts checks, and (``hold``) keeps
    every check waiting until ``release`` is set — a slow hash, without burning the CPU."""

    def __init__(self, hold: bool = False) -> None:
        self.checks = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return "stand-in$" + password

    def verify(self, hashed: str, password: str) -> bool:
        with self._lock:
            self.checks += 1
        self.started.release()
        assert self.release.wait(60), "the test never released the held check"
        if hashed != self.hash(password):
            raise VerificationError("no match")
        return True


class ThrottleTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> StandInHasher:
    stand_in = StandInHasher()
    monkeypatch.setattr(users, "_hasher", stand_in)
    return stand_in


@pytest.fixture
def throttle_time(client: TestClient) -> ThrottleTime:
    """The app's sign-in throttle on a clock the test moves."""
    time = ThrottleTime()
    client.app.state.login_throttle = LoginThrottle(time)
    return time


@pytest.fixture
def officers(hasher: StandInHasher, database_url: str) -> None:
    with transaction(database_url) as session:
        create_user(session, "liu", Role.OFFICER, PASSWORD, FIXED_NOW)
        create_user(session, "gone", Role.OFFICER, PASSWORD, FIXED_NOW)
    with transaction(database_url) as session:
        end_sessions_of(session, "gone", FIXED_NOW, disable=True)


@pytest.fixture
def from_address(client: TestClient) -> Callable[[tuple[str, int]], TestClient]:
    """A client of the same app coming from another address."""
    def make(address: tuple[str, int]) -> TestClient:
        return TestClient(client.app, client=address)

    return make


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def board_login(http: TestClient, name: str, password: str) -> Any:
    page = http.get("/board/login")
    token = CSRF.search(page.text)
    assert token, page.text
    return http.post("/board/login", data={"name": name, "password": password, "csrf": token.group(1)},
                     follow_redirects=False)


def test_an_attacker_hammering_an_officers_name_does_not_keep_her_out(
        officers: None, throttle_time: ThrottleTime, from_address: Callable[..., TestClient]) -> None:
    """Bad input: wrong password after wrong password for "liu" from one address, waiting out each
    delay. Today's code locks the account after five, for everyone: the officer is kept out."""
    attacker, office = from_address(ATTACKER), from_address(OFFICE)
    failures = 0
    while failures < 15:
        r = board_login(attacker, "liu", f"guess {failures}")
        if r.status_code == 429:
            throttle_time.now += int(r.headers["retry-after"])  # the attacker waits, then goes on
            continue
        assert r.status_code == 401 and "用户名或密码错误" in r.text
        failures += 1
    still = board_login(attacker, "liu", PASSWORD)
    assert still.status_code == 429 and "登录尝试过多" in still.text
    assert int(still.headers["retry-after"]) >= 60  # the attacker's address is slowed down…
    assert board_login(office, "liu", PASSWORD).status_code == 303  # …the officer gets in at once
    assert office.get(URL, headers=basic("liu", PASSWORD)).status_code == 200  # and through the API


def test_an_officer_who_mistypes_during_an_attack_waits_seconds_not_minutes(
        officers: None, throttle_time: ThrottleTime, from_address: Callable[..., TestClient]) -> None:
    attacker, office = from_address(ATTACKER), from_address(OFFICE)
    for n in range(30):
        if attacker.get(URL, headers=basic("liu", f"guess {n}")).status_code == 429:
            throttle_time.now += 1000
    assert office.get(URL, headers=basic("liu", "correct horse batery")).status_code == 401  # a typo
    wait = office.get(URL, headers=basic("liu", PASSWORD))
    assert wait.status_code == 429 and 0 < int(wait.headers["retry-after"]) <= 30
    throttle_time.now += int(wait.headers["retry-after"])
    assert office.get(URL, headers=basic("liu", PASSWORD)).status_code == 200


def test_unknown_disabled_wrong_and_throttled_answers_take_the_same_path(
        officers: None, hasher: StandInHasher, throttle_time: ThrottleTime,
        from_address: Callable[..., TestClient]) -> None:
    """Bad input: telling whether a name exists from how long the answer takes. Timing is shown by
    counting hash checks (a spy, no clock): an existing name with a wrong password, an unknown name
    and a disabled account each run exactly one check and read alike; once the address is
    throttled, the existing and the unknown name run none and read alike. Today's code answers a
    locked account without hashing (6 ms) and an unknown name after a hash (470 ms)."""
    probe = from_address(ATTACKER)

    def attempt(name: str) -> tuple[int, int, Any, str | None]:
        before = hasher.checks
        r = probe.get(URL, headers=basic(name, "wrong password"))
        return r.status_code, hasher.checks - before, r.json(), r.headers.get("retry-after")

    first = {name: attempt(name) for name in ("liu", "nobody", "gone")}
    assert {v[:3] == (401, 1, {"error": "wrong user name or password"}) for v in first.values()} == {True}
    for _ in range(2):
        attempt("liu")
    throttled = {name: attempt(name) for name in ("liu", "nobody")}
    assert throttled["liu"] == throttled["nobody"]
    status, checks, body, retry_after = throttled["liu"]
    assert (status, checks, retry_after) == (429, 0, "1") and "too many sign-in attempts" in body["error"]


def test_a_full_password_pool_answers_429_and_intake_still_answers_202(
        client: TestClient, officers: None, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad input: a flood of HTTP Basic sign-ins, each an expensive Argon2 hash (here the stand-in,
    holding each check until released). Today's code runs them all, on the thread pool and in the
    write transaction that intake also needs: intake's 202 waits behind them."""
    held = StandInHasher(hold=True)
    monkeypatch.setattr(users, "_hasher", held)
    monkeypatch.setattr(users, "PASSWORD_CHECKS", users.PasswordChecks(size=2))
    answers: list[int] = []
    flood = [threading.Thread(target=lambda: answers.append(client.get(URL, headers=basic("liu", "guess")).status_code))
             for _ in range(2)]
    try:
        for thread in flood:
            thread.start()
        for _ in flood:
            assert held.started.acquire(timeout=30), "the held checks never started"
        busy = guarded(lambda: client.get(URL, headers=basic("liu", PASSWORD)))
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert guarded(lambda: board_login(client, "liu", PASSWORD)).status_code == 429
        posted = guarded(lambda: client.post(URL, json=red_rainstorm(), headers=auth))
        assert posted.status_code == 202, posted.text
        assert not held.release.is_set() and answers == []  # answered while both checks were still held
    finally:
        held.release.set()
        for thread in flood:
            thread.join(30)
    assert answers == [401, 401] and held.checks == 2


def guarded(call: Callable[[], Any], seconds: float = 20) -> Any:
    """``call()`` in a thread, failing (instead of hanging) if it never answers. Not a speed test:
    the bound only keeps the old code's behaviour, waiting for the held checks, from hanging."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, "no answer: the request waited behind the held password checks"
    return out[0]


@pytest.mark.parametrize("header", [
    "Basic 用户:密码".encode(),  # raw UTF-8 bytes in the header (not base64)
    b"Basic \xd3\xc3\xbb\xa7:\xc3\xdc\xc2\xeb",  # raw GBK bytes
    "Basic ÿÿÿÿ".encode("latin-1"),  # raw Latin-1
    b"Basic " + base64.b64encode("用户:密码".encode("gbk")),  # base64 of bytes that are not UTF-8
    b"Basic " + base64.b64encode(b"no colon"),
], ids=["raw-utf8", "raw-gbk", "raw-latin1", "base64-gbk", "no-colon"])
def test_non_ascii_basic_credentials_are_401_not_500(client: TestClient, header: bytes) -> None:
    """Bad input: non-ASCII characters in an HTTP Basic header — a 500 today for raw bytes."""
    r = client.get(URL, headers={"Authorization": header})
    assert r.status_code == 401 and r.json()["error"].startswith("malformed Basic credentials")


def test_a_utf8_user_name_signs_in(client: TestClient, hasher: StandInHasher, database_url: str) -> None:
    with transaction(database_url) as session:
        create_user(session, "值班员刘", Role.VIEWER, PASSWORD, FIXED_NOW)
    assert client.get(URL, headers=basic("值班员刘", PASSWORD)).status_code == 200


@pytest.mark.parametrize("name", ["li\x00u", "x" * 500, ""])
def test_names_no_user_can_have_are_an_ordinary_401(client: TestClient, hasher: StandInHasher, name: str) -> None:
    """Bad input: a NUL byte (PostgreSQL refuses it in a query), an overlong and an empty name."""
    r = client.get(URL, headers=basic(name, "wrong password"))
    assert (r.status_code, hasher.checks) == (401, 1)  # still one check, like any unknown name
