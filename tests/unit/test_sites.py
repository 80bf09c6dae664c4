"""Site files: the sample county validates and loads; each kind of mistake in a copy of it is
reported as ``file:line: message`` with the line of the offending item."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain.channels import Channel
from dispatcher.domain.hazards import Level, accepted_hazards, accepted_levels
from dispatcher.domain.plans import Recipient
from dispatcher.sites import Problem, SiteInvalid, check_site, load_site, site_digest

SAMPLE = Path(__file__).resolve().parents[2] / "rosters" / "qingxi"
TZ = ZoneInfo("Asia/Shanghai")

# Appended to plans.yaml by the plan tests; each test breaks one thing in it.
EXTRA_PLAN = """\
  - id: heat-red
    name: 高温红色预警叫应方案
    match: { hazards: [heat], levels: [red] }
    targets:
      - { roles: [town_head, village_head], scope: affected }
      - { duty: [leader] }
    steps:
      - { after: 0, channels: [sms], to: self }
      - { after: 5m, channels: [voice], to: deputy }
    final: { after: 10m, to: [superior], channels: [sms] }
"""


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    target = tmp_path / "qingxi"
    shutil.copytree(SAMPLE, target)
    return target


def replace(folder: Path, name: str, old: str, new: str, after: str = "") -> int:
    """Replace the first ``old`` (after the text ``after``) in a site file; return its line."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    at = text.index(old, text.index(after) if after else 0)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def line_of(folder: Path, name: str, needle: str) -> int:
    text = (folder / name).read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


def add_plan(folder: Path, *changes: tuple[str, str]) -> int:
    """Append EXTRA_PLAN (with ``old -> new`` changes) to plans.yaml; return its first line."""
    text = EXTRA_PLAN
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = folder / "plans.yaml"
    existing = path.read_text(encoding="utf-8")
    path.write_text(existing + text, encoding="utf-8")
    return existing.count("\n") + 1


def problems(folder: Path) -> list[str]:
    return [str(p) for p in check_site(folder)[1]]


# --- the sample county ---------------------------------------------------------------------------


def test_the_sample_site_has_no_problems() -> None:
    site, found = check_site(SAMPLE)
    assert found == []
    assert site is not None


def test_the_sample_site_loads_its_areas_and_people() -> None:
    site = load_site(SAMPLE)
    assert site.name == "qingxi" and site.tz == TZ
    assert site.areas.roots == ["330599"] and site.areas.name("330599") == "青溪县"
    towns = site.areas.children("330599")
    assert [t.code for t in towns] == ["330599100", "330599101", "330599102", "330599103", "330599200",
                                       "330599201"]
    assert [(v.code, v.name) for v in site.areas.children("330599100")] == [
        ("330599100001", "城关社区"), ("330599100201", "溪口村"), ("330599100202", "下洋村"),
        ("330599100203", "沙湾村"), ("330599100204", "新塘村")]
    assert all(4 <= len(site.areas.children(t.code)) <= 6 for t in towns)
    assert 50 <= len(site.people) <= 150
    head = site.people["chen-guoqiang"]
    assert (head.name, head.area, head.roles, head.superior) == ("陈国强", "330599100", ("town_head",),
                                                                  "wang-jianguo")
    assert site.people["wang-jianguo"].phone == "+8613905720001"
    assert len({p.phone for p in site.people.values()}) == len(site.people)


def test_every_village_of_the_sample_has_a_head_and_a_flood_officer() -> None:
    site = load_site(SAMPLE)
    villages = [a.code for a in site.areas if len(a.code) == 12]
    for code in villages:
        roles = {r for p in site.people.values() if p.area == code for r in p.roles}
        assert {"village_head", "village_flood_officer"} <= roles, code
    both = [p.id for p in site.people.values() if {"village_head", "village_flood_officer"} <= set(p.roles)]
    assert len(both) == 2


def test_the_sample_plans_are_tried_red_first() -> None:
    site = load_site(SAMPLE)
    assert len(site.plans) == 21
    assert [p.match.levels for p in site.plans[:11]] == [frozenset({Level.RED})] * 11
    red = site.plans[0]
    assert red.id == "rainstorm-red"
    assert [(s.after, s.to) for s in red.steps] == [
        (timedelta(0), Recipient.SELF), (timedelta(minutes=3), Recipient.SELF),
        (timedelta(minutes=6), Recipient.DEPUTY), (timedelta(minutes=10), Recipient.SUPERIOR)]
    assert red.final is not None and red.final.after == timedelta(minutes=15)
    assert red.quiet_hours is None and red.broadcast is not None and red.broadcast.repeat == 3
    orange = next(p for p in site.plans if p.id == "rainstorm-orange")
    assert orange.quiet_hours is not None and orange.quiet_hours.channels == (Channel.VOICE,)
    geo = next(p for p in site.plans if p.id == "geohazard-red")
    assert geo.match.senders == ("qingxi-zrzy", "qingxi-qx")


