"""Per-agency API keys: stored as SHA-256 of a 256-bit random secret, shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.tables import ApiKeyRow
from ..domain.hazards import Hazard

PREFIX = "jy"


@dataclass(frozen=True)
class AgencyKey:
    """The authenticated caller of the warning API."""

    id: str
    agency: str
    hazards: frozenset[Hazard] | None  # None: every hazard
    senders: frozenset[str]
    last_used_at: datetime | None = None

    def used_since(self, moment: datetime) -> bool:
        return self.last_used_at is not None and self.last_used_at >= moment

    def may_post(self, hazard: Hazard) -> bool:
        return self.hazards is None or hazard in self.hazards

    def may_send_as(self, sender: str) -> bool:
        return sender in self.senders


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    session: Session, agency: str, now: datetime, hazards: list[Hazard] | None = None,
    senders: list[str] | None = None,
) -> tuple[AgencyKey, str]:
    """A new key; the plain token is returned once and never stored."""
    if not agency.strip():
        raise ValueError("agency must not be empty")
    prefix = secrets.token_hex(4)
    token = f"{PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(
        id=f"k_{prefix}", agency=agency, prefix=prefix, key_hash=_hash(token),
        hazards=sorted(h.value for h in hazards) if hazards else None,
        senders=sorted(set(senders or [agency])), created_at=now,
    )
    session.add(row)
    session.flush()
    return _key(row), token


def authenticate(session: Session, token: str) -> AgencyKey | None:
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(token)):
        return None
    return _key(row)


def mark_used(session: Session, key: AgencyKey, now: datetime) -> None:
    """Keep a key's last use to the minute: a post reads its key without writing, and writes
    ``last_used_at`` only when the stored one is a minute old (``AgencyKey.used_since``)."""
    row = session.get(ApiKeyRow, key.id)
    if row is not None:
        row.last_used_at = now


def revoke_key(session: Session, key_id: str, now: datetime) -> bool:
    row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def list_keys(session: Session) -> list[ApiKeyRow]:
    return list(session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))


def _key(row: ApiKeyRow) -> AgencyKey:
    hazards = frozenset(Hazard(h) for h in row.hazards) if row.hazards is not None else None
    return AgencyKey(row.id, row.agency, hazards, frozenset(row.senders), row.last_used_at)
