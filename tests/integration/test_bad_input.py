"""Bad input that used to get a 500 (or was stored and broke the engine later), on SQLite and on
PostgreSQL: each now gets a clear 4xx that names the field and changes nothing. Every test says
which bad input it sends."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.db.session import transaction
from dispatcher.db.tables import WarningRow
from dispatcher.runtime.engine import Engine
from dispatcher.services.users import Role, create_user
from dispatcher.sites import check_site
from tests.conftest import FIXED_NOW, FIXTURES, SAMPLE_SITE
from tests.support.harness import settle_engine

URL = "/api/v1/warnings"
PASSWORD = "correct horse battery"


def red_rainstorm(**overrides: Any) -> dict[str, Any]:
    body = {
        "sender": "qingxi-qx", "identifier": "QX-2026-0716-001", "msg_type": "alert",
        "hazard": "rainstorm", "level": "red", "areas": ["330599100"],
        "headline": "青溪县气象台发布暴雨红色预警信号", "description": "预计3小时内降雨量将达100毫米以上。",
        "instruction": "立即启动防汛应急响应。", "sent": "2026-07-16T11:10:00+08:00",
        "expires": "2026-07-16T23:00:00+08:00",
    }
    return body | overrides


def stored(url: str) -> int:
    with transaction(url) as session:
        return session.scalar(select(func.count()).select_from(WarningRow)) or 0


def fields(response: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


@pytest.fixture
def officer(database_url: str) -> dict[str, str]:
    with transaction(database_url) as session:
        create_user(session, "duty-liu", Role.OFFICER, PASSWORD, FIXED_NOW)
    return {"Authorization": "Basic " + base64.b64encode(f"duty-liu:{PASSWORD}".encode()).decode()}


@pytest.fixture
def callout(client: TestClient, auth: dict[str, str], settings, clock) -> int:
    """An open call-out of a red rainstorm warning the engine has applied."""
    assert client.post(URL, json=red_rainstorm(), headers=auth).status_code == 202
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="bad-input")
    try:
        settle_engine(engine)
    finally:
        engine.close()
    warning = client.get(URL, headers=auth).json()["warnings"][0]["id"]
    found = client.get(f"{URL}/{warning}/callouts", headers=auth).json()["callouts"]
    return found[0]["id"]


# -- NUL characters (PostgreSQL refuses to store them: a 500 there, stored as-is on SQLite) ----------


@pytest.mark.parametrize("field", ["headline", "description", "instruction"])
def test_nul_in_a_warnings_text_is_422_naming_the_field(client: TestClient, auth: dict[str, str],
                                                         database_url: str, field: str) -> None:
    # bad input: a NUL character inside the text
    r = client.post(URL, json=red_rainstorm(**{field: "暴雨\u0000红色"}), headers=auth)
    assert r.status_code == 422, r.text
    assert fields(r) == {field: "must not contain NUL characters (\\u0000)"}
    assert stored(database_url) == 0


@pytest.mark.parametrize("field", ["sender", "identifier"])
def test_nul_in_sender_or_identifier_is_422_naming_the_field(client: TestClient, auth: dict[str, str],
                                                              database_url: str, field: str) -> None:
    # bad input: a NUL character inside the identifier or the sender
    r = client.post(URL, json=red_rainstorm(**{field: "QX\u00002026"}), headers=auth)
    assert r.status_code == 422, r.text
    assert fields(r) == {field: "must be 1–128 characters with no spaces, commas, '<', '&' or control characters"}
    assert stored(database_url) == 0


def test_nul_in_a_reference_is_422_naming_references(client: TestClient, auth: dict[str, str]) -> None:
    # bad input: an update referring to an identifier with a NUL character in it
    r = client.post(URL, json=red_rainstorm(msg_type="update", references=["QX\u00001"]), headers=auth)
    assert r.status_code == 422, r.text
    assert fields(r) == {"references": "'QX\\x001' is not an identifier: an identifier must be 1–128 characters "
                                       "with no spaces, commas, '<', '&' or control characters"}


def test_nul_in_a_manual_acknowledgement_note_is_422_naming_note(
        client: TestClient, callout: int, officer: dict[str, str]) -> None:
    # bad input: the duty officer's note on POST /api/v1/callouts/{id}/ack holds a NUL character
    r = client.post(f"/api/v1/callouts/{callout}/ack", json={"note": "座机\u0000确认"}, headers=officer)
    assert r.status_code == 422, r.text
    assert fields(r) == {"note": "must not contain NUL characters (\\u0000)"}
    ok = client.post(f"/api/v1/callouts/{callout}/ack", json={"note": "座机确认"}, headers=officer)
    assert ok.status_code == 200, ok.text  # nothing was changed by the refused one


# -- call-out ids beyond the database's integers ---------------------------------------------------


@pytest.mark.parametrize("action", ["ack", "recall"])
@pytest.mark.parametrize("callout_id", [2**31, 2**63, 2**64 + 1])
def test_a_callout_id_beyond_the_databases_integers_is_422_naming_it(
        client: TestClient, officer: dict[str, str], action: str, callout_id: int) -> None:
    # bad input: an id past int4 (PostgreSQL: "integer out of range") and past int8 (SQLite: OverflowError)
    r = client.post(f"/api/v1/callouts/{callout_id}/{action}", json={"note": "x"}, headers=officer)
    assert r.status_code == 422, r.text
    assert fields(r) == {"callout_id": "Input should be less than or equal to 2147483647"}


def test_the_largest_callout_id_is_a_404(client: TestClient, officer: dict[str, str]) -> None:
    r = client.post(f"/api/v1/callouts/{2**31 - 1}/recall", headers=officer)
    assert (r.status_code, r.json()["error"]) == (404, "no call-out 2147483647")


# -- the preview's time -----------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "message"), [
    ("2026-07-16T03:00:00", "2026-07-16T03:00:00 must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00"),
    ("9999-12-31T23:00:00+00:00", "9999-12-31T23:00:00+00:00 is outside the years a preview covers (2000 to 2099)"),
    ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+14:00 is outside the years a preview covers (2000 to 2099)"),
])
def test_preview_at_without_offset_or_beyond_the_calendar_is_422_naming_at(
        client: TestClient, auth: dict[str, str], at: str, message: str) -> None:
    # bad input: ?at= naive, in year 9999, in year 1 at +14:00 (each a 500: TypeError or OverflowError)
    r = client.get("/api/v1/plans/preview", headers=auth,
                   params={"hazard": "rainstorm", "level": "red", "areas": "330599100", "at": at})
    assert r.status_code == 422, r.text
    assert fields(r) == {"at": message}


def test_preview_at_with_an_offset_still_works(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get("/api/v1/plans/preview", headers=auth, params={
        "hazard": "rainstorm", "level": "red", "areas": "330599100", "at": "2026-07-16T11:10:00+08:00"})
    assert r.status_code == 200, r.text


# -- warning times --------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["0001-01-03T00:00:00+00:00", "0001-01-01T00:00:00+14:00"])
def test_a_warning_sent_in_year_1_is_422_naming_sent(client: TestClient, auth: dict[str, str],
                                                      database_url: str, sent: str) -> None:
    # bad input: year 1 (stored, then every engine pass overflowed; at +14:00 a 500 at once)
    r = client.post(URL, json=red_rainstorm(sent=sent, expires=None), headers=auth)
    assert r.status_code == 422, r.text
    assert list(fields(r)) == ["sent"] and "is before 2000-01-01" in fields(r)["sent"]
    assert stored(database_url) == 0


def test_a_warning_expiring_years_after_it_was_sent_is_422_naming_expires(
        client: TestClient, auth: dict[str, str], database_url: str) -> None:
    # bad input: expires 9999-12-31
    r = client.post(URL, json=red_rainstorm(expires="9999-12-31T00:00:00+00:00"), headers=auth)
    assert r.status_code == 422, r.text
    assert list(fields(r)) == ["expires"]
    assert stored(database_url) == 0


def test_a_warning_already_expired_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    # (not bad input: a late but valid warning; what it calls is the engine's business)
    r = client.post(URL, json=red_rainstorm(sent="2026-07-15T08:00:00+08:00", expires="2026-07-15T20:00:00+08:00"),
                    headers=auth)
    assert r.status_code == 202, r.text


def test_a_warning_sent_in_year_9999_is_422_naming_sent(client: TestClient, auth: dict[str, str],
                                                        database_url: str) -> None:
    # bad input: sent 9999-12-31 (accepted, then every engine pass died on OverflowError in the duty rota).
    # Needs services/intake.py's receive_warning to call intake.schema.check_sent(draft, now).
    r = client.post(URL, json=red_rainstorm(sent="9999-12-31T00:00:00+00:00", expires=None), headers=auth)
    assert r.status_code == 422, r.text
    assert list(fields(r)) == ["sent"]
    assert "is more than 5 minutes ahead of this server's clock (2026-07-16T03:12:00+00:00)" in fields(r)["sent"]
    assert stored(database_url) == 0


def test_a_cap_alert_sent_in_year_9999_is_422_naming_sent(client: TestClient, auth: dict[str, str],
                                                          database_url: str) -> None:
    # bad input: <sent>9999-12-31T00:00:00+08:00</sent> in an OASIS alert (needs check_sent, as above)
    text = (FIXTURES / "cap" / "oasis-alert.xml").read_text(encoding="utf-8")
    text = text.replace("<sent>2026-07-16T03:10:00+08:00</sent>", "<sent>9999-12-31T00:00:00+08:00</sent>")
    text = text.replace("<expires>2026-07-16T15:00:00+08:00</expires>", "")
    r = client.post(URL, content=text.encode(), headers={**auth, "Content-Type": "application/cap+xml"})
    assert r.status_code == 422, r.text
    assert list(fields(r)) == ["sent"]
    assert stored(database_url) == 0


# -- the JSON body itself ----------------------------------------------------------------------------


def test_json_nested_100000_deep_is_400(client: TestClient, auth: dict[str, str], database_url: str) -> None:
    # bad input: 100,000 nested arrays (RecursionError: a 500). Needs api/routes/warnings.py's parse_body
    # to read JSON with intake.schema.parse_warning_json(body).
    r = client.post(URL, content=b"[" * 100_000 + b"]" * 100_000,
                    headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("malformed JSON: nested too deeply")
    assert stored(database_url) == 0


def test_a_5000_digit_number_is_422_naming_its_field(client: TestClient, auth: dict[str, str]) -> None:
    # bad input: "sent": 999…9 (5,000 digits: Python's int-string limit raised ValueError, a 500). Needs
    # parse_warning_json, as above.
    body = red_rainstorm()
    text = _json(body).replace('"2026-07-16T11:10:00+08:00"', "9" * 5000)
    r = client.post(URL, content=text.encode(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert list(fields(r)) == ["sent"]


def _json(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body, ensure_ascii=False)


# -- site files --------------------------------------------------------------------------------------


def _site_copy(tmp_path: Path, edit: Callable[[Path], None]) -> Path:
    folder = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, folder)
    edit(folder)
    return folder


def _append(name: str, text: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        with (folder / name).open("a", encoding="utf-8") as f:
            f.write(text)

    return edit


def _replace(name: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def _problems(folder: Path) -> list[str]:
    site, problems = check_site(folder)
    assert site is None
    return [str(p) for p in problems]


def test_validate_deeply_nested_yaml_prints_file_and_line_not_a_traceback(tmp_path: Path) -> None:
    # bad input: a plans.yaml entry nested 5,000 flow lists deep (RecursionError: a traceback)
    lines = (SAMPLE_SITE / "plans.yaml").read_text(encoding="utf-8").count("\n")
    folder = _site_copy(tmp_path, _append("plans.yaml", "\nextra: " + "[" * 5000 + "]" * 5000 + "\n"))
    env = {**os.environ, "JIAOYING_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    r = subprocess.run([sys.executable, "-m", "dispatcher", "validate", str(folder)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr
    assert f"plans.yaml:{lines + 2}: invalid YAML: mappings and lists nested more than 50 levels deep" in r.stderr


def test_deeply_nested_block_yaml_is_a_problem_with_its_line(tmp_path: Path) -> None:
    # bad input: 3,000 nested block mappings in people.yaml
    deep = "".join("  " * i + "a:\n" for i in range(3000))
    folder = _site_copy(tmp_path, _append("people.yaml", "\nextra:\n" + deep))
    problems = _problems(folder)
    assert len(problems) == 1 and problems[0].startswith("people.yaml:")
    assert problems[0].endswith("invalid YAML: mappings and lists nested more than 50 levels deep")


def test_a_duty_shift_in_year_1_is_a_problem_not_a_crash_at_load(tmp_path: Path) -> None:
    # bad input: a dated shift from 0001-01-01 (loading it raised OverflowError converting to UTC)
    folder = _site_copy(tmp_path, _replace("duty.yaml", 'start: "2026-07-16 08:30"', 'start: "0001-01-01 00:00"'))
    assert _problems(folder) == ["duty.yaml:7: shift 0001-01-01 00:00: 'start' must be a date and time in the "
                                 "years 2000 to 2099, found '0001-01-01 00:00'"]


def test_a_step_delay_beyond_timedelta_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    # bad input: after: 99999999999h (OverflowError building the timedelta: a traceback)
    folder = _site_copy(tmp_path, _replace("plans.yaml", "after: 10m", "after: 99999999999h"))
    problems = _problems(folder)
    assert len(problems) == 1 and "'after' must be at most 168h (7 days), found '99999999999h'" in problems[0]


def test_a_5000_digit_number_in_a_site_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    # bad input: hours: 999…9 (5,000 digits: ValueError reading the integer, a traceback)
    folder = _site_copy(tmp_path, _replace("duty.yaml", "hours: 24", "hours: " + "9" * 5000))
    problems = _problems(folder)
    assert len(problems) == 1 and "hours must be a number more than 0 (at most 168)" in problems[0]


@pytest.mark.parametrize("escape", ["\\0", "\\ud800"])
def test_nul_or_a_lone_surrogate_in_a_site_file_is_a_problem(tmp_path: Path, escape: str) -> None:
    # bad input: a YAML escape for NUL or a lone surrogate in a person's unit (PostgreSQL cannot store
    # either: `jiaoying load` failed with a traceback)
    text = (SAMPLE_SITE / "people.yaml").read_text(encoding="utf-8")
    unit = next(line for line in text.splitlines() if line.strip().startswith("unit:"))
    folder = _site_copy(tmp_path, _replace("people.yaml", unit, unit.split(":")[0] + f': "县应急{escape}管理局"'))
    problems = _problems(folder)
    assert len(problems) == 1 and "'unit' must not contain" in problems[0], problems


def test_a_warning_id_with_a_nul_character_is_404_on_the_callouts_list(
        client: TestClient, auth: dict[str, str]) -> None:
    # bad input: GET /api/v1/warnings/%00/callouts (PostgreSQL: "text fields cannot contain NUL", a 500)
    r = client.get("/api/v1/warnings/%00/callouts", headers=auth)
    assert (r.status_code, r.json()["error"]) == (404, "no warning \x00")
