"""The call-out's life as plain function calls at fixed times (dispatcher.domain.escalation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.domain.callouts import (
    CalloutState,
    FrozenSteps,
    Purpose,
    moot,
    retry_delay,
    step_to_json,
)
from dispatcher.domain.channels import Channel
from dispatcher.domain.escalation import (
    AckDecision,
    CalloutFacts,
    Recall,
    TakeOver,
    acknowledge,
    advance,
    expire,
    fail_over,
    ignored_outcome,
    recall,
    takes_over,
)
from dispatcher.domain.plans import Recipient
from dispatcher.domain.rules import PlannedStep

T0 = datetime(2026, 7, 16, 3, 12, tzinfo=UTC)


def ladder() -> tuple[PlannedStep, ...]:
    """SMS at once, voice at 3 min, the deputy at 6, the 未叫醒 list at 15."""
    def step(i: int, minutes: int, channels: tuple[Channel, ...], to: Recipient, final: bool = False) -> PlannedStep:
        after = timedelta(minutes=minutes)
        return PlannedStep(i, after, T0 + after, channels, (to,), ("p",), final=final)

    return (step(0, 0, (Channel.SMS,), Recipient.SELF), step(1, 3, (Channel.VOICE,), Recipient.SELF),
            step(2, 6, (Channel.SMS,), Recipient.DEPUTY), step(3, 15, (Channel.SMS,), Recipient.DUTY, final=True))


def facts(state: CalloutState = CalloutState.PENDING, next_step: int = 0, due: datetime | None = T0) -> CalloutFacts:
    return CalloutFacts(state, ladder(), next_step, due)


def test_step_0_runs_at_once_and_the_timer_moves_to_step_1() -> None:
    moved = advance(facts(), T0)
    assert moved is not None and moved.step.index == 0
    assert (moved.state, moved.next_step, moved.next_due) == (CalloutState.PENDING, 1, T0 + timedelta(minutes=3))


def test_a_step_not_yet_due_does_not_run() -> None:
    assert advance(facts(CalloutState.NOTIFIED, 1, T0 + timedelta(minutes=3)), T0 + timedelta(minutes=2)) is None


def test_the_final_step_marks_the_call_out_unreached_and_nothing_more_is_due() -> None:
    moved = advance(facts(CalloutState.NOTIFIED, 3, T0 + timedelta(minutes=15)), T0 + timedelta(minutes=15))
    assert moved is not None and moved.step.final
    assert (moved.state, moved.next_step, moved.next_due) == (CalloutState.UNREACHED, 4, None)


@pytest.mark.parametrize("state", [CalloutState.ACKNOWLEDGED, CalloutState.CANCELLED, CalloutState.EXPIRED,
                                   CalloutState.UNREACHED])
def test_a_closed_or_unreached_call_out_runs_no_step(state: CalloutState) -> None:
    assert advance(facts(state, 1, T0), T0 + timedelta(hours=1)) is None


def test_steps_read_from_the_row_parse_only_what_is_asked() -> None:
    stored = [step_to_json(s) for s in ladder()]
    steps = FrozenSteps(stored)
    moved = advance(CalloutFacts(CalloutState.NOTIFIED, steps, 1, T0 + timedelta(minutes=3)), T0 + timedelta(minutes=3))
    assert moved is not None and moved.step == ladder()[1] and moved.next_due == T0 + timedelta(minutes=6)
    assert sorted(steps._parsed) == [1]  # step 2's due time was read without parsing it


@pytest.mark.parametrize(("state", "decision"), [
    (CalloutState.PENDING, AckDecision.CLOSE), (CalloutState.NOTIFIED, AckDecision.CLOSE),
    (CalloutState.UNREACHED, AckDecision.CLOSE_LATE), (CalloutState.ACKNOWLEDGED, AckDecision.IGNORE),
    (CalloutState.CANCELLED, AckDecision.IGNORE), (CalloutState.EXPIRED, AckDecision.IGNORE)])
def test_who_an_answer_closes(state: CalloutState, decision: AckDecision) -> None:
    assert acknowledge(state) is decision


def test_an_answer_that_changes_nothing_says_why() -> None:
    assert ignored_outcome(set()) == "nothing_open"
    assert ignored_outcome({CalloutState.ACKNOWLEDGED, CalloutState.CANCELLED}) == "cancelled"
    assert ignored_outcome({CalloutState.EXPIRED}) == "expired"
    assert ignored_outcome({CalloutState.ACKNOWLEDGED}) == "already_acknowledged"


def test_a_higher_level_supersedes_an_equal_or_lower_one_is_muted() -> None:
    assert takes_over(4, 3) is TakeOver.SUPERSEDE
    assert takes_over(3, 3) is TakeOver.MUTE and takes_over(3, 4) is TakeOver.MUTE


def test_a_failed_own_step_brings_the_next_one_forward_once() -> None:
    running = facts(CalloutState.NOTIFIED, 1, T0 + timedelta(minutes=3))  # step 0 ran, step 1 due at 3 min
    assert fail_over(running, 0, T0 + timedelta(seconds=30)) == T0 + timedelta(seconds=30)
    assert fail_over(running, 1, T0 + timedelta(seconds=30)) is None  # not the step that ran last
    due_now = facts(CalloutState.NOTIFIED, 1, T0)
    assert fail_over(due_now, 0, T0 + timedelta(seconds=30)) is None  # already due: nothing to bring forward
    assert fail_over(facts(CalloutState.ACKNOWLEDGED, 1, None), 0, T0) is None


def test_expiry_closes_open_call_outs_and_keeps_the_unreached_list() -> None:
    assert expire(CalloutState.PENDING) is expire(CalloutState.NOTIFIED) is CalloutState.EXPIRED
    assert expire(CalloutState.UNREACHED) is None and expire(CalloutState.ACKNOWLEDGED) is None


def test_recall_runs_the_next_step_now_or_calls_again_past_the_end() -> None:
    assert recall(facts(CalloutState.NOTIFIED, 1, T0 + timedelta(minutes=3))) is Recall.NEXT_STEP_NOW
    assert recall(facts(CalloutState.UNREACHED, 4, None)) is Recall.CALL_AGAIN
    assert recall(facts(CalloutState.CANCELLED, 2, None)) is None


@pytest.mark.parametrize("purpose", [Purpose.ALERT, Purpose.REMINDER, Purpose.TO_DEPUTY, Purpose.UNREACHED])
def test_an_answered_call_out_stops_what_chases_an_answer_but_not_notices(purpose: Purpose) -> None:
    assert moot(purpose, CalloutState.ACKNOWLEDGED) and moot(purpose, CalloutState.EXPIRED)
    assert not moot(purpose, CalloutState.NOTIFIED) and not moot(purpose, CalloutState.UNREACHED)
    assert not moot(Purpose.CANCEL, CalloutState.CANCELLED) and not moot(Purpose.UPDATE, CalloutState.ACKNOWLEDGED)


def test_a_failed_try_waits_longer_each_time_and_at_most_a_minute() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 10)] == [2, 4, 8, 16, 32, 60, 60]
