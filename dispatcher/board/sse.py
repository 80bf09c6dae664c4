"""Live updates over Server-Sent Events.

The stream polls the database (every quarter second) for a cheap fingerprint of what the page shows
(``services/live.py``: the newest record event, the newest attempt change, the number of call-outs),
so changes made by workers in other processes show within a second. On a change it re-renders the
rows and sends only those whose HTML changed, plus the order and the summary. Every read here is a
short read-only transaction of its own: a stream lives for minutes and holds no transaction open.

What the browser holds is named by a *version*: the data fingerprint (without the clock) and the
time the rows were rendered at. The page carries it, and every event carries it as its SSE id,
which EventSource sends back as Last-Event-ID when it reconnects — after a stream's lifetime, a
dropped connection or a server restart. If the data has not changed since, the stream re-renders
the rows at that time, which reproduces exactly what the browser shows, and sends only what differs
from it now; if it has changed (an acknowledgement arrived while the browser was cut off), every
row is sent again. A board never keeps showing a row that moved while it was away. A ``since`` or
Last-Event-ID that is not such a version (garbage, a time no calendar holds) counts as none: the
stream starts from the whole table.

Every few seconds (``SESSION_CHECK``) the stream reads its sign-in back: once it has ended (signed
out, ``jiaoying users sign-out``, a disabled account, expired) or the user's role changed, the
stream sends ``signed_out`` and ends; the browser's reconnect is then refused (401).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.session import transaction
from ..services import callout_views, drills, live
from ..services import warnings as queries
from ..services.errors import NotFound
from ..services.users import Role
from ..web.deps import ClockDep, SettingsDep
from . import auth, views
from .pages import Ctx, context, environment
from .views import Filters

router = APIRouter()
POLL = 0.25  # seconds: a change shows within a quarter second plus the time to render it
STREAM_LIFETIME = 300.0  # seconds; the browser reconnects
KEEPALIVE = 15.0
SESSION_CHECK = 5.0  # seconds between reading the stream's sign-in back


def snapshot(settings: Settings, warning_id: str, ctx: Ctx, filters: Filters) -> dict[str, Any]:
    """What the board shows of one warning, and ``version``: the data version, read before the rows
    (so it never claims newer data than they show)."""
    with transaction(settings.database_url, write=False) as session:
        try:
            row = queries.get_row(session, warning_id, None)
        except NotFound:
            raise HTTPException(404, f"no warning {warning_id}") from None
        record = row.root_id or row.id
        version = _version(session, record)
        warning = queries.summary(row) | views.level_view(row.level)
        counts = callout_views.counts(session, record)
        rows = views.board_rows(session, record, ctx.now, show_phones=ctx.may(Role.OFFICER), lang=ctx.lang)
        broadcasts = views.broadcasts(session, record)
        matched = queries.last_match(session, record)
        if views.hidden_drill(session, record, ctx.may(Role.ADMIN)):  # a blind drill: as real until revealed
            warning["drill"] = False
            drills.conceal_rows(rows)
    # the fallback's reason is written "中文 (English)": the board says it in its own language
    warning["fallback"] = views.bilingual(matched.data.get("fallback"), ctx.lang) if matched else None
    warning["ago"] = views.ago((ctx.now - row.sent).total_seconds(), ctx.lang)
    warning["sent_text"] = views.stamp(row.sent)
    warning["status_zh"] = views.STATUS_ZH.get(row.status, row.status)
    return {"warning": warning, "counts": counts, "all_rows": rows, "rows": [r for r in rows if filters.keep(r)],
            "choices": views.choices(rows), "record": record, "broadcasts": broadcasts, "version": version,
            "outcomes": views.OUTCOMES}


def data_version(settings: Settings, record: str | None) -> str:
    """A short name for the state of a warning's rows (or of the active warnings)."""
    with transaction(settings.database_url, write=False) as session:
        return _version(session, record)


def _version(session: Session, record: str | None) -> str:
    return hashlib.sha256(repr(live.fingerprint(session, record)).encode()).hexdigest()[:16]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def version_tag(data: str, rendered_at: datetime) -> str:
    """``<data version>.<render time in µs>``: exact, and nothing a URL would mangle."""
    return f"{data}.{(rendered_at - _EPOCH) // _US}"


_TAG = re.compile(r"([0-9a-f]{16})\.([0-9]{1,20})")


def _parse_tag(tag: str) -> tuple[str, datetime] | None:
    """What ``version_tag`` made, or None for anything else (the stream then starts afresh)."""
    found = _TAG.fullmatch(tag.strip())
    if found is None:
        return None
    try:
        return found.group(1), _EPOCH + int(found.group(2)) * _US
    except OverflowError:  # beyond the year 9999
        return None


