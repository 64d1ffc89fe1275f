"""Working with one case: show (and reveal, audited), override, close; and the queue lists.

Plain functions over a connection, called by the CLI; each change and each
reveal writes its audit event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, select, update

from iasu.errors import OperatorError
from iasu.privacy import FieldCipher
from models import AuditEvent, Case, Contact, IngestBatch, Person, Referral, Staff
from models.referrals import PERSON_FIELDS
from models.types import utcnow
from rules.codes import CaseStatus, ContactStatus, Queue, Tier
from rules.policy import Policy
from tasks import audit
from tasks.locks import casework_lock

CASES = Case.__table__  # type: ignore[attr-defined]
REFERRALS = Referral.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
BATCHES = IngestBatch.__table__  # type: ignore[attr-defined]
AUDIT_EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]
TIER_ORDER = case({Tier.high.value: 0, Tier.medium.value: 1, Tier.standard.value: 2}, value=CASES.c.tier, else_=3)
# Open cases in priority order: the highest tier, then the longest waiting, then the reference (queue lists,
# and assignment, which offers waiting cases in this order).
MOST_URGENT_FIRST = (TIER_ORDER, CASES.c.opened_on, CASES.c.case_ref)


def _case(conn: Connection, case_ref: str) -> Any:
    row = conn.execute(select(CASES).where(CASES.c.case_ref == case_ref)).mappings().first()
    if row is None:
        raise OperatorError(f"no case {case_ref}")
    return row


def show_case(conn: Connection, case_ref: str) -> dict[str, Any]:
    """A case with its referrals and history: references, codes and counts, no personal value."""
    row = _case(conn, case_ref)
    r, b = REFERRALS.c, BATCHES.c
    referrals = conn.execute(
        select(
            r.id,
            r.source,
            r.source_ref,
            r.received_date,
            r.referring_agency,
            r.sdash_yes_count,
            r.markers,
            b.file_name,
            r.line_no,
        )
        .join(BATCHES, b.id == r.batch_id)
        .where(r.case_id == row["id"])
        .order_by(r.received_date, r.id)
    ).all()
    c, s = CONTACTS.c, STAFF.c
    contacts = conn.execute(
        select(c.id, c.kind, c.due_at, c.original_due_at, c.status, c.attempts, c.outcome, c.completed_at, s.staff_code)
        .outerjoin(STAFF, s.id == c.assigned_staff_id)
        .where(c.case_id == row["id"])
        .order_by(c.original_due_at, c.id)
    ).all()
    referral_ids = [str(ref.id) for ref in referrals]
    # A contact's outcomes are audited against the contact: a supervisor asking "was the victim contacted?"
    # sees each attempt, who recorded it and from which feed, not only where the contact ended.
    contact_ids = [str(k.id) for k in contacts]
    a = AUDIT_EVENTS.c
    history = conn.execute(
        select(a.at, a.actor, a.os_user, a.action, a.details)
        .where(
            ((a.entity == "cases") & (a.entity_id == case_ref))
            | ((a.entity == "referrals") & a.entity_id.in_(referral_ids))
            | ((a.entity == "contacts") & a.entity_id.in_(contact_ids))
        )
        .order_by(a.at, a.id)
    ).all()
    return {
        "case_ref": row["case_ref"],
        "force": row["force"],
        "status": row["status"],
        "tier": row["tier"],
        "queue": row["queue"],
        "reasons": row["reasons"],
        "interventions": row["interventions"],
        "turned_away_for_capacity": row["turned_away_for_capacity"],
        "decided_by": row["decided_by"],
        "policy_version": row["policy_version"],
        "opened_on": row["opened_on"].isoformat(),
        "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
        "outcome": row["outcome"],
        "referrals": [
            {
                "source": ref.source,
                "source_ref": ref.source_ref,
                "received_date": ref.received_date.isoformat(),
                "referring_agency": ref.referring_agency,
                "sdash_yes_count": ref.sdash_yes_count,
                "markers": list(ref.markers),
                "file": ref.file_name,
                "line": ref.line_no,
            }
            for ref in referrals
        ],
        # What became of each scheduled contact: a supervisor's "was the victim contacted?".
        "contacts": [
            {
                "kind": k.kind,
                "due_at": k.due_at.isoformat(),
                "original_due_at": k.original_due_at.isoformat(),
                "status": k.status,
                "attempts": k.attempts,
                "outcome": k.outcome,
                "completed_at": k.completed_at.isoformat() if k.completed_at else None,
                "assigned_to": k.staff_code,
            }
            for k in contacts
        ],
        "history": [
            {"at": h.at.isoformat(), "actor": h.actor, "os_user": h.os_user, "action": h.action, "details": h.details}
            for h in history
        ],
    }


def reveal_case(conn: Connection, case_ref: str, *, by: str, reason: str | None, cipher: FieldCipher) -> dict[str, Any]:
    """The personal fields of a case's referrals, decrypted; the consultation is audited (DPA 2018 s62)."""
    if not (reason and reason.strip()):
        raise OperatorError("a reveal needs a reason: it goes to the audit log (DPA 2018 s62)")
    row = _case(conn, case_ref)
    p, r = PEOPLE.c, REFERRALS.c
    people = conn.execute(
        select(PEOPLE, r.source, r.source_ref, r.notes_enc)
        .join(REFERRALS, r.id == p.referral_id)
        .where(r.case_id == row["id"])
        .order_by(r.id, p.role)
    ).mappings()
    revealed: list[dict[str, Any]] = []
    for person in people:
        entry = {"source": person["source"], "source_ref": person["source_ref"], "role": person["role"]}
        for column, name in PERSON_FIELDS:
            entry[name] = cipher.decrypt("people", column, person[column])
        revealed.append(entry)
    notes = {
        f"{n.source}:{n.source_ref}": cipher.decrypt("referrals", "notes_enc", n.notes_enc)
        for n in conn.execute(select(r.source, r.source_ref, r.notes_enc).where(r.case_id == row["id"]))
    }
    audit.record(
        conn,
        actor=by,
        action="reveal",
        entity="cases",
        entity_id=case_ref,
        details={"people": len(revealed), "fields": [name for _, name in PERSON_FIELDS] + ["notes"]},
        reason=reason,
        cipher=cipher,
    )
    return {"people": revealed, "notes": notes}


