"""Duty-officer accounts: viewer < officer < admin. Passwords hashed with Argon2id; repeated
failures lock the account for a while. Board sign-ins are kept server-side, so one can be ended
(sign out, ``jiaoying users sign-out``, disabling the account) before its cookie expires."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..db.tables import BoardSessionRow, UserRow

_hasher = PasswordHasher()
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# A hash to verify against when the user does not exist, so timing does not reveal names.
_DUMMY = _hasher.hash("not a password")


class Role(StrEnum):
    VIEWER = "viewer"
    OFFICER = "officer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 1, "officer": 2, "admin": 3}[self.value]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return self.role.rank >= needed.rank


def create_user(session: Session, name: str, role: Role, password: str, now: datetime) -> User:
    if not name.strip():
        raise ValueError("the user name must not be empty")
    if len(password) < 10:
        raise ValueError("the password must have at least 10 characters")
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ValueError(f"user {name!r} already exists")
    row = UserRow(name=name, role=role.value, password_hash=_hasher.hash(password), created_at=now)
    session.add(row)
    session.flush()
    return User(row.id, row.name, Role(row.role))


def authenticate(session: Session, name: str, password: str, now: datetime) -> User | None:
    row = session.scalars(select(UserRow).where(UserRow.name == name, UserRow.active)).first()
    if row is None:
        _verify(_DUMMY, password)
        return None
    if row.locked_until is not None and row.locked_until > now:
        return None
    if not _verify(row.password_hash, password):
        row.failed_logins += 1
        if row.failed_logins >= MAX_FAILURES:
            row.locked_until, row.failed_logins = now + LOCKOUT, 0
        return None
    row.failed_logins, row.locked_until = 0, None
    return User(row.id, row.name, Role(row.role))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _session_id(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()  # a leaked table does not give the cookies


def start_session(session: Session, user: User, nonce: str, now: datetime, ttl: timedelta) -> None:
    session.add(BoardSessionRow(id=_session_id(nonce), user_id=user.id, created_at=now, expires_at=now + ttl))


def session_user(session: Session, user_id: int, nonce: str, now: datetime) -> User | None:
    """The user of a live sign-in: not ended, not expired, the account active."""
    found = session.execute(
        select(UserRow).join(BoardSessionRow, BoardSessionRow.user_id == UserRow.id).where(
            BoardSessionRow.id == _session_id(nonce), BoardSessionRow.user_id == user_id,
            BoardSessionRow.ended_at.is_(None), BoardSessionRow.expires_at > now, UserRow.active)).scalar()
    return None if found is None else User(found.id, found.name, Role(found.role))


def end_session(session: Session, nonce: str, now: datetime) -> None:
    session.execute(update(BoardSessionRow).where(BoardSessionRow.id == _session_id(nonce),
                                                  BoardSessionRow.ended_at.is_(None)).values(ended_at=now))


def end_sessions_of(session: Session, name: str, now: datetime, disable: bool = False) -> int:
    """End every open sign-in of ``name`` (a lost laptop, a shift handed over); with ``disable``
    the account cannot sign in again until re-created. ValueError if there is no such user."""
    row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
    if row is None:
        raise ValueError(f"no user {name!r}")
    if disable:
        row.active = False
    ended = session.execute(update(BoardSessionRow).where(
        BoardSessionRow.user_id == row.id, BoardSessionRow.ended_at.is_(None),
        BoardSessionRow.expires_at > now).values(ended_at=now))
    return int(ended.rowcount or 0)
