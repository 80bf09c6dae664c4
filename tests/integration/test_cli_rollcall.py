"""`jiaoying rollcall`, run as a user runs it (on a SQLite file with the sample county, the clock
at 15:00 on Thursday 16 July, away from the scheduled 09:00 and 21:00): start one (its id printed),
`list` shows it, `show` gives each duty room's result as the engine and the answers make it, and
an unknown roll-call or id is refused in Chinese with nothing started.

On shift then: county room 陈立 (chief), 刘洋 and 张静 (staff); 龙潭镇 周建新; 白云镇 施荣华."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dispatcher import cli
from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.domain.callouts import AckVia
from dispatcher.runtime.engine import Engine
from dispatcher.services import ack
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE, Clock
from tests.support.cli import Ran, run_cli
from tests.support.harness import settle_engine

AFTERNOON = FIXED_NOW.replace(hour=7, minute=0)  # 15:00 Beijing


def jiaoying(*args: str, url: str) -> Ran:
    return run_cli(*args, env={"JIAOYING_DATABASE_URL": url})


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Clock]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    clock = Clock(AFTERNOON)
    monkeypatch.setattr(cli, "now", clock)  # the command's "now", as the engine's below
    yield url, clock
    engine_for(url).dispose()


def _reply(url: str, clock: Clock, person: str) -> None:
    with transaction(url) as session:
        phone = current_site(session).people[person].mobile or ""
        ack.acknowledge_reply(session, clock(), phone=phone, via=AckVia.SMS, body="1")


def test_start_list_and_show_each_rooms_result(db: tuple[str, Clock]) -> None:
    url, clock = db
    assert jiaoying("rollcall", "list", url=url).stdout.strip() == "还没有值班点名"
    started = jiaoying("rollcall", "start", url=url)
    assert started.returncode == 0, started.stderr
    found = re.fullmatch(r"已发起 每日值班点名（7月16日15:00）：(W\d{8}-\w{6})（引擎随即呼叫各值班室在班人员）\n",
                         started.stdout)
    assert found, started.stdout
    record_id = found.group(1)
    listed = jiaoying("rollcall", "list", url=url).stdout
    assert re.search(rf"│ {record_id} │ 2026-07-16 15:00 │ 每日值班点名（7月16日15:00）\s+│ 0\s+│", listed), listed
    (row,) = json.loads(jiaoying("rollcall", "list", "--json", url=url).stdout)
    assert (row["id"], row["started"]) == (record_id, False)  # the engine has not called anyone yet

    settings = Settings(database_url=url)
    engine = Engine(settings, clock, lambda: build_adapters(settings, SimOutbox()), name="cli")
    try:
        settle_engine(engine)
        _reply(url, clock, "chen-li")  # the county room's chief answers; 龙潭镇 and 白云镇 do not (yet)
        shown = jiaoying("rollcall", "show", record_id, url=url)
        assert shown.returncode == 0, shown.stderr
        assert re.search(r"│ 青溪县值班室\s+│ 3\s+│ 1\s+│ 0\s+│ 0\s+│ 到岗\s+│", shown.stdout), shown.stdout
        assert re.search(r"│ 白云镇值班室\s+│ 1\s+│ 0\s+│ 0\s+│ 0\s+│ 点名中\s+│", shown.stdout), shown.stdout
        clock.now += timedelta(minutes=4)
        _reply(url, clock, "zhou-jianxin")
        clock.now += timedelta(minutes=7)  # past the 10 minutes: 施荣华 never answered
        settle_engine(engine)
    finally:
        engine.close()
    shown = jiaoying("rollcall", "show", record_id, url=url)
    assert re.search(r"│ 青溪县值班室\s+│ 3\s+│ 1\s+│ 0\s+│ 2\s+│ 到岗\s+│", shown.stdout), shown.stdout
    assert re.search(r"│ 龙潭镇值班室\s+│ 1\s+│ 1\s+│ 0\s+│ 0\s+│ 到岗\s+│", shown.stdout), shown.stdout
    assert re.search(r"│ 白云镇值班室\s+│ 1\s+│ 0\s+│ 0\s+│ 1\s+│ 未到岗\s+│", shown.stdout), shown.stdout
    rooms = json.loads(jiaoying("rollcall", "show", record_id, "--json", url=url).stdout)["rooms"]
    assert [(r["name"], r["manned"], r["absent"]) for r in rooms] == [
        ("青溪县值班室", True, 2), ("龙潭镇值班室", True, 0), ("白云镇值班室", False, 1)]
    english = jiaoying("rollcall", "show", record_id, "--lang", "en", url=url).stdout
    assert re.search(r"│ 白云镇值班室\s+│ 1\s+│ 0\s+│ 0\s+│ 1\s+│ not answered\s+│", english), english


@pytest.mark.parametrize(("args", "message"), [
    (["show", "W20260716-NOPE00"], "没有值班点名 W20260716-NOPE00"),  # bad input: an id that is no roll-call
    (["start", "--check", "nightly"], "没有这个值班点名：nightly（no roll-call 'nightly' (roll-calls: daily, "
                                      "weekly-spot)）"),  # bad input: a roll-call checks.yaml does not have
    (["show", "W20260716-NOPE00", "--lang", "en"], "no roll-call 'W20260716-NOPE00'"),
])
def test_an_unknown_roll_call_is_refused_in_words_and_starts_nothing(db: tuple[str, Clock], args: list[str],
                                                                     message: str) -> None:
    url, _ = db
    refused = jiaoying("rollcall", *args, url=url)
    assert refused.returncode == 1, refused.stdout
    assert message in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert json.loads(jiaoying("rollcall", "list", "--json", url=url).stdout) == []
