"""Full-width punctuation typed with a Chinese input method where YAML needs ASCII: ``name：王建国``
(a full-width colon, U+FF1A) for ``name: 王建国``, and full-width spaces (U+3000) as indentation.

YAML itself reports the colon one line late ("could not find expected ':'" at the next line) or
not at all (``- id：li-ming`` reads as the text "id：li-ming"); ``check_site`` reports the mistake at
its own line and says what to write. Each test injects one bad input into a copy of the sample
county (rosters/qingxi) and asserts every problem, with the exact line of the injected text (found
where it was injected, so that the sample county may grow).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dispatcher.sites import FILES, check_site
from tests.conftest import SAMPLE_SITE


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "qingxi"
    folder.mkdir()
    for name in FILES:
        shutil.copyfile(SAMPLE_SITE / name, folder / name)
    return folder


def inject(folder: Path, name: str, old: str, new: str, after: str = "") -> int:
    """Replace the first ``old`` (after the text ``after``) in a site file with ``new``; return the
    line it is on (1-based): the line every assertion below expects the problem at."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    at = text.index(old, text.index(after) if after else 0)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def problems(folder: Path, file: str = "") -> list[str]:
    """Every problem check_site reports (only those of ``file`` when given)."""
    return [str(p) for p in check_site(folder)[1] if str(p).startswith(file)]


COLON = "(an ASCII colon and a space)"


def test_the_sample_county_reads_without_problems(site: Path) -> None:
    # good input: its comments and values hold full-width colons (# 红色：立即叫醒), none after a key
    assert "：" in (site / "plans.yaml").read_text(encoding="utf-8")
    assert problems(site) == []


def test_a_full_width_colon_after_a_field_in_the_middle_of_a_person(site: Path) -> None:
    # bad input: "    name：王建国" in wang-jianguo's entry, fields follow (YAML fails at the next line)
    line = inject(site, "people.yaml", "    name: 王建国\n", "    name：王建国\n")
    assert problems(site) == [f"people.yaml:{line}: full-width colon '：' after 'name': write 'name: 王建国' {COLON}"]


def test_a_full_width_colon_after_a_list_item_dash(site: Path) -> None:
    # bad input: "  - id：li-weidong" starting a person whose fields follow on the next lines
    line = inject(site, "people.yaml", "  - id: li-weidong\n", "  - id：li-weidong\n")
    assert problems(site) == [f"people.yaml:{line}: full-width colon '：' after 'id': write 'id: li-weidong' "
                              f"{COLON}"]


FIELD = re.compile(r"    ([a-z_]+): ([^\s#{\[]+)")  # a person's field with a plain value, e.g. "    area: x"


def test_a_full_width_colon_in_the_last_field_before_the_next_person(site: Path) -> None:
    # bad input: the first field line directly followed by "  - id: ..." (the last line of an entry),
    # e.g. "    superior：li-ming"
    lines = (site / "people.yaml").read_text(encoding="utf-8").splitlines()
    n = next(i for i, text in enumerate(lines[:-1]) if FIELD.fullmatch(text) and lines[i + 1].startswith("  - id: "))
    key, value = FIELD.fullmatch(lines[n]).groups()
    line = inject(site, "people.yaml", lines[n] + "\n" + lines[n + 1], f"    {key}：{value}\n" + lines[n + 1])
    assert line == n + 1
    assert problems(site) == [f"people.yaml:{line}: full-width colon '：' after '{key}': write '{key}: {value}' "
                              f"{COLON}"]


def test_a_full_width_colon_on_the_last_line_of_the_file(site: Path) -> None:
    # bad input: the file's last line, e.g. "    superior：jiang-aiguo" (YAML fails past the end of the file)
    text = (site / "people.yaml").read_text(encoding="utf-8")
    last = text.splitlines()[-1]
    key, value = FIELD.fullmatch(last).groups()
    assert text.endswith(last + "\n")
    (site / "people.yaml").write_text(text[:-len(last) - 1] + f"    {key}：{value}\n", encoding="utf-8")
    line = text.count("\n")
    assert problems(site) == [
        f"people.yaml:{line}: full-width colon '：' after '{key}': write '{key}: {value}' {COLON}"]


def test_a_full_width_colon_after_a_role_id(site: Path) -> None:
    # bad input: "  water_head：水利局局长" in the roles mapping
    line = inject(site, "people.yaml", "  water_head: 水利局局长\n", "  water_head：水利局局长\n")
    assert problems(site) == [
        f"people.yaml:{line}: full-width colon '：' after 'water_head': write 'water_head: 水利局局长' {COLON}"]


def test_a_full_width_colon_after_a_top_level_key_with_nothing_after_it(site: Path) -> None:
    # bad input: "plans：" (the whole file hangs under it)
    line = inject(site, "plans.yaml", "\nplans:\n", "\nplans：\n") + 1
    assert problems(site) == [
        f"plans.yaml:{line}: full-width colon '：' after 'plans': write 'plans:' (an ASCII colon)"]