def _fingerprint(settings: Settings, record: str | None) -> tuple[Any, ...]:
    # Its own short read-only transaction per poll: a stream lives for minutes and must hold none open.
    with transaction(settings.database_url, write=False) as session:
        data = live.fingerprint(session, record)
    return (*data, int(time.time() // 10))  # overdue flags and "time since" move with the clock


def _message(event: str, data: dict[str, Any], tag: str = "") -> str:
    head = f"id: {tag}\n" if tag else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Sent:
    """What one stream has sent: each row's HTML, and the data it was rendered from — a row whose
    data did not change is not rendered again (2,000 rows: most of an update's time)."""

    def __init__(self) -> None:
        self.html: dict[int, str] = {}
        self.data: dict[int, str] = {}
        self.order: list[str] | None = None

    def clear(self) -> None:
        self.html.clear()
        self.data.clear()
        self.order = None


def _board_update(ctx: Ctx, data: dict[str, Any], sent: Sent) -> dict[str, Any]:
    env = environment()
    row_template, summary = env.get_template("_row.html"), env.get_template("_summary.html")
    common = {"ctx": ctx, "t": ctx.t, "csrf": ctx.csrf, "lang": ctx.lang, "outcomes": data["outcomes"],
              "officer": ctx.may(Role.OFFICER)}
    changed: dict[str, str] = {}
    html: dict[int, str] = {}
    keys: dict[int, str] = {}
    for r in data["rows"]:
        i, key = r["id"], repr(r)
        keys[i] = key
        if sent.data.get(i) == key and i in sent.html:
            html[i] = sent.html[i]
            continue
        html[i] = row_template.render(r=r, **common)
        if sent.html.get(i) != html[i]:
            changed[str(i)] = html[i]
    sent.html, sent.data = html, keys
    update: dict[str, Any] = {"rows": changed,
                              "summary": summary.render(counts=data["counts"], warning=data["warning"], **common)}
    order = [str(r["id"]) for r in data["rows"]]
    if order != sent.order:  # 2,000 ids are most of an event: only when rows come, go or move
        update["order"] = sent.order = order
    return update


def _epoch_ms(at: datetime) -> int:
    """The board's clock as board.js takes it (the page's ``data-now``): ms since the epoch."""
    return int(at.timestamp() * 1000)


def _signed_in(request: Request, settings: Settings, now: datetime, who: auth.BoardSession) -> bool:
    """The stream's sign-in still holds, with the role it was opened with."""
    with transaction(settings.database_url, write=False) as session:
        fresh = auth.current(settings, session, request, now)
    return fresh is not None and fresh.nonce == who.nonce and fresh.user.role == who.user.role


async def _stream(request: Request, settings: Settings, record: str | None, render: Any,
                  signed_in: Callable[[], bool]) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    last: tuple[Any, ...] | None = None
    started = quiet = checked = time.monotonic()
    while time.monotonic() - started < STREAM_LIFETIME and not await request.is_disconnected():
        if time.monotonic() - checked >= SESSION_CHECK:
            checked = time.monotonic()
            if not await run_in_threadpool(signed_in):
                yield _message("signed_out", {"login": "/board/login"})
                return
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
                     state: str = "", town: str = "", role: str = "", since: str = "") -> StreamingResponse:
    ctx = await run_in_threadpool(context, request, settings, clock())
    if ctx.who is None:
        raise HTTPException(401, "sign in at /board/login")
    filters = Filters(state, town, role)
    first = await run_in_threadpool(snapshot, settings, warning_id, ctx, filters)
    record = first["record"]
    sent = Sent()
    held = _parse_tag(request.headers.get("last-event-id") or since)
    if held is not None:
        # Re-render what the browser holds, if the data is still what it was rendered from; the
        # stream's first event then carries only what differs from it, never the whole table again.
        def seed() -> None:
            then = Ctx(settings, held[1], ctx.lang, ctx.who)
            rows = snapshot(settings, warning_id, then, filters)
            if rows["version"] != held[0]:
                return
            _board_update(then, rows, sent)
            if data_version(settings, record) != held[0]:  # it moved while we looked: send everything
                sent.clear()

        await run_in_threadpool(seed)

    def render() -> str:
        fresh = Ctx(settings, clock(), ctx.lang, ctx.who)
        rows = snapshot(settings, warning_id, fresh, filters)
        update = _board_update(fresh, rows, sent) | {"now": _epoch_ms(fresh.now)}  # board.js counts from it
        return _message("board", update, version_tag(rows["version"], fresh.now))

    who = ctx.who
    return _sse(_stream(request, settings, record, render, lambda: _signed_in(request, settings, clock(), who)))


@router.get("/board/live")
async def overview_live(request: Request, settings: SettingsDep, clock: ClockDep) -> StreamingResponse:
    ctx = await run_in_threadpool(context, request, settings, clock())
    if ctx.who is None:
        raise HTTPException(401, "sign in at /board/login")

    def render() -> str:
        fresh = Ctx(settings, clock(), ctx.lang, ctx.who)
        with transaction(settings.database_url, write=False) as session:
            cards = views.overview(session, fresh.now, admin=fresh.may(Role.ADMIN))
        html = environment().get_template("_cards.html").render(cards=cards, ctx=fresh, t=fresh.t, lang=fresh.lang)
        return _message("overview", {"cards": html, "now": _epoch_ms(fresh.now)})

    who = ctx.who
    return _sse(_stream(request, settings, None, render, lambda: _signed_in(request, settings, clock(), who)))
