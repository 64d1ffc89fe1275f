"""The schema Alembic builds is the one the models describe, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import models
from iasu.db import alembic_config, head_revision, upgrade
from models.db import make_engine
from tests.support import write_days


def test_models_name_the_head_revision() -> None:
    assert head_revision("sqlite://") == models.SCHEMA_REVISION


@pytest.mark.parametrize("fixture", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)])
def test_migrations_match_the_models(fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(fixture)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


# Every character column an index is built on, with the collation the index compares it by (an index may name
# its own); compare_metadata does not look at collations. Expression indexes (attnum 0) have none to check today.
INDEXED_TEXT = """
SELECT DISTINCT t.relname, a.attname, coalesce(co.collname, '')
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(x.indkey::int2[], x.indcollation::oid[]) AS k(attnum, coll)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
LEFT JOIN pg_collation co ON co.oid = k.coll
WHERE n.nspname = current_schema()
  AND t.relname <> 'alembic_version'
  AND a.atttypid IN ('varchar'::regtype, 'text'::regtype)
"""


@pytest.mark.postgres
def test_indexed_text_is_byte_ordered_as_the_models_say(pg_url: str) -> None:
    engine = make_engine(pg_url)
    declared = {
        (table.name, column.name)
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if 'COLLATE "C"' in column.type.compile(dialect=engine.dialect)
    }
    with engine.connect() as conn:
        indexed = {(str(t), str(c)): str(coll) for t, c, coll in conn.execute(text(INDEXED_TEXT))}
        migrated = {
            (str(t), str(c))
            for t, c in conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND collation_name = 'C'"
                )
            )
        }
    engine.dispose()
    assert ("people", "name_dob_index") in indexed  # the query finds indexed columns at all
    # A new index on a text column should declare it with identifier_field (models.types) and collate it in a migration.
    assert {col: coll for col, coll in indexed.items() if coll != "C"} == {}
    assert migrated == declared


# Each partial index's condition as the server stores it (normalised), by index name.
PARTIAL_INDEXES = """
SELECT i.relname, pg_get_expr(x.indpred, x.indrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = :schema AND x.indpred IS NOT NULL
"""


@pytest.mark.postgres
def test_partial_indexes_hold_the_rows_the_models_say(pg_url: str) -> None:
    """compare_metadata does not read an index's condition: the migrated one is compared with the models' own."""
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA from_models"))
            SQLModel.metadata.create_all(conn.execution_options(schema_translate_map={None: "from_models"}))
        with engine.connect() as conn:
            migrated, modelled = (
                {str(name): str(rows) for name, rows in conn.execute(text(PARTIAL_INDEXES), {"schema": schema})}
                for schema in (conn.execute(text("SELECT current_schema()")).scalar_one(), "from_models")
            )
    finally:
        engine.dispose()
    assert migrated["ix_people_pnc_index"] == "(pnc_index IS NOT NULL)"
    assert migrated["uq_night_runs_one_running"] == "((status)::text = 'running'::text)"
    assert migrated == modelled


# What the first version of each revision edited after its release left, undone right after the revision ran:
# (revision, statements on SQLite, statements on PostgreSQL).
FIRST_VERSIONS: list[tuple[str, list[str], list[str]]] = [
    (
        "0003",
        ["DROP INDEX ix_quarantine_entries_raw_index", "ALTER TABLE quarantine_entries DROP COLUMN raw_index"],
        ["DROP INDEX ix_quarantine_entries_raw_index", "ALTER TABLE quarantine_entries DROP COLUMN raw_index"],
    ),
    (
        "0008",
        [],  # a B-tree on SQLite from the first
        ["DROP INDEX ix_alerts_created_at", "CREATE INDEX ix_alerts_created_at ON alerts USING brin (created_at)"],
    ),
    ("0011", ["ALTER TABLE night_runs DROP COLUMN heartbeat_at"], ["ALTER TABLE night_runs DROP COLUMN heartbeat_at"]),
]


def test_a_database_migrated_by_the_first_versions_of_edited_revisions_is_repaired(
    empty_db_url: str, tmp_path: Path, prefect_home: Path
) -> None:
    engine = make_engine(empty_db_url)
    postgres = engine.dialect.name == "postgresql"
    for revision, on_sqlite, on_postgres in FIRST_VERSIONS:
        command.upgrade(alembic_config(empty_db_url), revision)
        with engine.begin() as conn:
            for statement in on_postgres if postgres else on_sqlite:
                conn.execute(text(statement))
        engine.dispose()  # a pooled SQLite connection kept the schema it had read (its ALTER TABLE found no column)
    assert upgrade(empty_db_url) == models.SCHEMA_REVISION
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        if postgres:
            # compare_metadata reads neither an index's method nor a column's collation.
            method = "SELECT am.amname FROM pg_class i JOIN pg_am am ON am.oid = i.relam WHERE i.relname = :name"
            assert conn.execute(text(method), {"name": "ix_alerts_created_at"}).scalar_one() == "btree"
            collation = (
                "SELECT collation_name FROM information_schema.columns "
                "WHERE table_name = 'quarantine_entries' AND column_name = 'raw_index'"
            )
            assert conn.execute(text(collation)).scalar_one() == "C"
    engine.dispose()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IASU_", "PYTEST_"))}
    env.update(
        IASU_ENCRYPTION_KEY=os.environ["IASU_ENCRYPTION_KEY"],
        IASU_BLIND_INDEX_KEY=os.environ["IASU_BLIND_INDEX_KEY"],
        IASU_DATABASE_URL=empty_db_url,
        PREFECT_HOME=str(prefect_home),
    )
    write_days(tmp_path / "inbox", date(2026, 11, 18), per_day=30, seed=5)
    night = subprocess.run(
        [str(Path(sys.executable).with_name("iasu")), "nightly", "--date", "2026-11-18"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert night.returncode == 0, night.stderr[-600:]
