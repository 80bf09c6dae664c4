"""Request dependencies both edges share: settings, the clock, the read-only session, the unit of
work (a write transaction, and the runtime woken once it is committed), and the one sign-in check
that the board's login form and HTTP Basic on the API share. The API's own (agency keys, the
caller, roles) are in ``dispatcher/api/deps.py``."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.session import transaction
from ..services import users
from ..services.throttle import LoginThrottle
from ..services.users import User


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hop out of the event loop and back for every request that asks for the settings
# (11 % of the API's samples under a burst of SMS replies, bench/faults.py --scenario acks --py-spy).
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Callable[[], datetime]:
    return request.app.state.clock


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """A read-only transaction for a handler that only reads: on SQLite it takes no write lock, so
    it neither waits for a writer nor holds one up. It is closed after the response is sent
    (FastAPI's default scope for a dependency with yield) — it has nothing to commit."""
    with transaction(settings.database_url, write=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class Waker(Protocol):
    """What the unit of work wakes after a commit that created work: the embedded runtime."""

    def kick(self) -> None: ...


def kick(request: Request) -> None:
    """Wake the engine after a commit that created work (embedded mode; in production the
    scheduler's next pass picks it up)."""
    runtime: Waker | None = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.kick()


class UnitOfWork:
    """A handler's write transaction, and the wake-up of the runtime the work may call for::

        with uow as session:
            applied = cancel_event(session, warning_id, now, by)
            uow.wake()  # the engine has work to do
        # committed here, before the handler answers; the runtime was woken after the commit

    Leaving the block by an exception rolls everything back and wakes nothing; a failed commit
    raises from the ``with`` (the client gets the error, never a success). A handler may open one
    block after another, each its own transaction.

    Why a block and not a dependency with ``yield`` that commits on its way out: with FastAPI's
    default scope that code runs after the response has been sent (checked on FastAPI 0.165 — a
    202 went out, then the commit ran, and a commit that failed still left the client with its
    202). ``Depends(..., scope="function")`` runs it before the response, but then the
    transaction would span the whole handler: an HTTPException raised after the work (a 409 once
    an ignored acknowledgement has been recorded) would roll the work back, and a refusal page
    returned for a service's refusal could commit what the service had written before it refused.
    The block keeps each handler's transaction exactly where its work is.
    """

    def __init__(self, database_url: str, runtime: Waker | None = None) -> None:
        self.database_url, self.runtime = database_url, runtime
        self._open: AbstractContextManager[Session] | None = None
        self._woken = False

    def wake(self) -> None:
        """The work of this block is the engine's to carry on: wake the runtime once it is committed."""
        self._woken = True

    def __enter__(self) -> Session:
        if self._open is not None:
            raise RuntimeError("this unit of work is already open: its blocks are one after the other")
        self._woken = False
        block = transaction(self.database_url)
        session = block.__enter__()
        self._open = block
        return session

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        block, self._open = self._open, None
        assert block is not None
        block.__exit__(kind, error, trace)  # commits, or rolls back; raises if the commit fails
        if kind is None and self._woken and self.runtime is not None:
            self.runtime.kick()


async def unit_of_work(request: Request, settings: SettingsDep) -> UnitOfWork:
    """Async: it only makes the object (nothing is opened until ``with``), and a plain def would
    cost every request that writes a trip through the thread pool."""
    return UnitOfWork(settings.database_url, getattr(request.app.state, "runtime", None))


UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt's outcome: the user, or none — and if ``retry_after`` (seconds) is set,
    the attempt was not checked at all (too many failures, or every password check busy): 429."""

    user: User | None = None
    retry_after: int = 0


def sign_in(request: Request, name: str, password: str) -> SignIn:
    """Check a name and password — the board's login form and HTTP Basic both come here.

    A throttled attempt (``LoginThrottle``) is answered before the user is looked up or any hash
    is run, the same for every name; every other attempt runs exactly one Argon2 check (against a
    dummy hash for an unknown name), on ``users.PASSWORD_CHECKS``, outside any transaction."""
    throttle = login_throttle(request.app)
    address = request.client.host if request.client else ""
    wait = throttle.wait(address, name)
    if wait > 0:
        return SignIn(retry_after=math.ceil(wait))
    with transaction(request.app.state.settings.database_url, write=False) as session:
        login = users.find_login(session, name)
    try:
        ok = users.PASSWORD_CHECKS.check(login.password_hash if login else None, password)
    except users.PasswordChecksBusy as busy:
        return SignIn(retry_after=busy.retry_after)
    if login is None or not ok:
        throttle.failed(address, name)
        return SignIn()
    throttle.succeeded(address, name)
    return SignIn(user=login.user)


_THROTTLE_LOCK = threading.Lock()


def login_throttle(app: FastAPI) -> LoginThrottle:
    """The app's sign-in throttle, made on first use (kept in memory: one per process)."""
    with _THROTTLE_LOCK:
        throttle = getattr(app.state, "login_throttle", None)
        if throttle is None:
            throttle = app.state.login_throttle = LoginThrottle()
        return throttle
