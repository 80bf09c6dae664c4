"""The API's own request dependencies: the calling agency's key, the caller (an agency key or a
duty officer over HTTP Basic) and the roles a route needs. What the API shares with the board —
settings, clock, sessions, the unit of work, ``kick`` and the sign-in check — is in
``dispatcher/web/deps.py``, and importable from here as it always was."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..db.session import transaction
from ..services.keys import AgencyKey, authenticate, mark_used
from ..services.users import Role, User
from ..web.deps import (
    ClockDep,
    SessionDep,
    SettingsDep,
    SignIn,
    UnitOfWork,
    UnitOfWorkDep,
    get_clock,
    get_session,
    get_settings_dep,
    kick,
    login_throttle,
    sign_in,
    unit_of_work,
)

__all__ = ["AdminDep", "Caller", "CallerDep", "ClockDep", "KeyDep", "OfficerDep", "SessionDep", "SettingsDep",
           "SignIn", "UnitOfWork", "UnitOfWorkDep", "admin", "agency_key", "caller", "get_clock", "get_session",
           "get_settings_dep", "kick", "login_throttle", "officer", "sign_in", "unit_of_work"]


def agency_key(request: Request, settings: SettingsDep, clock: ClockDep) -> AgencyKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "an agency API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    # Its own short transactions: a read for every request, a write at most once a minute per key.
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


CallerDep = Annotated[Caller, Depends(caller)]


async def officer(who: CallerDep) -> Caller:  # no I/O: not through the thread pool
    return _require(who, Role.OFFICER)


async def admin(who: CallerDep) -> Caller:
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

