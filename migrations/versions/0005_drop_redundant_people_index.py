"""Drop ix_people_referral_id: uq_people_referral_role (referral_id, role) already serves lookups by referral.

Every people row written at intake maintained both indexes; the unique one leads with
referral_id, so joins, IN lists and foreign key checks on referral_id use it instead.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_people_referral_id'))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_referral_id'), ['referral_id'], unique=False)
