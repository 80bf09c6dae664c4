"""Reading call-outs back: per official, their state, attempts and acknowledgement — and what a
duty officer needs at 3 a.m. to act on them: to whom each attempt went (本人, AB岗, 上级, 值班长,
乡镇值班室) and on which number, who answered (the official or someone for them), who has already
been told of an unreached official, whom to phone now (with every number), the door-to-door
follow-up on the record, and the order the board lists them in (:func:`order`).

Relations are read from the roster as it is loaded (deputy, superior) and the duty rotas at the
call-out's start (county duty leader, chief and staff; town duty rooms), helped by the attempt's
purpose when someone holds two of them (a superior who is also on duty)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.tables import AttemptRow, CalloutRow
from ..domain.callouts import CalloutState
from ..domain.duty import DutyPosition
from ..domain.roster import Person, PhoneKind, PhoneNumber, mask_phone
from ..domain.site import Site
from ..privacy import mask_value
from .follow_up import follow_ups
from .record_words import Frozen
from .site import current_site

# Not acknowledged this long after the call-out started: overdue (超时未确认) on the board, and
# listed before the other open call-outs (board/views.py OVERDUE_AFTER is this).
OVERDUE_AFTER = timedelta(minutes=5)
# An attempt in one of these states reached (or is reaching) its recipient: they were told.
REACHED = ("sending", "sent", "delivered")


class Relation(StrEnum):
    """Who someone is to the official of a call-out (what the board's chips and lines say)."""

    SELF = "self"  # 本人
    DEPUTY = "deputy"  # AB岗
    SUPERIOR = "superior"  # 上级
    DUTY_LEADER = "duty_leader"  # 值班领导 (the county's duty room)
    DUTY_CHIEF = "duty_chief"  # 值班长
    DUTY_STAFF = "duty_staff"  # 值班员
    TOWN_DUTY = "town_duty"  # 乡镇值班室 (a town's duty room: its leader or chief on shift)
    OFFICER = "officer"  # a duty officer on the board (acknowledged on someone's behalf)
    OTHER = "other"  # someone else (an agency key through the API, a number no longer on the roster)


DUTY_RELATIONS = frozenset({Relation.DUTY_LEADER, Relation.DUTY_CHIEF, Relation.DUTY_STAFF, Relation.TOWN_DUTY})
_POSITION = {DutyPosition.LEADER: Relation.DUTY_LEADER, DutyPosition.CHIEF: Relation.DUTY_CHIEF,
             DutyPosition.STAFF: Relation.DUTY_STAFF}
# What a number is, as the board names it: the first mobile 手机, a later one 备用手机, 办公电话 …
NUMBER_LABELS = ("mobile", "backup_mobile", "landline", "satellite")


def counts(session: Session, record_id: str) -> dict[str, int]:
    by_state = dict(session.execute(
        select(CalloutRow.state, func.count()).where(CalloutRow.record_id == record_id).group_by(CalloutRow.state)
    ).all())
    out = {s.value: by_state.get(s.value, 0) for s in CalloutState}
    out["total"] = sum(by_state.values())
    return out


def frozen_steps(session: Session, record_id: str) -> dict[int, Frozen]:
    """Each call-out's official and frozen steps: what the record's step sentences name."""
    return {row.id: Frozen(row.person_id, row.steps or ()) for row in session.execute(
        select(CalloutRow.id, CalloutRow.person_id, CalloutRow.steps).where(CalloutRow.record_id == record_id))}


@dataclass(frozen=True)
class Held:
    """Someone's place relative to an official: the relation, and for TOWN_DUTY the town's duty room
    and the post held in it (leader, chief, staff)."""

    relation: Relation
    room: str | None = None
    post: str | None = None


class Relations:
    """Who is who to an official, for one site: the duty rotas are read once per start time."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._duty: dict[datetime, dict[str, Held]] = {}

    def on_duty(self, at: datetime) -> dict[str, Held]:
        """Everyone on a duty shift at ``at``: the county's room first, then the towns' rooms."""
        found = self._duty.get(at)
        if found is None:
            found = {}
            shift = self.site.duty.on_duty(at)
            if shift is not None:
                for position in DutyPosition:
                    for pid in shift.holders(position):
                        found.setdefault(pid, Held(_POSITION[position]))
            for room in self.site.rooms:
                rota = room.rota.on_duty(at)
                if rota is not None:
                    for position in DutyPosition:
                        for pid in rota.holders(position):
                            found.setdefault(pid, Held(Relation.TOWN_DUTY, room.name, position.value))
            self._duty[at] = found
        return found

    def of(self, official_id: str, person_id: str | None, at: datetime, purpose: str | None = None) -> Held:
        """Who ``person_id`` is to ``official_id`` at ``at``; ``purpose`` (an attempt's) decides for
        someone who holds two places (a superior also on duty, asked as the superior)."""
        if not person_id:
            return Held(Relation.OTHER)
        if person_id == official_id:
            return Held(Relation.SELF)
        official = self.site.people.get(official_id)
        deputy = official.deputy if official else None
        superior = official.superior if official else None
        duty = self.on_duty(at).get(person_id)
        if purpose == "to_deputy" and person_id == deputy:
            return Held(Relation.DEPUTY)
        if purpose == "to_superior" and person_id == superior:
            return Held(Relation.SUPERIOR)
        if purpose == "to_duty" and duty is not None:
            return duty
        if person_id == deputy:
            return Held(Relation.DEPUTY)
        if person_id == superior:
            return Held(Relation.SUPERIOR)
        return duty or Held(Relation.OTHER)

    def of_actor(self, official_id: str, actor: str | None, at: datetime) -> Held:
        """Who acknowledged, to the official: ``user:<login>`` is a duty officer on the board; a
        person id is placed like any recipient; a number is placed by whose number it is."""
        if not actor:
            return Held(Relation.OTHER)
        if actor.startswith("user:"):
            return Held(Relation.OFFICER)
        if actor in self.site.people:
            return self.of(official_id, actor, at)
        people = self.site.people_with_phone(actor)
        if official_id in people:
            return Held(Relation.SELF)
        return self.of(official_id, people[0], at) if people else Held(Relation.OTHER)


def numbers_of(person: Person, show_phones: bool) -> list[dict[str, str]]:
    """Every number of ``person`` in the order they are tried, each with what it is (``label``:
    mobile, backup_mobile, landline, satellite) and ``dial`` (the national form, as dialled from a
    desk phone in the county); masked for viewers."""
    out: list[dict[str, str]] = []
    for (number, kind), label in zip(_distinct(person.numbers), number_labels(person.numbers), strict=True):
        if show_phones:
            out.append({"number": number, "kind": kind, "label": label, "dial": _national(number)})
        else:
            masked = mask_phone(number)
            out.append({"number": masked, "kind": kind, "label": label, "dial": masked})
    return out


def _distinct(numbers: tuple[PhoneNumber, ...]) -> list[tuple[str, str]]:
    """(number, kind) once each, in order: as ``Person.voice_numbers`` counts them."""
    seen: dict[str, str] = {}
    for n in numbers:
        seen.setdefault(n.number, n.kind.value)
    return list(seen.items())


@lru_cache(maxsize=16384)
def number_labels(numbers: tuple[PhoneNumber, ...]) -> tuple[str, ...]:
    """What each of a person's numbers is (index as ``attempts.number``): the first mobile "mobile",
    a later one "backup_mobile", "landline", "satellite"."""
    labels: list[str] = []
    mobiles = 0
    for _, kind in _distinct(numbers):
        if kind == PhoneKind.MOBILE:
            labels.append("mobile" if mobiles == 0 else "backup_mobile")
            mobiles += 1
        else:
            labels.append(kind)
    return tuple(labels)


@lru_cache(maxsize=16384)
def _national(number: str) -> str:
    """+8613800000003 → 138 0000 0003; +865725012345 → 0572 501 2345 (as it is dialled at home)."""
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return number
    if parsed.country_code != 86:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


_COLUMNS = ("id", "warning_id", "person_id", "plan_id", "level", "state", "drill", "ack_code", "reason", "started_at",
            "next_step", "next_due", "acknowledged_at", "acknowledged_by", "ack_via", "ack_note", "unreached_at",
            "closed_reason")


def list_callouts(session: Session, record_id: str, show_phones: bool) -> list[dict[str, Any]]:
    site = current_site(session)
    # Plain rows, not ORM objects, only the columns shown, and the frozen steps only counted (by the
    # database): a board of 2,000 call-outs reads this on every live update.
    columns = [CalloutRow.__table__.c[name] for name in _COLUMNS]
    callouts = session.execute(select(*columns, func.json_array_length(CalloutRow.steps).label("n_steps"))
                               .where(CalloutRow.record_id == record_id).order_by(CalloutRow.id)).all()
    attempts: dict[int, list[Any]] = defaultdict(list)
    for a in session.execute(select(
            AttemptRow.callout_id, AttemptRow.step_index, AttemptRow.purpose, AttemptRow.channel,
            AttemptRow.recipient_id, AttemptRow.number, AttemptRow.status, AttemptRow.sent_at,
            AttemptRow.provider_id, AttemptRow.error)
            .where(AttemptRow.record_id == record_id).order_by(AttemptRow.id)):
        attempts[a.callout_id].append(a)
    visits = follow_ups(session, record_id)
    relations = Relations(site)
    labels: dict[str, str] = {}

    def person(pid: str) -> dict[str, Any]:
        p = site.people.get(pid)
        if p is None:
            return {"id": pid, "name": pid}
        phone = p.phone if show_phones else mask_phone(p.phone)
        if p.area not in labels:
            labels[p.area] = site.areas.label(p.area)
        return {"id": p.id, "name": p.name, "phone": phone, "unit": p.unit, "area": p.area,
                "area_name": labels[p.area], "roles": [site.roles.get(r, r) for r in p.roles]}

    def name(pid: str | None) -> str:
        p = site.people.get(pid or "")
        return p.name if p is not None else (pid or "")

    def label_of(pid: str, index: int) -> str:
        p = site.people.get(pid)
        known = number_labels(p.numbers) if p is not None else ()
        return known[index] if 0 <= index < len(known) else ""

    out = []
    for c in callouts:
        to_ack = (c.acknowledged_at - c.started_at).total_seconds() if c.acknowledged_at else None
        tried = []
        for a in attempts[c.id]:
            held = relations.of(c.person_id, a.recipient_id, c.started_at, a.purpose)
            tried.append({
                "step": a.step_index, "purpose": a.purpose, "channel": a.channel, "to": a.recipient_id,
                "status": a.status, "sent_at": a.sent_at.isoformat() if a.sent_at else None,
                "provider_id": a.provider_id, "error": a.error,
                # which of the recipient's numbers a call went to (0 the first), and what it is
                "number": a.number, "number_label": label_of(a.recipient_id, a.number) if a.channel == "voice" else "",
                "to_name": name(a.recipient_id), "relation": held.relation.value, "room": held.room})
        unreached = c.state == CalloutState.UNREACHED
        acked_by = relations.of_actor(c.person_id, c.acknowledged_by, c.started_at) if c.acknowledged_at else None
        official = person(c.person_id)
        duty = relations.on_duty(c.started_at).get(c.person_id)
        out.append({
            "id": c.id, "warning": c.warning_id, "official": official, "plan": c.plan_id,
            "level": c.level, "state": c.state, "drill": c.drill, "ack_code": c.ack_code if show_phones else None,
            "reason": c.reason,
            "started_at": c.started_at.isoformat(),
            "next_step": c.next_step if c.next_step < c.n_steps else None,
            "next_due": c.next_due.isoformat() if c.next_due else None,
            "acknowledged_at": c.acknowledged_at.isoformat() if c.acknowledged_at else None,
            # An SMS reply's acknowledger may be its sender's number: masked like the official's.
            "acknowledged_by": c.acknowledged_by if show_phones else mask_value(c.acknowledged_by),
            # … and who that is to the official: someone else's "收到" is not the official's own.
            "acknowledged_relation": acked_by.relation.value if acked_by else None,
            "acknowledged_by_name": _actor_name(site, c.acknowledged_by, show_phones) if acked_by else None,
            "ack_via": c.ack_via, "ack_note": c.ack_note,
            "seconds_to_ack": to_ack,
            "unreached_at": c.unreached_at.isoformat() if c.unreached_at else None,
            "closed_reason": c.closed_reason,
            # The official's duty post when the call-out is for it (or they hold no role): 值班长 …
            "duty": ({"relation": duty.relation.value, "room": duty.room, "post": duty.post}
                     if duty is not None and (not official.get("roles") or "值班" in c.reason) else None),
            "attempts": tried,
            # for an unreached official: who was told already, whom to phone now (else empty)
            "told": told(tried) if unreached else [],
            "phone_now": phone_now(site, relations, c.person_id, c.started_at, show_phones) if unreached else [],
            "follow_up": visits.get(c.id) or {"state": None, "visits": []},
        })
    return out


def _actor_name(site: Site, actor: str | None, show_phones: bool) -> str:
    """The name behind an acknowledger: a person's name, a duty officer's login, or the number/key."""
    if not actor:
        return ""
    if actor.startswith("user:"):
        return actor[5:]
    p = site.people.get(actor)
    if p is not None:
        return p.name
    people = site.people_with_phone(actor)
    if people and people[0] in site.people:
        return site.people[people[0]].name
    return actor if show_phones else str(mask_value(actor))


def told(attempts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Everyone other than the official who was reached about this call-out (an attempt sent or
    delivered to them): once each, at their first such attempt, in the order they were told, with
    the channels that reached them."""
    first: dict[str, dict[str, Any]] = {}
    for a in attempts:
        if a["relation"] == Relation.SELF or a["status"] not in REACHED or a["purpose"] in ("update", "cancel"):
            continue
        entry = first.get(a["to"])
        if entry is None:
            first[a["to"]] = {"to": a["to"], "name": a["to_name"], "relation": a["relation"], "room": a["room"],
                              "at": a["sent_at"], "channels": [a["channel"]]}
            continue
        if a["channel"] not in entry["channels"]:
            entry["channels"].append(a["channel"])
        if a["sent_at"] and (entry["at"] is None or a["sent_at"] < entry["at"]):
            entry["at"] = a["sent_at"]
    return sorted(first.values(), key=lambda e: (e["at"] is None, e["at"] or ""))


def phone_now(site: Site, relations: Relations, official_id: str, at: datetime,
              show_phones: bool) -> list[dict[str, Any]]:
    """Whom to phone now for an unreached official, in that order: the official on every number
    (a landline at home, a satellite phone), their AB岗 and superior, and the duty room of their
    town — each with every number and what it is; masked for viewers."""
    official = site.people.get(official_id)
    if official is None:
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(pid: str | None, relation: Relation) -> None:
        p = site.people.get(pid or "")
        if p is None or p.id in seen:
            return
        seen.add(p.id)
        out.append({"id": p.id, "name": p.name, "relation": relation.value, "room": None,
                    "numbers": numbers_of(p, show_phones)})

    add(official.id, Relation.SELF)
    add(official.deputy, Relation.DEPUTY)
    add(official.superior, Relation.SUPERIOR)
    room = site.room_of(official.area)
    if room is not None and room.phone:
        number = room.phone if show_phones else mask_phone(room.phone)
        out.append({"id": None, "name": room.name, "relation": Relation.TOWN_DUTY.value, "room": room.name,
                    "numbers": [{"number": number, "kind": "landline", "label": "duty_room",
                                 "dial": _national(room.phone) if show_phones else number}]})
    return out


# -- the order of the rows --------------------------------------------------------------------------

# unreached (needing someone sent; someone sent, no word yet or not found; found and told), overdue,
# open, acknowledged, closed otherwise (cancelled, expired)
_RANK_UNREACHED, _RANK_SENT, _RANK_RESOLVED, _RANK_OVERDUE, _RANK_OPEN, _RANK_ACKED, _RANK_CLOSED = range(7)
RESOLVED = frozenset({"reached", "relayed"})  # a follow-up's outcomes that found the official or told someone


def is_overdue(callout: Mapping[str, Any], now: datetime) -> bool:
    """Open (or unreached) and not acknowledged OVERDUE_AFTER after the call-out started."""
    if callout["state"] not in ("pending", "notified", "unreached"):
        return False
    started = _time(callout.get("started_at"))
    return started is not None and now - started > OVERDUE_AFTER


def rank(callout: Mapping[str, Any], now: datetime) -> int:
    """Where a call-out's row goes: unreached first — those nobody was sent to yet or not found by
    the one sent, then those someone is on the way to, then those found (or someone told for them) —
    then overdue, then open, then acknowledged, then closed otherwise."""
    state = callout["state"]
    if state == CalloutState.UNREACHED:
        follow = (callout.get("follow_up") or {}).get("state")
        if follow in RESOLVED:
            return _RANK_RESOLVED
        return _RANK_SENT if follow == "assigned" else _RANK_UNREACHED
    if state in (CalloutState.PENDING, CalloutState.NOTIFIED):
        return _RANK_OVERDUE if is_overdue(callout, now) else _RANK_OPEN
    if state == CalloutState.ACKNOWLEDGED:
        return _RANK_ACKED
    return _RANK_CLOSED


def sort_key(callout: Mapping[str, Any], now: datetime) -> tuple[Any, ...]:
    """The board's order: by :func:`rank`; within unreached, the longest unreached first; within
    overdue and open, the earliest started first; then by call-out id (a stable order: the board's
    live stream sends the order again only when a row moves)."""
    r = rank(callout, now)
    if r in (_RANK_UNREACHED, _RANK_SENT, _RANK_RESOLVED):
        when = callout.get("unreached_at") or callout.get("started_at") or ""
    elif r in (_RANK_OVERDUE, _RANK_OPEN):
        when = callout.get("started_at") or ""
    else:
        when = ""
    return (r, _time(when) or datetime.min.replace(tzinfo=now.tzinfo), callout["id"])


def order(callouts: Iterable[Mapping[str, Any]], now: datetime) -> list[Any]:
    """The call-outs (as :func:`list_callouts` gives them) in the board's order (:func:`sort_key`)."""
    return sorted(callouts, key=lambda c: sort_key(c, now))


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if value else None
