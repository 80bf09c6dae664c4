"""The rules engine: from a warning to the call-outs it must start, with no I/O.

1. ``matching_plans`` picks the plans whose hazard, level, areas, zones and sender fit, in file
   order. A warning that names zones concerns their areas as well as its own.
2. ``resolve`` turns each plan's targets into officials — once per official, the first plan
   that reaches them governs — and freezes each official's steps with their recipients and due
   times, so a later edit of the site files cannot change a running call-out.
3. Readiness gaps are reported alongside: affected areas nobody is called in, officials with no
   channel the plan uses, escalations that reach nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from .areas import CODE_LENGTHS, covers, narrower, overlaps
from .channels import Channel
from .duty import DutyPosition, DutyShift
from .hazards import Hazard, Level
from .plans import (
    DutyTarget,
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
from .roster import NoMobile, Person, Responsibility, held_at_night, numbers_of, without_mobile
from .site import Site


@dataclass(frozen=True)
class WarningFacts:
    """What matching needs of a warning. ``sender=None`` (a preview) ignores sender filters."""

    hazard: Hazard
    level: Level
    areas: tuple[str, ...]
    sender: str | None
    at: datetime  # the warning's time: decides who is on duty
    zones: tuple[str, ...] = ()  # hazard zones the warning names (their areas are added to ``areas``)


@dataclass(frozen=True)
class PlannedStep:
    index: int
    after: timedelta
    due: datetime
    channels: tuple[Channel, ...]
    to: tuple[Recipient, ...]
    recipients: tuple[str, ...]
    held: tuple[Channel, ...] = ()  # left out by the plan's quiet hours
    final: bool = False  # the 未叫醒 escalation after the last step


@dataclass(frozen=True)
class PlannedCallout:
    person_id: str
    plan_id: str
    reason: str  # why this official is called, in words: "包保龙潭镇", "村防汛责任人（溪口村）"
    steps: tuple[PlannedStep, ...]
    target: int = 0  # which of the plan's targets reached them (1-based; 0: not known)
    room: str | None = None  # a roll-call's: the duty room (its area) the person answers for
    reason_en: str = ""  # the reason in English, for the preview's English readers ("" where none was made)


class GapKind(StrEnum):
    NO_PLAN = "no_plan"
    NOBODY_IN_AREA = "nobody_in_area"
    NO_CHANNEL = "no_channel"
    NO_RECIPIENT = "no_recipient"
    NO_DUTY_SHIFT = "no_duty_shift"
    NO_RESPONSIBLE = "no_responsible"  # an affected area nobody holds the target's responsibility for
    NO_DUTY_ROOM = "no_duty_room"  # a town_duty target or step finds no town duty room on shift
    LANDLINE_ONLY = "landline_only"  # someone called whose only number is a landline (no SMS)
    HELD_AT_NIGHT = "held_at_night"  # quiet hours hold the only channel of a step that reaches someone


@dataclass(frozen=True)
class Gap:
    kind: GapKind
    plan_id: str
    subject: str  # an area code or a person id
    message: str


@dataclass(frozen=True)
class Resolution:
    plans: tuple[str, ...]
    callouts: tuple[PlannedCallout, ...]
    gaps: tuple[Gap, ...]
    duty: DutyShift | None
    fallback: str | None = None  # why the fallback plan was used (no plan; nobody reached in an area)

    def callout_for(self, person_id: str) -> PlannedCallout | None:
        return next((c for c in self.callouts if c.person_id == person_id), None)


def concerned(site: Site, facts: WarningFacts) -> WarningFacts:
    """The warning with the areas of the zones it names added to its own areas."""
    if not facts.zones:
        return facts
    return replace(facts, areas=tuple(dict.fromkeys(facts.areas + site.zone_areas(facts.zones))))


def plan_matches(site: Site, plan: Plan, facts: WarningFacts) -> bool:
    """Whether ``plan`` answers the warning (``facts`` as returned by ``concerned``)."""
    match = plan.match
    if facts.hazard not in match.hazards or facts.level not in match.levels:
        return False
    if match.areas and not any(overlaps(w, p) for w in facts.areas for p in match.areas):
        return False
    if match.zones and not (set(match.zones) & set(facts.zones)
                            or any(overlaps(w, a) for w in facts.areas for a in site.zone_areas(match.zones))):
        return False
    return not (match.senders and facts.sender is not None and facts.sender not in match.senders)


def matching_plans(site: Site, facts: WarningFacts) -> list[Plan]:
    facts = concerned(site, facts)
    return [p for p in site.plans if plan_matches(site, p, facts)]


def affected_areas(site: Site, plan: Plan, facts: WarningFacts) -> tuple[str, ...]:
    """The warning's areas (zones included) cut down to the plan's own areas and zones."""
    areas = plan.affected_areas(concerned(site, facts).areas)
    if not plan.match.zones:
        return areas
    cut = (narrower(w, z) for w in areas for z in site.zone_areas(plan.match.zones))
    return tuple(dict.fromkeys(c for c in cut if c is not None))


def resolve(site: Site, facts: WarningFacts, start: datetime | None = None) -> Resolution:
    """Who is called, by which plan and steps, for a warning; ``start`` is when call-outs begin."""
    start = start or facts.at
    facts = concerned(site, facts)
    duty = site.duty.on_duty(facts.at)
    plans = matching_plans(site, facts)
    chosen: dict[str, tuple[Plan, Why, tuple[str, ...], int]] = {}
    gaps: list[Gap] = []
    for plan in plans:
        affected = affected_areas(site, plan, facts)
        reached = _targets(site, plan, affected, facts, duty, gaps)
        for person_id, (reason, target) in reached.items():
            chosen.setdefault(person_id, (plan, reason, affected, target))
        gaps.extend(_empty_areas(site, plan, affected, reached))
    why = _needs_fallback(site, facts, plans, chosen)
    if why is not None:
        fallback = site.fallback or DEFAULT_FALLBACK
        gaps.append(Gap(GapKind.NO_PLAN, fallback.id, "", why))
        for person_id, ((zh, en), target) in _targets(site, fallback, facts.areas, facts, duty, gaps).items():
            chosen.setdefault(person_id, (fallback, (f"{why}: {zh}", f"{why}: {en}"), facts.areas, target))
        plans = [*plans, fallback]
    callouts = []
    seen: set[tuple[GapKind, str, str]] = set()
    for person_id, (plan, (reason, reason_en), affected, target) in chosen.items():
        person = site.people[person_id]
        steps = tuple(_plan_steps(site, plan, person, duty, start, facts.at, affected))
        callouts.append(PlannedCallout(person_id, plan.id, reason, steps, target, reason_en=reason_en))
        gaps.extend(_channel_gaps(site, plan, person, steps, seen))
    return Resolution(tuple(p.id for p in plans), tuple(callouts), tuple(gaps), duty, why)


# A red or orange warning must wake someone even when no plan answers it, or when its plans reach
# nobody in one of its areas: the duty leader and the shift chief are called by this plan, unless the
# site names its own (site.fallback).
FALLBACK_LEVELS = frozenset({Level.RED, Level.ORANGE})
DEFAULT_FALLBACK = Plan(
    id="fallback", name="无匹配方案：值班领导、值班长叫应",
    match=Match(frozenset(Hazard), FALLBACK_LEVELS),
    targets=(DutyTarget((DutyPosition.LEADER, DutyPosition.CHIEF)),),
    steps=(Step(timedelta(0), (Channel.SMS, Channel.VOICE)), Step(timedelta(minutes=5), (Channel.VOICE,))),
)


def _needs_fallback(site: Site, facts: WarningFacts, plans: list[Plan],
                    chosen: dict[str, tuple[Plan, Why, tuple[str, ...], int]]) -> str | None:
    """Why the fallback plan must run for this warning, or None."""
    if facts.level not in FALLBACK_LEVELS:
        return None
    if not plans:
        return f"无匹配方案，已通知值班领导 (no plan for {facts.hazard.value} × {facts.level.value})"
    # An area is reached when someone called sits in it, under it or above it (a town head answers for
    # the villages of the town); a fallback is for areas the plans left with nobody at all.
    seats = [site.people[p].area for p in chosen]
    empty = [a for a in facts.areas if not any(covers(a, seat) or covers(seat, a) for seat in seats)]
    if empty:
        names = "、".join(f"{site.areas.label(a)}" for a in empty)
        return f"方案在{names}无人可叫，已通知值班领导 (nobody reached in {', '.join(empty)})"
    return None


# Why someone is called, in Chinese (kept on the call-out, shown on the board) and in English (preview).
Why = tuple[str, str]


def _targets(
    site: Site, plan: Plan, affected: tuple[str, ...], facts: WarningFacts, duty: DutyShift | None, gaps: list[Gap]
) -> dict[str, tuple[Why, int]]:
    """Who the plan's targets reach, each with the reason in words (shown in preview and on the board)
    and the number of the target that reached them."""
    reached: dict[str, Why] = {}
    which: dict[str, int] = {}
    for number, target in enumerate(plan.targets, 1):
        _target(site, plan, target, affected, facts, duty, gaps, reached)
        for person_id in reached.keys() - which.keys():
            which[person_id] = number
    return {person_id: (reason, which[person_id]) for person_id, reason in reached.items()}


def _target(site: Site, plan: Plan, target: Target, affected: tuple[str, ...], facts: WarningFacts,
            duty: DutyShift | None, gaps: list[Gap], reached: dict[str, Why]) -> None:
    if isinstance(target, DutyTarget):
        if duty is None:
            gaps.append(Gap(GapKind.NO_DUTY_SHIFT, plan.id, "", "no duty shift covers the warning's time"))
            return
        for position in target.positions:
            for person_id in duty.holders(position):
                reached.setdefault(person_id, (f"县值班室{position.zh}", f"county duty room, {position.value}"))
    elif isinstance(target, TownDutyTarget):
        _town_duty(site, plan, target, affected, facts.at, reached, gaps)
    elif Scope.RESPONSIBLE in target.scopes:
        _responsible(site, plan, target, affected, facts, reached, gaps)
    else:
        _by_role(site, target, target.scopes, affected, reached)


def _by_role(site: Site, target: RoleTarget, scopes: tuple[Scope, ...], affected: tuple[str, ...],
             reached: dict[str, Why]) -> None:
    for person in site.people.values():
        if person.id in reached or not person.has_any_role(target.roles):
            continue
        scope = _in_scope(person, scopes, target.area, affected)
        if scope is not None:
            role = next(r for r in person.roles if r in target.roles)
            where = site.areas.name(person.area)
            above = scope is Scope.ABOVE
            reached[person.id] = (f"{site.roles.get(role, role)}（{where}{'，上级区域' if above else ''}）",
                                  f"{role} ({where}{', the area above' if above else ''})")


def _in_scope(person: Person, scopes: tuple[Scope, ...], area: str | None, affected: tuple[str, ...]) -> Scope | None:
    for scope in scopes:
        if scope is Scope.AFFECTED and any(seated_in(person.area, a) for a in affected):
            return scope
        if scope is Scope.ABOVE and any(
            covers(person.area, a) and person.area != a for a in affected
        ):
            return scope
        if scope is Scope.FIXED and area and covers(area, person.area):
            return scope
    return None


def seated_in(seat: str, area: str) -> bool:
    """Whether someone seated at ``seat`` is one of ``area``'s people for scope ``affected``: seated in it
    or under it — and, for a group or grid below the village, seated at its village (the village's
    cadres answer for its groups)."""
    return covers(area, seat) or (len(area) > VILLAGE and seat == area[:VILLAGE])


VILLAGE = 12  # the length of a village's code; groups and grids extend it


def _responsible(site: Site, plan: Plan, target: RoleTarget, affected: tuple[str, ...], facts: WarningFacts,
                 reached: dict[str, Why], gaps: list[Gap]) -> None:
    """Those holding one of the roles who are responsible for an affected area or a zone of the warning;
    the target's ``otherwise`` scopes for the affected areas nobody is responsible for."""
    held: list[Responsibility] = []
    for person in site.people.values():
        duties = list(dict.fromkeys(d for r in person.roles if r in target.roles
                                    for d in person.responsibilities if d.held_as(r)))
        held += duties
        if duties and person.id not in reached and (reason := _responsibility_reason(site, duties, affected, facts)):
            reached[person.id] = reason
    if not target.otherwise:  # "otherwise: none": a responsibility only some places have (a hazard zone's)
        return
    uncovered = _uncovered(site, held, affected)
    if not uncovered:
        return
    names = "、".join(site.areas.name(a) for a in uncovered)
    fallback = "、".join(s.value for s in target.otherwise)
    gaps.append(Gap(GapKind.NO_RESPONSIBLE, plan.id, uncovered[0],
                    f"nobody with {', '.join(target.roles)} is responsible for {names} "
                    f"({', '.join(uncovered)}); otherwise: {fallback}"))
    kind = "、".join(dict.fromkeys(d.kind for d in held if d.areas)) or "包保"
    for person in site.people.values():  # the fallback: said to be one ("无人包保白云镇，由县领导兜底")
        if person.id in reached or not person.has_any_role(target.roles):
            continue
        theirs = [u for u in uncovered if _in_scope(person, target.otherwise, None, (u,)) is not None]
        if theirs:
            role = next(r for r in person.roles if r in target.roles)
            where = "、".join(site.areas.name(u) for u in theirs)
            reached[person.id] = (f"无人{kind}{where}，由{site.roles.get(role, role)}兜底",
                                  f"nobody holds {kind} for {where}: {role} as the fallback (otherwise: {fallback})")


