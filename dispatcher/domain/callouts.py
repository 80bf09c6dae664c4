"""Call-outs (叫应任务): one official x one warning, and the rules for moving them along.

    pending --step sent--> notified --ack--> acknowledged
       |                      |--last step passes--> unreached --late ack--> acknowledged
       |--------cancel / superseded--------> cancelled
       '--------the warning's expires passes--> expired

A call-out carries its plan's steps frozen at start (who, when, which channels), so a later
edit of the site files does not change what a running call-out does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, overload

from .channels import Channel
from .plans import Recipient
from .rules import PlannedStep


class CalloutState(StrEnum):
    PENDING = "pending"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    UNREACHED = "unreached"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # the warning ran out (its ``expires``) before anyone answered

    @property
    def zh(self) -> str:
        return {"pending": "待发送", "notified": "已通知", "acknowledged": "已确认", "unreached": "未叫醒",
                "cancelled": "已取消", "expired": "预警已过期"}[self.value]


# The time bars a call-out's acknowledgement is measured against (minutes from its start): the board's
# statistics, the 一事一档 and the period assessment all count "within 5, 15 and 30 minutes".
ACK_WINDOWS = (5, 15, 30)

OPEN_STATES = (CalloutState.PENDING, CalloutState.NOTIFIED)
# An unreached official who finally answers is still worth knowing about: that ack counts.
ACKABLE_STATES = (*OPEN_STATES, CalloutState.UNREACHED)


class Purpose(StrEnum):
    ALERT = "alert"  # the warning, to the official
    REMINDER = "reminder"  # a later step to the same official
    TO_DEPUTY = "to_deputy"  # the official has not answered: their deputy is asked to act
    TO_SUPERIOR = "to_superior"  # … their superior
    TO_DUTY = "to_duty"  # … the duty officers
    UNREACHED = "unreached"  # 未叫醒: the final escalation, for door-to-door follow-up
    UPDATE = "update"  # new content of a warning already sent
    CANCEL = "cancel"  # the warning is lifted (解除)
    ROLLCALL = "rollcall"  # a duty roll-call (值班点名), to the person on shift: answer to say you are at your post
    ROLLCALL_MISSED = "rollcall_missed"  # … not answered in time: the room's duty leader is told (not asked to answer)
    SPOTCHECK = "spotcheck"  # a 六问 spot-check (抽查): the questions, each to answer 是 (1) or 否 (2)
    SPOTCHECK_AGAIN = "spotcheck_again"  # … the reply was not an answer (or some are missing): asked once more by SMS


class AttemptStatus(StrEnum):
    """queued -> sending (a worker holds it) -> sent -> delivered | failed; queued -> cancelled."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


# What chases an answer stops once there is one (or the warning is lifted); notices of an update or
# a cancel go to everyone reached whatever their call-out's state.
CHASING = frozenset({Purpose.ALERT, Purpose.REMINDER, Purpose.TO_DEPUTY, Purpose.TO_SUPERIOR, Purpose.TO_DUTY,
                      Purpose.UNREACHED, Purpose.ROLLCALL, Purpose.ROLLCALL_MISSED, Purpose.SPOTCHECK,
                      Purpose.SPOTCHECK_AGAIN})
# Messages that tell, not ask: an answer to one of them is not an acknowledgement of the call-out (a
# duty leader told that a roll-call went unanswered cannot answer it for the person on shift).
TELLING = frozenset({Purpose.ROLLCALL_MISSED})
# Messages that ask questions: only answers to them (services/spotchecks.py) close the call-out — a
# plain "1" or "收到" does not, nor a keypress read as an acknowledgement.
QUESTIONING = frozenset({Purpose.SPOTCHECK, Purpose.SPOTCHECK_AGAIN})
# The call-outs of a duty roll-call carry this in their hazard column (a roll-call has no hazard);
# a spot-check's carry its own.
ROLLCALL_HAZARD = "rollcall"
SPOTCHECK_HAZARD = "spotcheck"
_CLOSED = frozenset({CalloutState.ACKNOWLEDGED, CalloutState.CANCELLED, CalloutState.EXPIRED})


