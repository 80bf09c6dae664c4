"""The sample county as shipped (rosters/qingxi): what its own plans do with its 包保, 包村 and hazard
zones, and which warnings it has plans for. A change to the sample's files that calls the wrong
people fails here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.domain.hazards import Hazard, Level
from dispatcher.domain.rules import Resolution, WarningFacts, resolve
from dispatcher.domain.site import Site
from dispatcher.sites import load_site

SAMPLE = Path(__file__).resolve().parents[2] / "rosters" / "qingxi"
# A Friday (no dated shift): the county's duty leader, 吴国平 (水利局), is no county leader; 龙潭镇's duty
# room has 杨松涛 and 邱美华 on it. A Tuesday: 俞建华 and 周建新 (not 邱美华).
FRIDAY = datetime(2026, 7, 24, 3, 12, tzinfo=UTC)
TUESDAY = datetime(2026, 7, 21, 3, 12, tzinfo=UTC)
LONGTAN, TANTOU, LINGJIAO = "330599102", "330599102202", "330599102204"
COUNTY_LEADERS = {"wang-jianguo", "li-weidong", "zhou-min", "xu-haitao"}


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(SAMPLE)


def warning(site: Site, hazard: Hazard, areas: tuple[str, ...] = (), zones: tuple[str, ...] = (),
            at: datetime = FRIDAY, level: Level = Level.RED) -> Resolution:
    return resolve(site, WarningFacts(hazard, level, areas, None, at, zones))


def test_a_red_rainstorm_in_longtan_reaches_the_leader_who_baobao_it_and_no_other_county_leader(site: Site) -> None:
    res = warning(site, Hazard.RAINSTORM, (LONGTAN,))
    leaders = {c.person_id: c for c in res.callouts if c.person_id in COUNTY_LEADERS}
    assert set(leaders) == {"zhou-min"}  # 周敏 包保 龙潭镇 (and 白云镇); 王建国, 李卫东, 徐海涛 other towns
    assert (leaders["zhou-min"].plan_id, leaders["zhou-min"].target, leaders["zhou-min"].reason) == (
        "rainstorm-red", 1, "包保龙潭镇")
    # every town has its leader: the sample has no readiness gap for 包保
    assert not [g for g in res.gaps if g.kind.value == "no_responsible"]


def test_a_zone_warning_reaches_exactly_the_zones_villages_and_its_monitor(site: Site) -> None:
    """白岩沟小流域: 潭头村 and 大坑村 of 龙潭镇, 松坑一组 of 白云镇."""
    res = warning(site, Hazard.FLASH_FLOOD, zones=("baiyangou",))
    assert res.plans == ("flash-flood-zone-red", "flash-flood-red")
    by_seat = {c.person_id: site.people[c.person_id].area for c in res.callouts}
    villages = {p for p, seat in by_seat.items() if len(seat) >= 12}
    assert villages == {
        "hu-lixin", "yang-jianxin", "hu-dagen", "hu-xiaoping", "wu-laosan", "lou-genfa",  # 潭头村 and its groups
        "lu-lijun", "li-shulin",  # 大坑村
        "zheng-shuigen", "zhang-lijun", "zheng-chunyan",  # 松坑一组, and 松坑村's cadres who answer for it
    }  # not 松坑二组 (郑晓云), not 龙潭村, 岭脚村 or any other village
    assert res.callout_for("lou-genfa").reason.startswith("白岩沟小流域监测员")
    # above the villages: the two towns' duty rooms, and the county's flash-flood plan (周敏 包保 both towns)
    towns = {p: res.callout_for(p).reason for p, seat in by_seat.items() if len(seat) == 9}
    assert towns == {"yang-songtao": "龙潭镇值班室值班领导", "qiu-meihua": "龙潭镇值班室值班长",
                     "fang-yunfei": "白云镇值班室值班领导", "shi-ronghua": "白云镇值班室值班长"}
    county = {p for p, seat in by_seat.items() if len(seat) == 6}
    assert county == {"zhou-min", "chen-li", "wu-guoping", "zheng-hailin", "fang-xiaoyan"}
    assert res.callout_for("zhou-min").reason == "包保龙潭镇、白云镇"


def test_a_village_warning_reaches_the_town_cadre_who_baocun_it(site: Site) -> None:
    """邱美华 (龙潭镇防汛副镇长) 包村 龙潭村、潭头村、大坑村: called for a rainstorm in 潭头村, not 岭脚村."""
    res = warning(site, Hazard.RAINSTORM, (TANTOU,), at=TUESDAY)
    qiu = res.callout_for("qiu-meihua")
    assert qiu is not None and (qiu.plan_id, qiu.target, qiu.reason) == ("rainstorm-red", 4, "包村潭头村")
    assert warning(site, Hazard.RAINSTORM, (LINGJIAO,), at=TUESDAY).callout_for("qiu-meihua") is None
    # a town warning reaches her as the town's flood officer, the target before
    assert warning(site, Hazard.RAINSTORM, (LONGTAN,), at=TUESDAY).callout_for("qiu-meihua").target == 3


# Issue item 8: the red and orange warnings a county receives, by the hazard codes plans.yaml uses.
HAZARDS = ["rainstorm", "flash_flood", "geohazard", "typhoon", "forest_fire", "heat", "cold_wave", "gale", "hail",
           "road_icing", "fog", "blizzard", "thunderstorm_gale"]


@pytest.mark.parametrize("hazard", HAZARDS)
@pytest.mark.parametrize("level", ["red", "orange"])
def test_the_sample_has_a_plan_for_every_red_and_orange_warning_it_receives(site: Site, hazard: str,
                                                                           level: str) -> None:
    plans = [p.id for p in site.plans if Hazard(hazard) in p.match.hazards and Level(level) in p.match.levels]
    assert plans, f"no {level} plan for {hazard}"
    # a warning for a mountain town (every plan covers 石门镇) is answered by a plan, not the fallback
    res = warning(site, Hazard(hazard), ("330599101",), level=Level(level))
    assert res.fallback is None and res.plans[0] in plans and res.callouts
