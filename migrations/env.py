"""Alembic environment: runs migrations on the URL iasu.db passes in (or IASU_DATABASE_URL)."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  # registers every table on SQLModel.metadata
from models.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    # `iasu db upgrade` sets the URL from settings; a bare `alembic` call falls back to the environment.
    return config.get_main_option("sqlalchemy.url") or os.environ.get("IASU_DATABASE_URL", "sqlite:///var/iasu.db")


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
