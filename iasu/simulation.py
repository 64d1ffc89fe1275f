"""The demo's staff and their behaviour: a roster, and each day's contacts feed written from what is due.

Synthetic, deterministic (seeded per contact), and written like a real feed,
so the night takes it in through the same validation and quarantine.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from iasu.privacy import FieldCipher
from models import Case, Contact
from rules.calendar import calendar_for
from rules.codes import ContactStatus, Force, Queue
from rules.policy import Policy
from tasks.adapters import FEED_PREFIX
from tasks.outcomes import FEED_COLUMNS
from tasks.staff import StaffEntry, save_staff

CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
WORKERS_PER_QUEUE = 2


@dataclass(frozen=True)
class Behaviour:
    """How staff deal with what is due: shares of contacts done on time, late, or never."""

    on_time: float = 0.82
    late: float = 0.08
    never: float = 0.06  # the rest are attempts with no answer first, then done
    late_by_working_days: int = 2


DEMO_ACTOR = "demo"


def claim_for_demo(conn: Connection) -> None:
    """Make sure the database is the demo's: empty (then marked as the demo's, audited) or marked so before.

    The demo writes synthetic people, cases and staff that the append-only audit log keeps for good: on a
    unit's real database they could never be taken out again.
    """
    from iasu.errors import OperatorError
    from models import Referral, Staff
    from tasks import audit
    from tasks.audit import AUDIT

    a = AUDIT.c
    staff_added = select(a.actor).where(a.action == "staff_add").distinct()
    if conn.execute(select(a.id).where(a.action == "demo_database").limit(1)).first() is not None:
        return
    # Made by a demo of a release before the mark: its staff were all added by the demo.
    if set(conn.execute(staff_added).scalars()) == {DEMO_ACTOR}:
        return
    held = [
        name
        for name, model in (("referrals", Referral), ("staff", Staff))
        if conn.execute(select(model.__table__.c.id).limit(1)).first() is not None  # type: ignore[union-attr]
    ]
    if held:
        raise OperatorError(
            f"this database holds {' and '.join(held)} the demo did not write: the demo's synthetic records could"
            " never be removed from it (the audit log keeps them); give the demo a database of its own"
            " (IASU_DATABASE_URL, e.g. the default sqlite:///var/iasu.db)"
        )
    audit.record(conn, actor=DEMO_ACTOR, action="demo_database", entity="database", entity_id=None, details={})


def ensure_roster(conn: Connection, *, cipher: FieldCipher, actor: str) -> int:
    """Two workers per queue and force, and a supervisor and a unit lead per force (idempotent)."""
    roster = []
    for force in Force:
        prefix = force.prefix
        for queue in Queue:
            for n in range(1, WORKERS_PER_QUEUE + 1):
                code = f"{prefix}-{queue.value[:3].upper()}-{n:02d}"
                roster.append(StaffEntry(code, queue, force, capacity=25))
        roster.append(StaffEntry(f"{prefix}-SUP-01", Queue.unit, force, role="supervisor"))
        roster.append(StaffEntry(f"{prefix}-LEAD-01", Queue.unit, force, role="lead"))
    changes = save_staff(conn, roster, cipher=cipher, actor=actor, lock_as="demo roster")
    return sum(change.added for change in changes)


def write_contacts_feed(
    conn: Connection, *, inbox: Path, day: date, policy: Policy, timezone: str, seed: int, behaviour: Behaviour
) -> Path | None:
    """Write inbox/<day>/contacts_<day>.csv from the contacts due by the end of `day` (kept if already written)."""
    path = inbox / day.isoformat() / f"{FEED_PREFIX}{day.isoformat()}.csv"
    if path.exists():  # a rerun of the demo takes in the same feed, so nothing is applied twice
        return path
    tz = ZoneInfo(timezone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    due = conn.execute(
        select(CONTACTS.c.id, CONTACTS.c.kind, CONTACTS.c.due_at, CONTACTS.c.attempts, CASES.c.case_ref, CASES.c.force)
        .join(CASES, CASES.c.id == CONTACTS.c.case_id)
        .where(CONTACTS.c.status == ContactStatus.pending, CONTACTS.c.due_at < end)
        .order_by(CONTACTS.c.due_at, CONTACTS.c.id)
    ).all()
    rows: list[dict[str, str]] = []
    for contact in due:
        cal = calendar_for(Force(contact.force), policy, timezone)
        if not cal.is_working_day(day):
            continue  # nobody works weekends or bank holidays
        draw = random.Random(f"{seed}:{contact.id}").random()
        due_day = cal.local_date(contact.due_at)
        if draw < behaviour.on_time:
            outcome, when = "completed", due_day
        elif draw < behaviour.on_time + behaviour.late:
            outcome, when = "completed", cal.add_working_days(due_day, behaviour.late_by_working_days)
        elif draw < behaviour.on_time + behaviour.late + behaviour.never:
            continue
        else:
            outcome, when = ("attempted_no_answer" if contact.attempts == 0 else "completed"), due_day
        when = max(when, due_day)
        if when > day or (when < day and outcome == "completed" and draw < behaviour.on_time):
            continue  # not yet; or an on-time contact from a day the feed already covered
        if when < day:
            when = day  # a late contact is reported the day it is finally done
        hour = 9 + int(draw * 1000) % 7
        rows.append(
            {
                "case_ref": contact.case_ref,
                "kind": contact.kind,
                "happened_at": datetime.combine(when, time(hour, (contact.id * 7) % 60), tzinfo=tz).isoformat(),
                "outcome": outcome,
                "new_date": "",
                "recorded_by": "",
            }
        )
    if not rows:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FEED_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_day_feed(inbox: Path, day: date, *, seed: int, behaviour: Behaviour) -> Path | None:
    """write_contacts_feed for `day` on the configured database, with the configured policy and clock."""
    from iasu import wiring
    from iasu.policy import get_policy
    from iasu.settings import get_settings

    with wiring.engine().begin() as conn:
        return write_contacts_feed(
            conn,
            inbox=inbox,
            day=day,
            policy=get_policy(),
            timezone=get_settings().timezone,
            seed=seed,
            behaviour=behaviour,
        )
