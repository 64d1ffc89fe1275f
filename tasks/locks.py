"""The casework lock: the night's routing, outcomes and scheduling, and staff's casework commands, take turns.

Each of them reads cases, contacts or staff and writes back what it decided from that reading. Run side by
side, one decides on what the other is changing: a case closed while routing joins tonight's copy of its
referral to it; an outcome recorded while the feed applies puts a completed contact back to pending; a
worker who leaves while cases are assigned keeps them. Each takes this lock first in its transaction and
holds it to commit, so each reads what the one before it wrote. The night's stages hold it for a second or
two on a unit's night, so a command waits at most that long.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# A fixed key of PostgreSQL's advisory locks, shown in pg_locks (objid) while held.
CASEWORK_LOCK = 0x1A5C_A5E0


def casework_lock(conn: Connection) -> None:
    """Wait for the casework lock and hold it until this transaction ends (the same transaction may take it again).

    PostgreSQL only: SQLite (the demo's) lets one writer at a time into the whole database already.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CASEWORK_LOCK})