def test_duty_on_monday_comes_from_the_weekly_rota() -> None:
    duty = load_site(SAMPLE).duty
    monday = duty.on_duty(datetime(2026, 7, 13, 9, 0, tzinfo=TZ))
    assert monday is not None and (monday.leader, monday.chief, monday.staff) == (
        "zhou-min", "ye-shaofeng", ("liu-yang",))
    before_handover = duty.on_duty(datetime(2026, 7, 13, 8, 0, tzinfo=TZ))
    assert before_handover is not None and before_handover.leader == "wang-jianguo"  # Sunday's shift


def test_a_dated_shift_overrides_the_weekly_rota() -> None:
    duty = load_site(SAMPLE).duty
    thursday = duty.on_duty(datetime(2026, 7, 16, 11, 12, tzinfo=TZ))
    assert thursday is not None and (thursday.leader, thursday.chief) == ("wang-jianguo", "chen-li")
    next_thursday = duty.on_duty(datetime(2026, 7, 23, 11, 12, tzinfo=TZ))
    assert next_thursday is not None and next_thursday.leader == "chen-li"  # the weekly rota again


def test_a_dated_time_with_an_offset_keeps_its_offset(site_dir: Path) -> None:
    replace(site_dir, "duty.yaml", '"2026-07-16 08:30"', '"2026-07-16T00:30:00+00:00"')
    shift = load_site(site_dir).duty.shifts[0]
    assert shift.start == datetime(2026, 7, 16, 0, 30, tzinfo=UTC)
    assert shift.end == datetime(2026, 7, 17, 8, 30, tzinfo=TZ)


@pytest.mark.parametrize("written", ["13905720001", "+86 139 0572 0001", "139-0572-0001", "+8613905720001"])
def test_a_phone_number_is_stored_in_e164(site_dir: Path, written: str) -> None:
    replace(site_dir, "people.yaml", '"+8613905720001"', f'"{written}"')
    assert load_site(site_dir).people["wang-jianguo"].phone == "+8613905720001"


@pytest.mark.parametrize("mobile", ["+8613812345678", "+8615012345678", "+8618612345678", "+8619912345678"])
def test_mainland_mobile_numbers_pass(site_dir: Path, mobile: str) -> None:
    replace(site_dir, "people.yaml", '"+8613905720001"', f'"{mobile}"')
    assert load_site(site_dir).people["wang-jianguo"].phone == mobile


def test_durations_are_read_as_written(site_dir: Path) -> None:
    add_plan(site_dir, ("after: 5m", "after: 1h30m"), ("after: 10m", "after: 2h"),
             ("after: 0, channels: [sms]", "after: 0s, channels: [sms]"))
    plan = load_site(site_dir).plans[-1]
    assert [s.after for s in plan.steps] == [timedelta(0), timedelta(hours=1, minutes=30)]
    assert plan.final is not None and plan.final.after == timedelta(hours=2)


def test_site_digest_changes_only_when_a_file_changes(site_dir: Path) -> None:
    assert site_digest(site_dir) == site_digest(SAMPLE)
    (site_dir / "duty.yaml").write_bytes((SAMPLE / "duty.yaml").read_bytes())
    assert site_digest(site_dir) == site_digest(SAMPLE)
    replace(site_dir, "duty.yaml", "staff: [liu-yang]", "staff: [zhang-jing]")
    assert site_digest(site_dir) != site_digest(SAMPLE)


# --- file-level problems ---------------------------------------------------------------------------


def test_an_invalid_site_yields_no_site(site_dir: Path) -> None:
    replace(site_dir, "people.yaml", 'phone: "+8613905720001"', 'phone: "+861390572000"')
    site, found = check_site(site_dir)
    assert site is None and len(found) == 1
    with pytest.raises(SiteInvalid) as err:
        load_site(site_dir)
    assert err.value.problems == found
    assert str(found[0]) in str(err.value)


