"""Statistics and the record of one warning, and its exports: CSV, JSON, a printable page for
一事一档 filing and the same page as a PDF. Looking needs a login; exporting needs the officer role.

The record is shown in words (``services/record_words.py``); the raw events stay in the JSON
export and the API. The PDF is the printable page rendered by Chromium (through Playwright) with
the page's own print stylesheet; without a Chromium the download answers 503 and says so."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import csvsafe, privacy
from ..config import Settings
from ..db import record_repo
from ..db.session import transaction
from ..services import callout_views, drills, record_words
from ..services import warnings as queries
from ..services.site import current_site
from ..services.users import Role
from ..web.deps import ClockDep, SettingsDep
from . import stats, views
from .pages import Ctx, context, environment, render, require
from .sse import snapshot
from .views import Filters

router = APIRouter()
PRINT_CSS = Path(__file__).resolve().parent.parent / "static" / "print.css"


def dossier(ctx: Ctx, warning_id: str, words: bool = False) -> dict[str, Any]:
    """Everything on file for the warning's event: summary, rows, statistics, the record — and,
    with ``words``, the record in words (``words``) for the pages."""
    data = snapshot(ctx.settings, warning_id, ctx, Filters())
    show_phones = ctx.may(Role.OFFICER)
    said: list[record_words.Said] = []
    with transaction(ctx.settings.database_url, write=False) as session:
        events = queries.record(session, data["record"], None)
        if views.hidden_drill(session, data["record"], ctx.may(Role.ADMIN)):  # a blind drill: as real until revealed
            events = drills.conceal_events(events)
        if words:
            said = record_words.say(events, current_site(session), ctx.lang, show_phones=show_phones,
                                    callouts=callout_views.frozen_steps(session, data["record"]))
    if not show_phones:  # viewers: phone numbers masked, as in the rows
        events = privacy.mask_events(events)
    rows = data["all_rows"]
    for e in events:
        e["at_text"] = views.stamp(views.parse_time(e["at"]))
        e["kind_zh"] = views.EVENT_ZH.get(e["kind"], e["kind"])
    return data | {
        "events": events, "by_town": stats.table(rows, lambda r: [r["town"]] if r["town"] else []),
        "by_role": stats.table(rows, lambda r: r["roles"]), "chart": stats.chart_svg(rows),
        "windows": stats.WINDOWS, "generated": views.stamp(ctx.now), "words": said,
    }


@router.get("/board/warnings/{warning_id}/record", response_class=HTMLResponse)
def record_page(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    return render(ctx, request, "record.html", **dossier(ctx, warning_id, words=True))


def _printed(ctx: Ctx, warning_id: str) -> dict[str, Any]:
    """What the printable 一事一档 shows: the document in words and the record's head as printed."""
    data = dossier(ctx, warning_id)
    with transaction(ctx.settings.database_url, write=False) as session:
        row = queries.get_row(session, warning_id, None)
        site = current_site(session)
        events = queries.record(session, data["record"], None)
        hidden = views.hidden_drill(session, data["record"], ctx.may(Role.ADMIN))
        if hidden:  # a blind drill: the printed file shows it as a real warning until it is revealed
            events = drills.conceal_events(events)
        callouts = callout_views.list_callouts(session, data["record"], show_phones=True)
        if hidden:
            drills.conceal_callouts(callouts)
        frozen = callout_views.frozen_steps(session, data["record"])
        # The head of the record as printed (its last event shown): a paper copy to check the
        # database against later (`jiaoying record <id> --verify` lists each event's code).
        head = record_repo.head(session, data["record"], events[-1]["seq"] if events else None)
    facts = {"id": row.id, "sender": row.sender, "hazard": row.hazard, "level": row.level, "areas": row.areas,
             "zones": row.zones or [], "headline": row.headline, "sent": row.sent, "expires": row.expires,
             "received_at": row.received_at, "status": row.status, "drill": row.drill and not hidden,
             "msg_type": row.msg_type}
    document = record_words.document(facts, events, callouts, site, ctx.lang, show_phones=True, frozen=frozen,
                                     now=ctx.now)
    return data | {"doc": document, "head": head, "words": document.said, "tz": getattr(site.tz, "key", str(site.tz)),
                   "county": site.areas.name(site.areas.roots[0]) if site.areas.roots else ""}


