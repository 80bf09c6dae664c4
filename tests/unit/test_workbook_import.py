"""`jiaoying import xlsx`: a roster workbook as counties keep it -> people.yaml.

The workbooks are built here with openpyxl: titles above the header, merged cells, blank, 合计 and
备注 rows, two sheets, numbers stored as Excel numbers, columns in an odd order and extra columns.
The site is a small county (示范县) with two villages called 新村, a village's groups and a zone.
Bad-input tests name the bad input and check that people.yaml was not touched (same bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook, load_workbook

from dispatcher.domain.roster import PhoneKind, PhoneNumber, Responsibility
from dispatcher.sites import load_site
from dispatcher.workbook import ImportPlan, apply, plan_import
from dispatcher.workbook.ids import person_id, role_id, unique
from dispatcher.workbook.numbers import for_display, to_e164
from dispatcher.workbook.reader import read_book
from dispatcher.workbook.roster_import import HEADERS, split_duties
from dispatcher.workbook.yamlwrite import flow, scalar

AREAS = """\
site: demo
name: 示范县
areas:
  - code: "330501"
    name: 示范县
    children:
      - code: "330501100"
        name: 龙潭镇
        children:
          - code: "330501100201"
            name: 潭头村
            children:
              - { code: "330501100201001", name: 一组, kind: group }
              - { code: "330501100201002", name: 二组, kind: group }
          - { code: "330501100202", name: 新村 }
          - { code: "330501100203", name: 大坑村 }
      - code: "330501101"
        name: 白云镇
        children:
          - { code: "330501101201", name: 新村 }
          - { code: "330501101202", name: 云峰村 }
zones:
  - { id: baiyangou, name: 白岩沟小流域, kind: small_watershed, areas: ["330501100203", "330501101202"] }
"""

PEOPLE = """\
# 示范县责任人（手写）
roles:
  county_leader: 县领导(包保)
  town_head: 乡镇长
  village_head: 村党组织书记/村主任
  village_flood_officer: 村防汛责任人
  geohazard_monitor: 地质灾害群测群防员
people:
  - id: wang-jianguo
    name: 王建国
    unit: 县人民政府
    phone: "+8613905720001"
    phones:
      - { number: "+8617400012345", kind: satellite }
    email: wjg@demo.gov.cn
    im: { dingtalk: "+8613905720001" }
    area: "330501"
    roles: [county_leader]
    responsibilities:
      - { kind: 包保, areas: ["330501100"] }
      - { kind: 驻村, areas: ["330501101202"] }
  - id: zhou-min
    name: 周敏
    unit: 县人民政府
    phone: "13905720002"
    email: zm@demo.gov.cn
    area: "330501"
    roles: [county_leader]
    superior: wang-jianguo
  - id: li-si
    name: 李四
    unit: 县水利局
    phone: "+8613905720099"
    area: "330501"
"""

DUTY = """\
weekly:
  - { day: mon, start: "08:30", hours: 168, leader: wang-jianguo, chief: zhou-min }
"""

PLANS = """\
plans:
  - id: rain-red
    name: 暴雨红色预警
    match: { hazards: [rainstorm], levels: [red] }
    targets:
      - { roles: [county_leader], scope: fixed, area: "330501" }
    steps:
      - { after: 0, channels: [sms], to: self }
"""

HEADER = ["序号", "姓 名", "职务", "手机号码", "单位", "区域", "AB岗", "上级", "包保", "办公电话", "备用电话", "备注"]


def roster() -> list[list[Any]]:
    """示范县's officials in HEADER's column order: phones as text, Excel ints and floats."""
    return [
        [1, "王建国", "县领导（包保）", 13905720001, "县人民政府", "示范县", "周敏", None, "龙潭镇、白云镇",
         "0572-5012345", None, "县长"],
        [2, "周敏", "县领导(包保)", "139 0572 0002", "县人民政府", 330501, None, "王建国", "白岩沟小流域", None,
         "13905720102", None],
        [3, "陈国强", "乡镇长", "+86 139-0572-0003", "龙潭镇人民政府", "龙潭镇", None, "王建国", "潭头村，大坑村", None,
         None, None],
        [4, "张明亮", "村党组织书记/村主任、村防汛责任人", 13905720004.0, "潭头村民委员会", "龙潭镇/潭头村", "李强",
         "陈国强", None, None, None, None],
        [5, "李强", "组长", "13905720005", "潭头村民委员会", "潭头村/一组", None, "张明亮", None, None, None, None],
    ]


def baiyun() -> list[list[Any]]:
    """The second sheet: 白云镇, 单位 and 区域 merged over the village's rows."""
    return [
        ["白云镇防汛责任人"],
        ["姓名", "手机", "单位", "区域", "职务", "上级", "邮箱"],
        ["刘洋", "13905720006", "新村村民委员会", "白云镇/新村", "村党组织书记/村主任", "陈国强",
         "liuyang@demo.gov.cn"],
        ["何亚芬", "13905720007", None, None, "村防汛责任人", "刘洋", None],
        [None, None, None, None, None, None, None],
        ["小计", "2人", None, None, None, None, None],
    ]


