"""Forwarding up and across (转发, 上报): red and orange warnings re-published as CAP 1.2 to the systems
named in the forwarding file (the city's platform, a neighbouring county's Jiaoying), and each
event's settled call-out result reported upward. docs/forwarding.md says it for the county.

The scheduler pass (``runtime.engine.Engine.forwarding``) does it in three steps, each durable:

1. ``decide``: every stored message is decided once, after intake committed it (its
   ``forward_checked_at`` is empty until then — so an accepted warning is never forgotten, and a
   restart decides what the last pass did not). A red or orange alert a target wants (its levels,
   hazards, drills) becomes a ``forwards`` row holding the CAP document, frozen; an update or cancel
   of an event forwarded to a target is forwarded to it too (``references`` naming what we sent),
   and an update that raises a not-forwarded event to a wanted level is forwarded as a new alert.
   An event a duty officer cancelled by hand is forwarded as a CAP Cancel. Loops: nothing is
   forwarded to the target whose agency posted the event (``origin``), and nothing at all whose
   ``jiaoying_via`` already names this site. Targets with ``report`` recipients get a ``waiting``
   report row per recipient for each event they want.
2. ``settle``: an event whose call-outs are all closed (acknowledged, unreached, cancelled or
   expired; every message applied) has its result computed once and its waiting reports queued.
3. ``claim`` / ``deliver`` / ``record``: due rows are claimed (FOR UPDATE SKIP LOCKED, with a
   lease), posted with httpx (or mailed with aiosmtplib) and their outcome recorded on the row and
   on the event's record. 2xx and 409 are sent; 401/403 and other 4xx are refused and not retried
   (loud, until ``jiaoying forwarding retry``); timeouts, unreachable receivers, 408, 429 and 5xx
   are tried again after 30 s, 1, 2, 4, 8 min, then every 10 min, for as long as it takes. Every
   try sends the same body with the same identifier, so a receiver that already has it answers
   "duplicate" (Jiaoying: 200) and it counts as sent. An update waits until what it references
   went to that target.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as DefusedET
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from ..config import Settings, project_root
from ..db.record_repo import append_event
from ..db.tables import CalloutRow, ForwardRow, PersonRow, WarningRow
from ..domain.callouts import OPEN_STATES, CalloutState
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..domain.site import Site
from ..forwarding_file import ForwardingConfig, ForwardingFileInvalid, ReportTo, Target, load_file
from ..intake.cap_out import CAP_CONTENT_TYPE, CapMessage, Reference, write_cap
from .site import current_site

if TYPE_CHECKING:
    import httpx

__all__ = ["FORWARD", "REPORT", "REPORT_EMAIL", "Job", "Outcome", "Watch", "claim", "decide", "deliver", "due",
           "problems", "record", "result_of", "retry_failed", "settle"]

log = logging.getLogger("jiaoying.forwarding")

FORWARD, REPORT, REPORT_EMAIL = "forward", "report", "report_email"
LEASE = timedelta(minutes=2)  # longer than any try takes (timeouts are at most a minute)
FIRST_RETRY, LONGEST_RETRY = 30, 600  # seconds: 30 s, 1, 2, 4, 8 min, then every 10 min
LONGEST_RETRY_AFTER = 3600  # a receiver's Retry-After is honoured up to an hour
REFUSED_SHOWN = timedelta(hours=24)  # a refusal stays on /readyz and the board this long after its last try
BARS = (3, 5, 30)  # minutes: the acknowledgement bars of the report (as the printed 一事一档)
COUNTY_LEVEL = "县级"
JSON_CONTENT_TYPE = "application/json"


# -- the file, read again when it changes -------------------------------------------------------------


class Watch:
    """The forwarding file as the engine sees it: read when it changes (its size, time or inode).
    ``current()`` gives the configuration (None: no forwarding) and why the file cannot be used (None:
    it can). A file that turns invalid keeps the last good configuration in use, and says why."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._config: ForwardingConfig | None = None
        self._error: str | None = None
        self._read = False

    def current(self) -> tuple[ForwardingConfig | None, str | None]:
        if not self.path:
            return None, None
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if not self._read or stamp is None or stamp != self._stamp:
                self._read, self._stamp = True, stamp
                try:
                    self._config, self._error = load_file(self.path), None
                except ForwardingFileInvalid as exc:
                    error = f"{self.path}: {exc}"
                    if error != self._error:
                        log.error("the forwarding file cannot be used: %s", error)
                    self._error = error
            return self._config, self._error


