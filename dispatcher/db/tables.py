"""The tables. Rows are plain records; domain objects are built from them in repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out — on SQLite too, which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: times are stored with their offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime]


class AreaRow(Base):
    __tablename__ = "areas"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoleRow(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PersonRow(Base):
    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    im: Mapped[dict[str, Any]] = mapped_column(default=dict)
    area_code: Mapped[str] = mapped_column(String(12))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    unit: Mapped[str] = mapped_column(String(200), default="")
    deputy_id: Mapped[str | None] = mapped_column(String(64))
    superior_id: Mapped[str | None] = mapped_column(String(64))
    # People leave the roster but stay referenced by old call-outs: they are deactivated.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DutyShiftRow(Base):
    __tablename__ = "duty_shifts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # dated | weekly
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    weekday: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[str | None] = mapped_column(String(5))
    hours: Mapped[float | None] = mapped_column(Float)
    leader_id: Mapped[str | None] = mapped_column(String(64))
    chief_id: Mapped[str | None] = mapped_column(String(64))
    staff: Mapped[list[Any]] = mapped_column(default=list)


class PlanRow(Base):
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # file order decides which plan governs
    definition: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    hazards: Mapped[list[Any] | None] = mapped_column(JSON)  # None: every hazard
    senders: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WarningRow(Base):
    __tablename__ = "warnings"
    __table_args__ = (
        UniqueConstraint("sender", "identifier", name="uq_warnings_sender_identifier"),
        Index("ix_warnings_status_received", "status", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender: Mapped[str] = mapped_column(String(128))
    identifier: Mapped[str] = mapped_column(String(128))
    msg_type: Mapped[str] = mapped_column(String(10))
    references: Mapped[list[Any]] = mapped_column(default=list)
    root_id: Mapped[str | None] = mapped_column(ForeignKey("warnings.id"))  # the first alert
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(10))
    areas: Mapped[list[Any]]
    headline: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    sent: Mapped[datetime]
    expires: Mapped[datetime | None]
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    # active | updated (a later update carries on) | cancelled | expired
    status: Mapped[str] = mapped_column(String(12), default="active")
    received_at: Mapped[datetime]
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    source_format: Mapped[str] = mapped_column(String(8))  # json | cap
    raw: Mapped[str] = mapped_column(Text, default="")
    # The record's head: appends lock this row, so events of one warning are strictly ordered.
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    record_head: Mapped[str] = mapped_column(String(64), default="0" * 64)


class EventRow(Base):
    """The per-warning record: appended, hash-chained, never updated."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("warning_id", "seq", name="uq_events_warning_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    warning_id: Mapped[str] = mapped_column(ForeignKey("warnings.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
