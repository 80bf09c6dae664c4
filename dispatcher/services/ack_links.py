"""The call-out behind an acknowledgement link (``/ack/<token>``; the token: ``dispatcher/links.py``):
what its page shows, and the confirmation — through the one ack service, recorded on the warning's
record with where it came from. A link already used, or a call-out closed otherwise, changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..db.record_repo import append_event
from ..db.tables import CalloutRow
from ..domain.callouts import ACKABLE_STATES, AckVia, CalloutState
from ..domain.hazards import Level
from ..domain.record import EventKind
from ..links import LinkClaims
from . import ack
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


def _view(session: Session, callout: CalloutRow, recipient: str) -> LinkView:
    content = newest(session, callout.record_id)
    people = current_site(session).people
    level = Level(content.level)
    official = people[callout.person_id].name if callout.person_id in people else callout.person_id
    by = people[recipient].name if recipient in people else recipient
    return LinkView(headline=content.headline, level=level.value, level_zh=level.zh, official=official,
                    recipient=by, drill=callout.drill)
