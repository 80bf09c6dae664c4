"""What the mainland carriers (Aliyun, Tencent Cloud) share: where their callbacks come in.

Neither provider signs its HTTP callbacks (delivery receipts, replies, call results, keypresses),
so the callback URLs carry a long per-deployment token in the path: derived from the secret key
(HMAC), so every API process agrees on it without storing anything, and it changes when the key
does. ``jiaoying carriers callbacks`` prints the URLs to register in each provider's console. A
request with a wrong token is answered 404 and recorded; one with the right token is still only
ever matched to an attempt we sent to that number, deduplicated by the provider's id, and capped in
size by the body limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from .base import ConfigurationError

__all__ = ["CALLBACKS", "Endpoint", "callback_token", "callback_urls", "parse_endpoint", "token_matches"]

# provider -> (path under /webhooks/<provider>/<token>/, what arrives there)
CALLBACKS: dict[str, tuple[tuple[str, str], ...]] = {
    "aliyun": (
        ("sms-report", "SMS delivery receipts (SmsReport)"),
        ("sms-up", "SMS replies (SmsUp, 上行短信)"),
        ("voice-report", "call results (VoiceReport)"),
        ("voice-keypress", "IVR keypresses (VoiceCallReport with dtmf)"),
    ),
    "tencent": (
        ("sms-status", "SMS status reports (短信状态回执)"),
        ("sms-reply", "SMS replies (短信回复)"),
        ("voice-status", "call results (voiceprompt_callback)"),
        ("voice-keypress", "keypresses (voicekey_callback)"),
    ),
}

_LABEL = b"jiaoying carrier callbacks v1"


def callback_token(settings: Settings) -> str:
    """40 hex characters (160 bits) only this deployment knows."""
    return hmac.new(settings.secret_key.encode(), _LABEL, hashlib.sha256).hexdigest()[:40]


def token_matches(settings: Settings, candidate: str) -> bool:
    """Constant time; any text (compare_digest refuses a str that is not ASCII: a 500, not a 404)."""
    return hmac.compare_digest(callback_token(settings).encode(), candidate.encode("utf-8", "replace"))


def callback_urls(settings: Settings, provider: str) -> list[tuple[str, str]]:
    """(URL, what arrives there) for each callback of ``provider``, under JIAOYING_PUBLIC_URL."""
    base = f"{settings.public_url.rstrip('/')}/webhooks/{provider}/{callback_token(settings)}"
    return [(f"{base}/{path}", what) for path, what in CALLBACKS[provider]]


@dataclass(frozen=True)
class Endpoint:
    host: str  # host[:port], as the SDKs take it
    scheme: str  # "https", or "http" for a loopback address only (a local fake)
    loopback: bool


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(value: str, variable: str, example: str, *, https_loopback: bool = True) -> Endpoint:
    """A JIAOYING_<PROVIDER>_*_ENDPOINT value: a bare host (``example``, https), ``https://host[:port]``,
    or ``http://127.0.0.1:<port>`` — plain http only to a loopback address. ConfigurationError naming
    the variable otherwise. ``https_loopback=False``: an SDK that cannot be kept off a proxy for an
    https loopback address refuses it."""
    raw = (value or "").strip().rstrip("/")
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = urlsplit("")
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query
            or parts.fragment or "@" in parts.netloc):
        raise ConfigurationError(f"{variable}={value!r} is not an endpoint: write a host name such as {example} "
                                 "(https), or http://127.0.0.1:<port> for a local fake")
    loopback = is_loopback(parts.hostname)
    if parts.scheme == "http" and not loopback:
        raise ConfigurationError(f"{variable}={value!r}: plain http is allowed only to a loopback address "
                                 "(127.0.0.1, ::1, localhost); use https:// or a bare host name")
    if parts.scheme == "https" and loopback and not https_loopback:
        raise ConfigurationError(f"{variable}={value!r}: a loopback endpoint is a local fake and must be plain "
                                 "http (http://127.0.0.1:<port>)")
    return Endpoint(parts.netloc, parts.scheme, loopback)
