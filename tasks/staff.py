"""Staff: who works which queue in which force, and how many cases each can carry."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from iasu.errors import OperatorError
from iasu.privacy import FieldCipher
from models import Case, Contact, Staff
from models.types import utcnow
from rules.codes import CaseStatus, ContactStatus, Force, Queue
from tasks import audit
from tasks.audit import AUDIT
from tasks.bulk import copy_insert, one_of, update_rows
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


@dataclass(frozen=True)
class StaffEntry:
    """A member of staff as given to add or update; on an update, what is None is kept."""

    staff_code: str
    queue: Queue
    force: Force
    role: str | None = None
    capacity: int | None = None
    slack_user_id: str | None = None
    name: str | None = None

    def check(self) -> None:
        """Refuse what the staff table must not hold, in words that never echo a cell's value."""
        if not self.staff_code.strip() or self.staff_code != self.staff_code.strip():
            raise OperatorError("a staff id must not be blank or begin or end with a space")
        if self.role is not None and self.role not in ROLES:
            # Not echoed: from a staff file with a shifted row, the cell may hold a name.
            raise OperatorError(f"unknown role; one of: {', '.join(ROLES)}")
        if self.capacity is not None and not 0 <= self.capacity <= MAX_CAPACITY:
            raise OperatorError(f"capacity must be from 0 to {MAX_CAPACITY} cases")
        # Checked here, not left to the database: PostgreSQL would refuse it with a database error, SQLite store it.
        for what, value, column in (
            ("staff id", self.staff_code, STAFF.c.staff_code),
            ("Slack user id", self.slack_user_id, STAFF.c.slack_user_id),
        ):
            if value is not None and len(value) > column.type.length:
                raise OperatorError(f"a {what} takes at most {column.type.length} characters ({len(value)} given)")


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
    entry = StaffEntry(staff_code, queue, force, role, capacity, slack_user_id, name)
    entry.check()
    [change] = save_staff(conn, [entry], cipher=cipher, actor=actor, lock_as="staff add")
    return change


def save_staff(
    conn: Connection, entries: Sequence[StaffEntry], *, cipher: FieldCipher, actor: str, lock_as: str
) -> list[StaffChange]:
    """Add or update checked entries, each staff id once, in a few statements whatever their number."""
    if len({e.staff_code for e in entries}) != len(entries):
        raise ValueError("each staff id at most once")  # the caller says which line gave one twice
    casework_lock(conn, lock_as)
    s = STAFF.c
    columns = (s.id, s.staff_code, s.queue, s.force, s.role, s.capacity, s.active, s.slack_user_id, s.name_enc)
    existing = {
        row.staff_code: row
        for row in conn.execute(select(*columns).where(one_of(conn, s.staff_code, [e.staff_code for e in entries])))
    }
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    moved: list[int] = []
    # Each entry's change, as recorded until found otherwise; and for each that writes, its position, what
    # it set and the staff id it updated (None: added).
    changes = [StaffChange(added=False, released=0, changed=False)] * len(entries)
    written: list[tuple[int, dict[str, Any], int | None]] = []
    for position, entry in enumerate(entries):
        before = existing.get(entry.staff_code)
        capacity = before.capacity if before else DEFAULT_CAPACITY
        values: dict[str, Any] = {
            "queue": entry.queue.value,
            "force": entry.force.value,
            "role": entry.role or (before.role if before else "worker"),
            "capacity": capacity if entry.capacity is None else entry.capacity,
            "active": True,
        }
        # An update that does not name the Slack id or the name keeps them: a capacity change must not silence
        # the worker's mentions in alerts or lose their name.
        if entry.slack_user_id is not None or before is None:
            values["slack_user_id"] = entry.slack_user_id
        if before is not None and _as_recorded(before, values, entry.name, cipher):
            # A roster loaded again (or the demo rerun): a rerun changes nothing, the audit log included.
            continue
        audited = dict(values)
        if entry.name is not None or before is None:
            values["name_enc"] = cipher.encrypt("staff", "name_enc", entry.name)
        if before is None:
            inserts.append({"staff_code": entry.staff_code, "created_at": now, **values})
            written.append((position, audited, None))
            continue
        # Every update row sets the same columns (one statement for all): what is not given, as it was.
        updates.append({"slack_user_id": before.slack_user_id, "name_enc": before.name_enc, **values, "id": before.id})
        if (before.queue, before.force, before.role) != (values["queue"], values["force"], values["role"]):
            # Their cases stay in their queue and force: a worker who moves on hands them over, as one who leaves.
            moved.append(before.id)
        written.append((position, audited, before.id))
    copy_insert(conn, STAFF, inserts)
    update_rows(conn, STAFF, "id", updates)
    released = _release(conn, moved)
    events = []
    for position, details, staff_id in written:
        freed = released.get(staff_id, 0) if staff_id is not None else 0
        changes[position] = StaffChange(added=staff_id is None, released=freed)
        events.append(
            audit.event(
                at=now,
                actor=actor,
                action="staff_add" if staff_id is None else "staff_update",
                entity="staff",
                entity_id=entries[position].staff_code,
                details={**details, "cases_released": freed} if freed else details,
            )
        )
    copy_insert(conn, AUDIT, events)
    return changes


