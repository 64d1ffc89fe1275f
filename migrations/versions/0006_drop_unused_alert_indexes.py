"""Drop ix_alerts_case_id and ix_alerts_contact_id: no query looks alerts up by case or contact.

Every alert is inserted once and updated two or three times as it is claimed and sent;
each of those writes maintained both indexes. Alerts are read by status (claims) and
joined to their case through the case's own key, and cases and contacts are never
deleted nor renumbered, so their foreign keys need no index on this side.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:10:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_contact_id'))
        batch_op.drop_index(batch_op.f('ix_alerts_case_id'))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_contact_id'), ['contact_id'], unique=False)
