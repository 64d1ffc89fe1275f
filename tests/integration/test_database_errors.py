"""Database errors reach logs, tracebacks and pickled results as the server's first line: no row, value or
parameter of the statement in them."""

from __future__ import annotations

import pickle
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from models.db import make_engine, quote_no_values
from tasks.bulk import copy_insert

MARKER = f"MARKER{uuid.uuid4().hex[:12]}"  # a value no message of the server's own could hold by chance
TOO_BIG = str(2**45 + uuid.uuid4().int % 1000)  # written nowhere in this file, so no traceback's source line shows it
TABLE = Table(
    "t",
    MetaData(),
    Column("n", Integer, nullable=False),
    Column("held", Text, unique=True),
)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        TABLE.create(conn)
    yield engine
    engine.dispose()


def _told(exc: BaseException) -> str:
    """All that a log of the error could show: its traceback with every chained cause, and its pickle."""
    return "".join(traceback.format_exception(exc)) + repr(pickle.dumps(exc))


def _insert_null(conn: object) -> None:
    conn.execute(insert(TABLE), [{"n": None, "held": MARKER}])  # type: ignore[attr-defined]


def _copy_null(conn: object) -> None:
    copy_insert(conn, TABLE, [{"n": None, "held": MARKER}])  # type: ignore[arg-type]


def _insert_twice(conn: object) -> None:
    conn.execute(insert(TABLE), [{"n": 1, "held": MARKER}, {"n": 2, "held": MARKER}])  # type: ignore[attr-defined]


def _copy_twice(conn: object) -> None:
    copy_insert(conn, TABLE, [{"n": 1, "held": MARKER}, {"n": 2, "held": MARKER}])  # type: ignore[arg-type]


def _cast(conn: object) -> None:
    conn.execute(text("SELECT CAST(:v AS integer)"), {"v": MARKER})  # type: ignore[attr-defined]


def _cast_quoted(conn: object) -> None:
    # The server does not escape quotes inside a value it quotes.
    conn.execute(text("SELECT CAST(:v AS integer)"), {"v": f'Jo "{MARKER}" Bloggs'})  # type: ignore[attr-defined]


def _bad_bytes(conn: object) -> None:
    # Refused as bytes, shown in hex (not quoted): "…encoding "UTF8": 0xe9 0x4d 0x41".
    conn.execute(text("SELECT convert_from(:b, 'UTF8')"), {"b": b"\xe9" + MARKER.encode()})  # type: ignore[attr-defined]


def _out_of_range(conn: object) -> None:
    conn.execute(text("SELECT CAST(:v AS integer)"), {"v": TOO_BIG})  # type: ignore[attr-defined]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("write", "refused", "first_line", "named"),
    [
        (_insert_null, IntegrityError, 'null value in column "n" of relation "t" violates not-null constraint', "t"),
        (_copy_null, IntegrityError, 'null value in column "n" of relation "t" violates not-null constraint', "t"),
        (_insert_twice, IntegrityError, 'duplicate key value violates unique constraint "t_held_key"', "t"),
        (_copy_twice, IntegrityError, 'duplicate key value violates unique constraint "t_held_key"', "t"),
        (_cast, DataError, "invalid input syntax for type integer", None),
        (_cast_quoted, DataError, "invalid input syntax for type integer", None),
        (_bad_bytes, DataError, 'invalid byte sequence for encoding "…"', None),
        (_out_of_range, DataError, 'value "…" is out of range for type integer', None),
    ],
)
def test_a_refused_write_is_told_by_its_first_line_without_the_row_or_value(
    engine: Engine,
    write: Callable[[object], None],
    refused: type[Exception],
    first_line: str,
    named: str | None,
) -> None:
    with pytest.raises(refused) as caught, engine.begin() as conn:
        write(conn)
    told = _told(caught.value)
    assert MARKER not in told and TOO_BIG not in told and "0xe9" not in told
    assert "Failing row" not in told and "DETAIL" not in told and "CONTEXT" not in told
    orig = caught.value.orig  # type: ignore[attr-defined]
    assert str(orig) == first_line
    assert str(caught.value).splitlines()[0] == f"({type(orig).__module__}.{type(orig).__name__}) {first_line}"
    # Code may still tell which constraint refused it; the fields that quote data are gone from the error.
    assert orig.diag.table_name == named and orig.diag.sqlstate == orig.sqlstate
    assert orig.diag.message_detail is None and orig.diag.context is None
    assert MARKER not in repr(pickle.loads(pickle.dumps(orig)).diag.message_primary)


@pytest.mark.parametrize(
    ("sqlstate", "primary", "first_line"),
    [
        ("22003", f'value "1{MARKER}" is out of range for type integer', 'value "…" is out of range for type integer'),
        ("22003", f'value "Jo "{MARKER}" B" is out of range', 'value "…" is out of range'),  # quotes unescaped
        ("22007", f'invalid value "{MARKER}" for "DD"', 'invalid value "…"'),
        ("22P02", f'invalid input syntax for type integer: "{MARKER}"', "invalid input syntax for type integer"),
        ("22021", 'invalid byte sequence for encoding "UTF8": 0xe9 0x4d', 'invalid byte sequence for encoding "…"'),
        ("23502", 'null value in column "n" of relation "t" violates not-null constraint', None),
        ("P0001", "append-only: UPDATE refused", None),
    ],
    # Named by place, not by message: the marker differs in each xdist worker, which must collect the same ids.
    ids=["out-of-range", "quotes-inside", "date-field", "after-colon", "bytes", "not-null", "raised"],
)
def test_a_server_message_keeps_its_names_and_loses_any_value(
    sqlstate: str, primary: str, first_line: str | None
) -> None:
    from psycopg import errors
    from psycopg.pq import DiagnosticField

    fields = {DiagnosticField.SQLSTATE: sqlstate, DiagnosticField.MESSAGE_PRIMARY: primary}
    fields[DiagnosticField.MESSAGE_DETAIL] = f"Failing row contains ({MARKER})."
    error = errors.lookup(sqlstate)(f"{primary}\nDETAIL: …", info={f: v.encode() for f, v in fields.items()})
    quote_no_values(error)
    assert str(error) == (first_line or primary) and error.diag.message_detail is None
    assert error.diag.sqlstate == sqlstate


def test_a_refused_write_on_sqlite_keeps_no_parameter_either(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.begin() as conn:
        TABLE.create(conn)
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        _insert_null(conn)
    assert MARKER not in _told(caught.value)
    assert str(caught.value.orig) == "NOT NULL constraint failed: t.n"


@pytest.mark.postgres
def test_an_error_with_no_server_text_is_told_as_it_was() -> None:
    # A connection refused is raised on this side: its text names the server, which an operator needs.
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/postgres", connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as caught, engine.connect():
        pass
    assert "127.0.0.1" in str(caught.value.orig) and "port 1" in str(caught.value.orig)
