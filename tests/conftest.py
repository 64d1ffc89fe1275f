"""Shared fixtures: test keys, databases (SQLite file and a real PostgreSQL), settings per test."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Fixed test keys, set before any settings object is built.
os.environ["IASU_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(b"e" * 32).decode()
os.environ["IASU_BLIND_INDEX_KEY"] = base64.urlsafe_b64encode(b"b" * 32).decode()
os.environ.pop("IASU_SLACK_TOKEN", None)
os.environ.pop("IASU_DATABASE_URL", None)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

PG_ADMIN_URL = os.environ.get("IASU_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _admin_conninfo() -> dict[str, object]:
    from sqlalchemy.engine import make_url

    u = make_url(PG_ADMIN_URL)
    return {
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username or "postgres",
        "password": u.password,
        "dbname": u.database or "postgres",
    }


def _pg_url(dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(**_admin_conninfo(), autocommit=True, connect_timeout=5) as conn:  # type: ignore[arg-type]
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session, used as the template per test."""
    import psycopg

    name = f"iasu_test_tpl_{uuid.uuid4().hex[:8]}"
    try:
        _admin_execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)  # CI never skips the PostgreSQL tier silently
        pytest.skip(message)
    from iasu.db import upgrade

    upgrade(_pg_url(name))
    from sqlalchemy import create_engine

    create_engine(_pg_url(name)).dispose()
    yield name
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_clone(template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database cloned from the template, dropped afterwards."""
    name = f"iasu_test_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name)
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each database the product supports, with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'iasu.db'}"
        return
    request.getfixturevalue("pg_template")  # skips, or fails in CI, when no server answers
    name = f"iasu_test_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_sqlite(folder: Path) -> str:
    """A fresh, migrated SQLite file in the folder."""
    from iasu.db import upgrade

    url = f"sqlite:///{folder / 'iasu.db'}"
    upgrade(url)
    return url


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (cloned from the session template)."""
    with pg_clone(pg_template) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite file for one test."""
    return migrated_sqlite(tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each database the product supports, migrated and empty."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def configured(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings pointing at the test database and a private var/ and inbox/; adapters rebuilt."""
    from iasu import wiring

    monkeypatch.setenv("IASU_DATABASE_URL", db_url)
    monkeypatch.setenv("IASU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("IASU_INBOX", str(tmp_path / "inbox"))
    (tmp_path / "inbox").mkdir(exist_ok=True)
    wiring.reset()
    yield db_url
    wiring.reset()
