"""Load and validate a site folder (``rosters/<site>/``): areas, people, duty and plans, and the
optional routine checks (checks.yaml: duty roll-calls).

The format is described in docs/site-files.md. ``check_site`` reports every problem it finds,
each as ``file:line: message``; a Site is built only from a folder without problems.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from .domain.areas import Area, AreaTree, covers, normalize_code, overlaps
from .domain.channels import Channel, accepted_channels
from .domain.checks import RollCall, RollCallTarget, SpotCheck, WeeklyWindow
from .domain.duty import WEEKDAYS, DutyPosition, DutyRoom, DutyRota, DutyShift, WeeklyShift
from .domain.hazards import Hazard, accepted_hazards, accepted_levels, parse_hazard, parse_level
from .domain.plans import (
    Broadcast,
    DutyTarget,
    FinalEscalation,
    Match,
    Plan,
    QuietHours,
    Recipient,
    RoleTarget,
    Scope,
    Step,
    Target,
    TownDutyTarget,
)
from .domain.reach import NoMobileReach
from .domain.roster import NoMobile, Person, PhoneKind, PhoneNumber, Responsibility, numbers_of
from .domain.rules import FALLBACK_LEVELS, VILLAGE
from .domain.site import DEFAULT_TZ, Site
from .domain.zones import Zone, ZoneKind
from .gcpause import gc_paused
from .yamlsource import Fields, Problem, Source, clip, format_span, text_problem

__all__ = ["FILES", "Problem", "SiteInvalid", "check_site", "load_site", "site_digest"]

FILES = ("areas.yaml", "people.yaml", "duty.yaml", "plans.yaml")
OPTIONAL_FILES = ("checks.yaml",)  # a site without it runs no routine checks
IM_KINDS = ("dingtalk", "wecom", "feishu")

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_AREA_CODE = re.compile(r"^(\d{6}|\d{9}|\d{12}|\d{15})$")
AREA_KINDS = ("group", "natural_village", "grid")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SiteInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class _Known:
    """What the other files declare; None when that file could not be read (checks are skipped)."""

    tz: tzinfo = DEFAULT_TZ
    tree: AreaTree | None = None
    roles: dict[str, str] | None = None
    people: dict[str, Person] | None = None
    fallback: Plan | None = None  # the plan marked ``fallback: true``, if any
    zones: dict[str, Zone] | None = None
    people_ok: bool = False  # people.yaml read without problems: who-is-reached checks can be trusted
    plan_fields: dict[str, Fields] = field(default_factory=dict)  # each plan read, for problems found later


def load_site(path: Path) -> Site:
    site, problems = check_site(path)
    if site is None:
        raise SiteInvalid(problems)
    return site


def site_digest(path: Path) -> str:
    """A fingerprint of the four files, to tell "nothing changed" from a real edit."""
    digest = hashlib.sha256()
    optional = [n for n in OPTIONAL_FILES if (Path(path) / n).is_file()]  # absent: the digest it always had
    for name in (*FILES, *optional):
        file = Path(path) / name
        data = file.read_bytes() if file.is_file() else b""
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def check_site(path: Path) -> tuple[Site | None, list[Problem]]:
    with gc_paused():  # tens of thousands of people: see gcpause
        return _check_site(Path(path))


def _check_site(folder: Path) -> tuple[Site | None, list[Problem]]:
    sources = {name: Source(folder / name) for name in FILES}
    known = _Known()
    site_id = _read_areas(sources["areas.yaml"], folder, known)
    known.roles, known.people = _read_people(sources["people.yaml"], known)
    known.people_ok = not sources["people.yaml"].problems
    duty, rooms = _read_duty(sources["duty.yaml"], known)
    plans = _read_plans(sources["plans.yaml"], known)
    if (folder / "checks.yaml").is_file():
        sources["checks.yaml"] = Source(folder / "checks.yaml")
    rollcalls, spotchecks = _read_checks(sources["checks.yaml"], known, rooms) if "checks.yaml" in sources else ((), ())
    site = None
    if known.tree is not None and known.roles is not None and known.people is not None:
        site = Site(site_id, known.tree, known.roles, known.people, duty, plans, known.tz, known.fallback,
                    known.zones or {}, rooms, rollcalls, spotchecks)
        if known.people_ok:  # whom a step reaches needs the roster as written
            _check_reach(site, known)
    problems = [p for src in sources.values() for p in sorted(src.problems, key=lambda p: p.line)]
    if problems or site is None:
        return None, problems
    return site, []


# --- areas.yaml -------------------------------------------------------------------------------


def _read_areas(src: Source, folder: Path, known: _Known) -> str:
    doc = src.load()
    top = Fields(src, doc, 1)
    if doc is not None and not top.ok:
        return folder.name
    top.check_keys(("site", "name", "timezone", "areas", "zones"))
    top.text("name")
    site_id = top.text("site") or folder.name
    if not _ID.match(site_id):
        top.problem(f"site id '{site_id}' may only use letters, digits, '-' and '_'", "site")
    zone = top.text("timezone")
    if zone:
        try:
            known.tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            top.problem(f"unknown time zone '{zone}' (use a name like Asia/Shanghai)", "timezone")
    found: dict[str, tuple[Area, int]] = {}
    for f in top.each("areas", "area"):
        _read_area(f, None, found)
    if not found and not src.problems:
        top.problem("no areas: list the county and its towns and villages under 'areas:'")
    known.tree = AreaTree.of(a for a, _ in found.values()) if found else None
    known.zones = _read_zones(top, known.tree)
    return site_id


def _read_zones(top: Fields, tree: AreaTree | None) -> dict[str, Zone]:
    zones: dict[str, Zone] = {}
    lines: dict[str, int] = {}
    for f in top.each("zones", "zone"):
        zid = f.text("id", required=True)
        f.label = f"zone {zid}" if zid else "zone"
        f.check_keys(("id", "name", "kind", "areas"))
        name = f.text("name", required=True)
        if zid and not _ID.match(zid):
            f.problem(f"id '{zid}' may only use letters, digits, '-' and '_'", "id")
        kind_text = f.text("kind") or ZoneKind.OTHER.value
        try:
            kind = ZoneKind(kind_text)
        except ValueError:
            f.problem(f"unknown kind '{kind_text}'; accepted: {_accepted(ZoneKind)}", "kind")
            kind = ZoneKind.OTHER
        areas = []
        for code, line in f.texts("areas", required=True):
            if tree is not None and code not in tree:
                f.problem(f"unknown area '{code}' (not in areas.yaml): a zone lists villages or groups", line=line)
            elif len(code) < VILLAGE:
                what = "a town or street" if len(code) == 9 else "the county" if len(code) == 6 else "not a village"
                named = f" ({tree.name(code)})" if tree is not None else ""
                f.problem(f"'{code}'{named} is {what}: a zone lists villages or groups (12 or 15 digits); list the "
                          "villages of it that the zone takes in", line=line)
            else:
                areas.append(code)
        if zid and zid in lines:
            f.problem(f"duplicate id (first at line {lines[zid]})", "id")
        elif zid and name and areas:
            lines[zid] = f.line
            zones[zid] = Zone(zid, name, kind, tuple(dict.fromkeys(areas)))
    return zones


def _read_area(f: Fields, parent: Area | None, found: dict[str, tuple[Area, int]]) -> None:
    code = f.text("code", required=True)
    f.label = f"area {code}" if code else "area"
    name = f.text("name", required=True)
    f.label += f" ({name})" if name else ""
    f.check_keys(("code", "name", "kind", "children"))
    kind = f.text("kind")
    if kind and kind not in AREA_KINDS:
        f.problem(f"unknown kind '{kind}'; accepted: {', '.join(AREA_KINDS)} (for a village's groups and grids)",
                  "kind")
    elif kind and code and len(code) != 15:
        f.problem(f"'kind' is for a village's groups and grids (15-digit codes), not '{code}'", "kind")
    area = None
    if code and code in found:
        f.problem(f"duplicate code (first at line {found[code][1]})", "code")
    elif code:
        area = Area(code, name or code, parent.code if parent else None, kind or "")
        found[code] = (area, f.line_of("code"))
        if not _AREA_CODE.match(code):
            has = f"has {len(code)}" if code.isdigit() else "has other characters"
            f.problem(f"code must have 6, 9, 12 or 15 digits (county, town, village, or a village's group or "
                      f"grid); '{code}' {has}", "code")
        elif parent and not (code.startswith(parent.code) and len(code) > len(parent.code)):
            f.problem(f"code does not extend its parent's code {parent.code} ({parent.name}): "
                      "a child's code starts with its parent's and is longer", "code")
    for child in f.each("children", "area"):
        _read_area(child, area, found)


# --- people.yaml ------------------------------------------------------------------------------


def _read_people(src: Source, known: _Known) -> tuple[dict[str, str] | None, dict[str, Person] | None]:
    doc = src.load()
    top = Fields(src, doc, 1)
    if doc is not None and not top.ok:
        return None, None
    top.check_keys(("roles", "people"))
    roles = _read_roles(top)
    people: dict[str, Person] = {}
    fields: dict[str, Fields] = {}
    for f in top.each("people", "person"):
        person = _read_person(f, roles, known)
        if person and person.id in fields:
            f.problem(f"duplicate id (first at line {fields[person.id].line})", "id")
        elif person:
            people[person.id], fields[person.id] = person, f
    if not people and not src.problems:
        top.problem("no people: list the officials under 'people:'")
    for link in ("deputy", "superior"):
        _check_links(people, fields, link)
    return (roles if top.ok else None), (people or None)


def _read_roles(top: Fields) -> dict[str, str]:
    roles_field = top.sub("roles")
    if roles_field is None:
        if top.ok and not top.has("roles"):
            top.problem("no roles: declare the roles (role id: name) under 'roles:'")
        return {}
    data = roles_field.data
    for key, line, first in getattr(data, "duplicates", []):
        top.problem(f"role {key} is declared twice (also at line {first})", line=line)
    roles: dict[str, str] = {}
    for key, name in data.items():
        line = roles_field.line_of(key)
        if not isinstance(key, str) or not _ID.match(key):
            top.problem(f"role id '{key}' may only use letters, digits, '-' and '_'", line=line)
        elif not isinstance(name, str | int) or isinstance(name, bool) or not str(name).strip():
            top.problem(f"role {key} needs a display name, e.g. {key}: 村防汛责任人", line=line)
        elif problem := text_problem(str(name)):
            top.problem(f"role {key}: the display name {problem}", line=line)
        else:
            roles[key] = str(name).strip()
    return roles


def _read_person(f: Fields, roles: dict[str, str], known: _Known) -> Person | None:
    tree = known.tree
    pid = f.text("id", required=True)
    f.label = f"person {pid}" if pid else "person"
    f.check_keys(("id", "name", "phone", "phones", "email", "im", "area", "roles", "unit", "deputy", "superior",
                  "responsibilities"))
    if pid and not _ID.match(pid):
        f.problem(f"id '{pid}' may only use letters, digits, '-' and '_'", "id")
    name = f.text("name", required=True)
    area = f.text("area", required=True)
    if area and tree is not None and area not in tree:
        f.problem(f"unknown area '{area}' (not in areas.yaml)", "area")
    role_ids = tuple(dict.fromkeys(_known_roles(f, "roles", roles)))
    email = f.text("email")
    if email and not _EMAIL.match(email):
        f.problem(f"email '{email}' is not an email address", "email")
    phone, im = _phone(f), _im(f)
    phones = _phones(f)
    duties = _responsibilities(f, area, role_ids, known)
    if not pid:
        return None
    return Person(
        id=pid, name=name or pid, phone=phone.number if phone else None, area=area or "", roles=role_ids,
        unit=f.text("unit") or "", email=email or None, im=im, deputy=f.text("deputy"), superior=f.text("superior"),
        phone_kind=phone.kind if phone else PhoneKind.MOBILE, phones=phones, responsibilities=duties,
    )


def _known_roles(f: Fields, key: str, roles: dict[str, str] | None, required: bool = False) -> list[str]:
    out = []
    for role, line in f.texts(key, required):
        if roles and role not in roles:
            f.problem(f"unknown role '{role}' (not declared under 'roles:' in people.yaml)", line=line)
        else:
            out.append(role)
    return out


def _phone(f: Fields) -> PhoneNumber | None:
    text = f.text("phone")
    if text is None:
        return None
    return _number(f, text, None, f.line_of("phone"), "phone")


def _phones(f: Fields) -> tuple[PhoneNumber, ...]:
    out: list[PhoneNumber] = []
    for item, line in f.items("phones"):
        if isinstance(item, dict):
            entry = Fields(f.src, item, line, f.label)
            entry.check_keys(("number", "kind"))
            text, kind = entry.text("number", required=True), entry.text("kind")
        elif isinstance(item, str | int) and not isinstance(item, bool):
            text, kind = str(item).strip(), None
        else:
            f.problem("'phones' lists numbers: \"13905720001\" or {number: \"0572-5012345\", kind: landline}",
                      line=line)
            continue
        if text and (number := _number(f, text, kind, line, "phones")):
            out.append(number)
    return tuple(out)


_KINDS = {phonenumbers.PhoneNumberType.FIXED_LINE: PhoneKind.LANDLINE}


def _number(f: Fields, text: str, kind_text: str | None, line: int, field: str) -> PhoneNumber | None:
    """A number in E.164 with its kind: given, or worked out by libphonenumber (a satellite phone says so)."""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        number = None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else ""
    # libphonenumber forgives a trunk 0 after the country code (+86 0139…); E.164 has none.
    spelled_out = text.startswith("+") and re.sub(r"[\s().-]", "", text) != e164
    if number is None or not phonenumbers.is_valid_number(number) or spelled_out:
        f.problem(f"{field} '{text}' is not a valid phone number (e.g. +8613905720001)", line=line)
        return None
    if kind_text is None:
        return PhoneNumber(e164, _KINDS.get(phonenumbers.number_type(number), PhoneKind.MOBILE))
    try:
        return PhoneNumber(e164, PhoneKind(kind_text))
    except ValueError:
        f.problem(f"{field}: unknown kind '{kind_text}'; accepted: {_accepted(PhoneKind)}", line=line)
        return None


def _responsibilities(f: Fields, seat: str | None, roles: tuple[str, ...], known: _Known
                      ) -> tuple[Responsibility, ...]:
    out: list[Responsibility] = []
    for r in f.each("responsibilities", f"{f.label}: responsibility", numbered=True):
        r.check_keys(("kind", "areas", "zones", "roles"))
        kind = r.text("kind") or "包保"
        areas = []
        for code, line in r.texts("areas"):
            if known.tree is not None and code not in known.tree:
                r.problem(f"unknown area '{code}' (not in areas.yaml)", line=line)
            elif seat and covers(code, seat):
                where = "is the person's own seat" if code == seat else "contains the person's own seat"
                r.problem(f"area '{code}' {where}: a responsibility is for areas beyond one's seat", line=line)
            else:
                areas.append(code)
        zones = []
        for zone, line in r.texts("zones"):
            if known.zones is not None and zone not in known.zones:
                r.problem(f"unknown zone '{zone}' (not under 'zones:' in areas.yaml)", line=line)
            else:
                zones.append(zone)
        held = []
        for role, line in r.texts("roles"):
            if role not in roles:
                r.problem(f"role '{role}' is not one of the person's roles ({', '.join(roles) or 'none'})", line=line)
            else:
                held.append(role)
        if not r.has("areas") and not r.has("zones"):
            r.problem("a responsibility names 'areas' or 'zones' (or both)")
        if areas or zones:
            out.append(Responsibility(kind, tuple(dict.fromkeys(areas)), tuple(dict.fromkeys(zones)), tuple(held)))
    return tuple(out)


def _im(f: Fields) -> dict[str, str]:
    im = f.sub("im")
    if im is None:
        return {}
    im.check_keys(IM_KINDS)
    return {kind: value for kind in IM_KINDS if (value := im.text(kind))}


def _check_links(people: dict[str, Person], fields: dict[str, Fields], link: str) -> None:
    """Unknown deputies/superiors, and chains that loop (reported once, from the earliest person)."""
    for pid, person in people.items():
        target = getattr(person, link)
        if target and target not in people:
            fields[pid].problem(f"{link} '{target}' is not a person in people.yaml", link)
    order = {pid: i for i, pid in enumerate(people)}
    seen: set[str] = set()
    for start in people:
        path: list[str] = []
        node: str | None = start
        while node in people and node not in seen:
            seen.add(node)
            path.append(node)
            node = getattr(people[node], link)
        if node in path:
            cycle = path[path.index(node):]
            first = min(cycle, key=order.__getitem__)
            cycle = cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first]
            fields[first].problem(f"{link} cycle: {' -> '.join(cycle)}", link)


# --- duty.yaml --------------------------------------------------------------------------------


def _read_duty(src: Source, known: _Known) -> tuple[DutyRota, tuple[DutyRoom, ...]]:
    doc = src.load()
    top = Fields(src, doc, 1)
    if doc is not None and not top.ok:
        return DutyRota(known.tz), ()
    top.check_keys(("shifts", "weekly", "rooms"))
    rooms: list[DutyRoom] = []
    lines: dict[str, int] = {}
    for f in top.each("rooms", "room"):
        area = f.text("area", required=True)
        f.label = f"room {area}" if area else "room"
        f.check_keys(("area", "name", "phone", "shifts", "weekly"))
        phone = _phone(f)
        if area and known.tree is not None and area not in known.tree:
            f.problem(f"unknown area '{area}' (not in areas.yaml)", "area")
        elif area and len(area) != 9:
            f.problem(f"a duty room is a town's or street's (a 9-digit code), not '{area}'", "area")
        elif area in lines:
            f.problem(f"a second duty room for {area} (the first is at line {lines[area]})", "area")
        elif area:
            lines[area] = f.line
            name = f.text("name") or f"{known.tree.name(area) if known.tree else area}值班室"
            rooms.append(DutyRoom(area, name, _read_rota(f, known), phone.number if phone else None))
    return _read_rota(top, known), tuple(rooms)


def _read_rota(top: Fields, known: _Known) -> DutyRota:
    dated = [(shift, f) for f in top.each("shifts", "shift") if (shift := _read_shift(f, known))]
    _check_overlaps(dated)
    weekly = [w for f in top.each("weekly", "weekly") if (w := _read_weekly(f, known))]
    return DutyRota(known.tz, tuple(s for s, _ in dated), tuple(weekly))


def _read_shift(f: Fields, known: _Known) -> DutyShift | None:
    start_text = f.text("start", required=True)
    f.label = f"shift {start_text}" if start_text else "shift"
    f.check_keys(("start", "end", "leader", "chief", "staff"))
    start, end = f.date_time("start", known.tz), f.date_time("end", known.tz)
    leader, chief, staff = _duty_people(f, known.people)
    if start is None or end is None:
        return None
    if end <= start:
        f.problem(f"ends at {f.text('end')}, which is not after its start", "end")
        return None
    return DutyShift(start, end, leader, chief, staff)


def _check_overlaps(dated: list[tuple[DutyShift, Fields]]) -> None:
    ordered = sorted(dated, key=lambda item: item[0].start)
    for i, (shift, f) in enumerate(ordered):
        earlier = next(((s, g) for s, g in ordered[:i] if s.end > shift.start), None)
        if earlier:
            g = earlier[1]
            f.problem(f"overlaps the shift {g.text('start')} to {g.text('end')} (line {g.line})")


def _read_weekly(f: Fields, known: _Known) -> WeeklyShift | None:
    day = f.text("day", required=True)
    f.label = f"weekly {day}" if day else "weekly"
    f.check_keys(("day", "start", "hours", "leader", "chief", "staff"))
    if day and day.lower() not in WEEKDAYS:
        f.problem(f"unknown day '{day}'; accepted: {', '.join(WEEKDAYS)}", "day")
    start = f.time_of_day("start")
    hours = f.get("hours")
    if hours is None:
        hours = 24
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 168:
        f.problem(f"hours must be a number more than 0 (at most 168), found {clip(repr(hours))}", "hours")
        hours = None
    leader, chief, staff = _duty_people(f, known.people)
    if not day or day.lower() not in WEEKDAYS or start is None or hours is None:
        return None
    return WeeklyShift(WEEKDAYS.index(day.lower()), start, float(hours), leader, chief, staff)


def _duty_people(
    f: Fields, people: dict[str, Person] | None
) -> tuple[str | None, str | None, tuple[str, ...]]:
    leader, chief = f.text("leader"), f.text("chief")
    named = [("leader", leader, f.line_of("leader")), ("chief", chief, f.line_of("chief"))]
    named += [("staff", text, line) for text, line in f.texts("staff")]
    for position, person, line in named:
        if person and people is not None and person not in people:
            f.problem(f"{position} '{person}' is not a person in people.yaml", line=line)
    staff = tuple(dict.fromkeys(text for position, text, _ in named if position == "staff" and text))
    return leader, chief, staff


# --- checks.yaml ------------------------------------------------------------------------------


def _read_checks(src: Source, known: _Known,
                 rooms: tuple[DutyRoom, ...]) -> tuple[tuple[RollCall, ...], tuple[SpotCheck, ...]]:
    doc = src.load()
    top = Fields(src, doc, 1)
    if doc is not None and not top.ok:
        return (), ()
    top.check_keys(("rollcalls", "spotchecks"))
    county = known.tree.roots[0] if known.tree is not None and known.tree.roots else None
    room_areas = {r.area for r in rooms} | ({county} if county else set())
    found: list[RollCall] = []
    lines: dict[str, int] = {}
    for f in top.each("rollcalls", "roll-call"):
        rollcall = _read_rollcall(f, known, room_areas)
        if rollcall is None:
            continue
        if rollcall.id in lines:
            f.problem(f"a second roll-call '{rollcall.id}' (the first is at line {lines[rollcall.id]})", "id")
            continue
        lines[rollcall.id] = f.line
        found.append(rollcall)
    spotchecks: list[SpotCheck] = []
    for f in top.each("spotchecks", "spot-check"):
        spotcheck = _read_spotcheck(f, known)
        if spotcheck is None:
            continue
        if spotcheck.id in lines:
            f.problem(f"a second check '{spotcheck.id}' (the first is at line {lines[spotcheck.id]})", "id")
            continue
        lines[spotcheck.id] = f.line
        spotchecks.append(spotcheck)
    return tuple(found), tuple(spotchecks)


MAX_QUESTIONS = 9  # one keypress each on the call, one mark each in the SMS answer


def _read_spotcheck(f: Fields, known: _Known) -> SpotCheck | None:
    sid = f.text("id", required=True)
    f.label = f"spot-check {sid}" if sid else "spot-check"
    f.check_keys(("id", "name", "questions", "roles", "size", "skip_days", "answer_within", "channels"))
    if sid and not _ID.match(sid):
        f.problem(f"id '{sid}' may hold only letters, digits, '-' and '_'", "id")
        sid = None
    questions = [text for text, _ in f.texts("questions", required=True)]
    if not 1 <= len(questions) <= MAX_QUESTIONS and f.has("questions"):
        f.problem(f"'questions' lists 1 to {MAX_QUESTIONS} questions (each answered 是 or 否), found {len(questions)}",
                  "questions")
        questions = []
    roles = []
    for text, line in f.texts("roles", required=True):
        if known.roles is not None and text not in known.roles:
            f.problem(f"'{text}' is not a role in people.yaml", line=line)
        else:
            roles.append(text)
    size = _whole(f, "size", 10, 1, 500)
    skip_days = _whole(f, "skip_days", 30, 0, 3650)
    within = f.duration("answer_within") if f.has("answer_within") else timedelta(minutes=30)
    if within is not None and not timedelta(minutes=5) <= within <= timedelta(hours=24):
        f.problem(f"'answer_within' must be between 5m and 24h, found '{format_span(within)}'", "answer_within")
        within = None
    channels = f.enums("channels", Channel, "channel", accepted_channels(), required=False) or (
        Channel.VOICE, Channel.SMS)
    if not sid or not questions or not roles or size is None or skip_days is None or within is None:
        return None
    return SpotCheck(sid, f.text("name") or sid, tuple(questions), tuple(roles), size, skip_days, within, channels)


def _whole(f: Fields, key: str, default: int, lowest: int, highest: int) -> int | None:
    value = f.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        f.problem(f"'{key}' is a whole number from {lowest} to {highest}, found '{clip(str(value))}'", key)
        return None
    return value


def _read_rollcall(f: Fields, known: _Known, room_areas: set[str]) -> RollCall | None:
    rid = f.text("id", required=True)
    f.label = f"roll-call {rid}" if rid else "roll-call"
    f.check_keys(("id", "name", "at", "weekly", "answer_within", "channels", "positions", "rooms", "tell", "call"))
    if rid and not _ID.match(rid):
        f.problem(f"id '{rid}' may hold only letters, digits, '-' and '_'", "id")
        rid = None
    at = []
    for text, line in f.texts("at"):
        match = _CLOCK.match(text)
        if match is None:
            f.problem(f"'at' lists times of day like 09:00, found '{clip(text)}'", line=line)
        else:
            at.append(time(int(match[1]), int(match[2])))
    weekly = _read_window(f)
    if not at and weekly is None and not f.has("at") and not f.has("weekly"):
        f.problem("a roll-call needs 'at' (daily times) or 'weekly' (a window), or both")
    within = f.duration("answer_within") if f.has("answer_within") else timedelta(minutes=10)
    if within is not None and not timedelta(minutes=1) <= within <= timedelta(hours=2):
        f.problem(f"'answer_within' must be between 1m and 2h, found '{format_span(within)}'", "answer_within")
        within = None
    channels = f.enums("channels", Channel, "channel", accepted_channels(), required=False) or (
        Channel.VOICE, Channel.SMS)
    tell = f.enums("tell", Channel, "channel", accepted_channels(), required=False) or (Channel.SMS, Channel.VOICE)
    positions = f.enums("positions", DutyPosition, "duty position", _accepted(DutyPosition), required=False) or (
        DutyPosition.CHIEF, DutyPosition.STAFF)
    rooms = []
    for text, line in f.texts("rooms"):
        if known.tree is not None and text not in room_areas:
            f.problem(f"'{text}' is not a duty room: the county's code or a room's area in duty.yaml", line=line)
        else:
            rooms.append(text)
    call = RollCallTarget.PEOPLE
    if f.has("call"):
        said = (f.text("call") or "").strip()
        if said not in {t.value for t in RollCallTarget}:
            f.problem(f"'call' is people (whoever is on shift, the default) or duty_phone (each room's duty "
                      f"phone), found '{clip(said)}'", "call")
        else:
            call = RollCallTarget(said)
    if not rid or within is None or (not at and weekly is None):
        return None
    return RollCall(rid, f.text("name") or rid, tuple(sorted(set(at))), weekly, within, channels, positions,
                    tuple(rooms), tell, call)


def _read_window(f: Fields) -> WeeklyWindow | None:
    w = f.sub("weekly")
    if w is None:
        return None
    w.check_keys(("day", "from", "to"))
    day = w.text("day", required=True)
    if day and day.lower() not in WEEKDAYS:
        w.problem(f"unknown day '{day}'; accepted: {', '.join(WEEKDAYS)}", "day")
        day = None
    start, end = w.time_of_day("from"), w.time_of_day("to")
    if start is not None and end is not None and end <= start:
        w.problem(f"'to' ({end:%H:%M}) must be after 'from' ({start:%H:%M}) on the same day", "to")
        return None
    if not day or start is None or end is None:
        return None
    return WeeklyWindow(WEEKDAYS.index(day.lower()), start, end)


# --- plans.yaml -------------------------------------------------------------------------------


def _read_plans(src: Source, known: _Known) -> tuple[Plan, ...]:
    doc = src.load()
    top = Fields(src, doc, 1)
    if doc is not None and not top.ok:
        return ()
    top.check_keys(("ladders", "plans"))
    ladders = _read_ladders(top)
    plans: list[Plan] = []
    lines: dict[str, int] = {}
    fallback_line = 0
    for f in top.each("plans", "plan"):
        plan = _read_plan(f, known, ladders)
        if plan and plan.id in lines:
            f.problem(f"duplicate id (first at line {lines[plan.id]})", "id")
        elif plan and f.get("fallback") is True:
            if fallback_line:
                f.problem(f"a second fallback plan (the first is at line {fallback_line}): there is one", "fallback")
            fallback_line = lines[plan.id] = f.line
            known.fallback = plan
            known.plan_fields[plan.id] = f
        elif plan:
            lines[plan.id] = f.line
            plans.append(plan)
            known.plan_fields[plan.id] = f
            _check_coverage(f, plan, known)
    if not plans and not src.problems:
        top.problem("no plans: add at least one call-out plan under 'plans:'")
    return tuple(plans)


Ladder = tuple[tuple[Step, ...], FinalEscalation | None]


def _read_ladders(top: Fields) -> dict[str, Ladder]:
    """Named step sequences (``ladders:``) that plans reuse with ``ladder: NAME``."""
    field = top.sub("ladders")
    if field is None:
        return {}
    for key, line, first in getattr(field.data, "duplicates", []):
        top.problem(f"ladder {key} is declared twice (also at line {first})", line=line)
    ladders: dict[str, Ladder] = {}
    for name, data in field.data.items():
        line = field.line_of(name)
        if not isinstance(name, str) or not _ID.match(name):
            top.problem(f"ladder name '{name}' may only use letters, digits, '-' and '_'", line=line)
            continue
        f = Fields(top.src, data, getattr(data, "line", line), f"ladder {name}")
        if not f.ok:
            continue
        f.check_keys(("steps", "final"))
        steps = _read_steps(f)
        ladders[name] = (steps, _read_final(f, steps))
    return ladders


def _read_plan(f: Fields, known: _Known, ladders: dict[str, Ladder]) -> Plan | None:
    pid = f.text("id", required=True)
    f.label = f"plan {pid}" if pid else "plan"
    f.check_keys(("id", "name", "match", "targets", "ladder", "steps", "final", "broadcast", "quiet_hours",
                  "fallback"))
    if pid and not _ID.match(pid):
        f.problem(f"id '{pid}' may only use letters, digits, '-' and '_'", "id")
    name = f.text("name", required=True)
    fallback = f.get("fallback")
    if fallback not in (None, True, False):
        f.problem("'fallback' is true or false", "fallback")
    if fallback is True:  # answers any red or orange warning no other plan answers: no match of its own
        if f.has("match"):
            f.problem("a fallback plan has no 'match': it runs when no other plan answers a red or orange "
                      "warning, or an area of the warning has nobody to call", "match")
        match: Match | None = Match(frozenset(Hazard), FALLBACK_LEVELS)
    else:
        match = _read_match(f, known)
    targets = _read_targets(f, known)
    ladder = f.text("ladder")
    if ladder is not None:
        if f.has("steps"):
            f.problem("a plan gives either 'ladder' or 'steps', not both", "steps")
        if ladder not in ladders:
            named = ", ".join(ladders) or "none declared"
            f.problem(f"unknown ladder '{ladder}' (ladders under 'ladders:': {named})", "ladder")
        steps, final = ladders.get(ladder, ((), None))
        if f.has("final"):
            final = _read_final(f, steps)
    else:
        steps = _read_steps(f)
        final = _read_final(f, steps)
    broadcast = _read_broadcast(f)
    quiet = _read_quiet_hours(f)
    if not pid or match is None or not steps:
        return None
    return Plan(pid, name or pid, match, targets, steps, final, broadcast, quiet)


def _accepted(kind: type[Channel] | type[Recipient] | type[Scope] | type[DutyPosition]) -> str:
    return ", ".join(member.value for member in kind)


def _read_match(f: Fields, known: _Known) -> Match | None:
    if not f.has("match"):
        f.problem("'match' is required (hazards and levels the plan answers)")
    m = f.sub("match")
    if m is None:
        return None
    m.check_keys(("hazards", "levels", "areas", "senders", "zones"))
    hazards = m.enums("hazards", parse_hazard, "hazard", accepted_hazards())
    levels = m.enums("levels", parse_level, "level", accepted_levels())
    areas = []
    for text, line in m.texts("areas"):
        try:
            code = normalize_code(text)
        except ValueError:
            m.problem(f"match area '{text}' is not a division code", line=line)
            continue
        if known.tree is not None and not any(overlaps(code, a.code) for a in known.tree):
            roots = ", ".join(known.tree.roots)
            m.problem(f"match area '{text}' does not overlap the site's areas ({roots})", line=line)
        areas.append(code)
    senders = tuple(text for text, _ in m.texts("senders"))
    zones = []
    for zone, line in m.texts("zones"):
        if known.zones is not None and zone not in known.zones:
            m.problem(f"unknown zone '{zone}' (not under 'zones:' in areas.yaml)", line=line)
        else:
            zones.append(zone)
    return Match(frozenset(hazards), frozenset(levels), tuple(areas), senders, tuple(zones))


def _read_targets(f: Fields, known: _Known) -> tuple[Target, ...]:
    if not f.get("targets"):
        f.problem("no targets: a plan needs at least one target (roles or duty)", "targets")
    targets: list[Target] = []
    for t in f.each("targets", f"{f.label}: target", numbered=True):
        t.check_keys(("roles", "scope", "area", "otherwise", "duty", "town_duty"))
        kinds = [k for k in ("duty", "town_duty", "roles") if t.has(k)]
        if len(kinds) > 1 or (kinds and kinds[0] != "roles" and (t.has("scope") or t.has("area"))):
            t.problem("a target has one of 'duty', 'town_duty' or 'roles' (with 'scope')")
        if t.has("duty") or t.has("town_duty"):
            key = "duty" if t.has("duty") else "town_duty"
            positions = t.enums(key, DutyPosition, "duty position", _accepted(DutyPosition))
            targets.append(DutyTarget(positions) if key == "duty" else TownDutyTarget(positions))
        else:
            target = _read_role_target(t, known)
            if target:
                targets.append(target)
    return tuple(targets)


def _read_role_target(t: Fields, known: _Known) -> RoleTarget | None:
    roles = _known_roles(t, "roles", known.roles, required=True)
    scopes = t.enums("scope", Scope, "scope", _accepted(Scope))
    area = t.text("area")
    if Scope.FIXED in scopes and not area:
        t.problem("scope fixed needs an 'area'")
    elif area and Scope.FIXED not in scopes:
        t.problem("'area' is only used with scope fixed", "area")
    elif area and known.tree is not None and area not in known.tree:
        t.problem(f"unknown area '{area}' (not in areas.yaml)", "area")
    otherwise: tuple[Scope, ...] = (Scope.ABOVE,)
    if t.has("otherwise"):
        texts = [text for text, _ in t.texts("otherwise")]
        if Scope.RESPONSIBLE not in scopes:
            t.problem("'otherwise' is only used with scope responsible", "otherwise")
        if texts == ["none"]:
            otherwise = ()
        else:
            otherwise = t.enums("otherwise", Scope, "scope for 'otherwise'", "affected, above, none")
            if Scope.FIXED in otherwise or Scope.RESPONSIBLE in otherwise:
                t.problem("'otherwise' is affected, above or none", "otherwise")
    return RoleTarget(tuple(roles), scopes, area, otherwise) if roles and scopes else None


def _read_steps(f: Fields) -> tuple[Step, ...]:
    if not f.get("steps"):
        f.problem("no steps: a plan needs at least one step", "steps")
    steps: list[Step] = []
    previous: timedelta | None = None
    for s in f.each("steps", f"{f.label}: step", numbered=True):
        s.check_keys(("after", "channels", "to"))
        after = s.duration("after")
        channels = s.enums("channels", Channel, "channel", accepted_channels())
        to = s.enums("to", Recipient, "recipient", _accepted(Recipient), required=False)
        to = to or (Recipient.SELF,)
        if len(to) > 1:
            s.problem("'to' names one recipient per step", "to")
        if after is not None and previous is None and after:
            s.problem(f"the first step must be at 0, not {format_span(after)}", "after")
        elif after is not None and previous is not None and after < previous:
            s.problem(f"at {format_span(after)} comes before the previous step (at {format_span(previous)}); "
                      "steps must be in time order", "after")
        previous = after if after is not None else previous
        if after is not None and channels:
            steps.append(Step(after, channels, to[0]))
    return tuple(steps)


def _read_final(f: Fields, steps: tuple[Step, ...]) -> FinalEscalation | None:
    fin = f.sub("final", f"{f.label}: final escalation")
    if fin is None:
        return None
    fin.check_keys(("after", "to", "channels"))
    after = fin.duration("after")
    to = fin.enums("to", Recipient, "recipient", _accepted(Recipient))
    channels = fin.enums("channels", Channel, "channel", accepted_channels())
    last = max((s.after for s in steps), default=None)
    if after is not None and last is not None and after <= last:
        fin.problem(f"at {format_span(after)} is not after the last step (at {format_span(last)})", "after")
    return FinalEscalation(after, to, channels) if after is not None and to and channels else None


def _read_broadcast(f: Fields) -> Broadcast | None:
    b = f.sub("broadcast", f"{f.label}: broadcast")
    if b is None:
        return None
    b.check_keys(("repeat",))
    repeat = b.get("repeat")
    if repeat is None:
        return Broadcast()
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 10:
        b.problem(f"repeat must be a whole number from 1 to 10, found {repeat!r}", "repeat")
        return None
    return Broadcast(repeat)


def _read_quiet_hours(f: Fields) -> QuietHours | None:
    q = f.sub("quiet_hours", f"{f.label}: quiet hours")
    if q is None:
        return None
    q.check_keys(("start", "end", "channels"))
    start, end = q.time_of_day("start"), q.time_of_day("end")
    channels = q.enums("channels", Channel, "channel", accepted_channels())
    if start is not None and start == end:
        q.problem("start and end are the same time", "end")
    return QuietHours(start, end, channels) if start is not None and end is not None and channels else None


def _check_coverage(f: Fields, plan: Plan, known: _Known) -> None:
    """A warning for any area the plan covers must reach someone through its role targets: people
    living within the area (scope `affected`) or above it (scope `above`). Only the topmost
    uncovered area of a branch is reported."""
    if known.tree is None or known.people is None or not known.people_ok:
        return  # a wrong seat in people.yaml is reported there, not again as every area it leaves empty
    targets = [t for t in plan.targets if isinstance(t, RoleTarget)
               and (Scope.AFFECTED in t.scopes or Scope.ABOVE in t.scopes)]
    if not targets:
        return
    # Whether an area is reached, from the seats of the people the targets name, by set lookups (a
    # county has thousands of areas and tens of thousands of people): scope affected reaches an area a
    # seat starts with (``covers(area, seat)``) and, as ``rules.seated_in``, a group whose village is a
    # seat; scope above reaches an area that starts with a seat other than itself.
    within: set[str] = set()  # every code a seat of scope affected starts with
    seats: set[str] = set()  # the seats of scope affected
    above: set[str] = set()  # the seats of scope above
    for t in targets:
        homes = {p.area for p in known.people.values() if p.has_any_role(t.roles)}
        if Scope.AFFECTED in t.scopes:
            seats |= homes
            within.update(h[:n] for h in homes for n in range(len(h) + 1))
        if Scope.ABOVE in t.scopes:
            above |= homes

    def reached(code: str) -> bool:
        return (code in within or (len(code) > VILLAGE and code[:VILLAGE] in seats)
                or any(code[:n] in above for n in range(len(code))))

    roles = sorted({r for t in targets for r in t.roles})
    covered = sorted((a for a in known.tree if not plan.match.areas
                      or any(covers(m, a.code) for m in plan.match.areas)), key=lambda a: a.code)
    reported: set[str] = set()
    label = f"roles {', '.join(roles)}" if len(roles) > 1 else f"role {roles[0]}"
    for area in covered:
        if any(area.code[:n] in reported for n in range(len(area.code) + 1)) or reached(area.code):
            continue
        reported.add(area.code)
        f.problem(f"nobody with {label} in {area.code} ({area.name})")


def _check_reach(site: Site, known: _Known) -> None:
    """A step none of whose channels can reach someone without a mobile it reaches — through any target,
    or as the deputy, superior or duty officer it escalates to — is refused (reach.py: the rule preview
    shares); a landline-only person it only texts beside another channel is a readiness gap, not a
    problem (readiness.site_gaps)."""
    plans = (*site.plans, *((site.fallback,) if site.fallback else ()))
    for found in NoMobileReach(site).findings(plans):
        f = known.plan_fields.get(found.plan.id)
        if found.finding is not NoMobile.UNREACHABLE or f is None:
            continue
        person, channels = found.person, found.channels
        ladder = f.text("ladder") if not (found.step is None and f.has("final")) else None
        label = found.step_label + (f" of ladder {ladder}" if ladder else "")
        others = [c.value for c in channels if c not in (Channel.SMS, Channel.VOICE)]
        lacks = f" and no {'/'.join(others)} address" if others else ""
        need = "; text messages need a mobile" if Channel.SMS in channels else ""
        fix = "give them a mobile in people.yaml" + (" or add voice to the step" if person.numbers else "")
        f.problem(f"{label} ({', '.join(c.value for c in channels)}) cannot reach {person.name} ({person.id}), "
                  f"reached as {found.how}: they have {numbers_of(person)}{lacks}{need}: {fix}",
                  line=_step_line(f, found.step))


def _step_line(f: Fields, index: int | None) -> int:
    """The line of a plan's step (its final escalation for None), or of its ``ladder:`` when the
    steps are the ladder's."""
    if index is None and f.has("final"):
        return f.line_of("final")
    if f.has("ladder"):
        return f.line_of("ladder")
    if index is None:
        return f.line
    lines = getattr(f.get("steps"), "item_lines", ())
    return lines[index] if index < len(lines) else f.line_of("steps")
