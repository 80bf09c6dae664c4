"""The forwarding file (dispatcher/forwarding_file.py) and ``jiaoying forwarding``: the sample is
valid; every problem is named with its file and line, all at once; keys come from the environment
and never show; the CAP we write (intake/cap_out.py) is read back by our own CAP intake as the
same warning."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain.hazards import Hazard, Level
from dispatcher.forwarding_file import ForwardingFileInvalid, check_file, load_file
from dispatcher.intake.cap import parse_cap
from dispatcher.intake.cap_out import CapMessage, Reference, cap_time, write_cap
from dispatcher.intake.schema import parse_warning_dict
from tests.conftest import ROOT

SAMPLE = ROOT / "templates" / "forwarding.sample.yaml"
KEYS = {"JY_FORWARD_CITY_KEY": "city-key-secret", "JY_REPORT_CITY_KEY": "report-key-secret",
        "JY_REPORT_FLOOD_KEY": "flood-key-secret"}
BEIJING = ZoneInfo("Asia/Shanghai")


def jiaoying(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JIAOYING_", "JY_"))}
    env.setdefault("JIAOYING_DATABASE_URL", f"sqlite:///{cwd / 'jy.db'}")
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], cwd=cwd, env=clean | env,
                          capture_output=True, text=True, timeout=60)


def test_the_sample_file_is_valid_and_keeps_its_keys_out_of_sight() -> None:
    config = load_file(SAMPLE, KEYS)
    assert config.sender == "qingxi" and [t.id for t in config.targets] == ["city", "songyang", "city-flood"]
    city, songyang, flood = config.targets
    assert city.key == "city-key-secret" and city.agency == "lishui-city" and city.levels == {Level.RED, Level.ORANGE}
    assert [(r.kind, r.format) for r in city.report] == [("report", "json"), ("report_email", "json")]
    assert city.report[0].key == "report-key-secret"
    assert city.report[1].emails == ("yjj-duty@city.example", "zhihuizhongxin@city.example")
    assert songyang.levels == {Level.RED} and Hazard.FLASH_FLOOD in (songyang.hazards or ())
    assert not songyang.drills and songyang.wants("rainstorm", "red", False)
    assert not songyang.wants("heat", "red", False) and not songyang.wants("rainstorm", "orange", False)
    assert not songyang.wants("rainstorm", "red", True)  # drills stay home unless the target says so
    assert flood.url == "" and flood.report[0].format == "cap"
    shown = repr(config)
    assert not any(secret in shown for secret in KEYS.values()) and "FAKE-KEY" not in shown


def test_every_problem_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "forwarding.yaml"
    path.write_text("""\
