"""Acknowledgement tokens as officials receive them: one is made for every message of a fan-out, so
the payload is written directly instead of through json.dumps — it must stay the same JSON, read back
to the same claims, for any recipient id a roster can hold."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dispatcher.config import Settings
from dispatcher.links import BadSignature, ExpiredLink, make_token, read_token

SETTINGS = Settings(secret_key="k" * 48, link_ttl_hours=24)
NOW = datetime(2026, 7, 15, 8, 30, tzinfo=UTC)


def _payload(token: str) -> bytes:
    encoded = token.split(".")[0]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


@hsettings(max_examples=300, deadline=None)
@given(recipient=st.text(max_size=40), callout_id=st.integers(min_value=1, max_value=2**62))
def test_payload_is_the_compact_json_of_its_claims(recipient: str, callout_id: int) -> None:
    # recipient ids with quotes, backslashes, control characters or Chinese
    token = make_token(SETTINGS, callout_id, recipient, NOW)
    payload = _payload(token)
    data = json.loads(payload)
    expected = json.dumps({"c": callout_id, "r": recipient, "exp": data["exp"], "n": data["n"]},
                          separators=(",", ":"), ensure_ascii=False).encode()
    assert payload == expected
    claims = read_token(SETTINGS, token, NOW)
    assert (claims.callout_id, claims.recipient) == (callout_id, recipient)
    assert claims.expires == NOW + timedelta(hours=24)


def test_token_expires_with_its_warning_and_refuses_another_secret() -> None:
    ends = NOW + timedelta(hours=2)
    token = make_token(SETTINGS, 7, "zhou.min", NOW, not_after=ends)
    assert read_token(SETTINGS, token, NOW).expires == ends
    with pytest.raises(ExpiredLink):
        read_token(SETTINGS, token, ends + timedelta(seconds=1))
    with pytest.raises(BadSignature):  # bad input: a token signed with another deployment's secret
        read_token(Settings(secret_key="z" * 48), token, NOW)


def test_two_tokens_for_the_same_call_out_differ() -> None:
    assert make_token(SETTINGS, 7, "zhou.min", NOW) != make_token(SETTINGS, 7, "zhou.min", NOW)