# -- deciding where each message goes ---------------------------------------------------------------


def decide(session: Session, config: ForwardingConfig | None, now: datetime, limit: int = 50) -> int:
    """Decide where the messages not yet decided go; returns how many forwards and reports it queued.
    Without a configuration (no forwarding) they are only marked decided: turning forwarding on later
    never sends old warnings."""
    if config is None:
        session.execute(update(WarningRow).where(WarningRow.forward_checked_at.is_(None))
                        .values(forward_checked_at=now).execution_options(synchronize_session=False))
        return 0
    rows = list(session.scalars(
        select(WarningRow).where(WarningRow.forward_checked_at.is_(None))
        .order_by(WarningRow.received_at, WarningRow.id).limit(limit)
        .with_for_update(skip_locked=True, key_share=True)))
    if not rows:
        return _hand_cancels(session, config, now)
    site = current_site(session)
    queued = 0
    for row in rows:
        if getattr(row, "kind", "warning") != "warning":  # a routine check (roll-call, spot-check): not ours
            row.forward_checked_at = now
            continue
        if _earlier_undecided(session, row):
            continue  # another scheduler is deciding the event's earlier message: next pass
        try:
            with session.begin_nested():
                queued += _decide(session, config, site, row, now)
        except Exception:
            log.exception("forwarding of %s could not be decided; trying again next pass", row.id)
            continue
        row.forward_checked_at = now
    return queued + _hand_cancels(session, config, now)


def _earlier_undecided(session: Session, row: WarningRow) -> bool:
    if row.root_id is None:
        return False
    return session.scalar(select(WarningRow.id).where(
        or_(WarningRow.id == row.root_id, WarningRow.root_id == row.root_id), WarningRow.id != row.id,
        WarningRow.received_at <= row.received_at, WarningRow.forward_checked_at.is_(None)).limit(1)) is not None


def _decide(session: Session, config: ForwardingConfig, site: Site, row: WarningRow, now: datetime) -> int:
    root = row if row.root_id is None else (session.get(WarningRow, row.root_id) or row)
    record = root.id
    looped = site.name in (row.via or ()) or site.name in (root.via or ())
    origins = {row.origin, root.origin}
    queued = 0
    for target in config.targets:
        wanted = target.wants(row.hazard, row.level, row.drill)
        if wanted and row.msg_type != "cancel":
            queued += _queue_reports(session, target, root, now)
        if not target.url:
            continue
        earlier = _forwarded(session, record, target.id)
        if any(f.msg_type == "cancel" for f in earlier):
            continue
        if row.msg_type == "cancel" or (row.msg_type == "update" and earlier):
            if earlier:
                queued += _queue_forward(session, config, site, target, row, record, row.msg_type, earlier, now)
            continue
        if not wanted or row.status == "expired":
            continue
        if looped or (target.agency and target.agency in origins):
            why = f"it came through {site.name}" if looped else f"it came from their agency {target.agency}"
            log.info("%s is not forwarded to %s: %s", row.id, target.id, why)
            continue
        queued += _queue_forward(session, config, site, target, row, record, "alert", [], now)
    return queued


def _forwarded(session: Session, record: str, target: str) -> list[ForwardRow]:
    return list(session.scalars(select(ForwardRow).where(
        ForwardRow.record_id == record, ForwardRow.target == target, ForwardRow.kind == FORWARD)
        .order_by(ForwardRow.id)))


def _hand_cancels(session: Session, config: ForwardingConfig, now: datetime) -> int:
    """Events forwarded to a target and cancelled by a duty officer (no cancel message came): a CAP
    Cancel of what we sent. Not while a message of the event is still undecided."""
    cancel = aliased(ForwardRow)
    message = aliased(WarningRow)
    pairs = session.execute(
        select(ForwardRow.record_id, ForwardRow.target).distinct()
        .join(WarningRow, WarningRow.id == ForwardRow.record_id)
        .where(ForwardRow.kind == FORWARD, WarningRow.status == "cancelled",
               ~exists().where(cancel.record_id == ForwardRow.record_id, cancel.target == ForwardRow.target,
                               cancel.kind == FORWARD, cancel.msg_type == "cancel"),
               ~exists().where(or_(message.id == ForwardRow.record_id, message.root_id == ForwardRow.record_id),
                               message.forward_checked_at.is_(None)))
        .limit(50)).all()
    if not pairs:
        return 0
    site = current_site(session)
    queued = 0
    for record, target_id in pairs:
        target = config.target(target_id)
        if target is None or not target.url:
            continue
        newest = session.scalars(select(WarningRow).where(
            or_(WarningRow.id == record, WarningRow.root_id == record))
            .order_by(WarningRow.received_at.desc(), WarningRow.id.desc()).limit(1)).first()
        if newest is None:
            continue
        queued += _queue_forward(session, config, site, target, newest, record, "cancel",
                                 _forwarded(session, record, target_id), now, by_hand=True)
    return queued


