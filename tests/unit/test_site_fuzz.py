"""Property-based check of the site files' validator: whatever one value of the sample county's files
is replaced by, ``check_site`` (what `jiaoying validate` and `load` run) reports problems with file
and line, or builds a site the rules engine can use; it never raises. Found this way: YAML tags
with a value not of their kind (``!!int abc``, ``!!bool maybe``, ``!!timestamp soon``), integers of
thousands of digits, step delays beyond timedelta, duty shifts in year 1, NUL characters, and
nesting deep enough to exhaust the parser's recursion — each a traceback before.

Bounded for CI: a fixed number of examples, derandomised, no deadline, no example database.
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher.intake.errors import IntakeError
from dispatcher.services.preview import preview
from dispatcher.sites import FILES, check_site
from tests.conftest import FIXED_NOW, SAMPLE_SITE

VALUE_LINE = re.compile(r"^(\s*(?:-\s+)?[A-Za-z_]+:\s*)(\S.*)$")
LINES = {name: (SAMPLE_SITE / name).read_text(encoding="utf-8").splitlines() for name in FILES}
EDITABLE = {name: [i for i, line in enumerate(lines) if VALUE_LINE.match(line)] for name, lines in LINES.items()}
PROBLEM = re.compile(r"^(areas|people|duty|plans)\.yaml:\d+: \S")

HOSTILE_YAML = st.one_of(
    st.sampled_from([
        '"\\0"', '"a\\ud800"', "9" * 5000, "-" + "9" * 40, "[" * 1000 + "]" * 1000, "{a: 1}", "[1, 2]", "[]", "{}",
        "!!int abc", "!!int 0x1F", "!!float abc", "!!bool maybe", "!!timestamp soon", '!!binary "!!!"',
        "!!set {a, b}", "!!python/object:os.system", "*nope", "&a [*a]", "~", "true", "2026-07-16", "99999999999h",
        "9999999h", "169h", '"0001-01-01 00:00"', '"9999-12-31 23:59"', '"2026-07-16 08:30+14:00"', "-1", "1e999",
        ".nan", ".inf", "''", '"' + "x" * 5000 + '"', '"\\t"', '"+86 0139 0572 0001"', '"25:99"', '"24:00"', "0",
        '"0"', '"330599"', '"Mars/Olympus"', "!!str", "|\n  block", "'unterminated",
    ]),
    st.text(max_size=30).map(json.dumps),  # any text, as a YAML double-quoted string (JSON's escapes are YAML's)
    st.integers().map(str),
)


def edited(folder: Path, name: str, index: int, value: str) -> None:
    for file in FILES:
        shutil.copyfile(SAMPLE_SITE / file, folder / file)
    lines = list(LINES[name])
    match = VALUE_LINE.match(lines[index])
    assert match
    lines[index] = match.group(1) + value
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("site") / "qingxi"


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), value=HOSTILE_YAML)
def test_no_edit_to_a_site_file_makes_the_validator_raise(folder: Path, data: st.DataObject, value: str) -> None:
    # bad input: one value of one site file replaced by a hostile one
    name = data.draw(st.sampled_from(FILES), label="file")
    index = data.draw(st.sampled_from(EDITABLE[name]), label="line")
    folder.mkdir(parents=True, exist_ok=True)
    edited(folder, name, index, value)
    try:
        site, problems = check_site(folder)
    except Exception as exc:  # say which edit: Hypothesis's report leaves long values out
        raise AssertionError(f"{name}:{index + 1} set to {value[:200]!r}: {type(exc).__name__}: {exc}") from exc
    assert site is not None or problems
    for problem in problems:
        assert PROBLEM.match(str(problem)), str(problem)
    if site is not None:  # a valid site: the rules engine can use it at once (or refuse the warning's
        with suppress(IntakeError):  # area, if the edit took it out of the site: a refusal, not a crash)
            preview(site, "rainstorm", "red", ["330599100"], FIXED_NOW)