def write_site(folder: Path, people: str = PEOPLE, duty: str = DUTY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("areas.yaml", AREAS), ("people.yaml", people), ("duty.yaml", duty), ("plans.yaml", PLANS)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def write_book(path: Path, *sheets: tuple[str, Sequence[Sequence[Any]]],
               merges: dict[str, list[str]] | None = None) -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
        for cells in (merges or {}).get(title, []):
            sheet.merge_cells(cells)
    book.save(path)
    return path


def county_book(path: Path, rows: list[list[Any]] | None = None) -> Path:
    """The usual workbook: a title and a note above the header, a blank row, a 合计 and a 备注 row,
    a second sheet (白云镇) with merged cells, and a sheet of notes with no header row."""
    body = rows if rows is not None else roster()
    main = [["示范县防汛防台责任人通讯录"], ["填报单位：示范县应急管理局", None, None, "2026年5月"], HEADER, *body[:2],
            [None] * len(HEADER), *body[2:], [None, "合计", None, f"{len(body)}人"], ["备注：号码如有变动请及时报送。"]]
    notes = [["填表说明"], ["1. 每人一行"], ["2. 区域写 镇/村"]]
    last = len(main)  # the 备注 row, merged across the table
    return write_book(path, ("县乡", main), ("白云镇", baiyun()), ("说明", notes),
                      merges={"县乡": ["A1:L1", f"A{last}:L{last}"], "白云镇": ["A1:G1", "C3:C4", "D3:D4"]})


def run(book: Path, site: Path) -> ImportPlan:
    """What `jiaoying import xlsx` does: plan, then write when there is no problem."""
    plan = plan_import(book, site)
    if not plan.problems:
        apply(plan)
    return plan


def problems(plan: ImportPlan) -> list[str]:
    return [str(p) for p in plan.problems]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(tmp_path / "demo")


# -- reading a county's workbook --------------------------------------------------------------


def test_a_workbook_as_counties_keep_it_becomes_people_yaml(site: Path, tmp_path: Path) -> None:
    plan = run(county_book(tmp_path / "通讯录.xlsx"), site)
    assert plan.problems == []
    people = load_site(site).people
    assert list(people) == ["wang-jianguo", "zhou-min", "chen-guoqiang", "zhang-mingliang", "li-qiang",
                            "liu-yang", "he-yafen"]
    wang = people["wang-jianguo"]
    assert (wang.name, wang.unit, wang.area, wang.roles) == ("王建国", "县人民政府", "330501", ("county_leader",))
    assert wang.phone == "+8613905720001"
    assert wang.phones == (PhoneNumber("+865725012345", PhoneKind.LANDLINE),
                           PhoneNumber("+8617400012345", PhoneKind.SATELLITE))  # satellite kept
    assert wang.deputy == "zhou-min" and wang.superior is None
    assert wang.responsibilities == (Responsibility("包保", ("330501100", "330501101")),
                                     Responsibility("驻村", ("330501101202",)))  # 驻村 kept
    assert wang.im == {"dingtalk": "+8613905720001"} and wang.email == "wjg@demo.gov.cn"  # no 邮箱 column: kept
    zhou = people["zhou-min"]
    assert zhou.phone == "+8613905720002" and zhou.phones == (PhoneNumber("+8613905720102"),)
    assert zhou.responsibilities == (Responsibility("包保", zones=("baiyangou",)),)
    assert people["chen-guoqiang"].phone == "+8613905720003"
    assert people["chen-guoqiang"].responsibilities == (Responsibility("包保", ("330501100201", "330501100203")),)
    zhang = people["zhang-mingliang"]
    assert zhang.phone == "+8613905720004"  # an Excel float
    assert zhang.roles == ("village_head", "village_flood_officer") and zhang.area == "330501100201"
    assert zhang.deputy == "li-qiang" and zhang.superior == "chen-guoqiang"
    assert people["li-qiang"].area == "330501100201001"  # 潭头村/一组: a village group
    assert people["li-qiang"].roles == ("zu-zhang",)
    liu, he = people["liu-yang"], people["he-yafen"]
    assert liu.area == he.area == "330501101201"  # 白云镇/新村, merged over both rows
    assert liu.unit == he.unit == "新村村民委员会"
    assert liu.email == "liuyang@demo.gov.cn" and he.superior == "liu-yang"
    assert "li-si" not in people
    assert plan.sheets == ["县乡", "白云镇"] and plan.skipped == ["说明: no header row with 姓名"]
    assert plan.rows_skipped == 3  # 合计, 备注, 小计 (blank rows are not rows at all)
    summary = "\n".join(plan.summary())
    assert "new role zu-zhang: 组长" in summary
    assert "removed 李四 (li-si)" in summary
    assert "added 陈国强 (chen-guoqiang)" in summary


def test_written_people_yaml_keeps_roles_and_says_where_it_came_from(site: Path, tmp_path: Path) -> None:
    run(county_book(tmp_path / "通讯录.xlsx"), site)
    text = (site / "people.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Generated by `jiaoying import xlsx` from 通讯录.xlsx")
    doc = yaml.safe_load(text)
    assert list(doc["roles"]) == ["county_leader", "town_head", "village_head", "village_flood_officer",
                                  "geohazard_monitor", "zu-zhang"]
    assert doc["roles"]["zu-zhang"] == "组长"
    wang = doc["people"][0]
    assert wang["phones"] == [{"number": "+865725012345", "kind": "landline"},
                              {"number": "+8617400012345", "kind": "satellite"}]
    assert wang["responsibilities"][0] == {"kind": "包保", "areas": ["330501100", "330501101"]}
    assert '    area: "330501"' in text and '    phone: "+8613905720001"' in text


def test_importing_the_same_workbook_again_changes_nothing(site: Path, tmp_path: Path) -> None:
    book = county_book(tmp_path / "通讯录.xlsx")
    run(book, site)
    written = (site / "people.yaml").read_bytes()
    again = plan_import(book, site)
    assert again.problems == [] and not again.changes.any and again.changes.unchanged == 7
    assert apply(again) is False
    assert (site / "people.yaml").read_bytes() == written


def test_phone_numbers_in_every_spelling(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[2][3] = "0086 13905720003"
    rows[2][9] = "(0572)5012346、0572-5012347"  # two office numbers
    rows[2][10] = "13905720103 / +86 13905720203"
    rows[3][3], rows[3][9] = None, "0572-5012348"  # no 手机: the office landline is the first number
    run(county_book(tmp_path / "b.xlsx", rows), site)
    people = load_site(site).people
    chen = people["chen-guoqiang"]
    assert chen.phone == "+8613905720003"
    assert chen.phones == (PhoneNumber("+8613905720103"), PhoneNumber("+8613905720203"),
                           PhoneNumber("+865725012346", PhoneKind.LANDLINE),
                           PhoneNumber("+865725012347", PhoneKind.LANDLINE))
    zhang = people["zhang-mingliang"]
    assert zhang.phone == "+865725012348" and zhang.phone_kind is PhoneKind.LANDLINE and zhang.phones == ()


def test_areas_by_name_path_code_and_group(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[2][5] = "330501100000"  # a code padded with zeros, as some systems write a town
    rows[3][5] = "示范县 / 龙潭镇 / 潭头村"
    rows[4][5] = 330501100201001  # a group's code as an Excel number
    rows[2][8] = "330501100201,大坑村"
    run(county_book(tmp_path / "b.xlsx", rows), site)
    people = load_site(site).people
    assert people["chen-guoqiang"].area == "330501100"
    assert people["zhang-mingliang"].area == "330501100201"
    assert people["li-qiang"].area == "330501100201001"
    assert people["chen-guoqiang"].responsibilities[0].areas == ("330501100201", "330501100203")


def test_headers_in_a_second_header_row_under_merged_headers(site: Path, tmp_path: Path) -> None:
    """姓名 merged over two header rows, 联系电话 over 手机 and 办公电话 below it."""
    rows = [["姓名", "联系电话", None, "区域", "职务"], [None, "手机", "办公电话", None, None],
            ["王建国", 13905720001, "0572-5012345", "示范县", "县领导(包保)"],
            ["周敏", 13905720002, None, "示范县", "县领导(包保)"]]
    book = write_book(tmp_path / "b.xlsx", ("Sheet1", rows), merges={"Sheet1": ["A1:A2", "B1:C1", "D1:D2", "E1:E2"]})
    found = read_book(book, HEADERS, "name")
    assert [t.header_row for t in found.tables] == [2]
    assert [r.text("office") for r in found.tables[0].rows] == ["0572-5012345", ""]


def test_a_header_merged_over_two_rows_keeps_the_upper_rows_headers(tmp_path: Path) -> None:
    """姓名 and 区域 written once in the upper row (not merged down), 联系电话 over 手机 | 办公电话."""
    rows = [["姓名", "联系电话", None, "区域"], [None, "手机", "办公电话", None],
            ["王建国", 13905720001, "0572-5012345", "示范县"]]
    book = write_book(tmp_path / "b.xlsx", ("Sheet1", rows), merges={"Sheet1": ["B1:C1"]})
    table = read_book(book, HEADERS, "name").tables[0]
    assert table.header_row == 2 and table.columns == {"name": 1, "mobile": 2, "office": 3, "area": 4}
    assert [r.text("name") for r in table.rows] == ["王建国"]


def test_new_roles_get_pinyin_ids_and_are_appended(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[2][2] = "乡镇长、镇委书记"
    rows[4][2] = "镇委书记"
    plan = run(county_book(tmp_path / "b.xlsx", rows), site)
    site_ = load_site(site)
    assert site_.people["chen-guoqiang"].roles == ("town_head", "zhen-wei-shu-ji")
    assert site_.people["li-qiang"].roles == ("zhen-wei-shu-ji",)
    assert list(site_.roles)[-1] == "zhen-wei-shu-ji" and site_.roles["zhen-wei-shu-ji"] == "镇委书记"
    assert plan.changes.new_roles == [("zhen-wei-shu-ji", "镇委书记")]


# -- ids ---------------------------------------------------------------------------------------


def test_person_ids_follow_the_sample_rosters_style() -> None:
    assert person_id("王建国") == "wang-jianguo"
    assert person_id("王 建国") == "wang-jianguo"
    assert person_id("周敏") == "zhou-min"
    # as in rosters/qingxi/people.yaml (all 129 ids there follow the rule)
    assert [person_id(n) for n in ("章美娟", "应土根", "俞晓华", "邵佳", "郑月娥")] == [
        "zhang-meijuan", "ying-tugen", "yu-xiaohua", "shao-jia", "zheng-yuee"]
    assert person_id("欧阳晓峰") == "ouyang-xiaofeng"
    assert person_id("曾国藩") == "zeng-guofan"  # the surname reading, not ceng
    assert person_id("单雄信") == "shan-xiongxin"
    assert person_id("吕布") == "lv-bu"
    assert person_id("阿卜杜拉·买买提") == "abodula-maimaiti"
    assert person_id("Tom Lee") == "tom-lee"
    assert person_id("···") == "person"
    assert role_id("镇委书记") == "zhen-wei-shu-ji"
    assert role_id("村党组织书记/村主任") == "cun-dang-zu-zhi-shu-ji-cun-zhu-ren"
    assert unique("wang-wei", {"wang-wei", "wang-wei-2"}) == "wang-wei-3"


def test_ids_are_kept_when_rows_move_and_numbers_change(site: Path, tmp_path: Path) -> None:
    run(county_book(tmp_path / "first.xlsx"), site)
    rows = roster()
    rows.reverse()  # every row moves
    zhou = next(r for r in rows if r[1] == "周敏")
    zhou[3] = "13905720888"  # a new 手机, same 单位: still 周敏
    wang = next(r for r in rows if r[1] == "王建国")
    wang[4], wang[5] = "县委", "龙潭镇"  # a new 单位 and 区域, same 手机: still 王建国
    wang[8] = "白云镇"
    rows.append([9, "王建国", "乡镇长", "13905720009", "白云镇人民政府", "白云镇", None, None, None, None, None, None])
    for row in rows:  # two people are called 王建国 now: say which one
        row[7] = "王建国（13905720001）" if row[7] == "王建国" else row[7]
    plan = run(county_book(tmp_path / "second.xlsx", rows), site)
    assert plan.problems == []
    people = load_site(site).people
    assert people["zhou-min"].phone == "+8613905720888"
    assert people["wang-jianguo"].unit == "县委" and people["wang-jianguo"].area == "330501100"
    assert people["wang-jianguo-2"].name == "王建国" and people["wang-jianguo-2"].unit == "白云镇人民政府"
    assert people["chen-guoqiang"].superior == "wang-jianguo"
    # the deputy link follows the person, whose id did not change
    assert people["wang-jianguo"].deputy == "zhou-min"
    changed = dict(plan.changes.changed)
    assert changed["周敏 (zhou-min)"] == ["手机"]
    assert changed["王建国 (wang-jianguo)"] == ["单位", "区域", "包保"]
    assert plan.changes.added == ["王建国 (wang-jianguo-2)"]


def test_a_removed_persons_id_is_not_given_to_a_newcomer(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows.append([6, "李四", None, "13905720666", "县应急管理局", "示范县", None, None, None, None, None, None])
    plan = run(county_book(tmp_path / "b.xlsx", rows), site)
    assert plan.problems == []
    assert "removed 李四 (li-si)" in plan.summary()
    assert "added 李四 (li-si-2)" in plan.summary()


def test_a_column_the_workbook_lacks_keeps_the_field(site: Path, tmp_path: Path) -> None:
    """No AB岗, 上级, 包保 or 单位 columns: those stay as people.yaml has them."""
    rows = [["姓名", "手机", "区域", "职务"], ["王建国", "13905720001", "示范县", "县领导(包保)"],
            ["周敏", "13905720002", "示范县", "县领导(包保)"]]
    plan = run(write_book(tmp_path / "b.xlsx", ("Sheet1", rows)), site)
    assert plan.problems == []
    people = load_site(site).people
    assert people["zhou-min"].superior == "wang-jianguo" and people["zhou-min"].unit == "县人民政府"
    assert people["wang-jianguo"].responsibilities[0] == Responsibility("包保", ("330501100",))
    assert people["zhou-min"].phones == ()


def test_an_empty_cell_clears_the_field(site: Path, tmp_path: Path) -> None:
    run(county_book(tmp_path / "a.xlsx"), site)
    rows = roster()
    rows[0][6] = None  # 王建国's AB岗
    rows[0][8] = None  # and 包保
    plan = run(county_book(tmp_path / "b.xlsx", rows), site)
    wang = load_site(site).people["wang-jianguo"]
    assert wang.deputy is None
    assert wang.responsibilities == (Responsibility("驻村", ("330501101202",)),)
    assert dict(plan.changes.changed)["王建国 (wang-jianguo)"] == ["AB岗", "包保"]


def test_namesakes_are_told_apart_by_unit_or_number(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows.append([6, "王建国", "乡镇长", "13905720009", "白云镇人民政府", "白云镇", None, None, None, None, None, None])
    rows[1][7] = "王建国（县人民政府）"
    rows[2][7] = "王建国(13905720009)"
    rows[3][6] = "li-qiang"  # an id works too
    plan = run(county_book(tmp_path / "b.xlsx", rows), site)
    assert plan.problems == []
    people = load_site(site).people
    assert people["zhou-min"].superior == "wang-jianguo"
    assert people["chen-guoqiang"].superior == "wang-jianguo-2"
    assert people["zhang-mingliang"].deputy == "li-qiang"


def test_a_new_site_whose_people_yaml_declares_only_roles(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", PEOPLE[:PEOPLE.index("people:")] + "people: []\n", "shifts: []\n")
    plan = run(county_book(tmp_path / "b.xlsx"), site)
    assert plan.problems == []
    assert len(plan.changes.added) == 7 and plan.changes.removed == []
    assert load_site(site).people["wang-jianguo"].phones == (PhoneNumber("+865725012345", PhoneKind.LANDLINE),)


# -- every field of people.yaml: IM accounts, satellite phones, other responsibilities ----------

ROLES_ONLY = PEOPLE[:PEOPLE.index("people:")] + "people: []\n"
# 姓名 in A, then the new columns among the old ones (row 2 is the header, people from row 3)
FULL_HEADER = ["姓名", "职务", "手机", "卫星电话", "区域", "钉钉", "企业微信", "飞书", "包保", "其他责任", "备注"]


def full_rows() -> list[list[Any]]:
    return [
        ["王建国", "县领导(包保)", 13905720001, "17400012345", "示范县", "+8613905720001", "wangjianguo", None,
         "龙潭镇", "驻村：云峰村", "县长"],
        ["陈国强", "乡镇长、地质灾害群测群防员", "13905720003", None, "龙潭镇", None, None, "ou_7d8a", None,
         "包村：潭头村、大坑村；监测员（地质灾害群测群防员）：白岩沟小流域\n包保（乡镇长）：白云镇/新村", None],
        ["李强", "村防汛责任人", "13905720005", None, "潭头村/一组", None, None, None, None,
         "网格：潭头村/二组", None],
    ]


def full_book(path: Path, rows: list[list[Any]] | None = None) -> Path:
    """A sheet 名单 with a merged title, the header in row 2 and the people from row 3."""
    return write_book(path, ("名单", [["示范县责任人通讯录"], FULL_HEADER, *(rows or full_rows())]),
                      merges={"名单": ["A1:K1"]})


def test_im_accounts_satellite_phones_and_every_kind_of_responsibility(tmp_path: Path) -> None:
    """Into a site with no people yet: nothing is kept, every field comes from the workbook."""
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    plan = run(full_book(tmp_path / "b.xlsx"), site)
    assert plan.problems == []
    people = load_site(site).people
    wang = people["wang-jianguo"]
    assert wang.im == {"dingtalk": "+8613905720001", "wecom": "wangjianguo"}
    assert wang.phone == "+8613905720001" and wang.phones == (PhoneNumber("+8617400012345", PhoneKind.SATELLITE),)
    assert wang.responsibilities == (Responsibility("包保", ("330501100",)), Responsibility("驻村", ("330501101202",)))
    chen = people["chen-guoqiang"]
    assert chen.im == {"feishu": "ou_7d8a"}
    assert chen.roles == ("town_head", "geohazard_monitor")
    assert chen.responsibilities == (
        Responsibility("包村", ("330501100201", "330501100203")),
        Responsibility("监测员", zones=("baiyangou",), roles=("geohazard_monitor",)),  # held in one of his roles
        Responsibility("包保", ("330501101201",), roles=("town_head",)),  # after a line break: a new one
    )
    li = people["li-qiang"]
    assert li.im == {} and li.responsibilities == (Responsibility("网格", ("330501100201002",)),)


def test_export_then_import_into_a_new_site_gives_every_field(tmp_path: Path) -> None:
    """The 其他责任 column and the IM and 卫星电话 columns carry what the 包保 column cannot."""
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    run(full_book(tmp_path / "b.xlsx"), site)
    from dispatcher.workbook import export_workbook

    export_workbook(site, tmp_path / "out.xlsx")
    fresh = write_site(tmp_path / "fresh", ROLES_ONLY, "shifts: []\n")
    plan = run(tmp_path / "out.xlsx", fresh)
    assert plan.problems == []
    assert load_site(fresh).people == load_site(site).people


def test_the_new_columns_are_kept_when_absent_and_cleared_when_empty(site: Path, tmp_path: Path) -> None:
    """An old workbook (county_book: no 卫星电话, IM or 其他责任 column) keeps them; a workbook
    with the columns and empty cells clears them, and the summary names what changed."""
    run(county_book(tmp_path / "old.xlsx"), site)
    wang = load_site(site).people["wang-jianguo"]
    assert wang.im == {"dingtalk": "+8613905720001"}
    assert PhoneNumber("+8617400012345", PhoneKind.SATELLITE) in wang.phones
    assert Responsibility("驻村", ("330501101202",)) in wang.responsibilities
    rows = roster()
    header = [*HEADER, "钉钉", "卫星电话", "其他责任"]
    body = [[*row, None, None, None] for row in rows]
    book = write_book(tmp_path / "new.xlsx", ("县乡", [header, *body]))
    plan = run(book, site)
    assert plan.problems == []
    wang = load_site(site).people["wang-jianguo"]
    assert wang.im == {} and wang.phones == (PhoneNumber("+865725012345", PhoneKind.LANDLINE),)
    assert wang.responsibilities == (Responsibility("包保", ("330501100", "330501101")),)
    assert dict(plan.changes.changed)["王建国 (wang-jianguo)"] == ["卫星电话", "钉钉", "其他责任"]


def test_the_opening_comment_is_kept_and_the_others_are_counted(site: Path, tmp_path: Path) -> None:
    people = site / "people.yaml"
    people.write_text(PEOPLE.replace("    unit: 县人民政府\n", "    unit: 县人民政府  # 县长\n", 1)
                      .replace("people:\n", "people:\n  # ---- 县领导 ----\n"), encoding="utf-8")
    plan = run(county_book(tmp_path / "b.xlsx"), site)
    text = people.read_text(encoding="utf-8")
    assert text.splitlines()[:3] == [
        "# Generated by `jiaoying import xlsx` from b.xlsx: edit the workbook and import it again",
        "# (hand edits here are replaced by the next import; `jiaoying export xlsx` writes the workbook).",
        "# 示范县责任人（手写）"]
    assert "县长" not in text and "---- 县领导" not in text
    assert "注意：people.yaml 开头注释以外的 2 行注释不会保留 / 2 comment line(s) in people.yaml below its opening " \
           "comment are not kept" in plan.summary()
    again = run(county_book(tmp_path / "b.xlsx"), site)  # the opening comment is not doubled
    assert people.read_text(encoding="utf-8") == text and again.comments_dropped == 0



# -- bad input: every problem at its cell, nothing written -------------------------------------


def assert_refused(site: Path, book: Path, *expected: str) -> ImportPlan:
    before = (site / "people.yaml").read_bytes()
    plan = run(book, site)
    found = problems(plan)
    for text in expected:
        assert any(text in p for p in found), f"{text!r} not in {found}"
    assert plan.text is None
    assert (site / "people.yaml").read_bytes() == before
    return plan


def test_bad_input_invalid_phone_numbers(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[0][3] = "1390572000"  # one digit short
    rows[2][10] = "13905720103、12345"  # a bad backup number
    rows[3][3] = "0572-5012345"  # a landline as 手机
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!县乡!D4: 手机号码无效 / invalid phone number '1390572000'",
                   "bad.xlsx!县乡!K7: 备用电话号码无效 / invalid phone number '12345'",
                   "bad.xlsx!县乡!D8: 手机 '0572-5012345' 不是手机号码")


def test_bad_input_missing_name_column(site: Path, tmp_path: Path) -> None:
    rows = [["示范县通讯录"], ["名字", "手机", "区域", "职务"], ["王建国", "13905720001", "示范县", "县领导(包保)"]]
    plan = assert_refused(site, write_book(tmp_path / "bad.xlsx", ("Sheet1", rows)),
                          "bad.xlsx!Sheet1!B2: no 姓名 column in this header row")
    assert len(plan.problems) == 1


def test_summary_and_hidden_sheets_are_skipped(site: Path, tmp_path: Path) -> None:
    summary = [["各乡镇汇总"], ["区域", "单位", "人数"], ["龙潭镇", "龙潭镇人民政府", 3]]
    book = county_book(tmp_path / "b.xlsx")
    workbook = load_workbook(book)
    sheet = workbook.create_sheet("汇总")
    for row in summary:
        sheet.append(row)
    workbook.save(book)
    old = workbook.copy_worksheet(workbook["县乡"])  # last year's roster, hidden
    old.title, old.sheet_state = "2025年", "hidden"
    workbook.save(book)
    plan = run(book, site)
    assert plan.problems == [] and plan.sheets == ["县乡", "白云镇"]
    assert plan.skipped == ["说明: no header row with 姓名", "汇总: no header row with 姓名",
                            "2025年: hidden; not read (unhide the sheet to import it)"]


def test_bad_input_no_roster_at_all(site: Path, tmp_path: Path) -> None:
    assert_refused(site, write_book(tmp_path / "bad.xlsx", ("Sheet1", [["hello"], ["world"]])),
                   "bad.xlsx: no sheet has a header row with 姓名")


def test_bad_input_not_a_workbook(site: Path, tmp_path: Path) -> None:
    book = tmp_path / "bad.xlsx"
    book.write_text("姓名,手机\n王建国,13905720001\n", encoding="utf-8")
    assert_refused(site, book, "bad.xlsx: cannot read the workbook (save it as .xlsx)")


def test_bad_input_unknown_and_ambiguous_areas(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[2][5] = "红旗镇"  # no such town
    rows[3][5] = "新村"  # two villages are called 新村
    rows[4][5] = 3305011002  # not a division code
    rows[2][8] = "潭头村、石门村"  # 包保 an unknown village
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!县乡!F7: 未知区域 / unknown area '红旗镇'",
                   "bad.xlsx!县乡!F8: 区域名称不唯一 / ambiguous area '新村': 龙潭镇/新村 (330501100202)、白云镇/新村 "
                   "(330501101201); write the path (镇/村) or the code",
                   "bad.xlsx!县乡!F9: 未知区域 / unknown area '3305011002'",
                   "bad.xlsx!县乡!I7: 未知区域或片区 / unknown area or zone '石门村'")


def test_bad_input_empty_area(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[4][5] = None
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows), "bad.xlsx!县乡!F9: 区域为空")


def test_bad_input_merged_area_reported_once(site: Path, tmp_path: Path) -> None:
    sheet = baiyun()
    sheet[2][3] = "白云镇/老村"  # the merged 区域 D3:D4 covers two rows
    book = write_book(tmp_path / "bad.xlsx", ("白云镇", sheet), merges={"白云镇": ["D3:D4"]})
    plan = assert_refused(site, book, "bad.xlsx!白云镇!D3: 未知区域 / unknown area '白云镇/老村'")
    assert len([p for p in problems(plan) if "老村" in p]) == 1


def test_bad_input_deputy_or_superior_naming_nobody_or_several(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows[0][6] = "赵六"  # nobody
    rows[4][7] = "李强"  # himself
    rows.append([6, "陈国强", "乡镇长", "13905720010", "白云镇人民政府", "白云镇", None, None, None, None, None, None])
    # 张明亮's 上级 陈国强 is now two people
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!县乡!G4: AB岗 '赵六' 不在通讯录中 / names nobody in the workbook",
                   "bad.xlsx!县乡!H9: 上级 不能是本人",
                   "bad.xlsx!县乡!H8: 上级 '陈国强' 有重名 / several people are called 陈国强 (县乡!B7, 县乡!B10)")


def test_bad_input_duplicate_person(site: Path, tmp_path: Path) -> None:
    rows = roster()
    rows.append(list(rows[2]))  # 陈国强 twice, same 手机
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!县乡!B10: 重复人员 / duplicate person: 陈国强 with the same 手机 is already at 县乡!B7")


def test_bad_input_invalid_email(site: Path, tmp_path: Path) -> None:
    sheet = baiyun()
    sheet[2][6] = "liuyang@"
    assert_refused(site, write_book(tmp_path / "bad.xlsx", ("白云镇", sheet)),
                   "bad.xlsx!白云镇!G3: 邮箱无效 / 'liuyang@' is not an email address")


def test_bad_input_site_problems_traced_to_cells(site: Path, tmp_path: Path) -> None:
    """Problems only the whole-site check finds: a deputy cycle, a 包保 of one's own seat."""
    rows = roster()
    rows[1][6] = "王建国"  # 王建国 <-> 周敏 as each other's deputy
    rows[2][8] = "龙潭镇"  # 陈国强 sits in 龙潭镇
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!县乡!G4: person wang-jianguo: deputy cycle: wang-jianguo -> zhou-min -> wang-jianguo",
                   "bad.xlsx!县乡!I7: person chen-guoqiang: responsibility 1: area '330501100' is the person's "
                   "own seat")


def test_bad_input_removing_someone_on_duty(site: Path, tmp_path: Path) -> None:
    rows = [r for r in roster() if r[1] != "周敏"]
    for row in rows:
        row[6] = None if row[6] == "周敏" else row[6]
        row[7] = None if row[7] == "周敏" else row[7]
    assert_refused(site, county_book(tmp_path / "bad.xlsx", rows),
                   "duty.yaml:2: weekly mon: chief 'zhou-min' is not a person in people.yaml (周敏 zhou-min is not in "
                   "the workbook)")


def test_bad_input_no_people_yaml_so_the_plans_roles_are_unknown(tmp_path: Path) -> None:
    """Without people.yaml every 职务 is a new role: the plans' roles are then undeclared."""
    site = write_site(tmp_path / "demo", duty="shifts: []\n")
    (site / "people.yaml").unlink()
    plan = run(county_book(tmp_path / "bad.xlsx"), site)
    assert "plans.yaml:6: plan rain-red: target 1: unknown role 'county_leader'" in "\n".join(problems(plan))
    assert not (site / "people.yaml").exists()


def test_bad_input_role_display_name_shared_by_two_roles(tmp_path: Path) -> None:
    people = PEOPLE.replace("  town_head: 乡镇长\n", "  town_head: 乡镇长\n  mayor: 乡镇长\n")
    site = write_site(tmp_path / "demo", people)
    assert_refused(site, county_book(tmp_path / "bad.xlsx"),
                   "bad.xlsx!县乡!C7: 职务 '乡镇长' 对应多个岗位 / matches roles town_head, mayor")


def test_bad_input_unknown_kind_of_responsibility(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[1][9] = "包材：潭头村"  # 包材: a typo for 包村
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!J4: 未知责任类别 / unknown kind of responsibility '包材' (known: 包保、包乡")


def test_a_kind_the_site_already_uses_is_known(tmp_path: Path) -> None:
    """A county's own kind (here 联防, written in people.yaml) is accepted from the workbook."""
    site = write_site(tmp_path / "demo", PEOPLE.replace("{ kind: 驻村,", "{ kind: 联防,"), "shifts: []\n")
    rows = full_rows()
    rows[1][9] = "联防：潭头村"
    plan = run(full_book(tmp_path / "b.xlsx", rows), site)
    assert plan.problems == []
    assert load_site(site).people["chen-guoqiang"].responsibilities == (Responsibility("联防", ("330501100201",)),)


def test_bad_input_unknown_zone_in_other_responsibilities(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[1][9] = "监测员：黑石沟小流域"  # no such zone (nor area)
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!J4: 未知区域或片区 / unknown area or zone '黑石沟小流域'")


def test_bad_input_other_responsibilities_without_a_kind_or_a_place(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[0][9] = "云峰村"  # no 类别：
    rows[1][9] = "包村："  # a kind and no village
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!J3: 其他责任 '云峰村' 缺少类别 / has no kind: write 类别：区域, e.g. 包村：云峰村",
                   "bad.xlsx!名单!J4: 其他责任 '包村' 没有区域或片区 / names no area or zone")


def test_bad_input_responsibility_held_in_a_role_that_is_not_the_persons(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[2][9] = "网格（乡镇长）：潭头村/二组"  # 李强 is 村防汛责任人, not 乡镇长: found by the whole-site check
    rows[0][9] = "驻村（组长）：云峰村"  # 组长 is no role at all
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!J3: 其他责任的职务 '组长' 未知 / unknown role '组长'")
    rows[0][9] = "驻村：云峰村"
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!J5: person li-qiang: responsibility 1: role 'town_head' is not one of the person's "
                   "roles (village_flood_officer) (people.yaml line ")


def test_bad_input_malformed_im_accounts(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[0][5] = "王建国"  # a name, not a DingTalk user id
    rows[0][6] = "wang jianguo"  # a blank inside a WeCom UserID
    rows[1][7] = "ou_7d8a、ou_9f0b"  # two Feishu ids in one cell
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!F3: 钉钉账号无效 / '王建国' is not a DingTalk account id",
                   "bad.xlsx!名单!G3: 企业微信账号无效 / 'wang jianguo' is not a WeCom account id",
                   "bad.xlsx!名单!H4: 飞书账号无效 / 'ou_7d8a、ou_9f0b' is not a Feishu account id")


def test_bad_input_a_satellite_phone_that_is_not_one(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo", ROLES_ONLY, "shifts: []\n")
    rows = full_rows()
    rows[0][3] = "13905720101"  # an ordinary mobile under 卫星电话
    rows[1][3] = "0572-5012345"  # a landline under 卫星电话
    rows[2][3] = "1740001"  # too short to be any number
    assert_refused(site, full_book(tmp_path / "bad.xlsx", rows),
                   "bad.xlsx!名单!D3: 卫星电话 '13905720101' 不是卫星电话号码 / is not a satellite phone number",
                   "bad.xlsx!名单!D4: 卫星电话 '0572-5012345' 不是卫星电话号码",
                   "bad.xlsx!名单!D5: 卫星电话号码无效 / invalid phone number '1740001'")



# -- pieces -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["yes", "No", "null", "1", "+86", "a: b", "#x", "- x", " lead", "a,b", "[x]",
                                  "中文", "村党组织书记/村主任", "县领导(包保)", "wjg@demo.gov.cn", "tab\there",
                                  "q\"uote", "back\\slash", "\x7f", "line\nbreak", "08:30", "0572", "", "=", "<<", "~"])
def test_yaml_scalars_read_back_as_the_same_text(text: str) -> None:
    assert yaml.safe_load(f"k: {scalar(text)}")["k"] == text
    assert yaml.safe_load(f"k: {flow({'a': [text]})}")["k"] == {"a": [text]}


def test_numbers_are_read_and_shown_as_counties_write_them() -> None:
    assert to_e164("86-13905720001") == "+8613905720001"
    assert to_e164("1390572000") is None
    assert for_display("+8613905720001") == "13905720001"
    assert for_display("+865725012345") == "0572-5012345"
    assert for_display("+862112345678") == "021-12345678"
    assert for_display("+14155550123") == "+14155550123"


def test_other_responsibilities_are_split_as_written() -> None:
    duties, orphans = split_duties("包村：龙潭村、潭头村；监测员（山洪灾害监测员、村防汛责任人）：白岩沟小流域\n"
                                   "包保(县领导(包保))：龙潭镇，白云镇")
    assert [(d.head, d.places) for d in duties] == [
        ("包村", ["龙潭村", "潭头村"]), ("监测员（山洪灾害监测员、村防汛责任人）", ["白岩沟小流域"]),
        ("包保(县领导(包保))", ["龙潭镇", "白云镇"])]
    assert orphans == []
    assert split_duties("龙潭村、包村：潭头村")[1] == ["龙潭村"]
