"""`jiaoying import xlsx` and `jiaoying export xlsx`, run as a user runs them (a subprocess)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

from dispatcher.sites import load_site
from tests.conftest import ROOT, SAMPLE_SITE
from tests.unit.test_workbook_import import county_book, roster, write_site

SAMPLE_WORKBOOK = SAMPLE_SITE / "通讯录.xlsx"


def jiaoying(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    return subprocess.run([sys.executable, "-m", "dispatcher", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_dry_run_prints_what_would_change_and_writes_nothing(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo")
    before = (site / "people.yaml").read_bytes()
    r = jiaoying("import", "xlsx", county_book(tmp_path / "通讯录.xlsx"), "--site", site, "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("通讯录.xlsx: 7 people from sheet(s) 县乡, 白云镇 "
                        "(3 rows without a person skipped: 合计, 备注, no 姓名)")
    assert "skipped sheet 说明: no header row with 姓名" in lines
    assert "new role zu-zhang: 组长" in lines
    assert "changed 王建国 (wang-jianguo): 备用电话/办公电话, AB岗, 包保" in lines
    assert "removed 李四 (li-si)" in lines
    assert lines[-2] == "5 added, 2 changed, 1 removed, 0 unchanged, 1 new role(s)"
    assert lines[-1].startswith("dry run: nothing written")
    assert (site / "people.yaml").read_bytes() == before


def test_import_writes_a_site_that_validates(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo")
    book = county_book(tmp_path / "通讯录.xlsx")
    r = jiaoying("import", "xlsx", book, "--site", site)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"wrote {site / 'people.yaml'}"
    assert jiaoying("validate", site).returncode == 0
    again = jiaoying("import", "xlsx", book, "--site", site)
    assert again.returncode == 0 and "0 added, 0 changed, 0 removed, 7 unchanged" in again.stdout
    assert again.stdout.splitlines()[-1].endswith("is already up to date; not rewritten")


def test_bad_rows_are_reported_at_their_cells_and_nothing_is_written(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo")
    before = (site / "people.yaml").read_bytes()
    rows = roster()
    rows[0][3] = "1390572000"  # bad input: a 手机 one digit short
    rows[3][5] = "新村"  # bad input: an area name two villages share
    rows[4][7] = "赵六"  # bad input: a 上级 who is not in the workbook
    r = jiaoying("import", "xlsx", county_book(tmp_path / "bad.xlsx", rows), "--site", site)
    assert r.returncode == 1
    problems = [line for line in r.stderr.splitlines() if line.startswith("bad.xlsx!")]
    assert [p.split(":")[0] for p in problems] == ["bad.xlsx!县乡!D4", "bad.xlsx!县乡!F8", "bad.xlsx!县乡!H9"]
    assert all(re.match(r"^bad\.xlsx!县乡![A-Z]+\d+: ", p) for p in problems)
    assert "3 problem(s) in bad.xlsx; nothing was written" in r.stderr
    assert r.stdout == ""
    assert (site / "people.yaml").read_bytes() == before


def test_a_missing_workbook_or_site_is_an_error(tmp_path: Path) -> None:
    site = write_site(tmp_path / "demo")
    r = jiaoying("import", "xlsx", tmp_path / "nope.xlsx", "--site", site)
    assert r.returncode == 1 and "no such workbook" in r.stderr
    r = jiaoying("export", "xlsx", "--site", tmp_path / "nosite", tmp_path / "out.xlsx")
    assert r.returncode == 1 and "no such site folder" in r.stderr


def test_export_then_import_through_the_command(tmp_path: Path) -> None:
    site = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, site, ignore=shutil.ignore_patterns("*.xlsx"))
    book = tmp_path / "out.xlsx"
    r = jiaoying("export", "xlsx", "--site", site, book)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {book}: {len(load_site(SAMPLE_SITE).people)} people (通讯录)")
    r = jiaoying("import", "xlsx", book, "--site", site, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert ", 0 new role(s)" in r.stdout and "0 added, 0 changed, 0 removed" in r.stdout


def test_the_sample_workbook_imports_to_the_sample_people(tmp_path: Path) -> None:
    site = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, site)
    r = jiaoying("import", "xlsx", SAMPLE_WORKBOOK, "--site", site)
    assert r.returncode == 0, r.stderr
    imported, sample = load_site(site), load_site(SAMPLE_SITE)
    stale = "rosters/qingxi/通讯录.xlsx is out of date: run scripts/make-sample-workbook"
    assert imported.people == sample.people, stale
    assert imported.roles == sample.roles, stale


def roles_only_copy(folder: Path) -> Path:
    """The sample site with a people.yaml that holds only its opening comment and `roles:`."""
    shutil.copytree(SAMPLE_SITE, folder, ignore=shutil.ignore_patterns("*.xlsx"))
    text = (SAMPLE_SITE / "people.yaml").read_text(encoding="utf-8")
    (folder / "people.yaml").write_text(text[:text.index("\npeople:")] + "\n", encoding="utf-8")
    return folder


def differences(imported: Path, expected: Path) -> list[tuple[str, str, object, object]]:
    """(person, field, imported, expected) for every field of every person that differs."""
    got, want = load_site(imported).people, load_site(expected).people
    out = [(pid, "(person)", pid in got, pid in want) for pid in sorted(set(got) ^ set(want))]
    for pid in sorted(set(got) & set(want)):
        for f in dataclasses.fields(want[pid]):
            a, b = getattr(got[pid], f.name), getattr(want[pid], f.name)
            if a != b:
                out.append((pid, f.name, a, b))
    return out


def test_the_sample_workbook_alone_gives_the_sample_people(tmp_path: Path) -> None:
    """Into a site with no people: every field of every person (numbers of every kind, IM
    accounts, every kind of responsibility) comes from rosters/qingxi/通讯录.xlsx."""
    site = roles_only_copy(tmp_path / "qingxi")
    r = jiaoying("import", "xlsx", SAMPLE_WORKBOOK, "--site", site)
    assert r.returncode == 0, r.stderr
    assert differences(site, SAMPLE_SITE) == [], "rosters/qingxi/通讯录.xlsx is out of date: run " \
                                                  "scripts/make-sample-workbook"
    assert load_site(site).roles == load_site(SAMPLE_SITE).roles
    assert list(load_site(site).people) == list(load_site(SAMPLE_SITE).people)  # in people.yaml's order
    assert ", 0 new role(s)" in r.stdout and "142 added, 0 changed, 0 removed" in r.stdout


def test_the_sample_workbook_is_kept_as_counties_keep_theirs() -> None:
    """What the sample exercises: several roster sheets and a notes sheet, a merged title over a
    two-row header, heading, 小计, 合计 and 备注 rows, merged 单位 cells, numbers without +86."""
    book = load_workbook(SAMPLE_WORKBOOK)
    assert book.sheetnames == ["县级", "乡镇", "行业部门", "监测员和组长", "填表说明"]
    first = book["县级"]
    merged = {str(r) for r in first.merged_cells.ranges}
    assert {"A1:N1", "B3:B4", "F3:H3"} <= merged and any(r.startswith("D") and r != "D3:D4" for r in merged)
    assert [first.cell(3, c).value for c in (1, 2, 6)] == ["序号", "姓名", "联系电话"]
    assert [first.cell(4, c).value for c in (6, 7, 8)] == ["手机", "备用电话", "办公电话"]
    phones = [row[col].value for sheet in book.worksheets[:4] for row in sheet.iter_rows(min_row=5)
              for col, header in enumerate(c.value for c in sheet[4]) if header in ("手机", "备用电话", "办公电话")
              and row[col].value is not None]
    assert phones and not any(str(v).startswith(("+", "86", "0086")) for v in phones)
    r = jiaoying("import", "xlsx", SAMPLE_WORKBOOK, "--site", SAMPLE_SITE, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == ("通讯录.xlsx: 142 people from sheet(s) 县级, 乡镇, 行业部门, 监测员和组长 "
                                        "(20 rows without a person skipped: 合计, 备注, no 姓名)")
    assert "skipped sheet 填表说明: no header row with 姓名" in r.stdout


def test_export_then_import_into_a_site_without_people(tmp_path: Path) -> None:
    """The export's 通讯录 sheet alone is the whole roster: nothing is lost on the way."""
    book = tmp_path / "out.xlsx"
    assert jiaoying("export", "xlsx", "--site", SAMPLE_SITE, book).returncode == 0
    site = roles_only_copy(tmp_path / "qingxi")
    r = jiaoying("import", "xlsx", book, "--site", site)
    assert r.returncode == 0, r.stderr
    assert differences(site, SAMPLE_SITE) == []


def test_the_dry_run_says_the_comments_are_not_kept(tmp_path: Path) -> None:
    site = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, site)
    r = jiaoying("import", "xlsx", SAMPLE_WORKBOOK, "--site", site, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^注意：people.yaml 开头注释以外的 \d+ 行注释不会保留 / ", r.stdout, re.M), r.stdout
    assert jiaoying("import", "xlsx", SAMPLE_WORKBOOK, "--site", site).returncode == 0
    written = (site / "people.yaml").read_text(encoding="utf-8").splitlines()
    opening = (SAMPLE_SITE / "people.yaml").read_text(encoding="utf-8").splitlines()[:4]
    assert written[2:6] == opening  # the sample's opening comment stays, under the import's own


def test_the_sample_workbook_script(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "make-sample-workbook"
    assert os.access(script, os.X_OK)
    out = tmp_path / "通讯录.xlsx"
    r = subprocess.run([str(script), str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    site = roles_only_copy(tmp_path / "qingxi")
    assert jiaoying("import", "xlsx", out, "--site", site).returncode == 0
    assert differences(site, SAMPLE_SITE) == []
