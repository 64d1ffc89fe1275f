"""A running night's pulse apart from its progress: a killed night frees the next in minutes, not hours.

heartbeat_at is now noted every minute while the night's process lives; progress_at as each stage
finishes. A night whose pulse stops (killed, the machine stopped) is taken as failed after ten minutes;
one still alive with no stage finished for two hours, as before, is taken as stuck.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('night_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('progress_at', models.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('night_runs', schema=None) as batch_op:
        batch_op.drop_column('progress_at')
