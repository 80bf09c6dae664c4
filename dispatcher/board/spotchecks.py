"""六问 spot-checks (抽查) on the board: the history with each one's seed and verdict counts, a
spot-check's page (the seed and the draw, per question a tally, per person the answers, the
follow-up list first), 开始抽查 for officers, and the workbooks. The same services as
``jiaoying spotcheck``; every signed-in role may look, officers start one and export."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from ..db.session import transaction
from ..db.tables import WarningRow
from ..domain.spotcheck import MAX_SIZE, NO, YES
from ..services import spotchecks
from ..services.errors import NotReady
from ..services.site import current_site
from ..services.users import Role
from ..services.warnings import list_warnings, possible_id
from ..web.deps import ClockDep, SettingsDep, UnitOfWorkDep
from .actions import acting, bad_text, refuse
from .pages import Ctx, context, render, require

router = APIRouter()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
VIA = {"sms": "短信", "voice": "电话按键", "link": "链接", "manual": "代确认"}
VERDICTS = ("ok", "no", "missing", "open")  # the order the counts are shown in
CSS = {"ok": "ok", "no": "no", "missing": "no", "open": "wait"}
MARK = {YES: ("是", "yes"), NO: ("否", "no"), None: ("未答", "none")}
SEED_MAX = 2 ** 63 - 1
_WHOLE = re.compile(r"[0-9]{1,19}")
_FULLWIDTH_DIGITS = {ord("０") + i: ord("0") + i for i in range(10)}


def whole_number(text: str) -> int | None:
    """A whole number typed into a form (full-width digits too, as a Chinese input method types
    them), or None for anything else."""
    text = text.strip().translate(_FULLWIDTH_DIGITS)
    return int(text) if _WHOLE.fullmatch(text) else None


@dataclass(frozen=True)
class Asked:
    """The start form as filled in (shown again with the message when it is refused)."""

    spotcheck: str = ""
    size: str = ""
    seed: str = ""
    during: str = ""


def _counts(ctx: Ctx, result: spotchecks.Result) -> list[tuple[str, str, int]]:
    """(css class, words, number) per verdict that someone has."""
    return [(CSS[v], ctx.t(spotchecks.VERDICT_ZH[v]), result.count(v)) for v in VERDICTS if result.count(v)]


def _list(ctx: Ctx, request: Request, status: int = 200, error: str = "", asked: Asked | None = None) -> Response:
    with transaction(ctx.settings.database_url, write=False) as session:
        site = current_site(session)
        history = [{"id": r.id, "headline": r.headline, "at": f"{r.at.astimezone(site.tz):%Y-%m-%d %H:%M}",
                    "seed": r.frozen.seed, "size": r.frozen.size, "drawn": len(r.frozen.drawn),
                    "short": len(r.frozen.drawn) < r.frozen.size, "counts": _counts(ctx, r),
                    "waiting": not r.started}
                   for r in spotchecks.history(session, 50)]
        choices = [(s.id, s.name, s.size) for s in site.spotchecks]
        warnings = [(w["id"], w["headline"]) for w in list_warnings(session, None, active=True, limit=50)]
    default_size = str(choices[0][2]) if len(choices) == 1 else ""
    asked = asked or Asked(size=default_size)
    return render(ctx, request, "spotchecks.html", status, history=history, choices=choices, warnings=warnings,
                  error=error, asked=asked, max_size=MAX_SIZE)


@router.get("/board/spotchecks")
def spotcheck_list(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    return _list(ctx, request)


def _nobody(ctx: Ctx, session: Session, wanted: str | None, size: int | None) -> str:
    """Why nobody can be drawn, in the board's words."""
    spotcheck, sample, _ = spotchecks.preview(session, wanted, ctx.now, size, 0)
    if sample.skipped:
        return ctx.t("无人可抽：担任抽查岗位的{n}人均在近{days}天内抽查过，未再抽取。").format(
            n=len(sample.skipped), days=spotcheck.skip_days)
    return ctx.t("无人可抽：没有人担任该抽查的岗位（或缺少可用的电话、短信号码）。")


def _refusal(ctx: Ctx, asked: Asked) -> tuple[str, int | None, int | None]:
    """The message for a start form that cannot be right whatever the database holds ("" if none),
    and the size and seed read from it."""
    t = ctx.t
    size = seed = None
    if asked.size.strip():
        size = whole_number(asked.size)
        if size is None or not 1 <= size <= MAX_SIZE:
            message = t("抽取人数须为1至{max}的整数，而不是“{value}”。")
            return message.format(max=MAX_SIZE, value=asked.size[:20]), None, None
    if asked.seed.strip():
        seed = whole_number(asked.seed)
        if seed is None or seed > SEED_MAX:
            message = t("随机种子须为不小于0的整数（留空则随机生成），而不是“{value}”。")
            return message.format(value=asked.seed[:30]), None, None
    return "", size, seed


