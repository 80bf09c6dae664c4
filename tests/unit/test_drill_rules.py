"""The pure rules of drills (domain/drills.py): the unseen moment in a window, the figures against the 3- and
5-minute bars, who was reached by what took over, and the checks of a drill's options and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.domain.drills import (
    DrillError,
    Reach,
    check_length,
    check_time,
    check_without,
    figures,
    percentile,
    pick_moment,
)

NOW = datetime(2026, 7, 16, 3, 12, tzinfo=UTC)


def test_the_moment_is_in_the_window_fixed_per_drill_and_differs_between_drills() -> None:
    start, end = NOW + timedelta(hours=1), NOW + timedelta(hours=4)
    moments = {pick_moment(start, end, b"secret", f"D{n}") for n in range(50)}
    assert all(start <= m < end for m in moments) and len(moments) > 40
    assert pick_moment(start, end, b"secret", "D1") == pick_moment(start, end, b"secret", "D1")
    assert pick_moment(start, end, b"other", "D1") != pick_moment(start, end, b"secret", "D1")


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 100)) == (5.0, 9.0, 10.0)
    assert percentile([], 50) is None and percentile([7.0], 90) == 7.0


def reach(pid: str, reached: float | None, acked: float | None, channel: str | None = "sms", step: int | None = 0,
          provider: str = "aliyun") -> Reach:
    return Reach(pid, pid, "acknowledged" if acked is not None else "unreached", reached, acked, channel,
                 provider if channel else None, step, planned=("sms", "im"))


def test_figures_count_within_the_bars() -> None:
    people = [reach("a", 20, 60), reach("b", 170, 290), reach("c", 200, 400), reach("d", None, None, None, None)]
    f = figures(people)
    assert (f.called, f.reached, f.acknowledged) == (4, 3, 3)
    assert f.reached_within == (2, 3) and f.acked_within == (1, 2)
    assert (f.reach_median_s, f.ack_median_s, f.reach_p90_s) == (170, 290, 200)
    assert f.reached_pct == 75.0 and f.met() == (False, False)


def test_what_took_over_is_another_channel_or_a_later_step_than_the_one_taken_out() -> None:
    assert reach("a", 5, None, "voice", 1).took_over(("sms",))
    assert reach("b", 5, None, "sms", 0, provider="tencent").took_over(("aliyun",)) is False  # same step, same channel
    assert reach("c", 5, None, "im", 0).took_over(("sms",)) is False  # its own step's other channel
    assert reach("d", 5, None, "voice", 1).took_over(()) is False  # no outage: the ladder as planned
    assert reach("e", 200, None, "voice", 1).later_s == 200


def test_bad_options_and_times_are_refused_naming_the_field() -> None:
    with pytest.raises(DrillError, match=r"without\[0\]: 'fax' is neither"):  # bad input: unknown name
        check_without(["fax"], ["aliyun"])
    with pytest.raises(DrillError, match="without\\[0\\]: 'simulator'"):  # bad input: the simulator is no provider
        check_without(["simulator"], ["aliyun", "simulator"])
    with pytest.raises(DrillError, match="length: 2 min"):  # bad input: too short to call anyone
        check_length(timedelta(minutes=2))
    with pytest.raises(DrillError, match="must carry a UTC offset"):  # bad input: a naive time
        check_time(datetime(2026, 7, 20, 9, 30), NOW)
    with pytest.raises(DrillError, match="not in the future"):  # bad input: in the past
        check_time(NOW - timedelta(seconds=1), NOW)
