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

from ..config import Settings

__all__ = ["CALLBACKS", "callback_token", "callback_urls", "token_matches"]

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
