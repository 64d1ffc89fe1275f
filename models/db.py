"""Engine and unit-of-work factory for PostgreSQL (psycopg 3) and the embedded SQLite default."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlmodel import Session, create_engine

# A statement waits for a lock at most ten minutes: a night blocked behind a session left open (a LOCK TABLE
# in a forgotten psql) fails in one line and is rerun, instead of running for ever and keeping the next
# nights out. TCP keepalives find a connection whose server went silent dead in about two minutes, not hours.
PG_CONNECT_ARGS: dict[str, Any] = {
    "options": "-c lock_timeout=10min",
    "keepalives": 1,
    "keepalives_idle": 60,
    "keepalives_interval": 10,
    "keepalives_count": 6,
}


def sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names; None for an in-memory database or a URI filename (`?uri=true`), left to SQLite."""
    if url.database in (None, "", ":memory:") or url.query.get("uri"):
        return None
    return url.database


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout, as PostgreSQL has by nature.

    Parameters are hidden from error messages: they can hold personal values, and errors reach logs.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = sqlite_file(parsed)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **kwargs
        )

        # The folder is made when a connection is first opened, not with the engine: a command that finds no
        # database refuses before connecting, and so leaves nothing behind.
        @event.listens_for(engine, "do_connect")
        def _sqlite_folder(*_args: Any) -> None:
            if database is not None:
                Path(database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        event.listen(engine, "handle_error", _first_line_only)
        return engine
    connect_args = {**PG_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args, **kwargs)
    event.listen(engine, "handle_error", _first_line_only)
    return engine


# The diagnostic fields that name the schema, never a value; the others (DETAIL, CONTEXT, the internal
# query) quote the row or the value refused.
_NAMING_FIELDS = (
    "sqlstate",
    "severity",
    "severity_nonlocalized",
    "schema_name",
    "table_name",
    "column_name",
    "datatype_name",
    "constraint_name",
)
_QUOTED = re.compile(r'".*"', re.DOTALL)  # from the first quote to the last: a value may hold quotes


def quote_no_values(exc: BaseException) -> None:
    """Cut a PostgreSQL error down to its first line, in place, before anything formats it.

    The server's error text quotes the data: "Failing row contains (...)", "Key (...)=(...) already exists",
    a COPY's line. Those are ciphertexts, blind indexes, case references and staff names, and an error
    reaches task logs, tracebacks and pickled results. The first line names the table, column and
    constraint; a data exception's value is cut from it too. An error raised on this side (a connection
    that failed) has no server text and is left as it is.
    """
    import psycopg

    if not isinstance(exc, psycopg.Error) or exc.diag.message_primary is None:
        return
    first = exc.diag.message_primary
    if (exc.sqlstate or "").startswith("22"):
        # A data exception shows the value it refused after a colon ('…integer: "zz"', '…"UTF8": 0xe9 0x53')
        # or in quotes it does not escape ('value "9…9" is out of range'): both go.
        first = _QUOTED.sub('"…"', first.split(": ", 1)[0])
    fields = {name: getattr(exc.diag, name) for name in _NAMING_FIELDS} | {"message_primary": first}
    # psycopg holds the server's fields in this dict once an error is unpickled; here it holds only these.
    encoding = exc._encoding
    exc._info = {
        psycopg.pq.DiagnosticField[name.upper()]: value.encode(encoding)
        for name, value in fields.items()
        if value is not None
    }
    exc.args = (first,)


def _first_line_only(context: ExceptionContext) -> None:
    """An engine's errors, as SQLAlchemy raises them: the driver's first line, and no parameter kept."""
    quote_no_values(context.original_exception)
    error = context.sqlalchemy_exception
    if error is not None and error.orig is context.original_exception:
        # SQLAlchemy wrote the driver's text into its own message as it wrapped the error: written again.
        orig = error.orig
        error.args = (f"({type(orig).__module__}.{type(orig).__name__}) {orig}",)
        # hide_parameters keeps them out of its text only: the error still holds them, and pickles them.
        error.params = None


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A session that commits only if the block finishes, and rolls back otherwise."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
