"""The one place that builds the real adapters (engine, cipher, blind index) from settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

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


def reset() -> None:
    """Forget cached settings and adapters (tests and the demo switch databases and keys)."""
    if engine.cache_info().currsize:
        engine().dispose()
    from iasu.policy import get_policy

    for cached in (engine, cipher, blind_index, get_settings, get_policy):
        cached.cache_clear()
