"""The rules engine, as plain function calls on a small hand-built county at fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain.areas import Area, AreaTree
from dispatcher.domain.channels import Channel
from dispatcher.domain.duty import DutyPosition, DutyRota, DutyShift, WeeklyShift
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.domain.plans import (
    DutyTarget,
    FinalEscalation,
    Match,
    Plan,
    QuietHours,
    Recipient,
    RoleTarget,
    Scope,
    Step,
)
from dispatcher.domain.roster import Person
from dispatcher.domain.rules import GapKind, WarningFacts, matching_plans, resolve
from dispatcher.domain.site import Site

TZ = ZoneInfo("Asia/Shanghai")
COUNTY, TOWN_A, TOWN_B = "330599", "330599100", "330599101"
VILLAGE_A1, VILLAGE_A2, VILLAGE_B1 = "330599100201", "330599100202", "330599101201"
NOON = datetime(2026, 7, 16, 12, 0, tzinfo=TZ)  # a Thursday


def person(pid: str, area: str, *roles: str, **kw: object) -> Person:
    return Person(id=pid, name=pid, phone=kw.pop("phone", "+8613800000000"), area=area, roles=roles, **kw)  # type: ignore[arg-type]


def red_plan(**overrides: object) -> Plan:
    base = dict(
        id="rain-red", name="暴雨红色",
        match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.RED})),
        targets=(
            RoleTarget(("county_leader",), (Scope.FIXED,), COUNTY),
            RoleTarget(("town_head", "village_flood_officer", "village_head"), (Scope.AFFECTED,)),
            DutyTarget((DutyPosition.LEADER,)),
        ),
        steps=(Step(timedelta(0), (Channel.SMS, Channel.IM)), Step(timedelta(minutes=3), (Channel.VOICE,)),
               Step(timedelta(minutes=8), (Channel.VOICE,), Recipient.DEPUTY),
               Step(timedelta(minutes=12), (Channel.VOICE,), Recipient.SUPERIOR)),
        final=FinalEscalation(timedelta(minutes=15), (Recipient.SUPERIOR, Recipient.DUTY), (Channel.SMS,)),
    )
    base.update(overrides)
    return Plan(**base)  # type: ignore[arg-type]


def orange_plan(**overrides: object) -> Plan:
    base = dict(
        id="rain-orange", name="暴雨橙色",
        match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.ORANGE})),
        targets=(RoleTarget(("town_head",), (Scope.AFFECTED,)),),
        steps=(Step(timedelta(0), (Channel.SMS,)),),
    )
    base.update(overrides)
    return Plan(**base)  # type: ignore[arg-type]


def county(plans: tuple[Plan, ...] | None = None, people: list[Person] | None = None,
           duty: DutyRota | None = None) -> Site:
    areas = AreaTree.of([
        Area(COUNTY, "青溪县"), Area(TOWN_A, "青溪镇", COUNTY), Area(TOWN_B, "石门镇", COUNTY),
        Area(VILLAGE_A1, "溪口村", TOWN_A), Area(VILLAGE_A2, "石桥村", TOWN_A), Area(VILLAGE_B1, "龙山村", TOWN_B),
    ])
    people = people if people is not None else [
        person("leader", COUNTY, "county_leader"),
        person("head-a", TOWN_A, "town_head", deputy="sec-a", superior="leader"),
        person("sec-a", TOWN_A, "town_secretary"),
        person("head-b", TOWN_B, "town_head", superior="leader"),
        # one cadre holds both village roles: called once
        person("cadre-a1", VILLAGE_A1, "village_flood_officer", "village_head", deputy="vh-a1", superior="head-a"),
        person("vh-a1", VILLAGE_A1, "village_head"),
        person("cadre-a2", VILLAGE_A2, "village_flood_officer", superior="head-a"),
        person("cadre-b1", VILLAGE_B1, "village_flood_officer", superior="head-b"),
        person("duty-mon", COUNTY, "duty_officer"),
        person("duty-thu", COUNTY, "duty_officer"),
    ]
    duty = duty or DutyRota(TZ, weekly=(
        WeeklyShift(0, time(8, 30), 24, "duty-mon", "duty-mon"),
        WeeklyShift(3, time(8, 30), 24, "duty-thu", "duty-mon"),
    ))
    return Site("qingxi", areas, {}, {p.id: p for p in people}, duty,
                plans if plans is not None else (red_plan(), orange_plan()), TZ)


def facts(level: Level = Level.RED, areas: tuple[str, ...] = (TOWN_A,), at: datetime = NOON,
          sender: str | None = "qingxi-qx", hazard: Hazard = Hazard.RAINSTORM) -> WarningFacts:
    return WarningFacts(hazard, level, areas, sender, at)


def called(site: Site, f: WarningFacts) -> set[str]:
    return {c.person_id for c in resolve(site, f).callouts}


def test_town_warning_reaches_county_roles_the_town_and_its_villages_but_no_other_town() -> None:
    assert called(county(), facts(areas=(TOWN_A,))) == {
        "leader", "head-a", "cadre-a1", "vh-a1", "cadre-a2", "duty-thu"}


def test_above_scope_reaches_the_county_above_a_village_warning_but_not_a_sibling_town() -> None:
    plan = red_plan(targets=(RoleTarget(("town_head", "county_leader"), (Scope.ABOVE,)),))
    assert called(county((plan,)), facts(areas=(VILLAGE_A1,))) == {"head-a", "leader"}


def test_an_official_with_two_matching_roles_is_called_once() -> None:
    res = resolve(county(), facts())
    assert [c.person_id for c in res.callouts].count("cadre-a1") == 1


def test_orange_only_plan_does_not_fire_for_red() -> None:
    site = county()
    assert [p.id for p in matching_plans(site, facts(Level.RED))] == ["rain-red"]
    assert [p.id for p in matching_plans(site, facts(Level.ORANGE))] == ["rain-orange"]


def test_a_plan_listing_orange_and_red_fires_for_both() -> None:
    plan = orange_plan(match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.ORANGE, Level.RED})))
    assert [p.id for p in matching_plans(county((plan,)), facts(Level.RED))] == ["rain-orange"]


def test_other_hazards_do_not_match() -> None:
    assert matching_plans(county(), facts(hazard=Hazard.TYPHOON)) == []


def test_the_duty_leader_is_whoever_is_on_shift_at_the_warnings_time() -> None:
    site = county()
    # Thursday 12:00 is in Thursday's 08:30 shift; Thursday 08:00 is still Wednesday's — none here.
    assert resolve(site, facts(at=NOON)).duty.leader == "duty-thu"
    monday_night = datetime(2026, 7, 14, 3, 0, tzinfo=TZ)  # Tuesday 03:00: Monday's shift runs to 08:30
    assert resolve(site, facts(at=monday_night)).duty.leader == "duty-mon"
    assert "duty-mon" in called(site, facts(at=monday_night))


def test_a_dated_shift_overrides_the_weekly_rota() -> None:
    rota = DutyRota(TZ, shifts=(DutyShift(NOON - timedelta(hours=1), NOON + timedelta(hours=5), "duty-mon", None),),
                    weekly=(WeeklyShift(3, time(8, 30), 24, "duty-thu", None),))
    assert resolve(county(duty=rota), facts()).duty.leader == "duty-mon"


def test_first_matching_plan_in_file_order_governs_an_official() -> None:
    wide = orange_plan(id="wide", match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.RED})),
                       steps=(Step(timedelta(0), (Channel.EMAIL,)),))
    res = resolve(county((red_plan(), wide)), facts())
    assert res.plans == ("rain-red", "wide")
    assert res.callout_for("head-a").plan_id == "rain-red"


def test_steps_are_frozen_with_recipients_and_due_times() -> None:
    start = datetime(2026, 7, 16, 4, 0, tzinfo=UTC)
    c = resolve(county(), facts(), start=start).callout_for("cadre-a1")
    assert [(s.after.total_seconds(), s.to, s.recipients, s.due) for s in c.steps] == [
        (0, (Recipient.SELF,), ("cadre-a1",), start),
        (180, (Recipient.SELF,), ("cadre-a1",), start + timedelta(minutes=3)),
        (480, (Recipient.DEPUTY,), ("vh-a1",), start + timedelta(minutes=8)),
        (720, (Recipient.SUPERIOR,), ("head-a",), start + timedelta(minutes=12)),
        (900, (Recipient.SUPERIOR, Recipient.DUTY), ("head-a", "duty-thu", "duty-mon"),
         start + timedelta(minutes=15)),
    ]
    assert c.steps[-1].final and not c.steps[0].final


def test_plan_areas_cut_a_county_wide_warning_down_to_the_plans_towns() -> None:
    plan = orange_plan(match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.ORANGE}), areas=(TOWN_B,)))
    assert called(county((plan,)), facts(Level.ORANGE, areas=(COUNTY,))) == {"head-b"}
    # no plan answers an orange warning for town A: only the duty leader and chief (the fallback)
    assert called(county((plan,)), facts(Level.ORANGE, areas=(TOWN_A,))) == {"duty-mon", "duty-thu"}


def test_an_area_the_plans_leave_with_nobody_brings_in_the_duty_leader_and_chief() -> None:
    site = county((orange_plan(),), people=[p for p in county().people.values() if p.id != "head-b"])
    res = resolve(site, facts(Level.ORANGE, areas=(TOWN_A, TOWN_B)))
    assert {c.person_id: c.plan_id for c in res.callouts} == {
        "head-a": "rain-orange", "duty-mon": "fallback", "duty-thu": "fallback"}
    assert res.fallback is not None and "石门镇" in res.fallback and TOWN_B in res.fallback
    assert [g.kind for g in res.gaps].count(GapKind.NO_PLAN) == 1


@pytest.mark.parametrize(("sender", "fires"), [("qingxi-zrzy", True), ("someone-else", False), (None, True)])
def test_sender_filter(sender: str | None, fires: bool) -> None:
    plan = orange_plan(match=Match(frozenset({Hazard.RAINSTORM}), frozenset({Level.ORANGE}),
                                   senders=("qingxi-zrzy",)))
    assert bool(matching_plans(county((plan,)), facts(Level.ORANGE, sender=sender))) is fires


def test_province_wide_warning_reaches_every_town() -> None:
    assert called(county((orange_plan(),)), facts(Level.ORANGE, areas=("33",))) == {"head-a", "head-b"}


def test_gap_for_an_affected_village_with_nobody_to_call() -> None:
    people = [p for p in county().people.values() if p.id != "cadre-a2"]
    res = resolve(county(people=people), facts())
    gaps = [g for g in res.gaps if g.kind is GapKind.NOBODY_IN_AREA]
    assert [(g.subject, g.message) for g in gaps] == [
        (VILLAGE_A2, f"nobody is called in 青溪县/青溪镇/石桥村 ({VILLAGE_A2})")]


def test_gap_for_an_official_with_no_channel_the_plan_uses() -> None:
    people = list(county().people.values())
    people = [p for p in people if p.id != "cadre-a2"] + [person("cadre-a2", VILLAGE_A2, "village_flood_officer",
                                                                 phone=None)]
    res = resolve(county(people=people), facts())
    assert [g.message for g in res.gaps if g.kind is GapKind.NO_CHANNEL] == [
        "cadre-a2 (cadre-a2) has no address for any channel the plan uses (im, sms, voice)"]


def test_gap_for_an_escalation_that_reaches_nobody() -> None:
    res = resolve(county(), facts())
    no_deputy = [g for g in res.gaps if g.kind is GapKind.NO_RECIPIENT and g.subject == "cadre-a2"]
    assert [g.message for g in no_deputy] == ["step 2 of cadre-a2 (cadre-a2) goes to deputy: nobody"]


def test_quiet_hours_hold_voice_at_night_but_not_sms() -> None:
    quiet = QuietHours(time(22, 30), time(6, 30), (Channel.VOICE,))
    plan = orange_plan(steps=(Step(timedelta(0), (Channel.SMS, Channel.VOICE)),
                              Step(timedelta(minutes=10), (Channel.VOICE,))), quiet_hours=quiet)
    night = datetime(2026, 7, 16, 2, 0, tzinfo=TZ)
    c = resolve(county((plan,)), facts(Level.ORANGE, at=night)).callout_for("head-a")
    assert (c.steps[0].channels, c.steps[0].held, c.steps[0].due) == ((Channel.SMS,), (Channel.VOICE,), night)
    # a voice-only step waits for the end of the quiet hours rather than being dropped
    assert (c.steps[1].channels, c.steps[1].due) == ((Channel.VOICE,), datetime(2026, 7, 16, 6, 30, tzinfo=TZ))
    day = resolve(county((plan,)), facts(Level.ORANGE, at=NOON)).callout_for("head-a")
    assert day.steps[0].channels == (Channel.SMS, Channel.VOICE) and day.steps[0].held == ()


def test_no_duty_shift_is_a_gap_not_a_crash() -> None:
    res = resolve(county(duty=DutyRota(TZ)), facts())
    assert res.duty is None
    assert any(g.kind is GapKind.NO_DUTY_SHIFT for g in res.gaps)
