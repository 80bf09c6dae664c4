"""Which providers the engine will really use, checked before a production process starts: a red
warning must never be "sent" to the in-memory simulator because a variable was forgotten."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from ..channels.registry import SIMULATOR, choose_provider, missing_providers, provider_order_problems
from ..config import Settings
from ..db.session import transaction
from ..domain.channels import Channel
from ..domain.rules import DEFAULT_FALLBACK
from ..domain.site import Site
from .errors import NotReady
from .site import current_site

log = logging.getLogger("jiaoying.providers")
SIMULATOR_HINT = " (or set JIAOYING_ALLOW_SIMULATORS=1 to run on simulators, which reach no phone)"


def used_channels(site: Site) -> frozenset[Channel]:
    """Every channel a plan of the site can send on, its fallback plan's included."""
    used: set[Channel] = set()
    for plan in (*site.plans, site.fallback or DEFAULT_FALLBACK):
        used |= plan.channels
    return frozenset(used)


def startup_problems(settings: Settings) -> list[str]:
    """Production only (and unless JIAOYING_ALLOW_SIMULATORS=1): the channels the loaded site uses
    that no provider is configured for, each with the variables to set. Empty when there is no site
    yet or the database cannot be read (the process starts and /readyz says what is wrong)."""
    order = provider_order_problems(settings)  # a typo in a provider order is refused in any mode
    if settings.environment != "production" or settings.allow_simulators:
        return order
    try:
        with transaction(settings.database_url, write=False) as session:
            used = used_channels(current_site(session))
    except (NotReady, SQLAlchemyError) as exc:
        log.warning("providers not checked at start-up: %s", exc)
        return order
    return order + missing_providers(settings, used)


def simulated(settings: Settings) -> list[str]:
    """The channels running on the simulator in the production mode (JIAOYING_ALLOW_SIMULATORS=1)."""
    if settings.environment != "production":
        return []
    return [c.value for c in Channel if choose_provider(c, settings) == SIMULATOR]
