"""What three revisions gained after their first release, added where a database ran the first version.

Alembic runs only the revisions a database has not recorded, so one migrated by the first version of
0003, 0008 or 0011 never got what was added to them later:

- 0003 first came without quarantine_entries.raw_index and its index (quarantine could not recognise
  a resent row); 0009 now collates the column only where it exists, so such a database gets this far.
- 0008 first indexed alerts.created_at with BRIN, which alerts updated as they are claimed and sent do
  not keep in time order; it is rebuilt as a B-tree (PostgreSQL only: SQLite had a B-tree throughout).
- 0011 first came without night_runs.heartbeat_at, which every night reads and writes.

Each repair looks before it acts, so a database migrated by the current versions is left as it is.
Nothing is undone on downgrade: these are part of what 0003, 0008 and 0011 build.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX_METHOD = """
SELECT am.amname
FROM pg_class i
JOIN pg_namespace n ON n.oid = i.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = current_schema() AND i.relname = 'ix_alerts_created_at'
"""


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if 'raw_index' not in {c['name'] for c in inspector.get_columns('quarantine_entries')}:
        with op.batch_alter_table('quarantine_entries', schema=None) as batch_op:
            batch_op.add_column(sa.Column('raw_index', models.types.byte_ordered(64), nullable=True))
    if 'ix_quarantine_entries_raw_index' not in {i['name'] for i in inspector.get_indexes('quarantine_entries')}:
        with op.batch_alter_table('quarantine_entries', schema=None) as batch_op:
            batch_op.create_index('ix_quarantine_entries_raw_index', ['raw_index'], unique=False)
    if 'heartbeat_at' not in {c['name'] for c in inspector.get_columns('night_runs')}:
        with op.batch_alter_table('night_runs', schema=None) as batch_op:
            batch_op.add_column(sa.Column('heartbeat_at', models.types.UTCDateTime(timezone=True), nullable=True))
    if bind.dialect.name == 'postgresql' and bind.execute(sa.text(INDEX_METHOD)).scalar_one_or_none() == 'brin':
        op.drop_index('ix_alerts_created_at', table_name='alerts')
        op.create_index('ix_alerts_created_at', 'alerts', ['created_at'], unique=False)


def downgrade() -> None:
    pass
