"""Engine and unit-of-work factory for PostgreSQL (psycopg 3) and the embedded SQLite default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
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


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout, as PostgreSQL has by nature.

    Parameters are hidden from error messages: they can hold personal values, and errors reach logs.
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    connect_args = {**PG_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args, **kwargs)


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
