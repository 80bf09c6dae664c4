"""Intake: validate, deduplicate and store a warning, and record the rules engine's decision.

The warning is committed by the caller's transaction before the caller answers 202; sending is
started from the stored warning, never from the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.record_repo import append_event, new_record
from ..db.tables import WarningRow
from ..domain.areas import AreaTree
from ..domain.hazards import Hazard, Level
from ..domain.record import EventKind
from ..domain.warnings import MsgType, Warning
from ..domain.zones import Zone
from ..intake.errors import IntakeError
from ..intake.schema import WarningIn, check_sent
from .errors import Forbidden
from .expiry import expired_on_arrival
from .keys import AgencyKey, check_event_scope
from .site import current_site

_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


@dataclass(frozen=True)
class IntakeResult:
    id: str
    created: bool  # False: a repeat of a warning already received (nothing is triggered)
    status: str


def new_warning_id(now: datetime) -> str:
    return f"W{now:%Y%m%d}-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


def insert_record(session: Session, now: datetime, make: Callable[[str], WarningRow],
                  already: Callable[[], WarningRow | None] = lambda: None) -> tuple[WarningRow, bool]:
    """Store a new record (a warning, a routine check, a drill's warning) under a freshly drawn id:
    ``make`` builds the row for an id. Ids are drawn at random, so a collision draws another (five
    tries). A conflict that is not the id's — ``already`` finds the same message stored, by a second
    scheduler or a repeated post — returns that row and False instead."""
    for _ in range(5):
        row = make(new_warning_id(now))
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = already()
            if existing is not None:
                return existing, False
            continue  # an id collision: draw another
        if row.root_id is None:  # a record of its own (an update's events go on its event's record)
            new_record(session, row.id)
        return row, True
    raise RuntimeError("could not draw a free record id in five tries")


def receive_warning(
    session: Session, draft: WarningIn, *, key: AgencyKey | None, source_format: str, raw: str, now: datetime,
) -> IntakeResult:
    check_sent(draft, now)  # the one bound that needs the server's clock
    actor = key.actor if key else "local"
    if key and not key.may_send_as(draft.sender):
        raise Forbidden(f"this key (agency {key.agency}) may not post as sender {draft.sender!r}")
    existing = _find(session, draft.sender, draft.identifier)
    if existing is not None:
        return IntakeResult(existing.id, created=False, status=existing.status)
    earlier = _referenced(session, draft)
    if key:  # an update or cancel reaches its whole event: the key must cover every message of it
        check_event_scope(session, key, earlier)
    warning = draft.to_domain(_domain(earlier[0]) if earlier else None)
    if key and not key.may_post(warning.hazard):
        raise Forbidden(f"this key (agency {key.agency}) may not post {warning.hazard.value} warnings")
    site = current_site(session)
    _check_areas(site.areas, warning.areas)
    _check_zones(site.zones, warning.zones)
    row = _store(session, warning, earlier, key, source_format, raw, now, via=draft.via)
    if isinstance(row, _Repeat):  # lost a race with the same warning posted concurrently
        return IntakeResult(row.existing.id, created=False, status=row.existing.status)
    record = row.root_id or row.id
    append_event(session, record, EventKind.RECEIVED, actor, now, {
        "warning": row.id, "format": source_format, "sender": warning.sender,
        "identifier": warning.identifier, "msg_type": warning.msg_type.value, "hazard": warning.hazard.value,
        "level": warning.level.value, "areas": list(warning.areas), "drill": warning.drill,
        "headline": warning.headline, **({"zones": list(warning.zones)} if warning.zones else {}),
        **({"via": list(draft.via)} if draft.via else {}),
    })
    if earlier:
        kind = EventKind.CANCELLED if warning.msg_type is MsgType.CANCEL else EventKind.UPDATED
        ended = _end_chain(session, record, row, warning.msg_type)
        append_event(session, record, kind, actor, now, {"warnings": ended, "by": row.id})
    # The rules engine's decision is recorded by the engine when it applies the warning, moments
    # later: intake only validates and stores, so its answer stays fast for any county's size.
    return IntakeResult(row.id, created=True, status=row.status)


def _find(session: Session, sender: str, identifier: str) -> WarningRow | None:
    return session.scalars(
        select(WarningRow).where(WarningRow.sender == sender, WarningRow.identifier == identifier)
    ).first()


def _referenced(session: Session, draft: WarningIn) -> list[WarningRow]:
    if draft.msg_type is MsgType.ALERT:
        return []
    found = []
    for identifier in draft.references:
        row = _find(session, draft.sender, identifier)
        if row is None:
            raise IntakeError.invalid(
                "references", f"no earlier warning {identifier!r} from sender {draft.sender!r}")
        found.append(row)
    return found


def _check_areas(tree: AreaTree, areas: tuple[str, ...]) -> None:
    roots = ", ".join(f"{tree.name(r)} {r}" for r in tree.roots)
    for i, code in enumerate(areas):
        if not tree.relates(code):
            raise IntakeError.invalid(f"areas[{i}]", f"{code} is not an area of this site ({roots})")


def _check_zones(zones: Mapping[str, Zone], named: tuple[str, ...]) -> None:
    for i, zone in enumerate(named):
        if zone not in zones:
            known = ", ".join(zones) or "none"
            raise IntakeError.invalid(f"zones[{i}]", f"{zone!r} is not a zone of this site (zones: {known})")


def _store(
    session: Session, warning: Warning, earlier: list[WarningRow], key: AgencyKey | None,
    source_format: str, raw: str, now: datetime, via: list[str] | None = None,
) -> WarningRow | _Repeat:
    root = (earlier[0].root_id or earlier[0].id) if earlier else None
    cancel = warning.msg_type is MsgType.CANCEL
    row, created = insert_record(session, now, lambda record_id: WarningRow(
        id=record_id, sender=warning.sender, identifier=warning.identifier,
        msg_type=warning.msg_type.value, references=list(warning.references), root_id=root,
        hazard=warning.hazard.value, level=warning.level.value, areas=list(warning.areas),
        zones=list(warning.zones), headline=warning.headline, description=warning.description,
        instruction=warning.instruction,
        sent=warning.sent, expires=warning.expires, drill=warning.drill,
        status="cancelled" if cancel else ("expired" if expired_on_arrival(warning.expires, now) else "active"),
        received_at=now,
        api_key_id=key.id if key else None, source_format=source_format, raw=raw,
        # where it came from, for forwarding (services/forwarding.py): never back to its origin
        origin=key.agency if key else "local", via=list(via or ()),
    ), lambda: _find(session, warning.sender, warning.identifier))
    return row if created else _Repeat(row)


@dataclass(frozen=True)
class _Repeat:
    existing: WarningRow


def _end_chain(session: Session, root_id: str, newest: WarningRow, msg_type: MsgType) -> list[str]:
    """An update supersedes every active message of the event; a cancel ends them all —
    whichever message it names (the national profile always names the first)."""
    status = "cancelled" if msg_type is MsgType.CANCEL else "updated"
    open_states = ("active", "updated") if msg_type is MsgType.CANCEL else ("active",)
    chain = session.scalars(select(WarningRow).where(
        (WarningRow.id == root_id) | (WarningRow.root_id == root_id), WarningRow.id != newest.id,
        WarningRow.status.in_(open_states)))
    ended = []
    for old in chain:
        old.status = status
        ended.append(old.id)
    return sorted(ended)


def _domain(row: WarningRow) -> Warning:
    return Warning(
        sender=row.sender, identifier=row.identifier, msg_type=MsgType(row.msg_type),
        hazard=Hazard(row.hazard), level=Level(row.level), areas=tuple(row.areas), headline=row.headline,
        sent=row.sent, references=tuple(row.references), description=row.description,
        instruction=row.instruction, expires=row.expires, drill=row.drill, zones=tuple(row.zones or ()),
    )
