"""Readiness gaps a site has before any warning: what `validate` lists beside its problems. They do
not stop a load (a county fills them in over time), but each is a person or a place a warning would
find unprepared."""

from __future__ import annotations

from .channels import Channel
from .plans import Plan, RoleTarget, Scope
from .rules import Gap, GapKind, uncovered_by
from .site import Site


def site_gaps(site: Site) -> list[Gap]:
    """Areas a plan's `responsible` target finds nobody holding (its `otherwise` applies there), and
    people a plan texts whose only numbers are landlines."""
    gaps: list[Gap] = []
    for plan in site.plans:
        gaps += _responsibility_gaps(site, plan)
        gaps += _landline_gaps(site, plan)
    return gaps


def _responsibility_gaps(site: Site, plan: Plan) -> list[Gap]:
    covered = plan.match.areas or tuple(site.areas.roots)
    if plan.match.zones:
        covered = site.zone_areas(plan.match.zones)
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


def _landline_gaps(site: Site, plan: Plan) -> list[Gap]:
    if Channel.SMS not in plan.channels:
        return []
    roles = {r for t in plan.targets if isinstance(t, RoleTarget) for r in t.roles}
    return [Gap(GapKind.LANDLINE_ONLY, plan.id, p.id,
                f"plan {plan.id}: {p.name} ({p.id}) has only a landline: text messages cannot reach them, calls can")
            for p in site.people.values() if p.landline_only and p.has_any_role(tuple(roles))]


__all__ = ["site_gaps"]
