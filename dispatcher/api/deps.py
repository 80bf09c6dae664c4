"""Request dependencies: settings, clock, database sessions and the calling agency's key."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.session import transaction
from ..services import users
from ..services.keys import AgencyKey, authenticate, mark_used
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
        return f"user:{self.user.name}" if self.user else f"agency:{self.key.agency}" if self.key else "anonymous"

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
        try:
            name, _, password = base64.b64decode(credentials.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "malformed Basic credentials", headers=_CHALLENGE) from None
        with transaction(settings.database_url) as session:
            user = users.authenticate(session, name, password, clock())
        if user is None:
            raise HTTPException(401, "wrong user name or password, or the account is locked", headers=_CHALLENGE)
        return Caller(user=user)
    raise HTTPException(401, "credentials are required: an agency key (Bearer) or a user (Basic)",
                        headers=_CHALLENGE)


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