def _responsibility_reason(site: Site, duties: list[Responsibility], affected: tuple[str, ...],
                           facts: WarningFacts) -> Why | None:
    """Why these responsibilities of one person concern the warning, naming every affected area and
    zone they hold ("包保龙潭镇、白云镇", "白岩沟小流域监测员"), or None."""
    areas: dict[str, list[str]] = {}  # kind -> the areas of that kind the warning concerns
    zones: list[tuple[str, str]] = []  # (zone name, kind)
    for duty in duties:
        for area in duty.areas:
            if any(overlaps(area, a) for a in affected):
                areas.setdefault(duty.kind, []).append(site.areas.name(area))
        for zone_id in duty.zones:
            zone = site.zones.get(zone_id)
            if zone is not None and (zone_id in facts.zones
                                     or any(overlaps(z, a) for z in zone.areas for a in affected)):
                zones.append((zone.name, duty.kind))
    zh = [f"{kind}{'、'.join(dict.fromkeys(names))}" for kind, names in areas.items()]
    zh += [f"{name}{kind}" for name, kind in dict.fromkeys(zones)]
    en = [f"{kind} for {'、'.join(dict.fromkeys(names))}" for kind, names in areas.items()]
    en += [f"{kind} of {name}" for name, kind in dict.fromkeys(zones)]
    return ("，".join(zh), "; ".join(en)) if zh else None