def _sender(config: ForwardingConfig, target: Target, site: Site) -> str:
    return target.sender or config.sender or site.name


def county_name(site: Site) -> str:
    roots = site.areas.roots
    return site.areas.name(roots[0]) if len(roots) == 1 else site.name


def _queue_forward(session: Session, config: ForwardingConfig, site: Site, target: Target, row: WarningRow,
                   record: str, msg_type: str, earlier: Sequence[ForwardRow], now: datetime,
                   by_hand: bool = False) -> int:
    sender = _sender(config, target, site)
    identifier = f"{record}-cancel" if by_hand else row.id
    references = []
    for f in earlier:
        sent_as = session.get(WarningRow, f.warning_id)
        if sent_as is not None:
            references.append(Reference(sender, f.identifier, sent_as.sent))
    headline = row.headline
    if by_hand:
        headline = f"解除：{headline}" if not headline.startswith("解除") else headline
    message = CapMessage(
        identifier=identifier, sender=sender, sent=now if by_hand else row.sent, msg_type=msg_type,
        hazard=Hazard(row.hazard), level=Level(row.level), headline=headline,
        areas=[(code, site.areas.name(code)) for code in row.areas], tz=site.tz, drill=row.drill,
        references=references, description=row.description or "", instruction=row.instruction or "",
        expires=row.expires, zones=[(z, site.zones[z].name if z in site.zones else z) for z in row.zones or ()],
        sender_name=config.sender_name or county_name(site), source=f"Jiaoying 叫应 {site.name}",
        note="值班人员已取消该预警 / cancelled by the duty officer" if by_hand else "",
        via=list(dict.fromkeys([*(row.via or ()), site.name])))
    return _insert(session, {
        "key": f"{FORWARD}:{identifier}:{target.id}", "record_id": record, "warning_id": row.id,
        "target": target.id, "target_name": target.name, "kind": FORWARD, "slot": 0, "msg_type": msg_type,
        "identifier": identifier, "url": target.url, "content_type": CAP_CONTENT_TYPE,
        "body": write_cap(message).decode("utf-8"), "status": "queued", "tries": 0, "created_at": now,
        "updated_at": now})


def _queue_reports(session: Session, target: Target, root: WarningRow, now: datetime) -> int:
    queued = 0
    for to in target.report:
        queued += _insert(session, {
            "key": f"{to.kind}:{root.id}:{target.id}:{to.slot}", "record_id": root.id, "warning_id": root.id,
            "target": target.id, "target_name": target.name, "kind": to.kind, "slot": to.slot, "msg_type": "",
            "identifier": f"{root.id}-report", "url": to.url or ", ".join(to.emails), "content_type": "",
            "body": "", "status": "waiting", "tries": 0, "created_at": now, "updated_at": now})
    return queued


