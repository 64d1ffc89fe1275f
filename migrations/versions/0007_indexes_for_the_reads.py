"""Indexes for the reads the platform makes, not one per column.

- cases: one partial index on (queue, force) of open cases replaces ix_cases_force,
  ix_cases_queue and ix_cases_status. Cases are read as the open cases of a queue
  (and force); each index on a two-to-five-valued column cost every case written and
  every case update, and found nothing the partial index does not.
- referrals: ix_referrals_force goes; referrals are counted by force, never looked up
  by it alone, and each referral written (and linked to its case) maintained it.
- audit_events: ix_audit_events_at (never read by time alone) gives way to
  (entity, entity_id), which a case's history reads; without it, `case show`
  scanned the whole append-only log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_force'))
        batch_op.drop_index(batch_op.f('ix_cases_queue'))
        batch_op.drop_index(batch_op.f('ix_cases_status'))
        batch_op.create_index(
            'ix_cases_open_queue_force',
            ['queue', 'force'],
            unique=False,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_force'))
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))
        batch_op.create_index('ix_audit_events_entity', ['entity', 'entity_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_entity')
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referrals_force'), ['force'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_open_queue_force', sqlite_where=sa.text("status = 'open'"))
        batch_op.create_index(batch_op.f('ix_cases_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_queue'), ['queue'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_force'), ['force'], unique=False)
