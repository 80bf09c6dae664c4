"""Readiness gaps a site has before any warning: what `validate` lists beside its problems. They do
not stop a load (a county fills them in over time), but each is a person or a place a warning would
find unprepared."""

from __future__ import annotations

from .plans import Plan, RoleTarget, Scope
from .reach import NoMobileReach, Reached, plan_areas
from .roster import NoMobile, numbers_of
from .rules import Gap, GapKind, uncovered_by
from .site import Site


def site_gaps(site: Site) -> list[Gap]:
    """Areas a plan's `responsible` target finds nobody holding (its `otherwise` applies there), and
    people a plan's step texts whose only numbers are landlines, and people whom only a channel the
    plan's quiet hours hold reaches (reach.py: whoever the step reaches, through any target or as a
    deputy, superior or duty officer)."""
    gaps: list[Gap] = []
    for plan in site.plans:
        gaps += _responsibility_gaps(site, plan)
    reach = NoMobileReach(site)
    for plan in (*site.plans, *((site.fallback,) if site.fallback else ())):
        gaps += _landline_gaps(reach, plan)
    return gaps


def _responsibility_gaps(site: Site, plan: Plan) -> list[Gap]:
    covered = plan_areas(site, plan)
    gaps = []
    for target in plan.targets:
        if not isinstance(target, RoleTarget) or Scope.RESPONSIBLE not in target.scopes or not target.otherwise:
            continue
        uncovered = uncovered_by(site, target, covered)
        if uncovered:
            names = "、".join(site.areas.name(a) for a in uncovered)
            gaps.append(Gap(GapKind.NO_RESPONSIBLE, plan.id, uncovered[0],
                            f"plan {plan.id}: nobody with {', '.join(target.roles)} is responsible for {names}; "
                            f"a warning there calls {'、'.join(s.value for s in target.otherwise)} instead"))
    return gaps


def _landline_gaps(reach: NoMobileReach, plan: Plan) -> list[Gap]:
    """One gap per person the plan texts whose only numbers are landlines, naming its first such step;
    and one per person a step misses at night because its quiet hours hold the only channel that
    reaches them."""
    first: dict[tuple[NoMobile, str], Reached] = {}
    for found in reach.plan(plan):
        if found.finding in (NoMobile.LANDLINE_ONLY, NoMobile.HELD_AT_NIGHT):
            first.setdefault((found.finding, found.person.id), found)
    gaps = []
    for (finding, _), r in first.items():
        if finding is NoMobile.LANDLINE_ONLY:
            gaps.append(Gap(GapKind.LANDLINE_ONLY, plan.id, r.person.id,
                            f"plan {plan.id}: {r.step_label} texts {r.person.name} ({r.person.id}), reached as "
                            f"{r.how}, who has {numbers_of(r.person)}: text messages cannot reach them, calls can"))
        else:
            quiet = plan.quiet_hours
            if quiet is None:  # HELD_AT_NIGHT is only found on a plan with quiet hours
                continue
            held = [c.value for c in r.channels if c in quiet.channels]
            gaps.append(Gap(GapKind.HELD_AT_NIGHT, plan.id, r.person.id,
                            f"plan {plan.id}: between {quiet.start:%H:%M} and {quiet.end:%H:%M} its quiet hours hold "
                            f"{', '.join(held)}, the only channel of {r.step_label} that reaches {r.person.name} "
                            f"({r.person.id}), reached as {r.how}, who has {numbers_of(r.person)}: "
                            f"at night that step misses them"))
    return gaps


__all__ = ["site_gaps"]
