"""The county as it is organised (tests/fixtures/sites/organised): 包保 responsibilities, groups and
grids under villages, a hazard zone across two towns, a town duty room, several numbers per person,
named ladders and deputies. Each test states what a county would see: who is called, and why."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Hazard, Level
from dispatcher.domain.plans import Recipient
from dispatcher.domain.roster import PhoneKind
from dispatcher.domain.rules import GapKind, WarningFacts, resolve
from dispatcher.domain.site import Site
from dispatcher.sites import check_site, load_site

SITE = Path(__file__).resolve().parents[1] / "fixtures" / "sites" / "organised"
AT = datetime(2026, 7, 16, 13, 0, tzinfo=UTC)  # a Thursday: both rotas cover it

LONGTAN, BAIYUN, QINGXI = "330599102", "330599103", "330599100"
TANTOU, SONGKENG = "330599102202", "330599103205"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(SITE)


def called(site: Site, hazard: Hazard, areas: tuple[str, ...] = (), zones: tuple[str, ...] = ()) -> dict[str, str]:
    res = resolve(site, WarningFacts(hazard, Level.RED, areas, "qx", AT, zones))
    return {c.person_id: c.reason for c in res.callouts}


# --- 包保: a plan target that follows responsibility ------------------------------------------


def test_a_warning_in_one_town_reaches_the_county_leader_who_baobao_it_and_no_other(site: Site) -> None:
    reached = called(site, Hazard.RAINSTORM, (LONGTAN,))
    leaders = {p for p in reached if "county_leader" in site.people[p].roles}
    assert leaders == {"li-weidong"}
    assert reached["li-weidong"] == "包保龙潭镇"


def test_a_county_wide_warning_reaches_every_leader_holding_a_town(site: Site) -> None:
    reached = called(site, Hazard.RAINSTORM, ("330599",))
    assert {"wang-jianguo", "li-weidong", "zhou-min"} <= set(reached)
    assert reached["zhou-min"] == "包保白云镇"


def test_a_warning_for_a_village_reaches_the_leader_of_its_town(site: Site) -> None:
    assert called(site, Hazard.RAINSTORM, ("330599103201",))["zhou-min"] == "包保白云镇"


def test_an_area_nobody_holds_is_a_readiness_gap_and_the_target_falls_back_to_the_county_level(tmp_path: Path) -> None:
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    people = folder / "people.yaml"
    people.write_text(people.read_text().replace(
        'deputy: zhou-min, responsibilities: [{ kind: 包保, areas: ["330599102"] }] }', "deputy: zhou-min }"))
    site = load_site(folder)
    res = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (LONGTAN,), "qx", AT))
    gaps = [g for g in res.gaps if g.kind is GapKind.NO_RESPONSIBLE and "county_leader" in g.message]
    assert [g.subject for g in gaps] == [LONGTAN]
    assert "龙潭镇" in gaps[0].message and "otherwise: above" in gaps[0].message
    leaders = {c.person_id: c for c in res.callouts if "county_leader" in site.people[c.person_id].roles}
    assert set(leaders) == {"wang-jianguo", "li-weidong", "zhou-min", "xu-haitao"}  # every leader above 龙潭镇
    # each says it is the fallback, and for which town
    assert {c.reason for c in leaders.values()} == {"无人包保龙潭镇，由县领导兜底"}
    assert {c.reason_en for c in leaders.values()} == {
        "nobody holds 包保 for 龙潭镇: county_leader as the fallback (otherwise: above)"}


def test_a_leader_holding_several_affected_towns_is_called_for_all_of_them(tmp_path: Path) -> None:
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    people = folder / "people.yaml"
    people.write_text(people.read_text().replace('areas: ["330599103"] }]', 'areas: ["330599102", "330599103"] }]'))
    site = load_site(folder)
    res = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (LONGTAN, BAIYUN), "qx", AT))
    zhou = res.callout_for("zhou-min")
    assert (zhou.reason, zhou.reason_en) == ("包保龙潭镇、白云镇", "包保 for 龙潭镇、白云镇")
    zone = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (), "qx", AT, ("baiyangou",)))
    assert zone.callout_for("zhou-min").reason == "包保龙潭镇、白云镇"  # the zone lies in both towns
    assert called(site, Hazard.RAINSTORM, (BAIYUN,))["zhou-min"] == "包保白云镇"  # only the town concerned


def test_otherwise_none_calls_nobody_for_an_area_nobody_holds_and_is_no_gap(site: Site) -> None:
    res = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (QINGXI,), "qx", AT))
    assert "he-jun" not in {c.person_id for c in res.callouts}  # the monitor's zone is elsewhere
    # zones exist only in some places: a town without one is not a readiness gap
    assert not any(g.kind is GapKind.NO_RESPONSIBLE and "geohazard_monitor" in g.message for g in res.gaps)


# --- below the village ------------------------------------------------------------------------


def test_a_village_warning_reaches_its_group_leaders_and_grid_workers(site: Site) -> None:
    reached = called(site, Hazard.RAINSTORM, (TANTOU,))
    assert {"tantou", "tantou-1", "tantou-grid"} <= set(reached)
    assert reached["tantou-1"] == "村民小组长（一组）"


def test_a_group_warning_reaches_that_group_and_its_village_cadre_not_the_other_groups(site: Site) -> None:
    reached = called(site, Hazard.RAINSTORM, ("330599103205001",))
    assert {"songkeng-1", "songkeng"} <= set(reached)
    assert "songkeng-2" not in reached and "baiyun" not in reached


# --- hazard zones -------------------------------------------------------------------------------


def test_a_zone_warning_calls_the_villages_in_it_across_two_towns_and_nobody_else(site: Site) -> None:
    reached = called(site, Hazard.FLASH_FLOOD, zones=("baiyangou",))
    assert set(reached) == {"tantou", "tantou-1", "tantou-grid", "songkeng", "songkeng-1", "he-jun"}
    assert reached["he-jun"] == "白岩沟小流域监测员"


def test_a_plan_matching_a_zone_answers_a_warning_touching_its_areas(site: Site) -> None:
    res = resolve(site, WarningFacts(Hazard.FLASH_FLOOD, Level.RED, ("330599103205001",), "qx", AT))
    assert res.plans == ("flash-flood-zone",)
    res = resolve(site, WarningFacts(Hazard.FLASH_FLOOD, Level.RED, ("330599103201",), "qx", AT))
    assert res.plans == ("fallback",)  # 白云村 is not in the zone: the zone plan does not answer


def test_a_rainstorm_in_a_town_reaches_the_monitor_of_a_zone_that_crosses_it(site: Site) -> None:
    assert called(site, Hazard.RAINSTORM, (LONGTAN,))["he-jun"] == "白岩沟小流域监测员"


# --- town duty rooms ----------------------------------------------------------------------------


def test_a_town_duty_target_reaches_the_affected_towns_duty_room(site: Site) -> None:
    reached = called(site, Hazard.RAINSTORM, (LONGTAN,))
    assert reached["lt-duty-leader"] == "龙潭镇值班室值班领导"
    assert "lt-duty-chief" in reached
    assert "lt-duty-leader" not in called(site, Hazard.RAINSTORM, (BAIYUN,))  # 白云镇 keeps no room


def test_a_town_duty_step_goes_to_the_room_of_the_officials_town(site: Site) -> None:
    res = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (LONGTAN,), "qx", AT))
    step = res.callout_for("longtan").steps[2]
    assert step.to == (Recipient.TOWN_DUTY,) and step.recipients == ("lt-duty-leader", "lt-duty-chief")
    county = res.callout_for("li-weidong").steps[2]  # above the towns: the affected town's room
    assert county.recipients == ("lt-duty-leader", "lt-duty-chief")
    assert res.callout_for("baiyun") is None
    gaps = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (BAIYUN,), "qx", AT)).gaps
    assert any(g.kind is GapKind.NO_RECIPIENT and "town_duty" in g.message for g in gaps)


# --- several numbers ---------------------------------------------------------------------------


def test_numbers_are_kept_in_order_with_what_each_can_take(site: Site) -> None:
    zhou = site.people["zhou-min"]
    assert [(n.number, n.kind) for n in zhou.numbers] == [
        ("+8613900000003", PhoneKind.MOBILE), ("+8613900000103", PhoneKind.MOBILE),
        ("+865725012345", PhoneKind.LANDLINE), ("+8617400012345", PhoneKind.SATELLITE)]
    assert zhou.mobile == "+8613900000003"
    chief = site.people["lt-duty-chief"]
    assert chief.phone_kind is PhoneKind.LANDLINE and chief.mobile is None
    assert chief.reachable_by(Channel.VOICE) and not chief.reachable_by(Channel.SMS)
    assert site.people_with_phone("+8613900000103") == ["zhou-min"]  # a reply from the backup mobile


def test_a_landline_as_someones_only_number_is_a_readiness_gap(site: Site) -> None:
    gaps = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, (LONGTAN,), "qx", AT)).gaps
    landline = [g for g in gaps if g.kind is GapKind.LANDLINE_ONLY]
    assert [g.subject for g in landline] == ["lt-duty-chief"]


# --- named ladders and deputies -------------------------------------------------------------------


def test_a_ladder_is_written_once_and_a_plan_may_replace_its_final_step(site: Site) -> None:
    zone, rain = site.plans
    assert zone.steps == rain.steps and len(zone.steps) == 3
    assert zone.final is not None and zone.final.to == (Recipient.SUPERIOR, Recipient.DUTY)
    assert rain.final is not None and rain.final.to == (Recipient.DUTY,) and rain.final.after.seconds == 1200


def test_a_deputy_step_reaches_the_first_deputy_only_even_when_the_deputy_is_called_too(site: Site) -> None:
    res = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, ("330599",), "qx", AT))
    # 王建国's deputy is 李卫东, whose own deputy is 周敏: only 李卫东 is his deputy step
    assert res.callout_for("wang-jianguo").steps[1].recipients == ("li-weidong",)
    # 李卫东 is called for his own 包保 town as well: the deputy step for 王建国 still goes to him
    assert res.callout_for("li-weidong") is not None


# --- the database keeps all of it ---------------------------------------------------------------


def test_the_database_gives_back_the_same_organisation(site: Site, tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from dispatcher.db.sites_repo import read_site, sync_site
    from dispatcher.db.tables import Base

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        sync_site(session, site, "digest", AT)
        session.commit()
        back = read_site(session)
    assert back is not None
    assert back.people == site.people and back.zones == site.zones and back.rooms == site.rooms
    assert back.plans == site.plans and back.areas.areas == site.areas.areas
    facts = WarningFacts(Hazard.RAINSTORM, Level.RED, (LONGTAN,), "qx", AT)
    assert resolve(back, facts) == resolve(site, facts)


# --- bad input: a clear error, nothing loaded -------------------------------------------------------


BAD = [
    ("unknown area in 包保", "people.yaml", 'areas: ["330599100"] }', 'areas: ["330599999"] }',
     "person wang-jianguo: responsibility 1: unknown area '330599999' (not in areas.yaml)"),
    ("a 包保 of one's own seat", "people.yaml", 'areas: ["330599100"] }', 'areas: ["330599"] }',
     "person wang-jianguo: responsibility 1: area '330599' is the person's own seat"),
    ("unknown zone in a responsibility", "people.yaml", "zones: [baiyangou], roles", "zones: [nowhere], roles",
     "person he-jun: responsibility 1: unknown zone 'nowhere'"),
    ("a responsibility held in a role the person lacks", "people.yaml", "roles: [geohazard_monitor] }]",
     "roles: [town_head] }]", "role 'town_head' is not one of the person's roles (geohazard_monitor)"),
    ("a zone naming an unknown village", "areas.yaml", '"330599103205001"]', '"330599103299"]',
     "zone baiyangou: unknown area '330599103299'"),
    ("a town in a zone", "areas.yaml", '"330599103205001"]', '"330599103"]',
     "zone baiyangou: '330599103' (白云镇) is a town or street: a zone lists villages or groups (12 or 15 digits)"),
    ("the county in a zone", "areas.yaml", '"330599103205001"]', '"330599"]',
     "zone baiyangou: '330599' (示例县) is the county: a zone lists villages or groups"),
    ("an unknown zone kind", "areas.yaml", "kind: small_watershed", "kind: valley",
     "zone baiyangou: unknown kind 'valley'"),
    ("a group kind on a village", "areas.yaml", "{ code: \"330599102201\", name: 龙潭村 }",
     "{ code: \"330599102201\", name: 龙潭村, kind: group }", "'kind' is for a village's groups and grids"),
    ("a plan matching an unknown zone", "plans.yaml", "zones: [baiyangou] }", "zones: [baiyan] }",
     "unknown zone 'baiyan'"),
    ("an unknown ladder", "plans.yaml", "    ladder: red-ladder\n  - id: rain", "    ladder: red\n  - id: rain",
     "plan flash-flood-zone: unknown ladder 'red'"),
    ("otherwise without responsible", "plans.yaml", "group_leader, grid_worker], scope: affected }",
     "group_leader, grid_worker], scope: affected, otherwise: none }",
     "'otherwise' is only used with scope responsible"),
    ("a duty room for a village", "duty.yaml", 'area: "330599102"', 'area: "330599102201"',
     "a duty room is a town's or street's (a 9-digit code)"),
    ("a backup number that is not a number", "people.yaml", '- "13900000103"', '- "1390000"',
     "phones '1390000' is not a valid phone number"),
    ("an unknown phone kind", "people.yaml", "kind: satellite", "kind: pager", "unknown kind 'pager'"),
    ("a deputy loop", "people.yaml", '    responsibilities: [{ kind: 包保, areas: ["330599103"] }]',
     '    deputy: wang-jianguo\n    responsibilities: [{ kind: 包保, areas: ["330599103"] }]',
     "deputy cycle: wang-jianguo -> li-weidong -> zhou-min -> wang-jianguo"),
]


@pytest.mark.parametrize(("bad_input", "file", "old", "new", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_organisation_is_reported_at_its_line_and_nothing_loads(
    tmp_path: Path, bad_input: str, file: str, old: str, new: str, message: str
) -> None:
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    path = folder / file
    text = path.read_text()
    assert old in text, bad_input
    path.write_text(text.replace(old, new, 1))
    site, problems = check_site(folder)
    assert site is None
    assert any(p.file == file and message in p.message for p in problems), (bad_input, problems)
    # at the line of the edit (a loop: at the first person of the loop, 王建国)
    line = text[:text.index("wang-jianguo" if "loop" in bad_input else old)].count("\n") + 1
    assert any(p.line in (line, line + 1) for p in problems if message in p.message), (line, problems)


LADDER_ERRORS = [
    ("a plan giving both a ladder and steps",
     "    ladder: red-ladder\n  - id: rain", "    ladder: red-ladder\n    steps: [{ after: 0, channels: [sms] }]\n"
     "  - id: rain", 2, "plan flash-flood-zone: a plan gives either 'ladder' or 'steps', not both"),
    ("a ladder declared twice",
     "ladders:\n", "ladders:\n  red-ladder:\n    steps: [{ after: 0, channels: [voice] }]\n", 4,
     "ladder red-ladder is declared twice (also at line 2)"),
]


@pytest.mark.parametrize(("bad_input", "old", "new", "offset", "message"), LADDER_ERRORS,
                         ids=[e[0] for e in LADDER_ERRORS])
def test_ladder_mistakes_are_refused_at_their_line(
    tmp_path: Path, bad_input: str, old: str, new: str, offset: int, message: str
) -> None:
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    text = (folder / "plans.yaml").read_text()
    assert old in text, bad_input
    (folder / "plans.yaml").write_text(text.replace(old, new, 1))
    site, problems = check_site(folder)
    assert site is None, bad_input
    line = text[:text.index(old)].count("\n") + offset  # the line of the second ladder, or of 'steps'
    assert [(p.file, p.line, p.message) for p in problems] == [("plans.yaml", line, message)], bad_input


# A step none of whose channels can reach someone without a mobile is refused, whoever the step
# reaches them as: each case edits the fixture, and validate names the plan, the step and the person.
STEP0 = "- { after: 0, channels: [sms, voice] }"
UNREACHABLE = [
    ("no number at all, in an SMS-only step",
     [("people.yaml", 'phone: "+8613900000023", ', ""), ("plans.yaml", STEP0, "- { after: 0, channels: [sms] }")],
     "plans.yaml", "    ladder: red-ladder\n    final",
     "plan rainstorm-red: step 1 of ladder red-ladder (sms) cannot reach 白云村干部 (baiyun), reached as target 2 "
     "(town_head, village_flood_officer, group_leader, grid_worker affected): they have no phone number; text "
     "messages need a mobile: give them a mobile in people.yaml"),
    ("a landline only, reached through a town_duty target",
     [("plans.yaml", STEP0, "- { after: 0, channels: [sms] }")],
     "plans.yaml", "    ladder: red-ladder\n    final",
     "plan rainstorm-red: step 1 of ladder red-ladder (sms) cannot reach 龙潭值班长 (lt-duty-chief), "
     "reached as target 4 (town_duty): they have only a landline (+865725010110); text messages need a mobile: "
     "give them a mobile in people.yaml or add voice to the step"),
    ("a landline only, as the deputy in an SMS-only deputy step",
     [("people.yaml", 'phone: "+8613900000004"', 'phone: "0572-5010004"'),
      ("people.yaml", 'area: "330599100", roles: [town_head] }', 'area: "330599100", roles: [town_head],\n'
                                                                '      deputy: xu-haitao }'),
      ("plans.yaml", "{ after: 5m, channels: [voice], to: deputy }", "{ after: 5m, channels: [sms], to: deputy }")],
     "plans.yaml", "    ladder: red-ladder\n    final",
     "plan rainstorm-red: step 2 of ladder red-ladder (sms) cannot reach 徐海涛 (xu-haitao), reached as deputy of "
     "青溪镇长 (qx-head): they have only a landline (+865725010004)"),
    ("no number, as the superior in an SMS and e-mail escalation",
     [("people.yaml", '{ id: by-head, name: 白云镇长, phone: "+8613900000012",', "{ id: by-head, name: 白云镇长,"),
      ("people.yaml", 'area: "330599103201", roles: [village_flood_officer] }',
       'area: "330599103201", roles: [village_flood_officer], superior: by-head }'),
      ("plans.yaml", "final: { after: 20m, to: [duty], channels: [voice] }",
       "final: { after: 20m, to: [superior], channels: [sms, email] }")],
     "plans.yaml", "    final: { after: 20m",
     "plan rainstorm-red: final escalation (sms, email) cannot reach 白云镇长 (by-head), reached as superior of "
     "白云村干部 (baiyun): they have no phone number and no email address; text messages need a mobile"),
    ("a landline only, as the county duty officer in an SMS-only duty escalation",
     [("people.yaml", 'phone: "+8613900000040"', 'phone: "0572-5010040"'),
      ("plans.yaml", "final: { after: 20m, to: [duty], channels: [voice] }",
       "final: { after: 20m, to: [duty], channels: [sms] }")],
     "plans.yaml", "    final: { after: 20m",
     "plan rainstorm-red: final escalation (sms) cannot reach 县值班员 (county-duty), reached as the county duty room: "
     "they have only a landline (+865725010040)"),
]


@pytest.mark.parametrize(("bad_input", "edits", "file", "at", "message"), UNREACHABLE, ids=[u[0] for u in UNREACHABLE])
def test_a_step_that_cannot_reach_someone_without_a_mobile_is_refused(
    tmp_path: Path, bad_input: str, edits: list[tuple[str, str, str]], file: str, at: str, message: str
) -> None:
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    for name, old, new in edits:
        text = (folder / name).read_text()
        assert old in text, (bad_input, old)
        (folder / name).write_text(text.replace(old, new, 1))
    site, problems = check_site(folder)
    assert site is None, bad_input
    text = (folder / file).read_text()
    line = text[:text.index(at)].count("\n") + 1  # the plan's ladder (its steps), or its final escalation
    found = [p for p in problems if message in p.message]
    assert found and (found[0].file, found[0].line) == (file, line), (bad_input, problems)


def landline_deputy(tmp_path: Path) -> Path:
    """The test site with 徐海涛 on a landline only, as 青溪镇长's deputy, whose deputy step is
    [voice, sms]: texted, and reached only by the call."""
    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    people = folder / "people.yaml"
    people.write_text(people.read_text().replace('phone: "+8613900000004"', 'phone: "0572-5010004"').replace(
        'area: "330599100", roles: [town_head] }', 'area: "330599100", roles: [town_head], deputy: xu-haitao }'))
    plans = folder / "plans.yaml"
    plans.write_text(plans.read_text().replace("{ after: 5m, channels: [voice], to: deputy }",
                                               "{ after: 5m, channels: [voice, sms], to: deputy }"))
    return folder


def test_validate_warns_of_a_landline_only_person_a_step_texts_and_agrees_with_preview(tmp_path: Path) -> None:
    """Not refused when another channel of the step reaches them: a readiness gap in validate, the same
    person in the preview of a warning the step runs for."""
    from dispatcher.domain.readiness import site_gaps

    site = load_site(landline_deputy(tmp_path))
    landline = {(g.plan_id, g.subject) for g in site_gaps(site) if g.kind is GapKind.LANDLINE_ONLY}
    # 徐海涛: 青溪镇长's deputy (step 2) and the duty leader (the zone plan's final escalation)
    assert landline == {("rainstorm-red", "lt-duty-chief"), ("rainstorm-red", "xu-haitao"),
                        ("flash-flood-zone", "xu-haitao")}
    rain = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, ("330599",), "qx", AT)).gaps
    zone = resolve(site, WarningFacts(Hazard.FLASH_FLOOD, Level.RED, (), "qx", AT, ("baiyangou",))).gaps
    assert {(g.plan_id, g.subject) for g in rain + zone if g.kind is GapKind.LANDLINE_ONLY} == landline
    said = "徐海涛 (xu-haitao) has only a landline (+865725010004): text messages cannot reach them, calls can"
    assert f"{said} (step 1 for 青溪镇长 (qx-head))" in [g.message for g in rain]


def test_a_step_whose_quiet_hours_hold_the_only_channel_reaching_someone_is_a_readiness_gap(tmp_path: Path) -> None:
    """Quiet hours hold voice at night; a step on [voice, sms] still texts everyone, but a landline-only
    deputy gets a text they cannot receive: validate lists it, and the preview of a warning at 23:00
    does (not one at 21:00, before the quiet hours)."""
    from dispatcher.domain.readiness import site_gaps

    folder = landline_deputy(tmp_path)
    plans = folder / "plans.yaml"
    plans.write_text(plans.read_text().replace(
        "    final: { after: 20m, to: [duty], channels: [voice] }",
        "    final: { after: 20m, to: [duty], channels: [voice] }\n"
        '    quiet_hours: { start: "22:30", end: "06:30", channels: [voice] }'))
    site = load_site(folder)
    night = {g.subject: g for g in site_gaps(site) if g.kind is GapKind.HELD_AT_NIGHT}
    # 徐海涛 as 青溪镇长's deputy (step 2); 龙潭's duty chief, landline only, on step 1 [sms, voice]
    assert sorted(night) == ["lt-duty-chief", "xu-haitao"]
    assert {g.plan_id for g in night.values()} == {"rainstorm-red"}  # flash-flood-zone calls at any hour
    assert ("between 22:30 and 06:30 its quiet hours hold voice, the only channel of step 2 that reaches 徐海涛"
            in night["xu-haitao"].message)
    late = AT.replace(hour=15)  # 23:00 Beijing
    for at, expected in ((late, set(night)), (AT, set())):
        gaps = resolve(site, WarningFacts(Hazard.RAINSTORM, Level.RED, ("330599",), "qx", at)).gaps
        assert {g.subject for g in gaps if g.kind is GapKind.HELD_AT_NIGHT} == expected, at


def test_validate_and_preview_find_the_same_landline_only_people_in_the_sample() -> None:
    """Every warning the sample's plans answer, on every day of the week: the landline-only people its
    previews list are the ones validate lists, plan by plan."""
    from datetime import timedelta

    from dispatcher.domain.readiness import site_gaps

    sample = load_site(Path(__file__).resolve().parents[2] / "rosters" / "qingxi")
    listed = {(g.plan_id, g.subject) for g in site_gaps(sample) if g.kind is GapKind.LANDLINE_ONLY}
    assert listed == {("flash-flood-zone-red", "wu-laosan")}
    towns = [a.code for a in sample.areas if len(a.code) <= 9]
    seen: set[tuple[str, str]] = set()
    for plan in sample.plans:
        for hazard in plan.match.hazards:
            for level in plan.match.levels:
                for day in range(7):
                    at = AT + timedelta(days=day)
                    for areas, zones in [((t,), ()) for t in towns] + [((), (z,)) for z in sample.zones]:
                        res = resolve(sample, WarningFacts(hazard, level, areas, None, at, zones))
                        seen |= {(g.plan_id, g.subject) for g in res.gaps if g.kind is GapKind.LANDLINE_ONLY}
    assert seen == listed


def test_validate_lists_the_areas_nobody_holds_and_the_landline_only_people(tmp_path: Path) -> None:
    from dispatcher.domain.readiness import site_gaps

    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    people = folder / "people.yaml"
    people.write_text(people.read_text().replace(
        'deputy: zhou-min, responsibilities: [{ kind: 包保, areas: ["330599102"] }] }', "deputy: zhou-min }"))
    gaps = site_gaps(load_site(folder))
    assert [g.message for g in gaps if g.kind is GapKind.NO_RESPONSIBLE] == [
        "plan rainstorm-red: nobody with county_leader is responsible for 龙潭镇; a warning there calls above instead"]
    # the landline-only duty chief of 龙潭镇's room is texted at step 1 (sms, voice) as a town_duty target
    assert [g.message for g in site_gaps(load_site(SITE))] == [
        "plan rainstorm-red: step 1 texts 龙潭值班长 (lt-duty-chief), reached as target 4 (town_duty), who has only "
        "a landline (+865725010110): text messages cannot reach them, calls can"]


def test_the_broadcast_of_a_group_goes_to_its_villages_loudspeakers(site: Site) -> None:
    from dispatcher.channels.broadcast import villages

    assert villages(site.areas, ["330599102202001"]) == ["330599102202"]
    assert villages(site.areas, [LONGTAN]) == ["330599102201", "330599102202"]  # villages, not their groups


def test_someone_whose_numbers_are_all_under_phones_is_called_and_texted(tmp_path: Path) -> None:
    """A roster (or a workbook import) may give only `phones` — a satellite phone, say — and no `phone`:
    the preview shows the calls and texts they get, as for anyone with a number."""
    from dispatcher.services.preview import preview

    folder = tmp_path / "organised"
    shutil.copytree(SITE, folder)
    people = folder / "people.yaml"
    people.write_text(people.read_text().replace(
        'phone: "+8613900000020",', 'phones: [{ number: "+8617400012399", kind: satellite }],'))
    site = load_site(folder)
    body = preview(site, "rainstorm", "red", ["330599100"], AT)
    xikou = next(c for c in body["callouts"] if c["official"]["id"] == "xikou")
    assert xikou["official"]["channels"] == ["sms", "voice"]
    assert not [g for g in body["gaps"] if g["subject"] == "xikou" and g["kind"] in ("no_channel", "landline_only")]