def test_problems_in_several_files_are_all_reported(site_dir: Path) -> None:
    areas = replace(site_dir, "areas.yaml", 'timezone: Asia/Shanghai', 'timezone: Asia/Qingxi')
    duty = replace(site_dir, "duty.yaml", "day: wed", "day: wednesday")
    plans = replace(site_dir, "plans.yaml", "levels: [red]", "levels: [crimson]")
    assert problems(site_dir) == [
        f"areas.yaml:{areas}: unknown time zone 'Asia/Qingxi' (use a name like Asia/Shanghai)",
        f"duty.yaml:{duty}: weekly wednesday: unknown day 'wednesday'; "
        "accepted: mon, tue, wed, thu, fri, sat, sun",
        f"plans.yaml:{plans}: plan rainstorm-red: unknown level 'crimson'; accepted: {accepted_levels()}",
    ]


def test_yaml_syntax_error_is_reported_with_its_line(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "  - id: chen-li\n", "  - id: chen-li: x\n")
    site, found = check_site(site_dir)
    # people.yaml could not be read, so duty.yaml and plans.yaml are not checked against it
    assert site is None
    assert [str(p) for p in found] == [
        f"people.yaml:{line}: invalid YAML: mapping values are not allowed here"]


def test_unclosed_list_is_reported_where_it_starts_and_where_it_breaks(site_dir: Path) -> None:
    line = replace(site_dir, "plans.yaml", "hazards: [typhoon]", "hazards: [typhoon")
    assert problems(site_dir) == [
        f"plans.yaml:{line + 1}: invalid YAML: expected ',' or ']', but got ':' "
        f"(while parsing a flow sequence that starts at line {line})"]


def test_missing_file_is_reported(site_dir: Path) -> None:
    (site_dir / "duty.yaml").unlink()
    assert problems(site_dir) == [f"duty.yaml:1: file is missing: duty.yaml must be in {site_dir}"]


def test_field_given_twice_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "    deputy: li-weidong\n",
                   "    deputy: li-weidong\n    deputy: zhou-min\n")
    assert problems(site_dir) == [
        f"people.yaml:{line + 1}: person wang-jianguo: field 'deputy' is given twice (also at line {line})"]


def test_misspelt_field_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "    deputy: li-weidong", "    depty: li-weidong")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person wang-jianguo: unknown field 'depty' "
        "(accepted: id, name, phone, phones, email, im, area, roles, unit, deputy, superior, responsibilities)"]


def test_problem_prints_as_file_line_message() -> None:
    assert str(Problem("people.yaml", 12, "person x: oops")) == "people.yaml:12: person x: oops"


# --- areas.yaml ------------------------------------------------------------------------------------


def test_duplicate_area_code_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "areas.yaml", '"330599100202", name', '"330599100201", name')
    assert f"areas.yaml:{line}: area 330599100201 (下洋村): duplicate code (first at line {line - 1})" in (
        problems(site_dir))


def test_malformed_division_code_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "areas.yaml", '"330599100203"', '"33059910020"')
    assert f"areas.yaml:{line}: area 33059910020 (沙湾村): code must have 6, 9, 12 or 15 digits " \
           "(county, town, village, or a village's group or grid); '33059910020' has 11" in problems(site_dir)


def test_child_code_not_extending_its_parent_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "areas.yaml", '"330599100204"', '"330599101299"')
    assert f"areas.yaml:{line}: area 330599101299 (新塘村): code does not extend its parent's code " \
           "330599100 (青溪镇): a child's code starts with its parent's and is longer" in (
               problems(site_dir))


# --- people.yaml -----------------------------------------------------------------------------------


def test_duplicate_person_id_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "- id: wang-ting", "- id: zhang-jing")
    first = line_of(site_dir, "people.yaml", "- id: zhang-jing")
    expected = f"people.yaml:{line}: person zhang-jing: duplicate id (first at line {first})"
    assert expected in problems(site_dir)


def test_duplicate_role_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "  forest_ranger: 护林员\n",
                   "  forest_ranger: 护林员\n  town_head: 镇长\n")
    first = line_of(site_dir, "people.yaml", "  town_head: 乡镇长")
    assert problems(site_dir) == [
        f"people.yaml:{line + 1}: role town_head is declared twice (also at line {first})"]


def test_unknown_role_of_a_person_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "roles: [duty_officer]", "roles: [duty_oficer]")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person liu-yang: unknown role 'duty_oficer' (not declared under 'roles:' in "
        "people.yaml)"]


