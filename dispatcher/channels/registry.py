"""Adapter factories keyed by channel and provider, and the one place that picks which to use.

An adapter module registers its factory at import time::

    @register(Channel.SMS, "twilio", configured=lambda s: bool(s.twilio_account_sid))
    def build(deps: AdapterDeps) -> ChannelAdapter: ...

and is named in ``ADAPTER_MODULES``. ``build_adapters`` gives each channel the first registered
provider whose ``configured(settings)`` holds, else the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from ..config import Settings
from ..domain.channels import Channel
from ..domain.limits import RateLimit
from .base import ChannelAdapter

if TYPE_CHECKING:
    from .simulator import SimOutbox

__all__ = ["ADAPTER_MODULES", "SIMULATOR", "AdapterDeps", "AdapterFactory", "Registration", "build_adapters",
           "choose_provider", "missing_providers", "rate_limits", "register", "registrations"]

SIMULATOR = "simulator"
# Modules under dispatcher.channels whose import registers adapters.
ADAPTER_MODULES: tuple[str, ...] = ("simulator", "twilio", "im", "email", "broadcast")


@dataclass(frozen=True)
class AdapterDeps:
    """What a factory may use to build its adapter."""

    settings: Settings
    outbox: SimOutbox
    sim_endpoint: str | None = None  # simulators POST each message here (benchmarks, outage tests)


AdapterFactory = Callable[[AdapterDeps], ChannelAdapter]


@dataclass(frozen=True)
class Registration:
    channel: Channel
    provider: str
    factory: AdapterFactory
    configured: Callable[[Settings], bool]
    adapter: type[ChannelAdapter] | None = None  # the class the factory builds: its declarations
    needs: tuple[str, ...] = ()  # the variables that configure it (for messages that say what to set)


_registry: dict[tuple[Channel, str], Registration] = {}


def register(channel: Channel, provider: str, *, configured: Callable[[Settings], bool] | None = None,
             adapter: type[ChannelAdapter] | None = None, needs: tuple[str, ...] = (),
             ) -> Callable[[AdapterFactory], AdapterFactory]:
    """Register a factory. ``configured`` says whether the settings carry this provider's
    credentials (the simulator needs none); ``adapter`` is the class it builds, whose declarations
    (default rate limit, batch size, …) are read without building it."""

    def decorate(factory: AdapterFactory) -> AdapterFactory:
        key = (channel, provider)
        if key in _registry and _registry[key].factory is not factory:
            raise ValueError(f"{provider!r} is already registered for {channel}")
        _registry[key] = Registration(channel, provider, factory, configured or (lambda _settings: True), adapter,
                                      needs)
        return factory

    return decorate


def registrations() -> list[Registration]:
    """Every registered adapter, in registration order."""
    _load_adapter_modules()
    return list(_registry.values())


def choose_provider(channel: Channel, settings: Settings) -> str:
    """The single place where a real adapter is preferred over the simulator: the first
    registered real provider of this channel whose credentials are set."""
    for reg in registrations():
        if reg.channel == channel and reg.provider != SIMULATOR and reg.configured(settings):
            return reg.provider
    return SIMULATOR


def missing_providers(settings: Settings, used: set[Channel] | frozenset[Channel]) -> list[str]:
    """For each channel in ``used`` that no real provider is configured for: a sentence naming the
    channel and the variables that would configure one (the production mode refuses to start)."""
    problems = []
    for channel in sorted(used, key=list(Channel).index):
        if choose_provider(channel, settings) != SIMULATOR:
            continue
        options = [f"{r.provider} ({', '.join(r.needs)})" for r in registrations()
                   if r.channel == channel and r.provider != SIMULATOR and r.needs]
        problems.append(f"{channel.value}: a loaded plan uses it but no provider is configured; set "
                        + (" or ".join(options) if options else "a provider for it"))
    return problems


def rate_limits(settings: Settings) -> dict[Channel, RateLimit]:
    """The limits the engine paces each channel by: JIAOYING_RATE_LIMITS where it names the channel,
    else the chosen provider's own documented limit (its adapter's ``default_limit``)."""
    limits: dict[Channel, RateLimit] = {}
    for channel in Channel:
        registration = _registry.get((channel, choose_provider(channel, settings)))
        if registration is not None and registration.adapter is not None:
            declared = registration.adapter.default_limit(settings)
            if declared is not None:
                limits[channel] = declared
    return limits | settings.limits


def build_adapters(settings: Settings, outbox: SimOutbox, *, sim_endpoint: str | None = None,
                   ) -> dict[Channel, ChannelAdapter]:
    deps = AdapterDeps(settings, outbox, sim_endpoint)
    return {channel: _registry[(channel, choose_provider(channel, settings))].factory(deps) for channel in Channel}


def _load_adapter_modules() -> None:
    for name in ADAPTER_MODULES:
        import_module(f"{__package__}.{name}")
