"""What each key in use makes of a fixed text: tells a wrong key before it writes data nobody can read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.types import Encrypted, UTCDateTime, identifier_field, utcnow


class KeyCheck(SQLModel, table=True):
    """One row per key (encryption, blind_index): its ciphertext or keyed hash of a fixed, public text."""

    __tablename__ = "key_checks"

    name: str = identifier_field(32, primary_key=True)
    value: bytes = Field(sa_column=Column(Encrypted, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
