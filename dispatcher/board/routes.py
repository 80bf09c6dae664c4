"""Board routes: login and logout, the overview, the per-warning board and the static assets.
Actions, live updates and exports live in their own modules and are gathered here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ..db.session import transaction
from ..web.deps import ClockDep, SettingsDep, UnitOfWorkDep
from . import actions, auth, drills, exports, keys, report, rollcalls, spotchecks, sse, views
from .pages import Ctx, context, render
from .views import Filters

router = APIRouter(tags=["board"], include_in_schema=False)
router.include_router(actions.router)
router.include_router(sse.router)
router.include_router(exports.router)
router.include_router(keys.router)
router.include_router(report.router)
router.include_router(rollcalls.router)
router.include_router(spotchecks.router)
router.include_router(drills.router)

STATIC = Path(__file__).resolve().parent.parent / "static"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


# The assets' names: plain file names. Anything else (NUL, which no path may hold; names longer
# than a file system's; separators) is no asset, answered 404 before the file system is asked.
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if not _ASSET_NAME.fullmatch(name):
        raise HTTPException(404, "no such file")
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=300"})


@router.get("/board/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    return _login_form(context(request, settings, clock()), request)


def _login_form(ctx: Ctx, request: Request, error: str = "", status: int = 200) -> Response:
    page = Response()
    token = auth.login_form_token(ctx.settings, request, page)
    html = render(ctx, request, "login.html", status, error=error, login_csrf=token)
    html.headers.append("set-cookie", page.headers["set-cookie"])
    return html


@router.post("/board/login")
def login(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
          name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          csrf: Annotated[str, Form()] = "") -> Response:
    now = clock()
    ctx = context(request, settings, now)
    if not auth.login_csrf_ok(settings, request, csrf):
        return _login_form(ctx, request, ctx.t("请求无效（缺少或错误的校验码），请刷新页面后重试。"), 403)
    user = auth.login(request, name.strip(), password)
    if isinstance(user, auth.LoginRefusal):
        page = _login_form(ctx, request, user.message, user.status)
        page.headers.update(user.headers)
        return page
    response = RedirectResponse("/board", status_code=303)
    with uow as session:
        auth.issue(settings, session, response, user, now)
    return response


@router.post("/board/logout")
async def logout(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    ctx = context(request, settings, clock())
    form = await request.form()
    csrf = form.get("csrf")
    if ctx.who is not None and not auth.csrf_ok(settings, ctx.who.nonce, csrf if isinstance(csrf, str) else None):
        raise HTTPException(403, "missing or wrong CSRF token")
    response = RedirectResponse("/board/login", status_code=303)
    with uow as session:
        auth.end(session, ctx.who, response, ctx.now)
    return response


@router.get("/board", response_class=HTMLResponse)
def overview(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    with transaction(settings.database_url, write=False) as session:
        cards = views.overview(session, ctx.now, admin=ctx.may("admin"))
    return render(ctx, request, "overview.html", cards=cards)


@router.get("/board/warnings/{warning_id}", response_class=HTMLResponse)
def warning_board(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep, state: str = "",
                  town: str = "", role: str = "", done: str = "") -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    filters = Filters(state, town, role)
    data = sse.snapshot(settings, warning_id, ctx, filters)
    return render(ctx, request, "board.html", filters=filters, done=done,
                  since=sse.version_tag(data["version"], ctx.now), **data)
