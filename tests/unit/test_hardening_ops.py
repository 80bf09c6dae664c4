"""Security and operations findings, each with the bad input that reproduced it: secrets and
environment names, CSV formula cells, phone numbers on output, SSE version tags, database outages
classified for 503, and link tokens in the access log."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
import stat
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from dispatcher import accesslog, csvsafe, privacy, secretfile
from dispatcher.api.errors import database_unavailable
from dispatcher.board.sse import _parse_tag, version_tag
from dispatcher.config import Settings, UnsafeSecret

GOOD = "0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 40 characters


def settings(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'jy.db'}", **kwargs)


# -- 1. secrets and environment names ------------------------------------------------------------

@pytest.mark.parametrize("name", ["prod", "staging", "dev", ""])
def test_an_unknown_environment_name_is_refused_naming_the_accepted_ones(tmp_path: Path, name: str) -> None:
    # bad input: JIAOYING_ENVIRONMENT=prod (and friends) used to mean development, silently
    with pytest.raises(ValidationError, match="unknown environment .*accepted: development, production"):
        settings(tmp_path, environment=name)


def test_environment_names_are_case_insensitive(tmp_path: Path) -> None:
    # bad input: JIAOYING_ENVIRONMENT=Production used to mean development
    prod = Settings(database_url="postgresql+psycopg://db/jy", environment="Production", secret_key=GOOD)
    assert prod.environment == "production"
    assert settings(tmp_path, environment=" DEVELOPMENT ").environment == "development"


def test_production_still_refuses_a_short_secret_when_constructed() -> None:
    with pytest.raises(ValidationError, match="shorter than 32"):
        Settings(database_url="postgresql+psycopg://db/jy", environment="PRODUCTION", secret_key="short")


def test_settings_without_a_secret_still_construct_but_are_not_safe_to_serve(tmp_path: Path) -> None:
    # bad input: no secret at all (the embedded default used to serve with "dev-insecure-secret")
    s = settings(tmp_path, public_url="http://127.0.0.1:8000")
    assert s.secret_key and s.secret_origin == "default"  # tests and libraries keep working
    with pytest.raises(UnsafeSecret, match="no secret key is configured.*jiaoying db upgrade"):
        s.require_safe_secret()


@pytest.mark.parametrize(("secret", "message"), [
    ("", "JIAOYING_SECRET_KEY is empty"),                              # bad input: empty
    ("   ", "JIAOYING_SECRET_KEY is empty"),                           # bad input: blank
    ("dev-insecure-secret", "public development secret"),              # bad input: the development value
    ("x" * 31, "31 characters long, shorter than 32"),                 # bad input: short
])
def test_require_safe_secret_refuses_and_says_how_to_fix(tmp_path: Path, secret: str, message: str) -> None:
    s = settings(tmp_path, secret_key=secret)
    with pytest.raises(UnsafeSecret, match=message) as refused:
        s.require_safe_secret()
    assert "at least 32 random characters" in str(refused.value)


def test_a_good_secret_passes(tmp_path: Path) -> None:
    settings(tmp_path, secret_key=GOOD).require_safe_secret()


def test_the_secret_file_is_read_when_the_variable_is_not_set(tmp_path: Path) -> None:
    path = tmp_path / "jiaoying.secret"
    assert secretfile.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    s = settings(tmp_path)
    assert s.secret_path == path and s.secret_origin == "file"
    assert s.secret_key == path.read_text().strip() and len(s.secret_key) >= 32
    s.require_safe_secret()
    assert not secretfile.create(path), "an existing key is never replaced"
    # the variable wins over the file
    assert settings(tmp_path, secret_key=GOOD).secret_key == GOOD


def test_an_explicit_secret_file_setting_is_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "keys" / "jy.key"
    elsewhere.parent.mkdir()
    elsewhere.write_text("short\n")
    s = settings(tmp_path, secret_file=str(elsewhere))
    assert s.secret_key == "short" and s.secret_origin == "file"
    # bad input: a short key in the file
    with pytest.raises(UnsafeSecret, match=f"the secret file {elsewhere} is 5 characters long"):
        s.require_safe_secret()


def test_the_default_secret_file_sits_beside_the_sqlite_file_else_in_the_working_directory(tmp_path: Path) -> None:
    assert secretfile.default_path(f"sqlite:///{tmp_path / 'a' / 'x.db'}") == tmp_path / "a" / "jiaoying.secret"
    assert secretfile.default_path("sqlite://") == Path.cwd() / "jiaoying.secret"
    assert secretfile.default_path("postgresql+psycopg://u@h/db") == Path.cwd() / "jiaoying.secret"


# -- 3. CSV formula cells ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    '=HYPERLINK("http://evil.example/","点击查看")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1",
])
def test_formula_leading_cells_are_neutralised(bad: str) -> None:
    assert csvsafe.cell(bad) == "'" + bad
    text = csvsafe.document(["note"], [[bad]])
    assert text.startswith(csvsafe.BOM)
    assert list(csv.reader(io.StringIO(text.removeprefix(csvsafe.BOM))))[1] == ["'" + bad]


def test_ordinary_cells_and_numbers_are_left_alone() -> None:
    values = ("孙镇长", "a=b", "", 12, -3, 1.5, None)
    assert [csvsafe.cell(v) for v in values] == list(values)


# -- 4. phone numbers on output -----------------------------------------------------------------

def test_phone_numbers_in_an_event_are_masked_and_nothing_else() -> None:
    # bad input: an inbound SMS whose sender is the event's actor
    event = {"seq": 3, "actor": "+8613812345678", "kind": "inbound_sms", "hash": "ab",
             "data": {"from": "13812345678", "areas": ["330599100", "330599100201"], "person": "sun",
                      "body": "收到", "callouts": [1, 2], "nested": [{"to": "+8613800000003"}]}}
    masked = privacy.mask_event(event)
    assert masked["actor"] == "+86138****5678"
    assert masked["data"]["from"] == "138****5678"
    assert masked["data"]["nested"] == [{"to": "+86138****0003"}]
    assert masked["data"]["areas"] == ["330599100", "330599100201"] and masked["data"]["person"] == "sun"
    assert event["actor"] == "+8613812345678", "the stored event is not changed"
    assert privacy.mask_value("user:liu") == "user:liu" and privacy.mask_value(None) is None


# -- 5. SSE version tags ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    "garbage", "", ".", "abc.def", f"{'0' * 16}.{2 ** 70}", "0123456789abcdef.²³", "0123456789abcdef.-5",
    "0123456789abcdef." + "9" * 400,
])
def test_a_bad_since_or_last_event_id_is_no_version(bad: str) -> None:
    assert _parse_tag(bad) is None


def test_a_version_tag_reads_back() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 7, 16, 3, 12, 0, 123456, tzinfo=UTC)
    assert _parse_tag(version_tag("0123456789abcdef", when)) == ("0123456789abcdef", when)


# -- 2. which database errors are an outage ------------------------------------------------------

def _wrapped(cls: type, orig: BaseException) -> Exception:
    return cls("SELECT 1", {}, orig)


def test_connection_failures_are_an_outage_and_statement_errors_are_not() -> None:
    assert database_unavailable(_wrapped(OperationalError, psycopg.OperationalError("connection refused")))
    assert database_unavailable(_wrapped(OperationalError, sqlite3.OperationalError("database is locked")))
    assert database_unavailable(_wrapped(OperationalError, sqlite3.OperationalError("unable to open database file")))
    assert database_unavailable(_wrapped(InterfaceError, psycopg.InterfaceError("the connection is closed")))
    assert not database_unavailable(_wrapped(OperationalError, sqlite3.OperationalError("no such table: warnings")))
    assert not database_unavailable(_wrapped(InterfaceError, sqlite3.InterfaceError("Error binding parameter 1")))
    assert not database_unavailable(_wrapped(ProgrammingError, psycopg.ProgrammingError("syntax error")))
    assert not database_unavailable(ValueError("x"))


# -- 6. link tokens in the access log -----------------------------------------------------------

def test_the_access_log_record_carries_no_link_token() -> None:
    token = "eyJjIjo0Miwibn0.Zm9yZ2VkLXNpZ25hdHVyZQ"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/ack/{token}?lang=en", "1.1", 200), None)
    assert accesslog.RedactSecrets().filter(record)
    line = record.getMessage()
    assert token not in line and "/ack/[redacted]?lang=en" in line
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("/x?token=abc&b=1",), None)
    accesslog.RedactSecrets().filter(other)
    assert other.getMessage() == "/x?token=[redacted]&b=1"


def test_install_puts_one_filter_on_the_access_logger() -> None:
    accesslog.install()
    accesslog.install()
    logger = logging.getLogger(accesslog.ACCESS_LOGGER)
    assert sum(isinstance(f, accesslog.RedactSecrets) for f in logger.filters) == 1
