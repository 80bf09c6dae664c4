"""Readiness gaps for the mainland carriers: a purpose a plan can send on SMS or voice through a
configured template provider (Aliyun, Tencent) with no approved template in the template file. Found
by `validate` and `preview` before the flood season, not as a failed message during the warning."""

from __future__ import annotations

from collections.abc import Iterable

from ..channels.carrier_templates import CarrierTemplateError, carrier_templates
from ..channels.registry import _registry, providers_for
from ..config import Settings
from ..domain.callouts import Purpose
from ..domain.channels import Channel
from ..domain.plans import Plan, Recipient
from ..domain.rules import DEFAULT_FALLBACK
from ..domain.site import Site

__all__ = ["purposes_of", "template_gaps"]

_TO = {Recipient.DEPUTY: Purpose.TO_DEPUTY, Recipient.SUPERIOR: Purpose.TO_SUPERIOR, Recipient.DUTY: Purpose.TO_DUTY,
       Recipient.TOWN_DUTY: Purpose.TO_DUTY}


def purposes_of(plan: Plan, channel: Channel) -> list[Purpose]:
    """What a plan can send on ``channel``: its own steps' alert and reminders, the escalation
    steps' messages, the final 未叫醒 list, and — to everyone it reached — update and cancel notices."""
    found: list[Purpose] = []
    for index, step in enumerate(plan.steps):
        if channel not in step.channels:
            continue
        if step.to is Recipient.SELF:
            found.append(Purpose.ALERT if index == 0 else Purpose.REMINDER)
        else:
            found.append(_TO[step.to])
    if plan.final is not None and channel in plan.final.channels:
        found.append(Purpose.UNREACHED)
    if found:
        found += [Purpose.UPDATE, Purpose.CANCEL]
    return list(dict.fromkeys(found))


def template_gaps(site: Site, settings: Settings, plans: Iterable[Plan] | None = None) -> list[dict[str, str]]:
    """One gap per provider × channel × purpose that a plan can send and the template file lacks,
    naming the plans (or one for a template file that cannot be read). Empty when no template
    provider is configured."""
    providers = {channel: [p for p in providers_for(channel, settings) if _uses_templates(channel, p)]
                 for channel in (Channel.SMS, Channel.VOICE)}
    if not any(providers.values()):
        return []
    try:
        templates = carrier_templates(settings.carrier_templates)
    except CarrierTemplateError as exc:
        return [{"kind": "no_template", "plan": "", "subject": "JIAOYING_CARRIER_TEMPLATES", "message": str(exc)}]
    chosen = list(plans) if plans is not None else [*site.plans, site.fallback or DEFAULT_FALLBACK]
    wanting: dict[tuple[str, Channel, Purpose], list[str]] = {}  # one gap per template, naming the plans
    for plan in chosen:
        for channel, names in providers.items():
            for provider in names:
                for purpose in templates.missing(provider, channel, purposes_of(plan, channel)):
                    wanting.setdefault((provider, channel, purpose), []).append(plan.id)
    for rollcall in site.rollcalls if plans is None else ():  # the duty roll-calls of checks.yaml
        for channel, names in providers.items():
            sends = [p for p, used in ((Purpose.ROLLCALL, rollcall.channels), (Purpose.ROLLCALL_MISSED, rollcall.tell))
                     if channel in used]
            for provider in names:
                for purpose in templates.missing(provider, channel, sends):
                    wanting.setdefault((provider, channel, purpose), []).append(f"rollcall:{rollcall.id}")
    for spotcheck in site.spotchecks if plans is None else ():  # the 六问 spot-checks of checks.yaml
        for channel, names in providers.items():
            # the questions on the channel; a reply that was not an answer is asked again by SMS
            sends = ([Purpose.SPOTCHECK] if channel in spotcheck.channels else []) + (
                [Purpose.SPOTCHECK_AGAIN] if channel is Channel.SMS else [])
            for provider in names:
                for purpose in templates.missing(provider, channel, sends):
                    wanting.setdefault((provider, channel, purpose), []).append(f"spotcheck:{spotcheck.id}")
    where = settings.carrier_templates or "no JIAOYING_CARRIER_TEMPLATES file"
    return [{"kind": "no_template", "plan": ", ".join(ids), "subject": f"{provider}/{channel}/{purpose}",
             "message": f"{channel} {purpose} through {provider} has no approved template ({where}); plans that "
                        f"can send it: {', '.join(ids)} — that message would fail; see `jiaoying carriers "
                        f"templates --provider {provider}`"}
            for (provider, channel, purpose), ids in wanting.items()]


def _uses_templates(channel: Channel, provider: str) -> bool:
    registration = _registry.get((channel, provider))
    return bool(registration and registration.adapter and registration.adapter.uses_templates)