def _insert(session: Session, values: dict[str, Any]) -> int:
    """Insert a row unless its key is there already (nothing is queued twice)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = session.execute(insert(ForwardRow.__table__).values(**values).on_conflict_do_nothing(
        index_elements=["key"]))
    return 1 if result.rowcount and result.rowcount > 0 else 0


# -- the settled result -----------------------------------------------------------------------------


def settle(session: Session, config: ForwardingConfig, now: datetime, limit: int = 50) -> int:
    """Queue the waiting reports of events whose call-outs have all closed; returns how many."""
    records = list(session.scalars(select(ForwardRow.record_id).where(ForwardRow.status == "waiting")
                                   .distinct().limit(limit)))
    queued = 0
    for record in records:
        if not _settled(session, record):
            continue
        site = current_site(session)
        result = result_of(session, site, record, now)
        for row in session.scalars(select(ForwardRow).where(ForwardRow.record_id == record,
                                                            ForwardRow.status == "waiting").with_for_update()):
            target = config.target(row.target)
            to = target.recipient(row.slot) if target is not None else None
            if target is None or to is None or to.kind != row.kind:
                row.status, row.error, row.updated_at = "failed", "no longer in the forwarding file", now
                continue
            row.content_type, row.body = _report_body(session, config, site, target, to, record, result, now)
            row.status, row.updated_at = "queued", now
            queued += 1
    return queued


def _settled(session: Session, record: str) -> bool:
    chain = or_(WarningRow.id == record, WarningRow.root_id == record)
    if session.scalar(select(CalloutRow.id).where(CalloutRow.record_id == record,
                                                  CalloutRow.state.in_(OPEN_STATES)).limit(1)) is not None:
        return False
    if session.scalar(select(WarningRow.id).where(chain, WarningRow.applied_at.is_(None)).limit(1)) is not None:
        return False  # a message not applied yet may still call people
    if session.scalar(select(CalloutRow.id).where(CalloutRow.record_id == record).limit(1)) is not None:
        return True
    # Nobody was called: settled once the event has ended (cancelled or expired).
    return session.scalar(select(WarningRow.id).where(chain, WarningRow.status == "active").limit(1)) is None


def result_of(session: Session, site: Site, record: str, now: datetime) -> dict[str, Any]:
    """The event's result as reported upward: counts (per call-out: one per official and message that
    called them), acknowledgement times, and the unreached with their roles and towns."""
    messages = list(session.scalars(select(WarningRow).where(
        or_(WarningRow.id == record, WarningRow.root_id == record)).order_by(WarningRow.received_at, WarningRow.id)))
    root = next((m for m in messages if m.id == record), messages[0])
    newest = messages[-1]
    callouts = list(session.scalars(select(CalloutRow).where(CalloutRow.record_id == record).order_by(CalloutRow.id)))
    acked = [c for c in callouts if c.state == CalloutState.ACKNOWLEDGED and c.acknowledged_at is not None]
    unreached = [c for c in callouts if c.state == CalloutState.UNREACHED]
    counts: dict[str, int] = {"called": len(callouts), "acknowledged": len(acked)}
    for bar in BARS:
        counts[f"within_{bar}_min"] = sum(1 for c in acked if c.acknowledged_at - c.started_at
                                          <= timedelta(minutes=bar))
    counts["unreached"] = len(unreached)
    counts["cancelled"] = sum(1 for c in callouts if c.state == CalloutState.CANCELLED)
    counts["expired"] = sum(1 for c in callouts if c.state == CalloutState.EXPIRED)
    ack_times = sorted(c.acknowledged_at for c in acked)
    left = {r.id: r for r in session.scalars(select(PersonRow).where(
        PersonRow.id.in_([c.person_id for c in unreached if c.person_id not in site.people])))} if unreached else {}

    def person(person_id: str) -> dict[str, Any]:
        p = site.people.get(person_id)
        row = left.get(person_id)
        name, seat = (p.name, p.area) if p else ((row.name, row.area_code) if row else (person_id, ""))
        held = tuple(p.roles) if p else tuple(row.roles or ()) if row else ()
        unit = p.unit if p else (row.unit if row else "")
        town = seat[:9] if len(seat) >= 9 else ""
        return {"id": person_id, "name": name, "roles": [site.roles.get(r, r) for r in held],
                "town": site.areas.name(town) if town else COUNTY_LEVEL, "area": site.areas.name(seat) if seat else "",
                "unit": unit}

    return {
        "type": "jiaoying.result", "version": 1, "site": site.name, "county": county_name(site),
        "record": record, "settled_at": _iso(now),
        "warning": {"sender": root.sender, "identifier": root.identifier, "forwarded_as": root.id,
                    "origin": root.origin, "hazard": newest.hazard, "level": newest.level,
                    "headline": newest.headline, "areas": list(newest.areas), "zones": list(newest.zones or ()),
                    "sent": _iso(root.sent), "expires": _iso(newest.expires), "drill": root.drill,
                    "status": newest.status},
        "started_at": _iso(min((c.started_at for c in callouts), default=None)),
        "counts": counts,
        "first_acknowledged_at": _iso(ack_times[0] if ack_times else None),
        "last_acknowledged_at": _iso(ack_times[-1] if ack_times else None),
        "unreached": [person(c.person_id) for c in unreached],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _report_body(session: Session, config: ForwardingConfig, site: Site, target: Target, to: ReportTo,
                 record: str, result: dict[str, Any], now: datetime) -> tuple[str, str]:
    if to.kind == REPORT_EMAIL or to.format == "json":
        return JSON_CONTENT_TYPE, json.dumps(result, ensure_ascii=False, sort_keys=True)
    newest = session.scalars(select(WarningRow).where(or_(WarningRow.id == record, WarningRow.root_id == record))
                             .order_by(WarningRow.received_at.desc(), WarningRow.id.desc()).limit(1)).one()
    root = session.get(WarningRow, record) or newest
    sender = _sender(config, target, site)
    counts = result["counts"]
    unreached = ";".join(f"{p['name']}（{'、'.join(p['roles'])}，{p['town']}）" for p in result["unreached"])
    parameters = [("jiaoying_record", record), ("jiaoying_called", str(counts["called"])),
                  ("jiaoying_acknowledged", str(counts["acknowledged"]))]
    parameters += [(f"jiaoying_acknowledged_{bar}min", str(counts[f"within_{bar}_min"])) for bar in BARS]
    parameters += [("jiaoying_unreached", str(counts["unreached"])),
                   ("jiaoying_first_acknowledged", result["first_acknowledged_at"] or ""),
                   ("jiaoying_last_acknowledged", result["last_acknowledged_at"] or ""),
                   ("jiaoying_unreached_list", unreached)]
    message = CapMessage(
        identifier=f"{record}-report", sender=sender, sent=now, msg_type="update", hazard=Hazard(newest.hazard),
        level=Level(newest.level), headline=f"叫应结果：{newest.headline}",
        areas=[(code, site.areas.name(code)) for code in newest.areas], tz=site.tz, drill=newest.drill,
        references=[Reference(sender, root.id, root.sent)], description=summary_zh(result),
        expires=newest.expires, sender_name=config.sender_name or county_name(site),
        source=f"Jiaoying 叫应 {site.name}", parameters=[(n, v) for n, v in parameters if v])
    return CAP_CONTENT_TYPE, write_cap(message).decode("utf-8")


def summary_zh(result: dict[str, Any]) -> str:
    c = result["counts"]
    text = (f"叫应 {c['called']} 人次，已确认 {c['acknowledged']}（3 分钟内 {c['within_3_min']}，5 分钟内 "
            f"{c['within_5_min']}，30 分钟内 {c['within_30_min']}），未叫醒 {c['unreached']}")
    if result["unreached"]:
        text += "：" + "、".join(p["name"] for p in result["unreached"])
    return text + "。"


# -- claiming, delivering, recording ----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    id: int
    record_id: str
    warning_id: str
    target: str
    target_name: str
    kind: str
    slot: int
    msg_type: str
    identifier: str
    content_type: str
    body: str
    tries: int


@dataclass(frozen=True)
class Outcome:
    job: Job
    to: str = ""  # where it went: the URL, or the addresses
    code: int | None = None  # HTTP status (or the SMTP reply code)
    ok: bool = False
    refused: bool = False  # for good: not retried
    key_refused: bool = False  # … because our key was refused (401/403)
    error: str | None = None
    retry_after: float | None = None


def _due(now: datetime) -> Any:
    return or_(and_(ForwardRow.status == "queued", or_(ForwardRow.not_before.is_(None), ForwardRow.not_before <= now)),
               and_(ForwardRow.status == "sending", ForwardRow.lease_until <= now))


def _not_blocked() -> Any:
    """A forward waits until every earlier forward of its event to the same target was taken (an
    update must not reach them before the alert it references)."""
    earlier = aliased(ForwardRow)
    return or_(ForwardRow.kind != FORWARD, ~exists().where(
        earlier.record_id == ForwardRow.record_id, earlier.target == ForwardRow.target, earlier.kind == FORWARD,
        earlier.id < ForwardRow.id, earlier.status != "sent"))


def due(session: Session, now: datetime) -> bool:
    """Whether anything is due to be delivered now."""
    return session.scalar(select(ForwardRow.id).where(_due(now), _not_blocked()).limit(1)) is not None


def claim(session: Session, now: datetime, limit: int = 20) -> list[Job]:
    """Due rows, leased to this pass (a row whose lease ran out — its scheduler died — is due again)."""
    rows = list(session.scalars(select(ForwardRow).where(_due(now), _not_blocked()).order_by(ForwardRow.id)
                                .limit(limit).with_for_update(skip_locked=True, of=ForwardRow)))
    jobs = []
    for row in rows:
        row.status, row.lease_until, row.tries, row.updated_at = "sending", now + LEASE, row.tries + 1, now
        jobs.append(Job(row.id, row.record_id, row.warning_id, row.target, row.target_name, row.kind, row.slot,
                        row.msg_type, row.identifier, row.content_type, row.body, row.tries))
    return jobs


async def deliver(jobs: Sequence[Job], config: ForwardingConfig, settings: Settings) -> list[Outcome]:
    """Hand the jobs over concurrently; each outcome says what the receiver answered."""
    import httpx  # here, not at the top: every engine process imports this module, few ever forward

    async with httpx.AsyncClient(follow_redirects=False) as client:
        return list(await asyncio.gather(*(_deliver_one(client, job, config, settings) for job in jobs)))


async def _deliver_one(client: httpx.AsyncClient, job: Job, config: ForwardingConfig,
                       settings: Settings) -> Outcome:
    target = config.target(job.target)
    if target is None:
        return Outcome(job, refused=True, error=f"target {job.target} is no longer in the forwarding file")
    if job.kind == FORWARD:
        if not target.url:
            return Outcome(job, refused=True, error=f"target {job.target} has no url any more")
        return await _post(client, job, target.url, target.key, target.timeout.total_seconds())
    to = target.recipient(job.slot)
    if to is None or to.kind != job.kind:
        return Outcome(job, refused=True, error=f"report recipient {job.slot + 1} of {job.target} is no longer "
                                                "in the forwarding file")
    if job.kind == REPORT:
        return await _post(client, job, to.url, to.key, to.timeout.total_seconds())
    return await _mail(job, to, settings)


async def _post(client: httpx.AsyncClient, job: Job, url: str, key: str, timeout: float) -> Outcome:
    import httpx

    headers = {"Content-Type": job.content_type, "Idempotency-Key": job.identifier,
               "User-Agent": "jiaoying-forwarding/1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = await client.post(url, content=job.body.encode("utf-8"), headers=headers,
                                     timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    except httpx.TimeoutException:
        return Outcome(job, url, error=f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return Outcome(job, url, error=f"unreachable: {type(exc).__name__}: {exc}"[:300])
    code = response.status_code
    if 200 <= code < 300 or code == 409:  # 409: they have it already
        return Outcome(job, url, code, ok=True)
    said = _said(response)
    if code in (401, 403):
        return Outcome(job, url, code, refused=True, key_refused=True, error=said)
    if code in (408, 425, 429) or code >= 500:
        return Outcome(job, url, code, error=said, retry_after=_retry_after(response.headers.get("retry-after")))
    if 300 <= code < 400:
        said = f"redirected to {response.headers.get('location', '?')}: give the final address as the url"
    return Outcome(job, url, code, refused=True, error=said)


def _said(response: httpx.Response) -> str:
    """The receiver's reason: Jiaoying's ``{"error": …}``, else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"][:300]
    text = " ".join(response.text.split())[:200]
    return text or response.reason_phrase or f"HTTP {response.status_code}"


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), LONGEST_RETRY_AFTER) if value else None
    except ValueError:
        return None