@router.get("/board/warnings/{warning_id}/print", response_class=HTMLResponse)
def print_page(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    return render(ctx, request, "print.html", **_printed(ctx, warning_id), inline_css="", pdf=False)


NO_CHROMIUM = ("服务器上没有可用的 Chromium，无法生成 PDF（请设置 JIAOYING_CHROMIUM_PATH）；"
               "可打开打印页，用浏览器打印或另存为 PDF — no Chromium is available on the server to make the PDF "
               "(set JIAOYING_CHROMIUM_PATH); open the printable page and print it, or save it as PDF, "
               "from the browser")


@router.get("/board/warnings/{warning_id}/print.pdf")
def print_pdf(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """The printable 一事一档 as an A4 PDF, made by Chromium from the same page and print stylesheet."""
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    executable = chromium_executable(settings)
    if executable is None:
        raise HTTPException(503, NO_CHROMIUM)
    data = _printed(ctx, warning_id)
    html = environment().get_template("print.html").render(
        ctx=ctx, t=ctx.t, lang=ctx.lang, user=ctx.who.user if ctx.who else None, role_name="", csrf="",
        inline_css=PRINT_CSS.read_text(encoding="utf-8"), pdf=True, **data)
    try:
        pdf = render_pdf(html, executable)
    except PdfUnavailable as exc:
        raise HTTPException(503, f"{NO_CHROMIUM} ({exc})") from None
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="jiaoying-{data["record"]}.pdf"', "Cache-Control": "no-store"})


class PdfUnavailable(RuntimeError):
    """No PDF could be made: Playwright is not installed, or Chromium would not start or render."""


def chromium_executable(settings: Settings) -> str | None:
    """The Chromium to render with: ``JIAOYING_CHROMIUM_PATH``, else ``chromium`` (or
    ``chromium-browser``) on the PATH; None when there is none to run."""
    configured = settings.chromium_path.strip()
    if configured:
        path = Path(configured)
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


# Chromium processes at once for PDFs: each takes a few hundred MB; a third request waits its turn.
_PDF_SLOTS = threading.BoundedSemaphore(2)
PDF_TIMEOUT_MS = 60_000


def render_pdf(html: str, executable: str) -> bytes:
    """``html`` (self-contained: its stylesheet inline) printed to an A4 PDF by headless Chromium.
    Nothing is fetched: every request the page would make is refused."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise PdfUnavailable("the playwright Python package is not installed") from None
    with _PDF_SLOTS:
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=executable, args=[
                    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                    "--no-first-run"])
                try:
                    page = browser.new_page()
                    page.route("**/*", lambda route: route.abort())
                    page.set_content(html, wait_until="load", timeout=PDF_TIMEOUT_MS)
                    return page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
                finally:
                    browser.close()
        except Error as exc:
            raise PdfUnavailable(str(exc).splitlines()[0][:300]) from None


@router.get("/board/warnings/{warning_id}/export.{fmt}")
def export(warning_id: str, fmt: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """The call-outs as CSV or JSON, in call-out order. The CSV's columns are a contract: new ones
    are added at the end, none is renamed or removed. ``?lang=zh`` (the Chinese board's link) gives
    the same columns with Chinese headers and Chinese state values, for filing and Excel."""
    ctx = context(request, settings, clock())
    require(ctx, Role.OFFICER)
    if fmt not in ("csv", "json"):
        raise HTTPException(404, "exports: csv or json")
    data = dossier(ctx, warning_id)
    name = f"jiaoying-{data['record']}"
    # in call-out order, each with its attempts by channel too (as the exports always had them)
    callouts = [r | {"channels": views.by_channel(r)} for r in sorted(data["all_rows"], key=lambda r: r["id"])]
    if fmt == "json":
        body = json.dumps({k: data[k] for k in ("warning", "counts", "events", "by_town", "by_role")}
                          | {"callouts": callouts}, ensure_ascii=False, indent=2, default=str)
        return _download(body, "application/json", f"{name}.json")
    chinese = request.query_params.get("lang") == "zh"
    header = CSV_HEADER_ZH if chinese else CSV_HEADER
    rows = ([r["id"], r["name"], r["phone"], "/".join(r["roles"]), r["unit"], r["area_name"], r["town"],
             r["state_zh"] if chinese else r["state"], r["ack_at"], r["to_ack"], r["via"], r["ack_by"], r["note"],
             _attempts_zh(r) if chinese else
             "; ".join(f"{ch['channel']}:{a['status']}@{a['at']}" for ch in r["channels"] for a in ch["attempts"]),
             # added for issue #12: who answered (someone for the official?), to whom each attempt went,
             # the unreached time and the door-to-door follow-up
             r["ack_by_name"], views.RELATION_ZH.get(r["ack_relation"], "") if chinese else r["ack_relation"],
             _to_whom_zh(r) if chinese else _to_whom(r), r["unreached_clock"],
             *(_follow_up_zh(r) if chinese else _follow_up(r))]
            for r in callouts)
    return _download(csvsafe.document(header, rows), "text/csv; charset=utf-8", f"{name}.csv")


CSV_HEADER = ["callout", "official", "phone", "roles", "unit", "area", "town", "state", "acknowledged_at",
              "time_to_ack", "via", "by", "note", "attempts",
              "acknowledged_by_name", "acknowledged_by_relation", "attempts_to", "unreached_at", "follow_up",
              "follow_up_result"]
CSV_HEADER_ZH = ["叫应编号", "责任人", "电话", "岗位", "单位", "区域", "乡镇", "状态", "确认时间",
                 "确认用时", "确认方式", "确认人标识", "说明", "各渠道尝试",
                 "确认人", "确认人身份", "各次尝试（对象）", "未叫醒时间", "上门核实", "核实结果"]


def _to_whom(r: dict[str, Any]) -> str:
    """sms:delivered@21:20:13>sun(self); voice[landline]:sent@21:23:40>sun(self); sms:sent@…>li(deputy)"""
    return "; ".join(f"{a['channel']}{'[' + a['label'] + ']' if a['label'] else ''}:{a['status']}@{a['at']}"
                     f">{g['to']}({g['relation']})" for g in r["chips"] for a in g["attempts"])


def _to_whom_zh(r: dict[str, Any]) -> str:
    """本人 短信 已送达 21:20:13；本人 语音电话·办公电话 已发出 21:23:40；AB岗 李卫东 短信 已送达 …
    (the rows are in Chinese: the request asked ``lang=zh``)"""
    return "；".join(f"{g['who']} {a['name']}{'·' + a['number'] if a['number'] else ''} {a['status_zh']} {a['at']}"
                     .strip() for g in r["chips"] for a in g["attempts"])


def _attempts_zh(r: dict[str, Any]) -> str:
    """The attempts column in Chinese: 短信 已送达 21:20:13；语音电话 已发出 21:23:40"""
    return "；".join(f"{ch['name']} {a['status_zh']} {a['at']}".strip() for ch in r["channels"] for a in ch["attempts"])


def _follow_up(r: dict[str, Any]) -> tuple[str, str]:
    visits = r["follow_up"]["visits"]
    return ("; ".join(f"{v['who']}@{v['at']}" + (f": {v['note']}" if v["note"] else "") for v in visits),
            "; ".join(f"{x['outcome']}@{x['at']}" + (f": {x['note']}" if x["note"] else "")
                      for v in visits for x in v["results"]))


def _follow_up_zh(r: dict[str, Any]) -> tuple[str, str]:
    visits = r["follow_up"]["visits"]
    return ("；".join(f"{v['who']} {v['at']}" + (f"（{v['note']}）" if v["note"] else "") for v in visits),
            "；".join(f"{x['at']} {views.OUTCOME_ZH.get(x['outcome'], x['outcome'])}"
                      + (f"：{x['note']}" if x["note"] else "") for v in visits for x in v["results"]))


def _download(body: str, media: str, filename: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                     "Cache-Control": "no-store"})
