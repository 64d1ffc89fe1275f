"""Alert delivery: dispatcher leases and first-try times on the outbox.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:18:13.017851
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('tried_at', models.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('tried_at')
        batch_op.drop_column('claimed_until')

