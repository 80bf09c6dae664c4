"""Several providers for one channel, in order (JIAOYING_SMS_PROVIDERS=aliyun,tencent,twilio): losing a
provider must not stop a call-out — it is what a county's 断网断电 drills test.

``ProviderChain`` is one adapter to the engine. Each message goes to the first provider whose own
circuit lets it through. A provider's circuit opens after repeated failures (transient ones: 5xx,
timeouts, throttling) or at once on an account-level refusal (ConfigurationError: credentials,
arrears, signature or template unavailable, account throttled); while it is open the later messages
go to the next provider, and one trial message now and then finds out whether it is back.

A message is moved on to the next provider within the same hand-over only when the refusal proves it
did not go out: a ConfigurationError, or a transient refusal the provider answered (429, 503,
throttling: ``TransientError.unsent``). Another transient failure may have reached the provider (a
timeout after it kept the message), so that message is not sent elsewhere at once: it waits for its
next try, which first asks every provider that can look a key up. A provider whose circuit is half-
open gets one trial message, not a whole batch. The chain keeps its own circuits: the engine's per-
channel breaker leaves a chain alone (``manages_circuits``). Each attempt records the provider that
took it; ``status()`` says which provider the channel is on and why, for the heartbeat, /readyz,
/metrics and the board.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..domain.channels import Channel
from .base import (
    Address,
    ChannelAdapter,
    ChannelError,
    ConfigurationError,
    OutboundMessage,
    SendResult,
    TransientError,
)
from .resilience import BreakerState, CircuitBreaker

__all__ = ["ChainStatus", "ProviderChain"]

SINGLE_CONCURRENCY = 16  # messages in flight when a chain sends a batch through a one-by-one provider


@dataclass(frozen=True)
class ChainStatus:
    current: str  # the provider the next message goes to ("" when every one is refusing)
    why: str  # empty while on the first provider


class ProviderChain(ChannelAdapter):
    provider = "chain"  # an attempt records the provider that took it (SendResult.provider)
    manages_circuits = True

    def __init__(self, channel: Channel, adapters: Sequence[ChannelAdapter], *, threshold: int = 5,
                 cooldown: float = 5.0, now: Callable[[], float] = time.monotonic) -> None:
        if not adapters:
            raise ValueError("a provider chain needs at least one provider")
        self.channel = channel  # type: ignore[misc]  # per instance, as the simulators' is
        self.adapters = list(adapters)
        self.provider = "+".join(a.provider for a in self.adapters)  # type: ignore[misc]
        self.batch_size = max(a.batch_size for a in self.adapters)  # type: ignore[misc]
        self.can_look_up = any(a.can_look_up for a in self.adapters)  # type: ignore[misc]
        self.calls_back = any(a.calls_back for a in self.adapters)  # type: ignore[misc]
        # One circuit per provider; the engine's own (per channel) opens only when all of them fail.
        self._breakers = [CircuitBreaker(threshold, cooldown, now) for _ in self.adapters]

    def status(self) -> ChainStatus:
        reasons = []
        for adapter, breaker in zip(self.adapters, self._breakers, strict=True):
            if breaker.retry_in(self.channel) <= 0:
                return ChainStatus(adapter.provider, "; ".join(reasons))
            halted = breaker.halted().get(self.channel)
            reasons.append(f"{adapter.provider} {'halted: ' + halted.reason if halted else 'failing'}")
        return ChainStatus("", "; ".join(reasons))

    async def send(self, message: OutboundMessage, skip: frozenset[str] = frozenset()) -> SendResult:
        """``skip``: providers a drill took out for this message (断网 drills): passed over without
        being tried, as if they were down, their circuits untouched (real messages still use them)."""
        last: ChannelError | None = None
        for adapter, breaker in zip(self.adapters, self._breakers, strict=True):
            if adapter.provider in skip:
                continue
            if not breaker.allow(self.channel):  # asked only when about to try (a half-open trial is a token)
                continue
            try:
                result = await adapter.send(message)
            except ConfigurationError as exc:  # refused, so not sent: the next provider may take it now
                breaker.halt(self.channel, str(exc))
                last = ConfigurationError(f"{adapter.provider}: {exc}")
                continue
            except TransientError as exc:
                breaker.record(self.channel, False)
                if exc.unsent:  # answered "not now": not sent, so the next provider may take it now
                    last = TransientError(f"{adapter.provider}: {exc}", exc.retry_after, unsent=True)
                    continue
                raise  # it may have gone out: not elsewhere now (its next try looks it up first)
            except ChannelError:
                breaker.record(self.channel, True)  # the provider answered: this message was refused
                raise
            breaker.record(self.channel, True)
            return SendResult(result.provider_id, result.status, result.provider or adapter.provider)
        raise last or TransientError(f"{self.channel.value}: every provider is failing ({self.status().why})",
                                     unsent=True)

    async def send_many(self, messages: Sequence[OutboundMessage], skip: frozenset[str] = frozenset(),
                        ) -> list[SendResult | ChannelError]:
        pending = list(range(len(messages)))
        outcomes: list[SendResult | ChannelError | None] = [None] * len(messages)
        for i in range(len(self.adapters)):
            if not pending:
                break
            adapter, breaker = self.adapters[i], self._breakers[i]
            if adapter.provider in skip:
                continue
            trial = breaker.state(self.channel) is BreakerState.HALF_OPEN
            if not breaker.allow(self.channel):
                continue
            going, passing = (pending[:1], pending[1:]) if trial else (pending, [])  # a trial is one message
            results = await self._through(adapter, [messages[k] for k in going])
            config = next((r for r in results if isinstance(r, ConfigurationError)), None)
            answered = any(isinstance(r, SendResult) or (isinstance(r, ChannelError)
                                                         and not isinstance(r, TransientError | ConfigurationError))
                           for r in results)
            if config is not None:
                breaker.halt(self.channel, str(config))
            else:
                breaker.record(self.channel, answered or not results)
            moved = []
            for k, r in zip(going, results, strict=True):
                if isinstance(r, SendResult):
                    outcomes[k] = SendResult(r.provider_id, r.status, r.provider or adapter.provider)
                elif isinstance(r, ConfigurationError):  # not sent: the next provider may take it now
                    outcomes[k] = ConfigurationError(f"{adapter.provider}: {r}")  # kept if none does
                    moved.append(k)
                elif isinstance(r, TransientError) and r.unsent:
                    outcomes[k] = TransientError(f"{adapter.provider}: {r}", r.retry_after, unsent=True)
                    moved.append(k)
                else:
                    outcomes[k] = r
            pending = sorted(moved + passing)
        return [o if o is not None else TransientError(f"{self.channel.value}: every provider is failing",
                                                       unsent=True)
                for o in outcomes]

    async def _through(self, adapter: ChannelAdapter, batch: list[OutboundMessage]) -> list[SendResult | ChannelError]:
        if adapter.batch_size > 1:
            out: list[SendResult | ChannelError] = []
            for start in range(0, len(batch), adapter.batch_size):
                out += await adapter.send_many(batch[start:start + adapter.batch_size])
            return out
        gate = asyncio.Semaphore(SINGLE_CONCURRENCY)

        async def one(message: OutboundMessage) -> SendResult | ChannelError:
            async with gate:
                try:
                    return await adapter.send(message)
                except ChannelError as exc:
                    return exc

        return list(await asyncio.gather(*(one(m) for m in batch)))

    async def lookup(self, key: str, to: Address | None = None) -> SendResult | None:
        """Any provider that has the key (each that can look up is asked)."""
        for adapter in self.adapters:
            if not adapter.can_look_up:
                continue
            try:
                found = await adapter.lookup(key, to)
            except ChannelError:
                continue
            if found is not None:
                return SendResult(found.provider_id, found.status, found.provider or adapter.provider)
        return None

    def warm(self) -> None:
        for adapter in self.adapters:
            adapter.warm()

    async def aclose(self) -> None:
        for adapter in self.adapters:
            await adapter.aclose()
