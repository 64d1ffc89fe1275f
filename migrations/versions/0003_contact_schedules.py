"""Contact schedules (outcomes kept once, original due times, last attempts); quarantine raw-row index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 04:55:41.293008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contact_outcomes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('happened_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('new_date', sa.Date(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('recorded_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'kind', 'happened_at', 'outcome', name='uq_contact_outcomes_event')
    )
    with op.batch_alter_table('contact_outcomes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_outcomes_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_index", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_quarantine_entries_raw_index"), ["raw_index"], unique=False)

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        # No contact rows exist before this revision (scheduling starts with it), so NOT NULL is safe.
        batch_op.add_column(sa.Column('original_due_at', models.types.UTCDateTime(timezone=True), nullable=False))
        batch_op.add_column(sa.Column('last_attempt_at', models.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table("quarantine_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_entries_raw_index"))
        batch_op.drop_column("raw_index")
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('last_attempt_at')
        batch_op.drop_column('original_due_at')

    with op.batch_alter_table('contact_outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_outcomes_case_id'))

    op.drop_table('contact_outcomes')
