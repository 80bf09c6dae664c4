"""Request dependencies: settings, clock, database sessions and the calling agency's key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.session import transaction
from ..services.keys import AgencyKey, authenticate


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
    with transaction(settings.database_url) as session:
        key = authenticate(session, token.strip(), clock())
    if key is None:
        raise HTTPException(401, "the API key is not valid (unknown or revoked)",
                            headers={"WWW-Authenticate": "Bearer"})
    return key


KeyDep = Annotated[AgencyKey, Depends(agency_key)]
