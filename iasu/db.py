"""Schema management through Alembic, and the check that a database is at the current revision."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from iasu.errors import OperatorError
from models import SCHEMA_REVISION
from models.db import sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    """Alembic configured for this package's migrations and the given database."""
    from alembic.config import Config

    import migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> str:
    """Bring the database to the latest schema; returns the revision it is at."""
    from alembic import command
    from alembic.util import CommandError

    cfg = alembic_config(url)
    try:
        command.upgrade(cfg, "head")
    except CommandError as exc:
        # Alembic refuses before it changes anything; most often the database was migrated by a newer release.
        from models.db import make_engine

        engine = make_engine(url)
        try:
            refuse_newer(current_revision(engine))
        finally:
            engine.dispose()
        raise OperatorError(f"cannot upgrade the schema: {first_line(exc)}") from None
    return head_revision(url)


def head_revision(url: str) -> str:
    """The newest revision in migrations/ (models.SCHEMA_REVISION must name it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    return head


def ensure_current(engine: Engine) -> None:
    """Refuse to run against a database whose schema is missing, behind the code or ahead of it.

    Reads alembic_version directly: importing Alembic would cost read-only commands a third of a second.
    """
    current = current_revision(engine)
    if current == SCHEMA_REVISION:
        return
    refuse_newer(current)
    state = "empty" if current is None else f"at revision {current}"
    raise OperatorError(f"database schema is {state}, code expects {SCHEMA_REVISION}: run `iasu db upgrade`")


def current_revision(engine: Engine) -> str | None:
    """The revision the database records, None when it has no schema yet."""
    database = sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
    if database is not None and not Path(database).exists():
        return None  # connecting would create the file: a command refused for want of a schema leaves none
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" in str(exc.orig):
            return None  # no schema yet
        raise OperatorError(f"database unreachable: {describe(engine)} ({first_line(exc.orig)})") from None


def refuse_newer(current: str | None) -> None:
    """Refuse a database migrated by a newer release: a revision migrations/ does not hold (Alembic imported here)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if current is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(current)
    except CommandError:
        raise OperatorError(
            f"database schema is at revision {current}, newer than this code (which expects {SCHEMA_REVISION}): "
            "run the release that migrated it"
        ) from None


def describe(engine: Engine) -> str:
    """The database's URL with any password hidden, in its user part or in its query string."""
    url = engine.url
    # psycopg also takes the password as a query parameter, which hide_password leaves in the clear.
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def first_line(exc: BaseException | None) -> str:
    """The first line of a driver error: enough to act on, no SQL or parameters."""
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__
