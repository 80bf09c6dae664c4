"""Duty roll-calls in the site files (checks.yaml) and their schedule: every day at fixed times, and
once a week at a minute drawn in a window that only the deployment's key tells; who a roll-call
calls in each duty room. Each mistake in checks.yaml is reported at its line and loads nothing."""

from __future__ import annotations

import shutil
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatcher.domain.channels import Channel
from dispatcher.domain.checks import RollCall, WeeklyWindow
from dispatcher.domain.duty import DutyPosition
from dispatcher.domain.rollcall import plan_rollcall
from dispatcher.sites import check_site, load_site, site_digest

SAMPLE = Path(__file__).resolve().parents[2] / "rosters" / "qingxi"
TZ = ZoneInfo("Asia/Shanghai")
KEY = b"k" * 32


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    target = tmp_path / "qingxi"
    shutil.copytree(SAMPLE, target)
    return target


def _problems(folder: Path) -> list[str]:
    site, problems = check_site(folder)
    assert site is None
    return [str(p) for p in problems]


def _write(folder: Path, text: str) -> None:
    (folder / "checks.yaml").write_text(text, encoding="utf-8")


def test_the_sample_county_has_a_daily_and_an_unannounced_weekly_roll_call() -> None:
    site = load_site(SAMPLE)
    daily, weekly = site.rollcalls
    assert (daily.id, daily.at, daily.answer_within) == ("daily", (time(9), time(21)), timedelta(minutes=10))
    assert daily.positions == (DutyPosition.CHIEF, DutyPosition.STAFF)
    assert daily.channels == (Channel.VOICE, Channel.SMS)
    assert weekly.weekly == WeeklyWindow(2, time(14), time(17)) and weekly.at == ()


