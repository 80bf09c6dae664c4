"""Request dependencies: settings, clock, database sessions, the calling agency's key, and the
one sign-in check that the board's login form and HTTP Basic on the API share."""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.session import transaction
from ..services import users
from ..services.keys import AgencyKey, authenticate, mark_used
from ..services.throttle import LoginThrottle
from ..services.users import Role, User


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Callable[[], datetime]:
    return request.app.state.clock


def get_session(settings: Annotated[Settings, Depends(get_settings_dep)]) -> Iterator[Session]:
    with transaction(settings.database_url) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_session)]


def agency_key(request: Request, settings: SettingsDep, clock: ClockDep) -> AgencyKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "an agency API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    with transaction(settings.database_url, write=False) as session:
        key = authenticate(session, token.strip())
    if key is None:
        raise HTTPException(401, "the API key is not valid (unknown or revoked)",
                            headers={"WWW-Authenticate": "Bearer"})
    now = clock()
    if not key.used_since(now - timedelta(minutes=1)):
        with transaction(settings.database_url) as session:
            mark_used(session, key, now)
    return key


KeyDep = Annotated[AgencyKey, Depends(agency_key)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: an agency (API key) or a duty officer (HTTP Basic)."""

    key: AgencyKey | None = None
    user: User | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.user.name}" if self.user else self.key.actor if self.key else "anonymous"

    @property
    def scope(self) -> AgencyKey | None:
        """The key that limits what may be seen: agencies see their own warnings, users all."""
        return None if self.user else self.key


_CHALLENGE = {"WWW-Authenticate": 'Bearer, Basic realm="jiaoying"'}


def caller(request: Request, settings: SettingsDep, clock: ClockDep) -> Caller:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return Caller(key=agency_key(request, settings, clock))
    if scheme.lower() == "basic":
        name, password = _basic(credentials)
        outcome = sign_in(request, name, password)
        if outcome.retry_after:
            raise HTTPException(429, f"too many sign-in attempts; try again in {outcome.retry_after} s",
                                headers={"Retry-After": str(outcome.retry_after)})
        if outcome.user is None:
            raise HTTPException(401, "wrong user name or password", headers=_CHALLENGE)
        return Caller(user=outcome.user)
    raise HTTPException(401, "credentials are required: an agency key (Bearer) or a user (Basic)",
                        headers=_CHALLENGE)


def _basic(credentials: str) -> tuple[str, str]:
    """``name:password`` from Basic credentials: base64 of UTF-8. Anything else (non-ASCII in the
    header, bad base64, bytes that are not UTF-8, no colon) is a 401, never a 500."""
    try:
        name, colon, password = base64.b64decode(credentials.strip().encode("ascii")).decode("utf-8").partition(":")
    except ValueError:  # UnicodeError and binascii.Error are ValueErrors
        name, colon, password = "", "", ""
    if not colon:
        raise HTTPException(401, "malformed Basic credentials: base64 of name:password (UTF-8) is expected",
                            headers=_CHALLENGE)
    return name, password


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


CallerDep = Annotated[Caller, Depends(caller)]


def officer(who: CallerDep) -> Caller:
    return _require(who, Role.OFFICER)


def admin(who: CallerDep) -> Caller:
    return _require(who, Role.ADMIN)


def _require(who: Caller, role: Role) -> Caller:
    if who.user is None:
        raise HTTPException(403, f"this needs a duty-officer login with the {role.value} role, not an agency key")
    if not who.user.may(role):
        raise HTTPException(403, f"user {who.user.name} ({who.user.role.value}) may not do this: "
                                 f"it needs the {role.value} role")
    return who


OfficerDep = Annotated[Caller, Depends(officer)]
AdminDep = Annotated[Caller, Depends(admin)]


def kick(request: Request) -> None:
    """Wake the engine after a commit that created work (embedded mode; in production the
    scheduler's next pass picks it up)."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.kick()
