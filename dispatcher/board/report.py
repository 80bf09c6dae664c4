"""The period assessment (考核) on the board: ``/board/report?from=…&to=…`` and its downloads.

The page (every signed-in role: it shows names and counts, no phone numbers) holds the same
tables as ``jiaoying report`` — real warnings by month, town, role and person, the people most
often unreached, then the drills apart, and, when the period had any, the duty roll-calls' 到岗率
per room and month and the 六问 spot-checks' 答全率 for the county and each town. The .xlsx and
CSV downloads need the officer role, as every board export does. Without dates the page shows the
current year up to today (the county's calendar). A bad period is said on the page (422) and
computes nothing.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..db.session import transaction
from ..services import assessment
from ..services.assessment import Assessment, PeriodError
from ..services.site import current_site
from ..services.users import Role
from ..web.deps import ClockDep, SettingsDep
from .pages import Ctx, context, render, require

router = APIRouter()

FromParam = Annotated[str | None, Query(alias="from")]


def _run(ctx: Ctx, start: str | None, end: str | None) -> tuple[Assessment, tzinfo]:
    """The assessment of the asked period (none asked: this year, 1 January to today, local) and the
    county's time zone. Raises PeriodError for a bad period, before anything is read."""
    from_name, to_name = ("起始日期", "结束日期") if ctx.lang == "zh" else ("from", "to")
    asked = assessment.parse_period(start, end, from_name, to_name) if start or end else None
    with transaction(ctx.settings.database_url, write=False) as session:
        site = current_site(session)
        if asked is None:
            today = ctx.now.astimezone(site.tz).date()
            asked = today.replace(month=1, day=1), today
        return assessment.assess(session, site, *asked, now=ctx.now), site.tz


def _view(result: Assessment, ctx: Ctx) -> list[dict[str, Any]]:
    """Each part (real warnings, drills) with its tables as header and rows of text cells."""
    t = ctx.t
    figures = assessment.metric_headers(t, result.windows)
    parts = []
    for key, title, section in (("real", t("真实预警"), result.real), ("drills", t("演练"), result.drills)):
        shown = []
        for table in assessment.tables(section, t):
            if not table.lines:
                continue
            # The note column (no longer on the roster) only when someone in the table left it.
            keep = len(table.lead) if any(not x.on_roster for x in table.lines) else min(len(table.lead), 4)
            rows = [{"lead": [line.name, *(assessment.person_cells(line, t) if table.person else [])][:keep],
                     "figures": assessment.metric_cells(line), "left": not line.on_roster}
                    for line in table.lines]
            shown.append({"key": table.key, "title": table.title, "lead": table.lead[:keep], "figures": figures,
                          "rows": rows})
        parts.append({"key": key, "title": title, "empty": not section.total.callouts, "tables": shown})
    return parts


@router.get("/board/report", response_class=HTMLResponse)
def report_page(request: Request, settings: SettingsDep, clock: ClockDep, start: FromParam = None,
                to: str | None = None) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.VIEWER)
    values: dict[str, Any] = {"start": start or "", "end": to or "", "error": "", "result": None, "parts": [],
                              "query": ""}
    try:
        result, tz = _run(ctx, start, to)
    except PeriodError as exc:
        return render(ctx, request, "report.html", 422, **values | {"error": exc.text(ctx.lang)})
    first, last = result.start.isoformat(), result.end.isoformat()
    return render(ctx, request, "report.html", **values | {
        "start": first, "end": last, "result": result, "parts": _view(result, ctx),
        "period": assessment.period_text(result, ctx.t),
        "generated": result.generated_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "query": urlencode({"from": first, "to": last}), "rollcalls": _rollcalls(result, ctx),
        "spotchecks": _spotchecks(result, ctx)})


def _rollcalls(result: Assessment, ctx: Ctx) -> dict[str, Any] | None:
    """到岗率: the duty rooms' roll-calls, per month and for the whole period (None: no roll-call held)."""
    if not result.rollcalls:
        return None
    header, rows = assessment.rollcall_table(result, ctx.t)
    return {"header": header, "rows": [[*row[:5], "—" if row[5] is None else f"{row[5]:.1f}%"] for row in rows]}


def _spotchecks(result: Assessment, ctx: Ctx) -> dict[str, Any] | None:
    """答全率: the 六问 spot-checks of the period, the county and each town (None: none held)."""
    if not result.spotchecks:
        return None
    header, rows = assessment.spotcheck_table(result, ctx.t)
    return {"header": header, "rows": [[*row[:5], "—" if row[5] is None else f"{row[5]:.1f}%"] for row in rows]}


@router.get("/board/report.{fmt}")
def report_download(fmt: str, request: Request, settings: SettingsDep, clock: ClockDep, start: FromParam = None,
                    to: str | None = None) -> Response:
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    if fmt not in ("xlsx", "csv"):
        raise HTTPException(404, "downloads: xlsx or csv")
    try:
        result, _ = _run(ctx, start, to)
    except PeriodError as exc:
        raise HTTPException(422, exc.text(ctx.lang)) from None
    name = f"jiaoying-report-{result.start.isoformat()}-{result.end.isoformat()}.{fmt}"
    if fmt == "xlsx":
        body: bytes | str = assessment.to_xlsx(result, ctx.t)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body, media = assessment.to_csv(result, ctx.t), "text/csv; charset=utf-8"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "no-store"})
