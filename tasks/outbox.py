"""The alert outbox: one way to shape a row and one way to queue it, for every kind of alert.

Rows are queued in the caller's transaction (with the decision that caused
them); the dedupe key makes a second queueing of the same cause a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from models import Alert
from models.types import utcnow
from rules.codes import AlertStatus
from tasks.bulk import copy_insert_ignoring

ALERTS = Alert.__table__  # type: ignore[attr-defined]


def outbox_row(
    kind: str,
    dedupe_key: str,
    channel: str,
    payload: dict[str, Any],
    *,
    level: int | None = None,
    case_id: int | None = None,
    contact_id: int | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """A pending alert; the payload holds case references, codes and counts only."""
    return {
        "dedupe_key": dedupe_key,
        "kind": kind,
        "level": level,
        "channel": channel,
        "case_id": case_id,
        "contact_id": contact_id,
        "payload": payload,
        "status": AlertStatus.pending,
        "attempts": 0,
        "created_at": created_at or utcnow(),
    }


def queue_alert(conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert outbox rows (built by outbox_row), skipping any whose dedupe key exists; returns how many are new."""
    return copy_insert_ignoring(conn, ALERTS, rows, ["dedupe_key"])
