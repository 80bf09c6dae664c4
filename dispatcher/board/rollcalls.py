"""Duty roll-calls (值班点名) on the board: the history with each room's outcome, a roll-call's page
(per duty room: who was called, who answered when and how), 立即点名 for officers, and the workbook.
The same services as ``jiaoying rollcall``; every signed-in role may look, officers start one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..db.session import transaction
from ..services import rollcalls
from ..services.site import current_site
from ..services.users import Role
from ..services.warnings import possible_id
from ..web.deps import ClockDep, SettingsDep, UnitOfWorkDep
from .actions import acting, refuse
from .pages import Ctx, context, render, require

router = APIRouter()

OUTCOME = {"present": "按时应答", "late": "迟到应答", "absent": "未应答", "open": "等待应答"}
VIA = {"sms": "短信", "voice": "电话按键", "link": "链接", "manual": "代确认"}


_CSS = {"manned": "ok", "unmanned": "no", "open": "wait", "missing": "no"}


def _verdict(room: rollcalls.RoomResult) -> tuple[str, str]:
    """(css class, words) of a room's outcome."""
    return _CSS[room.verdict], rollcalls.VERDICT_ZH[room.verdict]


def _rooms(ctx: Ctx, results: list[rollcalls.RoomResult], tz: Any) -> list[dict[str, Any]]:
    t = ctx.t
    rooms = []
    for room in results:
        css, words = _verdict(room)
        rooms.append({"area": room.area, "name": room.name, "css": css, "verdict": t(words),
                      "people": [{"name": a.name, "post": t(a.post) if a.post else "", "outcome": t(OUTCOME[a.outcome]),
                                  "css": a.outcome, "at": f"{a.answered_at.astimezone(tz):%H:%M:%S}"
                                  if a.answered_at else "", "via": t(VIA.get(a.via or "", a.via or ""))}
                                 for a in room.people]})
    return rooms


def _list(ctx: Ctx, request: Request, status: int = 200, error: str = "") -> Response:
    with transaction(ctx.settings.database_url, write=False) as session:
        site = current_site(session)
        history = []
        heads = rollcalls.history(session, 50)
        results = rollcalls.results_of(session, [h["id"] for h in heads])
        for head in heads:
            rooms = results.get(head["id"], [])
            history.append({"id": head["id"], "headline": head["headline"],
                            "at": f"{head['at'].astimezone(site.tz):%Y-%m-%d %H:%M}", "called": head["called"],
                            "rooms": [(r.name, *_verdict(r)) for r in rooms]})
        choices = [(r.id, r.name) for r in site.rollcalls]
    return render(ctx, request, "rollcalls.html", status, history=history, choices=choices, error=error)


@router.get("/board/rollcalls")
def rollcall_list(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    return _list(ctx, request)


@router.post("/board/rollcalls")
async def start(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    form = await request.form()
    act = acting(request, settings, clock(), str(form.get("csrf", "")), Role.OFFICER)
    wanted = str(form.get("rollcall", "")).strip() or None
    try:
        with uow as session:
            started = rollcalls.start_now(session, wanted, act.ctx.now, actor=act.by)
            uow.wake()  # the engine calls the rooms now
    except rollcalls.UnknownRollCall:
        # bad input: a roll-call the site does not have (or none at all); nothing was started
        message = act.ctx.t("没有这个值班点名：{id}").format(id=wanted) if wanted else act.ctx.t(
            "本县尚未配置值班点名（checks.yaml）。")
        return _list(act.ctx, request, 422, error=message)
    return RedirectResponse(f"/board/rollcalls/{started.id}", status_code=303)


@router.get("/board/rollcalls/export.xlsx")
def export(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.OFFICER)
    with transaction(settings.database_url, write=False) as session:
        body = rollcalls.to_xlsx(session)
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": "attachment; filename=\"rollcalls.xlsx\"; "
                                                    "filename*=UTF-8''%E5%80%BC%E7%8F%AD%E7%82%B9%E5%90%8D.xlsx"})


@router.get("/board/rollcalls/{rollcall_id}")
def rollcall_page(rollcall_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    missing = ctx.t("没有这个值班点名：{id}").format(id=rollcall_id[:40])
    if not possible_id(rollcall_id):
        return refuse(ctx, request, missing, 404)
    with transaction(settings.database_url, write=False) as session:
        try:
            results = rollcalls.results(session, rollcall_id)
        except rollcalls.UnknownRollCall:
            return refuse(ctx, request, missing, 404)
        (head,) = rollcalls.history(session, 1, rollcall_id)
        tz = current_site(session).tz
    waiting = any(r.open for r in results) or not head["started"]
    return render(ctx, request, "rollcall.html", rollcall={"id": rollcall_id, "headline": head["headline"],
                                                           "at": f"{head['at'].astimezone(tz):%Y-%m-%d %H:%M}"},
                  rooms=_rooms(ctx, results, tz), waiting=waiting, started=head["started"])
