"""The duty officer's actions: acknowledge on behalf (note required), re-call now, send someone to
an unreached official and record what they found (安排上门/现场核实), cancel the warning (admin,
confirmed). Every POST is checked for its CSRF token first, then for the role,
then for its input — an id no call-out or warning can have (past the 32-bit ids, NUL) is refused
404 and a note holding NUL 422, each with the board's page, before the database is asked; each
calls one service and goes back to the board (303)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.tables import MAX_ID
from ..domain.callouts import AckVia
from ..intake.schema import text_problem
from ..services import ack, follow_up
from ..services import warnings as queries
from ..services.callouts import cancel_event
from ..services.errors import NotFound
from ..services.users import Role, User
from ..web.deps import ClockDep, SettingsDep, UnitOfWork, UnitOfWorkDep
from . import auth
from .pages import Ctx, context, refusal_text, render

router = APIRouter()


FormField = Annotated[str, Form()]


@dataclass(frozen=True)
class Acting:
    """A board POST that passed its checks: the request's context and the user acting."""

    ctx: Ctx
    user: User

    @property
    def by(self) -> str:
        return f"user:{self.user.name}"


class Refused(Exception):  # noqa: N818 - a refusal, answered with its page (handler in web/app.py)
    """A board POST refused before it acts: the answer is ``response`` (sign in, or a 403 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def acting(request: Request, settings: Settings, now: datetime, csrf: str, role: Role) -> Acting:
    """Who acts; Refused with the page that refuses the POST (sign-in; 403: no CSRF token, or the
    role is too low)."""
    ctx = context(request, settings, now)
    if ctx.who is None:
        raise Refused(RedirectResponse("/board/login", status_code=303))
    if not auth.csrf_ok(ctx.settings, ctx.who.nonce, csrf):
        raise Refused(refuse(ctx, request, ctx.t("请求无效（缺少或错误的校验码），请刷新页面后重试。")))
    if not ctx.who.may(role):
        raise Refused(refuse(ctx, request, refusal_text(ctx, ctx.who, role)))
    return Acting(ctx, ctx.who.user)


def refuse(ctx: Ctx, request: Request, message: str, status: int = 403) -> Response:
    return render(ctx, request, "error.html", status, message=message)


def _back(back: str, done: str) -> RedirectResponse:
    if not back.startswith("/board") or "//" in back:  # never an open redirect
        back = "/board"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={quote(done)}", status_code=303)


def no_callout(ctx: Ctx, request: Request, callout_id: int) -> Response | None:
    """The 404 page for a call-out id no call-out can have (ids are 32-bit integers in the database:
    a larger one overflows PostgreSQL's int4, past 2**63 SQLite's integer); None for a possible one."""
    if 1 <= callout_id <= MAX_ID:
        return None
    return refuse(ctx, request, ctx.t("未找到：{detail}").format(detail=f"no call-out {callout_id}"), 404)


def bad_text(ctx: Ctx, request: Request, value: str, field: str, field_zh: str) -> Response | None:
    """The 422 page for a form field holding text that cannot be stored (NUL), naming the field in
    the board's language; None for acceptable text."""
    if not (problem := text_problem(value)):
        return None
    message = f"{field}: {problem}" if ctx.lang == "en" else f"{field_zh}（{field}）：不能包含空字符（\\u0000）"
    return refuse(ctx, request, message, 422)


@router.post("/board/callouts/{callout_id}/ack")
def ack_on_behalf(callout_id: int, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
                  csrf: FormField = "", note: FormField = "", back: FormField = "/board") -> Response:
    act = acting(request, settings, clock(), csrf, Role.OFFICER)
    ctx = act.ctx
    if refused := no_callout(ctx, request, callout_id):
        return refused
    note = note.strip()[:500]
    if not note:
        return refuse(ctx, request, ctx.t("请填写说明。"), 422)
    if refused := bad_text(ctx, request, note, "note", "说明"):
        return refused
    try:
        with uow as session:
            result = ack.acknowledge_callout(session, ctx.now, callout_id, via=AckVia.MANUAL,
                                             by=act.by, note=note)
            uow.wake()
    except NotFound as exc:
        return refuse(ctx, request, str(exc), 404)
    if not result.acknowledged:
        return refuse(ctx, request, ctx.t("该叫应已关闭，未作更改。"), 409)
    return _back(back, "ack")


