"""What each key in use makes of a fixed text, so a night or command run with another key is refused.

A night run with a different IASU_ENCRYPTION_KEY wrote personal fields no one could read with the right
one, and with a different IASU_BLIND_INDEX_KEY linked none of its perpetrators to earlier ones, in
silence. The first command that uses a key after this revision records it (the encryption key only once
it decrypts a stored field); every later one must match.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:42:23.295524
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'key_checks',
        sa.Column(
            'name', sa.String(length=32).with_variant(sa.String(length=32, collation='C'), 'postgresql'), nullable=False
        ),
        sa.Column('value', sa.LargeBinary().with_variant(postgresql.BYTEA(), 'postgresql'), nullable=False),
        sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('key_checks')