def test_unknown_area_of_a_person_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", 'area: "330599100"', 'area: "330599109"',
                   after="- id: chen-guoqiang")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person chen-guoqiang: unknown area '330599109' (not in areas.yaml)"]


def test_unknown_deputy_and_superior_are_reported(site_dir: Path) -> None:
    deputy = load_site(SAMPLE).people["chen-guoqiang"].deputy
    d_line = replace(site_dir, "people.yaml", "deputy: ", "deputy: ghost-", after="- id: chen-guoqiang")
    s_line = replace(site_dir, "people.yaml", "superior: wang-jianguo", "superior: wang-jiangguo",
                     after="- id: chen-guoqiang")
    assert problems(site_dir) == [
        f"people.yaml:{d_line}: person chen-guoqiang: deputy 'ghost-{deputy}' is not a person in people.yaml",
        f"people.yaml:{s_line}: person chen-guoqiang: superior 'wang-jiangguo' is not a person in "
        "people.yaml",
    ]


def test_deputy_cycle_is_reported_with_the_cycle(site_dir: Path) -> None:
    replace(site_dir, "people.yaml", "deputy: fang-xiaoyan", "deputy: chen-li", after="- id: ye-shaofeng")
    line = line_of(site_dir, "people.yaml", "deputy: ye-shaofeng")  # chen-li's, the earlier of the two
    assert problems(site_dir) == [
        f"people.yaml:{line}: person chen-li: deputy cycle: chen-li -> ye-shaofeng -> chen-li"]


def test_long_deputy_cycle_is_reported_once(site_dir: Path) -> None:
    replace(site_dir, "people.yaml", "deputy: yu-xiaohua", "deputy: wang-jianguo")
    line = line_of(site_dir, "people.yaml", "deputy: li-weidong")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person wang-jianguo: deputy cycle: "
        "wang-jianguo -> li-weidong -> zhou-min -> xu-haitao -> wang-jianguo"]


def test_superior_cycle_is_reported_with_the_cycle(site_dir: Path) -> None:
    line = replace(site_dir, "people.yaml", "superior: li-ming", "superior: zhou-min")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person wang-jianguo: superior cycle: wang-jianguo -> zhou-min -> wang-jianguo"]


def test_being_ones_own_deputy_is_a_cycle(site_dir: Path) -> None:
    deputy = load_site(SAMPLE).people["chen-guoqiang"].deputy
    line = replace(site_dir, "people.yaml", f"deputy: {deputy}", "deputy: chen-guoqiang",
                   after="- id: chen-guoqiang")
    assert problems(site_dir) == [
        f"people.yaml:{line}: person chen-guoqiang: deputy cycle: chen-guoqiang -> chen-guoqiang"]


@pytest.mark.parametrize("bad", ["+861390572000", "12345", "+86013905720001", "call me"])
def test_invalid_phone_number_is_reported(site_dir: Path, bad: str) -> None:
    line = replace(site_dir, "people.yaml", '"+8613905720001"', f'"{bad}"')
    assert problems(site_dir) == [
        f"people.yaml:{line}: person wang-jianguo: phone '{bad}' is not a valid phone number "
        "(e.g. +8613905720001)"]


# --- duty.yaml -------------------------------------------------------------------------------------


def test_unknown_duty_leader_chief_and_staff_are_reported(site_dir: Path) -> None:
    leader = replace(site_dir, "duty.yaml", "leader: xu-haitao", "leader: xu-haitoa")
    chief = replace(site_dir, "duty.yaml", "chief: chen-li", "chief: chen-lee")
    staff = replace(site_dir, "duty.yaml", "staff: [jiang-tao, wang-ting]", "staff: [jiang-tao, wang-tin]")
    assert problems(site_dir) == [
        f"duty.yaml:{chief}: shift 2026-07-16 08:30: chief 'chen-lee' is not a person in people.yaml",
        f"duty.yaml:{staff}: shift 2026-07-17 08:30: staff 'wang-tin' is not a person in people.yaml",
        f"duty.yaml:{leader}: weekly wed: leader 'xu-haitoa' is not a person in people.yaml",
    ]


def test_shift_ending_before_it_starts_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "duty.yaml", 'end: "2026-07-17 08:30"', 'end: "2026-07-16 07:30"')
    assert problems(site_dir) == [
        f"duty.yaml:{line}: shift 2026-07-16 08:30: ends at 2026-07-16 07:30, which is not after its start"]


