"""From a call-out and the event's newest message to the text a channel sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

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
                    official: Person | None, link: str | None = None, step: int = 0,
                    facts: Mapping[str, Any] | None = None) -> MessageContext:
    """What a message of this call-out to this recipient is written from. ``facts``: the content's
    ``warning_facts``, when the caller writes many messages of it (a fan-out's claim)."""
    return MessageContext(
        **(facts if facts is not None else warning_facts(site, content)),
        official=recipient.name if recipient else callout.person_id,
        subject_official=official.name if official else callout.person_id,
        ack_code=callout.ack_code,
        link=link,
        step=max(step, 0),
    )


def warning_facts(site: Site, content: WarningRow) -> dict[str, Any]:
    """What every message of one warning content says alike, whoever it goes to."""
    return {
        "headline": content.headline,
        "hazard": Hazard(content.hazard) if content.kind == "warning" else None,  # a roll-call has no hazard
        "level": Level(content.level),
        "areas": tuple(site.areas.name(a) for a in content.areas),
        "description": content.description,
        "instruction": content.instruction,
        "sent": content.sent,
        "drill": content.drill,
        "questions": _questions(content),
    }


def _questions(content: WarningRow) -> tuple[str, ...]:
    """A spot-check's questionnaire, as frozen on its record when it was started."""
    if content.kind != "spotcheck":
        return ()
    return tuple(json.loads(content.raw)["spotcheck"]["questions"])
