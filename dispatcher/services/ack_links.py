"""The call-out behind an acknowledgement link (``/ack/<token>``; the token: ``dispatcher/links.py``):
what its page shows, and the confirmation — through the one ack service, recorded on the warning's
record with where it came from. A link already used, or a call-out closed otherwise, changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import AnswerRow, CalloutRow
from ..domain.callouts import ACKABLE_STATES, SPOTCHECK_HAZARD, AckVia, CalloutState
from ..domain.hazards import Level
from ..domain.record import EventKind
from ..domain.spotcheck import NO, YES
from ..links import LinkClaims
from . import ack, spotchecks
from .chain import newest
from .site import current_site


@dataclass(frozen=True)
class LinkView:
    """What the link's pages show: the warning's newest content, whose call-out it is, and who was
    sent the link (the official, or someone told on their behalf)."""

    headline: str
    level: str
    level_zh: str
    official: str
    recipient: str
    drill: bool
    # A 六问 spot-check's: its questions, and the answers given so far (yes | no | None each); the
    # page asks the questions instead of a confirm button.
    questions: tuple[str, ...] = ()
    answers: tuple[str | None, ...] = ()

    def fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LinkCallout:
    view: LinkView
    closed: bool  # acknowledged, cancelled or expired: confirming changes nothing


@dataclass(frozen=True)
class Confirmation:
    view: LinkView
    outcome: str  # acknowledged, already_acknowledged, cancelled, … (the ack service's outcomes)


def look_up(session: Session, claims: LinkClaims) -> LinkCallout | None:
    """The link's call-out as its page shows it; None when it no longer exists."""
    callout = session.get(CalloutRow, claims.callout_id)
    if callout is None:
        return None
    return LinkCallout(_view(session, callout, claims.recipient), closed=callout.state not in ACKABLE_STATES)


def confirm(session: Session, now: datetime, claims: LinkClaims, ip: str | None, agent: str) -> Confirmation | None:
    """Acknowledge the link's call-out (``ip`` and ``agent``, the browser's, go on the record);
    None when the call-out no longer exists."""
    callout = session.get(CalloutRow, claims.callout_id)
    if callout is None:
        return None
    view = _view(session, callout, claims.recipient)
    if callout.state not in ACKABLE_STATES:  # already used (or closed otherwise): change nothing
        return Confirmation(view, "cancelled" if callout.state == CalloutState.CANCELLED else "already_acknowledged")
    result = ack.acknowledge_callout(session, now, claims.callout_id, via=AckVia.LINK, by=claims.recipient)
    if result.acknowledged:
        append_event(session, callout.record_id, EventKind.LINK_USED, claims.recipient, now, {
            "callout": callout.id, "person": callout.person_id, "recipient": claims.recipient,
            "nonce": claims.nonce, "ip": ip, "user_agent": agent})
    return Confirmation(view, result.outcome)


class NotAnswered(ValueError):
    """The questionnaire came back with a question left out or answered with something else."""


def answer(session: Session, now: datetime, claims: LinkClaims, form: dict[str, str], ip: str | None,
           agent: str) -> Confirmation | None:
    """A spot-check's questionnaire sent from the link's page (``form``: q0, q1 … each yes or no).
    Every question must be answered (else ``NotAnswered``, nothing recorded); the first answer to a
    question stands. None when the call-out no longer exists."""
    callout = session.get(CalloutRow, claims.callout_id)
    if callout is None:
        return None
    view = _view(session, callout, claims.recipient)
    if callout.state not in ACKABLE_STATES:
        return Confirmation(view, "cancelled" if callout.state == CalloutState.CANCELLED else "already_acknowledged")
    marks = {q: form.get(f"q{q}", "") for q in range(len(view.questions))}
    missing = [q + 1 for q, mark in marks.items() if mark not in (YES, NO)]
    if missing:
        raise NotAnswered("、".join(str(q) for q in missing))
    taken = spotchecks.answer(session, now, callout.id, marks, via=AckVia.LINK, by=claims.recipient,
                              detail={"ip": ip, "user_agent": agent})
    return Confirmation(_view(session, callout, claims.recipient), "answered" if taken.complete else "partial")


def _view(session: Session, callout: CalloutRow, recipient: str) -> LinkView:
    content = newest(session, callout.record_id)
    people = current_site(session).people
    level = Level(content.level)
    official = people[callout.person_id].name if callout.person_id in people else callout.person_id
    by = people[recipient].name if recipient in people else recipient
    questions: tuple[str, ...] = ()
    answers: tuple[str | None, ...] = ()
    if callout.hazard == SPOTCHECK_HAZARD:
        questions = spotchecks.questions_of(session, callout.record_id)
        given = dict(session.execute(select(AnswerRow.question, AnswerRow.answer).where(
            AnswerRow.callout_id == callout.id)).all())
        answers = tuple(given.get(q) for q in range(len(questions)))
    return LinkView(headline=content.headline, level=level.value, level_zh=level.zh, official=official,
                    recipient=by, drill=callout.drill, questions=questions, answers=answers)