def test_overlapping_dated_shifts_are_reported(site_dir: Path) -> None:
    first = line_of(site_dir, "duty.yaml", '- start: "2026-07-16 08:30"')
    line = replace(site_dir, "duty.yaml", '- start: "2026-07-17 08:30"', '- start: "2026-07-17 06:00"')
    assert problems(site_dir) == [
        f"duty.yaml:{line}: shift 2026-07-17 06:00: overlaps the shift 2026-07-16 08:30 to 2026-07-17 08:30 "
        f"(line {first})"]


def test_weekly_shift_of_no_hours_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "duty.yaml", "hours: 24", "hours: 0")
    assert problems(site_dir) == [
        f"duty.yaml:{line}: weekly mon: hours must be a number more than 0 (at most 168), found 0"]


# --- plans.yaml ------------------------------------------------------------------------------------


def test_the_extra_plan_used_below_is_valid(site_dir: Path) -> None:
    add_plan(site_dir)
    assert problems(site_dir) == []


def test_duplicate_plan_id_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "plans.yaml", "- id: rainstorm-orange", "- id: rainstorm-red")
    first = line_of(site_dir, "plans.yaml", "- id: rainstorm-red")
    assert problems(site_dir) == [
        f"plans.yaml:{line}: plan rainstorm-red: duplicate id (first at line {first})"]


def test_plan_without_steps_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("""    steps:
      - { after: 0, channels: [sms], to: self }
      - { after: 5m, channels: [voice], to: deputy }
""", "    steps: []\n"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 6}: plan heat-red: no steps: a plan needs at least one step"]


def test_plan_without_targets_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("""    targets:
      - { roles: [town_head, village_head], scope: affected }
      - { duty: [leader] }
""", "    targets: []\n"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 3}: plan heat-red: no targets: "
        "a plan needs at least one target (roles or duty)"]


def test_steps_out_of_time_order_are_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("      - { after: 5m, channels: [voice], to: deputy }\n",
                                "      - { after: 5m, channels: [voice], to: deputy }\n"
                                "      - { after: 3m, channels: [voice], to: superior }\n"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 9}: plan heat-red: step 3: at 3m comes before the previous step (at 5m); "
        "steps must be in time order"]


def test_first_step_not_at_zero_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("after: 0, channels: [sms]", "after: 1m, channels: [sms]"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 7}: plan heat-red: step 1: the first step must be at 0, not 1m"]


def test_final_escalation_not_after_the_last_step_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("final: { after: 10m", "final: { after: 5m"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 9}: plan heat-red: final escalation: at 5m is not after the last step (at 5m)"]


def test_duration_without_unit_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("after: 5m", "after: 5"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 8}: plan heat-red: step 2: 'after' needs a unit: write 5s, 5m or 5h"]


@pytest.mark.parametrize(("old", "new", "offset", "message"), [
    ("hazards: [heat]", "hazards: [heatwave]", 2,
     f"unknown hazard 'heatwave'; accepted: {accepted_hazards()}"),
    ("levels: [red]", "levels: [crimson]", 2, f"unknown level 'crimson'; accepted: {accepted_levels()}"),
    ("channels: [sms], to: self", "channels: [sms, fax], to: self", 7,
     "step 1: unknown channel 'fax'; accepted: sms, voice, im, email"),
    ("to: deputy", "to: boss", 8,
     "step 2: unknown recipient 'boss'; accepted: self, deputy, superior, duty, town_duty"),
    ("to: [superior]", "to: [superior, boss]", 9,
     "final escalation: unknown recipient 'boss'; accepted: self, deputy, superior, duty, town_duty"),
    ("scope: affected", "scope: everywhere", 4,
     "target 1: unknown scope 'everywhere'; accepted: affected, above, fixed, responsible"),
    ("duty: [leader]", "duty: [captain]", 5,
     "target 2: unknown duty position 'captain'; accepted: leader, chief, staff"),
])
def test_unknown_plan_values_are_reported_with_the_accepted_ones(
    site_dir: Path, old: str, new: str, offset: int, message: str
) -> None:
    start = add_plan(site_dir, (old, new))
    assert problems(site_dir) == [f"plans.yaml:{start + offset}: plan heat-red: {message}"]


