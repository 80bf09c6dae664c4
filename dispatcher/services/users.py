"""Duty-officer accounts: viewer < officer < admin. Passwords hashed with Argon2id; repeated
failures lock the account for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.tables import UserRow

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