def _as_recorded(existing: Any, values: dict[str, Any], name: str | None, cipher: FieldCipher) -> bool:
    """Whether an update would write what the staff row already holds (a name given is compared decrypted)."""
    same = all(getattr(existing, key) == value for key, value in values.items())
    return same and (name is None or cipher.decrypt("staff", "name_enc", existing.name_enc) == name)


def _release(conn: Connection, staff_ids: Sequence[int]) -> dict[int, int]:
    """Unassign workers' open cases and pending contacts (the next assignment gives them on); cases per worker."""
    if not staff_ids:
        return {}
    open_cases = and_(one_of(conn, CASES.c.assigned_staff_id, staff_ids), CASES.c.status == CaseStatus.open)
    released = {
        int(staff_id): int(n)
        for staff_id, n in conn.execute(
            select(CASES.c.assigned_staff_id, func.count()).where(open_cases).group_by(CASES.c.assigned_staff_id)
        )
    }
    conn.execute(update(CASES).where(open_cases).values(assigned_staff_id=None))
    conn.execute(
        update(CONTACTS)
        .where(one_of(conn, CONTACTS.c.assigned_staff_id, staff_ids), CONTACTS.c.status == ContactStatus.pending)
        .values(assigned_staff_id=None)
    )
    return released


def load_staff_file(conn: Connection, path: Path, *, cipher: FieldCipher, actor: str) -> tuple[int, int]:
    """Add or update every row of a staff CSV file (columns: STAFF_FILE_COLUMNS); rows read, cases released."""
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
    entries: list[StaffEntry] = []
    line_of: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        # csv gives a short row's missing cells as None and a long row's extra ones under the key None.
        if None in row or any(v is None for v in row.values()):
            raise OperatorError(f"staff file {path} line {number}: not {len(STAFF_FILE_COLUMNS)} fields")
        # Each cell said by its column and the values it takes, never echoed: a shifted row may put a name there.
        at = f"staff file {path} line {number}"
        if (row["role"] or "").strip() not in ("", *ROLES):
            raise OperatorError(f"{at}: unknown role; one of: {', '.join(ROLES)}")
        if row["queue"].strip() not in {q.value for q in Queue}:
            raise OperatorError(f"{at}: unknown queue; one of: {', '.join(q.value for q in Queue)}")
        if row["force"].strip() not in {f.value for f in Force}:
            raise OperatorError(f"{at}: unknown force; one of: {', '.join(f.value for f in Force)}")
        try:
            capacity = int(row["capacity"]) if (row["capacity"] or "").strip() else None
        except ValueError:
            raise OperatorError(f"{at}: capacity is not a whole number") from None
        entry = StaffEntry(
            staff_code=row["staff_code"].strip(),
            queue=Queue(row["queue"].strip()),
            force=Force(row["force"].strip()),
            role=(row["role"] or "").strip() or None,
            capacity=capacity,
            slack_user_id=(row["slack_user_id"] or "").strip() or None,
            name=(row["name"] or "").strip() or None,
        )
        try:
            entry.check()
        except OperatorError as exc:  # a capacity out of range, an id too long: which file and line
            raise OperatorError(f"{at}: {exc}") from None
        if entry.staff_code in line_of:
            # Two lines for one worker (a copy-paste, two queues at once): which is meant is not ours to guess.
            raise OperatorError(f"{at}: the same staff id as line {line_of[entry.staff_code]}; give each worker once")
        line_of[entry.staff_code] = number
        entries.append(entry)
    changes = save_staff(conn, entries, cipher=cipher, actor=actor, lock_as="staff load")
    return len(rows), sum(change.released for change in changes)


def deactivate_staff(conn: Connection, staff_code: str, *, by: str, reason: str | None, cipher: FieldCipher) -> int:
    """Mark a worker inactive and unassign their open cases and pending contacts (the scheduler reassigns them)."""
    casework_lock(conn, "staff deactivate")
    staff_id = conn.execute(
        select(STAFF.c.id).where(STAFF.c.staff_code == staff_code, STAFF.c.active)
    ).scalar_one_or_none()
    if staff_id is None:
        raise OperatorError(f"no active staff member {staff_code}")
    conn.execute(update(STAFF).where(STAFF.c.id == staff_id).values(active=False))
    cases = _release(conn, [staff_id]).get(staff_id, 0)
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
