"""The channels a step can use, and what each kind of channel is. Adapters register under these keys
(see dispatcher.channels) and read their kind from here; the roster, the dispatcher, the engine and
the capacity check ask ``channel.kind`` rather than keeping lists of their own, so a new kind of
channel is one member below, one row in ``KINDS`` and its adapter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    IM = "im"
    EMAIL = "email"

    @property
    def zh(self) -> str:
        return self.kind.zh

    @property
    def kind(self) -> ChannelKind:
        return KINDS[self]


@dataclass(frozen=True)
class ChannelKind:
    contact: str  # the Person field that addresses someone on it: "mobile", "phone", "email" or "im"
    carries_link: bool  # cannot take a reply: its message carries the signed confirm link
    spaced_per_callee: bool  # two messages to one person keep callee_spacing_seconds apart (calls)
    zh: str
    noun: tuple[str, str]  # one, many (capacity sentences)


KINDS: dict[Channel, ChannelKind] = {
    Channel.SMS: ChannelKind("mobile", False, False, "短信", ("text message", "text messages")),
    Channel.VOICE: ChannelKind("phone", False, True, "语音电话", ("call", "calls")),
    Channel.IM: ChannelKind("im", True, False, "即时通讯", ("IM message", "IM messages")),
    Channel.EMAIL: ChannelKind("email", True, False, "电子邮件", ("email", "emails")),
}


def accepted_channels() -> str:
    return ", ".join(c.value for c in Channel)
