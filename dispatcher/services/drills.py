"""Drills (演练): scheduled blind (双盲) or announced, started now, or posted by an agency; run by the
engine like any warning; ended, revealed and reported (domain/drills.py says what a drill is).

- **The schedule is a durable timer.** A scheduled drill is a ``drills`` row (state ``scheduled``,
  ``at``); each scheduler pass starts the ones whose time has come (``due``/``start_due``), each
  once — the row is taken under its lock and moved to ``running`` in the same transaction as its
  warning is stored — in both runtimes and after restarts. One the engine reaches more than
  ``CATCH_UP`` late (it was down) is not started late: it becomes ``missed`` and /readyz says so
  for a day.
- **Started, it is a warning** with ``drill`` set: its call-outs, attempts, timers and hash-chained
  record are the warning's own. Every message a recipient gets carries 【演练】 (rendering); the rural
  broadcast goes out only when the drill asks for it (``broadcast_asked``).
- **Blind while it runs.** Until a blind drill ends, the board and the API show it to viewers and
  officers exactly as a real warning, and /metrics counts it nowhere (``concealed``, ``_concealing``
  and ``conceal_*``: one rule); admins see it labelled. It ends when
  every call-out has settled, when an admin ends it, or when its time runs out — then it is revealed:
  labelled 演练 for everyone, with a ``drill_ended`` event on its record.
- **A channel or provider taken out** (``without``) fails that drill's attempts on it at once, as if
  the provider were down (``withheld``, services/dispatch.py), never sending; the ladder takes over.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import AttemptRow, CalloutRow, DrillRow, EventRow, WarningRow
from ..domain.callouts import OPEN_STATES, step_from_json
from ..domain.drills import (
    BARS_MINUTES,
    CATCH_UP,
    DEFAULT_LENGTH,
    OUTAGE,
    Comparison,
    DrillError,
    DrillKind,
    DrillState,
    Ending,
    Failure,
    Figures,
    Options,
    Reach,
    Scenario,
    check_length,
    check_time,
    check_without,
    figures,
    pick_moment,
)
from ..domain.hazards import Hazard, Level, parse_hazard, parse_level
from ..domain.record import EventKind
from ..intake.schema import text_problem
from .intake import insert_record
from .site import current_site

MISSED_WITHIN = timedelta(hours=24)  # how far back /readyz names scheduled drills that never ran
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UnknownDrill(LookupError):
    pass


def new_drill_id(now: datetime) -> str:
    return f"D{now:%Y%m%d}-" + "".join(secrets.choice(_ALPHABET) for _ in range(5))


def schedule_key(secret: str) -> bytes:
    """The key a blind drill's moment in its window is drawn with: from the deployment's secret."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), b"jiaoying drill schedule", hashlib.sha256).digest()


def known_providers() -> list[str]:
    """The providers a drill may take out: every real adapter registered for any channel."""
    from ..channels.registry import registrations

    return sorted({r.provider for r in registrations() if r.provider != "simulator"})


# -- what a drill plays, from the board's form or the CLI's file ---------------------------------------


def scenario_from(session: Session, data: Mapping[str, Any]) -> Scenario:
    """The warning a drill plays, checked as intake checks a posted one (hazard, level, areas of
    this site, a headline); DrillError names the field."""
    from ..domain.areas import normalize_code

    site = current_site(session)
    try:
        hazard = parse_hazard(str(data.get("hazard") or ""))
    except ValueError as exc:
        raise DrillError("hazard", str(exc)) from None
    try:
        level = parse_level(str(data.get("level") or ""))
    except ValueError as exc:
        raise DrillError("level", str(exc)) from None
    raw_areas = data.get("areas") or []
    if isinstance(raw_areas, str):
        raw_areas = [a for a in raw_areas.replace("，", ",").replace(" ", ",").split(",") if a]
    areas: list[str] = []
    for i, code in enumerate(raw_areas):
        try:
            normal = normalize_code(str(code))
        except ValueError as exc:
            raise DrillError(f"areas[{i}]", str(exc)) from None
        if not site.areas.relates(normal):
            roots = ", ".join(f"{site.areas.name(r)} {r}" for r in site.areas.roots)
            raise DrillError(f"areas[{i}]", f"{normal} is not an area of this site ({roots})")
        if normal not in areas:
            areas.append(normal)
    zones = [str(z) for z in data.get("zones") or []]
    for i, zone in enumerate(zones):
        if zone not in site.zones:
            known = ", ".join(site.zones) or "none"
            raise DrillError(f"zones[{i}]", f"{zone!r} is not a zone of this site (zones: {known})")
    if not areas and not zones:
        raise DrillError("areas", "required: the areas (division codes) the drill's warning is for")
    texts = {}
    for name, limit in (("headline", 200), ("description", 2000), ("instruction", 1000)):
        value = " ".join(str(data.get(name) or "").split()) if name == "headline" else str(data.get(name) or "").strip()
        if problem := text_problem(value):
            raise DrillError(name, problem)
        if len(value) > limit:
            raise DrillError(name, f"at most {limit} characters, found {len(value)}")
        texts[name] = value
    if not texts["headline"]:
        raise DrillError("headline", "required: what the drill's warning says, e.g. 青溪县气象台发布暴雨红色预警信号")
    sender = str(data.get("sender") or "jiaoying").strip()
    if not sender or len(sender) > 128 or any(c in sender for c in " ,<&\x00"):
        raise DrillError("sender", "1–128 characters with no spaces, commas, '<' or '&'")
    return Scenario(hazard, level, tuple(areas), texts["headline"], texts["description"], texts["instruction"],
                    tuple(zones), sender)


