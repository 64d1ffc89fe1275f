"""Shared fixtures: test keys, databases (SQLite file and a real PostgreSQL), settings per test."""

from __future__ import annotations

import atexit
import base64
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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


@pytest.fixture(scope="session")
def prefect_database(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """Prefect's own database, migrated once a run (the first worker to need it migrates it), to start from.

    Commands run as subprocesses and the Prefect test harness each start from a copy: a temporary server
    spends about half of its first start migrating a new database.
    """
    import fcntl

    from benchmarks.run import migrated_prefect_home

    # Under pytest-xdist each worker has its own folder under the run's; the run's is shared by them. (Asked of
    # the config, not the environment: a pytest started inside a worker inherits its environment.)
    shared = tmp_path_factory.getbasetemp()
    if hasattr(pytestconfig, "workerinput"):
        shared = shared.parent
    home = shared / "prefect-home"
    with (shared / "prefect-home.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        done = home / "migrated"
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)  # a worker stopped part way left it
            home.mkdir()
            database = migrated_prefect_home(home)
            done.write_text(database.name)
        return home / done.read_text()


@pytest.fixture
def prefect_home(prefect_database: Path, tmp_path: Path) -> Path:
    """A Prefect home for one test's commands, its database a copy of the session's migrated one.

    A command's temporary server spends most of its first start on a new home (about 25 s of 40 here)
    migrating that database, as a machine does once, before its first night.
    """
    home = tmp_path / "prefect"
    home.mkdir(exist_ok=True)
    shutil.copyfile(prefect_database, home / prefect_database.name)
    return home


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


@functools.cache
def _migrated_sqlite_file() -> Path:
    """One SQLite file migrated by this process, the first time a test needs one; removed at its exit."""
    from iasu.db import upgrade

    folder = Path(tempfile.mkdtemp(prefix="iasu-test-sqlite-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    upgrade(f"sqlite:///{folder / 'iasu.db'}")
    return folder / "iasu.db"


def migrated_sqlite(folder: Path) -> str:
    """A fresh, migrated SQLite file in the folder: a copy of the one this process migrated (seconds a test less)."""
    shutil.copyfile(_migrated_sqlite_file(), folder / "iasu.db")
    return f"sqlite:///{folder / 'iasu.db'}"


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


T = TypeVar("T")


class KeptStates:
    """Database states built once a session by a fixture's own code, then copied into each later test's database.

    A fixture taking in a night through the real stages (Great Expectations' validation included) spends
    seconds on it; the tests after the first start from a copy of what it wrote, on the same kind of
    database. Only the database is copied: the fixture makes its files (an inbox, a policy) every time.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.kept: dict[tuple[str, str], tuple[str, Any]] = {}

    def restore(self, name: str, build: Callable[[], T]) -> T:
        """Put the state called name into the configured database: build it there the first time, copy it after.

        Returns what build returned the first time.
        """
        from sqlalchemy.engine import make_url

        from iasu import wiring

        url = make_url(os.environ["IASU_DATABASE_URL"])
        key = (name, url.get_backend_name())
        if key not in self.kept:
            value = build()
            wiring.reset()  # its pooled connections closed: a database being used cannot be copied
            if url.get_backend_name() == "sqlite":
                copy = str(self.folder / f"{name}.db")
                shutil.copyfile(str(url.database), copy)
            else:
                copy = f"iasu_test_kept_{uuid.uuid4().hex[:10]}"
                _admin_execute(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"')
            self.kept[key] = (copy, value)
            return value
        copy_name, value = self.kept[key]
        wiring.reset()
        if url.get_backend_name() == "sqlite":
            shutil.copyfile(copy_name, str(url.database))
        else:
            _admin_execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
            _admin_execute(f'CREATE DATABASE "{url.database}" TEMPLATE "{copy_name}"')
        return value

    def drop(self) -> None:
        """Drop the PostgreSQL copies (the SQLite ones go with the session's temporary folder)."""
        for (_name, backend), (copy, _value) in self.kept.items():
            if backend != "sqlite":
                _admin_execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


@pytest.fixture(scope="session")
def kept_states(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptStates]:
    """Database states fixtures build once a session (see KeptStates)."""
    states = KeptStates(tmp_path_factory.mktemp("kept-states"))
    yield states
    states.drop()
