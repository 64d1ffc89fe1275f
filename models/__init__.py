"""SQLModel tables, persistence enums and the engine/session factory.

Importing this package registers every table on SQLModel.metadata, which
Alembic's autogenerate and the tests rely on.
"""

from models.alerts import Alert
from models.audit import AuditEvent
from models.cases import Case, CaseRefCounter, Contact, ContactOutcome, Staff
from models.intake import (
    BatchStatus,
    IngestBatch,
    NightRun,
    QuarantineEntry,
    QuarantineStatus,
    RunWatermark,
)
from models.keys import KeyCheck
from models.referrals import Person, Referral

# The Alembic revision this code expects (tests check it is the head of migrations/).
SCHEMA_REVISION = "0014"

__all__ = [
    "SCHEMA_REVISION",
    "Alert",
    "AuditEvent",
    "BatchStatus",
    "Case",
    "CaseRefCounter",
    "Contact",
    "ContactOutcome",
    "IngestBatch",
    "KeyCheck",
    "NightRun",
    "Person",
    "QuarantineEntry",
    "QuarantineStatus",
    "Referral",
    "RunWatermark",
    "Staff",
]