def options_from(broadcast: bool = False, without: Iterable[str] = (), length_minutes: float | None = None) -> Options:
    names = check_without(without, known_providers())
    length = DEFAULT_LENGTH if length_minutes is None else check_length(timedelta(minutes=float(length_minutes)))
    return Options(bool(broadcast), names, length)


def _scenario_json(s: Scenario) -> dict[str, Any]:
    return {"hazard": s.hazard.value, "level": s.level.value, "areas": list(s.areas), "headline": s.headline,
            "description": s.description, "instruction": s.instruction, "zones": list(s.zones), "sender": s.sender}


def _options_json(o: Options) -> dict[str, Any]:
    return {"broadcast": o.broadcast, "without": list(o.without), "length": o.length.total_seconds()}


def options_of(row: DrillRow) -> Options:
    data = row.options or {}
    return Options(bool(data.get("broadcast")), tuple(str(n) for n in data.get("without") or ()),
                   timedelta(seconds=float(data.get("length") or DEFAULT_LENGTH.total_seconds())))


def scenario_of(row: DrillRow) -> Scenario:
    d = row.scenario or {}
    return Scenario(Hazard(d["hazard"]), Level(d["level"]), tuple(d.get("areas") or ()), d.get("headline") or "",
                    d.get("description") or "", d.get("instruction") or "", tuple(d.get("zones") or ()),
                    d.get("sender") or "jiaoying")


# -- scheduling and starting ---------------------------------------------------------------------------


def schedule(session: Session, scenario: Scenario, options: Options, *, by: str, now: datetime,
             at: datetime | None = None, window: tuple[datetime, datetime] | None = None, blind: bool = True,
             key: bytes = b"", note: str = "") -> DrillRow:
    """Schedule a drill for ``at``, or for a moment drawn unseen in ``window``. Bad input (a time
    not in the future, a window that ends before it starts, both or neither) is a DrillError and
    stores nothing."""
    if (at is None) == (window is None):
        raise DrillError("at", "give either a time (at) or a window (from, to), not both or neither")
    drill_id = new_drill_id(now)
    if window is not None:
        start, end = check_time(window[0], now, "from"), check_time(window[1], now, "to")
        if end <= start:
            raise DrillError("to", f"{end.isoformat()} is not after the window's start {start.isoformat()}")
        at = pick_moment(start, end, key, drill_id)
    else:
        assert at is not None
        at = check_time(at, now, "at")
    if problem := text_problem(note):
        raise DrillError("note", problem)
    row = DrillRow(id=drill_id, kind=(DrillKind.BLIND if blind else DrillKind.ANNOUNCED).value,
                   state=DrillState.SCHEDULED.value, scenario=_scenario_json(scenario), options=_options_json(options),
                   at=at, window_start=window[0] if window else None, window_end=window[1] if window else None,
                   note=note[:500], created_at=now, created_by=by)
    session.add(row)
    session.flush()
    return row


def start_now(session: Session, scenario: Scenario, options: Options, *, by: str, now: datetime,
              note: str = "") -> DrillRow:
    """An announced drill, now: labelled 演练 everywhere from the start. Refused while another drill
    runs: its open call-outs would hold the same officials (already being called), and this one
    would call nobody (``Skipped``)."""
    if problem := text_problem(note):
        raise DrillError("note", problem)
    other = session.execute(select(DrillRow.id, DrillRow.kind).where(DrillRow.state == DrillState.RUNNING.value)
                            .order_by(DrillRow.started_at, DrillRow.id).limit(1)).first()
    if other is not None:
        raise DrillError("drill", f"演练 {other.id} 正在进行（{DrillKind(other.kind).zh}）：其正在叫应的人员不会被"
                                  f"再次叫应，请待其结束或先结束它再开始 (drill {other.id} is running: the officials "
                                  "it is calling would not be called again; end it first or wait until it is over)")
    row = DrillRow(id=new_drill_id(now), kind=DrillKind.ANNOUNCED.value, state=DrillState.SCHEDULED.value,
                   scenario=_scenario_json(scenario), options=_options_json(options), at=now, note=note[:500],
                   created_at=now, created_by=by)
    session.add(row)
    session.flush()
    _start(session, row, now, actor=by)
    return row


