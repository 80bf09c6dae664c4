"""A call-out's life as rules: pure functions over plain call-out facts, the time an argument.

The services keep their bulk SQL (a 10,000-official fan-out depends on it) and ask these what to
do; every rule of the ladder is a plain function call here, tested at fixed times:

- ``advance``      the due step runs: which step, what the call-out becomes, when the next is due
- ``acknowledge``  an answer arrives: close it, close it late (after 未叫醒), or record and ignore it
- ``takes_over``   a new warning meets an official's open call-out: supersede it, or mute the new one
- ``fail_over``    the official's own step failed on every channel: bring the next step forward?
- ``expire``       the warning ran out: what an open call-out becomes
- ``recall``       a duty officer asks to call again: run the next step now, or call again past the end
- ``moot`` / ``retry_delay`` (domain.callouts) decide a single attempt's fate at hand-over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .callouts import ACKABLE_STATES, OPEN_STATES, CalloutState, supersedes
from .rules import PlannedStep


@dataclass(frozen=True)
class CalloutFacts:
    """What the rules need of a call-out: its state, its frozen steps and where its timer stands."""

    state: CalloutState
    steps: Sequence[PlannedStep]  # frozen at start (FrozenSteps reads them from the row lazily)
    next_step: int
    next_due: datetime | None

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def current_step(self) -> int:
        """The index of the step that ran last (-1 before step 0)."""
        return self.next_step - 1


@dataclass(frozen=True)
class Advanced:
    step: PlannedStep  # the step to run now
    state: CalloutState  # what the call-out becomes (unreached when the step is the final escalation)
    next_step: int
    next_due: datetime | None  # None: nothing more is due


def advance(facts: CalloutFacts, now: datetime) -> Advanced | None:
    """The step due by ``now``, or None (closed, not due yet, or nothing left)."""
    if not facts.open or facts.next_due is None or facts.next_due > now or facts.next_step >= len(facts.steps):
        return None
    step = facts.steps[facts.next_step]
    following = facts.next_step + 1
    state = CalloutState.UNREACHED if step.final else facts.state
    return Advanced(step, state, following, _due(facts.steps, following) if following < len(facts.steps) else None)


def _due(steps: Sequence[PlannedStep], index: int) -> datetime:
    due = getattr(steps, "due", None)  # FrozenSteps knows a due time without parsing the whole step
    return due(index) if due is not None else steps[index].due


class AckDecision(StrEnum):
    CLOSE = "close"  # an open call-out is answered
    CLOSE_LATE = "close_late"  # answered after it was listed as unreached: still counts
    IGNORE = "ignore"  # already answered, cancelled or expired: recorded, nothing changes


def acknowledge(state: CalloutState) -> AckDecision:
    if state is CalloutState.UNREACHED:
        return AckDecision.CLOSE_LATE
    return AckDecision.CLOSE if state in ACKABLE_STATES else AckDecision.IGNORE


def ignored_outcome(states: set[CalloutState]) -> str:
    """How an answer that changed nothing is reported, from the states of the call-outs it named."""
    if not states:
        return "nothing_open"
    if CalloutState.CANCELLED in states:
        return "cancelled"
    if CalloutState.EXPIRED in states:
        return "expired"
    return "already_acknowledged"


class TakeOver(StrEnum):
    SUPERSEDE = "supersede"  # the new, higher level replaces the open call-out
    MUTE = "mute"  # the official is already being called at this level or higher: no second call-out


def takes_over(new_level_rank: int, open_level_rank: int) -> TakeOver:
    return TakeOver.SUPERSEDE if supersedes(new_level_rank, open_level_rank) else TakeOver.MUTE


def fail_over(facts: CalloutFacts, failed_step: int, now: datetime) -> datetime | None:
    """The official's own step ``failed_step`` reached nobody on any channel: the new due time of the
    next step (now), or None when that changes nothing — the call-out is closed, the failure is of
    an older step, or the next step is due already."""
    if not facts.open or failed_step != facts.current_step:
        return None
    if facts.next_due is None or facts.next_due <= now:
        return None
    return now


def expire(state: CalloutState) -> CalloutState | None:
    """What a call-out becomes when its warning runs out: open ones close as expired; an unreached
    one stays on the 未叫醒 list; closed ones stay as they are."""
    return CalloutState.EXPIRED if state in OPEN_STATES else None


class Recall(StrEnum):
    NEXT_STEP_NOW = "next_step_now"  # the ladder is still running: its next step runs at once
    CALL_AGAIN = "call_again"  # past the last step (or unreached): the official is called again


def recall(facts: CalloutFacts) -> Recall | None:
    """A duty officer's 立即重呼; None when the call-out is closed (nothing to re-call)."""
    if facts.state not in ACKABLE_STATES:
        return None
    if facts.state is not CalloutState.UNREACHED and facts.next_due is not None:
        return Recall.NEXT_STEP_NOW
    return Recall.CALL_AGAIN
