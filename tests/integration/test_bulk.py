"""Bulk writes: the update changes only the rows and columns named (SQLite and PostgreSQL); binary COPY stores
what an INSERT would, and refuses what a column cannot hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from iasu import wiring
from models import Case
from models.types import Encrypted, JSONType, UTCDateTime, byte_ordered
from tasks.bulk import copy_insert, copy_rows, one_of, update_rows
from tasks.load import JSON_TEXT
from tasks.outbox import ALERTS, outbox_row, queue_alert
from tests.support import open_case

CASES = Case.__table__  # type: ignore[attr-defined]
OPENED = datetime(2026, 11, 2, 17, tzinfo=UTC)
POLICE = "police_investigation"
TEXT = 'tab\there, "quoted", back\\slash, new\nline, café'


@pytest.fixture
def cases(configured: str) -> list[int]:
    """Three open standard cases, ids ascending."""
    reasons = [{"rule": "sdash_band", "text": "standard", "inputs": {}}]
    with wiring.engine().begin() as conn:
        return [
            open_case(conn, f"CH-2026-{n:06d}", tier="standard", queue=POLICE, opened_at=OPENED, reasons=reasons)
            for n in (1, 2, 3)
        ]


def _state() -> list[tuple[object, ...]]:
    c = CASES.c
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(c.id, c.tier, c.reasons, c.turned_away_for_capacity, c.queue).order_by(c.id))
        return [tuple(row) for row in rows]


def test_only_the_rows_and_columns_given_change(cases: list[int]) -> None:
    first, _, third = cases
    before = _state()
    reasons = [{"rule": "serial_perpetrator_linked", "text": TEXT, "inputs": {"revealed_by_referral_id": 7}}]
    with wiring.engine().begin() as conn:
        # A generator will do, as for the inserts; the key may come anywhere among the names.
        update_rows(
            conn,
            CASES,
            "id",
            (
                {"tier": "high", "id": case_id, "reasons": reasons, "turned_away_for_capacity": True}
                for case_id in (third, first)
            ),
        )
    after = _state()
    assert after[1] == before[1]
    for case_id, row in ((first, after[0]), (third, after[2])):
        assert row == (case_id, "high", reasons, True, POLICE)


def test_nothing_to_update_runs_nothing(cases: list[int]) -> None:
    before = _state()
    with wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", iter([]))
    assert _state() == before


def test_two_updates_in_one_transaction(cases: list[int]) -> None:
    # The staging table is dropped after each update, so a second one in the same transaction can stage again.
    with wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", [{"id": cases[0], "tier": "medium"}])
        update_rows(conn, CASES, "id", [{"id": cases[1], "tier": "high"}])
    assert [row[1] for row in _state()] == ["medium", "high", "standard"]


def test_a_condition_narrows_the_rows_a_key_names(cases: list[int]) -> None:
    first, second, third = cases
    with wiring.engine().begin() as conn:
        # The queue names all three cases; the condition leaves the second as it was.
        update_rows(conn, CASES, "queue", [{"queue": POLICE, "tier": "high"}], where=CASES.c.id != second)
    assert [(row[0], row[1]) for row in _state()] == [(first, "high"), (second, "standard"), (third, "high")]


def test_a_naive_time_is_refused_on_both_databases(cases: list[int]) -> None:
    # COPY would let the server read it in its session's time zone; the column type refuses it on SQLite.
    before = _state()
    with pytest.raises((ValueError, StatementError), match="naive datetime"), wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", [{"id": cases[0], "opened_at": datetime(2026, 11, 2, 17)}])
    assert _state() == before


def test_one_of_takes_more_values_than_a_statement_takes_parameters(cases: list[int]) -> None:
    # 70,000 values: PostgreSQL refuses an IN list of them (65,535 parameters at most in one statement).
    ids = [*range(10**6, 10**6 + 70_000), cases[1]]
    refs = [*(f"XX-2026-{n:06d}" for n in range(70_000)), "CH-2026-000003"]
    full = "CH-2026-000004-ABCDE"  # as long as a case reference may be (20)
    with wiring.engine().begin() as conn:
        open_case(conn, full, tier="standard", queue=POLICE, opened_at=OPENED)
    with wiring.engine().connect() as conn:
        found = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.id, ids))).scalars().all()
        named = conn.execute(select(CASES.c.case_ref).where(one_of(conn, CASES.c.case_ref, refs))).scalars().all()
        none = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.id, []))).scalars().all()
        # A longer value is not cut to the column's length and matched by what is left.
        longer = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.case_ref, [f"{full}Z"]))).all()
    assert (found, named, none, longer) == ([cases[1]], ["CH-2026-000003"], [], [])


@pytest.mark.postgres
def test_binary_copy_stores_what_an_insert_stores(pg_url: str) -> None:
    """Every kind of column the schema has, NULLs and awkward values included, COPYed as an INSERT stores them."""
    table = Table(
        "t",
        MetaData(),
        Column("n", Integer),
        Column("role", String(64)),
        Column("code", byte_ordered(64)),
        Column("blob", Encrypted),
        Column("on", Date),
        Column("at", UTCDateTime),
        Column("at_ms", TIMESTAMP(timezone=True, precision=3)),
        Column("note", Text(collation="C")),
        Column("big", BigInteger),
        Column("flag", Boolean),
        Column("doc", JSONType),
    )
    awkward = 'tab\there, "quoted", back\\slash, new\nline, café, \u2603'
    rows = [
        {
            "n": 1,
            "role": "victim",
            "code": "ab" * 32,
            "blob": b"\x01\x00\xff\\",
            "on": date(2026, 2, 28),
            "at": datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),
            "at_ms": datetime(2026, 10, 25, 1, 30, 0, 123000, tzinfo=UTC),
            "note": awkward,
            "big": 2**63 - 1,
            "flag": True,
            "doc": {"reasons": [{"text": awkward, "inputs": {"n": 3, "ok": None}}], "k": [1.5, False]},
        },
        dict.fromkeys(("code", "blob", "on", "at", "at_ms", "note", "big", "flag", "doc")) | {"n": 2, "role": awkward},
        {"n": 3, "role": "", "code": "", "blob": b"", "on": date(1900, 1, 1), "at": None, "at_ms": None}
        | {"note": "", "big": -(2**63), "flag": False, "doc": []},
    ]
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            stored = []
            nulls = []
            for write in (lambda: conn.execute(table.insert(), rows), lambda: copy_insert(conn, table, rows)):
                table.create(conn)
                write()
                stored.append(conn.execute(select(table).order_by(table.c.n)).all())
                # A None document is SQL NULL on both paths, not the JSON text 'null' (which reads back as None too).
                nulls.append(conn.execute(select(table.c.n).where(table.c.doc.is_(None))).scalars().all())
                table.drop(conn)
            # The referral stage's JSON arrives as text already serialised: stored as the same value.
            stage = Table("s", MetaData(), Column("doc", JSON_TEXT))
            stage.create(conn)
            copy_rows(conn, stage, ["doc"], [('{"b": [1, "\u00e9"], "a": null}',), (None,)])
            staged = conn.execute(select(text("doc")).select_from(stage)).scalars().all()
    finally:
        engine.dispose()
    assert stored[1] == stored[0]
    assert [r._asdict() for r in stored[1]] == rows
    assert nulls == [[2], [2]]
    assert staged == [{"a": None, "b": [1, "é"]}, None]


@pytest.mark.parametrize("path", ["insert", "copy_insert", "queue_alert"])
def test_a_missing_json_document_is_refused_on_every_write_path(configured: str, path: str) -> None:
    # Every JSON column is NOT NULL: a None payload is a caller's bug, refused alike by each way rows are written.
    row = outbox_row("ops", "ops:test:none", "C0OPS", {}) | {"payload": None}
    writes: dict[str, Callable[[Connection], object]] = {
        "insert": lambda conn: conn.execute(ALERTS.insert(), [row]),
        "copy_insert": lambda conn: copy_insert(conn, ALERTS, [row]),
        "queue_alert": lambda conn: queue_alert(conn, [row]),
    }
    with pytest.raises(StatementError, match="payload"), wiring.engine().begin() as conn:
        writes[path](conn)
    with wiring.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(ALERTS)).scalar_one() == 0


def test_a_missing_json_document_is_refused_by_an_update_too(cases: list[int]) -> None:
    before = _state()
    with pytest.raises(StatementError, match="reasons"), wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", [{"id": cases[0], "reasons": None}])
    assert _state() == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("value", "refused"),
    [
        # Binary COPY would pack these into four bytes and store them wrapped round: refused first.
        (2**31, "out of range for integer column n"),
        (-(2**31) - 1, "out of range for integer column n"),
        ("7", None),  # of a type the column cannot take: refused as a bind would be, not as a bare TypeError
    ],
)
def test_a_value_its_column_cannot_hold_is_refused_and_nothing_is_stored(
    pg_url: str, value: object, refused: str | None
) -> None:
    table = Table("t", MetaData(), Column("n", Integer), Column("on", Date))
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            table.create(conn)
        with pytest.raises(StatementError, match=refused), engine.begin() as conn:
            copy_insert(conn, table, [{"n": 1, "on": date(2026, 11, 2)}, {"n": value, "on": None}])
        with engine.begin() as conn:
            assert conn.execute(select(table)).all() == []
            # The range's own ends are stored as they are; a date given as text is refused the same way.
            copy_insert(conn, table, [{"n": 2**31 - 1, "on": None}, {"n": -(2**31), "on": None}])
            assert sorted(conn.execute(select(table.c.n)).scalars()) == [-(2**31), 2**31 - 1]
            with pytest.raises(StatementError):
                copy_insert(conn, table, [{"n": 3, "on": "2026-11-02"}])
    finally:
        with engine.begin() as conn:
            table.drop(conn, checkfirst=True)
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite, in-process, has no round trips to save
def test_quarantined_rows_are_written_in_one_copy_not_one_insert_each(configured: str) -> None:
    from sqlalchemy import event, func, select

    from models import IngestBatch, QuarantineEntry
    from tasks.load import QuarantinedRow, quarantine

    batches = IngestBatch.__table__  # type: ignore[attr-defined]
    with wiring.engine().begin() as conn:
        values = {"run_date": date(2026, 11, 18), "file_name": "police_rms_2026-11-18.csv", "sha256": "0" * 64}
        batch = conn.execute(batches.insert().values(status="loaded", **values).returning(batches.c.id)).scalar_one()
    rows = [
        QuarantinedRow(line_no=n, source_ref=f"REF-{n}", reasons=["sdash_in_range"], raw=f"row {n}") for n in range(50)
    ]
    batched: list[int] = []

    def per_row(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if executemany and "quarantine_entries" in statement:
            batched.append(len(parameters))  # psycopg pipelines these, but the server runs one INSERT per row

    engine = wiring.engine()
    event.listen(engine, "before_cursor_execute", per_row)
    try:
        with engine.begin() as conn:
            stored = quarantine(
                conn,
                rows,
                batch_id=batch,
                source="police_rms",
                cipher=wiring.cipher(),
                index=wiring.blind_index(),
                now=datetime(2026, 11, 18, tzinfo=UTC),
            )
    finally:
        event.remove(engine, "before_cursor_execute", per_row)
    assert stored == (50, 0) and batched == []
    with wiring.engine().connect() as conn:
        table = QuarantineEntry.__table__  # type: ignore[attr-defined]
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 50
        assert sorted(conn.execute(select(table.c.failed_expectations)).scalars()) == [["sdash_in_range"]] * 50
