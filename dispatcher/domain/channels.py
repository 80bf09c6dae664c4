"""The channels a step can use. Adapters register under these keys (see dispatcher.channels)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"
    IM = "im"
    EMAIL = "email"

    @property
    def zh(self) -> str:
        return {"sms": "短信", "voice": "语音电话", "im": "即时通讯", "email": "电子邮件"}[self.value]


def accepted_channels() -> str:
    return ", ".join(c.value for c in Channel)
