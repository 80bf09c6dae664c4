#!/usr/bin/env python
"""Site scale bench: validate, load and preview a synthetic county of any size.

    .venv/bin/python bench/sites.py --people 5000
    .venv/bin/python bench/sites.py --people 60000 [--towns 20 --villages 25 --groups 4]
    .venv/bin/python bench/sites.py --people 60000 --in-process --cprofile 30   # where the time goes

Targets (2-core machine): ``jiaoying validate`` + ``jiaoying load`` of a 5,000-person site within
5 s, ``jiaoying preview`` within 1 s.

The county (written into a temporary folder, removed at the end unless --keep) uses every feature of
the site files, in the proportions of a county organised as the sample is:

- areas.yaml: the county, ``--towns`` towns of ``--villages`` villages each, each village with
  ``--groups`` 村民小组 (15-digit codes: the village's code plus three digits). When the validator
  does not take 15-digit codes yet (probed on a one-area site), the groups are left out and their
  people sit in the village. Hazard zones in the mountain towns (3 of every 5 towns), one per five
  villages: 小流域 of two villages (the first of each town's crossing into the next town), 山洪危险区
  of two groups, 地质灾害隐患点 of one village, 水库下游 of two villages.
- people.yaml: the county secretary; 8 county leaders, each 包保 two or three towns
  (``responsibilities``); 7 department heads with their deputies (AB岗); duty officers; per town a
  乡镇长, 党委书记 and three 防汛责任人 who 包村 the town's villages between them; per village a 村主任,
  a 村防汛责任人 and (in mountain villages) a 地灾群测群防员 and a 护林员; per zone a 监测员 responsible
  for it; per group a 组长, and the rest of ``--people`` as 联户责任人 spread over the groups.
  Everyone has a mobile and an IM address, county and town officials an e-mail; county and town
  officials also an office landline (``phones``), the county leaders a backup mobile first, the zone
  monitors a satellite phone; one 联户责任人 in a hundred has only a landline (and WeCom).
  Deputies and superiors form the usual chains (户 -> 组长 -> 村主任 -> 乡镇长 -> 县领导).
- duty.yaml: the county's weekly 1+1+X rota and 62 dated shifts (July and August), and a duty room
  (``rooms``) for every town with its own weekly rota.
- plans.yaml: the 21 plans of rosters/qingxi/plans.yaml (red and orange, for each hazard the sample
  names; the same targets, final escalations, broadcasts, quiet hours), their steps from three named
  ``ladders``; county leaders by ``scope: responsible`` (包保), the 包村 cadres and the zones' monitors
  likewise, town duty rooms by ``town_duty`` (as targets and as a step's recipient); 组长 added to
  every plan (a plan must reach someone in each group it covers) and 联户责任人 to the red rainstorm
  and typhoon plans (叫应到组到户).

Figures, each in wall-clock seconds and this process's CPU seconds (the one to trust when other
work shares the cores), each phase by default in a fresh interpreter as the CLI runs each command,
with that process's peak RSS (resource.getrusage):

- validate: what ``jiaoying validate`` does, minus printing: ``check_site``, then the readiness
  gaps it lists (``readiness.site_gaps`` and ``carrier_gaps.template_gaps``), shown apart;
- migrate: ``alembic upgrade head`` on a fresh SQLite file (``jiaoying db upgrade``), apart;
- load: ``load_site_files`` in one transaction, committed (``jiaoying load``): split into its
  check_site, its sync_site and the commit;
- reload: the same again with nothing changed (must report "no changes");
- resolve: ``rules.resolve`` for a county-wide red rainstorm warning on the Site from the files;
- preview: ``services.preview.preview`` on ``services.site.current_site(session)``, as
  ``jiaoying preview`` and ``GET /api/v1/plans/preview`` do: cold (the site read back from the
  database: the CLI, and the API's first request after a load; its first ``rate_limits()`` imports
  every provider adapter, shown apart) and warm (the API's cached site).

``--in-process`` runs every phase in this process (peak RSS is then the running peak) and is the
mode to profile in: ``--cprofile N`` prints each phase's top N functions by own time, or run the
whole thing under py-spy:

    .venv/bin/py-spy record -o /tmp/sites.txt -f raw -- .venv/bin/python bench/sites.py --people 60000 --in-process
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine  # noqa: E402

COUNTY = "330599"
SITE = "scale"
WARNING_AT = "2026-07-16T03:10:00+08:00"  # inside a dated shift

_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
             "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
_GIVEN = "建国明华伟芳娜敏静丽强磊军洋勇艳杰娟涛超秀霞平刚桂英海燕玉兰志红林峰晓东卫亮春梅文斌宏云飞鹏辉成俊"
_TOWN_NAMES = ["青山", "石门", "龙潭", "白云", "桃源", "竹林", "溪口", "大洋", "枫岭", "松坑",
               "岭下", "梅坞", "黄泥", "茶坪", "上坪", "新塘", "沙湾", "高桥", "云峰", "天池"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the synthetic county ------------------------------------------------------------------------

def person_name(n: int) -> str:
    g = len(_GIVEN)
    given = _GIVEN[(n // len(_SURNAMES)) % g] + ("" if n % 3 == 0 else _GIVEN[(n * 7 + 3) % g])
    return _SURNAMES[n % len(_SURNAMES)] + given


def town_name(t: int) -> str:
    base = _TOWN_NAMES[t % len(_TOWN_NAMES)]
    return (base if t < len(_TOWN_NAMES) else f"{base}{t // len(_TOWN_NAMES) + 1}") + ("镇" if t % 4 else "乡")


def q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


ROLES = {
    "county_leader": "县领导(包保)", "emergency_head": "应急管理局局长", "water_head": "水利局局长",
    "natres_head": "自然资源和规划局局长", "met_head": "气象局局长", "forestry_head": "林业局局长",
    "transport_head": "交通运输局局长", "agri_head": "农业农村局局长",
    "duty_officer": "县应急值班员", "town_head": "乡镇长", "town_secretary": "乡镇党委书记",
    "town_flood_officer": "乡镇防汛责任人", "village_head": "村党组织书记/村主任",
    "village_flood_officer": "村防汛责任人", "geohazard_monitor": "地质灾害群测群防员",
    "forest_ranger": "护林员", "zone_monitor": "山洪灾害监测员", "group_leader": "村民小组长",
    "household_contact": "联户责任人",
}
HEADS = (("emergency_head", "县应急管理局"), ("water_head", "县水利局"), ("natres_head", "县自然资源和规划局"),
         ("met_head", "县气象局"), ("forestry_head", "县林业局"), ("transport_head", "县交通运输局"),
         ("agri_head", "县农业农村局"))
LEADERS = 8
LANDLINE_EVERY = 100  # one 联户责任人 in a hundred has only a landline


class County:
    """Writes the four files; keeps the ids it needs for chains, duty and zones."""

    def __init__(self, people: int, towns: int, villages: int, groups: int, group_areas: bool) -> None:
        self.target, self.towns, self.villages, self.groups = people, towns, villages, groups
        self.group_areas = group_areas
        self.n = 0  # people written so far
        self.lines: list[str] = []
        self.mountain = {f"{COUNTY}{100 + t:03d}" for t in range(towns) if t % 5 in (1, 2, 3)}
        self.zones = self._zones()

    def town(self, t: int) -> str:
        return f"{COUNTY}{100 + t:03d}"

    def village(self, t: int, v: int) -> str:
        return f"{self.town(t)}{201 + v:03d}"

    def _zones(self) -> list[tuple[str, str, str, list[str]]]:
        """(id, name, kind, areas): one zone per five villages of each mountain town."""
        zones = []
        for t in range(self.towns):
            if self.town(t) not in self.mountain:
                continue
            tname = town_name(t)
            for j in range(self.villages // 5):
                v = 5 * j + j % 4  # the zones' villages differ from one zone to the next
                kind = ("small_watershed", "flash_flood_zone", "geohazard_point", "reservoir_downstream")[j % 4]
                first = self.village(t, v)
                if kind == "small_watershed":
                    crossing = j == 0 and self.town(t + 1) in self.mountain  # across into the next town
                    areas = [first, self.village(t + 1, 0) if crossing else self.village(t, v + 1)]
                    name = f"{tname}第{v + 1}村小流域"
                elif kind == "flash_flood_zone" and self.group_areas and self.groups >= 2:
                    areas, name = [f"{first}001", f"{first}002"], f"{tname}第{v + 1}村山洪危险区"
                elif kind == "geohazard_point" or kind == "flash_flood_zone":
                    areas, name = [first], f"{tname}第{v + 1}村滑坡隐患点"
                    kind = "geohazard_point"
                else:
                    areas, name = [first, self.village(t, v + 1)], f"{tname}第{v + 1}村水库下游"
                zones.append((f"t{t}z{j}", name, kind, list(dict.fromkeys(areas))))
        return zones

    # people.yaml ----------------------------------------------------------------------------

    def person(self, pid: str, area: str, roles: list[str], unit: str, deputy: str | None = None,
               superior: str | None = None, email: bool = False, comment: str = "", phones: tuple[str, ...] = (),
               landline_only: bool = False, duties: tuple[str, ...] = ()) -> str:
        self.n += 1
        phone = f"+86139{self.n:08d}"
        out = self.lines
        out.append(f"  - id: {pid}")
        out.append(f"    name: {person_name(self.n)}")
        out.append(f"    unit: {unit}" + (f"  # {comment}" if comment else ""))
        if landline_only:  # an office or home landline: calls reach them, text messages cannot
            out.append(f"    phone: {q(f'0572-5{self.n % 1000000:06d}')}")
            out.append(f"    im: {{ wecom: {pid} }}")
        else:
            out.append(f"    phone: {q(phone)}")
            if phones:
                out.append(f"    phones: [{', '.join(phones)}]")
            out.append(f"    im: {{ dingtalk: {q(phone)} }}")
        if email:
            out.append(f"    email: {pid}@{SITE}.gov.cn")
        out.append(f"    area: {q(area)}")
        if roles:
            out.append(f"    roles: [{', '.join(roles)}]")
        if deputy:
            out.append(f"    deputy: {deputy}")
        if superior:
            out.append(f"    superior: {superior}")
        if duties:
            out.append("    responsibilities:")
            out += [f"      - {d}" for d in duties]
        return pid

    def office(self) -> str:
        """The office landline of the person being written (the next one): voice only."""
        return f"{{ number: {q(f'0572-6{(self.n + 1) % 1000000:06d}')}, kind: landline }}"

    def fixed_people(self) -> int:
        """How many people the county, towns, villages, zones and 组长 take (the rest are 联户责任人)."""
        per_village = sum(2 + (self.town(t) in self.mountain) * 2 for t in range(self.towns))
        county = 1 + LEADERS + len(HEADS) * 2 + 6  # secretary, leaders, heads and their deputies, duty officers
        return (county + self.towns * 5 + per_village * self.villages + len(self.zones)
                + self.towns * self.villages * self.groups)

    def people_yaml(self) -> str:
        out = self.lines
        out.append("# 压测县（合成）防汛防台、地质灾害、森林防火责任人名单。电话为虚构号码。")
        out.append("roles:")
        out += [f"  {rid}: {name}" for rid, name in ROLES.items()]
        out.append("")
        out.append("people:")
        out.append("  # ---- 县领导（包保领导：每人包保两到三个乡镇） ----")
        secretary = self.person("county-secretary", COUNTY, [], "县委", email=True, comment="县委书记：县长的上级",
                                phones=(self.office(),))
        leaders = [f"county-leader-{i}" for i in range(1, LEADERS + 1)]
        for i, pid in enumerate(leaders):
            towns = [q(self.town(t)) for t in range(self.towns) if t % LEADERS == i]
            backup = q(f"+86138{self.n + 1:08d}")
            self.person(pid, COUNTY, ["county_leader"], "县人民政府",
                        deputy=leaders[i + 1] if i + 1 < LEADERS else None,
                        superior=secretary if i == 0 else leaders[0], email=True, phones=(backup, self.office()),
                        duties=(f"{{ kind: 包保, areas: [{', '.join(towns)}] }}",) if towns else ())
        out.append("  # ---- 县级部门负责人（AB岗：局长 A、副局长 B） ----")
        self.heads = {}
        for k, (role, unit) in enumerate(HEADS):
            head, deputy = f"{role.replace('_', '-')}", f"{role.replace('_', '-')}-b"
            self.person(head, COUNTY, [role], unit, deputy=deputy, superior=leaders[1 + k % 7], email=True,
                        phones=(self.office(),))
            self.person(deputy, COUNTY, [], unit, superior=head, email=True, comment="副局长")
            self.heads[role] = head
        self.duty_officers = [self.person(f"duty-{i}", COUNTY, ["duty_officer"], "县应急管理局", email=True,
                                          superior=self.heads["emergency_head"]) for i in range(1, 7)]
        self.leaders = leaders
        monitors: dict[str, list[tuple[str, str]]] = {}  # village -> the zones seated there
        for zid, _, _, areas in self.zones:
            monitors.setdefault(areas[0][:12], []).append((zid, areas[0]))
        contacts = max(0, self.target - self.fixed_people())
        total_groups = self.towns * self.villages * self.groups
        given = 0
        for t in range(self.towns):
            town = self.town(t)
            tname = town_name(t)
            out.append(f"  # ---- {tname}（{town}） ----")
            gov = f"{tname}人民政府"
            head = f"t{t}-head"
            self.person(head, town, ["town_head"], gov, deputy=f"t{t}-secretary", superior=leaders[t % LEADERS],
                        email=True, phones=(self.office(),))
            self.person(f"t{t}-secretary", town, ["town_secretary"], f"{tname}党委", superior=leaders[t % LEADERS],
                        email=True, phones=(self.office(),))
            officers = []
            for k in range(3):  # 包村: the town's villages between its three flood officers
                villages = [q(self.village(t, v)) for v in range(self.villages) if v % 3 == k]
                officers.append(self.person(
                    f"t{t}-flood-{k + 1}", town, ["town_flood_officer"], gov, superior=head, email=True,
                    comment="包村干部", phones=(self.office(),),
                    duties=(f"{{ kind: 包村, areas: [{', '.join(villages)}] }}",) if villages else ()))
            for v in range(self.villages):
                village = self.village(t, v)
                vname = f"{tname}第{v + 1}村村委会"
                vh = self.person(f"t{t}v{v}-head", village, ["village_head"], vname, superior=head)
                vf = self.person(f"t{t}v{v}-flood", village, ["village_flood_officer"], vname, deputy=vh,
                                 superior=officers[v % 3])
                if town in self.mountain:
                    self.person(f"t{t}v{v}-geo", village, ["geohazard_monitor"], vname, superior=vh)
                    self.person(f"t{t}v{v}-ranger", village, ["forest_ranger"], vname, superior=vh)
                for zid, seat in monitors.get(village, ()):
                    satellite = f"{{ number: {q(f'+86174000{self.n + 1:05d}')}, kind: satellite }}"
                    self.person(f"{zid}-monitor", seat if self.group_areas else village, ["zone_monitor"], vname,
                                superior=vh, phones=(satellite,), duties=(f"{{ kind: 监测员, zones: [{zid}] }}",))
                for g in range(self.groups):
                    seat = f"{village}{1 + g:03d}" if self.group_areas else village
                    gl = self.person(f"t{t}v{v}g{g}-leader", seat, ["group_leader"], f"第{g + 1}村民小组",
                                     deputy=vf, superior=vh)
                    index = (t * self.villages + v) * self.groups + g
                    share = contacts * (index + 1) // total_groups - given
                    for h in range(share):
                        self.person(f"t{t}v{v}g{g}-h{h}", seat, ["household_contact"], f"第{g + 1}村民小组",
                                    deputy=gl, superior=gl, landline_only=(given + h) % LANDLINE_EVERY == 7)
                    given += share
        return "\n".join(out) + "\n"

    # areas.yaml -----------------------------------------------------------------------------

    def areas_yaml(self) -> str:
        out = ["# 压测县（合成）行政区划：县 - 乡镇 - 村 - 村民小组。代码是字符串，请加引号。",
               f"site: {SITE}", "name: 压测县", "timezone: Asia/Shanghai", "areas:",
               f"  - code: {q(COUNTY)}", "    name: 压测县", "    children:"]
        for t in range(self.towns):
            town = self.town(t)
            out += [f"      - code: {q(town)}", f"        name: {town_name(t)}", "        children:"]
            for v in range(self.villages):
                village = self.village(t, v)
                note = "  # 山区：小组的代码是村代码加三位" if town in self.mountain and v == 0 else ""
                if not self.group_areas or not self.groups:
                    out.append(f"          - {{ code: {q(village)}, name: 第{v + 1}村 }}{note}")
                    continue
                out += [f"          - code: {q(village)}{note}", f"            name: 第{v + 1}村",
                        "            children:"]
                out += [f"              - {{ code: {q(f'{village}{1 + g:03d}')}, name: 第{g + 1}组 }}"
                        for g in range(self.groups)]
        if self.zones:
            out.append("zones:  # 危险区、隐患点、小流域、水库下游（小流域可跨乡镇）")
            for zid, name, kind, areas in self.zones:
                codes = [a if self.group_areas else a[:12] for a in areas]
                out.append(f"  - {{ id: {zid}, name: {name}, kind: {kind}, "
                           f"areas: [{', '.join(q(a) for a in dict.fromkeys(codes))}] }}")
        return "\n".join(out) + "\n"

    # duty.yaml ------------------------------------------------------------------------------

    def duty_yaml(self) -> str:
        leaders, officers = self.leaders, self.duty_officers
        chiefs = [self.heads["emergency_head"], "emergency-head-b"]
        out = ["# 县应急管理局值班表（1+1+X）。日期值班优先；其余时间按每周轮值。", "shifts:"]
        day0 = datetime(2026, 7, 1)
        for d in range(62):
            start = day0.toordinal() + d
            a, b = datetime.fromordinal(start), datetime.fromordinal(start + 1)
            out += [f"  - start: \"{a:%Y-%m-%d} 08:30\"", f"    end: \"{b:%Y-%m-%d} 08:30\"",
                    f"    leader: {leaders[d % LEADERS]}", f"    chief: {chiefs[d % 2]}",
                    f"    staff: [{officers[d % 6]}, {officers[(d + 3) % 6]}]"]
        out.append("weekly:")
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        for i, day in enumerate(days):
            out += [f"  - day: {day}", "    start: \"08:30\"", "    hours: 24", f"    leader: {leaders[i]}",
                    f"    chief: {chiefs[i % 2]}", f"    staff: [{officers[i % 6]}]"]
        out.append("rooms:  # 乡镇值班室：乡镇长、党委书记轮流带班，三名防汛责任人轮任值班长")
        for t in range(self.towns):
            out += [f"  - area: {q(self.town(t))}", f"    name: {town_name(t)}值班室",
                    f"    phone: {q(f'0572-7{t:06d}')}", "    weekly:"]
            out += [f"      - {{ day: {day}, start: \"08:30\", hours: 24, "
                    f"leader: t{t}-{'head' if i % 2 == 0 else 'secretary'}, chief: t{t}-flood-{i % 3 + 1} }}"
                    for i, day in enumerate(days)]
        return "\n".join(out) + "\n"

    # plans.yaml -----------------------------------------------------------------------------

    def plans_yaml(self) -> str:
        mountain = ", ".join(q(a) for a in sorted(self.mountain))
        zones = ", ".join(z[0] for z in self.zones if z[2] in ("small_watershed", "flash_flood_zone"))
        out = ["# 压测县叫应方案（与 rosters/qingxi/plans.yaml 同形）。按文件顺序匹配。", "ladders:",
               "  red:", "    steps:",
               "      - { after: 0, channels: [sms, im], to: self }",
               "      - { after: 3m, channels: [voice], to: self }",
               "      - { after: 6m, channels: [voice, sms], to: deputy }",
               "      - { after: 10m, channels: [voice], to: superior }",
               "    final: { after: 15m, to: [superior, duty], channels: [sms, voice] }",
               "  red-zone:", "    steps:",
               "      - { after: 0, channels: [sms, voice], to: self }",
               "      - { after: 3m, channels: [voice], to: self }",
               "      - { after: 6m, channels: [voice, sms], to: deputy }",
               "      - { after: 10m, channels: [voice], to: town_duty }",
               "    final: { after: 15m, to: [superior, duty], channels: [sms, voice] }",
               "  orange:", "    steps:",
               "      - { after: 0, channels: [sms, im], to: self }",
               "      - { after: 10m, channels: [voice], to: self }",
               "      - { after: 20m, channels: [voice, sms], to: deputy }",
               "      - { after: 30m, channels: [voice], to: superior }",
               "    final: { after: 40m, to: [superior, duty], channels: [sms, voice] }",
               "plans:"]
        leader = "{ roles: [county_leader], scope: responsible }"
        baocun = "{ roles: [town_flood_officer], scope: responsible, otherwise: none }"
        monitors = "{ roles: [zone_monitor, geohazard_monitor], scope: responsible, otherwise: none }"
        town_duty = "{ town_duty: [leader, chief] }"
        senders = "scale-zrzy, scale-qx"

        def fixed(roles: str) -> str:
            return f"{{ roles: [{roles}], scope: fixed, area: {q(COUNTY)} }}"

        def affected(roles: str, above: bool = False) -> str:
            return f"{{ roles: [{roles}], scope: {'[affected, above]' if above else 'affected'} }}"

        def duty(positions: str) -> str:
            return f"{{ duty: [{positions}] }}"

        grass = "village_head, village_flood_officer, group_leader"
        plans = [  # (id, name, hazards, level, match extra, targets, broadcast)
            ("rainstorm-red", "暴雨红色预警叫应方案", "rainstorm", "red", {}, [
                leader, fixed("emergency_head, water_head, met_head"),
                affected(f"town_head, town_secretary, town_flood_officer, {grass}, household_contact"), baocun,
                monitors, duty("leader, chief"), town_duty], 3),
            ("flash-flood-zone-red", "山洪灾害危险区红色预警叫应方案", "flash_flood", "red", {"zones": zones}, [
                "{ roles: [zone_monitor], scope: responsible, otherwise: none }", affected(grass), town_duty], 3),
            ("flash-flood-red", "山洪灾害红色预警叫应方案", "flash_flood", "red", {"areas": mountain}, [
                leader, fixed("emergency_head, water_head, natres_head"),
                affected(f"town_head, town_flood_officer, {grass}"), duty("leader, chief"), town_duty], 3),
            ("geohazard-red", "地质灾害气象风险红色预警叫应方案", "geohazard", "red",
             {"areas": mountain, "senders": senders}, [
                leader, fixed("emergency_head, natres_head"),
                affected("town_head, town_flood_officer, village_head, geohazard_monitor, group_leader"), monitors,
                duty("leader, chief"), town_duty], 3),
            ("typhoon-red", "台风红色预警叫应方案", "typhoon", "red", {}, [
                leader, fixed("emergency_head, water_head, met_head, natres_head"),
                affected(f"town_head, town_secretary, town_flood_officer, {grass}, household_contact"),
                duty("leader, chief"), town_duty], 3),
            ("thunderstorm-gale-red", "雷雨大风红色预警叫应方案", "thunderstorm_gale", "red", {}, [
                leader, fixed("emergency_head, met_head"),
                affected("town_head, town_flood_officer, village_head, group_leader"), duty("leader, chief"),
                town_duty], 2),
            ("forest-fire-red", "森林火险红色预警叫应方案", "forest_fire", "red", {"areas": mountain}, [
                leader, fixed("emergency_head, forestry_head"),
                affected("town_head, town_secretary, village_head, forest_ranger, group_leader"),
                duty("leader, chief")], 3),
            ("gale-hail-red", "大风、冰雹红色预警叫应方案", "gale, hail", "red", {}, [
                fixed("emergency_head, met_head, agri_head"), affected("town_head, village_head, group_leader"),
                duty("leader, chief")], 0),
            ("cold-snow-ice-red", "寒潮、暴雪、道路结冰红色预警叫应方案", "cold_wave, blizzard, road_icing", "red",
             {}, [
                leader, fixed("emergency_head, met_head, transport_head, agri_head"),
                affected("town_head, village_head, group_leader"), duty("leader, chief")], 0),
            ("high-temperature-red", "高温红色预警叫应方案", "heat", "red", {}, [
                fixed("emergency_head, met_head, agri_head"), affected("town_head, village_head, group_leader"),
                duty("chief")], 0),
            ("fog-red", "大雾红色预警叫应方案", "fog", "red", {}, [
                fixed("emergency_head, transport_head"), affected("town_head, group_leader", above=True),
                duty("chief")], 0),
            ("rainstorm-orange", "暴雨橙色预警叫应方案", "rainstorm", "orange", {}, [
                fixed("emergency_head, water_head"),
                affected("town_head, town_flood_officer, village_flood_officer, group_leader"), duty("chief")], 0),
            ("flash-flood-orange", "山洪灾害橙色预警叫应方案", "flash_flood", "orange", {"areas": mountain}, [
                fixed("water_head"), affected("town_flood_officer, village_flood_officer, group_leader"),
                "{ roles: [zone_monitor], scope: responsible, otherwise: none }", duty("chief")], 0),
            ("geohazard-orange", "地质灾害气象风险橙色预警叫应方案", "geohazard", "orange",
             {"areas": mountain, "senders": senders}, [
                fixed("natres_head"),
                affected("town_flood_officer, village_head, geohazard_monitor, group_leader"), duty("chief")], 0),
            ("typhoon-orange", "台风橙色预警叫应方案", "typhoon", "orange", {}, [
                fixed("emergency_head, met_head"),
                affected("town_head, town_flood_officer, village_flood_officer, group_leader"), duty("chief")], 0),
            ("thunderstorm-gale-orange", "雷雨大风橙色预警叫应方案", "thunderstorm_gale", "orange", {}, [
                fixed("emergency_head, met_head"), affected("town_head, town_flood_officer, group_leader", above=True),
                duty("chief")], 0),
            ("forest-fire-orange", "森林火险橙色预警叫应方案", "forest_fire", "orange", {"areas": mountain}, [
                fixed("forestry_head"), affected("town_head, village_head, forest_ranger, group_leader"),
                duty("chief")], 0),
            ("gale-hail-orange", "大风、冰雹橙色预警叫应方案", "gale, hail", "orange", {}, [
                fixed("met_head, agri_head"), affected("town_head, group_leader", above=True), duty("chief")], 0),
            ("cold-snow-ice-orange", "寒潮、暴雪、道路结冰橙色预警叫应方案", "cold_wave, blizzard, road_icing",
             "orange", {}, [fixed("transport_head, agri_head"), affected("town_head, group_leader", above=True),
                            duty("chief")], 0),
            ("high-temperature-orange", "高温橙色预警叫应方案", "heat", "orange", {}, [
                fixed("met_head, agri_head"), affected("town_head, group_leader", above=True), duty("chief")], 0),
            ("fog-orange", "大雾橙色预警叫应方案", "fog", "orange", {}, [
                fixed("transport_head"), affected("town_head, group_leader", above=True), duty("chief")], 0),
        ]
        for pid, name, hazards, level, match, targets, broadcast in plans:
            red = level == "red"
            out += [f"  - id: {pid}", f"    name: {name}", "    match:", f"      hazards: [{hazards}]",
                    f"      levels: [{level}]"]
            if match.get("areas"):
                out.append(f"      areas: [{match['areas']}]  # 山区乡镇")
            if match.get("senders"):
                out.append(f"      senders: [{match['senders']}]")
            if match.get("zones"):
                out.append(f"      zones: [{match['zones']}]")
            out.append("    targets:")
            out += [f"      - {t}" for t in targets]
            out.append(f"    ladder: {('red-zone' if 'zones' in match else 'red') if red else 'orange'}")
            if broadcast:
                out.append(f"    broadcast: {{ repeat: {broadcast} }}")
            if not red:
                out.append('    quiet_hours: { start: "22:30", end: "06:30", channels: [voice] }')
        return "\n".join(out) + "\n"

    def write(self, folder: Path) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "people.yaml").write_text(self.people_yaml(), encoding="utf-8")
        (folder / "areas.yaml").write_text(self.areas_yaml(), encoding="utf-8")
        (folder / "duty.yaml").write_text(self.duty_yaml(), encoding="utf-8")
        (folder / "plans.yaml").write_text(self.plans_yaml(), encoding="utf-8")
        return self.n


def takes_group_codes(work: Path) -> bool:
    """Whether check_site accepts a 15-digit area (a 村民小组) on a one-village site."""
    from dispatcher.sites import check_site

    probe = work / "probe"
    county = County(1, 1, 1, 1, True)
    county.write(probe)
    _, problems = check_site(probe)
    shutil.rmtree(probe, ignore_errors=True)
    return not any("code" in p.message and "digits" in p.message for p in problems)


# -- the phases ----------------------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(UTC)


class Timer:
    """Wall-clock and CPU seconds (this process: the figure to trust when the machine is busy)."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0

    def figures(self, label: str) -> dict[str, float]:
        return {label: self.wall, f"{label}.cpu": self.cpu}