def test_a_site_without_checks_yaml_runs_no_roll_calls_and_keeps_its_digest(site_dir: Path) -> None:
    with_checks = site_digest(site_dir)
    (site_dir / "checks.yaml").unlink()
    site = load_site(site_dir)
    assert site.rollcalls == ()
    assert site_digest(site_dir) != with_checks
    # the digest of a site that never had the file is what it was before roll-calls existed
    import hashlib
    digest = hashlib.sha256()
    for name in ("areas.yaml", "people.yaml", "duty.yaml", "plans.yaml"):
        data = (site_dir / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    assert site_digest(site_dir) == digest.hexdigest()


def test_daily_times_between_two_instants() -> None:
    rollcall = RollCall("daily", "每日值班点名", at=(time(9), time(21)))
    since = datetime(2026, 7, 16, 8, 0, tzinfo=TZ)
    found = rollcall.times_between(since, since + timedelta(days=1, hours=2), TZ, KEY)
    assert [t.strftime("%m-%d %H:%M") for t in found] == ["07-16 09:00", "07-16 21:00", "07-17 09:00"]
    # (since, until]: the boundary instant belongs to the window that ends with it
    at_nine = datetime(2026, 7, 16, 9, 0, tzinfo=TZ)
    assert rollcall.times_between(at_nine - timedelta(minutes=1), at_nine, TZ, KEY) == [at_nine]
    assert rollcall.times_between(at_nine, at_nine + timedelta(minutes=1), TZ, KEY) == []


def test_the_weekly_minute_is_in_its_window_the_same_for_every_process_and_differs_by_week_and_key() -> None:
    rollcall = RollCall("spot", "每周不定时抽点", weekly=WeeklyWindow(2, time(14), time(17)))
    weeks = [datetime(2026, 7, 1, tzinfo=TZ) + timedelta(weeks=n) for n in range(12)]
    drawn = [rollcall.times_between(w, w + timedelta(days=7), TZ, KEY) for w in weeks]
    assert all(len(d) == 1 for d in drawn)
    for (at,) in drawn:
        local = at.astimezone(TZ)
        assert local.weekday() == 2 and time(14) <= local.time() < time(17), local
    minutes = {(d[0].astimezone(TZ).hour, d[0].astimezone(TZ).minute) for d in drawn}
    assert len(minutes) > 6  # not the same minute every week
    again = [rollcall.times_between(w, w + timedelta(days=7), TZ, KEY) for w in weeks]
    assert again == drawn  # a restart, a second scheduler: the same minute
    other = [rollcall.times_between(w, w + timedelta(days=7), TZ, b"another key") for w in weeks]
    assert other != drawn  # the site files alone do not tell it


def test_a_roll_call_calls_the_people_on_shift_per_room_and_tells_that_rooms_leader() -> None:
    site = load_site(SAMPLE)
    daily = site.rollcalls[0]
    at = datetime(2026, 7, 16, 21, 0, tzinfo=TZ)  # Thursday, the dated shift
    plan = plan_rollcall(site, daily, at, at)
    assert [r.name for r in plan.rooms] == ["青溪县值班室", "龙潭镇值班室", "白云镇值班室"]
    called = {(c.person_id, c.room) for c in plan.callouts}
    assert called == {("chen-li", "330599"), ("liu-yang", "330599"), ("zhang-jing", "330599"),
                      ("zhou-jianxin", "330599102"), ("shi-ronghua", "330599103")}
    told = {c.person_id: c.steps[-1].recipients for c in plan.callouts}
    assert told["zhang-jing"] == ("wang-jianguo",) and told["shi-ronghua"] == ("fang-yunfei",)
    assert all(c.steps[-1].after == timedelta(minutes=10) and c.steps[-1].final for c in plan.callouts)
    assert plan.unmanned == ()


def test_a_room_with_nobody_on_shift_is_unmanned_not_skipped() -> None:
    site = load_site(SAMPLE)
    only_leaders = RollCall("x", "点名", at=(time(9),), positions=(DutyPosition.STAFF,))
    plan = plan_rollcall(site, only_leaders, datetime(2026, 7, 16, 9, tzinfo=TZ), datetime(2026, 7, 16, 9, tzinfo=TZ))
    assert plan.unmanned == ("330599102", "330599103")  # the town rooms keep no 值班员 on their rota
    assert {c.room for c in plan.callouts} == {"330599"}


@pytest.mark.parametrize(("bad", "text", "expected"), [
    ("a time that is not one", "rollcalls:\n  - id: d\n    at: [\"9点\"]\n",
     "checks.yaml:3: roll-call d: 'at' lists times of day like 09:00, found '9点'"),
    ("neither at nor weekly", "rollcalls:\n  - id: d\n    name: 点名\n",
     "checks.yaml:2: roll-call d: a roll-call needs 'at' (daily times) or 'weekly' (a window), or both"),
    ("a window that ends before it starts",
     "rollcalls:\n  - id: w\n    weekly: { day: wed, from: \"17:00\", to: \"14:00\" }\n",
     "checks.yaml:3: roll-call w: 'to' (14:00) must be after 'from' (17:00) on the same day"),
    ("an unknown day", "rollcalls:\n  - id: w\n    weekly: { day: someday, from: \"14:00\", to: \"17:00\" }\n",
     "checks.yaml:3: roll-call w: unknown day 'someday'; accepted: mon, tue, wed, thu, fri, sat, sun"),
    ("too long to answer", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n    answer_within: 3h\n",
     "checks.yaml:4: roll-call d: 'answer_within' must be between 1m and 2h, found '3h'"),
    ("an area that has no duty room", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n    rooms: [\"330599104\"]\n",
     "checks.yaml:4: roll-call d: '330599104' is not a duty room: the county's code or a room's area in duty.yaml"),
    ("an unknown position", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n    positions: [boss]\n",
     "checks.yaml:4: roll-call d: unknown duty position 'boss'; accepted: leader, chief, staff"),
    ("a typo in a field", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n    answer_whitin: 5m\n",
     "checks.yaml:4: roll-call d: unknown field 'answer_whitin' (accepted: id, name, at, weekly, answer_within, "
     "channels, positions, rooms, tell, call)"),
    ("a target that is not one", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n    call: landline\n",
     "checks.yaml:4: roll-call d: 'call' is people (whoever is on shift, the default) or duty_phone (each room's "
     "duty phone), found 'landline'"),
    ("the same id twice", "rollcalls:\n  - id: d\n    at: [\"09:00\"]\n  - id: d\n    at: [\"21:00\"]\n",
     "checks.yaml:4: roll-call d: a second roll-call 'd' (the first is at line 2)"),
])
def test_each_mistake_in_checks_yaml_is_reported_at_its_line(site_dir: Path, bad: str, text: str,
                                                             expected: str) -> None:
    _write(site_dir, text)
    assert _problems(site_dir) == [expected], bad