def uncovered_by(site: Site, target: RoleTarget, areas: tuple[str, ...]) -> list[str]:
    """The areas (at the level responsibilities are written at) nobody holds ``target``'s responsibility for."""
    held = [d for p in site.people.values() for r in p.roles if r in target.roles
            for d in p.responsibilities if d.held_as(r)]
    return _uncovered(site, held, areas)


def _uncovered(site: Site, held: list[Responsibility], affected: tuple[str, ...]) -> list[str]:
    """Affected areas, at the level the responsibilities are written at, that nobody answers for."""
    areas = [a for d in held for a in d.areas] + [a for d in held for z in d.zones
                                                    if z in site.zones for a in site.zones[z].areas]
    level = min((len(a) for a in areas), default=9)
    units: list[str] = []
    for code in affected:
        if len(code) >= level or code not in site.areas:
            units.append(code)
        else:
            units.extend(a.code for a in site.areas.within(code) if len(a.code) == level)
    return [u for u in dict.fromkeys(units) if not any(overlaps(u, a) for a in areas)]


def _town_duty(site: Site, plan: Plan, target: TownDutyTarget, affected: tuple[str, ...], at: datetime,
               reached: dict[str, Why], gaps: list[Gap]) -> None:
    rooms = site.rooms_for(affected)
    if not rooms:
        gaps.append(Gap(GapKind.NO_DUTY_ROOM, plan.id, affected[0] if affected else "",
                        "no town duty room for the affected areas"))
    for room in rooms:
        shift = room.rota.on_duty(at)
        if shift is None:
            gaps.append(Gap(GapKind.NO_DUTY_ROOM, plan.id, room.area,
                            f"no shift of {room.name} covers the warning's time"))
            continue
        for position in target.positions:
            for person_id in shift.holders(position):
                reached.setdefault(person_id, (f"{room.name}{position.zh}", f"{room.name}, {position.value}"))