class Split:
    """Times calls of a module-level function by wrapping it where the caller looks it up."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name, self.original = module, name, getattr(module, name)
        self.seconds = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(module, name, timed)

    def restore(self) -> None:
        setattr(self.module, self.name, self.original)


def phase_validate(site_dir: Path, url: str) -> dict[str, Any]:
    """As ``jiaoying validate``: the problems, then the readiness gaps it lists."""
    from dispatcher.config import Settings
    from dispatcher.domain.readiness import site_gaps
    from dispatcher.services.carrier_gaps import template_gaps
    from dispatcher.sites import check_site

    with Timer() as timer:
        t0 = time.perf_counter()
        site, problems = check_site(site_dir)
        t1 = time.perf_counter()
        if site is not None:
            gaps = [g.message for g in site_gaps(site)] + [g["message"] for g in template_gaps(
                site, Settings(database_url=url))]
    if problems or site is None:
        raise SystemExit("the synthetic site is not valid:\n" + "\n".join(str(p) for p in problems[:20]))
    return {**timer.figures("validate"), "validate.check": t1 - t0, "validate.gaps": time.perf_counter() - t1,
            "areas": len(site.areas), "zones": len(site.zones), "rooms": len(site.rooms), "people": len(site.people),
            "holders": sum(1 for p in site.people.values() if p.responsibilities), "plans": len(site.plans),
            "gaps": len(gaps)}


def phase_migrate(site_dir: Path, url: str) -> dict[str, Any]:
    from dispatcher.db.migrate import upgrade

    with Timer() as timer:
        upgrade(url)
    return timer.figures("migrate")


def _load(site_dir: Path, url: str, label: str) -> dict[str, Any]:
    from dispatcher.db.session import transaction
    from dispatcher.services import site as site_service

    check = Split(site_service, "load_site")
    sync = Split(site_service.sites_repo, "sync_site")
    try:
        with Timer() as timer:
            with transaction(url) as session:
                report = site_service.load_site_files(session, site_dir, now())
                t1 = time.perf_counter()
            t2 = time.perf_counter()
    finally:
        check.restore()
        sync.restore()
    return {**timer.figures(label), f"{label}.check": check.seconds, f"{label}.sync": sync.seconds,
            f"{label}.commit": t2 - t1, f"{label}.report": report.summary()}


def phase_load(site_dir: Path, url: str) -> dict[str, Any]:
    return _load(site_dir, url, "load")


def phase_reload(site_dir: Path, url: str) -> dict[str, Any]:
    out = _load(site_dir, url, "reload")
    if out["reload.report"] != "no changes":
        print(f"  WARNING: the second load changed something: {out['reload.report']}", file=sys.stderr)
    return out


def _at() -> datetime:
    return datetime.fromisoformat(WARNING_AT)


def phase_resolve(site_dir: Path, url: str) -> dict[str, Any]:
    from dispatcher.domain.hazards import parse_hazard, parse_level
    from dispatcher.domain.rules import WarningFacts, resolve
    from dispatcher.sites import load_site

    site = load_site(site_dir)
    facts = WarningFacts(parse_hazard("rainstorm"), parse_level("red"), (COUNTY,), None, _at())
    with Timer() as timer:
        res = resolve(site, facts)
    return {**timer.figures("resolve"), "resolve.callouts": len(res.callouts), "resolve.gaps": len(res.gaps)}


def phase_preview(site_dir: Path, url: str) -> dict[str, Any]:
    from dispatcher.channels.registry import rate_limits
    from dispatcher.config import Settings
    from dispatcher.db import sites_repo
    from dispatcher.db.session import transaction
    from dispatcher.services import site as site_service
    from dispatcher.services.preview import preview

    settings = Settings(database_url=url)
    read = Split(sites_repo, "read_site")
    out: dict[str, Any] = {}
    try:
        site_service._cache.clear()  # noqa: SLF001 - cold: as a fresh `jiaoying preview` process
        for label in ("preview.cold", "preview.warm"):
            read.seconds = 0.0
            with Timer() as timer:
                with Timer() as adapters:  # the first call imports every provider's adapter (and SDK)
                    limits = rate_limits(settings)
                with transaction(url) as session:
                    result = preview(site_service.current_site(session), "rainstorm", "red", [COUNTY], _at(), None,
                                     limits=limits, settings=settings)
            out.update(timer.figures(label))
            out[f"{label}.adapters"] = adapters.wall
            out[f"{label}.read_site"] = read.seconds
        out["preview.officials"] = result["officials"]
        out["preview.gaps"] = len(result["gaps"])
        t0 = time.perf_counter()
        json.dumps(result, ensure_ascii=False)
        out["preview.json"] = time.perf_counter() - t0
    finally:
        read.restore()
    return out


PHASES = {"validate": phase_validate, "migrate": phase_migrate, "load": phase_load, "reload": phase_reload,
          "resolve": phase_resolve, "preview": phase_preview}


def run_phase(name: str, site_dir: Path, url: str, cprofile: int) -> dict[str, Any]:
    if not cprofile:
        out = PHASES[name](site_dir, url)
    else:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        out = profiler.runcall(PHASES[name], site_dir, url)
        print(f"--- cProfile: {name} (top {cprofile} by own time) ---")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(cprofile)
    out[f"{name}.rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--towns", type=int, default=20)
    parser.add_argument("--villages", type=int, default=25, help="per town")
    parser.add_argument("--groups", type=int, default=4, help="村民小组 per village")
    parser.add_argument("--in-process", action="store_true", help="every phase in this process (for profiling)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="print each phase's top N functions by own time (implies --in-process)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (site files, database)")
    parser.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)  # one phase, in a child
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.in_process = args.in_process or bool(args.cprofile)

    if args.phase:  # a child: one phase, its figures as JSON on the last line
        print(json.dumps(run_phase(args.phase, args.dir, args.url, 0)))
        return

    print(machine())
    work = Path(tempfile.mkdtemp(prefix="jy-bench-sites-"))
    try:
        groups = takes_group_codes(work)
        county = County(args.people, args.towns, args.villages, args.groups, groups)
        if args.people < county.fixed_people():
            raise SystemExit(f"--people must be at least {county.fixed_people()} for this structure "
                             "(lower --towns, --villages or --groups)")
        site_dir, url = work / SITE, f"sqlite:///{work / 'bench.db'}"
        t0 = time.perf_counter()
        written = county.write(site_dir)
        size = sum(f.stat().st_size for f in site_dir.iterdir()) / 1e6
        print(f"site: {written:,} people, {args.towns} towns x {args.villages} villages x {args.groups} groups "
              f"({'15-digit group areas' if groups else 'no group areas: the validator takes no 15-digit codes'}); "
              f"{size:.1f} MB of YAML written in {time.perf_counter() - t0:.2f} s to {site_dir}")
        results: dict[str, Any] = {}
        for name in PHASES:
            if args.in_process:
                results.update(run_phase(name, site_dir, url, args.cprofile))
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--dir", str(site_dir),
                       "--url", url]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.stderr.write(done.stdout + done.stderr)
                    raise SystemExit(f"phase {name} failed")
                sys.stderr.write(done.stderr)
                results.update(json.loads(done.stdout.strip().splitlines()[-1]))
            report(name, results)
        print(f"validate + load: {results['validate'] + results['load']:.2f} s (CPU "
              f"{results['validate.cpu'] + results['load.cpu']:.2f} s; target 5 s at 5,000 people); preview cold: "
              f"{results['preview.cold']:.2f} s (CPU {results['preview.cold.cpu']:.2f} s; target 1 s)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(name: str, r: dict[str, Any]) -> None:
    label = "preview.cold" if name == "preview" else name
    head = f"{name:<9}{r[label]:7.2f} s (CPU {r[f'{label}.cpu']:5.2f} s)  peak RSS {r[f'{name}.rss_mb']:4.0f} MB  "
    if name == "validate":
        print(f"{head}check_site {r['validate.check']:.2f} s, readiness gaps {r['validate.gaps']:.2f} s: "
              f"{r['areas']:,} areas, {r['zones']} zones, {r['rooms']} town duty rooms, {r['people']:,} people "
              f"({r['holders']:,} with responsibilities), {r['plans']} plans; {r['gaps']} readiness gaps")
    elif name == "migrate":
        print(f"{head}alembic upgrade head, fresh SQLite file")
    elif name in ("load", "reload"):
        print(f"{head}check_site {r[f'{name}.check']:.2f} s, sync_site {r[f'{name}.sync']:.2f} s, "
              f"commit {r[f'{name}.commit']:.2f} s: {r[f'{name}.report']}")
    elif name == "resolve":
        print(f"{head}{r['resolve.callouts']:,} call-outs, {r['resolve.gaps']} gaps (rules.resolve, the Site from "
              "the files)")
    else:
        print(f"{head}cold, of which importing the channel adapters {r['preview.cold.adapters']:.2f} s, read_site "
              f"{r['preview.cold.read_site']:.2f} s; warm {r['preview.warm']:.2f} s "
              f"(CPU {r['preview.warm.cpu']:.2f} s); {r['preview.officials']:,} officials, {r['preview.gaps']} gaps; "
              f"json.dumps {r['preview.json']:.2f} s")


if __name__ == "__main__":
    main()
