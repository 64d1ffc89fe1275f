"""Bulk inserts without per-statement overhead: COPY on PostgreSQL, one executemany on SQLite.

SQLAlchemy's multi-VALUES executemany spends most of its time building and
splitting very large statements; COPY streams rows instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from sqlalchemy import JSON, Column, Connection, MetaData, Table, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def copy_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) into a table; no conflict handling, no RETURNING."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    names = list(rows[0])
    json_columns = {n for n in names if isinstance(table.c[n].type, JSON)}
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_json(row[n]) if n in json_columns and row[n] is not None else row[n] for n in names])


def _json(value: Any) -> str:
    # orjson: the JSON columns (reasons, audit details, alert payloads) are most of a bulk insert's Python time.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def copy_insert_ignoring(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: list[str]) -> int:
    """Insert rows, skipping those that conflict on `conflict` columns; returns how many were new."""
    if not rows:
        return 0
    names = list(rows[0])
    if conn.dialect.name != "postgresql":
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c[names[0]])
        return len(conn.execute(stmt, list(rows)).all())
    stage = f"stage_{table.name}"
    columns = ", ".join(names)
    conn.execute(text(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {table.name} WITH NO DATA"))
    copy_insert(conn, Table(stage, MetaData(), *[Column(n, table.c[n].type) for n in names]), rows)
    new = conn.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {stage} "
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING 1"
        )
    ).all()
    conn.execute(text(f"DROP TABLE {stage}"))
    return len(new)