sender: "青溪 县"
targets:
  - id: city
    url: http://city.example/api/v1/warnings
    key_env: NOT_SET_ANYWHERE
    levels: [red, crimson]
    colour: red
  - id: city
    name: 重复
    url: https://city.example/x
    key: k
  - id: bad id!
    url: https://x.example/
  - id: reports
    drills: maybe
    timeout: 5
    report:
      - url: https://r.example/
        format: xml
      - email: [not-an-address, ok@city.example]
        key: k
      - { url: https://r.example/, email: [a@b.example] }
  - id: nothing
""", encoding="utf-8")
    config, problems = check_file(path, {})
    assert [str(p) for p in problems] == [
        "forwarding.yaml:1: 'sender' must be 1–128 characters with no spaces, commas, '<' or '&', found '青溪 县'",
        "forwarding.yaml:7: target city: unknown field 'colour' (accepted: id, name, url, key, key_env, agency, "
        "levels, hazards, drills, sender, timeout, report)",
        "forwarding.yaml:4: target city: 'url' must use https (it carries a key): plain http only to this machine "
        "(127.0.0.1), found 'http://city.example/api/v1/warnings'",
        "forwarding.yaml:5: target city: key_env: the environment variable NOT_SET_ANYWHERE is not set (or empty)",
        "forwarding.yaml:6: target city: unknown level 'crimson'; accepted: blue, yellow, orange, red",
        "forwarding.yaml:8: target city: target id 'city' is used twice (also at line 3)",
        "forwarding.yaml:12: target 3: 'id' must be 1 to 64 letters, digits, '-' or '_', found 'bad id!'",
        "forwarding.yaml:13: target 3: 'key' or 'key_env' is required with 'url': the agency key they gave us for "
        "their intake",
        "forwarding.yaml:15: target reports: 'drills' must be true or false, found 'maybe'",
        "forwarding.yaml:16: target reports: 'timeout' needs a unit: write 5s, 5m or 5h",
        "forwarding.yaml:19: target reports: report 1: unknown format 'xml'; accepted: json, cap",
        "forwarding.yaml:20: target reports: report 2: 'not-an-address' is not an e-mail address",
        "forwarding.yaml:21: target reports: report 2: 'key' is for webhooks, not e-mail",
        "forwarding.yaml:22: target reports: report 3: give either 'url' (a webhook) or 'email' (addresses), one "
        "per entry",
        "forwarding.yaml:23: target nothing: give a 'url' (their intake, which takes CAP 1.2) or a 'report' list, "
        "or both",
    ]
    with pytest.raises(ForwardingFileInvalid) as refused:
        load_file(path, {})
    assert len(refused.value.problems) == 15 and str(refused.value).endswith("(and 10 more)")
    assert config is not None and config.targets == ()  # no target with a problem is used


@pytest.mark.parametrize(("text", "expected"), [
    ("targets:\n  - id: city\n    url: [unclosed\n", "forwarding.yaml:4: invalid YAML"),
    ("targets:\n  - id：city\n", "forwarding.yaml:2: full-width colon '：' after 'id': write 'id: city'"),
    ("", "forwarding.yaml:1: the file is empty: it needs a 'targets' list"),
    ("sender: x\n", "forwarding.yaml:1: 'targets' is required: a list of the systems warnings are forwarded to"),
    ("- id: city\n", "forwarding.yaml:1: expected a mapping of fields, found a list"),
])
def test_unreadable_files_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "forwarding.yaml"
    path.write_text(text, encoding="utf-8")
    _, problems = check_file(path, {})
    assert str(problems[0]).startswith(expected), problems


def test_a_missing_file_is_a_problem(tmp_path: Path) -> None:
    _, problems = check_file(tmp_path / "nowhere.yaml", {})
    assert [str(p) for p in problems] == [f"nowhere.yaml:1: file is missing: nowhere.yaml must be in {tmp_path}"]


def test_the_check_command(tmp_path: Path) -> None:
    good = jiaoying("forwarding", "check", "--file", str(SAMPLE), cwd=tmp_path, **KEYS)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{SAMPLE}: ok — 3 target(s), sending as qingxi")
    assert "city (丽水市突发事件预警信息发布平台): red, orange; every hazard; drills not forwarded" in good.stdout
    assert "report by e-mail to yjj-duty@city.example, zhihuizhongxin@city.example" in good.stdout
    assert "e-mail reports need JIAOYING_SMTP_HOST" in good.stderr
    assert not any(secret in good.stdout + good.stderr for secret in KEYS.values())

    unset = jiaoying("forwarding", "check", "--file", str(SAMPLE), cwd=tmp_path)
    assert unset.returncode == 1
    assert "forwarding.sample.yaml:15: target city: key_env: the environment variable JY_FORWARD_CITY_KEY is not " \
           "set (or empty)" in unset.stderr
    assert "3 problem(s) in" in unset.stderr

    none = jiaoying("forwarding", "check", cwd=tmp_path)
    assert none.returncode == 1 and "JIAOYING_FORWARDING_FILE" in none.stderr

    from_env = jiaoying("forwarding", "check", cwd=tmp_path, JIAOYING_FORWARDING_FILE=str(SAMPLE), **KEYS)
    assert from_env.returncode == 0, from_env.stderr


def test_status_and_retry_commands(tmp_path: Path) -> None:
    assert jiaoying("db", "upgrade", cwd=tmp_path).returncode == 0
    status = jiaoying("forwarding", "status", cwd=tmp_path)
    assert status.returncode == 0 and "nothing waiting" in status.stdout
    retry = jiaoying("forwarding", "retry", "--target", "city", cwd=tmp_path)
    assert retry.returncode == 0 and retry.stdout.strip() == "0 queued again for city"


# -- the CAP we write is the warning our intake reads -----------------------------------------------


SENT = datetime(2026, 7, 16, 3, 10, tzinfo=UTC)


def message(**more: object) -> CapMessage:
    fields: dict[str, object] = {
        "identifier": "W20260716-7K3M9Q", "sender": "qingxi", "sent": SENT, "msg_type": "alert",
        "hazard": Hazard.FLASH_FLOOD, "level": Level.ORANGE, "headline": "青溪县山洪橙色预警 <含 & 符号>",
        "areas": [("330599100", "青溪镇"), ("330599101201", "石门村")], "tz": BEIJING,
        "expires": SENT + timedelta(hours=12), "zones": [("baiyangou", "白岩沟小流域")], "via": ["lishui", "qingxi"],
        "description": "预计未来3小时……", "instruction": "立即转移。", "sender_name": "青溪县应急管理局"}
    fields.update(more)
    return CapMessage(**fields)  # type: ignore[arg-type]


def test_the_written_cap_reads_back_as_the_same_warning() -> None:
    body = write_cap(message())
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n"
                           b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">')
    assert b"<severity>Orange</severity>" in body and b"<sent>2026-07-16T11:10:00+08:00</sent>" in body
    warning = parse_warning_dict(parse_cap(body))
    assert (warning.sender, warning.identifier, warning.msg_type.value) == ("qingxi", "W20260716-7K3M9Q", "alert")
    assert (warning.hazard, warning.level) == (Hazard.FLASH_FLOOD, Level.ORANGE)
    assert warning.areas == ["330599100", "330599101201"] and warning.zones == ["baiyangou"]
    assert warning.headline == "青溪县山洪橙色预警 <含 & 符号>" and warning.instruction == "立即转移。"
    assert warning.sent == SENT and warning.expires == SENT + timedelta(hours=12) and warning.drill is False
    assert warning.via == ["lishui", "qingxi"]


def test_a_written_drill_cancel_names_what_it_cancels() -> None:
    earlier = Reference("qingxi", "W20260716-7K3M9Q", SENT)
    body = write_cap(message(identifier="W20260716-CANCEL", msg_type="cancel", drill=True, references=[earlier],
                             sent=SENT + timedelta(hours=1), hazard=Hazard.RAINSTORM, level=Level.RED))
    assert b"<status>Exercise</status>" in body and b"<msgType>Cancel</msgType>" in body
    assert b"<references>qingxi,W20260716-7K3M9Q,2026-07-16T11:10:00+08:00</references>" in body
    assert b"<value>0204</value>" in body  # the CMA feed's code: rainstorm, red
    warning = parse_warning_dict(parse_cap(body))
    assert (warning.msg_type.value, warning.references, warning.drill) == ("cancel", ["W20260716-7K3M9Q"], True)


def test_cap_times_carry_their_offset_and_no_fraction() -> None:
    moment = datetime(2026, 7, 16, 3, 10, 5, 123456, tzinfo=UTC)
    assert cap_time(moment, BEIJING) == "2026-07-16T11:10:05+08:00"
    assert cap_time(moment, UTC) == "2026-07-16T03:10:05-00:00"  # UTC as CAP 1.2 writes it
    assert parse_cap(write_cap(message(sent=moment, tz=UTC)))["sent"] == "2026-07-16T03:10:05+00:00"
