"""The rules engine: from a warning to the call-outs it must start, with no I/O.

1. ``matching_plans`` picks the plans whose hazard, level, areas and sender fit, in file order.
2. ``resolve`` turns each plan's targets into officials — once per official, the first plan
   that reaches them governs — and freezes each official's steps with their recipients and due
   times, so a later edit of the site files cannot change a running call-out.
3. Readiness gaps are reported alongside: affected areas nobody is called in, officials with no
   channel the plan uses, escalations that reach nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .areas import covers, overlaps
from .channels import Channel
from .duty import DutyPosition, DutyShift
from .hazards import Hazard, Level
from .plans import DutyTarget, Match, Plan, QuietHours, Recipient, RoleTarget, Scope, Step
from .roster import Person
from .site import Site


@dataclass(frozen=True)
class WarningFacts:
    """What matching needs of a warning. ``sender=None`` (a preview) ignores sender filters."""

    hazard: Hazard
    level: Level
    areas: tuple[str, ...]
    sender: str | None
    at: datetime  # the warning's time: decides who is on duty


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
    reason: str  # why this official is called, e.g. "village_flood_officer @ 330599100201 (affected)"
    steps: tuple[PlannedStep, ...]


class GapKind(StrEnum):
    NO_PLAN = "no_plan"
    NOBODY_IN_AREA = "nobody_in_area"
    NO_CHANNEL = "no_channel"
    NO_RECIPIENT = "no_recipient"
    NO_DUTY_SHIFT = "no_duty_shift"


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


def plan_matches(plan: Plan, facts: WarningFacts) -> bool:
    match = plan.match
    if facts.hazard not in match.hazards or facts.level not in match.levels:
        return False
    if match.areas and not any(overlaps(w, p) for w in facts.areas for p in match.areas):
        return False
    return not (match.senders and facts.sender is not None and facts.sender not in match.senders)


def matching_plans(site: Site, facts: WarningFacts) -> list[Plan]:
    return [p for p in site.plans if plan_matches(p, facts)]


def resolve(site: Site, facts: WarningFacts, start: datetime | None = None) -> Resolution:
    """Who is called, by which plan and steps, for a warning; ``start`` is when call-outs begin."""
    start = start or facts.at
    duty = site.duty.on_duty(facts.at)
    plans = matching_plans(site, facts)
    chosen: dict[str, tuple[Plan, str]] = {}
    gaps: list[Gap] = []
    for plan in plans:
        affected = plan.affected_areas(facts.areas)
        reached = _targets(site, plan, affected, duty, gaps)
        for person_id, reason in reached.items():
            chosen.setdefault(person_id, (plan, reason))
        gaps.extend(_empty_areas(site, plan, affected, reached))
    why = _needs_fallback(site, facts, plans, chosen)
    if why is not None:
        fallback = site.fallback or DEFAULT_FALLBACK
        gaps.append(Gap(GapKind.NO_PLAN, fallback.id, "", why))
        for person_id, reason in _targets(site, fallback, facts.areas, duty, gaps).items():
            chosen.setdefault(person_id, (fallback, f"{why}: {reason}"))
        plans = [*plans, fallback]
    callouts = []
    for person_id, (plan, reason) in chosen.items():
        person = site.people[person_id]
        steps = tuple(_plan_steps(site, plan, person, duty, start))
        callouts.append(PlannedCallout(person_id, plan.id, reason, steps))
        gaps.extend(_channel_gaps(site, plan, person, steps))
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
                    chosen: dict[str, tuple[Plan, str]]) -> str | None:
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


def _targets(
    site: Site, plan: Plan, affected: tuple[str, ...], duty: DutyShift | None, gaps: list[Gap]
) -> dict[str, str]:
    reached: dict[str, str] = {}
    for target in plan.targets:
        if isinstance(target, DutyTarget):
            if duty is None:
                gaps.append(Gap(GapKind.NO_DUTY_SHIFT, plan.id, "", "no duty shift covers the warning's time"))
                continue
            for position in target.positions:
                for person_id in duty.holders(position):
                    reached.setdefault(person_id, f"{position.value} on duty")
            continue
        for person in site.people.values():
            if person.id in reached or not person.has_any_role(target.roles):
                continue
            scope = _in_scope(person, target, affected)
            if scope is not None:
                role = next(r for r in person.roles if r in target.roles)
                reached[person.id] = f"{role} @ {person.area} ({scope.value})"
    return reached


def _in_scope(person: Person, target: RoleTarget, affected: tuple[str, ...]) -> Scope | None:
    for scope in target.scopes:
        if scope is Scope.AFFECTED and any(covers(a, person.area) for a in affected):
            return scope
        if scope is Scope.ABOVE and any(
            covers(person.area, a) and person.area != a for a in affected
        ):
            return scope
        if scope is Scope.FIXED and target.area and covers(target.area, person.area):
            return scope
    return None


def _empty_areas(site: Site, plan: Plan, affected: tuple[str, ...], reached: dict[str, str]) -> list[Gap]:
    """Affected areas in which nobody is called; only the topmost empty area of a branch."""
    if not any(isinstance(t, RoleTarget) and Scope.AFFECTED in t.scopes for t in plan.targets):
        return []
    # Every area that holds someone reached: each reached official's home and all its prefixes.
    occupied = {home[:n] for home in {site.people[p].area for p in reached} for n in (2, 4, 6, 9, 12)}
    gaps: list[Gap] = []
    reported: list[str] = []
    for code in affected:
        for area in site.areas.within(code):
            if area.code in occupied or any(covers(r, area.code) for r in reported):
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
    site: Site, plan: Plan, person: Person, duty: DutyShift | None, start: datetime
) -> list[PlannedStep]:
    steps = [_planned(site, plan, i, s, person, duty, start) for i, s in enumerate(plan.steps)]
    if plan.final is None:
        after = plan.steps[-1].after + UNREACHED_AFTER_LAST_STEP
        steps.append(PlannedStep(len(plan.steps), after, start + after, (), (), (), final=True))
    else:
        final = plan.final
        recipients = tuple(dict.fromkeys(
            r for to in final.to for r in _recipients(site, to, person, duty)
        ))
        due, channels, held = _quiet(plan.quiet_hours, site, start + final.after, final.channels)
        steps.append(PlannedStep(len(plan.steps), final.after, due, channels, final.to, recipients,
                                 held, final=True))
    return steps


def _planned(
    site: Site, plan: Plan, index: int, step: Step, person: Person, duty: DutyShift | None, start: datetime
) -> PlannedStep:
    due, channels, held = _quiet(plan.quiet_hours, site, start + step.after, step.channels)
    recipients = _recipients(site, step.to, person, duty)
    return PlannedStep(index, step.after, due, channels, (step.to,), recipients, held)


def _recipients(site: Site, to: Recipient, person: Person, duty: DutyShift | None) -> tuple[str, ...]:
    if to is Recipient.SELF:
        return (person.id,)
    if to is Recipient.DEPUTY:
        return (person.deputy,) if person.deputy in site.people else ()
    if to is Recipient.SUPERIOR:
        return (person.superior,) if person.superior in site.people else ()
    if duty is None:
        return ()
    on_duty = duty.holders(DutyPosition.LEADER) + duty.holders(DutyPosition.CHIEF)
    return tuple(p for p in dict.fromkeys(on_duty) if p != person.id)


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


def _channel_gaps(site: Site, plan: Plan, person: Person, steps: tuple[PlannedStep, ...]) -> list[Gap]:
    gaps: list[Gap] = []
    own = {c for s in steps if Recipient.SELF in s.to for c in s.channels}
    if own and not any(person.reachable_by(c) for c in own):
        used = ", ".join(sorted(c.value for c in own))
        gaps.append(Gap(GapKind.NO_CHANNEL, plan.id, person.id,
                        f"{person.name} ({person.id}) has no address for any channel the plan uses ({used})"))
    for step in steps:
        if step.to and Recipient.SELF not in step.to and not step.recipients:
            label = "final escalation" if step.final else f"step {step.index}"
            to = "+".join(r.value for r in step.to)
            gaps.append(Gap(GapKind.NO_RECIPIENT, plan.id, person.id,
                            f"{label} of {person.name} ({person.id}) goes to {to}: nobody"))
    return gaps
