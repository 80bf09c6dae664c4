"""The 六问 spot-check's rules, without a database: how a reply is read as answers, how the sample is
drawn (spread over the towns, the same for the same seed, short when there are too few), and the
spot-checks of checks.yaml — each mistake reported at its line, loading nothing."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from dispatcher.domain.channels import Channel
from dispatcher.domain.spotcheck import candidates, draw, key_answer, parse_answers, town_of
from dispatcher.sites import check_site, load_site

SAMPLE = Path(__file__).resolve().parents[2] / "rosters" / "qingxi"
Y, N = "yes", "no"


@pytest.mark.parametrize(("text", "answers"), [
    ("1 1 2 1 1 1", (Y, Y, N, Y, Y, Y)),
    ("112111", (Y, Y, N, Y, Y, Y)),
    ("是是否是是是", (Y, Y, N, Y, Y, Y)),
    ("是，是，否，是，是，是。", (Y, Y, N, Y, Y, Y)),
    ("１ １ ２ １ １ １", (Y, Y, N, Y, Y, Y)),  # full-width digits, as a phone's Chinese keyboard sends them
    ("1、1、不是、1、1、1", (Y, Y, N, Y, Y, Y)),
    ("y y n Y Y y", (Y, Y, N, Y, Y, Y)),
    ("1,2,1,2,1,2", (Y, N, Y, N, Y, N)),
])
def test_one_reply_answers_every_question_in_order(text: str, answers: tuple[str, ...]) -> None:
    assert parse_answers(text, 6) == answers


@pytest.mark.parametrize(("bad", "text"), [
    ("a word that is not an answer", "好的"),
    ("a plain confirmation", "1"),
    ("five answers to six questions", "1 1 1 1 1"),
    ("seven answers to six questions", "1111111"),
    ("a key that means nothing", "1 1 3 1 1 1"),
    ("answers with words between", "是是否是是是 谢谢"),
    ("nothing", "   "),
])
def test_a_reply_that_is_not_one_answer_per_question_is_not_an_answer(bad: str, text: str) -> None:
    assert parse_answers(text, 6) is None, bad


def test_a_key_on_the_call_is_1_yes_2_no_and_nothing_else() -> None:
    assert [key_answer(k) for k in ("1", "2", " 2 ", "3", "", "#", "12")] == [Y, N, N, None, None, None, None]


def test_the_draw_spreads_over_the_towns_before_taking_a_second_from_any() -> None:
    site = load_site(SAMPLE)
    (liuwen,) = site.spotchecks
    pool = candidates(site, liuwen)
    towns = Counter(town_of(site.people[p].area) for p in pool)
    assert len(pool) == 55 and len(towns) == 6
    sample = draw(site, liuwen, 12, seed=3, recently=set())
    drawn_towns = Counter(town_of(site.people[p].area) for p in sample.drawn)
    assert len(sample.drawn) == 12 and set(drawn_towns) == set(towns)  # every town before any town twice
    assert max(drawn_towns.values()) == 2 and min(drawn_towns.values()) == 2  # 12 over 6 towns: two each
    assert draw(site, liuwen, 12, seed=3, recently=set()) == sample  # the same seed, the same sample
    left_out = set(sample.drawn)
    other = draw(site, liuwen, 100, seed=3, recently=left_out)
    assert not left_out & set(other.drawn) and other.skipped == tuple(sorted(left_out))
    assert (len(other.drawn), other.available, other.short) == (43, 43, True)


def test_people_who_cannot_be_reached_on_its_channels_are_not_drawn() -> None:
    site = load_site(SAMPLE)
    (liuwen,) = site.spotchecks
    by_email = type(liuwen)(liuwen.id, liuwen.name, liuwen.questions, liuwen.roles, channels=(Channel.EMAIL,))
    assert all(site.people[p].email for p in candidates(site, by_email))
    assert len(candidates(site, by_email)) < len(candidates(site, liuwen))


def test_the_sample_county_has_the_six_questions() -> None:
    (liuwen,) = load_site(SAMPLE).spotchecks
    assert liuwen.questions[0] == "是否收到预警" and len(liuwen.questions) == 6
    assert (liuwen.size, liuwen.skip_days, liuwen.answer_within) == (6, 30, timedelta(minutes=30))


_OK = "spotchecks:\n  - id: s\n    questions: [是否收到预警]\n    roles: [grid_worker]\n"


@pytest.mark.parametrize(("bad", "text", "expected"), [
    ("no questions", "spotchecks:\n  - id: s\n    roles: [grid_worker]\n",
     "checks.yaml:2: spot-check s: 'questions' is required and must list at least one value"),
    ("ten questions", "spotchecks:\n  - id: s\n    questions: [" + ", ".join(f"问{i}" for i in range(10))
     + "]\n    roles: [grid_worker]\n",
     "checks.yaml:3: spot-check s: 'questions' lists 1 to 9 questions (each answered 是 or 否), found 10"),
    ("a role nobody declared", "spotchecks:\n  - id: s\n    questions: [是否收到预警]\n    roles: [wizard]\n",
     "checks.yaml:4: spot-check s: 'wizard' is not a role in people.yaml"),
    ("a sample of none", _OK + "    size: 0\n", "checks.yaml:5: spot-check s: 'size' is a whole number from 1 to 500, "
                                                "found '0'"),
    ("days that are words", _OK + "    skip_days: 一个月\n",
     "checks.yaml:5: spot-check s: 'skip_days' is a whole number from 0 to 3650, found '一个月'"),
    ("too short to answer", _OK + "    answer_within: 1m\n",
     "checks.yaml:5: spot-check s: 'answer_within' must be between 5m and 24h, found '1m'"),
    ("the id of a roll-call", "rollcalls:\n  - id: s\n    at: [\"09:00\"]\n" + _OK,
     "checks.yaml:5: spot-check s: a second check 's' (the first is at line 2)"),
    ("a typo in a field", _OK + "    sise: 5\n",
     "checks.yaml:5: spot-check s: unknown field 'sise' (accepted: id, name, questions, roles, size, skip_days, "
     "answer_within, channels)"),
])
def test_each_mistake_in_a_spot_check_is_reported_at_its_line(tmp_path: Path, bad: str, text: str,
                                                              expected: str) -> None:
    folder = tmp_path / "qingxi"
    shutil.copytree(SAMPLE, folder)
    (folder / "checks.yaml").write_text(text, encoding="utf-8")
    site, problems = check_site(folder)
    assert site is None and [str(p) for p in problems] == [expected], bad