def _empty_areas(site: Site, plan: Plan, affected: tuple[str, ...], reached: dict[str, Why]) -> list[Gap]:
    """Affected areas in which nobody is called; only the topmost empty area of a branch."""
    if not any(isinstance(t, RoleTarget) and Scope.AFFECTED in t.scopes for t in plan.targets):
        return []
    # Every area that holds someone reached: each reached official's home and all its prefixes.
    homes = {site.people[p].area for p in reached if p in site.people}
    occupied = {home[:n] for home in homes for n in CODE_LENGTHS}
    gaps: list[Gap] = []
    reported: list[str] = []
    for code in affected:
        for area in site.areas.within(code):
            if area.code in occupied or any(seated_in(h, area.code) for h in homes if len(h) == VILLAGE) \
                    or any(covers(r, area.code) for r in reported):
                continue
            reported.append(area.code)
            gaps.append(Gap(
                GapKind.NOBODY_IN_AREA, plan.id, area.code,
                f"nobody is called in {site.areas.label(area.code)} ({area.code})",
            ))
    return gaps


# A plan without a final escalation still ends: this long after its last step the call-out is
# marked unreached and listed for the duty officers.
UNREACHED_AFTER_LAST_STEP = timedelta(minutes=5)


def _plan_steps(
    site: Site, plan: Plan, person: Person, duty: DutyShift | None, start: datetime, at: datetime,
    affected: tuple[str, ...],
) -> list[PlannedStep]:
    where = _Where(site, person, duty, at, affected)
    steps = [_planned(plan, i, s, where, start) for i, s in enumerate(plan.steps)]
    if plan.final is None:
        after = plan.steps[-1].after + UNREACHED_AFTER_LAST_STEP
        steps.append(PlannedStep(len(plan.steps), after, start + after, (), (), (), final=True))
    else:
        final = plan.final
        recipients = tuple(dict.fromkeys(r for to in final.to for r in where.recipients(to)))
        due, channels, held = _quiet(plan.quiet_hours, site, start + final.after, final.channels)
        steps.append(PlannedStep(len(plan.steps), final.after, due, channels, final.to, recipients,
                                 held, final=True))
    return steps