def due(session: Session, now: datetime) -> list[str]:
    """Scheduled drills whose time has come, within CATCH_UP (a read: no lock when nothing is due)."""
    return list(session.scalars(select(DrillRow.id).where(
        DrillRow.state == DrillState.SCHEDULED.value, DrillRow.at <= now, DrillRow.at > now - CATCH_UP)
        .order_by(DrillRow.at)))


def overdue(session: Session, now: datetime) -> list[str]:
    """Scheduled drills the engine reached too late to start (a read)."""
    return list(session.scalars(select(DrillRow.id).where(
        DrillRow.state == DrillState.SCHEDULED.value, DrillRow.at <= now - CATCH_UP)))


def start_due(session: Session, ids: Sequence[str], now: datetime) -> list[str]:
    """Start these scheduled drills, each once however many schedulers try (the row's lock and its
    state decide); the ids started."""
    started = []
    for drill_id in ids:
        row = session.execute(select(DrillRow).where(DrillRow.id == drill_id).with_for_update(skip_locked=True)
                              ).scalar_one_or_none()
        if row is None or row.state != DrillState.SCHEDULED.value or row.at is None or row.at > now:
            continue
        if row.at <= now - CATCH_UP:
            row.state = DrillState.MISSED.value
            continue
        _start(session, row, now, actor="schedule")
        started.append(row.id)
    return started


def mark_missed(session: Session, ids: Sequence[str], now: datetime) -> list[str]:
    """The scheduler was away past their time and CATCH_UP: not started late, kept as missed."""
    marked = []
    for drill_id in ids:
        row = session.execute(select(DrillRow).where(DrillRow.id == drill_id).with_for_update(skip_locked=True)
                              ).scalar_one_or_none()
        if row is not None and row.state == DrillState.SCHEDULED.value and row.at is not None \
                and row.at <= now - CATCH_UP:
            row.state = DrillState.MISSED.value
            marked.append(row.id)
    return marked


def missed(session: Session, now: datetime) -> list[tuple[str, datetime]]:
    """Scheduled drills of the last day that never ran (missed, or overdue past CATCH_UP): /readyz."""
    rows = session.execute(select(DrillRow.id, DrillRow.at).where(
        DrillRow.at >= now - MISSED_WITHIN, DrillRow.at <= now - CATCH_UP,
        DrillRow.state.in_((DrillState.MISSED.value, DrillState.SCHEDULED.value))).order_by(DrillRow.at)).all()
    return [(r.id, r.at) for r in rows]


def _start(session: Session, drill: DrillRow, now: datetime, *, actor: str) -> None:
    """Store the drill's warning (applied by the engine's next pass) and open its record."""
    scenario, options = scenario_of(drill), options_of(drill)
    blind = drill.kind == DrillKind.BLIND.value
    def make(record_id: str) -> WarningRow:
        # A blind drill's identifier looks like any source's; an announced one says what it is.
        identifier = (f"{now:%Y%m%d%H%M%S}-{secrets.token_hex(2).upper()}" if blind
                      else f"DRILL-{drill.id}")
        return WarningRow(
            id=record_id, sender=scenario.sender, identifier=identifier, msg_type="alert", references=[],
            kind="warning", hazard=scenario.hazard.value, level=scenario.level.value, areas=list(scenario.areas),
            zones=list(scenario.zones), headline=scenario.headline, description=scenario.description,
            instruction=scenario.instruction, sent=now, expires=now + options.length, drill=True, status="active",
            received_at=now, source_format="drill", origin="local",
            raw=json.dumps({"drill": drill.id} | _scenario_json(scenario) | _options_json(options), ensure_ascii=False))

    row, _ = insert_record(session, now, make)  # an id or identifier collision draws both again
    identifier = row.identifier
    drill.record_id, drill.state, drill.started_at = row.id, DrillState.RUNNING.value, now
    if not blind:
        drill.revealed_at = now
    append_event(session, row.id, EventKind.RECEIVED, actor, now, {
        "warning": row.id, "format": "drill", "sender": scenario.sender, "identifier": identifier,
        "msg_type": "alert", "hazard": scenario.hazard.value, "level": scenario.level.value,
        "areas": list(scenario.areas), "drill": True, "headline": scenario.headline,
        **({"zones": list(scenario.zones)} if scenario.zones else {})})
    append_event(session, row.id, EventKind.DRILL_STARTED, actor, now, {
        "drill": drill.id, "kind": drill.kind, "by": drill.created_by, "scheduled_at": drill.created_at.isoformat(),
        "at": drill.at.isoformat() if drill.at else now.isoformat(),
        "window": [drill.window_start.isoformat(), drill.window_end.isoformat()]
        if drill.window_start and drill.window_end else None,
        **_options_json(options), "note": drill.note})


