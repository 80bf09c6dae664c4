"""From a call-out and the event's newest message to the text a channel sends."""

from __future__ import annotations

from ..db.tables import CalloutRow, WarningRow
from ..domain.callouts import Purpose
from ..domain.channels import Channel
from ..domain.hazards import Hazard, Level
from ..domain.roster import Person
from ..domain.site import Site
from ..rendering import MessageContext, render


def compose(site: Site, channel: Channel, purpose: Purpose, content: WarningRow, callout: CalloutRow,
            recipient: Person | None, official: Person | None, link: str | None = None,
            lang: str = "zh") -> tuple[str, str]:
    step = next((s for s in callout.steps if s["index"] == callout.next_step - 1), None)
    context = MessageContext(
        headline=content.headline,
        hazard=Hazard(content.hazard),
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
        step=step["index"] if step else 0,
    )
    rendered = render(channel, purpose, lang, context)
    return rendered.subject, rendered.text