def _planned(plan: Plan, index: int, step: Step, where: _Where, start: datetime) -> PlannedStep:
    due, channels, held = _quiet(plan.quiet_hours, where.site, start + step.after, step.channels)
    return PlannedStep(index, step.after, due, channels, (step.to,), where.recipients(step.to), held)


@dataclass(frozen=True)
class _Where:
    """What a step's ``to`` is resolved against: the official, the shifts on duty, the affected areas."""

    site: Site
    person: Person
    duty: DutyShift | None
    at: datetime
    affected: tuple[str, ...]

    def recipients(self, to: Recipient) -> tuple[str, ...]:
        site, person = self.site, self.person
        if to is Recipient.SELF:
            return (person.id,)
        if to is Recipient.DEPUTY:  # the official's own deputy (AB岗) only, never the deputy's deputy
            return (person.deputy,) if person.deputy in site.people else ()
        if to is Recipient.SUPERIOR:
            return (person.superior,) if person.superior in site.people else ()
        if to is Recipient.TOWN_DUTY:
            return self._on_duty_in_rooms()
        if self.duty is None:
            return ()
        on_duty = self.duty.holders(DutyPosition.LEADER) + self.duty.holders(DutyPosition.CHIEF)
        return tuple(p for p in dict.fromkeys(on_duty) if p != person.id)

    def _on_duty_in_rooms(self) -> tuple[str, ...]:
        """The town room of the official's seat; for someone above the towns, the affected towns' rooms."""
        own = self.site.room_of(self.person.area)
        rooms = (own,) if own is not None else tuple(
            r for r in self.site.rooms_for(self.affected) if covers(self.person.area, r.area))
        out: list[str] = []
        for room in rooms:
            shift = room.rota.on_duty(self.at)
            if shift is not None:
                out += [*shift.holders(DutyPosition.LEADER), *shift.holders(DutyPosition.CHIEF)]
        return tuple(p for p in dict.fromkeys(out) if p != self.person.id)