def override_case(
    conn: Connection,
    case_ref: str,
    *,
    queue: Queue,
    tier: Tier | None,
    by: str,
    reason: str,
    cipher: FieldCipher,
    policy: Policy,
    timezone: str,
) -> tuple[dict[str, Any], int]:
    """Change a case's queue (and tier) by a named person's decision; the original and the why are audited.

    A tier change moves the pending contacts to the new cadence. A queue change lets the case's worker go
    (they work the old queue) with its pending contacts; scheduling gives it to a worker of the new queue
    and starts or stops its check-ins (the CLI runs both at once). Returns the change and the case's id.
    """
    casework_lock(conn, "case override")
    if not reason.strip():
        raise OperatorError("an override needs a reason")
    row = _case(conn, case_ref)
    if row["status"] != CaseStatus.open:
        raise OperatorError(f"case {case_ref} is closed")
    new_tier = tier.value if tier else row["tier"]
    conn.execute(
        update(CASES)
        .where(CASES.c.id == row["id"])
        # Still listed for the unit unless the override takes it into the unit.
        .values(
            queue=queue.value,
            tier=new_tier,
            decided_by=by,
            # The policy's offer to the unit ends with a person's decision on the case, whatever it is.
            turned_away_for_capacity=False,
        )
    )
    change = {"queue": [row["queue"], queue.value], "tier": [row["tier"], new_tier]}
    if queue.value != row["queue"] and row["assigned_staff_id"] is not None:
        conn.execute(update(CASES).where(CASES.c.id == row["id"]).values(assigned_staff_id=None))
        conn.execute(
            update(CONTACTS)
            .where(CONTACTS.c.case_id == row["id"], CONTACTS.c.status == ContactStatus.pending)
            .values(assigned_staff_id=None)
        )
    if new_tier != row["tier"]:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from tasks.schedule import reschedule_for_tier_change

        # The new cadence runs from today (the unit's date): this is a person's decision, taken now.
        reschedule_for_tier_change(
            conn,
            {row["id"]: (Tier(row["tier"]), Tier(new_tier))},
            changed_on=datetime.now(ZoneInfo(timezone)).date(),
            policy=policy,
            timezone=timezone,
        )
    audit.record(
        conn,
        actor=by,
        action="override",
        entity="cases",
        entity_id=case_ref,
        details={
            "from": {"queue": row["queue"], "tier": row["tier"], "decided_by": row["decided_by"]},
            "change": change,
        },
        reason=reason,
        cipher=cipher,
    )
    return change, int(row["id"])