async def _mail(job: Job, to: ReportTo, settings: Settings) -> Outcome:
    addresses = ", ".join(to.emails)
    if not settings.smtp_host or not settings.smtp_from:
        return Outcome(job, addresses, error="JIAOYING_SMTP_HOST and JIAOYING_SMTP_FROM must be set to send it")
    mail = report_email(settings, to.emails, json.loads(job.body), job.identifier)
    import aiosmtplib

    try:
        refused, _ = await aiosmtplib.send(
            mail, hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username or None,
            password=settings.smtp_password or None, start_tls=settings.smtp_starttls, use_tls=False,
            timeout=settings.smtp_timeout)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        permanent = bool(codes) and all(c >= 500 for c in codes)
        return Outcome(job, addresses, max(codes, default=None), refused=permanent,
                       error=f"the SMTP server refused the recipients: {exc}"[:300])
    except aiosmtplib.SMTPResponseException as exc:
        return Outcome(job, addresses, exc.code, refused=exc.code >= 500 and exc.code != 530,
                       error=f"SMTP answered {exc.code} {exc.message}"[:300])
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome(job, addresses, error=f"SMTP server unreachable: {type(exc).__name__}: {exc}"[:300])
    if refused:
        return Outcome(job, addresses, error=f"the SMTP server refused some recipients: {refused}"[:300])
    return Outcome(job, addresses, 250, ok=True)


