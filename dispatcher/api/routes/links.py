"""The acknowledgement link: ``GET /ack/{token}`` shows the warning and a confirm button (it never
acknowledges: IM clients and scanners fetch links for previews), ``POST /ack/{token}`` with the
page's anti-CSRF value confirms through the one ack service.

Answers: 200 page; 400 malformed or tampered token; 410 expired; 403 POST without the anti-CSRF
value (nothing changes); 404 a valid token for a call-out that no longer exists.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ...config import Settings, project_root
from ...db.session import transaction
from ...links import LinkClaims, LinkError, check_csrf, csrf_for, read_token
from ...rendering import BEIJING
from ...services import ack_links
from ..deps import ClockDep, SettingsDep, UnitOfWork, UnitOfWorkDep

router = APIRouter(tags=["links"])

# The token is in the URL: keep it out of Referer headers, caches and frames.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


@cache
def _pages() -> Environment:
    return Environment(loader=FileSystemLoader(project_root() / "templates" / "pages"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_pages().get_template(name).render(**context), status_code=status, headers=_HEADERS)


def _error(status: int, message: str, english: str, advice: str = "如需确认，请回复短信确认码或致电县应急值班室。",
           ) -> HTMLResponse:
    return _page("ack_error.html", status, message=message, english=english, advice=advice)


def _link_error(exc: LinkError) -> HTMLResponse:
    english = "This link has expired." if exc.status == 410 else "This link is not valid."
    return _error(exc.status, exc.zh, english)


def _claims(settings: Settings, token: str, now: datetime) -> LinkClaims | HTMLResponse:
    try:
        return read_token(settings, token, now)
    except LinkError as exc:
        return _link_error(exc)


_GONE = ("该叫应记录不存在。", "No such call-out.")


@router.get("/ack/{token}", response_class=HTMLResponse, summary="The acknowledgement page (never acknowledges)")
def ack_page(token: str, settings: SettingsDep, clock: ClockDep) -> HTMLResponse:
    claims = _claims(settings, token, clock())
    if isinstance(claims, HTMLResponse):
        return claims
    with transaction(settings.database_url, write=False) as session:  # the page only reads
        found = ack_links.look_up(session, claims)
    if found is None:
        return _error(404, *_GONE)
    return _page("ack_confirm.html", csrf=csrf_for(settings, token), state_closed=found.closed, **found.view.fields())


@router.post("/ack/{token}", response_class=HTMLResponse, summary="Confirm receipt (the page's button)")
async def ack_confirm(token: str, request: Request, settings: SettingsDep, clock: ClockDep,
                      uow: UnitOfWorkDep) -> HTMLResponse:
    now = clock()
    claims = _claims(settings, token, now)
    if isinstance(claims, HTMLResponse):
        return claims
    form = await request.form()
    value = form.get("csrf")
    if not check_csrf(settings, token, value if isinstance(value, str) else None):
        return _error(403, "请求无效：请从确认页面点击“确认收到”按钮。",
                      "Forbidden: confirm with the button on the page.", advice="请重新打开短信或消息中的链接。")
    ip = request.client.host if request.client else None
    agent = request.headers.get("user-agent", "")[:300]
    answers = {key: value for key, value in form.items() if isinstance(value, str)}
    # The database work in the thread pool: on the event loop it held every other request meanwhile.
    return await run_in_threadpool(_record, settings, uow, now, token, claims, answers, ip, agent)


def _record(settings: Settings, uow: UnitOfWork, now: datetime, token: str, claims: LinkClaims,
            answers: dict[str, str], ip: str | None, agent: str) -> HTMLResponse:
    """The confirmation (or a spot-check's questionnaire) written, and the page that says so."""
    if any(key.startswith("q") and key[1:].isdigit() for key in answers):  # a spot-check's questionnaire
        try:
            with uow as session:
                done = ack_links.answer(session, now, claims, answers, ip, agent)
        except ack_links.NotAnswered as exc:  # bad input: a question left out; nothing recorded
            with transaction(settings.database_url, write=False) as session:
                found = ack_links.look_up(session, claims)
            assert found is not None
            return _page("ack_confirm.html", 422, csrf=csrf_for(settings, token),
                         state_closed=found.closed, problem=f"请逐项选择“是”或“否”：第{exc}问未作答。",
                         **found.view.fields())
    else:
        with uow as session:
            done = ack_links.confirm(session, now, claims, ip, agent)
    if done is None:
        return _error(404, *_GONE)
    return _page("ack_done.html", outcome=done.outcome, at=now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
                 **done.view.fields())

