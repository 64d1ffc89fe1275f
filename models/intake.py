"""Intake bookkeeping: night runs, ingested files, quarantined rows and the catch-up watermark."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import Encrypted, JSONType, UTCDateTime, identifier_field, utcnow


class BatchStatus(StrEnum):
    """What became of an input file."""

    loaded = "loaded"  # rows read, each loaded, duplicate or quarantined
    held = "held"  # the batch gate stopped the whole file; no row loaded
    released = "released"  # held, then released by staff: the same bytes are taken in again, past the size gate


class QuarantineStatus(StrEnum):
    """Whether a quarantined row still awaits a corrected resend."""

    open = "open"
    resolved = "resolved"


_RUNNING = text("status = 'running'")


class NightRun(SQLModel, table=True):
    """One execution of the nightly flow for a run date, with its reconciled counts."""

    __tablename__ = "night_runs"
    # One night at a time, however it was started: a second one is refused at its start, not part way in.
    __table_args__ = (
        Index("uq_night_runs_one_running", "status", unique=True, postgresql_where=_RUNNING, sqlite_where=_RUNNING),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_date: date = Field(index=True)
    status: str = identifier_field(16, default="running")  # running | completed | failed
    flow_run_id: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Noted every minute while the night's process lives, and as each stage finishes (tasks.night): a run
    # silent for minutes is one whose process died; one with no stage finished for hours is stuck.
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    progress_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Counts only (received, loaded, duplicates, ...): the same object `iasu nightly --json` prints.
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class IngestBatch(SQLModel, table=True):
    """One input file as first ingested; a file seen again (same sha256) is a repeat of this batch."""

    __tablename__ = "ingest_batches"

    id: int | None = Field(default=None, primary_key=True)
    night_run_id: int | None = Field(default=None, foreign_key="night_runs.id", index=True)
    run_date: date = Field(index=True)
    file_name: str = Field(max_length=255)
    source: str | None = Field(default=None, max_length=32)
    # The file's SHA-256; for a file with no record, tasks.ingest.night_key: such bytes recur every night.
    sha256: str = identifier_field(64, unique=True)
    status: str = Field(max_length=16)  # BatchStatus
    held_reason: str | None = Field(default=None, max_length=500)
    received: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    held_rows: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuarantineEntry(SQLModel, table=True):
    """An input row that failed validation: where it came from, why, and its content encrypted."""

    __tablename__ = "quarantine_entries"
    __table_args__ = (UniqueConstraint("batch_id", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="ingest_batches.id", index=True)
    line_no: int
    source: str = Field(max_length=32)
    # Lets a corrected resend of the same referral resolve this entry; not personal.
    source_ref: str | None = identifier_field(64, default=None, index=True)
    failed_expectations: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    raw_enc: bytes = Field(sa_type=Encrypted)
    # Keyed hash of the raw text: a resent identical row is recognised without reading the ciphertext.
    raw_index: str | None = identifier_field(64, default=None, index=True)
    status: str = identifier_field(16, default=QuarantineStatus.open, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by_referral_id: int | None = Field(default=None, foreign_key="referrals.id")


class RunWatermark(SQLModel, table=True):
    """The last run date a flow completed, so a night that did not run is caught up, not lost."""

    __tablename__ = "run_watermarks"

    name: str = identifier_field(64, primary_key=True)
    last_completed_date: date
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
