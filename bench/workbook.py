#!/usr/bin/env python
"""Roster workbook benchmark: `jiaoying import xlsx` of a county-sized 通讯录 (target: 5,000 rows in < 10 s).

    .venv/bin/python bench/workbook.py [--rows 5000] [--repeat 3] [--keep]

In a temp dir: a synthetic site (25 towns of 20 villages, a few village names repeated across towns
so that some rows must write 镇/村) and a workbook kept the way counties keep it — a title row above
the header, columns in an odd order with extra ones (序号, 备注), 单位 merged over each village's rows,
a 合计 row after each town, phone numbers as Excel numbers, AB岗 and 上级 by name, a town's 包保
villages, everyone's 钉钉 account, the town flood officer's 包村 villages under 其他责任 and a
satellite phone for each village's flood officer. Then, timed in this process (the CLI's own work,
without the interpreter's start-up):

- first import: into the site with no people yet (every id made from pinyin), then written;
- re-import: the same workbook again (every id kept, nothing changes) — the usual monthly case;
- export: the site back to a workbook (通讯录, 包保, 值班表).

Each includes reading the workbook (openpyxl), building people.yaml and `check_site` on a copy of
the site with the new people.yaml.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine  # noqa: E402
from dispatcher.workbook import apply, export_workbook, plan_import  # noqa: E402

COUNTY = "330599"
TOWNS, VILLAGES = 25, 20
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
            "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = "".join(dict.fromkeys("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉鹏宇浩然志海燕晓东春林"))
ROLES = {"town_head": "乡镇长", "town_flood_officer": "乡镇防汛责任人", "village_head": "村党组织书记/村主任",
         "village_flood_officer": "村防汛责任人", "geohazard_monitor": "地质灾害群测群防员", "forest_ranger": "护林员",
         "grid_member": "网格员"}
VILLAGE_ROLES = ["village_head", "village_flood_officer", "geohazard_monitor", "forest_ranger"] + ["grid_member"] * 6
HEADER = ["序号", "姓名", "单位", "职务", "区域", "手机", "备用电话", "办公电话", "AB岗", "上级", "包保", "备注",
          "钉钉", "卫星电话", "其他责任"]


def names(count: int) -> list[str]:
    """``count`` distinct Chinese names (surname + one or two given characters)."""
    out: list[str] = []
    for given_length in (2, 1):
        for a in GIVEN:
            for b in (GIVEN if given_length == 2 else " "):
                for s in SURNAMES:
                    out.append(f"{s}{a}{b}".strip())
                    if len(out) == count:
                        return out
    raise ValueError(f"cannot make {count} distinct names")


def village_name(t: int, v: int) -> str:
    return "新村" if v == 0 else f"{'东西南北上下'[v % 6]}{t}坑{v}村"  # every town has a 新村


def write_site(folder: Path) -> None:
    towns = []
    for t in range(TOWNS):
        town = f"{COUNTY}{100 + t:03d}"
        towns.append({"code": town, "name": f"第{t + 1}镇",
                      "children": [{"code": f"{town}{201 + v:03d}", "name": village_name(t, v)}
                                   for v in range(VILLAGES)]})
    dump: dict[str, Any] = {"allow_unicode": True, "sort_keys": False}
    folder.mkdir(parents=True)
    (folder / "areas.yaml").write_text(yaml.safe_dump(
        {"site": "bench", "name": "压测县", "areas": [{"code": COUNTY, "name": "压测县", "children": towns}]}, **dump),
        encoding="utf-8")
    (folder / "people.yaml").write_text(yaml.safe_dump({"roles": ROLES, "people": []}, **dump), encoding="utf-8")
    (folder / "duty.yaml").write_text("shifts: []\n", encoding="utf-8")
    (folder / "plans.yaml").write_text(yaml.safe_dump({"plans": [{
        "id": "rain-red", "name": "暴雨红色", "match": {"hazards": ["rainstorm"], "levels": ["red"]},
        "targets": [{"roles": ["town_head", "village_head", "village_flood_officer"], "scope": ["affected", "above"]}],
        "steps": [{"after": "0", "channels": ["sms"], "to": "self"}],
    }]}, **dump), encoding="utf-8")


def write_workbook(path: Path, rows: int) -> int:
    """The roster of ``rows`` people (rounded to whole villages of 10, two town leaders each town)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "责任人名单"
    sheet.append(["压测县防汛防台责任人通讯录"])
    sheet.append(["填报单位：压测县应急管理局", None, None, None, None, None, "填报日期：2026年5月"])
    sheet.append(HEADER)
    people = names(rows + 10)
    n = 0
    for t in range(TOWNS):
        town = f"第{t + 1}镇"
        head, flood = people[n], people[n + 1]
        villages = [f"{town}/{village_name(t, v)}" for v in range(VILLAGES)]
        start = sheet.max_row + 1
        sheet.append([n + 1, head, f"{town}人民政府", ROLES["town_head"], town, 13800000000 + n, None,
                      f"0572-50{t:02d}001", flood, None, "、".join(villages[:10]), None, f"u{n}", None, None])
        sheet.append([n + 2, flood, f"{town}人民政府", ROLES["town_flood_officer"], town, 13800000000 + n + 1, None,
                      None, None, head, "、".join(villages[10:15]), None, f"u{n + 1}", None,
                      "包村：" + "、".join(villages[15:])])
        n += 2
        sheet.merge_cells(start_row=start, start_column=3, end_row=start + 1, end_column=3)
        for v in range(VILLAGES):
            if n + 10 > rows:
                break
            first = sheet.max_row + 1
            secretary, flood_officer = people[n], people[n + 1]
            for k, role in enumerate(VILLAGE_ROLES):
                deputy = {0: flood_officer, 1: None}.get(k, secretary)
                sheet.append([n + 1, people[n], f"{village_name(t, v)}村民委员会", ROLES[role], villages[v],
                              13800000000 + n, float(13900000000 + n) if k < 2 else None, None, deputy,
                              head if k == 0 else secretary, None, "山区" if v % 3 == 0 else None, f"u{n}",
                              f"174000{n:05d}" if k == 1 else None, None])
                n += 1
            sheet.merge_cells(start_row=first, start_column=3, end_row=first + len(VILLAGE_ROLES) - 1, end_column=3)
        sheet.append([None, "合计", f"{town}共 {n} 人"])
        if n + 10 > rows:
            break
    sheet.append(["备注：本表每年汛前更新。"])
    book.save(path)
    return n


