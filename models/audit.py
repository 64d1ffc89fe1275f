"""The append-only audit log (DPA 2018 s62: collection, alteration, consultation, disclosure, erasure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.types import Encrypted, JSONType, UTCDateTime, identifier_field, utcnow

# The longest name or staff id an audit event (and a contact outcome's recorded_by) can hold.
ACTOR_MAX_CHARS = 128


class AuditEvent(SQLModel, table=True):
    """Who (a person or a flow run) did what to which record, when and why."""

    __tablename__ = "audit_events"
    # A record's history (case show) is read by what it concerns; nothing reads the log by time alone.
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=ACTOR_MAX_CHARS)  # a named person / staff code, or "flow:<name>/<run id>"
    os_user: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=32)  # collect | decide | override | reveal | close | ...
    entity: str = identifier_field(32)  # table the event concerns
    entity_id: str | None = identifier_field(64, default=None)
    # Codes, ids and counts only; a free-text reason a person types may name someone, so it is encrypted.
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    reason_enc: bytes | None = Field(default=None, sa_type=Encrypted)
