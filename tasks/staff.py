"""Staff: who works which queue in which force, and how many cases each can carry."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, update

from iasu.errors import OperatorError
from iasu.privacy import FieldCipher
from models import Case, Contact, Staff
from rules.codes import CaseStatus, ContactStatus, Force, Queue
from tasks import audit

STAFF = Staff.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ROLES = ("worker", "supervisor", "lead")
STAFF_FILE_COLUMNS = ("staff_code", "name", "role", "queue", "force", "capacity", "slack_user_id")


def add_staff(
    conn: Connection,
    *,
    staff_code: str,
    queue: Queue,
    force: Force,
    role: str = "worker",
    capacity: int = 20,
    slack_user_id: str | None = None,
    name: str | None = None,
    cipher: FieldCipher,
    actor: str,
) -> bool:
    """Add a member of staff (or re-activate and update one); returns True when newly added."""
    if role not in ROLES:
        raise OperatorError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if capacity < 0:
        raise OperatorError("capacity must not be negative")
    values = {
        "queue": queue.value,
        "force": force.value,
        "role": role,
        "capacity": capacity,
        "slack_user_id": slack_user_id,
        "name_enc": cipher.encrypt("staff", "name_enc", name),
        "active": True,
    }
    existing = conn.execute(select(STAFF.c.id).where(STAFF.c.staff_code == staff_code)).scalar_one_or_none()
    if existing is None:
        conn.execute(STAFF.insert().values(staff_code=staff_code, **values))
    else:
        conn.execute(update(STAFF).where(STAFF.c.id == existing).values(**values))
    audit.record(
        conn,
        actor=actor,
        action="staff_add" if existing is None else "staff_update",
        entity="staff",
        entity_id=staff_code,
        details={k: v for k, v in values.items() if k != "name_enc"},
    )
    return existing is None


def load_staff_file(conn: Connection, path: Path, *, cipher: FieldCipher, actor: str) -> int:
    """Add or update every row of a staff CSV file (columns: STAFF_FILE_COLUMNS); returns rows read."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = set(STAFF_FILE_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise OperatorError(f"staff file {path} lacks column(s): {', '.join(sorted(missing))}")
            rows = list(reader)
    except OSError as exc:
        raise OperatorError(f"staff file {path} cannot be read ({exc.strerror})") from None
    for number, row in enumerate(rows, start=2):
        try:
            queue, force = Queue(row["queue"].strip()), Force(row["force"].strip())
            capacity = int(row["capacity"] or 20)
        except ValueError:
            raise OperatorError(f"staff file {path} line {number}: bad queue, force or capacity") from None
        add_staff(
            conn,
            staff_code=row["staff_code"].strip(),
            queue=queue,
            force=force,
            role=(row["role"] or "worker").strip(),
            capacity=capacity,
            slack_user_id=(row["slack_user_id"] or "").strip() or None,
            name=(row["name"] or "").strip() or None,
            cipher=cipher,
            actor=actor,
        )
    return len(rows)


def deactivate_staff(conn: Connection, staff_code: str, *, by: str, reason: str | None, cipher: FieldCipher) -> int:
    """Mark a worker inactive and unassign their open cases and pending contacts (the scheduler reassigns them)."""
    staff_id = conn.execute(
        select(STAFF.c.id).where(STAFF.c.staff_code == staff_code, STAFF.c.active)
    ).scalar_one_or_none()
    if staff_id is None:
        raise OperatorError(f"no active staff member {staff_code}")
    conn.execute(update(STAFF).where(STAFF.c.id == staff_id).values(active=False))
    cases = conn.execute(
        update(CASES)
        .where(CASES.c.assigned_staff_id == staff_id, CASES.c.status == CaseStatus.open)
        .values(assigned_staff_id=None)
    ).rowcount
    conn.execute(
        update(CONTACTS)
        .where(CONTACTS.c.assigned_staff_id == staff_id, CONTACTS.c.status == ContactStatus.pending)
        .values(assigned_staff_id=None)
    )
    audit.record(
        conn,
        actor=by,
        action="staff_deactivate",
        entity="staff",
        entity_id=staff_code,
        details={"cases_released": int(cases or 0)},
        reason=reason,
        cipher=cipher,
    )
    return int(cases or 0)


def list_staff(conn: Connection) -> list[dict[str, Any]]:
    """Staff with their open-case load (no names)."""
    load = (
        select(CASES.c.assigned_staff_id, func.count().label("load"))
        .where(CASES.c.status == CaseStatus.open)
        .group_by(CASES.c.assigned_staff_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            STAFF.c.staff_code,
            STAFF.c.role,
            STAFF.c.queue,
            STAFF.c.force,
            STAFF.c.capacity,
            STAFF.c.active,
            func.coalesce(load.c.load, 0).label("load"),
        )
        .outerjoin(load, load.c.assigned_staff_id == STAFF.c.id)
        .order_by(STAFF.c.force, STAFF.c.queue, STAFF.c.staff_code)
    )
    return [dict(r._mapping) for r in rows]
