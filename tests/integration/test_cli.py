"""The `jiaoying` command, run as a user runs it: a subprocess with JIAOYING_DATABASE_URL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import FIXTURES, SAMPLE_SITE
from tests.support.servers import free_port


def jiaoying(*args: str, url: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JIAOYING_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=timeout)


def current_cap(tmp_path: Path) -> Path:
    """The CAP example warning, sent now and in force for six hours: the CLI posts to a server on the
    real clock, and the example's own July times would make it expired on arrival (it calls nobody)."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC).replace(microsecond=0)
    text = (FIXTURES / "cap" / "oasis-alert.xml").read_text(encoding="utf-8")
    text = text.replace("2026-07-16T03:10:00+08:00", now.isoformat())
    text = text.replace("2026-07-16T15:00:00+08:00", (now + timedelta(hours=6)).isoformat())
    path = tmp_path / "alert.xml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert jiaoying("db", "upgrade", url=url).returncode == 0
    return url


def test_db_upgrade_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    r = jiaoying("db", "upgrade", url=f"sqlite:///{tmp_path / 'new.db'}")
    assert r.returncode == 0, r.stderr
    assert "database at revision" in r.stdout


@pytest.mark.postgres
def test_db_upgrade_on_an_empty_postgresql_database(postgres_server) -> None:
    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute("CREATE DATABASE cli_empty")
    r = jiaoying("db", "upgrade", url=postgres_server.url("cli_empty"))
    assert r.returncode == 0, r.stderr
    again = jiaoying("db", "upgrade", url=postgres_server.url("cli_empty"))
    assert again.returncode == 0 and again.stdout == r.stdout


def test_validate_the_sample_site(db: str) -> None:
    r = jiaoying("validate", str(SAMPLE_SITE), url=db)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{SAMPLE_SITE}: ok — ")


def test_validate_a_broken_site_prints_file_and_line_and_fails(db: str, tmp_path: Path) -> None:
    broken = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, broken)
    people = broken / "people.yaml"
    # bad input: a deputy who is not on the roster
    people.write_text(people.read_text(encoding="utf-8").replace("deputy: ", "deputy: ghost-", 1),
                      encoding="utf-8")
    r = jiaoying("validate", str(broken), url=db)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("people.yaml:") and "ghost-" in ln]
    assert len(lines) == 1, r.stderr
    assert "problem(s) in" in r.stderr


def test_load_twice_reports_no_changes_the_second_time(db: str) -> None:
    first = jiaoying("load", str(SAMPLE_SITE), url=db)
    assert first.returncode == 0, first.stderr
    assert "added" in first.stdout
    second = jiaoying("load", str(SAMPLE_SITE), url=db)
    assert second.stdout.strip().endswith("no changes")


def test_keys_create_prints_the_key_alone_on_its_last_line(db: str) -> None:
    r = jiaoying("keys", "create", "--agency", "qingxi-qx", "--hazards", "rainstorm,flash_flood", url=db)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("jy_") and " " not in key
    listed = jiaoying("keys", "list", url=db)
    assert "qingxi-qx" in listed.stdout and key not in listed.stdout


def test_keys_create_refuses_an_unknown_hazard(db: str) -> None:
    r = jiaoying("keys", "create", "--agency", "x", "--hazards", "meteor", url=db)
    assert r.returncode == 1
    assert "unknown hazard 'meteor'" in r.stderr


def test_post_local_then_record_verify(db: str, tmp_path: Path) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    posted = jiaoying("post", str(FIXTURES / "cap" / "oasis-alert.xml"), "--local", url=db)
    assert posted.returncode == 0, posted.stderr
    wid = json.loads(posted.stdout)["id"]
    again = jiaoying("post", str(FIXTURES / "cap" / "oasis-alert.xml"), "--local", url=db)
    assert json.loads(again.stdout) == {"id": wid, "status": "duplicate"}
    rec = jiaoying("record", wid, "--verify", url=db)
    assert rec.returncode == 0, rec.stderr
    assert "received" in rec.stdout and "hash chain intact" in rec.stdout


def test_post_local_refuses_a_bad_file_and_says_why(db: str, tmp_path: Path) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    bad = tmp_path / "bad.json"
    bad.write_text('{"sender": "qingxi-qx", "identifier": "X1", "hazard": "meteor", "level": "red", '
                   '"areas": ["330599100"], "headline": "h", "sent": "2026-07-16T11:10:00+08:00"}')
    r = jiaoying("post", str(bad), "--local", url=db)
    assert r.returncode == 1
    assert "hazard: unknown hazard 'meteor'" in r.stderr


