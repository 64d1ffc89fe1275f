"""The schema Alembic builds is the one the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import models
from iasu.db import head_revision
from models.db import make_engine


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
