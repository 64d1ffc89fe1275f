"""The alert outbox: written with the decision that caused it, sent once by a dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from models.types import JSONType, UTCDateTime, identifier_field, utcnow
from rules.codes import AlertStatus


class Alert(SQLModel, table=True):
    """One message to a Slack channel; the dedupe key makes every cause alert at most once."""

    __tablename__ = "alerts"
    # The night's alerts are counted by creation time, without reading every night's alerts. A B-tree, not
    # BRIN: each alert is updated as it is claimed and sent, and space freed by those updates is reused by
    # later nights' alerts, so the table is not kept in time order for long.
    __table_args__ = (Index("ix_alerts_created_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = identifier_field(200, unique=True)
    kind: str = Field(max_length=32)  # missed_contact | new_high_risk | digest | ops
    level: int | None = None
    channel: str = Field(max_length=64)
    # What the alert is about. Neither indexed nor foreign keys: alerts are found by status, never by case or
    # contact; each is built from a join on the very rows it names, in the same transaction, and cases and
    # contacts are never deleted. Checking (and row-locking) both rows per alert was a third of the monitor.
    case_id: int | None = None
    contact_id: int | None = None
    # Case references, codes and counts only: never a personal value.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    status: str = identifier_field(16, default=AlertStatus.pending, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    slack_ts: str | None = Field(default=None, max_length=32)
    # A dispatcher's lease: others skip the alert until it expires (a crashed dispatcher's claim lapses).
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when a send was first attempted: a later send first looks for it in the channel's history,
    # since Slack has no idempotency key and a timed-out post may have arrived.
    tried_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
