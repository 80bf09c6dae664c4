"""Duty-officer accounts: viewer < officer < admin. Passwords hashed with Argon2id and checked on
a small thread pool of their own (``PASSWORD_CHECKS``); repeated failures are slowed down per
address and per name by ``throttle.LoginThrottle``, never by locking the account. Board sign-ins
are kept server-side, so one can be ended (sign out, ``jiaoying users sign-out``, a new password,
disabling the account) before its cookie expires."""

from __future__ import annotations

import functools
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..db.tables import BoardSessionRow, UserRow

_hasher = PasswordHasher()
MAX_NAME = 64  # users.name is VARCHAR(64)
MIN_PASSWORD = 10


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


def check_password(password: str) -> None:
    """The rules every new password meets (``users create`` and ``users passwd``): ValueError if not."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")


def create_user(session: Session, name: str, role: Role, password: str, now: datetime) -> User:
    if not name.strip():
        raise ValueError("the user name must not be empty")
    if len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"the user name must have at most {MAX_NAME} characters and no control characters")
    check_password(password)
    if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
        raise ValueError(f"user {name!r} already exists")
    row = UserRow(name=name, role=role.value, password_hash=_hasher.hash(password), created_at=now)
    session.add(row)
    session.flush()
    return User(row.id, row.name, Role(row.role))


@dataclass(frozen=True)
class Login:
    user: User
    password_hash: str


def find_login(session: Session, name: str) -> Login | None:
    """The active user called ``name`` and its password hash; None for no such user, a disabled
    one, or a name no user can have (empty, too long, control characters such as NUL)."""
    if not (0 < len(name) <= MAX_NAME and name.isprintable()):
        return None
    row = session.scalars(select(UserRow).where(UserRow.name == name, UserRow.active)).first()
    return None if row is None else Login(User(row.id, row.name, Role(row.role)), row.password_hash)


class PasswordChecksBusy(Exception):
    """Every password-check thread is taken: the caller answers 429 and the client comes back."""

    retry_after = 1  # seconds: one Argon2 check takes well under one


class PasswordChecks:
    """Argon2 checks (64 MiB and 0.2–0.5 s of one core each) on ``size`` threads of their own, never
    on the thread pool that request handlers and intake share. A check that finds every thread
    busy is refused at once (``PasswordChecksBusy``) rather than queued, so at most ``size``
    requests ever wait for one, and a flood of sign-ins costs at most ``size`` cores."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="jiaoying-password")

    def check(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``. ``None`` (no such user) is checked
        against a dummy hash, so that it takes as long as a wrong password, and is never a match
        (not even for the dummy's own password). Waits for the result."""
        if not self._slots.acquire(blocking=False):
            raise PasswordChecksBusy()
        try:
            done = self._threads.submit(_verify, password_hash, password)
        except BaseException:
            self._slots.release()
            raise
        done.add_done_callback(lambda _: self._slots.release())  # when the hash ends, not the wait
        return done.result()

    def prepare(self) -> None:
        """Make the dummy hash in the background (the web app calls this as it starts), so the
        first sign-in with an unknown name takes no longer than one with a wrong password."""
        self._threads.submit(_dummy_hash, _hasher)


PASSWORD_CHECKS = PasswordChecks()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against when the user does not exist, so timing does not reveal names. Made
    on first need, not at import: one Argon2 hash is 0.2–0.5 s of CPU, which every process importing
    this module (each CLI command, each engine process) paid for nothing."""
    return hasher.hash("not a password")


def _verify(hashed: str | None, password: str) -> bool:
    try:
        if not hashed:  # no such user: the same work as a wrong password, and never a match
            _hasher.verify(_dummy_hash(_hasher), password)
            return False
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


def _user_row(session: Session, name: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
    if row is None:
        raise ValueError(f"no user {name!r}")
    return row


def check_user(session: Session, name: str) -> None:
    """ValueError if there is no user ``name`` (asked before a password is typed for it)."""
    _user_row(session, name)


def _end_open_sessions(session: Session, user_id: int, now: datetime) -> int:
    ended = session.execute(update(BoardSessionRow).where(
        BoardSessionRow.user_id == user_id, BoardSessionRow.ended_at.is_(None),
        BoardSessionRow.expires_at > now).values(ended_at=now))
    return int(ended.rowcount or 0)


def end_sessions_of(session: Session, name: str, now: datetime, disable: bool = False) -> int:
    """End every open sign-in of ``name`` (a lost laptop, a shift handed over); with ``disable``
    the account cannot sign in again until enabled (``set_active``). ValueError if there is no
    such user."""
    row = _user_row(session, name)
    if disable:
        row.active = False
    return _end_open_sessions(session, row.id, now)


def set_active(session: Session, name: str, active: bool, now: datetime) -> int:
    """Enable or disable the account ``name``; disabling also ends its open sign-ins (their number
    is returned). ValueError if there is no such user."""
    row = _user_row(session, name)
    row.active = active
    return 0 if active else _end_open_sessions(session, row.id, now)


def set_password(session: Session, name: str, password: str, now: datetime) -> int:
    """Give ``name`` a new password (the rules of ``check_password``) and end every sign-in made
    with the old one; returns how many were ended. ValueError (nothing changed) for no such user
    or a password that breaks the rules."""
    check_password(password)
    row = _user_row(session, name)
    row.password_hash = _hasher.hash(password)
    return _end_open_sessions(session, row.id, now)


@dataclass(frozen=True)
class Account:
    """One login as ``jiaoying users list`` shows it."""

    name: str
    role: Role
    active: bool
    created_at: datetime
    last_sign_in: datetime | None


def list_users(session: Session) -> list[Account]:
    """Every login by name, with the start of its latest board sign-in (None: never signed in)."""
    last = (select(BoardSessionRow.user_id, func.max(BoardSessionRow.created_at).label("at"))
            .group_by(BoardSessionRow.user_id).subquery())
    rows = session.execute(select(UserRow, last.c.at).outerjoin(last, last.c.user_id == UserRow.id)
                           .order_by(UserRow.name))
    return [Account(row.name, Role(row.role), bool(row.active), row.created_at, at) for row, at in rows]
