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
    people a plan's step texts whose only numbers are landlines (reach.py: whoever the step reaches,
    through any target or as a deputy, superior or duty officer)."""
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
    """One gap per person the plan texts whose only numbers are landlines, naming its first such step."""
    first: dict[str, Reached] = {}
    for found in reach.plan(plan):
        if found.finding is NoMobile.LANDLINE_ONLY:
            first.setdefault(found.person.id, found)
    return [Gap(GapKind.LANDLINE_ONLY, plan.id, r.person.id,
                f"plan {plan.id}: {r.step_label} texts {r.person.name} ({r.person.id}), reached as {r.how}, who has "
                f"{numbers_of(r.person)}: text messages cannot reach them, calls can") for r in first.values()]


__all__ = ["site_gaps"]
