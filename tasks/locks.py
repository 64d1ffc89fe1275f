"""The casework lock: the night's routing, outcomes and scheduling, and staff's casework commands, take turns.

Each of them reads cases, contacts or staff and writes back what it decided from that reading. Run side by
side, one decides on what the other is changing: a case closed while routing joins tonight's copy of its
referral to it; an outcome recorded while the feed applies puts a completed contact back to pending; a
worker who leaves while cases are assigned keeps them. Each takes this lock first in its transaction and
holds it to commit, so each reads what the one before it wrote. The night's stages hold it for a second or
two on a unit's night and for ten to fifteen at national scale; `linkage reindex` holds it for its whole run.
Whoever has to wait says once what it waits for, so a command that seems to hang explains itself.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

# A fixed key of PostgreSQL's advisory locks, shown in pg_locks (objid) while held.
CASEWORK_LOCK = 0x1A5C_A5E0
# The holder names itself in pg_stat_activity for the transaction, so a waiter can say whom it waits for.
_NAME_PREFIX = "iasu: "
# Names the holder for the transaction, keeping the name of a first taking by the same transaction.
_NAMED = (
    "set_config('application_name', CASE WHEN current_setting('application_name') LIKE :taken"
    " THEN current_setting('application_name') ELSE :name END, true) IS NOT NULL"
)
# Shipped to the Prefect UI with a run's logs (PREFECT_LOGGING_EXTRA_LOGGERS), printed on stderr by a command.
LOG = logging.getLogger("iasu.casework")


def casework_lock(conn: Connection, doing: str) -> None:
    """Wait for the casework lock and hold it until this transaction ends (the same transaction may take it again).

    `doing` names the holder ("routing", "case override") for anyone who waits behind it; a transaction that
    takes the lock again keeps its first name. PostgreSQL only: SQLite (the demo's) lets one writer at a time
    into the whole database already.
    """
    if conn.dialect.name != "postgresql":
        return
    params = {"key": CASEWORK_LOCK, "taken": _NAME_PREFIX + "%", "name": _NAME_PREFIX + doing}
    # Taken and named in one round trip when free (CASE evaluates its THEN only once the lock is had).
    named = conn.execute(text(f"SELECT CASE WHEN pg_try_advisory_xact_lock(:key) THEN {_NAMED} ELSE false END"), params)
    if named.scalar_one():
        return
    holder = conn.execute(
        text(
            "SELECT a.application_name, extract(epoch FROM clock_timestamp() - a.xact_start)"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objid = :key AND l.granted AND l.database = ("
            "   SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        params,
    ).first()
    if holder is not None:  # else it was let go a moment ago: nothing worth saying
        name = str(holder[0] or "").removeprefix(_NAME_PREFIX) or "another session"
        LOG.warning(
            "%s waits for %s to finish (casework takes turns; it has held the lock for %d s)",
            doing,
            name,
            int(holder[1] or 0),
        )
    conn.execute(text(f"SELECT pg_advisory_xact_lock(:key), {_NAMED}"), params)
