"""Whether a step's channels can reach someone without a mobile, and whom a plan's steps can reach.

One rule, ``roster.without_mobile``, used by ``validate`` (sites.py refuses a plan whose step cannot reach
someone; readiness.site_gaps lists the landline-only people a plan texts) and by ``preview``
(rules.resolve, for one warning), so the two cannot disagree. ``NoMobileReach`` finds, without a
warning, everyone without a mobile a plan's step could reach — through any target (roles, any
scope, the county's or a town's duty rota on any shift) and as any step's recipient (self, deputy,
superior, duty, town_duty, the final escalation) — and what the rule says about each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .areas import covers, overlaps
from .channels import Channel
from .duty import DutyPosition, DutyRota
from .plans import DutyTarget, Plan, Recipient, RoleTarget, Scope, Target, TownDutyTarget
from .roster import NoMobile, Person, held_at_night, numbers_of, without_mobile
from .rules import seated_in, uncovered_by
from .site import Site


def plan_areas(site: Site, plan: Plan) -> tuple[str, ...]:
    """Every area a warning answered by ``plan`` can concern: its match areas (or the whole site),
    cut to its zones' areas when it matches zones."""
    covered = plan.match.areas or tuple(site.areas.roots)
    if plan.match.zones:
        zone_areas = site.zone_areas(plan.match.zones)
        covered = tuple(dict.fromkeys(z for z in zone_areas if any(overlaps(z, c) for c in covered)))
    return covered


@dataclass(frozen=True)
class Reached:
    """Someone without a mobile whom a plan's step can reach, and what the rule finds."""

    plan: Plan
    step: int | None  # index into plan.steps (0-based); None: the final escalation
    channels: tuple[Channel, ...]
    person: Person
    how: str  # "target 3 (group_leader affected)", "deputy of 周敏 (zhou-min)", "the duty room 龙潭镇值班室"
    finding: NoMobile

    @property
    def step_label(self) -> str:
        """As validate names steps: "step 1" is the first, or "final escalation"."""
        return "final escalation" if self.step is None else f"step {self.step + 1}"


_ESCALATION = (DutyPosition.LEADER, DutyPosition.CHIEF)  # whom `to: duty` and `to: town_duty` reach