def adopt_posted(session: Session, row: WarningRow, now: datetime) -> None:
    """An agency's warning posted with ``drill: true``: kept as a drill (announced by its sender), so
    that it is reported and ended like the county's own. Called once, when the engine applies it."""
    if not row.drill or row.msg_type != "alert" or row.root_id is not None:
        return
    if session.scalar(select(DrillRow.id).where(DrillRow.record_id == row.id)) is not None:
        return
    length = (row.expires - row.sent) if row.expires and row.expires > row.sent else DEFAULT_LENGTH
    scenario = {"hazard": row.hazard, "level": row.level, "areas": list(row.areas), "headline": row.headline,
                "description": row.description, "instruction": row.instruction, "zones": list(row.zones or ()),
                "sender": row.sender}
    try:
        with session.begin_nested():
            session.add(DrillRow(id=new_drill_id(now), kind=DrillKind.POSTED.value, state=DrillState.RUNNING.value,
                                 scenario=scenario, options={"broadcast": _asked_in_body(row), "without": [],
                                                             "length": length.total_seconds()},
                                 at=row.received_at, record_id=row.id, created_at=now,
                                 created_by=f"sender:{row.sender}", started_at=row.received_at,
                                 revealed_at=row.received_at))
    except IntegrityError:
        pass  # another scheduler adopted it at the same moment


def broadcast_asked(session: Session, row: WarningRow) -> bool:
    """Whether a drill's message orders the rural broadcast: the county's drill says so in its
    options; an agency's drill in its body (JSON ``drill_broadcast: true``, CAP parameter
    ``jiaoying_drill_broadcast``). A real warning is not asked: its plans decide."""
    if not row.drill:
        return True
    record = row.root_id or row.id
    options = session.scalar(select(DrillRow.options).where(DrillRow.record_id == record))
    if options is not None and session.scalar(select(DrillRow.kind).where(DrillRow.record_id == record)) \
            != DrillKind.POSTED.value:
        return bool(options.get("broadcast"))
    return _asked_in_body(row)


def _asked_in_body(row: WarningRow) -> bool:
    """``drill_broadcast`` as the agency posted it (the stored body: JSON, or CAP's parameter)."""
    try:
        if row.source_format == "json":
            data = json.loads(row.raw or "{}")
            return isinstance(data, dict) and data.get("drill_broadcast") is True
        if row.source_format == "cap":
            from ..intake.cap import parse_cap

            return parse_cap((row.raw or "").encode("utf-8")).get("drill_broadcast") is True
    except Exception:  # noqa: BLE001 - a body already accepted at intake; never stop the apply for this
        return False
    return False


# -- ending ----------------------------------------------------------------------------------------------


def cancel_scheduled(session: Session, drill_id: str, *, by: str, now: datetime) -> DrillRow:
    """Call off a drill that has not started."""
    row = _locked(session, drill_id)
    if row.state != DrillState.SCHEDULED.value:
        raise DrillError("drill", f"{drill_id} is {row.state}, not scheduled: only a drill that has not started "
                                  "can be called off (end a running one instead)")
    row.state, row.ended_at, row.ended_by, row.ending = DrillState.CANCELLED.value, now, by, Ending.CANCELLED.value
    return row


def end(session: Session, drill_id: str, *, by: str, now: datetime) -> DrillRow:
    """An admin ends a running drill: its open call-outs stop (the reached are told it is lifted, as
    【演练】), and it is revealed."""
    from .callouts import cancel_event

    row = _locked(session, drill_id)
    if row.state != DrillState.RUNNING.value or row.record_id is None:
        raise DrillError("drill", f"{drill_id} is {row.state}, not running")
    warning = session.get(WarningRow, row.record_id)
    if warning is not None and warning.status in ("active", "updated"):
        cancel_event(session, row.record_id, now, by)
    _finish(session, row, Ending.ENDED, by, now)
    return row


def settled(session: Session, now: datetime) -> list[str]:
    """Running drills that are over — every call-out settled, or their warning expired or cancelled
    (a read, so a pass with nothing to end takes no lock)."""
    out = []
    for drill_id, record in session.execute(select(DrillRow.id, DrillRow.record_id).where(
            DrillRow.state == DrillState.RUNNING.value)).all():
        if record is not None and _ending(session, record) is not None:
            out.append(drill_id)
    return out


def finish_settled(session: Session, ids: Sequence[str], now: datetime) -> list[str]:
    ended = []
    for drill_id in ids:
        row = session.execute(select(DrillRow).where(DrillRow.id == drill_id).with_for_update(skip_locked=True)
                              ).scalar_one_or_none()
        if row is None or row.state != DrillState.RUNNING.value or row.record_id is None:
            continue
        ending = _ending(session, row.record_id)
        if ending is not None:
            _finish(session, row, ending, "engine", now)
            ended.append(row.id)
    return ended


