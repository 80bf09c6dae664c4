"""`jiaoying spotcheck`, run as a user runs it (on a SQLite file with the sample county):
preview a seed (nothing written), start one (the seed printed), the answers in `show`, `list`,
`audit`; a sample larger than the people available says so; bad input is refused and changes
nothing; and `jiaoying demo --spotcheck`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatcher.channels.registry import build_adapters
from dispatcher.channels.simulator import SimOutbox
from dispatcher.config import Settings
from dispatcher.db.migrate import upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.runtime.engine import Engine
from dispatcher.services.replies import IncomingReply, take_replies
from dispatcher.services.site import current_site, load_site_files
from tests.conftest import FIXED_NOW, SAMPLE_SITE
from tests.support.cli import Ran, run_cli
from tests.support.harness import settle_engine
from tests.support.servers import free_port


def jiaoying(*args: str, url: str) -> Ran:
    return run_cli(*args, env={"JIAOYING_DATABASE_URL": url})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    with transaction(url) as session:
        load_site_files(session, SAMPLE_SITE, FIXED_NOW)
    yield url
    engine_for(url).dispose()


def spotchecks(url: str) -> list[dict[str, object]]:
    listed = jiaoying("spotcheck", "list", "--json", url=url)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_preview_start_answers_show_list_and_audit(db: str) -> None:
    preview = jiaoying("spotcheck", "preview", "--seed", "42", "--json", url=db)
    assert preview.returncode == 0, preview.stderr
    would = json.loads(preview.stdout)
    assert would["seed"] == 42 and would["available"] == 55 and len(would["drawn"]) == 6 and not would["short"]
    assert len({p["town"] for p in would["drawn"]}) == 6  # spread over the towns
    shown = jiaoying("spotcheck", "preview", "--seed", "42", url=db)
    assert "预览（未发起、未写入）：基层防汛责任人“六问”抽查，随机种子 42" in shown.stdout
    assert all(p["name"] in shown.stdout for p in would["drawn"])
    assert spotchecks(db) == []  # a preview writes nothing

    started = jiaoying("spotcheck", "start", "--seed", "42", url=db)
    assert started.returncode == 0, started.stderr
    record_id = re.search(r"：(W\d{8}-\w{6})（引擎随即逐一电话、短信提问）", started.stdout).group(1)
    assert f"随机种子 42（凭此可复核抽样：jiaoying spotcheck audit {record_id}）" in started.stdout
    assert "抽取 6 人（要求 6 人，可抽 55 人，近30天已抽查未再抽取 0 人）" in started.stdout
    assert "可抽取人数不足" not in started.stdout + started.stderr
    (listed,) = spotchecks(db)
    assert listed["id"] == record_id and listed["seed"] == 42 and listed["drawn"] == 6

    # the engine calls them; two answer by SMS (one with a 否, one with something that is not an answer)
    settings = Settings(database_url=db)
    engine = Engine(settings, lambda: datetime.now(UTC), lambda: build_adapters(settings, SimOutbox()), name="cli")
    try:
        settle_engine(engine)
        with transaction(db) as session:
            people = current_site(session).people
            drawn = [p["id"] for p in would["drawn"]]
            take_replies(session, datetime.now(UTC), [IncomingReply(people[drawn[0]].mobile, "1 1 2 1 1 1", "S1"),
                                                      IncomingReply(people[drawn[1]].mobile, "好的", "S2")])
        settle_engine(engine)
    finally:
        engine.close()

    show = jiaoying("spotcheck", "show", record_id, url=db)
    assert show.returncode == 0, show.stderr
    assert "随机种子 42" in show.stdout
    assert re.search(r"│ 3 │ 是否已巡查隐患点\s+│ 0\s+│ 1\s+│ 5\s+│", show.stdout), show.stdout
    assert re.search(r"│ 1 │ 是否收到预警\s+│ 1\s+│ 0\s+│ 5\s+│", show.stdout)
    first, second = (would["drawn"][0]["name"], would["drawn"][1]["name"])
    assert re.search(rf"│ {first}\s.*有“否”", show.stdout)
    assert re.search(rf"│ {second}\s.*作答中 \(回复未能识别，已再次询问\)", show.stdout)
    assert "需跟进（1 人）" in show.stdout and f"- {first}（" in show.stdout
    assert "第3问 是否已巡查隐患点: 否" in show.stdout
    as_json = json.loads(jiaoying("spotcheck", "show", record_id, "--json", url=db).stdout)
    assert as_json["counts"] == {"ok": 0, "no": 1, "missing": 0, "open": 5} and as_json["follow_up"] == 1
    assert as_json["questions"][2] == {"n": 3, "question": "是否已巡查隐患点", "yes": 0, "no": 1, "none": 5}
    by_id = {p["id"]: p for p in as_json["people"]}
    assert by_id[drawn[0]]["answers"] == ["yes", "yes", "no", "yes", "yes", "yes"]
    assert by_id[drawn[1]]["not_an_answer"] == 1 and by_id[drawn[1]]["verdict"] == "open"

    table = jiaoying("spotcheck", "list", url=db).stdout
    assert re.search(rf"│ {record_id} │ .* │ 42\s+│ 6/6\s+│ 有“否” 1 · 作答中 5", table), table
    english = jiaoying("spotcheck", "show", record_id, "--lang", "en", url=db).stdout
    assert "Follow up (1)" in english and "said no" in english and "Seed 42" in english

    audit = jiaoying("spotcheck", "audit", record_id, url=db)
    assert audit.returncode == 0, audit.stderr
    assert "复核一致：按随机种子 42 重新抽取，抽到的正是记录中的 6 人（顺序相同）。" in audit.stdout
    # the same seed now draws others: those six were checked lately
    again = json.loads(jiaoying("spotcheck", "preview", "--seed", "42", "--json", url=db).stdout)
    assert len(again["skipped"]) == 6 and not {p["id"] for p in again["drawn"]} & set(drawn)


def test_a_sample_larger_than_the_people_available_says_so(db: str) -> None:
    preview = jiaoying("spotcheck", "preview", "--size", "100", "--seed", "1", url=db)
    assert preview.returncode == 0
    assert "warning: 可抽取人数不足：只有 55 人可抽（要求抽取 100 人）" in preview.stderr
    started = jiaoying("spotcheck", "start", "--size", "100", "--seed", "1", "--lang", "en", url=db)
    assert started.returncode == 0, started.stderr
    assert "Drew 55 (asked 100, 55 available, 0 left out as checked in the last 30 days)" in started.stdout
    assert "warning: not enough people to draw: only 55 available (100 asked)" in started.stderr
    (listed,) = spotchecks(db)
    assert listed["short"] is True and listed["size"] == 100 and listed["drawn"] == 55
    assert re.search(r"│ 55/100\s+│", jiaoying("spotcheck", "list", url=db).stdout)
    # everyone was checked lately now: nobody to draw, refused
    nobody = jiaoying("spotcheck", "start", url=db)
    assert nobody.returncode == 1 and "无人可抽" in nobody.stderr and "checked in the last 30 days" in nobody.stderr
    assert len(spotchecks(db)) == 1


BAD_INPUT = [
    (["start", "--check", "nope"], 1, "没有这个抽查：nope"),
    (["start", "--size", "0"], 1, "抽取人数须为 1 至 500 的整数，而不是 0"),
    (["start", "--size", "501", "--lang", "en"], 1, "the sample size must be from 1 to 500, not 501"),
    (["start", "--seed", "-1"], 1, "随机种子须为不小于 0 的整数，而不是 -1"),
    (["start", "--seed", "abc"], 2, "Invalid value for '--seed'"),
    (["start", "--warning", "W20260716-NOPE00"], 1, "没有预警 W20260716-NOPE00"),
    (["start", "--lang", "fr"], 1, "--lang must be zh or en"),
    (["preview", "--size", "501"], 1, "抽取人数须为 1 至 500 的整数"),
    (["show", "W20260716-NOPE00"], 1, "没有六问抽查 W20260716-NOPE00"),
    (["audit", "W20260716-NOPE00", "--lang", "en"], 1, "no spot-check 'W20260716-NOPE00'"),
]


def test_bad_input_is_refused_and_changes_nothing(db: str) -> None:
    for args, code, message in BAD_INPUT:
        refused = jiaoying("spotcheck", *args, url=db)
        assert refused.returncode == code, (args, refused.stdout)
        assert message in refused.stderr and "Traceback" not in refused.stderr, (args, refused.stderr)
    assert spotchecks(db) == []


# Seed 6 draws 吴老三 first, who has no mobile: he answers on the call, by keys, and his is the 否.
# Seed 748821 draws first a 监测员 the warning also calls: his "好的" would confirm the warning, so the
# demo has the next one who can text say it (it left two 作答中 before); 吴老三 is its silent one.
@pytest.mark.parametrize(("seed", "by_sms", "answered"), [
    (6, 4, {"sms": 4, "voice": 1}),
    (748821, 5, {"sms": 5}),
])
def test_demo_runs_a_spot_check_during_the_warning(tmp_path: Path, seed: int, by_sms: int,
                                                   answered: dict[str, int]) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("JIAOYING_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "dispatcher", "demo", "--no-serve", "--speed", "120", "--spotcheck",
                        "--seed", str(seed), "--port", str(free_port())], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    started = re.search(r"六问抽查 spot-check started: (W\d{8}-\w{6}), 随机种子 seed (\d+), 抽取 drew 6/6 "
                        r"\(during (W\d{8}-\w{6})\)", r.stdout)
    assert started, r.stdout
    record_id, seed = started.group(1), started.group(2)
    # one said 否 to a question; one never answers (still 作答中 until the half hour is up); the one
    # who first replied "好的" was asked again and answered: the same summary whatever the seed
    summary = next(line for line in r.stdout.splitlines() if line.startswith(f"六问抽查 spot-check {record_id}"))
    assert summary == (f"六问抽查 spot-check {record_id} (seed {seed}): 全部为是 4, 有“否” 1, 作答中 1; "
                       f"需跟进 follow-up 1 — board: /board/spotchecks/{record_id}")
    from sqlalchemy import create_engine, text

    with create_engine(f"sqlite:///{tmp_path / 'jiaoying-demo.db'}").connect() as conn:
        outcomes = dict(conn.execute(text("SELECT outcome, count(*) FROM inbound GROUP BY outcome")).all())
        again = conn.execute(text("SELECT count(*) FROM attempts WHERE purpose = 'spotcheck_again'")).scalar()
        by_via = dict(conn.execute(text("SELECT via, count(DISTINCT person_id) FROM answers GROUP BY via")).all())
        full = conn.execute(text("SELECT count(*) FROM (SELECT callout_id FROM answers GROUP BY callout_id "
                                 "HAVING count(*) = 6)")).scalar()
    assert outcomes["spotcheck_asked_again"] == 1 and again == 1
    assert full == 5 and outcomes["spotcheck_answers"] == by_sms and by_via == answered
