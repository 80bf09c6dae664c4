"""Preview: who a warning would call, by which steps, and the readiness gaps — sends nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..config import Settings
from ..domain.areas import normalize_code
from ..domain.capacity import Capacity, capacity
from ..domain.channels import Channel
from ..domain.hazards import parse_hazard, parse_level
from ..domain.limits import RateLimit
from ..domain.rules import DEFAULT_FALLBACK, Resolution, WarningFacts, resolve
from ..domain.site import Site
from ..gcpause import gc_paused
from ..intake.errors import FieldProblem, IntakeError
from .carrier_gaps import template_gaps

# The times a preview may be asked about: the duty rota and the steps' timers are computed from
# ``at``, and near the ends of the calendar (year 1, year 9999) that arithmetic overflows.
EARLIEST_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AT = datetime(2100, 1, 1, tzinfo=UTC)


def preview(site: Site, hazard: str, level: str, areas: list[str], at: datetime,
            sender: str | None = None, *, limits: Mapping[Channel, RateLimit] | None = None,
            settings: Settings | None = None, zones: list[str] | None = None) -> dict[str, Any]:
    """``limits`` (``Settings.limits``) adds a ``capacity`` section: how long each step takes under
    the rate limits, and warnings where a plan cannot keep its own timing. None leaves it out.
    ``settings`` adds the carriers' readiness gaps (purposes of the matched plans with no approved
    template at a configured template provider)."""
    facts = _facts(site, hazard, level, areas, at, sender, zones or [])
    with gc_paused():  # tens of thousands of call-outs: see gcpause
        res = resolve(site, facts)
        result = describe(site, facts, res)
        if settings is not None:
            matched = [p for p in (*site.plans, site.fallback or DEFAULT_FALLBACK) if p.id in res.plans]
            result["gaps"] += template_gaps(site, settings, matched)
        if limits is not None:
            result["capacity"] = describe_capacity(capacity(res, limits, _reachable(site)))
    return result


def _reachable(site: Site) -> Callable[[str, Channel], bool]:
    def reachable(person_id: str, channel: Channel) -> bool:
        person = site.people.get(person_id)
        return person is not None and person.reachable_by(channel)

    return reachable


def describe_capacity(cap: Capacity) -> dict[str, Any]:
    return {
        "limits": {ch.value: str(cap.limits[ch]) for ch in Channel if ch in cap.limits},
        "first_round_seconds": round(cap.first_round.total_seconds(), 1),
        "steps": [{
            "plan": s.plan_id, "step": s.index, "final": s.final,
            "after_seconds": int(s.after.total_seconds()),
            "channels": {c.channel.value: {"messages": c.messages, "seconds": round(c.time.total_seconds(), 1),
                                           "limit": str(c.limit) if c.limit else None}
                         for c in s.channels},
            "seconds": round(s.time.total_seconds(), 1),
            "deadline_seconds": int(s.deadline.total_seconds()) if s.deadline is not None else None,
            "fits": s.fits,
        } for s in cap.steps],
        "warnings": cap.warnings,
    }


def _facts(site: Site, hazard: str, level: str, areas: list[str], at: datetime,
           sender: str | None, zones: list[str]) -> WarningFacts:
    problems: list[FieldProblem] = []
    if problem := at_problem(at):
        problems.append(FieldProblem("at", problem))
    parsed: dict[str, Any] = {}
    for name, parse, value in (("hazard", parse_hazard, hazard), ("level", parse_level, level)):
        try:
            parsed[name] = parse(value)
        except ValueError as exc:
            problems.append(FieldProblem(name, str(exc)))
    codes: list[str] = []
    for raw in areas:
        try:
            code = normalize_code(raw)
        except ValueError as exc:
            problems.append(FieldProblem("areas", str(exc)))
            continue
        if not site.areas.relates(code):
            problems.append(FieldProblem("areas", f"{code} is not an area of this site"))
        codes.append(code)
    for zone in zones:
        if zone not in site.zones:
            problems.append(FieldProblem("zones", f"{zone[:80]!r} is not a zone of this site "
                                                  f"(zones: {', '.join(site.zones) or 'none'})"))
    if not areas and not zones:
        problems.append(FieldProblem("areas", "at least one division code (or a zone) is required"))
    if problems:
        raise IntakeError.many(problems)
    return WarningFacts(parsed["hazard"], parsed["level"], tuple(codes), sender, at, tuple(dict.fromkeys(zones)))


def at_problem(at: datetime) -> str | None:
    """What makes ``at`` unusable as a preview's time, or None."""
    if at.utcoffset() is None:
        return f"{at.isoformat()} must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00"
    if not EARLIEST_AT <= at < LATEST_AT:  # compared without converting: year 1 at +14:00 has no UTC form
        return f"{at.isoformat()} is outside the years a preview covers (2000 to 2099)"
    return None


def describe(site: Site, facts: WarningFacts, res: Resolution) -> dict[str, Any]:
    def who(pid: str) -> dict[str, str]:
        p = site.people.get(pid)
        return {"id": pid, "name": p.name if p else pid}

    callouts = []
    for c in res.callouts:
        person = site.people[c.person_id]
        callouts.append({
            "official": {**who(person.id), "roles": [site.roles.get(r, r) for r in person.roles],
                         "area": person.area, "area_name": site.areas.label(person.area), "unit": person.unit,
                         "channels": [ch.value for ch in Channel if person.reachable_by(ch)]},
            "plan": c.plan_id,
            "target": c.target,  # the plan's target (1-based) that reached them
            "reason": c.reason,  # why, in words: "包保龙潭镇", "白岩沟小流域监测员", "村防汛责任人（溪口村）"
            "reason_en": c.reason_en,  # the same in English: "包保 for 龙潭镇、白云镇", "nobody holds 包保 for …"
            "steps": [{
                "index": s.index, "after_seconds": int(s.after.total_seconds()), "due": s.due.isoformat(),
                "channels": [ch.value for ch in s.channels], "to": [r.value for r in s.to],
                "recipients": [who(r) for r in s.recipients], "held": [ch.value for ch in s.held],
                "final": s.final,
            } for s in c.steps],
        })
    duty = res.duty
    return {
        "hazard": facts.hazard.value, "level": facts.level.value,
        "areas": [{"code": a, "name": site.areas.label(a)} for a in facts.areas],
        "zones": [{"id": z, "name": site.zones[z].name, "kind": site.zones[z].kind.value}
                  for z in facts.zones if z in site.zones],
        "at": facts.at.isoformat(),
        "plans": list(res.plans),
        "officials": len(res.callouts),
        "duty": {
            "leader": who(duty.leader) if duty and duty.leader else None,
            "chief": who(duty.chief) if duty and duty.chief else None,
            "staff": [who(p) for p in duty.staff] if duty else [],
        },
        "callouts": callouts,
        "gaps": [{"kind": g.kind.value, "plan": g.plan_id, "subject": g.subject, "message": g.message}
                 for g in res.gaps],
    }
