"""Board sessions: a signed cookie naming the user, a CSRF token bound to it, and role checks.

The cookie is ``<user id>.<issued at>.<nonce>.<hmac>`` signed with ``Settings.secret_key``; the
sign-in it names (by its nonce) and its user are read back from the database on every request, so
signing out, ``jiaoying users sign-out``, a disabled account or a changed role take effect at once
— a copied cookie is worth nothing after its session has ended. Every POST carries ``csrf`` =
HMAC(nonce), checked in constant time. The login form, which has no session yet, uses the same
scheme with a short-lived pre-login cookie, and checks the password through ``web.deps.sign_in``
— the throttle and the password-check threads HTTP Basic uses too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session

from ..config import Settings
from ..services import users
from ..services.users import Role, User
from ..web.deps import SignIn, sign_in
from .i18n import lang_of

SESSION_COOKIE = "jy_session"
LOGIN_COOKIE = "jy_login"
SESSION_TTL = timedelta(hours=14)  # a night shift and its hand-over


@dataclass(frozen=True)
class BoardSession:
    user: User
    nonce: str

    def may(self, role: Role) -> bool:
        return self.user.may(role)


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = hashlib.sha256(f"jiaoying-board:{purpose}:{settings.secret_key}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def csrf_token(settings: Settings, nonce: str) -> str:
    return _mac(settings, "csrf", nonce)


def csrf_ok(settings: Settings, nonce: str, offered: str | None) -> bool:
    """Whether ``offered`` is the CSRF token for ``nonce``. Compared as bytes: compare_digest
    refuses str holding anything but ASCII (a TypeError), and a token is ASCII (hex)."""
    if not offered:
        return False
    return hmac.compare_digest(csrf_token(settings, nonce).encode(), offered.encode("utf-8", "replace"))


def issue(settings: Settings, session: Session, response: Response, user: User, now: datetime) -> None:
    nonce = secrets.token_hex(16)
    users.start_session(session, user, nonce, now, SESSION_TTL)
    body = f"{user.id}.{int(now.timestamp())}.{nonce}"
    _set(settings, response, SESSION_COOKIE, f"{body}.{_mac(settings, 'session', body)}", SESSION_TTL)
    response.delete_cookie(LOGIN_COOKIE, path="/board")


def end(session: Session, who: BoardSession | None, response: Response, now: datetime) -> None:
    if who is not None:
        users.end_session(session, who.nonce, now)
    response.delete_cookie(SESSION_COOKIE, path="/")


def current(settings: Settings, session: Session, request: Request, now: datetime) -> BoardSession | None:
    """The signed-in user, or None (no cookie, tampered, expired, signed out, or the account is inactive)."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    body, _, mac = raw.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not hmac.compare_digest(_mac(settings, "session", body).encode(),
                                                  mac.encode("utf-8", "replace")):  # any cookie text: no TypeError
        return None
    uid, issued, nonce = parts
    if not (uid.isdigit() and issued.isdigit()):
        return None
    if now.timestamp() - int(issued) > SESSION_TTL.total_seconds():
        return None
    user = users.session_user(session, int(uid), nonce, now)
    return None if user is None else BoardSession(user, nonce)


def login_form_token(settings: Settings, request: Request, response: Response) -> str:
    """The login form's CSRF token, bound to a pre-login nonce kept in a cookie."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(16)
    _set(settings, response, LOGIN_COOKIE, nonce, timedelta(hours=2), path="/board")
    return csrf_token(settings, "login:" + nonce)


def login_csrf_ok(settings: Settings, request: Request, offered: str | None) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    return bool(nonce) and csrf_ok(settings, "login:" + nonce, offered)


@dataclass(frozen=True)
class LoginRefusal:
    status: int  # 401 wrong name or password, 429 too many attempts (with Retry-After)
    message: str
    headers: dict[str, str]


def login(request: Request, name: str, password: str) -> User | LoginRefusal:
    """The login form's check. A refusal never says whether the name exists: a wrong password
    and an unknown name read alike, and a throttled attempt is refused before either is looked at."""
    outcome: SignIn = sign_in(request, name, password)
    if outcome.user is not None:
        return outcome.user
    en = lang_of(request) == "en"
    if outcome.retry_after:
        wait = outcome.retry_after
        message = (f"Too many sign-in attempts; try again in {wait} s." if en
                   else f"登录尝试过多，请 {wait} 秒后再试。")
        return LoginRefusal(429, message, {"Retry-After": str(wait)})
    return LoginRefusal(401, "Wrong user name or password." if en else "用户名或密码错误。", {})


def _set(settings: Settings, response: Response, name: str, value: str, ttl: timedelta, path: str = "/") -> None:
    response.set_cookie(name, value, max_age=int(ttl.total_seconds()), path=path, httponly=True,
                        samesite="strict", secure=settings.public_url.startswith("https://"))
