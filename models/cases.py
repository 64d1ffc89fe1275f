"""Cases (one per referral or group of duplicate referrals), the staff who work them and their contacts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.audit import ACTOR_MAX_CHARS
from models.types import Encrypted, JSONType, UTCDateTime, identifier_field, utcnow
from rules.codes import CaseStatus, ContactStatus


class Staff(SQLModel, table=True):
    """A worker, supervisor or unit lead in one queue of one force."""

    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    # Shown in alerts and lists instead of a name.
    staff_code: str = identifier_field(32, unique=True)
    name_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    role: str = Field(default="worker", max_length=16)  # worker | supervisor | lead
    queue: str = Field(max_length=32)
    force: str = Field(max_length=16)
    capacity: int = 20
    active: bool = True
    slack_user_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Case(SQLModel, table=True):
    """The unit of work: a triage decision (tier, queue, reasons) and where it stands."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("origin_referral_id", name="uq_cases_origin_referral_id"),
        # Cases are looked up as open cases of a queue (and force): queue lists, the unit's free places.
        # One partial index instead of one per column: each case written maintains one, not three, and
        # closed cases (most of them, in time) stay out of it.
        Index(
            "ix_cases_open_queue_force",
            "queue",
            "force",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_ref: str = identifier_field(20, unique=True)  # e.g. CH-2026-000123: reveals nothing
    force: str = identifier_field(16)
    status: str = Field(default=CaseStatus.open, max_length=16)
    tier: str = Field(max_length=16)
    queue: str = identifier_field(32)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    interventions: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    turned_away_for_capacity: bool = False
    decided_by: str = Field(default="policy", max_length=ACTOR_MAX_CHARS)
    policy_version: str | None = Field(default=None, max_length=32)
    assigned_staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    opened_on: date
    # The referral that opened the case; later duplicates from other sources join it (referrals.case_id).
    # use_alter: referrals.case_id points back here, and the cycle must not stop table ordering.
    origin_referral_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("referrals.id", use_alter=True, name="fk_cases_origin_referral_id"), nullable=True
        ),
    )
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=64)


class CaseRefCounter(SQLModel, table=True):
    """The last sequence number issued for case references of one force prefix and year."""

    __tablename__ = "case_ref_counters"

    prefix: str = identifier_field(3, primary_key=True)
    year: int = Field(primary_key=True)
    last_value: int = 0


class Contact(SQLModel, table=True):
    """A scheduled victim contact or perpetrator check-in; only the next one of each kind is pending."""

    __tablename__ = "contacts"
    __table_args__ = (
        # The monitor's one query looks only at pending contacts by due time.
        Index(
            "ix_contacts_pending_due",
            "due_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # At most one pending contact of each kind per case: the rolling schedule's invariant.
        Index(
            "uq_contacts_one_pending_per_kind",
            "case_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = identifier_field(32)  # rules.codes.ContactKind
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=ContactStatus.pending, max_length=16)
    assigned_staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    # The due time first set: retries and reschedules move due_at, lateness is judged against this.
    original_due_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=32)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContactOutcome(SQLModel, table=True):
    """A reported contact outcome (feed row or CLI), kept once: a rerun never applies it twice."""

    __tablename__ = "contact_outcomes"
    __table_args__ = (UniqueConstraint("case_id", "kind", "happened_at", "outcome", name="uq_contact_outcomes_event"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = identifier_field(32)
    happened_at: datetime = Field(sa_type=UTCDateTime)
    # completed | attempted_no_answer | refused | rescheduled
    outcome: str = identifier_field(32)
    new_date: date | None = None
    contact_id: int | None = Field(default=None, foreign_key="contacts.id")  # the contact it was applied to
    recorded_by: str | None = Field(default=None, max_length=ACTOR_MAX_CHARS)
    origin: str = Field(max_length=255)  # feed file name or "cli"
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
