"""Read-only queries behind `iasu status` and the lists: no Prefect, no Great Expectations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, select

from models import (
    Alert,
    AuditEvent,
    Case,
    Contact,
    IngestBatch,
    Person,
    QuarantineEntry,
    QuarantineStatus,
    Referral,
    Staff,
)
from rules.codes import AlertStatus
from rules.policy import Policy
from tasks.bulk import one_of, update_rows
from tasks.outbox import FAILURE_REPORT, channel_now, failure_report_subject

ALERTS = Alert.__table__  # type: ignore[attr-defined]
STATUS_TABLES = {
    "referrals": Referral,
    "people": Person,
    "cases": Case,
    "contacts": Contact,
    "alerts": Alert,
    "audit_events": AuditEvent,
    "batches": IngestBatch,
}


def table_counts(engine: Engine) -> dict[str, int]:
    """Row counts of the main tables, open quarantine entries and failed alerts, in one round trip."""
    columns = [
        select(func.count()).select_from(model.__table__).scalar_subquery().label(key)  # type: ignore[attr-defined]
        for key, model in STATUS_TABLES.items()
    ]
    q = QuarantineEntry.__table__  # type: ignore[attr-defined]
    # Rows waiting for someone: quarantine entries to settle, alerts Slack refused or that ran out of attempts
    # (`iasu alert retry`).
    waiting = {
        "quarantine_open": (q, q.c.status == QuarantineStatus.open),
        "alerts_failed": (ALERTS, ALERTS.c.status == AlertStatus.failed),
    }
    columns += [
        select(func.count()).select_from(table).where(condition).scalar_subquery().label(key)
        for key, (table, condition) in waiting.items()
    ]
    with engine.connect() as conn:
        row = conn.execute(select(*columns)).mappings().one()
    return {key: int(row[key]) for key in [*STATUS_TABLES, *waiting]}


def quarantine_entries(engine: Engine, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Quarantine entries with file, line and failed expectations; the encrypted content is not read."""
    q = QuarantineEntry.__table__  # type: ignore[attr-defined]
    b = IngestBatch.__table__  # type: ignore[attr-defined]
    stmt = (
        select(q.c.id, b.c.file_name, q.c.line_no, q.c.status, q.c.failed_expectations, b.c.run_date)
        .join(b, b.c.id == q.c.batch_id)
        .order_by(b.c.run_date, b.c.file_name, q.c.line_no)
    )
    if not include_resolved:
        stmt = stmt.where(q.c.status == QuarantineStatus.open)
    with engine.connect() as conn:
        return [
            {
                "id": r.id,
                "run_date": r.run_date.isoformat(),
                "file": r.file_name,
                "line": r.line_no,
                "status": r.status,
                "failed_expectations": list(r.failed_expectations),
            }
            for r in conn.execute(stmt)
        ]


def contacts(conn: Connection, *, status: str | None, queue: str | None) -> list[dict[str, Any]]:
    """Contacts with case reference, kind, due time (ISO 8601 with offset), status and assigned staff id."""
    contacts_t, cases_t, staff_t = (m.__table__ for m in (Contact, Case, Staff))  # type: ignore[union-attr]
    c, k, s = contacts_t.c, cases_t.c, staff_t.c
    stmt = (
        select(k.case_ref, c.kind, c.due_at, c.status, s.staff_code)
        .select_from(contacts_t.join(cases_t, k.id == c.case_id).outerjoin(staff_t, s.id == c.assigned_staff_id))
        .order_by(c.due_at, k.case_ref, c.kind)
    )
    if status:
        stmt = stmt.where(c.status == status)
    if queue:
        stmt = stmt.where(k.queue == queue)
    return [
        {
            "case_ref": r.case_ref,
            "kind": r.kind,
            "due_at": r.due_at.isoformat(),
            "status": r.status,
            "assigned_to": r.staff_code,
        }
        for r in conn.execute(stmt)
    ]


