"""Capacity: how long each step of a plan takes under the rate limits, and whether it fits."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.domain.capacity import capacity, span
from dispatcher.domain.channels import Channel
from dispatcher.domain.limits import RateLimit, parse_limits
from dispatcher.domain.plans import Recipient
from dispatcher.domain.rules import PlannedCallout, PlannedStep, Resolution, resolve
from tests.unit.test_rules import NOON, county, facts, red_plan

MIN = timedelta(minutes=1)
SMS, VOICE, IM = Channel.SMS, Channel.VOICE, Channel.IM


def step(index: int, after: timedelta, channels: tuple[Channel, ...], recipients: tuple[str, ...],
         final: bool = False) -> PlannedStep:
    return PlannedStep(index, after, NOON + after, channels, (Recipient.SELF,), recipients, final=final)


def officials(n: int, plan: str = "rainstorm-red", superior: str = "boss") -> Resolution:
    """``n`` officials, each: SMS+IM at once, a voice call at 3 min, their superior at 6 min,
    and a final SMS+voice to the superior at 10 min."""
    callouts = tuple(PlannedCallout(f"p{i}", plan, "test", (
        step(0, 0 * MIN, (SMS, IM), (f"p{i}",)),
        step(1, 3 * MIN, (VOICE,), (f"p{i}",)),
        step(2, 6 * MIN, (VOICE,), (superior,)),
        step(3, 10 * MIN, (SMS, VOICE), (superior,), final=True),
    )) for i in range(n))
    return Resolution((plan,), callouts, (), None)


def test_506_calls_at_one_a_second_take_8_4_minutes_and_miss_a_3_minute_step() -> None:
    cap = capacity(officials(506), parse_limits("voice=1/s"))
    call = cap.steps[1]
    assert (call.plan_id, call.index, call.after, call.deadline) == ("rainstorm-red", 1, 3 * MIN, 3 * MIN)
    [voice] = call.channels
    assert (voice.channel, voice.messages, voice.limit) == (VOICE, 506, RateLimit(1, 1))
    assert voice.time == timedelta(seconds=505)  # the first call goes at once
    assert span(voice.time) == "8.4 min"
    assert not call.fits and call.late == (voice,)
    assert not cap.fits
    assert cap.warnings[0] == ("step 1 (voice) of plan rainstorm-red: 506 calls at 1/s take 8.4 min, "
                               "longer than the 3 min until step 2")


def test_the_same_plan_fits_at_three_calls_a_second() -> None:
    cap = capacity(officials(506), parse_limits("voice=3/s"))
    call = cap.steps[1]
    assert round(call.time.total_seconds()) == 168 and call.deadline == timedelta(seconds=180)
    assert call.fits
    assert cap.warnings == [] and cap.fits


def test_channels_without_a_limit_are_instant() -> None:
    cap = capacity(officials(506), {})
    assert all(s.time == timedelta(0) and s.fits for s in cap.steps)
    assert all(c.limit is None for s in cap.steps for c in s.channels)
    assert cap.first_round == timedelta(0) and cap.warnings == []


def test_a_step_with_several_channels_takes_as_long_as_its_slowest() -> None:
    cap = capacity(officials(121), parse_limits("sms=2/s,im=1/s"))
    first = cap.steps[0]
    assert {c.channel: (c.messages, c.time.total_seconds()) for c in first.channels} == {
        SMS: (121, 60.0), IM: (121, 120.0)}
    assert first.time == timedelta(seconds=120) and first.fits
    assert cap.first_round == timedelta(seconds=120)
    # only the late channel is named
    cap = capacity(officials(400), parse_limits("sms=100/s,im=1/s"))
    assert [c.channel for c in cap.steps[0].late] == [IM]
    assert cap.warnings == ["step 0 (im) of plan rainstorm-red: 400 IM messages at 1/s take 6.7 min, "
                            "longer than the 3 min until step 1"]


def test_a_superior_reached_by_several_call_outs_counts_once_per_call_out() -> None:
    cap = capacity(officials(10), parse_limits("voice=1/min"))
    escalation = cap.steps[2]
    assert [(c.channel, c.messages) for c in escalation.channels] == [(VOICE, 10)]
    assert escalation.deadline == 4 * MIN  # until the final escalation at 10 min
    assert cap.warnings[1] == ("step 2 (voice) of plan rainstorm-red: 10 calls at 1/min take 9 min, "
                               "longer than the 4 min until the final escalation")


def test_the_final_escalation_has_no_deadline() -> None:
    cap = capacity(officials(1000), parse_limits("voice=1/min,sms=1/min"))
    final = cap.steps[-1]
    assert final.final and final.deadline is None and final.fits
    assert final.time == timedelta(minutes=999)
    assert not any(w.startswith("final escalation") for w in cap.warnings)


def test_recipients_without_an_address_for_a_channel_are_not_counted() -> None:
    no_im = {"p0", "p1"}
    cap = capacity(officials(5), {}, reachable=lambda pid, ch: not (ch is IM and pid in no_im))
    assert {c.channel: c.messages for c in cap.steps[0].channels} == {SMS: 5, IM: 3}


def test_plans_are_measured_apart_but_the_first_round_adds_them_up() -> None:
    red, flood = officials(100, "rainstorm-red"), officials(100, "flash-flood-red")
    both = Resolution(red.plans + flood.plans, red.callouts + flood.callouts, (), None)
    cap = capacity(both, parse_limits("sms=1/s"))
    assert [(s.plan_id, s.index) for s in cap.steps] == [
        ("rainstorm-red", 0), ("rainstorm-red", 1), ("rainstorm-red", 2), ("rainstorm-red", 3),
        ("flash-flood-red", 0), ("flash-flood-red", 1), ("flash-flood-red", 2), ("flash-flood-red", 3)]
    assert cap.steps[0].time == timedelta(seconds=99)
    assert cap.first_round == timedelta(seconds=199)  # 200 text messages at once, one a second
    assert cap.warnings == []


def test_on_a_resolved_county_the_last_step_runs_until_the_final_escalation() -> None:
    res = resolve(county(), facts())
    cap = capacity(res, parse_limits("voice=1/min"))
    steps = {s.index: s for s in cap.steps}
    assert [s.after for s in cap.steps] == [timedelta(0), 3 * MIN, 8 * MIN, 12 * MIN, 15 * MIN]
    assert steps[1].channels[0].messages == len(res.callouts)  # everyone's own voice call
    assert steps[3].deadline == 3 * MIN and steps[3].next_label == "the final escalation"
    assert steps[4].final and steps[4].deadline is None
    assert {c.channel for c in steps[0].channels} == {SMS, IM}
    assert steps[0].time == timedelta(0)  # sms and im unlimited


def test_a_plan_without_final_escalation_ends_when_call_outs_are_marked_unreached() -> None:
    plan = red_plan(final=None)
    res = resolve(county((plan,)), facts())
    cap = capacity(res, parse_limits("voice=1/min"))
    assert not any(s.final for s in cap.steps)  # the implicit end sends nothing
    last = cap.steps[-1]
    assert last.index == 3 and last.deadline == 5 * MIN
    assert last.next_label == "the call-out is marked unreached"


def test_an_empty_resolution_has_nothing_to_send() -> None:
    cap = capacity(Resolution((), (), (), None), parse_limits("voice=1/s"))
    assert cap.steps == () and cap.first_round == timedelta(0) and cap.fits


def test_spans_read_in_seconds_or_minutes() -> None:
    assert [span(timedelta(seconds=s)) for s in (0, 45, 60, 180, 505, 3600)] == [
        "0 s", "45 s", "1 min", "3 min", "8.4 min", "60 min"]
