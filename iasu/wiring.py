"""The one place that builds the real adapters (engine, cipher, blind index) from settings."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine

from iasu.errors import OperatorError
from iasu.privacy import BlindIndex, FieldCipher
from iasu.settings import get_settings
from models.db import make_engine


@lru_cache(maxsize=1)
def engine() -> Engine:
    """The application database engine."""
    return make_engine(get_settings().database_url)


@lru_cache(maxsize=1)
def cipher() -> FieldCipher:
    """Encryption of personal fields."""
    return FieldCipher(get_settings().encryption_key_bytes)


@lru_cache(maxsize=1)
def blind_index() -> BlindIndex:
    """Keyed hashing for linkage."""
    return BlindIndex(get_settings().blind_index_key_bytes)


def checked_cipher(conn: Connection) -> FieldCipher:
    """The cipher, once its key is known to be the one this database's personal fields were written with."""
    from iasu.keycheck import verify_keys

    verify_keys(conn, cipher=cipher())
    return cipher()


def checked_keys(conn: Connection) -> tuple[FieldCipher, BlindIndex]:
    """The cipher and the blind index, once both keys are known to be this database's."""
    from iasu.keycheck import verify_keys

    verify_keys(conn, cipher=cipher(), index=blind_index())
    return cipher(), blind_index()


def ready_for_night(inbox: Path | None) -> Path:
    """Everything a night needs, checked before it starts (keys and that they are this database's, policy,
    inbox, schema, no night running)."""
    from models.types import utcnow
    from tasks.night import night_running

    inbox_dir = ready_for_nights(inbox)
    with engine().begin() as conn:
        busy = night_running(conn, utcnow())
    if busy:
        raise OperatorError(busy)
    return inbox_dir


def ready_for_nights(inbox: Path | None) -> Path:
    """What every night needs and only an operator can mend (keys and that they are this database's, policy,
    inbox, schema): checked before a night and before serving nights, not found wrong at 02:00."""
    from iasu.db import ensure_current
    from iasu.policy import get_policy

    settings = get_settings()
    settings.require_keys()
    get_policy()
    _writable(settings.var_dir)
    inbox_dir = inbox or settings.inbox
    if not inbox_dir.is_dir():
        state = "is not a folder" if inbox_dir.exists() else "does not exist"
        raise OperatorError(f"inbox folder {inbox_dir} {state}")
    ensure_current(engine())  # a missing or old schema is said in one line, not a failed task's traceback
    with engine().begin() as conn:
        checked_keys(conn)
    return inbox_dir


def _writable(var_dir: Path) -> None:
    """The night writes its Data Docs (and the demo its outbox) under IASU_VAR_DIR: made now or refused in one line."""
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperatorError(f"IASU_VAR_DIR {var_dir} cannot be made ({exc.strerror})") from None
    if not os.access(var_dir, os.W_OK | os.X_OK):
        raise OperatorError(f"IASU_VAR_DIR {var_dir} cannot be written")


def reset() -> None:
    """Forget cached settings and adapters (tests and the demo switch databases and keys)."""
    if engine.cache_info().currsize:
        engine().dispose()
    from iasu.policy import get_policy

    for cached in (engine, cipher, blind_index, get_settings, get_policy):
        cached.cache_clear()
