"""Statistics and the record of one warning, and its exports: CSV, JSON and a printable page for
一事一档 filing. Looking needs a login; exporting needs the officer role."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import csvsafe, privacy
from ..api.deps import ClockDep, SettingsDep
from ..db import record_repo
from ..db.session import transaction
from ..services import warnings as queries
from ..services.users import Role
from . import stats, views
from .pages import Ctx, context, render, require
from .sse import snapshot
from .views import Filters

router = APIRouter()


def dossier(ctx: Ctx, warning_id: str) -> dict[str, Any]:
    """Everything on file for the warning's event: summary, rows, statistics, the record."""
    data = snapshot(ctx.settings, warning_id, ctx, Filters())
    with transaction(ctx.settings.database_url, write=False) as session:
        events = queries.record(session, data["record"], None)
    if not ctx.may(Role.OFFICER):  # viewers: phone numbers masked, as in the rows
        events = privacy.mask_events(events)
    rows = data["all_rows"]
    for e in events:
        e["at_text"] = views.stamp(views.parse_time(e["at"]))
        e["kind_zh"] = views.EVENT_ZH.get(e["kind"], e["kind"])
    return data | {
        "events": events, "by_town": stats.table(rows, lambda r: [r["town"]] if r["town"] else []),
        "by_role": stats.table(rows, lambda r: r["roles"]), "chart": stats.chart_svg(rows),
        "windows": stats.WINDOWS, "generated": views.stamp(ctx.now),
    }


@router.get("/board/warnings/{warning_id}/record", response_class=HTMLResponse)
def record_page(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    return render(ctx, request, "record.html", **dossier(ctx, warning_id))


@router.get("/board/warnings/{warning_id}/print", response_class=HTMLResponse)
def print_page(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    data = dossier(ctx, warning_id)
    # The head of the record as printed (its last event shown): a paper copy to check the database
    # against later (`jiaoying record <id> --verify` lists each event's code).
    shown = data["events"][-1]["seq"] if data["events"] else None
    with transaction(ctx.settings.database_url, write=False) as session:
        head = record_repo.head(session, data["record"], shown)
    return render(ctx, request, "print.html", **data, head=head)


@router.get("/board/warnings/{warning_id}/export.{fmt}")
def export(warning_id: str, fmt: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    if fmt not in ("csv", "json"):
        raise HTTPException(404, "exports: csv or json")
    data = dossier(ctx, warning_id)
    name = f"jiaoying-{data['record']}"
    if fmt == "json":
        body = json.dumps({k: data[k] for k in ("warning", "counts", "events", "by_town", "by_role")}
                          | {"callouts": data["all_rows"]}, ensure_ascii=False, indent=2, default=str)
        return _download(body, "application/json", f"{name}.json")
    header = ["callout", "official", "phone", "roles", "unit", "area", "town", "state", "acknowledged_at",
              "time_to_ack", "via", "by", "note", "attempts"]
    rows = ([r["id"], r["name"], r["phone"], "/".join(r["roles"]), r["unit"], r["area_name"], r["town"], r["state"],
             r["ack_at"], r["to_ack"], r["via"], r["ack_by"], r["note"],
             "; ".join(f"{ch['channel']}:{a['status']}@{a['at']}" for ch in r["channels"] for a in ch["attempts"])]
            for r in data["all_rows"])
    return _download(csvsafe.document(header, rows), "text/csv; charset=utf-8", f"{name}.csv")


def _download(body: str, media: str, filename: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                     "Cache-Control": "no-store"})
