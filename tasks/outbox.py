"""The alert outbox: one way to shape a row and one way to queue it, for every kind of alert.

Rows are queued in the caller's transaction (with the decision that caused
them); the dedupe key makes a second queueing of the same cause a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from models import Alert
from models.types import utcnow
from rules.codes import AlertStatus, Force, Queue
from rules.escalation import channel_for
from rules.policy import Policy
from tasks.bulk import copy_insert_ignoring

ALERTS = Alert.__table__  # type: ignore[attr-defined]
FAILURE_REPORT = "ops:alert_failed:"


def failure_report_key(alert_id: int, failed_at: datetime) -> str:
    """The dedupe key of the ops alert reporting that an alert failed at this instant."""
    # The instant is in the key: an alert put back (`iasu alert retry`) that fails again is reported again.
    return f"{FAILURE_REPORT}{alert_id}:{failed_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def failure_report_subject(dedupe_key: str) -> int | None:
    """The id of the alert a failure report is about (keys with or without the instant), else None."""
    if not dedupe_key.startswith(FAILURE_REPORT):
        return None
    subject = dedupe_key.removeprefix(FAILURE_REPORT).partition(":")[0]
    return int(subject) if subject.isdigit() else None


def channel_now(kind: str, level: int | None, queue: str | None, force: str | None, policy: Policy) -> str | None:
    """The channel the policy now gives an alert of this kind; None when it cannot say (the stored one stands)."""
    if kind == "ops":
        return policy.ops_channel
    if kind == "new_high_risk":
        return policy.queues[Queue.unit].channel
    if queue not in {q.value for q in policy.queues}:
        return None
    if kind == "digest":
        return policy.queues[Queue(queue)].channel
    if kind == "missed_contact" and level and force in {f.value for f in Force}:
        return channel_for(level, queue_channel=policy.queues[Queue(queue)].channel, force=Force(force), policy=policy)
    return None


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
