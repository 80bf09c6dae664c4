"""Acknowledgement links: signed, expiring tokens bound to one call-out and one recipient.

A token is ``base64url(payload) + "." + base64url(HMAC-SHA256(key, payload))`` where the payload
is compact JSON ``{"c": callout id, "r": recipient id, "exp": unix seconds, "n": nonce}`` and the
key is derived from ``Settings.secret_key`` (so a link key never equals a key used elsewhere).
Signatures are compared in constant time.

Single use is enforced by the database, not by the token: the link acknowledges its call-out
through the ack service, which closes the call-out; a second use finds it closed and changes
nothing (no new table or migration is needed). The confirm page carries an anti-CSRF value bound
to the token (``csrf_for``), checked on POST.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .config import Settings
from .entropy import random_bytes

__all__ = ["BadSignature", "ExpiredLink", "LinkClaims", "LinkError", "MalformedLink", "check_csrf", "csrf_for",
           "link_url", "make_token", "read_token"]

_MAX_TOKEN = 512  # a real token is ~120 characters; refuse anything absurd before decoding it


class LinkError(ValueError):
    """The token cannot be used. ``status`` is the HTTP status the link page answers with."""

    status = 400
    zh = "链接无效"


class MalformedLink(LinkError):
    zh = "链接格式不正确，可能复制不完整。"


class BadSignature(LinkError):
    zh = "链接签名无效，可能已被篡改。"


class ExpiredLink(LinkError):
    status = 410
    zh = "链接已过期。"


@dataclass(frozen=True)
class LinkClaims:
    callout_id: int
    recipient: str
    expires: datetime
    nonce: str


def _key(settings: Settings, purpose: bytes) -> bytes:
    return _derived(settings.secret_key, purpose)


@functools.lru_cache(maxsize=16)
def _derived(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode(), b"jiaoying-link-v1:" + purpose, hashlib.sha256).digest()


_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # a JSON string literal, "…"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(ch not in _B64_ALPHABET for ch in text):
        raise MalformedLink("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedLink(f"not base64url: {exc}") from None


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def make_token(settings: Settings, callout_id: int, recipient: str, now: datetime,
               not_after: datetime | None = None) -> str:
    """A token valid for ``link_ttl_hours`` from ``now`` (never past ``not_after``, e.g. the
    warning's expiry)."""
    exp = now + timedelta(hours=settings.link_ttl_hours)
    if not_after is not None:
        exp = min(exp, not_after)
    # The JSON json.dumps(…, separators=(",", ":"), ensure_ascii=False) writes, key for key, built
    # directly: a fan-out makes one token per message, and json.dumps was a third of its cost.
    payload = (f'{{"c":{int(callout_id)},"r":{_json_string(recipient)},"exp":{int(exp.timestamp())},'
               f'"n":"{_b64(random_bytes(9))}"}}').encode()
    signature = hmac.digest(_key(settings, b"token"), payload, "sha256")
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(settings: Settings, token: str, now: datetime) -> LinkClaims:
    """The claims of a valid token. Raises MalformedLink, BadSignature or ExpiredLink (in that
    order of checking: the expiry of a forged token is never believed)."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise MalformedLink("expected <payload>.<signature>")
    encoded, encoded_sig = token.split(".")
    payload, signature = _unb64(encoded), _unb64(encoded_sig)
    expected = hmac.new(_key(settings, b"token"), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise BadSignature("signature does not match")
    try:
        data = json.loads(payload)
        claims = LinkClaims(int(data["c"]), str(data["r"]), datetime.fromtimestamp(int(data["exp"]), UTC),
                            str(data["n"]))
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise MalformedLink(f"payload unreadable: {exc}") from None
    if now >= claims.expires:
        raise ExpiredLink(f"expired at {claims.expires.isoformat()}")
    return claims


def csrf_for(settings: Settings, token: str) -> str:
    """The anti-CSRF value the confirm page carries, bound to this token."""
    return hmac.new(_key(settings, b"csrf"), token.encode(), hashlib.sha256).hexdigest()


def check_csrf(settings: Settings, token: str, value: str | None) -> bool:
    return bool(value) and hmac.compare_digest(csrf_for(settings, token), str(value))


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/ack/{token}"