def test_preview_prints_who_would_be_called(db: str) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    r = jiaoying("preview", "--hazard", "rainstorm", "--level", "red", "--areas", "330599100", "--json",
                 "--at", "2026-07-16T11:12:00+08:00", url=db)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["plans"][0] == "rainstorm-red" and body["officials"] > 5
    table = jiaoying("preview", "--hazard", "rainstorm", "--level", "red", "--areas", "330599100", url=db)
    assert "暴雨红色预警" in table.stdout and "rainstorm-red" in table.stdout


def _row(table: str, name: str) -> list[str]:
    """The cells of the first line of ``name``'s row in a rich table."""
    line = next(line for line in table.splitlines() if line.startswith(f"│ {name} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_preview_table_says_for_each_person_the_plan_the_target_and_why(db: str) -> None:
    from tests.support.cli import run_cli

    jiaoying("load", str(SAMPLE_SITE), url=db)
    # 白岩沟小流域 lies in 龙潭镇 and 白云镇, both 包保 by 周敏; a Friday: the duty leader is not a county leader
    args = ("preview", "--hazard", "rainstorm", "--level", "red", "--zones", "baiyangou",
            "--at", "2026-07-24T11:12:00+08:00")
    table = run_cli(*args, env={"JIAOYING_DATABASE_URL": db})
    assert table.returncode == 0, table.stderr
    head = _row(table.stdout.replace("┃", "│"), "姓名 name")
    assert head[3:6] == ["方案 plan", "目标 target", "为何叫应 why"]
    assert _row(table.stdout, "周敏")[3:6] == ["rainstorm-red", "1", "包保龙潭镇、白云镇"]
    monitor = _row(table.stdout, "楼根发")  # 白岩沟 and 潭头山洪危险区 (within 潭头村): both named, the cell wraps
    assert monitor[3:5] == ["rainstorm-red", "5"] and monitor[5].startswith("白岩沟小流域监测员，潭头")
    assert _row(table.stdout, "施荣华")[3:6] == ["rainstorm-red", "7", "白云镇值班室值班长"]
    english = run_cli(*args, "--lang", "en", env={"JIAOYING_DATABASE_URL": db})
    assert _row(english.stdout, "周敏")[3:6] == ["rainstorm-red", "1", "包保 for 龙潭镇、白云镇"]
    assert _row(english.stdout, "施荣华")[5] == "白云镇值班室, chief"
    refused = run_cli(*args, "--lang", "fr", env={"JIAOYING_DATABASE_URL": db})  # bad input: an unknown language
    assert refused.returncode == 1 and "--lang must be zh or en, not 'fr'" in refused.stderr


def test_preview_table_says_when_a_person_is_called_as_the_fallback(db: str, tmp_path: Path) -> None:
    from tests.support.cli import run_cli

    site = tmp_path / "organised"
    shutil.copytree(FIXTURES / "sites" / "organised", site)
    people = site / "people.yaml"  # nobody 包保 龙潭镇 any more: the county's leaders are called instead
    people.write_text(people.read_text().replace(
        'deputy: zhou-min, responsibilities: [{ kind: 包保, areas: ["330599102"] }] }', "deputy: zhou-min }"))
    assert jiaoying("load", str(site), url=db).returncode == 0
    table = run_cli("preview", "--hazard", "rainstorm", "--level", "red", "--areas", "330599102",
                    "--at", "2026-07-16T21:00:00+08:00", env={"JIAOYING_DATABASE_URL": db})
    assert table.returncode == 0, table.stderr
    for leader in ("王建国", "李卫东", "周敏", "徐海涛"):
        assert _row(table.stdout, leader)[3:6] == ["rainstorm-red", "1", "无人包保龙潭镇，由县领导兜底"]


def test_preview_refuses_an_unknown_area(db: str) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    r = jiaoying("preview", "--hazard", "rainstorm", "--level", "red", "--areas", "440106", url=db)
    assert r.returncode == 1 and "440106 is not an area of this site" in r.stderr


def test_post_to_a_running_server(db: str, tmp_path: Path) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    key = jiaoying("keys", "create", "--agency", "qingxi-qx", url=db).stdout.strip().splitlines()[-1]
    port = free_port()
    env = {**os.environ, "JIAOYING_DATABASE_URL": db}
    server = subprocess.Popen([sys.executable, "-m", "dispatcher", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        r = jiaoying("post", str(current_cap(tmp_path)), "--url", f"http://127.0.0.1:{port}",
                     "--key", key, url=db)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "accepted"
        assert json.loads(r.stdout)["warning_status"] == "active"
        refused = jiaoying("post", str(FIXTURES / "cap" / "oasis-alert.xml"), "--url",
                           f"http://127.0.0.1:{port}", "--key", "jy_bad_key", url=db)
        assert refused.returncode == 1 and "401" in refused.stderr
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_demo_runs_a_red_warning_to_acknowledged_and_unreached_officials(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("JIAOYING_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "dispatcher", "demo", "--no-serve", "--speed", "120", "--rollcall",
                        "--port", str(free_port())], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    assert "POST /api/v1/warnings → 202 accepted" in r.stdout
    # --rollcall: the duty rooms were called too, and each room's outcome is printed
    rollcall = next(line for line in r.stdout.splitlines() if line.startswith("值班点名 roll-call "))
    rooms = r"青溪县值班室 (到岗|未到岗), 龙潭镇值班室 (到岗|未到岗), 白云镇值班室 (到岗|未到岗)"
    assert re.search(rooms, rollcall), rollcall
    assert "暴雨红色预警" in r.stdout
    result = next(line for line in r.stdout.splitlines() if line.startswith("结果 result:"))
    acknowledged, total = map(int, re.search(r"acknowledged (\d+) / (\d+)", result).groups())
    unreached = int(re.search(r"unreached (\d+)", result).group(1))
    assert total > 30 and acknowledged > total // 2 and 0 < unreached < total // 4
    # some officials were only reached by escalation: voice reminders and deputies answering
    url = f"sqlite:///{tmp_path / 'jiaoying-demo.db'}"
    from sqlalchemy import create_engine, text

    with create_engine(url).connect() as conn:
        vias = dict(conn.execute(text("SELECT ack_via, count(*) FROM callouts GROUP BY ack_via")).all())
        purposes = {p for (p,) in conn.execute(text("SELECT DISTINCT purpose FROM attempts"))}
    assert vias.get("sms", 0) > 0 and vias.get("voice", 0) > 0
    assert {"alert", "reminder", "to_deputy", "to_superior", "unreached", "rollcall"} <= purposes
    # the board's login it made, printed once per run on one line, works against that same file
    login = re.search(r"看板 board: http://127\.0\.0\.1:\d+/board — 登录 sign in: demo / (\S+) ", r.stdout)
    assert login, r.stdout
    from argon2 import PasswordHasher

    with create_engine(url).connect() as conn:
        role, hashed = conn.execute(text("SELECT role, password_hash FROM users WHERE name = 'demo'")).one()
    assert role == "officer" and PasswordHasher().verify(hashed, login.group(1))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["jiaoying-demo.db"]


def test_demo_serves_the_board_from_its_own_database_on_real_time_after_the_story(tmp_path: Path) -> None:
    """After the fast story the board reads jiaoying-demo.db, signs in with the printed login, and its
    clock is real time: not ahead (times in the future), not stopped, not still running fast."""
    from datetime import UTC, datetime, timedelta

    from tests.board.conftest import csrf_of

    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("JIAOYING_DATABASE_URL", None)
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "dispatcher", "demo", "--speed", "120", "--port", str(port)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while "press Ctrl-C to stop" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        printed = log.read_text()
        password = re.findall(r"登录 sign in: demo / (\S+) ", printed)
        assert len(set(password)) == 1, printed
        wid = re.search(r"id=(W\S+)", printed).group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, follow_redirects=True) as board:
            form = csrf_of(board.get("/board/login").text)
            signed_in = board.post("/board/login", data={"name": "demo", "password": password[0], "csrf": form})
            assert signed_in.status_code == 200 and wid in signed_in.text, signed_in.text[:500]
            seen = []
            for _ in range(2):
                page = board.get(f"/board/warnings/{wid}")
                assert page.status_code == 200
                held = int(re.search(r'data-held="[0-9a-f]+\.(\d+)"', page.text).group(1))
                seen.append((datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=held), datetime.now(UTC)))
                issued = datetime.fromisoformat(re.search(r'data-since="([^"]+)"', page.text).group(1))
                assert issued <= seen[-1][1]  # the warning was not issued in the future
                time.sleep(2)
        for app_now, real_now in seen:
            assert abs((app_now - real_now).total_seconds()) < 2, seen  # the board's clock is real time
        app_step = (seen[1][0] - seen[0][0]).total_seconds()
        real_step = (seen[1][1] - seen[0][1]).total_seconds()
        assert abs(app_step - real_step) < 1, seen  # ticking at the real rate: not frozen, not ×120
        from sqlalchemy import create_engine, text

        engine = create_engine(f"sqlite:///{tmp_path / 'jiaoying-demo.db'}")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM warnings WHERE id = :w"), {"w": wid}).scalar() == 1
        engine.dispose()
        assert not (tmp_path / "jiaoying.db").exists()
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(timeout=10)


def test_users_create_reads_the_password_from_stdin_and_refuses_a_short_one(db: str) -> None:
    ok = jiaoying("users", "create", "duty1", "--role", "officer", "--password-stdin", url=db,
                  stdin="correct horse battery\n")
    assert ok.returncode == 0, ok.stderr
    assert "user duty1 created (officer)" in ok.stdout
    # bad inputs: a password under 10 characters, an unknown role, a name taken
    short = jiaoying("users", "create", "duty2", "--role", "officer", "--password-stdin", url=db, stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    role = jiaoying("users", "create", "duty3", "--role", "boss", "--password-stdin", url=db, stdin="x" * 12)
    assert role.returncode == 1 and "unknown role 'boss'" in role.stderr
    again = jiaoying("users", "create", "duty1", "--role", "admin", "--password-stdin", url=db, stdin="y" * 12)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_users_sign_out_ends_sessions_and_disable_stops_new_sign_ins(db: str) -> None:
    from fastapi.testclient import TestClient

    from dispatcher.api.app import create_app
    from dispatcher.config import Settings
    from tests.board.conftest import csrf_of

    assert jiaoying("load", str(SAMPLE_SITE), url=db).returncode == 0
    assert jiaoying("users", "create", "duty1", "--role", "officer", "--password-stdin", url=db,
                    stdin="correct horse battery\n").returncode == 0

    def sign_in(client: TestClient) -> int:
        form = csrf_of(client.get("/board/login").text)
        return client.post("/board/login", data={"name": "duty1", "password": "correct horse battery",
                                                 "csrf": form}, follow_redirects=False).status_code

    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop) == 303 and laptop.get("/board", follow_redirects=False).status_code == 200
        ended = jiaoying("users", "sign-out", "duty1", url=db)
        assert ended.returncode == 0 and "duty1: 1 open sign-in(s) ended" in ended.stdout
        assert laptop.get("/board", follow_redirects=False).status_code == 303  # the lost laptop is out
        disabled = jiaoying("users", "sign-out", "duty1", "--disable", url=db)
        assert disabled.returncode == 0 and "account disabled" in disabled.stdout
        assert sign_in(laptop) == 401
    # bad input: a user that does not exist
    nobody = jiaoying("users", "sign-out", "nobody", url=db)
    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr


def test_status_once_shows_each_official_of_the_newest_warning(db: str, tmp_path: Path) -> None:
    jiaoying("load", str(SAMPLE_SITE), url=db)
    posted = jiaoying("post", str(current_cap(tmp_path)), "--local", url=db)
    wid = json.loads(posted.stdout)["id"]
    r = jiaoying("status", "--once", url=db)
    assert r.returncode == 0, r.stderr
    assert wid in r.stdout and "暴雨红色预警" in r.stdout
    # nothing has run the engine yet: call-outs are not started, so the count is 0/0
    assert "已确认 acknowledged 0/0" in r.stdout


def test_scheduler_refuses_to_start_without_a_broker(db: str) -> None:
    r = jiaoying("scheduler", url=db)
    assert r.returncode == 1 and "JIAOYING_BROKER_URL is not set" in r.stderr


def test_keys_create_refuses_an_agency_no_key_can_carry(db: str) -> None:
    r = jiaoying("keys", "create", "--agency", "a" * 200, url=db)  # bad input: a 200-character agency
    assert r.returncode == 1 and "Traceback" not in r.stderr and "128" in r.stderr
    listed = jiaoying("keys", "list", url=db)
    assert "aaaa" not in listed.stdout


def test_the_demo_clock_runs_fast_through_the_recent_past_and_then_is_real_time() -> None:
    from datetime import UTC, datetime, timedelta

    from dispatcher.demo import DemoClock

    clock = DemoClock(speed=600, lead=timedelta(seconds=60))
    assert abs((datetime.now(UTC) - clock()).total_seconds() - 60) < 1  # before the story: a minute ago
    clock.go()
    seen = [clock()]
    while not clock.caught_up:
        time.sleep(0.01)
        seen.append(clock())
    assert seen == sorted(seen)  # never goes back
    assert seen[-1] - seen[0] >= timedelta(seconds=55)  # a minute of story in about a tenth of a second
    later = [clock() for _ in range(3)]
    assert all(abs((datetime.now(UTC) - t).total_seconds()) < 0.5 for t in later)
    # the story settled early: catch_up() jumps forward to real time, never back
    early = DemoClock(speed=20, lead=timedelta(minutes=25))
    early.go()
    before = early()
    early.catch_up()
    assert before < early() and abs((datetime.now(UTC) - early()).total_seconds()) < 0.5
