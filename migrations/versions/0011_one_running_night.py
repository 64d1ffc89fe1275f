"""At most one night runs at a time: a unique index over the night runs still running.

Two nights loading at once (a night run by hand beside the scheduled one, or the same night twice)
collide on the batches' unique keys part way through and leave a run marked running for ever.
The served deployment already runs one at a time; this holds for every way a night starts.
Runs left marked running by a process that died are marked failed first: no night runs during
an upgrade. A running night notes the time between its stages (heartbeat_at), so a run whose
process died is told from one still working.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = "status = 'running'"


def _collate(collation: str) -> None:
    # An indexed code is byte-ordered, as every other (0009): night_runs.status is indexed from here on.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'ALTER TABLE "night_runs" ALTER COLUMN "status" TYPE VARCHAR(16) COLLATE {collation}')


def upgrade() -> None:
    op.execute("UPDATE night_runs SET status = 'failed' WHERE status = 'running'")
    _collate('"C"')
    with op.batch_alter_table('night_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'uq_night_runs_one_running',
            ['status'],
            unique=True,
            postgresql_where=sa.text(RUNNING),
            sqlite_where=sa.text(RUNNING),
        )


def downgrade() -> None:
    with op.batch_alter_table('night_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_night_runs_one_running', sqlite_where=sa.text(RUNNING))
        batch_op.drop_column('heartbeat_at')
    _collate('"default"')