@router.post("/board/spotchecks")
async def start(request: Request, settings: SettingsDep, clock: ClockDep, uow: UnitOfWorkDep) -> Response:
    form = await request.form()
    act = acting(request, settings, clock(), str(form.get("csrf", "")), Role.OFFICER)
    t = act.ctx.t
    asked = Asked(*(str(form.get(name, "")) for name in ("spotcheck", "size", "seed", "during")))
    for value, field, field_zh in ((asked.spotcheck, "spotcheck", "抽查"), (asked.during, "during", "关联预警")):
        if (refused := bad_text(act.ctx, request, value, field, field_zh)) is not None:
            return refused
    error, size, seed = _refusal(act.ctx, asked)
    if error:
        return _list(act.ctx, request, 422, error=error, asked=asked)
    wanted = asked.spotcheck.strip() or None
    during = asked.during.strip() or None
    started = None
    try:
        with uow as session:
            error = _unknown(act.ctx, session, wanted, during)
            if not error:
                try:
                    started = spotchecks.start(session, wanted, act.ctx.now, act.by, size=size, seed=seed,
                                               during=during)
                except spotchecks.NobodyToDraw:
                    error = _nobody(act.ctx, session, wanted, size)
                else:
                    uow.wake()  # the engine calls the people drawn now
    except NotReady:
        error = t("尚未加载本县的站点文件（jiaoying load）。")
    if started is None:  # bad input: nothing was started
        return _list(act.ctx, request, 422, error=error, asked=asked)
    return RedirectResponse(f"/board/spotchecks/{started.id}", status_code=303)


def _unknown(ctx: Ctx, session: Session, wanted: str | None, during: str | None) -> str:
    """The message for a spot-check or a warning the site does not have ("" when both are known)."""
    t = ctx.t
    try:
        spotchecks.find(current_site(session), wanted)
    except spotchecks.UnknownSpotCheck:
        return t("没有这个抽查：{id}").format(id=wanted[:40]) if wanted else t(
            "本县尚未配置六问抽查（checks.yaml 的 spotchecks）。")
    if during is not None:
        row = session.get(WarningRow, during) if possible_id(during) else None
        if row is None or row.kind != "warning":
            return t("没有这个预警：{id}").format(id=during[:40])
    return ""


def _xlsx(body: bytes, name: str) -> Response:
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{name}.xlsx\"; "
                               "filename*=UTF-8''%E5%85%AD%E9%97%AE%E6%8A%BD%E6%9F%A5" + f"-{name}.xlsx"})


@router.get("/board/spotchecks/export.xlsx")
def export_all(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.OFFICER)
    with transaction(settings.database_url, write=False) as session:
        body = spotchecks.to_xlsx(session)
    return _xlsx(body, "spotchecks")


def _result(ctx: Ctx, request: Request, session: Session, spotcheck_id: str) -> spotchecks.Result | Response:
    missing = ctx.t("没有这个抽查：{id}").format(id=spotcheck_id[:40])
    if not possible_id(spotcheck_id):
        return refuse(ctx, request, missing, 404)
    try:
        return spotchecks.result(session, spotcheck_id)
    except spotchecks.UnknownSpotCheck:
        return refuse(ctx, request, missing, 404)


@router.get("/board/spotchecks/{spotcheck_id}/export.xlsx")
def export_one(spotcheck_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    require(ctx, Role.OFFICER)
    with transaction(settings.database_url, write=False) as session:
        found = _result(ctx, request, session, spotcheck_id)
        if isinstance(found, Response):
            return found
        body = spotchecks.to_xlsx(session, found.id)
    return _xlsx(body, found.id)


@router.get("/board/spotchecks/{spotcheck_id}")
def spotcheck_page(spotcheck_id: str, request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    ctx = context(request, settings, clock())
    if ctx.who is None:
        return RedirectResponse("/board/login", status_code=303)
    with transaction(settings.database_url, write=False) as session:
        found = _result(ctx, request, session, spotcheck_id)
        if isinstance(found, Response):
            return found
        tz = current_site(session).tz
        during = session.get(WarningRow, found.frozen.during) if found.frozen.during else None
    r = found
    people = [_describe(ctx, p, r.questions, tz) for p in r.people]
    kept = r.frozen
    tallies = [{"n": q + 1, "question": question, **r.tally(q)} for q, question in enumerate(r.questions)]
    waiting = not r.started or r.count("open") > 0
    return render(ctx, request, "spotcheck.html", spotcheck={
        "id": r.id, "headline": r.headline, "at": f"{r.at.astimezone(tz):%Y-%m-%d %H:%M}", "seed": kept.seed,
        "size": kept.size, "drawn": len(kept.drawn), "available": kept.available, "skipped": len(kept.skipped),
        "skip_days": kept.spotcheck.skip_days, "short": len(kept.drawn) < kept.size, "name": kept.spotcheck.name,
        "minutes": f"{kept.spotcheck.answer_within.total_seconds() / 60:g}", "check": kept.spotcheck.id,
        "during": ({"id": during.id, "headline": during.headline} if during is not None else None)},
        questions=list(r.questions), tallies=tallies, people=people,
        follow_up=[p for p in people if p["follow_up"]], counts=_counts(ctx, r), waiting=waiting,
        started=r.started)


def _describe(ctx: Ctx, p: spotchecks.PersonResult, questions: tuple[str, ...], tz: Any) -> dict[str, Any]:
    t = ctx.t
    return {"name": p.name, "town": p.town, "reason": p.reason, "follow_up": p.follow_up,
            "answers": [(MARK[m][1], t(MARK[m][0])) for m in p.answers],
            "verdict": t(spotchecks.VERDICT_ZH[p.verdict]), "css": CSS[p.verdict],
            "at": f"{p.answered_at.astimezone(tz):%H:%M:%S}" if p.answered_at else "",
            "via": t(VIA.get(p.via or "", p.via or "")), "again": p.not_answered_reply,
            "problems": [(q + 1, question, t(MARK[m][0])) for q, (question, m)
                         in enumerate(zip(questions, p.answers, strict=False)) if m != YES]}
