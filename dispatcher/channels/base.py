"""The port every channel adapter implements, and the one exception tree the engine acts on.

    ChannelError
    ├── TransientError       timeouts, 5xx, 429: retried within bounds, then the attempt fails
    ├── PermanentError       invalid number, unsubscribed: never retried; the next channel is tried
    └── ConfigurationError   missing or wrong credentials: halt this channel and show it on the board

Adapters only fit and deliver a message that the templates already rendered.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, ClassVar

from ..domain.callouts import Purpose
from ..domain.channels import Channel
from ..domain.hazards import Level
from ..domain.limits import RateLimit
from ..rendering import MessageContext, template_variables

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Address", "ChannelAdapter", "ChannelError", "ConfigurationError", "OutboundMessage", "PermanentError",
           "Purpose", "SendResult", "TransientError", "error_for_status", "parse_retry_after"]


@dataclass(frozen=True)
class Address:
    person_id: str
    name: str
    phone: str | None = None
    email: str | None = None
    im: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    key: str  # the attempt's unique key, recorded before the provider is called
    channel: Channel
    purpose: Purpose
    to: Address
    subject: str
    text: str
    level: Level
    ack_code: str = ""
    link: str | None = None
    drill: bool = False
    # What the text was rendered from: providers that only send approved templates (Aliyun,
    # Tencent) fill their template's variables from it (``variables()``).
    context: MessageContext | None = None
    lang: str = "zh"
    # The attempt's id: a short reference for providers whose own id field is too small for the key
    # (Aliyun voice's OutId takes 15 bytes); services.receipts.attempt_by_ref finds it again.
    attempt_id: int | None = None

    def variables(self) -> dict[str, str]:
        """rendering.TEMPLATE_VARIABLES for this message (empty if it carries no context)."""
        return template_variables(self.lang, self.context) if self.context is not None else {}


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    status: str = "sent"
    provider: str | None = None  # which provider took it, when an adapter chains several (failover)


class ChannelError(Exception):
    """Something went wrong handing a message to a provider."""

    retry: ClassVar[bool] = False


class TransientError(ChannelError):
    """Worth another try later. ``unsent``: the message certainly did not reach the provider (it
    answered 429 or 503, a throttling code, or nothing was handed over at all) — so it needs no
    lookup before its next try, and another provider may take it at once."""

    retry = True

    def __init__(self, message: str, retry_after: float | None = None, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unsent = unsent


class PermanentError(ChannelError):
    pass


class ConfigurationError(ChannelError):
    pass


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_for_status(status: int, what: str, retry_after: str | float | None = None) -> ChannelError | None:
    """The one mapping of a provider's HTTP status to what the engine does (None: not an error).

    429 and 5xx are transient (retried, waiting ``retry_after`` — a Retry-After header's value or
    seconds — when given); 401 and 403 mean our credentials or account are refused: a configuration
    error that halts the provider (its circuit opens) until someone fixes it; any other 4xx refuses
    this message only. ``what`` names the provider and what it answered, for the record."""
    if status == 429 or status >= 500:
        wait = retry_after if isinstance(retry_after, float | int) or retry_after is None else \
            parse_retry_after(retry_after)
        # 429 and 503 say the request was not taken; a 500, 502 or 504 may come after it was.
        return TransientError(what, wait, unsent=status in (429, 503))
    if status in (401, 403):
        return ConfigurationError(what)
    if status >= 400:
        return PermanentError(what)
    return None


class ChannelAdapter(ABC):
    """A way to reach people. Each adapter class declares what it is; the engine, the preview and
    the roster read these declarations, not lists of their own:

    - ``channel`` (whose ``Channel.kind`` says which contact field it needs, whether its messages
      carry the confirm link, whether calls to one person are spaced) and ``provider``;
    - ``can_look_up`` / ``calls_back``: how a message in doubt is found again;
    - ``batch_size``: how many messages one provider request can carry (``send_many``);
    - ``max_length``: the characters of one message's text the provider takes (longer: cut);
    - ``default_limit(settings)``: the provider's documented rate, used when
      JIAOYING_RATE_LIMITS says nothing for the channel;
    - ``number_limits``: the provider's documented limits per number (JIAOYING_NUMBER_LIMITS
      replaces them).
    """

    channel: ClassVar[Channel]
    provider: ClassVar[str]
    # Whether ``lookup`` can tell if the provider has a message with our key; and whether the provider
    # calls back with its status and our key (so a message it has is known once the callback arrives).
    can_look_up: ClassVar[bool] = False
    calls_back: ClassVar[bool] = False
    batch_size: ClassVar[int] = 1
    max_length: ClassVar[int | None] = None
    uses_templates: ClassVar[bool] = False  # sends only provider-approved templates (the carrier template file)
    manages_circuits: ClassVar[bool] = False  # keeps a circuit per provider itself (ProviderChain)

    # The provider's documented limits on messages to one number (count per window), kept by the
    # claim unless JIAOYING_NUMBER_LIMITS names the channel.
    number_limits: ClassVar[tuple[RateLimit, ...]] = ()

    @classmethod
    def default_limit(cls, settings: Settings) -> RateLimit | None:
        """The provider's own rate limit for this channel (None: none documented)."""
        return None

    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand the message over. Raises a ChannelError subclass on failure."""

    async def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Hand several messages over (at most ``batch_size``), one outcome each, in order: a
        refused number fails only its own message. Batch adapters send them in one request."""
        outcomes: list[SendResult | ChannelError] = []
        for message in messages:
            try:
                outcomes.append(await self.send(message))
            except ChannelError as exc:
                outcomes.append(exc)
        return outcomes

    async def lookup(self, key: str, to: Address | None = None) -> SendResult | None:
        """Whether the provider already has the message with this key (after a crash left the
        attempt in doubt); ``to``, where known, is whom it was for (some providers look up by
        number). ``None``: not found, or the provider cannot tell."""
        return None

    def warm(self) -> None:  # noqa: B027 - optional hook, most adapters load nothing on first use
        """Load now what the first send would load (a provider's SDK, its client), never talking to
        the provider: an idle worker calls it, so the first warning after a start does not pay for it."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections."""
        return None
