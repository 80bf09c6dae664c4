"""`jiaoying users list | passwd | disable | enable`, run as a user runs them (a subprocess with
JIAOYING_DATABASE_URL), checked against the board's sign-in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from dispatcher.api.app import create_app
from dispatcher.config import Settings
from dispatcher.db.session import engine_for, transaction
from dispatcher.services.site import load_site_files
from dispatcher.services.users import Role, create_user
from tests.board.conftest import csrf_of
from tests.conftest import FIXED_NOW, SAMPLE_SITE

OLD = "correct horse battery"
NEW = "staple gun 2026 river"


def jiaoying(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JIAOYING_DATABASE_URL": url, "COLUMNS": "160"}
    # A session of its own: no controlling terminal, so a password prompt reads stdin like a pipe.
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=60, start_new_session=True)


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated SQLite file with the sample site (the board's pages need one) and two logins."""
    path = tmp_path / "users.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
        create_user(session, "duty1", Role.OFFICER, OLD, FIXED_NOW)
        create_user(session, "boss", Role.ADMIN, OLD, FIXED_NOW)
    yield url
    engine_for(url).dispose()


def row(url: str, name: str) -> tuple[str, bool]:
    """(password hash, active) of a user, read straight from the table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT password_hash, active FROM users WHERE name = :n"), {"n": name}).one()
    finally:
        engine.dispose()
    return found[0], bool(found[1])


def sign_in(client: TestClient, name: str, password: str) -> int:
    form = csrf_of(client.get("/board/login").text)
    return client.post("/board/login", data={"name": name, "password": password, "csrf": form},
                       follow_redirects=False).status_code


def test_list_shows_login_role_disabled_and_last_sign_in_under_chinese_first_headers(db: str) -> None:
    never = jiaoying("users", "list", url=db)
    assert never.returncode == 0, never.stderr
    for header in ("登录名 login", "角色 role", "已停用 disabled", "最近登录 last sign-in"):
        assert header in never.stdout
    duty1 = next(line for line in never.stdout.splitlines() if "duty1" in line)
    assert "值班员 officer" in duty1 and "从未 never" in duty1 and "是 yes" not in duty1
    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop, "duty1", OLD) == 303
    assert jiaoying("users", "disable", "boss", url=db).returncode == 0
    listed = jiaoying("users", "list", url=db).stdout
    duty1 = next(line for line in listed.splitlines() if "duty1" in line)
    boss = next(line for line in listed.splitlines() if "boss" in line)
    assert "从未 never" not in duty1 and "20" in duty1  # a date: signed in just now
    assert "管理员 admin" in boss and "是 yes" in boss and "从未 never" in boss


def test_passwd_from_stdin_changes_the_password_and_ends_the_sign_ins_made_with_the_old_one(db: str) -> None:
    before, _ = row(db, "duty1")
    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop, "duty1", OLD) == 303
        assert laptop.get("/board", follow_redirects=False).status_code == 200
        r = jiaoying("users", "passwd", "duty1", "--password-stdin", url=db, stdin=NEW + "\n")
        assert r.returncode == 0, r.stderr
        assert "user duty1: password changed; 1 open sign-in(s) ended" in r.stdout
        assert laptop.get("/board", follow_redirects=False).status_code == 303  # signed out
    assert row(db, "duty1")[0] != before
    with TestClient(create_app(Settings(database_url=db))) as other:
        assert sign_in(other, "duty1", OLD) == 401
        assert sign_in(other, "duty1", NEW) == 303


def test_passwd_from_the_prompt_asks_twice(db: str) -> None:
    before, _ = row(db, "duty1")
    r = jiaoying("users", "passwd", "duty1", url=db, stdin=f"{NEW}\n{NEW}\n")
    assert r.returncode == 0, r.stderr
    assert "password changed" in r.stdout
    assert row(db, "duty1")[0] != before
    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop, "duty1", NEW) == 303


def test_passwd_refuses_two_different_entries_and_changes_nothing(db: str) -> None:
    # bad input: the second entry at the prompt differs from the first (a typo)
    before, _ = row(db, "duty1")
    r = jiaoying("users", "passwd", "duty1", url=db, stdin=f"{NEW}\n{NEW}x\n")
    assert r.returncode == 1
    assert "两次输入的密码不一致 (the two passwords differ); nothing was changed" in r.stderr
    assert "Traceback" not in r.stderr
    assert row(db, "duty1")[0] == before


def test_passwd_refuses_a_weak_password_and_changes_nothing(db: str) -> None:
    # bad input: a password shorter than the 10 characters `users create` asks for
    before, _ = row(db, "duty1")
    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop, "duty1", OLD) == 303
        r = jiaoying("users", "passwd", "duty1", "--password-stdin", url=db, stdin="short\n")
        assert r.returncode == 1
        assert "the password must have at least 10 characters; nothing was changed" in r.stderr
        assert laptop.get("/board", follow_redirects=False).status_code == 200  # still signed in
    assert row(db, "duty1")[0] == before


def test_passwd_for_an_unknown_user_says_so_before_asking_and_changes_nothing(db: str) -> None:
    # bad input: a login that does not exist (a typo of duty1)
    before = {name: row(db, name) for name in ("duty1", "boss")}
    r = jiaoying("users", "passwd", "dut1", url=db, stdin=f"{NEW}\n{NEW}\n")
    assert r.returncode == 1
    assert "no user 'dut1'" in r.stderr and "password" not in r.stdout.lower()
    assert {name: row(db, name) for name in ("duty1", "boss")} == before


def test_disable_ends_sign_ins_and_stops_new_ones_and_enable_lets_the_user_back(db: str) -> None:
    with TestClient(create_app(Settings(database_url=db))) as laptop:
        assert sign_in(laptop, "duty1", OLD) == 303
        r = jiaoying("users", "disable", "duty1", url=db)
        assert r.returncode == 0, r.stderr
        assert "user duty1: disabled; 1 open sign-in(s) ended" in r.stdout
        assert laptop.get("/board", follow_redirects=False).status_code == 303
        assert sign_in(laptop, "duty1", OLD) == 401
        assert row(db, "duty1")[1] is False
        enabled = jiaoying("users", "enable", "duty1", url=db)
        assert enabled.returncode == 0 and "user duty1: enabled" in enabled.stdout
        assert sign_in(laptop, "duty1", OLD) == 303  # the same password as before
    assert row(db, "duty1")[1] is True


def test_disable_and_enable_refuse_an_unknown_user_and_change_nothing(db: str) -> None:
    # bad input: a login that does not exist
    before = {name: row(db, name) for name in ("duty1", "boss")}
    for command in ("disable", "enable"):
        r = jiaoying("users", command, "nobody", url=db)
        assert r.returncode == 1 and "no user 'nobody'" in r.stderr and "Traceback" not in r.stderr
    assert {name: row(db, name) for name in ("duty1", "boss")} == before


def test_create_refuses_two_different_entries_at_the_prompt_and_creates_nothing(db: str) -> None:
    # bad input: the two prompted passwords differ
    r = jiaoying("users", "create", "duty2", "--role", "viewer", url=db, stdin=f"{NEW}\n{NEW}!\n")
    assert r.returncode == 1 and "the two passwords differ" in r.stderr
    assert "duty2" not in jiaoying("users", "list", url=db).stdout