def _ending(session: Session, record: str) -> Ending | None:
    from .chain import chain

    messages = chain(session, record)
    if not messages:
        return None
    newest = messages[-1]
    if any(m.status == "cancelled" for m in messages):
        return Ending.CANCELLED
    if newest.status == "expired":
        return Ending.EXPIRED
    if any(m.applied_at is None for m in messages):
        return None
    open_one = session.scalar(select(CalloutRow.id).where(CalloutRow.record_id == record,
                                                          CalloutRow.state.in_(OPEN_STATES)).limit(1))
    return Ending.SETTLED if open_one is None else None


def _finish(session: Session, row: DrillRow, ending: Ending, by: str, now: datetime) -> None:
    row.state, row.ending, row.ended_by, row.ended_at = DrillState.ENDED.value, ending.value, by, now
    row.revealed_at = row.revealed_at or now
    assert row.record_id is not None
    states = dict(session.execute(select(CalloutRow.state, func.count()).where(
        CalloutRow.record_id == row.record_id).group_by(CalloutRow.state)).all())
    reached = session.scalar(select(func.count(func.distinct(CalloutRow.person_id))).where(
        CalloutRow.record_id == row.record_id, CalloutRow.notified_at.is_not(None))) or 0
    append_event(session, row.record_id, EventKind.DRILL_ENDED, by, now, {
        "drill": row.id, "kind": row.kind, "ending": ending.value, "by": by, "called": sum(states.values()),
        "reached": reached, "acknowledged": states.get("acknowledged", 0), "unreached": states.get("unreached", 0)})


def _locked(session: Session, drill_id: str) -> DrillRow:
    row = session.get(DrillRow, drill_id, with_for_update=True) if 0 < len(drill_id) <= 32 else None
    if row is None:
        raise UnknownDrill(drill_id)
    return row


# -- what the engine and the board ask while drills run -----------------------------------------------


def _concealing() -> Any:
    """The one rule of concealment, as SQL: a blind drill not yet revealed. Viewers and officers see
    no such drill — not on a drill page, in a workbook, beside another drill, in the API or /metrics —
    and its warning as a real one. Admins see everything. (``concealed``, ``report``, ``history``.)"""
    return (DrillRow.kind == DrillKind.BLIND.value) & DrillRow.revealed_at.is_(None)


def conceals(row: DrillRow) -> bool:
    """``_concealing`` for one drill already read."""
    return row.kind == DrillKind.BLIND.value and row.revealed_at is None


def concealed(session: Session, records: Iterable[str] | None = None) -> set[str]:
    """Records of blind drills not yet revealed (``_concealing``): the board and the API show them to
    viewers and officers as real warnings, /metrics counts them nowhere. With ``records``, only those
    of them."""
    query = select(DrillRow.record_id).where(_concealing(), DrillRow.record_id.is_not(None))
    if records is not None:
        wanted = sorted(set(records))
        if not wanted:
            return set()
        query = query.where(DrillRow.record_id.in_(wanted))
    return {r for r in session.scalars(query) if r}


def withheld(session: Session, records: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The channels and providers each of these drill records took out (only those with any)."""
    wanted = sorted(set(records))
    if not wanted:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(wanted), 900):
        for record, options in session.execute(select(DrillRow.record_id, DrillRow.options).where(
                DrillRow.record_id.in_(wanted[start:start + 900]))):
            names = tuple(str(n) for n in (options or {}).get("without") or ())
            if record and names:
                out[record] = names
    return out


def outage_error(channel: str, provider: str | None) -> str:
    """What a drill-imposed outage says on its attempt and in the record."""
    what = f"provider {provider}" if provider else f"channel {channel}"
    return f"{OUTAGE}: {what} taken out by the drill, not sent (演练断开：{provider or channel}，未发送)"


NEUTRAL_OUTAGE = "channel unavailable (通道不可用)"


def conceal_text(text: str | None) -> str | None:
    """An attempt's error as a concealed drill shows it: its outage as a plain channel failure."""
    return NEUTRAL_OUTAGE if text and text.startswith(OUTAGE) else text


def conceal_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A concealed blind drill's record as viewers and officers see it while it runs: as a real
    warning's — no drill flag, no drill events, outages as plain channel failures. (The stored record
    is untouched; admins and ``jiaoying record`` read it as it is.)"""
    out = []
    for e in events:
        if e["kind"] in (EventKind.DRILL_STARTED, EventKind.DRILL_ENDED):
            continue
        data = dict(e.get("data") or {})
        actor = e.get("actor")
        if e["kind"] == EventKind.RECEIVED:
            data["drill"], data["format"] = False, "json"
            actor = f"agency:{data.get('sender') or ''}"
        elif e["kind"] == EventKind.ATTEMPTS:
            data["attempts"] = [a | {"error": conceal_text(a.get("error"))} for a in data.get("attempts") or ()]
        out.append(e | {"data": data, "actor": actor})
    return out


def conceal_callouts(callouts: list[dict[str, Any]]) -> None:
    """A concealed drill's call-outs as the API lists them (``callout_views.list_callouts``): no drill
    flag, outages as plain failures (in place)."""
    for c in callouts:
        c["drill"] = False
        for a in c.get("attempts") or ():
            a["error"] = conceal_text(a.get("error"))


def conceal_rows(rows: list[dict[str, Any]]) -> None:
    """The board's rows of a concealed drill: no drill flag, outages as plain failures (in place)."""
    for r in rows:
        r["drill"] = False
        for group in r.get("chips") or ():
            for a in group.get("attempts") or ():
                a["error"] = conceal_text(a.get("error")) or ""


