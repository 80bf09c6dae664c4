"""Drills (演练) on the board: the history (admins also see blind drills scheduled or running; everyone
else only announced, posted and revealed ones), a drill's report (reach and acknowledgement against the
3- and 5-minute bars, the unreached, every channel failure, what took over for a channel taken out, and
the drill beside the previous ones), its workbook, and for admins: schedule a blind or announced drill,
start one now, end a running one, call off a scheduled one. The same services as ``jiaoying drill``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..db.session import transaction
from ..domain.channels import Channel
from ..domain.drills import BARS_MINUTES, DrillError, DrillKind, DrillState, Ending
from ..domain.hazards import Hazard, Level
from ..services import drills
from ..services.site import current_site
from ..services.users import Role
from ..web.deps import ClockDep, SettingsDep, UnitOfWorkDep
from .actions import acting, refuse
from .pages import Ctx, context, render, require

router = APIRouter()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_TO_COME = (DrillState.SCHEDULED.value, DrillState.RUNNING.value)  # a blind drill's note: officers see it as real


def _local(at: datetime | None, tz: Any, seconds: bool = False) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M{':%S' if seconds else ''}}" if at else ""


def _mmss(seconds: float | None) -> str:
    return drills.minutes_text(seconds)


def _list(ctx: Ctx, request: Request, status: int = 200, error: str = "", form: dict[str, str] | None = None,
          ) -> Response:
    admin = ctx.may("admin")
    with transaction(ctx.settings.database_url, write=False) as session:
        site = current_site(session)
        rows = []
        for d in drills.history(session, admin=admin):
            f = d["figures"]
            rows.append(d | {
                "at_text": _local(d["at"], site.tz),
                "window_text": f"{_local(d['window'][0], site.tz)} – {_local(d['window'][1], site.tz)}"
                if d["window"] else "",
                "kind_zh": DrillKind(d["kind"]).zh, "state_zh": DrillState(d["state"]).zh,
                "ending_zh": Ending(d["ending"]).zh if d["ending"] else "",
                # the moment drawn in a window is never shown, not even to admins
                "hide_at": d["window"] is not None and d["state"] == DrillState.SCHEDULED.value,
                "reached_pct": f.reached_pct if f else None, "acked": f.acked_within if f else None,
                "unreached": f.called - f.acknowledged if f else None, "called": f.called if f else None})
        areas = [(code, site.areas.name(code)) for code in _towns(site)]
    return render(ctx, request, "drills.html", status, drills=rows, error=error, form=form or {}, bars=BARS_MINUTES,
                  hazards=[(h.value, h.zh) for h in Hazard], levels=[(lv.value, lv.zh) for lv in Level],
                  channels=[(c.value, c.zh) for c in Channel], providers=drills.known_providers(), areas=areas)


def _towns(site: Any) -> list[str]:
    """The county and its towns: the areas the form offers (any code of the site may be typed)."""
    out = []
    for root in site.areas.roots:
        out.append(root)
        out += [a.code for a in site.areas.children(root)]
    return out


@router.get("/board/drills")
def drill_list(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    return _list(ctx, request)


@router.post("/board/drills")
async def schedule(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    """Schedule a drill (blind or announced: a time, or a window the engine draws the moment in), or start
    an announced one now. Admins only; bad input is answered 422 on the form, naming the field."""
    form = await request.form()
    act = acting(request, settings, clock(), str(form.get("csrf", "")), Role.ADMIN)
    ctx = act.ctx
    values = {k: str(v) for k, v in form.items() if k != "csrf"}
    now_start = values.get("action") == "start"
    try:
        with uow as session:
            site = current_site(session)
            scenario = drills.scenario_from(session, {
                "hazard": values.get("hazard", ""), "level": values.get("level", ""), "areas": values.get("areas", ""),
                "headline": values.get("headline", ""), "instruction": values.get("instruction", ""),
                "description": values.get("description", ""), "sender": values.get("sender") or "jiaoying"})
            without = [c for c in (k.removeprefix("without_") for k in form if k.startswith("without_"))] + [
                n for n in values.get("without", "").replace("，", ",").split(",") if n.strip()]
            options = drills.options_from(values.get("broadcast") == "on", without,
                                          _minutes(values.get("length", "")))
            if now_start:
                row = drills.start_now(session, scenario, options, by=act.by, now=ctx.now, note=values.get("note", ""))
                uow.wake()  # the engine calls now
            else:
                at = _when(values.get("at", ""), site.tz, "at")
                start, stop = (_when(values.get(k, ""), site.tz, k.removeprefix("window_"))
                               for k in ("window_from", "window_to"))
                if (start is None) != (stop is None):
                    raise DrillError("from" if start is None else "to", "a window needs both its start and its end")
                row = drills.schedule(session, scenario, options, by=act.by, now=ctx.now, at=at,
                                      window=(start, stop) if start and stop else None,
                                      blind=values.get("mode", "blind") != "announced",
                                      key=drills.schedule_key(settings.secret_key), note=values.get("note", ""))
            drill_id = row.id
    except DrillError as exc:  # bad input: nothing was stored
        return _list(ctx, request, 422, error=ctx.t("未能安排演练：{problem}").format(problem=str(exc)), form=values)
    return RedirectResponse(f"/board/drills/{drill_id}", status_code=303)


def _minutes(value: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise DrillError("length", f"{value[:20]!r} is not a number of minutes") from None


def _when(value: str, tz: Any, field: str) -> datetime | None:
    """A time from the form (datetime-local: the site's local time, or an ISO time with an offset)."""
    if not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DrillError(field, f"{value[:40]!r} is not a time, e.g. 2026-07-20T09:30") from None
    return at if at.tzinfo else at.replace(tzinfo=tz)


@router.get("/board/drills/{drill_id}")
def drill_page(drill_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    data = _report(ctx, drill_id)
    if data is None:
        return refuse(ctx, request, ctx.t("没有这个演练：{id}").format(id=drill_id[:40]), 404)
    return render(ctx, request, "drill.html", **data)


def _report(ctx: Ctx, drill_id: str) -> dict[str, Any] | None:
    """What the report page shows; None when there is no such drill for this user (a blind drill not
    yet revealed is no drill to a viewer or an officer)."""
    with transaction(ctx.settings.database_url, write=False) as session:
        try:
            result = drills.report(session, drill_id, admin=ctx.may("admin"))
        except drills.UnknownDrill:
            return None
        site = current_site(session)
    tz, f = site.tz, result.figures
    people = [{"name": p.name, "town": p.town, "state": p.state, "reached": _mmss(p.reached_s),
               "acked": _mmss(p.acked_s), "channel": Channel(p.channel).zh if p.channel else "",
               "provider": p.provider or "", "step": "" if p.step is None else p.step + 1,
               "late": p.reached_s is None or p.reached_s > BARS_MINUTES[0] * 60,
               "took_over": p.took_over(result.options.without), "later": _mmss(p.later_s),
               "planned": "、".join(Channel(c).zh for c in p.planned)} for p in result.people]
    return {
        "drill": {"id": result.id, "record": result.record, "kind": result.kind, "kind_zh": DrillKind(result.kind).zh,
                  "state": result.state, "state_zh": DrillState(result.state).zh,
                  "ending_zh": Ending(result.ending).zh if result.ending else "", "headline": result.scenario.headline,
                  "title": f"{result.scenario.hazard.zh}{result.scenario.level.zh}预警",
                  "areas": "、".join(site.areas.name(a) for a in result.scenario.areas),
                  "at": _local(result.at, tz) if not (result.window and result.state == "scheduled") else "",
                  "window": f"{_local(result.window[0], tz)} – {_local(result.window[1], tz)}" if result.window else "",
                  "ended": _local(result.ended_at, tz), "by": result.created_by.removeprefix("user:"),
                  "without": list(result.options.without), "broadcast": result.options.broadcast,
                  "length": f"{result.options.length.total_seconds() / 60:g}",
                  "concealed": result.concealed and result.state in _TO_COME},
        "figures": f, "bars": list(zip(f.bars, f.reached_within, f.acked_within, strict=True)),
        "medians": {"reach": _mmss(f.reach_median_s), "reach90": _mmss(f.reach_p90_s),
                    "ack": _mmss(f.ack_median_s), "ack90": _mmss(f.ack_p90_s)},
        "people": people, "unreached": [{"name": p.name, "town": p.town, "reached": p.reached, "state": p.state}
                                        for p in result.unreached],
        "failures": [{"at": _local(x.at, tz, seconds=True), "name": x.name, "channel": x.channel,
                      "provider": x.provider, "step": x.step + 1 if x.step >= 0 else "", "purpose": x.purpose,
                      "error": x.error, "imposed": x.imposed} for x in result.failures],
        "took_over": [p for p in people if p["took_over"]],
        "skipped": [{"name": p.name, "town": p.town, "by": p.by} for p in result.skipped],
        "beside": [{"id": c.id, "at": _local(c.at, tz), "headline": c.headline, "kind_zh": DrillKind(c.kind).zh,
                    "called": c.figures.called, "reached_pct": c.figures.reached_pct,
                    "acked": c.figures.acked_within, "unreached": c.figures.called - c.figures.acknowledged,
                    "without": "、".join(c.without), "this": c.id == result.id} for c in result.beside],
    }


@router.get("/board/drills/{drill_id}/export.xlsx")
def export(drill_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.OFFICER)
    try:
        with transaction(settings.database_url, write=False) as session:
            body = drills.to_xlsx(session, drill_id, admin=ctx.may("admin"))  # what the page shows this user
    except drills.UnknownDrill:
        return refuse(ctx, request, ctx.t("没有这个演练：{id}").format(id=drill_id[:40]), 404)
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"drill-{drill_id[:32]}.xlsx\"; "
                               f"filename*=UTF-8''%E6%BC%94%E7%BB%83-{drill_id[:32]}.xlsx",
        "Cache-Control": "no-store"})


@router.post("/board/drills/{drill_id}/end")
async def end(drill_id: str, request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    return await _act(drill_id, request, settings, clock, uow, "end")


@router.post("/board/drills/{drill_id}/cancel")
async def cancel(drill_id: str, request: Request, settings: SettingsDep, clock: ClockDep,
                 uow: UnitOfWorkDep) -> Response:
    return await _act(drill_id, request, settings, clock, uow, "cancel")


async def _act(drill_id: str, request: Request, settings: Any, clock: Any, uow: Any, what: str) -> Response:
    form = await request.form()
    act = acting(request, settings, clock(), str(form.get("csrf", "")), Role.ADMIN)
    ctx = act.ctx
    try:
        with uow as session:
            if what == "end":
                drills.end(session, drill_id, by=act.by, now=ctx.now)
                uow.wake()  # the lifting notices go now
            else:
                drills.cancel_scheduled(session, drill_id, by=act.by, now=ctx.now)
    except drills.UnknownDrill:
        return refuse(ctx, request, ctx.t("没有这个演练：{id}").format(id=drill_id[:40]), 404)
    except DrillError as exc:
        return refuse(ctx, request, str(exc), 409)
    return RedirectResponse(f"/board/drills/{drill_id}", status_code=303)
