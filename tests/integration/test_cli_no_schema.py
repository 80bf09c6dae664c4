"""Every command that uses the database, on a database it cannot use — never upgraded, behind the
code, unreachable — says so in one line and exits 1, and creates nothing (no empty SQLite file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dispatcher.db.migrate import NO_SCHEMA, current_revision, head_revision, upgrade
from dispatcher.db.session import engine_for
from tests.conftest import FIXTURES, SAMPLE_SITE
from tests.support.servers import free_port

SECRET = "no-schema-test-secret-" + "z" * 32

# Every command that reads or writes the database (`db upgrade` and `demo` create one; `validate`,
# `import`, `export`, `carriers` and `post` to a server do not use it).
COMMANDS = [
    ("status", "--once"),
    ("status", "W20260716-7K3M9Q", "--once"),
    ("load", str(SAMPLE_SITE)),
    ("preview", "--hazard", "rainstorm", "--level", "red", "--areas", "330599100"),
    ("keys", "list"),
    ("keys", "create", "--agency", "qingxi-qx"),
    ("keys", "revoke", "k_1a2b3c4d"),
    ("users", "list"),
    ("users", "create", "duty1", "--role", "officer", "--password-stdin"),
    ("users", "passwd", "duty1", "--password-stdin"),
    ("users", "disable", "duty1"),
    ("users", "enable", "duty1"),
    ("users", "sign-out", "duty1"),
    ("record", "W20260716-7K3M9Q"),
    ("record", "--verify", "--all"),
    ("post", str(FIXTURES / "cap" / "oasis-alert.xml"), "--local"),
    ("serve", "--port", "0"),
    ("scheduler",),
]


def jiaoying(*args: str, url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    clean |= {"JIAOYING_DATABASE_URL": url, "JIAOYING_SECRET_KEY": SECRET, **env}
    if args[0] == "scheduler":
        clean["JIAOYING_BROKER_URL"] = "redis://127.0.0.1:1/0"  # never reached: the check comes first
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env=clean, cwd=cwd, capture_output=True,
                          text=True, input="correct horse battery\n", timeout=60)


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(a for a in c[:3] if "/" not in a) for c in COMMANDS])
def test_a_database_never_upgraded_is_one_line_and_no_file_is_created(tmp_path: Path,
                                                                      command: tuple[str, ...]) -> None:
    # bad input: JIAOYING_DATABASE_URL names a SQLite file `jiaoying db upgrade` never created
    db = tmp_path / "new.db"
    r = jiaoying(*command, url=f"sqlite:///{db}", cwd=tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert one_line(r) == f"error: {NO_SCHEMA}"
    assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no empty new.db, no -wal, no jiaoying.db


def test_a_database_in_a_folder_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    # bad input: the folder of the SQLite file does not exist either (sqlite:////tmp/x/new.db)
    r = jiaoying("status", url=f"sqlite:///{tmp_path / 'x' / 'new.db'}", cwd=tmp_path)
    assert r.returncode == 1 and one_line(r) == f"error: {NO_SCHEMA}"
    assert not (tmp_path / "x").exists()


def test_the_default_database_is_not_created_in_the_working_directory(tmp_path: Path) -> None:
    # bad input: no JIAOYING_DATABASE_URL at all, in a fresh folder: ./jiaoying.db was left behind, empty
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    r = subprocess.run([sys.executable, "-m", "dispatcher", "keys", "list"], env=clean, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and one_line(r) == f"error: {NO_SCHEMA}"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_sqlite_file_is_a_database_with_no_schema_and_stays_empty(tmp_path: Path) -> None:
    # bad input: the empty jiaoying.db an older version left behind
    db = tmp_path / "jiaoying.db"
    db.touch()
    r = jiaoying("users", "list", url=f"sqlite:///{db}", cwd=tmp_path)
    assert r.returncode == 1 and one_line(r) == f"error: {NO_SCHEMA}"
    assert db.stat().st_size == 0


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    # bad input: JIAOYING_DATABASE_URL points at a text file
    db = tmp_path / "notes.txt"
    db.write_text("not a database\n" * 100)
    r = jiaoying("keys", "list", url=f"sqlite:///{db}", cwd=tmp_path)
    assert r.returncode == 1
    assert one_line(r).startswith("error: 无法读取数据库 (cannot read the database")
    assert db.read_text() == "not a database\n" * 100


def test_a_schema_behind_the_code_says_run_db_upgrade_and_is_left_as_it_is(tmp_path: Path) -> None:
    # bad input: a database last upgraded by an older version (migrations pending)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006")
    engine_for(url).dispose()
    head = head_revision(url)
    for command in (("users", "list"), ("load", str(SAMPLE_SITE)), ("status", "--once")):
        r = jiaoying(*command, url=url, cwd=tmp_path)
        assert r.returncode == 1
        line = one_line(r)
        assert "请先运行 jiaoying db upgrade" in line and "run `jiaoying db upgrade`" in line
        assert f"at revision 0006, this version needs {head}" in line
    assert current_revision(url) == "0006"  # nothing was migrated behind the operator's back
    engine_for(url).dispose()
    assert jiaoying("db", "upgrade", url=url, cwd=tmp_path).returncode == 0
    assert jiaoying("users", "list", url=url, cwd=tmp_path).returncode == 0


def test_a_schema_from_a_newer_version_is_named_as_such(tmp_path: Path) -> None:
    # bad input: the database was migrated by a newer Jiaoying than the one running
    import sqlite3

    db = tmp_path / "newer.db"
    upgrade(f"sqlite:///{db}")
    engine_for(f"sqlite:///{db}").dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    r = jiaoying("keys", "list", url=f"sqlite:///{db}", cwd=tmp_path)
    assert r.returncode == 1 and "revision 9999, which this version of Jiaoying does not know" in one_line(r)


@pytest.mark.parametrize("command", [("keys", "list"), ("users", "list"), ("db", "upgrade"), ("status", "--once"),
                                     ("serve", "--port", "0")])
def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path: Path, command: tuple[str, ...]) -> None:
    # bad input: PostgreSQL is down (nothing listens on the port)
    url = f"postgresql+psycopg://jiaoying:s3cret-pw@127.0.0.1:{free_port()}/jiaoying"
    r = jiaoying(*command, url=url, cwd=tmp_path)
    assert r.returncode == 1
    line = one_line(r)
    assert line.startswith("error: 无法连接数据库 (cannot reach the database postgresql+psycopg://jiaoying:***@127.0.0.1:")
    assert "s3cret-pw" not in r.stderr + r.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_postgresql_database_never_upgraded_is_one_line_and_stays_empty(postgres_server, tmp_path: Path) -> None:
    # bad input: an empty PostgreSQL database (CREATE DATABASE done, `jiaoying db upgrade` not)
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS cli_no_schema WITH (FORCE)")
        conn.execute("CREATE DATABASE cli_no_schema")
    url = postgres_server.url("cli_no_schema")
    for command in (("users", "list"), ("load", str(SAMPLE_SITE)), ("keys", "create", "--agency", "x")):
        r = jiaoying(*command, url=url, cwd=tmp_path)
        assert r.returncode == 1 and one_line(r) == f"error: {NO_SCHEMA}"
    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=cli_no_schema") as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