# -- the report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """An official the drill's plans named but did not call: another drill's open call-out of the same
    hazard and areas already held them (services/callouts mutes a second call-out of the same concern).
    ``by``: that drill's id, or None to a reader it is concealed from."""

    person_id: str
    name: str
    town: str
    by: str | None


@dataclass(frozen=True)
class Report:
    id: str  # the drill's id
    record: str | None
    kind: str
    state: str
    scenario: Scenario
    options: Options
    at: datetime | None  # started (or scheduled for)
    ended_at: datetime | None
    ending: str | None
    created_by: str
    window: tuple[datetime, datetime] | None
    people: tuple[Reach, ...]
    figures: Figures
    failures: tuple[Failure, ...]
    beside: tuple[Comparison, ...] = field(default_factory=tuple)
    concealed: bool = False  # a blind drill not yet revealed: only admins are given its report
    skipped: tuple[Skipped, ...] = ()  # named by its plans, not called: held by another drill

    @property
    def unreached(self) -> list[Reach]:
        """Everyone not acknowledged: never reached first, then reached but silent."""
        return sorted((p for p in self.people if p.acked_s is None), key=lambda p: (p.reached, p.name))

    @property
    def took_over(self) -> list[Reach]:
        return [p for p in self.people if p.took_over(self.options.without)]


def find(session: Session, some_id: str) -> DrillRow:
    """A drill by its id, or by its record's (a warning id); UnknownDrill otherwise."""
    if not 0 < len(some_id) <= 32 or "\x00" in some_id:
        raise UnknownDrill(some_id)
    row = session.get(DrillRow, some_id)
    if row is None:
        row = session.scalars(select(DrillRow).where(DrillRow.record_id == some_id)).first()
    if row is None:
        raise UnknownDrill(some_id)
    return row


def report(session: Session, some_id: str, *, admin: bool, beside: int = 10) -> Report:
    """A drill's report as ``admin`` (or not) may see it: to anyone else a concealed drill is no drill
    (UnknownDrill), and the drills beside this one are the latest ``beside`` they may see."""
    row = find(session, some_id)
    if not admin and conceals(row):
        raise UnknownDrill(some_id)
    people = _people(session, row) if row.record_id else ()
    failures = _failures(session, row) if row.record_id else ()
    return Report(row.id, row.record_id, row.kind, row.state, scenario_of(row), options_of(row),
                  row.started_at or row.at, row.ended_at, row.ending, row.created_by,
                  (row.window_start, row.window_end) if row.window_start and row.window_end else None,
                  people, figures(people), failures, tuple(_beside(session, row, beside, admin)), conceals(row),
                  _skipped(session, row, admin) if row.record_id else ())


def _skipped(session: Session, drill: DrillRow, admin: bool) -> tuple[Skipped, ...]:
    """Who the drill's start left out because another drill was calling them (the ``applied`` events'
    ``muted``), each with the drill that held them — unnamed to a reader it is concealed from."""
    muted: list[str] = []
    for data in session.scalars(select(EventRow.data).where(EventRow.warning_id == drill.record_id,
                                                            EventRow.kind == EventKind.APPLIED.value)):
        muted += [p for p in (data or {}).get("muted") or () if p not in muted]
    if not muted:
        return ()
    start = drill.started_at or drill.created_at
    holders: dict[str, str] = {}
    for person, record in session.execute(
            select(CalloutRow.person_id, CalloutRow.record_id).where(
                CalloutRow.person_id.in_(muted), CalloutRow.drill.is_(True), CalloutRow.record_id != drill.record_id,
                CalloutRow.started_at <= start, (CalloutRow.closed_at.is_(None)) | (CalloutRow.closed_at >= start))
            .order_by(CalloutRow.started_at)):
        holders.setdefault(person, record)
    hidden = set() if admin else concealed(session, holders.values())
    ids = dict(session.execute(select(DrillRow.record_id, DrillRow.id).where(
        DrillRow.record_id.in_(sorted(set(holders.values()) - hidden)))).all()) if holders else {}
    site = current_site(session)
    out = []
    for person_id in muted:
        person = site.people.get(person_id)
        area = person.area if person else ""
        out.append(Skipped(person_id, person.name if person else person_id,
                           site.areas.name(area[:9]) if area else "", ids.get(holders.get(person_id, ""))))
    return tuple(out)


