"""Staff: who works which queue in which force, and how many cases each can carry."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, update

from iasu.errors import OperatorError
from iasu.privacy import FieldCipher
from models import Case, Contact, Staff
from rules.codes import CaseStatus, ContactStatus, Force, Queue
from tasks import audit
from tasks.locks import casework_lock

STAFF = Staff.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ROLES = ("worker", "supervisor", "lead")
DEFAULT_CAPACITY = 20
MAX_CAPACITY = 10_000  # open cases a worker may hold: a caseload, and far inside the column's INTEGER
STAFF_FILE_COLUMNS = ("staff_code", "name", "role", "queue", "force", "capacity", "slack_user_id")


@dataclass(frozen=True)
class StaffChange:
    """What adding or updating a member of staff did."""

    added: bool  # new, not an update
    released: int  # open cases let go because the worker moved queue, force or role (for reassignment)
    changed: bool = True  # False: given as already recorded, so nothing written or audited


def add_staff(
    conn: Connection,
    *,
    staff_code: str,
    queue: Queue,
    force: Force,
    role: str | None = None,
    capacity: int | None = None,
    slack_user_id: str | None = None,
    name: str | None = None,
    cipher: FieldCipher,
    actor: str,
) -> StaffChange:
    """Add a member of staff (or re-activate and update one: what is not given is kept)."""
    casework_lock(conn, "staff add")
    s = STAFF.c
    if not staff_code.strip() or staff_code != staff_code.strip():
        raise OperatorError("a staff id must not be blank or begin or end with a space")
    if role is not None and role not in ROLES:
        # Not echoed: from a staff file with a shifted row, the cell may hold a name.
        raise OperatorError(f"unknown role; one of: {', '.join(ROLES)}")
    if capacity is not None and not 0 <= capacity <= MAX_CAPACITY:
        raise OperatorError(f"capacity must be from 0 to {MAX_CAPACITY} cases")
    # Checked here, not left to the database: PostgreSQL would refuse it with a database error, SQLite store it.
    for what, value, column in (
        ("staff id", staff_code, s.staff_code),
        ("Slack user id", slack_user_id, s.slack_user_id),
    ):
        if value is not None and len(value) > column.type.length:
            raise OperatorError(f"a {what} takes at most {column.type.length} characters ({len(value)} given)")
    existing = conn.execute(
        select(s.id, s.queue, s.force, s.role, s.capacity, s.active, s.slack_user_id, s.name_enc).where(
            s.staff_code == staff_code
        )
    ).first()
    values: dict[str, Any] = {
        "queue": queue.value,
        "force": force.value,
        "role": role or (existing.role if existing else "worker"),
        "capacity": capacity if capacity is not None else (existing.capacity if existing else DEFAULT_CAPACITY),
        "active": True,
    }
    # An update that does not name the Slack id or the name keeps them: a capacity change must not silence
    # the worker's mentions in alerts or lose their name.
    if slack_user_id is not None or existing is None:
        values["slack_user_id"] = slack_user_id
    if existing is not None and _as_recorded(existing, values, name, cipher):
        # A roster loaded again (or the demo rerun): a rerun changes nothing, the audit log included.
        return StaffChange(added=False, released=0, changed=False)
    if name is not None or existing is None:
        values["name_enc"] = cipher.encrypt("staff", "name_enc", name)
    released = 0
    if existing is None:
        conn.execute(STAFF.insert().values(staff_code=staff_code, **values))
    else:
        conn.execute(update(STAFF).where(s.id == existing.id).values(**values))
        if (existing.queue, existing.force, existing.role) != (values["queue"], values["force"], values["role"]):
            # Their cases stay in their queue and force: a worker who moves on hands them over, as one who leaves.
            released = _release(conn, existing.id)
    details = {k: v for k, v in values.items() if k != "name_enc"}
    if released:
        details["cases_released"] = released
    audit.record(
        conn,
        actor=actor,
        action="staff_add" if existing is None else "staff_update",
        entity="staff",
        entity_id=staff_code,
        details=details,
    )
    return StaffChange(added=existing is None, released=released)


def _as_recorded(existing: Any, values: dict[str, Any], name: str | None, cipher: FieldCipher) -> bool:
    """Whether an update would write what the staff row already holds (a name given is compared decrypted)."""
    same = all(getattr(existing, key) == value for key, value in values.items())
    return same and (name is None or cipher.decrypt("staff", "name_enc", existing.name_enc) == name)


def _release(conn: Connection, staff_id: int) -> int:
    """Unassign a worker's open cases and pending contacts (the next assignment gives them on); how many cases."""
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
    return int(cases or 0)


