"""Live updates over Server-Sent Events.

The stream polls the database (every half second) for a cheap fingerprint of what the page shows
— the newest record event, the newest attempt change, the number of call-outs — so changes made
by workers in other processes show within a second. On a change it re-renders the rows and sends
only those whose HTML changed, plus the order and the summary. Streams end after a few minutes;
the browser's EventSource reconnects by itself (also after a server restart) and is sent every
row again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from ..api.deps import ClockDep, SettingsDep
from ..config import Settings
from ..db.session import transaction
from ..db.tables import AttemptRow, CalloutRow, EventRow, WarningRow
from ..services import callout_views
from ..services import warnings as queries
from ..services.errors import NotFound
from ..services.users import Role
from . import views
from .pages import Ctx, context, environment
from .views import Filters

router = APIRouter()
POLL = 0.5  # seconds
STREAM_LIFETIME = 300.0  # seconds; the browser reconnects
KEEPALIVE = 15.0


def snapshot(settings: Settings, warning_id: str, ctx: Ctx, filters: Filters) -> dict[str, Any]:
    with transaction(settings.database_url) as session:
        try:
            row = queries.get_row(session, warning_id, None)
        except NotFound:
            raise HTTPException(404, f"no warning {warning_id}") from None
        record = row.root_id or row.id
        warning = queries.summary(row) | views.level_view(row.level)
        counts = callout_views.counts(session, record)
        rows = views.board_rows(session, record, ctx.now, show_phones=ctx.may(Role.OFFICER))
        broadcasts = views.broadcasts(session, record)
    return {"warning": warning, "counts": counts, "all_rows": rows, "rows": [r for r in rows if filters.keep(r)],
            "choices": views.choices(rows), "record": record, "broadcasts": broadcasts}


def _fingerprint(settings: Settings, record: str | None) -> tuple[Any, ...]:
    with transaction(settings.database_url) as session:
        events = select(func.max(EventRow.id))
        attempts = select(func.max(AttemptRow.updated_at), func.count(AttemptRow.id))
        callouts = select(func.count(CalloutRow.id))
        if record is not None:
            events = events.where(EventRow.warning_id == record)
            attempts = attempts.where(AttemptRow.record_id == record)
            callouts = callouts.where(CalloutRow.record_id == record)
        else:
            callouts = select(func.count(WarningRow.id)).where(WarningRow.status == "active")
        return (session.scalar(events), *session.execute(attempts).one(), session.scalar(callouts),
                int(time.time() // 10))  # overdue flags and "time since" move with the clock


def _message(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _board_update(ctx: Ctx, data: dict[str, Any], sent: dict[int, str]) -> dict[str, Any]:
    env = environment()
    row_template, summary = env.get_template("_row.html"), env.get_template("_summary.html")
    common = {"ctx": ctx, "t": ctx.t, "csrf": ctx.csrf, "lang": ctx.lang}
    html = {r["id"]: row_template.render(r=r, **common) for r in data["rows"]}
    changed = {str(i): h for i, h in html.items() if sent.get(i) != h}
    sent.clear()
    sent.update(html)
    return {"rows": changed, "order": [str(r["id"]) for r in data["rows"]],
            "summary": summary.render(counts=data["counts"], warning=data["warning"], **common)}


async def _stream(request: Request, settings: Settings, record: str | None,
                  render: Any) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    last: tuple[Any, ...] | None = None
    started = quiet = time.monotonic()
    while time.monotonic() - started < STREAM_LIFETIME and not await request.is_disconnected():
        mark = await run_in_threadpool(_fingerprint, settings, record)
        if mark != last:
            last, quiet = mark, time.monotonic()
            yield await run_in_threadpool(render)
        elif time.monotonic() - quiet > KEEPALIVE:
            quiet = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL)


def _sse(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/board/warnings/{warning_id}/live")
async def board_live(warning_id: str, request: Request, settings: SettingsDep, clock: ClockDep,
                     state: str = "", town: str = "", role: str = "") -> StreamingResponse:
    ctx = await run_in_threadpool(context, request, settings, clock())
    if ctx.who is None:
        raise HTTPException(401, "sign in at /board/login")
    filters = Filters(state, town, role)
    first = await run_in_threadpool(snapshot, settings, warning_id, ctx, filters)
    sent: dict[int, str] = {}
    # The page already holds these rows: seed what the stream has "sent", so its first event carries
    # only what changed since the page was rendered, never the whole table again.
    await run_in_threadpool(_board_update, ctx, first, sent)

    def render() -> str:
        fresh = Ctx(settings, clock(), ctx.lang, ctx.who)
        return _message("board", _board_update(fresh, snapshot(settings, warning_id, fresh, filters), sent))

    return _sse(_stream(request, settings, first["record"], render))


@router.get("/board/live")
async def overview_live(request: Request, settings: SettingsDep, clock: ClockDep) -> StreamingResponse:
    ctx = await run_in_threadpool(context, request, settings, clock())
    if ctx.who is None:
        raise HTTPException(401, "sign in at /board/login")

    def render() -> str:
        fresh = Ctx(settings, clock(), ctx.lang, ctx.who)
        with transaction(settings.database_url) as session:
            cards = views.overview(session, fresh.now)
        html = environment().get_template("_cards.html").render(cards=cards, ctx=fresh, t=fresh.t, lang=fresh.lang)
        return _message("overview", {"cards": html})

    return _sse(_stream(request, settings, None, render))