def timed(label: str, action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    print(f"  {label}: {elapsed:.2f} s")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print it")
    args = parser.parse_args()
    print(machine())
    workdir = Path(tempfile.mkdtemp(prefix="jy-bench-workbook-"))
    try:
        workbook = workdir / "通讯录.xlsx"
        people = write_workbook(workbook, args.rows)
        print(f"workbook: {people} people, {workbook.stat().st_size // 1024} KiB")
        firsts, agains, exports = [], [], []
        for run in range(1, args.repeat + 1):
            site = workdir / f"site{run}"
            write_site(site)
            print(f"run {run}:")
            first, plan = timed("first import (new ids) + write", lambda s=site: _import(workbook, s))
            assert len(plan.changes.added) == people, plan.summary()[-1]
            again, plan = timed("re-import (ids kept, no change)", lambda s=site: _import(workbook, s))
            assert plan.changes.unchanged == people, plan.summary()[-1]
            target = workdir / f"export{run}.xlsx"
            spent, report = timed("export", lambda s=site, t=target: export_workbook(s, t))
            assert not report.problems, report.problems[:3]
            firsts.append(first)
            agains.append(again)
            exports.append(spent)
        print(f"best of {args.repeat}: first import {min(firsts):.2f} s, re-import {min(agains):.2f} s, "
              f"export {min(exports):.2f} s (target: import < 10 s)")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _import(workbook: Path, site: Path) -> Any:
    plan = plan_import(workbook, site)
    if plan.problems:
        raise SystemExit("\n".join(str(p) for p in plan.problems[:20]))
    apply(plan)
    return plan


if __name__ == "__main__":
    main()