def _people(session: Session, drill: DrillRow) -> tuple[Reach, ...]:
    record = drill.record_id
    site = current_site(session)
    callouts = session.execute(select(CalloutRow.id, CalloutRow.person_id, CalloutRow.state, CalloutRow.steps,
                                      CalloutRow.started_at, CalloutRow.acknowledged_at, CalloutRow.ack_via)
                               .where(CalloutRow.record_id == record).order_by(CalloutRow.id)).all()
    first: dict[str, Any] = {}
    for c in callouts:
        first.setdefault(c.person_id, c)
    start = drill.started_at or min((c.started_at for c in callouts), default=None)
    reached: dict[int, Any] = {}
    for a in session.execute(select(AttemptRow.callout_id, AttemptRow.recipient_id, AttemptRow.channel,
                                    AttemptRow.provider, AttemptRow.step_index, AttemptRow.sent_at)
                             .where(AttemptRow.record_id == record, AttemptRow.status.in_(("sent", "delivered")),
                                    AttemptRow.sent_at.is_not(None)).order_by(AttemptRow.sent_at, AttemptRow.id)):
        c = first.get(a.recipient_id)
        if c is not None and c.id == a.callout_id and a.callout_id not in reached:
            reached[a.callout_id] = a
    out = []
    for person_id, c in first.items():
        a = reached.get(c.id)
        steps = [step_from_json(s) for s in c.steps or ()]
        step0 = steps[0] if steps else None
        person = site.people.get(person_id)
        area = person.area if person else ""
        base = start or c.started_at
        out.append(Reach(
            person_id, person.name if person else person_id, c.state,
            (a.sent_at - base).total_seconds() if a is not None else None,
            (c.acknowledged_at - base).total_seconds() if c.acknowledged_at else None,
            a.channel if a is not None else None, a.provider if a is not None else None,
            a.step_index if a is not None else None,
            tuple(ch.value for ch in step0.channels) if step0 else (),
            step0.after.total_seconds() if step0 else 0.0, c.ack_via,
            site.areas.name(area[:9]) if area else ""))
    return tuple(sorted(out, key=lambda p: (p.reached_s is None, p.reached_s or 0, p.name)))


def _failures(session: Session, drill: DrillRow) -> tuple[Failure, ...]:
    site = current_site(session)
    rows = session.execute(select(AttemptRow.recipient_id, AttemptRow.channel, AttemptRow.provider,
                                  AttemptRow.step_index, AttemptRow.purpose, AttemptRow.error, AttemptRow.updated_at,
                                  AttemptRow.status)
                           .where(AttemptRow.record_id == drill.record_id, AttemptRow.error.is_not(None),
                                  AttemptRow.status.in_(("failed", "queued", "sending")))
                           .order_by(AttemptRow.id)).all()
    out = []
    for r in rows:
        person = site.people.get(r.recipient_id)
        out.append(Failure(r.recipient_id, person.name if person else r.recipient_id, r.channel, r.provider or "",
                           r.step_index, r.purpose, r.error or "", r.updated_at,
                           (r.error or "").startswith(OUTAGE)))
    return tuple(out)


def _beside(session: Session, drill: DrillRow, limit: int, admin: bool) -> list[Comparison]:
    """This drill beside the previous ones (newest first), each with its figures: the latest ``limit``
    that the reader may see (a concealed one is left out for all but admins, before the limit)."""
    query = select(DrillRow).where(DrillRow.record_id.is_not(None), DrillRow.started_at.is_not(None),
                                   DrillRow.started_at <= (drill.started_at or drill.created_at))
    if not admin:
        query = query.where(~_concealing())
    rows = list(session.scalars(query.order_by(DrillRow.started_at.desc(), DrillRow.id.desc()).limit(limit)))
    if drill.record_id is not None and all(r.id != drill.id for r in rows):
        rows.insert(0, drill)
    out = []
    for r in rows:
        people = _people(session, r)
        out.append(Comparison(r.id, r.record_id or "", r.started_at or r.created_at,
                              str((r.scenario or {}).get("headline") or ""), r.kind, figures(people),
                              options_of(r).without))
    return out


