"""From a call-out and the event's newest message to the text a channel sends."""

from __future__ import annotations

import json
from typing import Protocol

from ..db.tables import WarningRow
from ..domain.callouts import Purpose
from ..domain.channels import Channel
from ..domain.hazards import Hazard, Level
from ..domain.roster import Person
from ..domain.site import Site
from ..rendering import MessageContext, render


class CalloutFacts(Protocol):
    """What a message needs of its call-out (a CalloutRow, or a plain row of these columns)."""

    person_id: str
    ack_code: str


def compose(site: Site, channel: Channel, purpose: Purpose, content: WarningRow, callout: CalloutFacts,
            recipient: Person | None, official: Person | None, link: str | None = None,
            lang: str = "zh", step: int = 0) -> tuple[str, str]:
    """``step``: the plan step the message belongs to (the attempt's), shown as the round number."""
    rendered = render(channel, purpose, lang, message_context(site, content, callout, recipient, official, link, step))
    return rendered.subject, rendered.text


def message_context(site: Site, content: WarningRow, callout: CalloutFacts, recipient: Person | None,
                    official: Person | None, link: str | None = None, step: int = 0) -> MessageContext:
    """What a message of this call-out to this recipient is written from."""
    return MessageContext(
        headline=content.headline,
        hazard=Hazard(content.hazard) if content.kind == "warning" else None,  # a roll-call has no hazard
        level=Level(content.level),
        areas=[site.areas.name(a) for a in content.areas],
        description=content.description,
        instruction=content.instruction,
        sent=content.sent,
        drill=content.drill,
        official=recipient.name if recipient else callout.person_id,
        subject_official=official.name if official else callout.person_id,
        ack_code=callout.ack_code,
        link=link,
        step=max(step, 0),
        questions=_questions(content),
    )


def _questions(content: WarningRow) -> tuple[str, ...]:
    """A spot-check's questionnaire, as frozen on its record when it was started."""
    if content.kind != "spotcheck":
        return ()
    return tuple(json.loads(content.raw)["spotcheck"]["questions"])
