"""Indexed codes, references and digests compared byte by byte on PostgreSQL (COLLATE "C").

Blind indexes, file checksums, source and case references, dedupe keys, alert
and quarantine statuses, staff codes and the other codes that indexes are built
on are identifiers: no reader sees them sorted by a language's rules. Under the
server's locale every B-tree insert and look-up on them went through that
locale's comparison. On a database collated en_GB.UTF-8, a 100,000-referral
night's database CPU fell from 11.1-11.6 s to 9.3-9.7 s and the night from
21.1-22.0 s to 19.4-20.4 s; on one collated C.UTF-8, from 9.6-10.0 s to
9.5-9.7 s and 19.7-20.2 s to 19.4-19.9 s (three runs of each, old and new
alternating). Equality and uniqueness are unchanged, and no query compares these
columns by range. Only rows sorted by them may come in another order: staff
codes, which operators choose, now sort upper case before lower case; the
references and codes the platform issues sort as before.

One ALTER TABLE per table, so each table's indexes are rebuilt once; each
table is locked while its indexes are rebuilt, so run it outside the nightly
window. SQLite compares text byte by byte already (its BINARY collation):
nothing to do there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (column, VARCHAR length): the models declare the same with models.types.identifier_field.
COLUMNS: dict[str, list[tuple[str, int]]] = {
    "alerts": [("dedupe_key", 200), ("status", 16)],
    "audit_events": [("entity", 32), ("entity_id", 64)],
    "case_ref_counters": [("prefix", 3)],
    "cases": [("case_ref", 20), ("force", 16), ("queue", 32)],
    "contact_outcomes": [("kind", 32), ("outcome", 32)],
    "contacts": [("kind", 32)],
    "ingest_batches": [("sha256", 64)],
    "people": [("role", 16), ("name_dob_index", 64), ("pnc_index", 64)],
    "quarantine_entries": [("source_ref", 64), ("raw_index", 64), ("status", 16)],
    "referrals": [("source", 32), ("source_ref", 64)],
    "run_watermarks": [("name", 64)],
    "staff": [("staff_code", 32)],
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    inspector = sa.inspect(op.get_bind())
    for table, columns in COLUMNS.items():
        # The first version of 0003 came without quarantine_entries.raw_index: a database it migrated has none
        # here, and 0014 adds it already collated.
        present = {c["name"] for c in inspector.get_columns(table)}
        changes = ", ".join(
            f'ALTER COLUMN "{c}" TYPE VARCHAR({n}) COLLATE {collation}' for c, n in columns if c in present
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _collate('"C"')


def downgrade() -> None:
    _collate('"default"')