def history(session: Session, *, admin: bool, limit: int = 100) -> list[dict[str, Any]]:
    """Drills, newest first. Admins see every one (a blind drill scheduled or running too); the others
    see announced and posted drills and blind ones once revealed."""
    query = select(DrillRow).order_by(func.coalesce(DrillRow.started_at, DrillRow.at, DrillRow.created_at).desc())
    if not admin:
        query = query.where(~_concealing(), DrillRow.state.not_in((DrillState.CANCELLED.value,)))
    out = []
    for row in session.scalars(query.limit(limit)):
        people = _people(session, row) if row.record_id else ()
        out.append({"id": row.id, "record": row.record_id, "kind": row.kind, "state": row.state,
                    "headline": (row.scenario or {}).get("headline") or "", "level": (row.scenario or {}).get("level"),
                    "hazard": (row.scenario or {}).get("hazard"), "at": row.started_at or row.at,
                    "window": (row.window_start, row.window_end) if row.window_start and row.window_end else None,
                    "ending": row.ending, "by": row.created_by, "without": options_of(row).without,
                    "broadcast": options_of(row).broadcast, "figures": figures(people) if row.record_id else None})
    return out


# -- the workbook -----------------------------------------------------------------------------------------


def minutes_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def to_xlsx(session: Session, some_id: str, *, admin: bool) -> bytes:
    """A drill's report as a workbook: 概况 (the figures against the bars), 人员 (each official),
    未确认 (the unreached, then those not called: ``Skipped``), 通道失败 (every failed attempt) and 历次演练
    (beside the previous ones) —
    ``report`` as ``admin`` (or not) may see it, as the page shows it."""
    from openpyxl import Workbook

    result = report(session, some_id, admin=admin)
    tz = current_site(session).tz

    def local(at: datetime | None) -> str:
        return f"{at.astimezone(tz):%Y-%m-%d %H:%M:%S}" if at else ""

    f = result.figures
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "概况"
    rows: list[list[Any]] = [
        ["演练编号", result.id], ["事件编号", result.record or ""], ["类型", DrillKind(result.kind).zh],
        ["预警", result.scenario.headline], ["开始", local(result.at)], ["结束", local(result.ended_at)],
        ["断开", "、".join(result.options.without) or "无"], ["应急广播", "是" if result.options.broadcast else "否"],
        ["叫应人数", f.called], ["已通知", f.reached], ["已确认", f.acknowledged],
        ["未叫应（正被其他叫应占用）", len(result.skipped)]]
    for i, bar in enumerate(f.bars):
        rows += [[f"{bar}分钟内通知", f.reached_within[i]], [f"{bar}分钟内确认", f.acked_within[i]]]
    rows += [["通知用时中位数", minutes_text(f.reach_median_s)], ["通知用时P90", minutes_text(f.reach_p90_s)],
             ["确认用时中位数", minutes_text(f.ack_median_s)], ["确认用时P90", minutes_text(f.ack_p90_s)]]
    _sheet(summary, ["项目", "值"], rows)
    _sheet(book.create_sheet("人员"), ["姓名", "乡镇", "状态", "首次通知", "通道", "服务商", "步骤", "确认用时",
                                     "确认方式", "计划首步通道", "接替"],
           [[p.name, p.town, p.state, minutes_text(p.reached_s), p.channel or "", p.provider or "",
             "" if p.step is None else p.step + 1, minutes_text(p.acked_s), p.ack_via or "", "、".join(p.planned),
             "是" if p.took_over(result.options.without) else ""] for p in result.people])
    _sheet(book.create_sheet("未确认"), ["姓名", "乡镇", "状态", "是否已通知"],
           [[p.name, p.town, p.state, "已通知" if p.reached else "未通知"] for p in result.unreached]
           + [[p.name, p.town, f"未叫应：正被演练 {p.by} 叫应" if p.by else "未叫应：正被其他叫应占用", "未通知"]
              for p in result.skipped])
    _sheet(book.create_sheet("通道失败"), ["时间", "姓名", "通道", "服务商", "步骤", "用途", "演练断开", "错误"],
           [[local(x.at), x.name, x.channel, x.provider, x.step + 1 if x.step >= 0 else "", x.purpose,
             "是" if x.imposed else "", x.error] for x in result.failures])
    _sheet(book.create_sheet("历次演练"), ["时间", "演练", "类型", "叫应", "通知率",
                                       *[f"{b}分钟内确认" for b in BARS_MINUTES], "未确认", "断开", "编号"],
           [[local(c.at), c.headline, DrillKind(c.kind).zh, c.figures.called,
             "" if c.figures.reached_pct is None else f"{c.figures.reached_pct}%", *c.figures.acked_within,
             c.figures.called - c.figures.acknowledged, "、".join(c.without), c.id] for c in result.beside])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet(sheet: Any, header: list[str], rows: list[list[Any]]) -> None:
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    for col, title in enumerate(header, 1):
        cell = sheet.cell(1, col, title)
        cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for r, row in enumerate(rows, 2):
        for c, value in enumerate(row, 1):
            cell = sheet.cell(r, c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"  # a name or an error starting "=" is text, never a formula
    sheet.freeze_panes = "A2"
    for col, title in enumerate(header, 1):
        widest = max([len(str(title)) * 2] + [len(str(r[col - 1])) for r in rows])
        sheet.column_dimensions[get_column_letter(col)].width = max(8, min(50, widest + 2))
