"""Read-only queries behind `iasu status` and the lists: no Prefect, no Great Expectations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select

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
    """Row counts of the main tables and open quarantine entries, in one round trip."""
    columns = [
        select(func.count()).select_from(model.__table__).scalar_subquery().label(key)  # type: ignore[attr-defined]
        for key, model in STATUS_TABLES.items()
    ]
    q = QuarantineEntry.__table__  # type: ignore[attr-defined]
    columns.append(
        select(func.count())
        .select_from(q)
        .where(q.c.status == QuarantineStatus.open)
        .scalar_subquery()
        .label("quarantine_open")
    )
    with engine.connect() as conn:
        row = conn.execute(select(*columns)).mappings().one()
    return {key: int(row[key]) for key in [*STATUS_TABLES, "quarantine_open"]}


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


def retry_failed(conn: Connection, error: str) -> int:
    """Reset every failed alert whose last error is this one to pending (attempts zeroed); returns how many."""
    a = Alert.__table__  # type: ignore[attr-defined]
    return int(
        conn.execute(
            a.update()
            .where(a.c.status == "failed", a.c.last_error == error)
            .values(status="pending", attempts=0, last_error=None, claimed_until=None)
        ).rowcount
    )


def retry_alert(conn: Connection, alert_id: int) -> None:
    """Reset a failed alert to pending (attempts zeroed) for the next dispatch."""
    from iasu.errors import OperatorError

    a = Alert.__table__  # type: ignore[attr-defined]
    status = conn.execute(select(a.c.status).where(a.c.id == alert_id)).scalar_one_or_none()
    if status is None:
        raise OperatorError(f"no alert {alert_id}")
    if status != "failed":
        raise OperatorError(f"alert {alert_id} is {status}, not failed")
    conn.execute(
        a.update().where(a.c.id == alert_id).values(status="pending", attempts=0, last_error=None, claimed_until=None)
    )