def load_staff_file(conn: Connection, path: Path, *, cipher: FieldCipher, actor: str) -> tuple[int, int]:
    """Add or update every row of a staff CSV file (columns: STAFF_FILE_COLUMNS); rows read, cases released."""
    casework_lock(conn, "staff load")
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" begins with a byte-order mark, which is not part of the header.
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = set(STAFF_FILE_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise OperatorError(f"staff file {path} lacks column(s): {', '.join(sorted(missing))}")
            rows = list(reader)
    except OSError as exc:
        raise OperatorError(f"staff file {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise OperatorError(f"staff file {path} is not UTF-8 (byte {exc.start})") from None
    except csv.Error as exc:  # a cell over the csv module's limit, a NUL byte: its words never quote the cell
        raise OperatorError(f"staff file {path} cannot be read as CSV ({exc})") from None
    released = 0
    for number, row in enumerate(rows, start=2):
        # csv gives a short row's missing cells as None and a long row's extra ones under the key None.
        if None in row or any(v is None for v in row.values()):
            raise OperatorError(f"staff file {path} line {number}: not {len(STAFF_FILE_COLUMNS)} fields")
        if (row["role"] or "").strip() not in ("", *ROLES):
            raise OperatorError(f"staff file {path} line {number}: unknown role; one of: {', '.join(ROLES)}")
        # Each cell said by its column and the values it takes, never echoed: a shifted row may put a name there.
        at = f"staff file {path} line {number}"
        if row["queue"].strip() not in {q.value for q in Queue}:
            raise OperatorError(f"{at}: unknown queue; one of: {', '.join(q.value for q in Queue)}")
        if row["force"].strip() not in {f.value for f in Force}:
            raise OperatorError(f"{at}: unknown force; one of: {', '.join(f.value for f in Force)}")
        queue, force = Queue(row["queue"].strip()), Force(row["force"].strip())
        try:
            capacity = int(row["capacity"]) if (row["capacity"] or "").strip() else None
        except ValueError:
            raise OperatorError(f"{at}: capacity is not a whole number") from None
        try:
            released += add_staff(
                conn,
                staff_code=row["staff_code"].strip(),
                queue=queue,
                force=force,
                role=(row["role"] or "").strip() or None,
                capacity=capacity,
                slack_user_id=(row["slack_user_id"] or "").strip() or None,
                name=(row["name"] or "").strip() or None,
                cipher=cipher,
                actor=actor,
            ).released
        except OperatorError as exc:  # a capacity out of range, an id too long: which file and line
            raise OperatorError(f"{at}: {exc}") from None
    return len(rows), released


def deactivate_staff(conn: Connection, staff_code: str, *, by: str, reason: str | None, cipher: FieldCipher) -> int:
    """Mark a worker inactive and unassign their open cases and pending contacts (the scheduler reassigns them)."""
    casework_lock(conn, "staff deactivate")
    staff_id = conn.execute(
        select(STAFF.c.id).where(STAFF.c.staff_code == staff_code, STAFF.c.active)
    ).scalar_one_or_none()
    if staff_id is None:
        raise OperatorError(f"no active staff member {staff_code}")
    conn.execute(update(STAFF).where(STAFF.c.id == staff_id).values(active=False))
    cases = _release(conn, staff_id)
    audit.record(
        conn,
        actor=by,
        action="staff_deactivate",
        entity="staff",
        entity_id=staff_code,
        details={"cases_released": cases},
        reason=reason,
        cipher=cipher,
    )
    return cases


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
