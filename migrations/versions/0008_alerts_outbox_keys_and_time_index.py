"""The alert outbox without foreign keys to cases and contacts, with an index on its creation time.

Each new alert had its case and contact looked up and row-locked: for a night
with fifty thousand missed contacts, that was a third of the monitor's time
(and it dirtied every contact and case page it touched). The references are
kept as plain columns: every alert is built from a join on the very rows it
names, in the same transaction, and cases and contacts are never deleted.

The monitor counts the night's alerts by creation time, which scanned every
night's alerts. A B-tree rather than BRIN: alerts are updated as they are
claimed and sent, and the space those updates free is reused by later
nights' alerts, so the table does not stay in time order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 13:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps these constraints unnamed: batch mode names them by this convention so they can be dropped.
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _names() -> dict[str, str]:
    if op.get_bind().dialect.name == "sqlite":
        return {"case": "fk_alerts_case_id_cases", "contact": "fk_alerts_contact_id_contacts"}
    return {"case": "alerts_case_id_fkey", "contact": "alerts_contact_id_fkey"}


def upgrade() -> None:
    names = _names()
    with op.batch_alter_table('alerts', schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint(names["contact"], type_='foreignkey')
        batch_op.drop_constraint(names["case"], type_='foreignkey')
        batch_op.create_index('ix_alerts_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    names = _names()
    with op.batch_alter_table('alerts', schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_index('ix_alerts_created_at')
        batch_op.create_foreign_key(names["case"], 'cases', ['case_id'], ['id'])
        batch_op.create_foreign_key(names["contact"], 'contacts', ['contact_id'], ['id'])
