"""Referrals as received (non-personal fields in the clear) and the people they name (encrypted)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import Encrypted, JSONType, UTCDateTime, identifier_field, utcnow


class Referral(SQLModel, table=True):
    """One canonical referral; the natural key is (source, source_ref)."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("source", "source_ref", name="uq_referrals_source_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = identifier_field(32)
    source_ref: str = identifier_field(64)
    force: str = Field(max_length=16)  # counted by force, never looked up by it alone: no index
    received_date: date = Field(index=True)
    referring_agency: str = Field(max_length=32)
    crime_ref: str | None = Field(default=None, max_length=32)
    relationship: str = Field(max_length=32)
    behaviours: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    duration_months: int | None = None
    incident_date: date | None = None
    sdash_victim_very_frightened: bool
    sdash_previous_stalking: bool
    sdash_property_damage: bool
    sdash_visits_more_than_3_a_week: bool
    sdash_loitering_following: bool
    sdash_threats_violence: bool
    sdash_third_parties_harassed: bool
    sdash_violence_this_episode: bool
    sdash_others_recruited: bool
    sdash_drugs_alcohol: bool
    sdash_past_violence: bool
    sdash_yes_count: int  # derived once at load; the policy decides what a count means
    srp: str | None = Field(default=None, max_length=16)
    markers: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    notes_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    # Provenance: which file and line this referral was loaded from.
    batch_id: int = Field(foreign_key="ingest_batches.id", index=True)
    line_no: int
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# (person column, canonical suffix) for the encrypted fields of a person.
PERSON_FIELDS = (
    ("forename_enc", "forename"),
    ("surname_enc", "surname"),
    ("dob_enc", "dob"),
    ("phone_enc", "phone"),
    ("email_enc", "email"),
    ("address_enc", "address"),
    ("postcode_enc", "postcode"),
    ("pnc_enc", "pnc_id"),
)


# The partial index's condition, the same on both databases (migration 0010 writes it out again, as
# migrations do not import the models they would otherwise follow).
_WITH_A_PNC_ID = text("pnc_index IS NOT NULL")


class Person(SQLModel, table=True):
    """A victim or perpetrator as one referral describes them; linked across referrals by blind index only."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("referral_id", "role", name="uq_people_referral_role"),
        # Only people with a PNC id: most have none (victims never do), and linkage looks up only those who do.
        Index("ix_people_pnc_index", "pnc_index", postgresql_where=_WITH_A_PNC_ID, sqlite_where=_WITH_A_PNC_ID),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: uq_people_referral_role leads with referral_id and serves lookups by referral.
    referral_id: int = Field(foreign_key="referrals.id")
    role: str = identifier_field(16)  # rules.codes.PersonRole
    forename_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    surname_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    dob_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    phone_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    email_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    address_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    postcode_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    pnc_enc: bytes | None = Field(default=None, sa_type=Encrypted)
    # Keyed HMACs of normalised name + date of birth, and of the PNC id (rules.linkage).
    name_dob_index: str | None = identifier_field(64, default=None, index=True)
    pnc_index: str | None = identifier_field(64, default=None)
