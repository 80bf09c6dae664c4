"""Duty roll-calls (值班点名): started by the scheduler at the site's times, or on demand by a duty
officer (the board, ``jiaoying rollcall start``); run by the engine like a warning's call-outs.

A roll-call is a record of kind ``rollcall`` in the warnings table: its call-outs, attempts, timers,
acknowledgements and hash-chained record are the warning's own machinery. What it calls is decided
when the engine applies it (``resolution``): whoever is on shift at its time in each duty room.

A scheduled roll-call is started at most once: its identifier is the check and the minute it is
for, unique per sender, so a second scheduler, a restart or a retried pass finds it already there.
One missed by more than ``CATCH_UP`` (the engine was down) is not started late; /readyz says so.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.codec import rollcall_from_dict, rollcall_to_dict
from ..db.record_repo import append_event
from ..db.tables import AttemptRow, CalloutRow, EventRow, SiteRow, WarningRow
from ..domain.callouts import ROLLCALL_HAZARD
from ..domain.checks import CheckKind, RollCall
from ..domain.hazards import Level
from ..domain.record import EventKind
from ..domain.rollcall import DUTY_PHONE, duty_phone, plan_rollcall
from ..domain.rules import Gap, GapKind, Resolution
from ..domain.site import Site
from .intake import insert_record
from .site import current_site

SENDER = "jiaoying"  # the sender of the county's own routine checks
CATCH_UP = timedelta(minutes=30)
MISSED_WITHIN = timedelta(hours=24)  # how far back /readyz looks for scheduled roll-calls that never ran
LEVEL = Level.BLUE  # a roll-call's messages queue behind every warning's


class UnknownRollCall(LookupError):
    pass


@dataclass(frozen=True)
class Started:
    id: str
    created: bool  # False: this scheduled roll-call had already been started


def schedule_key(secret: str) -> bytes:
    """The key the weekly roll-call minute is drawn with: from the deployment's secret, so the
    site files alone do not tell when the unannounced roll-call comes."""
    return hmac.new(secret.encode(), b"jiaoying rollcall schedule", hashlib.sha256).digest()


@dataclass(frozen=True)
class Due:
    rollcall: RollCall
    at: datetime  # the time it is scheduled for

    @property
    def identifier(self) -> str:
        return f"rollcall:{self.rollcall.id}:{self.at.astimezone(UTC):%Y%m%dT%H%MZ}"


def due(session: Session, now: datetime, key: bytes) -> list[Due]:
    """Scheduled roll-calls whose time has come (within ``CATCH_UP``) and that have not started:
    a read, so a pass with nothing due takes no write lock."""
    site = current_site(session)
    wanted = [Due(r, at) for r in site.rollcalls for at in r.times_between(now - CATCH_UP, now, site.tz, key)]
    return _not_started(session, wanted)


def start_due(session: Session, items: list[Due], now: datetime) -> list[str]:
    """Start these scheduled roll-calls (each once, however many schedulers try); the ids started."""
    site = current_site(session)
    started = []
    for item in items:
        result = _start(session, site, item.rollcall, item.at, now, actor="schedule", identifier=item.identifier)
        if result.created:
            started.append(result.id)
    return started


def start_now(session: Session, rollcall_id: str | None, now: datetime, actor: str) -> Started:
    """A roll-call on demand (the first of the site's, unless one is named)."""
    site = current_site(session)
    rollcall = next((r for r in site.rollcalls if rollcall_id in (None, r.id)), None)
    if rollcall is None:
        known = ", ".join(r.id for r in site.rollcalls) or "none in checks.yaml"
        raise UnknownRollCall(f"no roll-call {rollcall_id!r} (roll-calls: {known})" if rollcall_id
                              else "the site has no roll-call: add one to checks.yaml")
    identifier = f"rollcall:{rollcall.id}:now:{now:%Y%m%dT%H%M%S}:{secrets.token_hex(3)}"
    return _start(session, site, rollcall, now, now, actor=actor, identifier=identifier)


def missed(session: Session, now: datetime, key: bytes) -> list[tuple[RollCall, datetime]]:
    """Scheduled roll-calls of the last day that never started (the engine was away past
    ``CATCH_UP``), since the site was loaded."""
    site = current_site(session)
    if not site.rollcalls:
        return []
    loaded = session.scalar(select(SiteRow.loaded_at)) or now
    since = max(now - MISSED_WITHIN, loaded)
    wanted = [Due(r, at) for r in site.rollcalls for at in r.times_between(since, now - CATCH_UP, site.tz, key)]
    return [(d.rollcall, d.at) for d in _not_started(session, wanted)]


def _not_started(session: Session, wanted: list[Due]) -> list[Due]:
    if not wanted:
        return []
    found = set(session.scalars(select(WarningRow.identifier).where(
        WarningRow.sender == SENDER, WarningRow.identifier.in_([d.identifier for d in wanted]))))
    return [d for d in wanted if d.identifier not in found]


def resolution(session: Session, row: WarningRow, start: datetime) -> tuple[Resolution, dict[str, Any]]:
    """Who the roll-call calls, as the site's rota has it at the roll-call's time (the roll-call's
    own definition is frozen on its row: a later edit of checks.yaml does not change one under way),
    and what its record keeps of it: the rooms called and those with nobody on shift."""
    site = current_site(session)
    rollcall = rollcall_from_dict(json.loads(row.raw))
    plan = plan_rollcall(site, rollcall, row.sent, start)
    names = {r.area: r.name for r in plan.rooms}
    gaps = tuple(Gap(GapKind.NO_DUTY_SHIFT, f"rollcall:{rollcall.id}", area, f"{names[area]}无人值班")
                 for area in plan.unmanned)
    kept = {"rooms": [[r.area, r.name] for r in plan.rooms], "unmanned": list(plan.unmanned)}
    return Resolution((f"rollcall:{rollcall.id}",), plan.callouts, gaps, None), kept


def _start(session: Session, site: Site, rollcall: RollCall, at: datetime, now: datetime, *, actor: str,
           identifier: str) -> Started:
    existing = session.scalar(select(WarningRow.id).where(WarningRow.sender == SENDER,
                                                          WarningRow.identifier == identifier))
    if existing is not None:
        return Started(existing, created=False)
    local = at.astimezone(site.tz)
    county = site.areas.roots[0] if site.areas.roots else ""
    headline = f"{rollcall.name}（{local.month}月{local.day}日{local:%H:%M}）"
    row, created = insert_record(session, now, lambda record_id: WarningRow(
        id=record_id, sender=SENDER, identifier=identifier, msg_type="alert", references=[],
        kind=CheckKind.ROLLCALL.value, hazard=ROLLCALL_HAZARD, level=LEVEL.value,
        areas=[county] if county else [], zones=[], headline=headline, sent=at, expires=None, drill=False,
        instruction=f"请在{_minutes(rollcall)}分钟内确认在岗",
        status="active", received_at=now, source_format="check",
        raw=json.dumps(rollcall_to_dict(rollcall), ensure_ascii=False),
    ), lambda: session.scalar(select(WarningRow).where(WarningRow.sender == SENDER,
                                                       WarningRow.identifier == identifier)))
    if not created:  # a second scheduler started it at the same moment
        return Started(row.id, created=False)
    append_event(session, row.id, EventKind.ROLLCALL_STARTED, actor, now, {
        "warning": row.id, "rollcall": rollcall.id, "name": rollcall.name, "at": at.isoformat(),
        "headline": headline, "answer_within": rollcall.answer_within.total_seconds(),
        "channels": [c.value for c in rollcall.channels]})
    return Started(row.id, created=True)


def _minutes(rollcall: RollCall) -> str:
    return f"{rollcall.answer_within.total_seconds() / 60:g}"


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One person called in a roll-call: ``outcome`` present | late | absent | open."""

    person_id: str
    name: str
    post: str  # 值班长, 值班员 … (the call-out's reason after the room's name)
    outcome: str
    answered_at: datetime | None
    via: str | None  # sms | voice | link | manual
    by: str | None  # who answered, when not the person themself (a duty officer on their behalf)


@dataclass(frozen=True)
class RoomResult:
    """One duty room in one roll-call: 到岗 (answered in time, by the person on shift), 迟到 (later),
    未到岗 (not at all, or only someone else for them), 无人值班 (nobody on shift to call)."""

    area: str
    name: str
    called: int
    present: int  # answered in time themselves
    late: int  # answered themselves, after answer_within
    absent: int  # no answer of their own (yet, or ever)
    open: int  # still within answer_within, not answered
    unmanned: bool
    people: tuple[Answer, ...] = ()

    @property
    def manned(self) -> bool:
        """The room answered the roll-call: someone on shift there answered in time."""
        return self.present > 0

    @property
    def verdict(self) -> str:
        """manned (到岗) | unmanned (无人值班) | open (点名中) | missing (未到岗): the one place it is decided."""
        if self.manned:
            return "manned"
        if self.unmanned:
            return "unmanned"
        return "open" if self.open else "missing"


VERDICT_ZH = {"manned": "到岗", "unmanned": "无人值班", "open": "点名中", "missing": "未到岗"}


def room_phone(session: Session, site: Site, attempt: AttemptRow) -> str | None:
    """The duty room's phone (E.164) that a roll-call's call to it (``DUTY_PHONE``, checks.yaml
    ``call: duty_phone``) rang; None for any other attempt. A provider's report of such a call names
    that number, not one of the person's."""
    if attempt.number != DUTY_PHONE:
        return None
    callout = session.get(CalloutRow, attempt.callout_id)
    return duty_phone(site, callout.room if callout is not None else None)


def results(session: Session, record_id: str) -> list[RoomResult]:
    found = results_of(session, [record_id])
    if record_id not in found:
        raise UnknownRollCall(record_id)
    return found[record_id]


def results_of(session: Session, record_ids: list[str]) -> dict[str, list[RoomResult]]:
    """Each roll-call's results per room, by id (ids that are no roll-call are left out): three
    queries for them all, however many (a list page, a workbook of 500)."""
    if not record_ids:
        return {}
    raws = dict(session.execute(select(WarningRow.id, WarningRow.raw).where(
        WarningRow.id.in_(record_ids), WarningRow.kind == CheckKind.ROLLCALL.value)).all())
    matched: dict[str, dict[str, Any]] = {}
    for record, data in session.execute(select(EventRow.warning_id, EventRow.data).where(
            EventRow.warning_id.in_(list(raws)), EventRow.kind == EventKind.MATCHED.value).order_by(EventRow.id)):
        matched.setdefault(record, dict(data or {}))
    callouts: dict[str, list[Any]] = {}
    for c in session.execute(select(CalloutRow.record_id, CalloutRow.room, CalloutRow.person_id, CalloutRow.state,
                                    CalloutRow.started_at, CalloutRow.acknowledged_at, CalloutRow.acknowledged_by,
                                    CalloutRow.ack_via, CalloutRow.reason)
                             .where(CalloutRow.record_id.in_(list(raws))).order_by(CalloutRow.id)):
        callouts.setdefault(c.record_id, []).append(c)
    if not raws:
        return {}
    people = current_site(session).people
    return {record: _rooms(rollcall_from_dict(json.loads(raw)), matched.get(record, {}), callouts.get(record, []),
                           people) for record, raw in raws.items()}


def _rooms(rollcall: RollCall, matched: dict[str, Any], callouts: list[Any], people: Any) -> list[RoomResult]:
    unmanned = set(matched.get("unmanned", []))
    out = []
    for area, name in matched.get("rooms", []):
        answers = []
        for c in (c for c in callouts if c.room == area):
            own = c.acknowledged_at is not None and c.acknowledged_by == c.person_id
            if own and c.acknowledged_at - c.started_at <= rollcall.answer_within:
                outcome = "present"
            elif own:
                outcome = "late"
            elif c.state in ("pending", "notified"):
                outcome = "open"
            else:
                outcome = "absent"
            person = people.get(c.person_id)
            answers.append(Answer(c.person_id, person.name if person else c.person_id,
                                  c.reason.removeprefix(name), outcome, c.acknowledged_at, c.ack_via,
                                  None if own or c.acknowledged_by is None else c.acknowledged_by))
        count = {o: sum(a.outcome == o for a in answers) for o in ("present", "late", "absent", "open")}
        out.append(RoomResult(area, name, len(answers), count["present"], count["late"], count["absent"],
                              count["open"], area in unmanned, tuple(answers)))
    return out


def result_event(session: Session, record_id: str) -> dict[str, Any]:
    """What the record keeps of a settled roll-call (``rollcall_result``): each room's verdict and
    counts, as ``results`` has them once every call-out has closed."""
    rooms = results(session, record_id)
    verdicts = [r.verdict for r in rooms]
    return {"rooms": [{"area": r.area, "name": r.name, "verdict": r.verdict, "called": r.called,
                       "present": r.present, "late": r.late, "absent": r.absent} for r in rooms],
            "manned": verdicts.count("manned"), "missing": verdicts.count("missing"),
            "unmanned": verdicts.count("unmanned")}


def history(session: Session, limit: int = 50, record_id: str | None = None) -> list[dict[str, Any]]:
    """The latest roll-calls, newest first, with their totals (or the one ``record_id``)."""
    query = select(WarningRow.id, WarningRow.headline, WarningRow.sent, WarningRow.applied_at).where(
        WarningRow.kind == CheckKind.ROLLCALL.value)
    if record_id is not None:
        query = query.where(WarningRow.id == record_id)
    rows = session.execute(query.order_by(WarningRow.sent.desc()).limit(limit)).all()
    counts = dict(session.execute(select(CalloutRow.record_id, func.count()).where(
        CalloutRow.record_id.in_([r.id for r in rows])).group_by(CalloutRow.record_id)).all()) if rows else {}
    return [{"id": r.id, "headline": r.headline, "at": r.sent, "started": r.applied_at is not None,
             "called": counts.get(r.id, 0)} for r in rows]


# -- the period report: 到岗率 per duty room per month ------------------------------------------------


@dataclass(frozen=True)
class Attendance:
    """A duty room's roll-calls in a month (``month`` "2026-07") or the whole period (``month`` "")."""

    area: str
    name: str
    month: str
    held: int  # roll-calls that called this room (or found nobody on shift there)
    manned: int  # … answered in time by someone on shift there
    unmanned: int  # … found nobody on shift to call

    @property
    def rate(self) -> float | None:
        """到岗率: the share of roll-calls the room answered in time."""
        return self.manned / self.held if self.held else None


def attendance(session: Session, since: datetime, until: datetime, tz: Any) -> list[Attendance]:
    """Per duty room, per local month and for the whole period: roll-calls held from ``since`` to
    ``until`` (UTC instants) and how many the room answered in time (到岗率)."""
    heads = session.execute(select(WarningRow.id, WarningRow.sent, WarningRow.raw).where(
        WarningRow.kind == CheckKind.ROLLCALL.value, WarningRow.sent >= since, WarningRow.sent < until,
        WarningRow.applied_at.is_not(None))).all()
    if not heads:
        return []
    ids = [h.id for h in heads]
    matched = {r: dict(d or {}) for r, d in session.execute(select(EventRow.warning_id, EventRow.data).where(
        EventRow.warning_id.in_(ids), EventRow.kind == EventKind.MATCHED.value))}
    answered: dict[tuple[str, str], list[tuple[datetime, datetime | None, bool]]] = {}
    for record, room, person, started, acked, by in session.execute(select(
            CalloutRow.record_id, CalloutRow.room, CalloutRow.person_id, CalloutRow.started_at,
            CalloutRow.acknowledged_at, CalloutRow.acknowledged_by).where(CalloutRow.record_id.in_(ids))):
        answered.setdefault((record, room or ""), []).append((started, acked, by == person))
    tally: dict[tuple[str, str], list[int]] = {}  # (area, month) -> held, manned, unmanned
    names: dict[str, str] = {}
    for head in heads:
        within = rollcall_from_dict(json.loads(head.raw)).answer_within
        month = f"{head.sent.astimezone(tz):%Y-%m}"
        data = matched.get(head.id, {})
        unmanned = set(data.get("unmanned", []))
        for area, name in data.get("rooms", []):
            names.setdefault(area, name)
            manned = any(own and acked is not None and acked - started <= within
                         for started, acked, own in answered.get((head.id, area), []))
            for key in ((area, month), (area, "")):
                counts = tally.setdefault(key, [0, 0, 0])
                counts[0] += 1
                counts[1] += int(manned)
                counts[2] += int(area in unmanned)
    order = list(names)
    return sorted((Attendance(area, names[area], month, *counts) for (area, month), counts in tally.items()),
                  key=lambda a: (order.index(a.area), a.month or "9999"))



def to_xlsx(session: Session, limit: int = 500) -> bytes:
    """The latest roll-calls as a workbook: 值班点名 (a row per roll-call and duty room) and 明细 (a row
    per person called), times in the site's time zone."""
    from openpyxl import Workbook

    from .assessment import write_sheet

    tz = current_site(session).tz
    outcome_zh = {"present": "按时应答", "late": "迟到应答", "absent": "未应答", "open": "等待应答"}
    rooms_rows: list[list[Any]] = []
    people_rows: list[list[Any]] = []
    heads = history(session, limit)
    rooms_of_each = results_of(session, [h["id"] for h in heads])
    for head in heads:
        at = f"{head['at'].astimezone(tz):%Y-%m-%d %H:%M}"
        for room in rooms_of_each.get(head["id"], []):
            verdict = VERDICT_ZH[room.verdict]
            rooms_rows.append([at, head["headline"], room.name, room.called, room.present, room.late, room.absent,
                               verdict, head["id"]])
            people_rows += [[at, head["headline"], room.name, a.name, a.post, outcome_zh[a.outcome],
                             f"{a.answered_at.astimezone(tz):%H:%M:%S}" if a.answered_at else "", a.via or "",
                             head["id"]] for a in room.people]
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "值班点名"
    write_sheet(first, ["时间", "点名", "值班室", "呼叫", "按时应答", "迟到应答", "未应答", "结果", "编号"],
                rooms_rows, ())
    write_sheet(book.create_sheet("明细"),
                ["时间", "点名", "值班室", "姓名", "岗位", "应答", "应答时间", "方式", "编号"], people_rows, ())
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