def test_a_full_width_colon_that_yaml_reads_without_error_is_still_reported(site: Path) -> None:
    # bad input: '{ code："330599100202", name: 下洋村 }' — YAML reads a key 'code："330599100202"' without a value
    line = inject(site, "areas.yaml", '{ code: "330599100202", name: 下洋村 }',
                  '{ code："330599100202", name: 下洋村 }')
    # (people.yaml's references to the zones of the unread areas.yaml are reported too: not checked here)
    assert problems(site, "areas.yaml") == [
        f"areas.yaml:{line}: full-width colon '：' after 'code': write 'code: \"330599100202\"' {COLON}"]


def test_every_full_width_colon_of_a_file_is_reported_at_its_line(site: Path) -> None:
    # bad input: two people in people.yaml, each with one full-width colon (YAML stops at the first)
    first = inject(site, "people.yaml", "    name: 李明\n", "    name：李明\n")
    second = inject(site, "people.yaml", "    unit: 县人民政府  # 县长，包保青溪镇\n",
                    "    unit：县人民政府  # 县长，包保青溪镇\n")
    assert first < second
    assert problems(site) == [
        f"people.yaml:{first}: full-width colon '：' after 'name': write 'name: 李明' {COLON}",
        f"people.yaml:{second}: full-width colon '：' after 'unit': write 'unit: 县人民政府' {COLON}",
    ]


def test_a_full_width_colon_does_not_hide_a_later_syntax_error(site: Path) -> None:
    # bad input: a full-width colon YAML reads without error, and an unclosed list further on
    first = inject(site, "areas.yaml", '{ code: "330599100202", name: 下洋村 }',
                   '{ code："330599100202", name: 下洋村 }')
    line = inject(site, "areas.yaml", '{ code: "330599101201", name: 石门村 }',
                  '[ code: "330599101201", name: 石门村 }')
    assert first < line - 1
    found = problems(site, "areas.yaml")
    assert found[0] == f"areas.yaml:{first}: full-width colon '：' after 'code': write 'code: \"330599100202\"' " \
                       f"{COLON}"
    assert len(found) == 2 and found[1].startswith(f"areas.yaml:{line}: invalid YAML: ")


def test_a_full_width_colon_inside_a_value_or_quotes_is_text(site: Path) -> None:
    # good input: '：' in a value after a real ': ', and inside a quoted name
    inject(site, "people.yaml", "    unit: 县委  # 县委书记（县长的上级）\n", "    unit: 县委：办公室\n")
    inject(site, "people.yaml", "    name: 王建国\n", '    name: "王建国：县长"\n')
    site_read, found = check_site(site)
    assert found == []
    assert site_read is not None
    assert site_read.people["li-ming"].unit == "县委：办公室"
    assert site_read.people["wang-jianguo"].name == "王建国：县长"


def test_a_quoted_list_item_with_a_full_width_colon_is_not_taken_for_a_key(site: Path) -> None:
    # bad input, but not a full-width key: the quoted role "county_leader：x" is an unknown role
    line = inject(site, "people.yaml", "    roles: [county_leader]\n", '    roles: ["county_leader：x"]\n',
                  after="  - id: wang-jianguo\n")
    found = problems(site)
    assert not any("full-width" in p for p in found)
    assert f"people.yaml:{line}: person wang-jianguo: unknown role 'county_leader：x' (not declared under " \
           "'roles:' in people.yaml)" in found


def test_full_width_spaces_as_indentation(site: Path) -> None:
    # bad input: "　　name: 王建国" — two full-width spaces where four ASCII spaces belong (YAML reads a
    # top-level key "　　name" and no error)
    line = inject(site, "people.yaml", "    name: 王建国\n", "\u3000\u3000name: 王建国\n")
    assert problems(site) == [
        f"people.yaml:{line}: full-width space '\u3000' (U+3000) in the indentation: indent with ASCII spaces"]


def test_a_full_width_space_after_the_indentation(site: Path) -> None:
    # bad input: "  \u3000name: 王建国" — two ASCII spaces and a full-width one (YAML fails at this line)
    line = inject(site, "people.yaml", "    name: 王建国\n", "  \u3000name: 王建国\n")
    assert problems(site) == [
        f"people.yaml:{line}: full-width space '\u3000' (U+3000) in the indentation: indent with ASCII spaces"]


def test_a_full_width_space_after_an_ascii_colon(site: Path) -> None:
    # bad input: "    name:\u3000王建国" — the colon is ASCII but the space after it is full-width
    line = inject(site, "people.yaml", "    name: 王建国\n", "    name:\u3000王建国\n")
    assert problems(site) == [
        f"people.yaml:{line}: full-width space '\u3000' (U+3000) after 'name:': write 'name: 王建国' {COLON}"]