def alerts(conn: Connection, *, status: str | None) -> list[dict[str, Any]]:
    """Outbox rows with their delivery state; the payload holds references and codes only."""
    a, k = Alert.__table__.c, Case.__table__.c  # type: ignore[attr-defined]
    stmt = (
        select(
            a.id, a.kind, a.level, a.channel, a.status, a.attempts, a.last_error, a.slack_ts, a.created_at, k.case_ref
        )
        .select_from(Alert.__table__.outerjoin(Case.__table__, k.id == a.case_id))  # type: ignore[attr-defined]
        .order_by(a.id)
    )
    if status:
        stmt = stmt.where(a.status == status)
    return [{**dict(r._mapping), "created_at": r.created_at.isoformat()} for r in conn.execute(stmt)]


@dataclass(frozen=True)
class Retried:
    """Alerts put back in the outbox, and the unsent reports of their failure withdrawn with them."""

    pending_again: int
    reports_withdrawn: int
    rerouted: int = 0  # of those put back, sent to another channel than before: the policy's channel changed


def retry_failed(conn: Connection, error: str, policy: Policy) -> Retried:
    """Put every failed alert whose last error is this one back to pending (attempts zeroed)."""
    return _put_back(conn, ALERTS.c.last_error == error, policy)


def retry_alert(conn: Connection, alert_id: int, policy: Policy) -> Retried:
    """Put a failed alert back to pending (attempts zeroed) for the next dispatch."""
    from iasu.errors import OperatorError

    status = conn.execute(select(ALERTS.c.status).where(ALERTS.c.id == alert_id)).scalar_one_or_none()
    if status is None:
        raise OperatorError(f"no alert {alert_id}")
    if status != AlertStatus.failed:
        raise OperatorError(f"alert {alert_id} is {status}, not failed")
    return _put_back(conn, ALERTS.c.id == alert_id, policy)


def _put_back(conn: Connection, which: ColumnElement[bool], policy: Policy) -> Retried:
    a, k = ALERTS.c, Case.__table__.c  # type: ignore[attr-defined]
    back = conn.execute(
        ALERTS.update()
        .where(a.status == AlertStatus.failed, which)
        .values(status=AlertStatus.pending, attempts=0, last_error=None, claimed_until=None)
        .returning(a.id, a.kind, a.level, a.channel, a.payload, a.case_id)
    ).all()
    put_back = {r.id for r in back}
    # Each goes where the policy now sends its kind: an alert failed for a wrong channel id (channel_not_found)
    # is put back after the policy is mended, and must not go to the old id again. A missed contact keeps the
    # queue its message names; its force is its case's.
    cases = select(k.id, k.force).where(one_of(conn, k.id, {r.case_id for r in back if r.case_id}))
    force_of: dict[int, str] = {row.id: row.force for row in conn.execute(cases)}
    moved = []
    for r in back:
        channel = channel_now(r.kind, r.level, (r.payload or {}).get("queue"), force_of.get(r.case_id), policy)
        if channel is not None and channel != r.channel:
            moved.append({"id": r.id, "channel": channel})
    if moved:
        update_rows(conn, ALERTS, "id", moved)
    # A report that one of these failed, not yet sent (or itself failed, and perhaps just put back with
    # them), now tells ops of a failure that no longer stands: withdrawn, so ops is not told of failures
    # that the next dispatch delivers. Should an alert fail again, a new report names the new failure.
    reports = conn.execute(
        select(a.id, a.dedupe_key).where(
            a.kind == "ops",
            a.status.in_([AlertStatus.pending, AlertStatus.failed]),
            a.dedupe_key.startswith(FAILURE_REPORT, autoescape=True),
        )
    ).all()
    moot = [r.id for r in reports if failure_report_subject(r.dedupe_key) in put_back]
    if moot:
        conn.execute(
            ALERTS.update().where(one_of(conn, a.id, moot)).values(status=AlertStatus.withdrawn, claimed_until=None)
        )
    return Retried(
        pending_again=len(put_back - set(moot)),
        reports_withdrawn=len(moot),
        rerouted=sum(1 for m in moved if m["id"] not in moot),
    )
