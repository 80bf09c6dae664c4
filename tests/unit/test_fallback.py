"""A red or orange warning always wakes someone: when no plan answers it the duty leader and the
shift chief are called, and the decision says why (an area the plans leave with nobody: test_rules)."""

from __future__ import annotations

from dispatcher.domain.hazards import Hazard, Level
from dispatcher.domain.rules import DEFAULT_FALLBACK, GapKind, WarningFacts, resolve
from dispatcher.sites import load_site
from tests.conftest import FIXED_NOW, FIXTURES

TINY = FIXTURES / "sites" / "tiny"


def _facts(hazard: Hazard, level: Level, *areas: str) -> WarningFacts:
    return WarningFacts(hazard, level, areas, "qingxi-qx", FIXED_NOW)


def test_a_red_heat_warning_with_no_plan_calls_the_duty_leader_and_chief() -> None:
    site = load_site(TINY)
    resolution = resolve(site, _facts(Hazard.HEAT, Level.RED, "330599100"))
    assert sorted(c.person_id for c in resolution.callouts) == ["qian", "zhao"]
    assert {c.plan_id for c in resolution.callouts} == {DEFAULT_FALLBACK.id}
    assert resolution.fallback and resolution.fallback.startswith("无匹配方案，已通知值班领导")
    assert any(g.kind is GapKind.NO_PLAN for g in resolution.gaps)
    assert all(c.reason.startswith("无匹配方案") for c in resolution.callouts)


def test_a_yellow_warning_with_no_plan_calls_nobody() -> None:
    assert resolve(load_site(TINY), _facts(Hazard.HEAT, Level.YELLOW, "330599100")).callouts == ()


def test_a_town_head_above_a_village_answers_for_it() -> None:
    # the orange plan calls town heads of the affected areas and above: 孙镇长 answers for 溪口村
    resolution = resolve(load_site(TINY), _facts(Hazard.RAINSTORM, Level.ORANGE, "330599100201"))
    assert [c.person_id for c in resolution.callouts] == ["sun"] and resolution.fallback is None


def test_a_plan_that_reaches_every_area_needs_no_fallback() -> None:
    resolution = resolve(load_site(TINY), _facts(Hazard.RAINSTORM, Level.RED, "330599100"))
    assert resolution.fallback is None
    assert DEFAULT_FALLBACK.id not in {c.plan_id for c in resolution.callouts}
