"""Scheduling: every open case has exactly its next contact of each applicable kind, assigned to active staff.

Set-based and self-healing: one query reads the open cases lacking a pending
contact of some kind that applies to them, one reads their contacts' state;
the cadence rules say what is missing; missing contacts are inserted in bulk.
Completing a contact (feed or CLI) only marks it done: the next one is created
here, by the same rules, so there is one place that decides what is due.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update
from sqlalchemy import case as sql_case

from iasu import wiring
from iasu.policy import get_policy
from iasu.settings import get_settings
from models import Case, Contact, Staff
from models.types import utcnow
from rules.assignment import Worker, allot, free_places
from rules.cadence import applicable_kinds, initial_contacts, next_after_completion
from rules.calendar import WorkingCalendar, calendars
from rules.codes import CaseStatus, ContactKind, ContactStatus, Force, Queue, Tier
from rules.policy import Policy
from tasks import audit
from tasks.audit import AUDIT
from tasks.bulk import copy_insert, one_of, update_rows
from tasks.cases import MOST_URGENT_FIRST, TIER_ORDER
from tasks.collector import gc_paused
from tasks.locks import casework_lock
from tasks.outbox import outbox_row, queue_alert
from tasks.report import CASE_REFS_SHOWN

CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]


@dataclass
class Assignment:
    """What one assignment pass did: cases given, and the cases still waiting (their count, the first few)."""

    assigned: int = 0
    waiting: int = 0
    first_waiting: list[str] = field(default_factory=list)  # case references, most urgent first


@dataclass
class ScheduleResult:
    """What one scheduling pass did: counts, and the assignment of waiting cases."""

    scheduled: int = 0
    cancelled: int = 0
    assignment: Assignment = field(default_factory=Assignment)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "scheduled": self.scheduled,
            "cancelled": self.cancelled,
            "assigned": self.assignment.assigned,
            "unassigned": self.assignment.first_waiting,  # the first few, for the report
            "unassigned_count": self.assignment.waiting,
        }


def _cancel_stale(conn: Connection, policy: Policy) -> int:
    """Pending contacts that no longer apply: the case closed, or check-ins for a case now outside the unit."""
    c = CONTACTS.c
    closed = select(CASES.c.id).where(CASES.c.status == CaseStatus.closed)
    no_checkins = select(CASES.c.id).where(
        CASES.c.queue.not_in([q.value for q in policy.contacts.perpetrator_checkin_queues])
    )
    n = conn.execute(
        update(CONTACTS)
        .where(c.status == ContactStatus.pending, c.case_id.in_(closed))
        .values(status=ContactStatus.cancelled)
    ).rowcount
    n += conn.execute(
        update(CONTACTS)
        .where(c.status == ContactStatus.pending, c.kind == ContactKind.perpetrator_checkin, c.case_id.in_(no_checkins))
        .values(status=ContactStatus.cancelled)
    ).rowcount
    return int(n or 0)


def missing_contacts(
    case: Any,
    state: dict[str, tuple[bool, datetime | None]],
    *,
    run_date: date,
    policy: Policy,
    cal: WorkingCalendar,
) -> list[tuple[ContactKind, datetime]]:
    """The contacts an open case should have pending but does not (state: kind -> (pending?, last completed))."""
    tier, queue = Tier(case.tier), Queue(case.queue)
    wanted: list[tuple[ContactKind, datetime]] = []
    initial = dict(initial_contacts(tier, queue, case.opened_on, policy, cal))
    for kind in applicable_kinds(queue, policy):
        pending, last_done = state.get(kind.value, (False, None))
        if pending:
            continue
        if kind is ContactKind.victim_first_contact:
            if kind.value not in state:  # never scheduled: the first contact after opening
                wanted.append((kind, initial[kind]))
        elif kind is ContactKind.victim_followup:
            first = state.get(ContactKind.victim_first_contact.value)
            base_kind, done = (
                (kind, last_done) if last_done else (ContactKind.victim_first_contact, first[1] if first else None)
            )
            if done is not None:
                nxt = next_after_completion(base_kind, tier, queue, cal.local_date(done), policy, cal)
                if nxt is not None:
                    wanted.append(nxt)
        elif kind is ContactKind.perpetrator_checkin:
            if last_done is not None:
                nxt = next_after_completion(kind, tier, queue, cal.local_date(last_done), policy, cal)
                if nxt is not None:
                    wanted.append(nxt)
            else:
                # First check-in: from the day the case opened, or from tonight if it came into the unit later.
                start = case.opened_on if kind.value not in state and case.opened_on >= run_date else run_date
                own = dict(initial_contacts(tier, queue, start, policy, cal))
                if kind in own:
                    wanted.append((kind, own[kind]))
    return wanted


def lacking_a_contact(policy: Policy) -> ColumnElement[bool]:
    """Of a case: it may want a contact, since a kind that applies to its queue has none pending.

    For the first contact, none at all: a case has one, whatever came of it. missing_contacts wants nothing
    of any other case, so the night fetches and decides these, not every open case: a case between its
    contacts (most of a unit's caseload) costs the server a look in the pending contacts' index, and Python
    nothing.
    """
    k, c = CASES.c, CONTACTS.c
    lacking = []
    for kind in ContactKind:
        queues = [q.value for q in Queue if kind in applicable_kinds(q, policy)]
        held = select(c.id).where(c.case_id == k.id, c.kind == kind.value)
        if kind is not ContactKind.victim_first_contact:
            held = held.where(c.status == ContactStatus.pending)
        lacking.append(and_(k.queue.in_(queues), ~held.exists()))
    return or_(*lacking)


def _contact_state(conn: Connection, case_ids: list[int]) -> dict[int, dict[str, tuple[bool, datetime | None]]]:
    """Per case and kind: whether one is pending, and when the series' last one was done.

    A series cancelled since its last completion (check-ins stop when a case leaves the unit) has no last
    completion: if the case comes back, its check-ins start again from that night, not from a completion
    weeks ago, whose next check-in would be long overdue before it existed.
    """
    c = CONTACTS.c
    pending = func.max(sql_case((c.status == ContactStatus.pending, 1), else_=0))
    cancelled = func.max(sql_case((c.status == ContactStatus.cancelled, c.created_at), else_=None))
    stmt = (
        select(
            c.case_id,
            c.kind,
            pending.label("pending"),
            func.max(c.completed_at).label("last_done"),
            cancelled.label("last_cancelled"),
        )
        .where(one_of(conn, c.case_id, case_ids))
        .group_by(c.case_id, c.kind)
    )
    state: dict[int, dict[str, tuple[bool, datetime | None]]] = defaultdict(dict)
    for row in conn.execute(stmt):
        last, stopped = _aware(row.last_done), _aware(row.last_cancelled)
        if last is not None and stopped is not None and stopped > last:
            last = None
        state[row.case_id][row.kind] = (bool(row.pending), last)
    return state


def _aware(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):  # SQLite hands aggregates back untyped
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=utcnow().tzinfo)
    return value


def assign_unassigned(
    conn: Connection,
    *,
    policy: Policy,
    actor: str,
    now: datetime,
    on: date,
    cause: str = "night",
    summarise: bool = True,
) -> Assignment:
    """Give each open unassigned case to the least-loaded eligible worker (deterministic); summarise the rest.

    summarise=False leaves out the ops alert of the cases still waiting (the caller reports its own).
    """
    s, k = STAFF.c, CASES.c
    load: dict[int, int] = dict(
        conn.execute(
            select(k.assigned_staff_id, func.count())
            .where(k.status == CaseStatus.open, k.assigned_staff_id.is_not(None))
            .group_by(k.assigned_staff_id)
        ).all()
    )
    workers: dict[tuple[str, str], list[Worker]] = defaultdict(list)  # by (queue, force)
    for w in conn.execute(select(s.id, s.staff_code, s.queue, s.force, s.capacity).where(s.active, s.role == "worker")):
        workers[(w.queue, w.force)].append(Worker(w.id, w.staff_code, int(load.get(w.id, 0)), w.capacity))
    room = {group: n for group, ws in workers.items() if (n := free_places(ws))}
    waiting = and_(k.status == CaseStatus.open, k.assigned_staff_id.is_(None))
    taken: list[Any] = []  # most urgent first, across groups
    if room:
        # Only the cases the roster has room for come back: each group's first ones, most urgent first. A
        # unit whose workers are full does not fetch and re-sort its whole waiting list every night.
        in_group = [(k.queue == q) & (k.force == f) for q, f in room]
        ranked = (
            select(
                k.id,
                k.case_ref,
                k.queue,
                k.force,
                TIER_ORDER.label("tier_order"),
                k.opened_on,
                func.row_number().over(partition_by=(k.queue, k.force), order_by=MOST_URGENT_FIRST).label("place"),
                sql_case(*zip(in_group, room.values(), strict=True), else_=0).label("room"),
            )
            .where(waiting, or_(*in_group))
            .subquery()
        )
        r = ranked.c
        taken = list(
            conn.execute(select(ranked).where(r.place <= r.room).order_by(r.tier_order, r.opened_on, r.case_ref))
        )
    by_group: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for case in taken:
        by_group[(case.queue, case.force)].append(case)
    worker_of = {case.id: worker for group, cases in by_group.items() for case, worker in allot(cases, workers[group])}
    chosen = [
        {"cid": case.id, "sid": worker_of[case.id].id, "ref": case.case_ref, "code": worker_of[case.id].code}
        for case in taken
        if case.id in worker_of
    ]
    if chosen:
        # Set-based, not a statement per case: the night after a roster is loaded, or a backlog is taken in,
        # assigns every waiting case the roster has room for, tens of thousands at national scale.
        update_rows(conn, CASES, "id", ({"id": c["cid"], "assigned_staff_id": c["sid"]} for c in chosen))
        update_rows(
            conn,
            CONTACTS,
            "case_id",
            ({"case_id": c["cid"], "assigned_staff_id": c["sid"]} for c in chosen),
            where=CONTACTS.c.status == ContactStatus.pending,
        )
        copy_insert(
            conn,
            AUDIT,
            (
                audit.event(
                    at=now,
                    actor=actor,
                    action="assign",
                    entity="cases",
                    entity_id=c["ref"],
                    details={"staff_code": c["code"]},
                )
                for c in chosen
            ),
        )
    # The cases still unassigned now are the ones nobody had room for: counted and the first few named.
    left_by: Counter[tuple[str, str]] = Counter(
        {
            (row.queue, row.force): int(row.n)
            for row in conn.execute(
                select(k.queue, k.force, func.count().label("n")).where(waiting).group_by(k.queue, k.force)
            )
        }
    )
    outcome = Assignment(assigned=len(chosen), waiting=left_by.total())
    if outcome.waiting:
        refs = select(k.case_ref).where(waiting).order_by(*MOST_URGENT_FIRST).limit(CASE_REFS_SHOWN)
        outcome.first_waiting = list(conn.execute(refs).scalars())
        if summarise:
            _ops_alert_for_unassigned(conn, outcome, left_by, policy=policy, now=now, on=on, cause=cause)
    return outcome


def _ops_alert_for_unassigned(
    conn: Connection,
    outcome: Assignment,
    by_queue: Counter[tuple[str, str]],
    *,
    policy: Policy,
    now: datetime,
    on: date,
    cause: str,
) -> None:
    """Queue one ops alert summarising the cases nobody could take: counts per queue and force, the first refs."""
    # One summary per day and cause, not one alert per case: a national night can leave tens of thousands
    # unassigned, and a case still waiting is named again the next night rather than alerted once and forgotten.
    queue_alert(
        conn,
        [
            outbox_row(
                "ops",
                f"ops:unassigned:{on.isoformat()}:{cause}",
                policy.ops_channel,
                {
                    "event": "cases_unassigned",
                    "date": on.isoformat(),
                    "cases": outcome.waiting,
                    "by_queue": {f"{q}/{f}": n for (q, f), n in sorted(by_queue.items())},
                    "case_refs": outcome.first_waiting,
                },
                created_at=now,
            )
        ],
    )


@gc_paused
def schedule(
    conn: Connection,
    *,
    policy: Policy,
    run_date: date,
    actor: str,
    timezone: str,
    case_ids: Iterable[int] | None = None,
) -> ScheduleResult:
    """Cancel contacts that no longer apply, assign cases, and create every missing next contact."""
    casework_lock(conn, "scheduling")
    now = utcnow()
    case_ids = None if case_ids is None else list(case_ids)  # read twice below: a generator would be empty
    result = ScheduleResult(cancelled=_cancel_stale(conn, policy))
    if case_ids is None:
        result.assignment = assign_unassigned(conn, policy=policy, actor=actor, now=now, on=run_date)
    cals = calendars(policy, timezone)
    k = CASES.c
    cases_q = select(k.id, k.case_ref, k.force, k.tier, k.queue, k.opened_on, k.assigned_staff_id).where(
        k.status == CaseStatus.open, lacking_a_contact(policy)
    )
    if case_ids is not None:
        cases_q = cases_q.where(one_of(conn, k.id, case_ids))
    cases = conn.execute(cases_q).all()
    state = _contact_state(conn, [case.id for case in cases]) if cases else {}
    new_rows: list[dict[str, Any]] = []
    # missing_contacts reads only these of a case: a night's new cases share a few dozen combinations.
    decided: dict[tuple[Any, ...], list[tuple[ContactKind, datetime]]] = {}
    for case in cases:
        known = state.get(case.id, {})
        key = (case.force, case.tier, case.queue, case.opened_on, tuple(sorted(known.items())))
        wanted = decided.get(key)
        if wanted is None:
            wanted = decided[key] = missing_contacts(
                case, known, run_date=run_date, policy=policy, cal=cals[Force(case.force)]
            )
        for kind, due in wanted:
            new_rows.append(
                {
                    "case_id": case.id,
                    "kind": kind.value,
                    "due_at": due,
                    "original_due_at": due,
                    "status": ContactStatus.pending,
                    "assigned_staff_id": case.assigned_staff_id,
                    "attempts": 0,
                    "created_at": now,
                }
            )
    copy_insert(conn, CONTACTS, new_rows)
    result.scheduled = len(new_rows)
    return result


def _run_day(run_date: date, timezone: str) -> tuple[datetime, datetime]:
    """The run date as instants: after the end of the day before, up to its own end (local)."""
    from rules.clock import end_of_day

    return end_of_day(date.fromordinal(run_date.toordinal() - 1), timezone), end_of_day(run_date, timezone)


def _due_on(run_date: date, timezone: str) -> ColumnElement[bool]:
    """A contact still pending and due on the run date (local): the night's counts and lists all mean this."""
    c = CONTACTS.c
    start, end = _run_day(run_date, timezone)
    return and_(c.status == ContactStatus.pending, c.due_at > start, c.due_at <= end)


def contact_counts(conn: Connection, *, run_date: date, timezone: str) -> dict[str, int]:
    """Pending contacts in all, and those due on the run date (local)."""
    c = CONTACTS.c
    row = conn.execute(
        select(
            func.count().filter(c.status == ContactStatus.pending),
            func.count().filter(_due_on(run_date, timezone)),
        )
    ).one()
    return {"open_contacts": int(row[0]), "due_today": int(row[1])}


def due_today_by_queue(conn: Connection, *, run_date: date, timezone: str) -> dict[str, int]:
    """Pending contacts due on the run date (local), per queue of their case: each queue's digest says its own."""
    c, k = CONTACTS.c, CASES.c
    rows = conn.execute(
        select(k.queue, func.count())
        .join(CASES, k.id == c.case_id)
        .where(_due_on(run_date, timezone))
        .group_by(k.queue)
    )
    return {queue: int(n) for queue, n in rows}


DUE_LIST_LIMIT = 50  # per queue in the night's artifact; the rest are counted


def due_list(conn: Connection, *, run_date: date, timezone: str) -> dict[str, dict[str, Any]]:
    """Contacts due on the run date, per queue: how many, and the soonest with local due time and worker's code."""
    c, k, s = CONTACTS.c, CASES.c, STAFF.c
    soonest = (c.due_at, k.case_ref, c.kind)
    ranked = (
        select(
            k.queue,
            k.case_ref,
            c.kind,
            c.due_at,
            s.staff_code,
            func.row_number().over(partition_by=k.queue, order_by=soonest).label("place"),
            func.count().over(partition_by=k.queue).label("due"),
        )
        .join(CASES, k.id == c.case_id)
        .outerjoin(STAFF, s.id == c.assigned_staff_id)
        .where(_due_on(run_date, timezone))
        .subquery()
    )
    rows = conn.execute(select(ranked).where(ranked.c.place <= DUE_LIST_LIMIT).order_by(ranked.c.queue, ranked.c.place))
    # Staff read the list in the unit's own time: a 17:00 deadline in summer is 16:00 in UTC.
    zone = ZoneInfo(timezone)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        listed = out.setdefault(r.queue, {"due": int(r.due), "first": []})
        listed["first"].append(
            {
                "case_ref": r.case_ref,
                "kind": r.kind,
                "due_at": r.due_at.astimezone(zone).isoformat(),
                "staff_code": r.staff_code,
            }
        )
    return out


@task(name="schedule-contacts", cache_policy=NO_CACHE)
def schedule_contacts(run_date: date, actor: str, night_run_id: int) -> dict[str, Any]:
    """Assign cases and create every missing next victim contact and perpetrator check-in, on working days."""
    from tasks.night import stage_of_the_night

    tz = get_settings().timezone
    with wiring.engine().begin() as conn:
        result = schedule(conn, policy=get_policy(), run_date=run_date, actor=actor, timezone=tz)
        out = result.as_dict() | contact_counts(conn, run_date=run_date, timezone=tz)
        # The contacts a failed attempt of the night created are the night's too: this run finds none missing.
        out |= stage_of_the_night(conn, night_run_id, run_date, "scheduling", {"scheduled": result.scheduled})
        out["due_list"] = due_list(conn, run_date=run_date, timezone=tz)
    get_run_logger().info(
        "scheduled %d contact(s), cancelled %d, assigned %d case(s), %d with no eligible worker; %d open, %d due today",
        result.scheduled,
        result.cancelled,
        result.assignment.assigned,
        result.assignment.waiting,
        out["open_contacts"],
        out["due_today"],
    )
    return out


def reschedule_for_tier_change(
    conn: Connection,
    changes: dict[int, tuple[Tier, Tier]],
    *,
    changed_on: date,
    policy: Policy,
    timezone: str,
) -> int:
    """Move the pending contacts of cases whose tier changed (case id -> (old, new)) to the new cadence."""
    if not changes:
        return 0
    from rules.cadence import after_tier_change

    c, k = CONTACTS.c, CASES.c
    rows = conn.execute(
        select(c.id, c.kind, c.due_at, k.id.label("case_id"), k.force)
        .join(CASES, k.id == c.case_id)
        .where(c.status == ContactStatus.pending, one_of(conn, c.case_id, changes))
    ).all()
    cals = calendars(policy, timezone)
    moved = []
    for row in rows:
        old, new = changes[row.case_id]
        due = after_tier_change(
            ContactKind(row.kind), new, changed_on, row.due_at, policy, cals[Force(row.force)], old_tier=old
        )
        if due != row.due_at:
            moved.append({"id": row.id, "due_at": due})
    # One UPDATE joining the moved contacts: a serial perpetrator found in a backlog raises thousands of cases.
    update_rows(conn, CONTACTS, "id", moved)
    return len(moved)