def test_unknown_role_in_a_plan_target_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("roles: [town_head, village_head]",
                                "roles: [town_head, village_head, village_boss]"))
    assert problems(site_dir) == [
        f"plans.yaml:{start + 4}: plan heat-red: target 1: unknown role 'village_boss' "
        "(not declared under 'roles:' in people.yaml)"]


def test_unknown_fixed_area_of_a_plan_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "plans.yaml", 'area: "330599"', 'area: "330598"')
    assert problems(site_dir) == [
        f"plans.yaml:{line}: plan rainstorm-red: target 2: unknown area '330598' (not in areas.yaml)"]


def test_match_area_outside_the_site_is_reported(site_dir: Path) -> None:
    line = replace(site_dir, "plans.yaml", '["330599101",', '["330600",')
    assert problems(site_dir) == [
        f"plans.yaml:{line}: plan flash-flood-red: "
        "match area '330600' does not overlap the site's areas (330599)"]


def test_area_where_a_plans_roles_reach_nobody_is_reported(site_dir: Path) -> None:
    # bad input: in 枫树村 neither the head nor the flood officer holds their role any more
    after = 'area: "330599101203"\n'
    replace(site_dir, "people.yaml", after + "    roles: [village_head]", after + "    roles: []")
    replace(site_dir, "people.yaml", after + "    roles: [village_flood_officer]", after + "    roles: []")
    found = problems(site_dir)
    line = line_of(site_dir, "plans.yaml", "- id: rainstorm-red")
    assert (f"plans.yaml:{line}: plan rainstorm-red: nobody with roles town_flood_officer, town_head, "
            "town_secretary, village_flood_officer, village_head in 330599101203 (枫树村)") in found
    orange = line_of(site_dir, "plans.yaml", "- id: rainstorm-orange")
    assert (f"plans.yaml:{orange}: plan rainstorm-orange: nobody with roles town_flood_officer, town_head, "
            "village_flood_officer in 330599101203 (枫树村)") in found
    # the village's geohazard monitor still answers for the geohazard plans
    assert not any("geohazard-" in p for p in found)


def test_only_the_topmost_empty_area_is_reported(site_dir: Path) -> None:
    start = add_plan(site_dir, ("roles: [town_head, village_head]", "roles: [forest_ranger]"))
    found = [p for p in problems(site_dir) if "heat-red" in p]
    # 青溪镇 has no forest ranger at all: the town is reported, not each of its villages
    town = f"plans.yaml:{start}: plan heat-red: nobody with role forest_ranger in 330599100 (青溪镇)"
    assert town in found
    assert not any("3305991002" in p or "330599100001" in p for p in found)
    # 石门镇 has one ranger (岩头村): its other villages are reported one by one
    village = f"plans.yaml:{start}: plan heat-red: nobody with role forest_ranger in 330599101201 (石门村)"
    assert village in found
    assert not any("330599101202" in p or "330599101 " in p for p in found)


FALLBACK_PLAN = """\
  - id: county-fallback
    name: 无匹配方案：县值班室叫应
    fallback: true
    targets:
      - { duty: [leader, chief] }
    steps:
      - { after: 0, channels: [sms, voice], to: self }
      - { after: 3m, channels: [voice], to: self }
"""


def test_a_site_may_name_its_own_fallback_plan(site_dir: Path) -> None:
    with open(site_dir / "plans.yaml", "a", encoding="utf-8") as f:
        f.write(FALLBACK_PLAN)
    site = load_site(site_dir)
    assert site.fallback is not None and site.fallback.id == "county-fallback"
    assert site.fallback.id not in {p.id for p in site.plans}  # it answers only what no plan answers
    assert site.fallback.match.levels == {Level.RED, Level.ORANGE}


def test_a_fallback_plan_with_a_match_or_a_second_one_is_refused(site_dir: Path) -> None:
    path = site_dir / "plans.yaml"
    start = path.read_text(encoding="utf-8").count("\n") + 1
    with open(path, "a", encoding="utf-8") as f:
        # bad input: a fallback plan that also names a match, then a second fallback plan
        with_match = "    fallback: true\n    match: { hazards: [heat], levels: [red] }\n"
        f.write(FALLBACK_PLAN.replace("    fallback: true\n", with_match))
        f.write(FALLBACK_PLAN.replace("county-fallback", "another-fallback"))
    found = problems(site_dir)
    assert any(p.startswith(f"plans.yaml:{start + 3}:") and "a fallback plan has no 'match'" in p for p in found), found
    assert any("a second fallback plan (the first is at line" in p for p in found), found
