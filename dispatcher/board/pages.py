"""Rendering board pages (Jinja2 over templates/board) and the request context they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings, project_root
from ..db.session import transaction
from ..services.heartbeat import engine_problems
from ..services.users import Role
from . import auth
from .i18n import LANG_COOKIE, lang_of, translator

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


ROLE_ZH = {Role.VIEWER: "查看员", Role.OFFICER: "值班员", Role.ADMIN: "管理员"}


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(project_root() / "templates" / "board"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env


@dataclass(frozen=True)
class Ctx:
    """One board request: settings, the time, the language and (when signed in) the user."""

    settings: Settings
    now: datetime
    lang: str
    who: auth.BoardSession | None
    # The engine's own health (scheduler pass, stalled workers, overdue timers): a wall screen must
    # show when call-outs are not moving, not only /readyz.
    engine_problems: tuple[str, ...] = ()

    @property
    def t(self) -> Callable[[str], str]:
        return translator(self.lang)

    @property
    def csrf(self) -> str:
        return auth.csrf_token(self.settings, self.who.nonce) if self.who else ""

    def may(self, role: str) -> bool:
        return self.who is not None and self.who.may(Role(role))


def context(request: Request, settings: Settings, now: datetime) -> Ctx:
    with transaction(settings.database_url, write=False) as session:
        who = auth.current(settings, session, request, now)
        lang = lang_of(request)
        problems = tuple(p.zh if lang == "zh" else f"{p.check}: {p.en}"
                         for p in engine_problems(session, now)) if who else ()
    return Ctx(settings, now, lang, who, problems)


def render(ctx: Ctx, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    user = ctx.who.user if ctx.who else None
    role_name = ctx.t(ROLE_ZH[user.role]) if user else ""
    html = environment().get_template(name).render(ctx=ctx, t=ctx.t, lang=ctx.lang, user=user, role_name=role_name,
                                                   csrf=ctx.csrf, **values)
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, ctx.lang, max_age=365 * 86400, path="/", samesite="strict", httponly=True)
    return response


class RoleRequired(HTTPException):
    """403 for a signed-in user whose role is too low; the board shows it as a page."""

    def __init__(self, who: auth.BoardSession, needed: Role) -> None:
        super().__init__(403, f"user {who.user.name} ({who.user.role.value}) may not do this: "
                              f"it needs the {needed.value} role")
        self.who, self.needed = who, needed


def require(ctx: Ctx, role: Role) -> auth.BoardSession:
    """The signed-in user holding ``role``; 401 when nobody is signed in, 403 when the role is short."""
    if ctx.who is None:
        raise HTTPException(401, "sign in at /board/login")
    if not ctx.who.may(role):
        raise RoleRequired(ctx.who, role)
    return ctx.who


def refusal_text(ctx: Ctx, who: auth.BoardSession, needed: Role) -> str:
    t = ctx.t
    return t("权限不足：此操作需要{needed}或更高权限（{name}：{role}）").format(
        needed=t(ROLE_ZH[needed]), name=who.user.name, role=t(ROLE_ZH[who.user.role]))


def error_page(request: Request, status: int, detail: str, exc: Exception | None = None) -> HTMLResponse:
    """A board page for a refused or failed request, in the board's language — a duty officer
    clicking an export or a stale link should see a page, not a JSON body."""
    settings: Settings = request.app.state.settings
    ctx = context(request, settings, request.app.state.clock())
    t = ctx.t
    if isinstance(exc, RoleRequired):
        message = refusal_text(ctx, exc.who, exc.needed)
    elif status == 401:
        message = t("请先登录。")
    elif status == 404:
        message = t("未找到：{detail}").format(detail=detail)
    else:
        message = t("请求未能完成（{status}）：{detail}").format(status=status, detail=detail)
    return render(ctx, request, "error.html", status, message=message, login=status == 401)


def wants_page(request: Request) -> bool:
    """A browser asking for a board page (not its event stream, not a script)."""
    return (request.url.path.startswith("/board") and not request.url.path.endswith("/live")
            and "text/html" in request.headers.get("accept", ""))


async def http_error_page(request: Request, exc: StarletteHTTPException) -> HTMLResponse | None:
    """A refused request as the board's page, for a browser asking for a board page; None for
    any other request (it gets the API's JSON answer: ``api/errors.py``)."""
    if not wants_page(request):
        return None
    return await run_in_threadpool(error_page, request, exc.status_code, str(exc.detail), exc)