def backoff(tries: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after ``tries`` failed ones: 30, 60, 120 … at most 600; at least the
    receiver's Retry-After."""
    wait = min(LONGEST_RETRY, FIRST_RETRY * 2 ** max(0, min(tries - 1, 10)))
    return max(wait, retry_after or 0.0)


def record(session: Session, now: datetime, outcome: Outcome) -> None:
    """Keep the outcome on the row and on the event's record. Nothing if the row was taken over
    meanwhile (its lease ran out and another pass claimed it)."""
    job = outcome.job
    row = session.get(ForwardRow, job.id, with_for_update=True)
    if row is None or row.status != "sending" or row.tries != job.tries:
        return
    row.last_code, row.updated_at, row.lease_until = outcome.code, now, None
    if outcome.to:
        row.url = outcome.to
    base = {"target": job.target, "name": job.target_name, "kind": job.kind, "warning": job.warning_id,
            "identifier": job.identifier, "code": outcome.code, "tries": job.tries}
    if outcome.ok:
        row.status, row.sent_at, row.error, row.failing_since, row.not_before = "sent", now, None, None, None
        if job.kind == FORWARD:
            append_event(session, job.record_id, EventKind.FORWARDED, "engine", now,
                         {**base, "msg_type": job.msg_type})
        else:
            json_body = job.kind == REPORT_EMAIL or job.content_type == JSON_CONTENT_TYPE
            counts = json.loads(job.body).get("counts", {}) if json_body else _cap_counts(job.body)
            append_event(session, job.record_id, EventKind.REPORT_SENT, "engine", now, {
                **base, "to": outcome.to, "called": counts.get("called"),
                "acknowledged": counts.get("acknowledged"), "unreached": counts.get("unreached")})
        return
    row.error = outcome.error
    row.failing_since = row.failing_since or now
    if outcome.refused:
        row.status = "failed"
        log.error("%s to %s refused (%s): %s", job.kind, job.target, outcome.code, outcome.error)
        append_event(session, job.record_id, EventKind.FORWARD_REFUSED, "engine", now,
                     {**base, "error": outcome.error, "key": outcome.key_refused})
        return
    row.status, row.not_before = "queued", now + timedelta(seconds=backoff(job.tries, outcome.retry_after))
    log.warning("%s to %s failed (try %d): %s; next try at %s", job.kind, job.target, job.tries, outcome.error,
                row.not_before.isoformat())
    if job.tries & (job.tries - 1) == 0:  # tries 1, 2, 4, 8 …: a long outage does not flood the record
        append_event(session, job.record_id, EventKind.FORWARD_FAILED, "engine", now,
                     {**base, "error": outcome.error, "retry_at": row.not_before.astimezone(UTC).isoformat()})


def _cap_counts(body: str) -> dict[str, Any]:
    """The counts a CAP report carries in its parameters (for the record's sentence)."""
    values: dict[str, str] = {}
    for element in DefusedET.fromstring(body.encode("utf-8")).iter():
        if isinstance(element.tag, str) and element.tag.endswith("}parameter"):
            pair = [(child.text or "").strip() for child in element]
            if len(pair) == 2:
                values[pair[0]] = pair[1]
    return {name: int(values[f"jiaoying_{name}"]) for name in ("called", "acknowledged", "unreached")
            if values.get(f"jiaoying_{name}", "").isdigit()}


# -- the e-mail ---------------------------------------------------------------------------------------


@cache
def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(Path(project_root()) / "templates"), undefined=StrictUndefined,
                       autoescape=False, trim_blocks=True, lstrip_blocks=True)