RETRY_CAP = timedelta(seconds=60)


def retry_delay(tries: int) -> timedelta:
    """How long a failed attempt waits before it is claimed again: 2, 4, 8 … seconds, at most a
    minute. It is never given up for a transient failure: an outage delays a message, and the last
    look before each hand-over stops it once its call-out is answered or cancelled."""
    return min(RETRY_CAP, timedelta(seconds=2 ** max(1, tries)))


def moot(purpose: Purpose, state: CalloutState) -> bool:
    """Whether an attempt for ``purpose`` must not go out now that its call-out is in ``state``:
    checked just before every hand-over, so an acknowledgement stops what is about to be sent."""
    return purpose in CHASING and state in _CLOSED


class AckVia(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    LINK = "link"
    MANUAL = "manual"  # a duty officer, on someone's behalf, with a note

    @property
    def zh(self) -> str:
        return {"sms": "短信回复", "voice": "电话按键", "link": "链接确认", "manual": "人工代确认"}[self.value]


def step_to_json(step: PlannedStep) -> dict[str, Any]:
    """A planned step as it is frozen on the call-out row."""
    return {"index": step.index, "after": step.after.total_seconds(), "due": step.due.isoformat(),
            "channels": [c.value for c in step.channels], "to": [r.value for r in step.to],
            "recipients": list(step.recipients), "held": [c.value for c in step.held], "final": step.final}


def step_from_json(data: dict[str, Any]) -> PlannedStep:
    return PlannedStep(
        index=data["index"], after=timedelta(seconds=data["after"]), due=datetime.fromisoformat(data["due"]),
        channels=tuple(Channel(c) for c in data["channels"]), to=tuple(Recipient(r) for r in data["to"]),
        recipients=tuple(data["recipients"]), held=tuple(Channel(c) for c in data.get("held", ())),
        final=data["final"])


class FrozenSteps(Sequence[PlannedStep]):
    """A call-out's frozen steps as stored, parsed only when asked for: a scheduler pass over 10,000
    call-outs reads one or two steps of each, not all of them."""

    def __init__(self, stored: list[dict[str, Any]]) -> None:
        self._stored = stored
        self._parsed: dict[int, PlannedStep] = {}

    def __len__(self) -> int:
        return len(self._stored)

    @overload
    def __getitem__(self, index: int) -> PlannedStep: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[PlannedStep]: ...

    def __getitem__(self, index: int | slice) -> PlannedStep | Sequence[PlannedStep]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        step = self._parsed.get(index)
        if step is None:
            step = self._parsed[index] = step_from_json(self._stored[index])
        return step

    def due(self, index: int) -> datetime:
        """A step's due time without parsing the rest of it."""
        return self._parsed[index].due if index in self._parsed else datetime.fromisoformat(self._stored[index]["due"])


def purpose_for(step: PlannedStep, recipient: str, official: str, rollcall: bool = False,
                spotcheck: bool = False) -> Purpose:
    """What a step's message to ``recipient`` is for, in a call-out of ``official`` (a warning's, or
    with ``rollcall`` a duty roll-call's, or with ``spotcheck`` a 六问 spot-check's)."""
    if spotcheck:
        return Purpose.SPOTCHECK
    if rollcall:
        return Purpose.ROLLCALL_MISSED if step.final else Purpose.ROLLCALL
    if step.final:
        return Purpose.UNREACHED
    if recipient == official:
        return Purpose.ALERT if step.index == 0 else Purpose.REMINDER
    if Recipient.DEPUTY in step.to:
        return Purpose.TO_DEPUTY
    if Recipient.SUPERIOR in step.to:
        return Purpose.TO_SUPERIOR
    return Purpose.TO_DUTY


def supersedes(new_level_rank: int, old_level_rank: int) -> bool:
    """A higher level takes over an official's open call-out for the same hazard and area
    (the way a critical alert inhibits a warning); an equal or lower one is muted instead."""
    return new_level_rank > old_level_rank
