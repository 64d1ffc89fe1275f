"""Append-only audit events (DPA 2018 s62), written in the same transaction as what they record."""

from __future__ import annotations

import getpass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from iasu.privacy import FieldCipher
from models import AuditEvent
from models.types import utcnow

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]


@lru_cache(maxsize=1)  # fixed for the life of the process; getuser reads the environment on each call
def os_user() -> str | None:
    """The operating-system account running this process, recorded beside the named actor."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def event(
    *, at: datetime, actor: str, action: str, entity: str, entity_id: str | int | None, details: dict[str, Any]
) -> dict[str, Any]:
    """One audit row with no free-text reason, for inserting many at once (details: codes and counts only)."""
    return {
        "at": at,
        "actor": actor,
        "os_user": os_user(),
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "details": details,
        "reason_enc": None,
    }


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int | None,
    details: dict[str, Any],
    reason: str | None = None,
    cipher: FieldCipher | None = None,
    at: datetime | None = None,
) -> None:
    """Append one audit event; details hold codes and counts only, a free-text reason is encrypted."""
    if reason is not None and cipher is None:
        raise ValueError("a reason is free text and must be encrypted: pass the cipher")
    row = event(at=at or utcnow(), actor=actor, action=action, entity=entity, entity_id=entity_id, details=details)
    if cipher and reason:
        row["reason_enc"] = cipher.encrypt("audit_events", "reason_enc", reason)
    conn.execute(AUDIT.insert().values(**row))