class NoMobileReach:
    """Who among the people without a mobile each plan's steps can reach, for any warning the plan
    answers. Built once per site: only those few people are looked at per plan (a county has tens of
    thousands of officials and a handful of landlines)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        people = site.people.values()
        self.without = [p for p in people if p.mobile is None]
        ids = {p.id for p in self.without}
        self.deputy_of: dict[str, list[Person]] = {}
        self.superior_of: dict[str, list[Person]] = {}
        if ids:
            for p in people:
                if p.deputy in ids:
                    self.deputy_of.setdefault(p.deputy, []).append(p)
                if p.superior in ids:
                    self.superior_of.setdefault(p.superior, []).append(p)
        self._held: dict[tuple[int, tuple[DutyPosition, ...]], frozenset[str]] = {}
        self.rooms_seated: dict[str, list[Person]] = {}  # rooms with someone without a mobile on their rota
        for room in site.rooms:
            if ids & self.holders(room.rota, _ESCALATION):
                self.rooms_seated[room.area] = [p for p in people if covers(room.area, p.area)]

    def holders(self, rota: DutyRota, positions: tuple[DutyPosition, ...]) -> frozenset[str]:
        """Everyone on any shift of the rota, dated or weekly, in these positions (worked out once)."""
        key = (id(rota), positions)
        if key not in self._held:
            shifts = [*rota.shifts, *rota.weekly]
            self._held[key] = frozenset(p for s in shifts for p in (
                *((s.leader,) if DutyPosition.LEADER in positions and s.leader else ()),
                *((s.chief,) if DutyPosition.CHIEF in positions and s.chief else ()),
                *(s.staff if DutyPosition.STAFF in positions else ())))
        return self._held[key]

    def findings(self, plans: Iterable[Plan]) -> Iterator[Reached]:
        """Every (plan, step, person without a mobile) the rule finds something about."""
        for plan in plans:
            yield from self.plan(plan)

    def plan(self, plan: Plan) -> Iterator[Reached]:
        if not self.without:
            return
        reach = _PlanReach(self, plan)
        steps: list[tuple[int | None, tuple[Recipient, ...], tuple[Channel, ...]]] = [
            (i, (s.to,), s.channels) for i, s in enumerate(plan.steps)]
        if plan.final is not None:
            steps.append((None, plan.final.to, plan.final.channels))
        quiet = plan.quiet_hours.channels if plan.quiet_hours else ()
        for person in self.without:
            for index, recipients, channels in steps:
                findings = [f] if (f := without_mobile(person, channels)) else []
                if quiet and held_at_night(person, [c for c in channels if c not in quiet],
                                           [c for c in channels if c in quiet]):
                    findings.append(NoMobile.HELD_AT_NIGHT)
                if not findings:
                    continue
                how = next((h for to in recipients if (h := reach.recipient(person, to))), None)
                if how is not None:
                    yield from (Reached(plan, index, channels, person, how, finding) for finding in findings)


def _kind(target: Target) -> str:
    """"town_duty", "duty", "county_leader responsible": a target in a few words."""
    if isinstance(target, DutyTarget | TownDutyTarget):
        return "duty" if isinstance(target, DutyTarget) else "town_duty"
    return f"{', '.join(target.roles)} {'+'.join(s.value for s in target.scopes)}"


class _PlanReach:
    """Whether one plan can reach a given person: by its targets, or as a step's recipient."""

    def __init__(self, all_: NoMobileReach, plan: Plan) -> None:
        self.all, self.site, self.plan = all_, all_.site, plan
        self.covered = plan_areas(self.site, plan)
        self._targeted: dict[str, str | None] = {}
        self._uncovered: dict[int, tuple[str, ...]] = {}
        self._rooms: dict[tuple[DutyPosition, ...], frozenset[str]] = {}

    def recipient(self, person: Person, to: Recipient) -> str | None:
        """How a step ``to`` this recipient can reach ``person``, in words; None if it cannot."""
        if to is Recipient.SELF:
            return self.targeted(person)
        if to in (Recipient.DEPUTY, Recipient.SUPERIOR):
            of = self.all.deputy_of if to is Recipient.DEPUTY else self.all.superior_of
            official = next((q for q in of.get(person.id, ()) if self.targeted(q)), None)
            return f"{to.value} of {official.name} ({official.id})" if official else None
        if to is Recipient.DUTY:
            return "the county duty room" if person.id in self.all.holders(self.site.duty, _ESCALATION) else None
        room = next((r for r in self.site.rooms if person.id in self.all.holders(r.rota, _ESCALATION)
                     and self._room_concerned(r.area)), None)
        return f"the duty room {room.name}" if room else None

    def _room_concerned(self, room: str) -> bool:
        """A town's room is asked when the plan covers the town (an official above it or in it is
        called) or when someone seated in the town is called."""
        return any(overlaps(room, c) for c in self.covered) or any(
            self.targeted(q) for q in self.all.rooms_seated.get(room, ()))

    def targeted(self, person: Person) -> str | None:
        """"target N" for the first of the plan's targets that can reach ``person``, else None."""
        if person.id not in self._targeted:
            self._targeted[person.id] = next(
                (f"target {n} ({_kind(t)})" for n, t in enumerate(self.plan.targets, 1) if self._reaches(n, t, person)),
                None)
        return self._targeted[person.id]

    def _reaches(self, n: int, target: Target, person: Person) -> bool:
        if isinstance(target, DutyTarget):
            return person.id in self.all.holders(self.site.duty, target.positions)
        if isinstance(target, TownDutyTarget):
            if target.positions not in self._rooms:  # the rooms of the towns the plan covers, on any shift
                self._rooms[target.positions] = frozenset().union(*(
                    self.all.holders(r.rota, target.positions) for r in self.site.rooms
                    if any(overlaps(r.area, c) for c in self.covered)))
            return person.id in self._rooms[target.positions]
        if not person.has_any_role(target.roles):
            return False
        if Scope.RESPONSIBLE in target.scopes:
            held = [d for r in person.roles if r in target.roles for d in person.responsibilities if d.held_as(r)]
            if any(d.zones or any(overlaps(a, c) for a in d.areas for c in self.covered) for d in held):
                return True  # a zone's people are reached when a warning names it, whatever else it covers
            if target.otherwise and self._scopes(person, target.otherwise, target.area, self._gaps(n, target)):
                return True
        return self._scopes(person, target.scopes, target.area, self.covered)

    def _gaps(self, n: int, target: RoleTarget) -> tuple[str, ...]:
        """The plan's areas nobody holds ``target``'s responsibility for (its ``otherwise`` applies)."""
        if n not in self._uncovered:
            self._uncovered[n] = tuple(uncovered_by(self.site, target, self.covered))
        return self._uncovered[n]

    def _scopes(self, person: Person, scopes: tuple[Scope, ...], area: str | None, covered: tuple[str, ...]) -> bool:
        seat = person.area
        for scope in scopes:
            if scope is Scope.AFFECTED and any(seated_in(seat, c) for c in covered):
                return True
            if scope is Scope.ABOVE and any(
                    (covers(seat, c) and seat != c) or (covers(c, seat) and len(self.site.areas.within(seat)) > 1)
                    for c in covered):
                return True
            if scope is Scope.FIXED and area and covers(area, seat):
                return True
        return False


__all__ = ["NoMobile", "NoMobileReach", "Reached", "numbers_of", "plan_areas", "without_mobile"]