def _quiet(
    quiet: QuietHours | None, site: Site, due: datetime, channels: tuple[Channel, ...]
) -> tuple[datetime, tuple[Channel, ...], tuple[Channel, ...]]:
    """Apply quiet hours: held channels leave the step; a step left with none waits until the
    quiet hours end."""
    if quiet is None or not quiet.holds(due, site.tz):
        return due, channels, ()
    kept = tuple(c for c in channels if c not in quiet.channels)
    held = tuple(c for c in channels if c in quiet.channels)
    if kept:
        return due, kept, held
    return _quiet_end(quiet, site, due), channels, ()


def _quiet_end(quiet: QuietHours, site: Site, due: datetime) -> datetime:
    local = due.astimezone(site.tz)
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(due.tzinfo)


def _channel_gaps(site: Site, plan: Plan, person: Person, steps: tuple[PlannedStep, ...],
                  seen: set[tuple[GapKind, str, str]]) -> list[Gap]:
    """The official's own channels, each step's recipients without a mobile (roster.without_mobile:
    the rule validate applies to every step of the plan), and escalations that reach nobody.
    ``seen`` keeps one gap per kind, plan and person in the whole warning."""
    gaps: list[Gap] = []

    def add(kind: GapKind, subject: str, message: str) -> None:
        if (kind, plan.id, subject) not in seen:
            seen.add((kind, plan.id, subject))
            gaps.append(Gap(kind, plan.id, subject, message))

    own = {c for s in steps if Recipient.SELF in s.to for c in s.channels + s.held}
    if own and not any(person.reachable_by(c) for c in own):
        used = ", ".join(sorted(c.value for c in own))
        add(GapKind.NO_CHANNEL, person.id,
            f"{person.name} ({person.id}) has no address for any channel the plan uses ({used})")
    for step in steps:
        label = "final escalation" if step.final else f"step {step.index}"
        channels = step.channels + step.held  # the plan's channels, as validate checks them, whatever the hour
        for recipient in (site.people[r] for r in step.recipients if r in site.people):
            finding = without_mobile(recipient, channels)
            whose = "" if recipient.id == person.id else f" for {person.name} ({person.id})"
            if finding is NoMobile.LANDLINE_ONLY:
                add(GapKind.LANDLINE_ONLY, recipient.id,
                    f"{recipient.name} ({recipient.id}) has {numbers_of(recipient)}: text messages cannot reach "
                    f"them, calls can ({label}{whose})")
            elif finding is NoMobile.UNREACHABLE:
                add(GapKind.NO_CHANNEL, recipient.id,
                    f"{label}{whose} ({', '.join(c.value for c in channels)}) cannot reach {recipient.name} "
                    f"({recipient.id}), who has {numbers_of(recipient)}")
            if step.held and held_at_night(recipient, step.channels, step.held):
                add(GapKind.HELD_AT_NIGHT, recipient.id,
                    f"{label}{whose} holds {', '.join(c.value for c in step.held)} for the plan's quiet hours and "
                    f"{', '.join(c.value for c in step.channels)} cannot reach {recipient.name} ({recipient.id}), "
                    f"who has {numbers_of(recipient)}: this step misses them tonight")
        if step.to and Recipient.SELF not in step.to and not step.recipients:
            to = "+".join(r.value for r in step.to)
            gaps.append(Gap(GapKind.NO_RECIPIENT, plan.id, person.id,
                            f"{label} of {person.name} ({person.id}) goes to {to}: nobody"))
    return gaps
