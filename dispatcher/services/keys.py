"""Per-agency API keys: stored as SHA-256 of a 256-bit random secret, shown once. A key is scoped
to its agency's sender ids and optionally to hazards — for what it posts and for every warning
its updates and cancels reach."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db.tables import ApiKeyRow, WarningRow
from ..domain.hazards import Hazard
from ..intake.schema import text_problem
from .errors import Forbidden

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

    @property
    def actor(self) -> str:
        """How the record names what this key did: the agency and the key's id (never its secret)."""
        return f"agency:{self.agency} key:{self.id}"


def check_event_scope(session: Session, key: AgencyKey, warnings: Iterable[WarningRow]) -> None:
    """Forbidden unless ``key`` may post every message of the events ``warnings`` belong to (the
    whole chain: an update or cancel ends them all). Checked before anything is changed."""
    roots = sorted({w.root_id or w.id for w in warnings})
    if not roots:
        return
    chain = session.scalars(select(WarningRow).where(
        or_(WarningRow.id.in_(roots), WarningRow.root_id.in_(roots))).order_by(WarningRow.id))
    for row in chain:
        if not key.may_send_as(row.sender):
            raise Forbidden(f"this key (agency {key.agency}) may not update or cancel {row.id}: "
                            f"it was sent as {row.sender!r}")
        if not key.may_post(Hazard(row.hazard)):
            allowed = ", ".join(sorted(h.value for h in key.hazards or ()))
            raise Forbidden(f"this key (agency {key.agency}) may not update or cancel {row.id}: "
                            f"it is a {row.hazard} warning and the key may post only {allowed}")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyInputError(ValueError):
    """``create_key`` refused its input. ``field`` names it (agency, senders); the message is
    ``"<field>: <problem>"`` in English, ``zh`` the problem in Chinese (for the board)."""

    def __init__(self, field: str, problem: str, zh: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem, self.zh = field, problem, zh


# An agency and a sender id are at most as long as their columns (a warning's sender is the same).
ID_LENGTHS: dict[str, int] = {"agency": ApiKeyRow.__table__.c.agency.type.length,
                              "senders": WarningRow.__table__.c.sender.type.length}


def _check_id(field: str, value: str) -> None:
    if problem := text_problem(value):
        raise KeyInputError(field, problem, "不能包含空字符（\\u0000）")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise KeyInputError(field, "must be valid text (it holds a lone surrogate)", "含有无效字符") from None
    limit = ID_LENGTHS[field]
    if len(value) > limit:
        raise KeyInputError(field, f"must be at most {limit} characters (it has {len(value)})",
                            f"最多 {limit} 个字符（现有 {len(value)} 个）")


def create_key(
    session: Session, agency: str, now: datetime, hazards: list[Hazard] | None = None,
    senders: list[str] | None = None,
) -> tuple[AgencyKey, str]:
    """A new key; the plain token is returned once and never stored. KeyInputError (a ValueError
    naming the field) for an empty agency, or an agency or sender id that cannot be stored or could
    never match a warning: holding NUL or a lone surrogate, or longer than its column."""
    if not agency.strip():
        raise KeyInputError("agency", "must not be empty", "不能为空")
    _check_id("agency", agency)
    for sender in senders or ():
        _check_id("senders", sender)
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


_PREFIX = re.compile(r"[0-9a-f]{8}")


def authenticate(session: Session, token: str) -> AgencyKey | None:
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != PREFIX or not _PREFIX.fullmatch(parts[1]):
        return None  # also keeps NUL and other odd characters out of the query
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