def report_text(result: dict[str, Any], lang: str) -> tuple[str, str]:
    """The report e-mail's subject and text in one language (templates/email/report.<lang>.j2)."""
    from ..rendering import BEIJING

    def local(value: str | None) -> str:
        return datetime.fromisoformat(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    w = result["warning"]
    try:
        title = (f"{Hazard(w['hazard']).zh}{Level(w['level']).zh}预警" if lang == "zh" else
                 f"{w['level'].capitalize()} {w['hazard'].replace('_', ' ')} warning")
    except ValueError:
        title = w.get("headline", "")
    module = _templates().get_template(f"email/report.{lang}.j2").make_module({
        "r": result, "w": w, "c": result["counts"], "title": title, "local": local, "bars": BARS})
    return str(getattr(module, "subject", "")).strip(), str(module).strip()


def report_email(settings: Settings, to: Sequence[str], result: dict[str, Any], identifier: str) -> EmailMessage:
    """The settled-result e-mail: Chinese first, English below (plain text)."""
    subject, zh = report_text(result, "zh")
    subject_en, en = report_text(result, "en")
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(to)
    mail["Subject"] = f"{subject} / {subject_en}"
    domain = settings.smtp_from.rpartition("@")[2].strip("> ") or "jiaoying.local"
    mail["Message-ID"] = make_msgid(idstring=identifier, domain=domain)  # the same on every try
    mail["X-Jiaoying-Report"] = identifier
    mail.set_content(f"{zh}\n\n———— English ————\n\n{en}\n")
    return mail


# -- health and the operator's commands ---------------------------------------------------------------


def problems(session: Session, now: datetime, stale_after: float) -> list[tuple[str, str]]:
    """What /readyz and the board say about forwarding, (English, Chinese) each: targets that refused
    (in the last day; our key, or the content) and targets failing for longer than ``stale_after`` s."""
    out: list[tuple[str, str]] = []
    refused = session.execute(
        select(ForwardRow.target, ForwardRow.target_name, ForwardRow.kind, ForwardRow.last_code, ForwardRow.error,
               func.count()).where(ForwardRow.status == "failed", ForwardRow.updated_at >= now - REFUSED_SHOWN)
        .group_by(ForwardRow.target, ForwardRow.target_name, ForwardRow.kind, ForwardRow.last_code, ForwardRow.error)
        .order_by(ForwardRow.target)).all()
    for target, name, kind, code, error, count in refused:
        who = f"{name} ({target})" if name and name != target else target
        who_zh = f"{name}（{target}）" if name and name != target else target
        what, what_zh = _what(kind, count)
        status = f"HTTP {code}" if code else "not sent"
        if code in (401, 403):
            out.append((f"{who} refused our key ({status}: {error}): {what} not delivered; check the key in the "
                        "forwarding file, then run `jiaoying forwarding retry`",
                        f"{who_zh}拒绝了我方密钥（{status}：{error}）：{what_zh}未送达；请核对转发配置中的密钥后执行 "
                        "jiaoying forwarding retry"))
        else:
            out.append((f"{who} refused {what} ({status}: {error}); not retried until `jiaoying forwarding retry`",
                        f"{who_zh}拒收{what_zh}（{status}：{error}）；执行 jiaoying forwarding retry 前不再重试"))
    since = now - timedelta(seconds=stale_after)
    failing = session.execute(
        select(ForwardRow.target, ForwardRow.target_name, ForwardRow.kind, func.count(),
               func.min(ForwardRow.failing_since))
        .where(ForwardRow.status.in_(("queued", "sending")), ForwardRow.failing_since <= since)
        .group_by(ForwardRow.target, ForwardRow.target_name, ForwardRow.kind).order_by(ForwardRow.target)).all()
    for target, name, kind, count, first in failing:
        last = session.execute(select(ForwardRow.last_code, ForwardRow.error).where(
            ForwardRow.target == target, ForwardRow.kind == kind, ForwardRow.status.in_(("queued", "sending")),
            ForwardRow.failing_since.is_not(None)).order_by(ForwardRow.updated_at.desc()).limit(1)).first()
        seconds = (now - first).total_seconds()
        said = f"HTTP {last.last_code}: {last.error}" if last and last.last_code else (last.error if last else "")
        who = f"{name} ({target})" if name and name != target else target
        who_zh = f"{name}（{target}）" if name and name != target else target
        what, what_zh = _what(kind, count)
        out.append((f"{'forwarding' if kind == FORWARD else 'reporting'} to {who} failing for {seconds:.0f} s "
                    f"({what} waiting; last: {said}); retrying",
                    f"{'转发至' if kind == FORWARD else '向'}{who_zh}{'' if kind == FORWARD else '上报结果'}已失败 "
                    f"{seconds:.0f} 秒（{what_zh}待发；最近一次：{said}），正在重试"))
    return out


def _what(kind: str, count: int) -> tuple[str, str]:
    if kind == FORWARD:
        return f"{count} forward(s)", f"{count} 条转发"
    return f"{count} result report(s)", f"{count} 份结果上报"


def retry_failed(session: Session, now: datetime, target: str | None = None) -> int:
    """Queue refused forwards and reports again (after their key or address was fixed)."""
    where = [ForwardRow.status == "failed"]
    if target:
        where.append(ForwardRow.target == target)
    # A report refused before its result was written (its recipient had left the file) waits again.
    status = case((and_(ForwardRow.kind != FORWARD, ForwardRow.body == ""), "waiting"), else_="queued")
    result = session.execute(update(ForwardRow).where(*where).values(
        status=status, not_before=None, lease_until=None, updated_at=now).execution_options(
        synchronize_session=False))
    return result.rowcount or 0