@router.post("/board/callouts/{callout_id}/recall")
def recall(callout_id: int, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
           csrf: FormField = "", back: FormField = "/board") -> Response:
    act = acting(request, settings, clock(), csrf, Role.OFFICER)
    ctx = act.ctx
    if refused := no_callout(ctx, request, callout_id):
        return refused
    try:
        with uow as session:
            ack.recall(session, ctx.now, callout_id, by=act.by)
            uow.wake()
    except NotFound as exc:
        return refuse(ctx, request, str(exc), 404)
    except ValueError:
        return refuse(ctx, request, ctx.t("该叫应已关闭，未作更改。"), 409)
    return _back(back, "recall")


@router.post("/board/callouts/{callout_id}/follow-up")
def follow_up_assign(callout_id: int, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
                     csrf: FormField = "", who: FormField = "", note: FormField = "", back: FormField = "/board",
                     ) -> Response:
    """安排上门/现场核实: who goes to find an unreached official (required), and a note."""
    return _follow_up(request, settings, clock(), uow, csrf, callout_id, back, "follow_up",
                      lambda session, now, by: follow_up.assign(session, now, callout_id, who=who, note=note, by=by))


@router.post("/board/callouts/{callout_id}/follow-up/result")
def follow_up_result(callout_id: int, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
                     csrf: FormField = "", outcome: FormField = "", note: FormField = "", back: FormField = "/board",
                     ) -> Response:
    """What the follow-up found (reached, relayed, not_found), and a note."""
    return _follow_up(request, settings, clock(), uow, csrf, callout_id, back, "follow_up_result",
                      lambda session, now, by: follow_up.record_result(session, now, callout_id, outcome=outcome,
                                                                       note=note, by=by))


def _follow_up(request: Request, settings: Settings, now: datetime, uow: UnitOfWork, csrf: str, callout_id: int,
               back: str, done: str, apply: Callable[[Session, datetime, str], object]) -> Response:
    """One follow-up action: an officer, a known call-out, the service's refusals shown as they are."""
    act = acting(request, settings, now, csrf, Role.OFFICER)
    ctx = act.ctx
    if refused := no_callout(ctx, request, callout_id):
        return refused
    try:
        with uow as session:
            apply(session, ctx.now, act.by)
    except NotFound as exc:
        return refuse(ctx, request, ctx.t("未找到：{detail}").format(detail=exc), 404)
    except follow_up.FollowUpRefused as exc:
        return refuse(ctx, request, exc.text(ctx.lang), exc.status)
    return _back(back, done)


@router.post("/board/warnings/{warning_id}/cancel")
def cancel(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep,
           csrf: FormField = "", confirm: FormField = "", back: FormField = "/board") -> Response:
    act = acting(request, settings, clock(), csrf, Role.ADMIN)
    ctx = act.ctx
    if confirm != "yes":
        return refuse(ctx, request, ctx.t("确认取消整个预警事件？"), 422)
    try:
        with uow as session:
            queries.get_row(session, warning_id, None)  # NotFound, before any lookup, for an impossible id
            cancel_event(session, warning_id, ctx.now, act.by)
            uow.wake()
    except NotFound as exc:
        return refuse(ctx, request, ctx.t("未找到：{detail}").format(detail=exc), 404)
    except LookupError:
        return refuse(ctx, request, f"no warning {warning_id}", 404)
    return _back(back, "cancelled")


def done_text(ctx: Ctx, done: str) -> str:
    words: dict[str, Any] = {"ack": "已代为确认", "recall": "已重呼", "cancelled": "预警已取消",
                             "follow_up": "已安排上门核实", "follow_up_result": "已记录核实结果"}
    return ctx.t(words[done]) if done in words else ""
