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
           "choose_provider", "missing_providers", "number_limits", "provider_order_problems", "providers_for",
           "rate_limits",
           "register", "registrations"]

SIMULATOR = "simulator"
# Modules under dispatcher.channels whose import registers adapters.
ADAPTER_MODULES: tuple[str, ...] = ("simulator", "aliyun", "tencent", "twilio", "im", "email", "broadcast")
# Without JIAOYING_SMS_PROVIDERS / JIAOYING_VOICE_PROVIDERS, configured providers are tried in this
# order (those not named here after them, in registration order): the mainland carriers first.
DEFAULT_ORDER: tuple[str, ...] = ("aliyun", "tencent", "twilio")
# A provider's documented rate above this (requests a second) is not paced: no worker comes near it
# (Aliyun's SendSms: 5,000/s), and slots a fifth of a millisecond apart were missed on a busy
# machine, sending whole batches to the back of the queue. A configured limit is always kept.
UNPACED_ABOVE = 1000.0


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


def providers_for(channel: Channel, settings: Settings) -> list[str]:
    """The real providers of ``channel`` in the order they are tried: JIAOYING_SMS_PROVIDERS /
    JIAOYING_VOICE_PROVIDERS where set (only the configured ones among them), else every configured
    one in registration order (aliyun, tencent, twilio). Empty: the simulator."""
    real = _real(channel)
    named = ordered_names(channel, settings)
    if named:
        by_name = {r.provider: r for r in real}
        real = [by_name[n] for n in named if n in by_name]
    return [r.provider for r in real if r.configured(settings)]


def _real(channel: Channel) -> list[Registration]:
    """The channel's real providers, in DEFAULT_ORDER (then registration order)."""
    rank = {name: i for i, name in enumerate(DEFAULT_ORDER)}
    return sorted((r for r in registrations() if r.channel == channel and r.provider != SIMULATOR),
                  key=lambda r: rank.get(r.provider, len(rank)))


def ordered_names(channel: Channel, settings: Settings) -> list[str]:
    """The provider names JIAOYING_<CHANNEL>_PROVIDERS lists (empty when unset)."""
    raw = {Channel.SMS: settings.sms_providers, Channel.VOICE: settings.voice_providers}.get(channel, "")
    return [n.strip().lower() for n in raw.split(",") if n.strip()]


def provider_order_problems(settings: Settings) -> list[str]:
    """Names in JIAOYING_SMS_PROVIDERS / JIAOYING_VOICE_PROVIDERS that are no provider of that
    channel, or not configured: a typo must not silently drop a provider from the chain."""
    problems = []
    for channel in (Channel.SMS, Channel.VOICE):
        known = {r.provider: r for r in _real(channel)}
        for name in ordered_names(channel, settings):
            if name not in known:
                problems.append(f"JIAOYING_{channel.value.upper()}_PROVIDERS names {name!r}, which is not a "
                                f"{channel.value} provider (known: {', '.join(known)})")
            elif not known[name].configured(settings):
                problems.append(f"JIAOYING_{channel.value.upper()}_PROVIDERS names {name!r}, which is not "
                                f"configured (set {', '.join(known[name].needs) or 'its variables'})")
    return problems


def choose_provider(channel: Channel, settings: Settings) -> str:
    """The single place where a real adapter is preferred over the simulator: the first provider
    of the channel's order (providers_for), else the simulator."""
    chosen = providers_for(channel, settings)
    return chosen[0] if chosen else SIMULATOR


def missing_providers(settings: Settings, used: set[Channel] | frozenset[Channel]) -> list[str]:
    """For each channel in ``used`` that no real provider is configured for: a sentence naming the
    channel and the variables that would configure one (the production mode refuses to start)."""
    problems = []
    for channel in sorted(used, key=list(Channel).index):
        if choose_provider(channel, settings) != SIMULATOR:
            continue
        options = [f"{r.provider} ({', '.join(r.needs)})" for r in _real(channel) if r.needs]
        problems.append(f"{channel.value}: a loaded plan uses it but no provider is configured; set "
                        + (" or ".join(options) if options else "a provider for it"))
    return problems


def rate_limits(settings: Settings) -> dict[Channel, RateLimit]:
    """The limits the engine paces each channel by: JIAOYING_RATE_LIMITS where it names the channel,
    else the chosen provider's own documented limit (its adapter's ``default_limit``) unless that is
    beyond what a worker can reach (UNPACED_ABOVE)."""
    limits: dict[Channel, RateLimit] = {}
    for channel in Channel:
        registration = _registry.get((channel, choose_provider(channel, settings)))
        if registration is not None and registration.adapter is not None:
            declared = registration.adapter.default_limit(settings)
            if declared is not None and declared.per_second <= UNPACED_ABOVE:
                limits[channel] = declared
    return limits | settings.limits


def number_limits(settings: Settings) -> dict[Channel, tuple[RateLimit, ...]]:
    """Per-number limits the claim keeps: JIAOYING_NUMBER_LIMITS for the channels it names, else the
    chosen provider's documented ones (its adapter's ``number_limits``)."""
    from ..domain.limits import parse_number_limits

    limits: dict[Channel, tuple[RateLimit, ...]] = {}
    for channel in Channel:
        registration = _registry.get((channel, choose_provider(channel, settings)))
        if registration is not None and registration.adapter is not None and registration.adapter.number_limits:
            limits[channel] = registration.adapter.number_limits
    return limits | parse_number_limits(settings.number_limits)


def build_adapters(settings: Settings, outbox: SimOutbox, *, sim_endpoint: str | None = None,
                   ) -> dict[Channel, ChannelAdapter]:
    """One adapter per channel: its provider's, a ProviderChain when several are configured (failover
    in their order), else the simulator."""
    from .failover import ProviderChain

    deps = AdapterDeps(settings, outbox, sim_endpoint)
    adapters: dict[Channel, ChannelAdapter] = {}
    for channel in Channel:
        names = providers_for(channel, settings) or [SIMULATOR]
        built = [_registry[(channel, name)].factory(deps) for name in names]
        adapters[channel] = built[0] if len(built) == 1 else ProviderChain(channel, built)
    return adapters


def _load_adapter_modules() -> None:
    for name in ADAPTER_MODULES:
        import_module(f"{__package__}.{name}")