def close_case(
    conn: Connection, case_ref: str, *, outcome: str, by: str, reason: str | None, policy: Policy, cipher: FieldCipher
) -> int:
    """Close a case with an outcome from the policy; its pending contacts are cancelled. Returns how many."""
    casework_lock(conn, "case close")
    if outcome not in policy.outcomes:
        raise OperatorError(f"unknown outcome {outcome!r}; the policy allows: {', '.join(policy.outcomes)}")
    row = _case(conn, case_ref)
    if row["status"] == CaseStatus.closed:
        raise OperatorError(f"case {case_ref} is already closed")
    now = utcnow()
    conn.execute(
        update(CASES).where(CASES.c.id == row["id"]).values(status=CaseStatus.closed, closed_at=now, outcome=outcome)
    )
    cancelled = conn.execute(
        update(CONTACTS)
        .where(CONTACTS.c.case_id == row["id"], CONTACTS.c.status == ContactStatus.pending)
        .values(status=ContactStatus.cancelled)
    ).rowcount
    audit.record(
        conn,
        actor=by,
        action="close",
        entity="cases",
        entity_id=case_ref,
        details={"outcome": outcome, "queue": row["queue"], "tier": row["tier"], "contacts_cancelled": cancelled},
        reason=reason,
        cipher=cipher,
        at=now,
    )
    return int(cancelled or 0)


def queue_list(conn: Connection, *, queue: Queue | None, force: str | None) -> dict[str, list[dict[str, Any]]]:
    """Open cases in priority order; for the unit, also the partner cases its capacity turned away."""
    c = CASES.c
    # A worker is named by the staff code people see in alerts and `contact list`, not only by its internal id.
    columns = (
        c.case_ref,
        c.force,
        c.tier,
        c.queue,
        c.opened_on,
        c.turned_away_for_capacity,
        c.assigned_staff_id,
        STAFF.c.staff_code,
    )
    assigned = CASES.outerjoin(STAFF, STAFF.c.id == c.assigned_staff_id)
    stmt = select(*columns).select_from(assigned).where(c.status == CaseStatus.open).order_by(*MOST_URGENT_FIRST)
    if queue is not None:
        stmt = stmt.where(c.queue == queue.value)
    if force is not None:
        stmt = stmt.where(c.force == force)
    out = {"cases": [_listed(r) for r in conn.execute(stmt)]}
    if queue is Queue.unit:
        turned = (
            select(*columns)
            .select_from(assigned)
            # Every case the unit's criteria took and its capacity turned away, whatever its tier: the policy
            # may take medium cases with some markers (take_markers_at_medium), and those are pulled in too.
            .where(c.status == CaseStatus.open, c.turned_away_for_capacity, c.queue != Queue.unit.value)
            .order_by(c.opened_on, c.case_ref)
        )
        if force is not None:
            turned = turned.where(c.force == force)
        out["turned_away_for_capacity"] = [_listed(r) for r in conn.execute(turned)]
    return out


def _listed(row: Any) -> dict[str, Any]:
    return {
        "case_ref": row.case_ref,
        "force": row.force,
        "tier": row.tier,
        "queue": row.queue,
        "opened_on": row.opened_on.isoformat(),
        "turned_away_for_capacity": row.turned_away_for_capacity,
        "assigned_staff_id": row.assigned_staff_id,
        "assigned_to": row.staff_code,
    }
