"""Missed deadlines: one query finds every overdue contact; the escalation rule decides each one's level.

The decision and its outbox row are written in one transaction; the dedupe
key (contact + level) means no run, rerun or second monitor ever queues the
same alert twice, and nobody is told twice about the same thing at the same level.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, and_, func, select

from iasu import wiring
from iasu.policy import get_policy
from iasu.settings import get_settings
from models import Alert, Case, Contact, Staff
from models.types import utcnow
from rules.calendar import WorkingCalendar, calendars
from rules.clock import end_of_day
from rules.codes import ContactStatus, Force, Queue
from rules.escalation import channel_for, dedupe_key, escalation_level
from rules.policy import Policy
from tasks.outbox import outbox_row, queue_alert

ALERTS = Alert.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]


@dataclass
class MonitorResult:
    """Overdue contacts by level, and the alerts this run queued."""

    overdue: dict[str, int] = field(default_factory=lambda: {"1": 0, "2": 0, "3": 0})
    queued: int = 0
    by_queue: dict[str, int] = field(default_factory=dict)
    by_queue_level: dict[str, dict[str, int]] = field(default_factory=dict)  # each queue's digest: its own levels


def overdue_query(now: datetime) -> Any:
    """Every pending contact past its due time, with what an alert needs: one statement, an index range scan."""
    c, k, s = CONTACTS.c, CASES.c, STAFF.c
    return (
        select(
            c.id,
            c.kind,
            c.due_at,
            c.original_due_at,
            c.completed_at,
            k.id.label("case_id"),
            k.case_ref,
            k.force,
            k.queue,
            k.tier,
            s.staff_code,
            s.slack_user_id,
        )
        .join(CASES, k.id == c.case_id)
        .outerjoin(STAFF, and_(s.id == c.assigned_staff_id, s.active))
        .where(c.status == ContactStatus.pending, c.due_at < now)
        .order_by(c.due_at, c.id)
    )


def monitor(conn: Connection, *, policy: Policy, run_date: date, timezone: str) -> MonitorResult:
    """Find every missed contact as of the end of the run date and queue its alert at its current level."""
    result = MonitorResult()
    # The outbox copies the alerts in as they are built; the counts in result are complete once it returns.
    result.queued = queue_alert(
        conn, _missed_alerts(conn, policy=policy, run_date=run_date, timezone=timezone, into=result)
    )
    return result


def _missed_alerts(
    conn: Connection, *, policy: Policy, run_date: date, timezone: str, into: MonitorResult
) -> Iterator[dict[str, Any]]:
    """The outbox row of each missed contact at its current level, counting each into `into` by level and queue."""
    now = end_of_day(run_date, timezone)
    cals = calendars(policy, timezone)
    created = utcnow()
    # Contacts fall due at the end of a working day, so a night's tens of thousands of overdue contacts
    # share a handful of due instants: each (force, due, completed) is decided once, not once per contact.
    decided: dict[tuple[str, datetime, datetime | None], tuple[int, str, int]] = {}
    channels: dict[tuple[int, str, str], str] = {}
    # The whole result is on the client once executed (not a server-side cursor), so it can be read
    # while the outbox copies rows in over the same connection.
    for (
        contact_id,
        kind,
        due_at,
        original_due_at,
        completed_at,
        case_id,
        case_ref,
        force,
        queue,
        tier,
        staff_code,
        slack_user_id,
    ) in conn.execute(overdue_query(now)):
        key = (force, due_at, completed_at)
        decision = decided.get(key)
        if decision is None:
            decision = decided[key] = _decide(due_at, completed_at, now, cals[Force(force)], policy, run_date)
        level, due_local, working_days_late = decision
        if level == 0:
            continue
        into.overdue[str(level)] += 1
        into.by_queue[queue] = into.by_queue.get(queue, 0) + 1
        levels = into.by_queue_level.setdefault(queue, {"1": 0, "2": 0, "3": 0})
        levels[str(level)] += 1
        channel = channels.get((level, queue, force))
        if channel is None:
            channel = channels[(level, queue, force)] = channel_for(
                level, queue_channel=policy.queues[Queue(queue)].channel, force=Force(force), policy=policy
            )
        yield outbox_row(
            "missed_contact",
            dedupe_key(contact_id, level, due_at=due_at, original_due_at=original_due_at),
            channel,
            {
                "case_ref": case_ref,
                "kind": kind,
                "queue": queue,
                "tier": tier,
                "level": level,
                "due_local": due_local,
                "working_days_late": working_days_late,
                "staff_code": staff_code,
                "slack_user_id": slack_user_id if level == 1 else None,
            },
            level=level,
            case_id=case_id,
            contact_id=contact_id,
            created_at=created,
        )


def _decide(
    due_at: datetime, completed_at: datetime | None, now: datetime, cal: WorkingCalendar, policy: Policy, run_date: date
) -> tuple[int, str, int]:
    """A contact's escalation level, local due time as shown, and working days late (the last two only if missed)."""
    level = escalation_level(due_at, completed_at, now, cal, policy)
    if level == 0:
        return 0, "", 0
    due_local = due_at.astimezone(ZoneInfo(cal.timezone)).strftime("%a %d %b %Y %H:%M")
    return level, due_local, cal.working_days_between(cal.local_date(due_at), run_date)


def queue_digests(
    conn: Connection, *, policy: Policy, run_date: date, result: MonitorResult, due_today: Mapping[str, int]
) -> int:
    """One digest per queue for the night: its own overdue contacts by level, and its contacts due today."""
    created = utcnow()
    rows = [
        outbox_row(
            "digest",
            # Named by queue as well: queues may share a channel, and each digest says its own queue's counts.
            f"digest:{config.channel}:{queue.value}:{run_date.isoformat()}",
            config.channel,
            {
                "date": run_date.isoformat(),
                "queue": queue.value,
                "overdue_by_level": result.by_queue_level.get(queue.value, {"1": 0, "2": 0, "3": 0}),
                "overdue_by_queue": {queue.value: result.by_queue.get(queue.value, 0)},
                "due_today": due_today.get(queue.value, 0),
            },
            created_at=created,
        )
        for queue, config in sorted(policy.queues.items())
    ]
    return queue_alert(conn, rows)


def quarantine_alerts(policy: Policy, run_date: date, quarantined: int) -> list[dict[str, Any]]:
    """The ops alert for a night that quarantined more rows than the policy's threshold, or none."""
    if quarantined <= policy.alerts.quarantine_ops_threshold:
        return []
    payload = {"event": "quarantine_above_threshold", "date": run_date.isoformat(), "rows": quarantined}
    return [outbox_row("ops", f"ops:quarantine:{run_date.isoformat()}", policy.ops_channel, payload)]


@task(name="monitor-deadlines", cache_policy=NO_CACHE)
def monitor_deadlines(run_date: date, quarantined: int) -> dict[str, Any]:
    """Find missed contacts set-based, queue their alerts at the right level, and the night's digests."""
    from tasks.night import created_by_the_night, night_began
    from tasks.schedule import due_today_by_queue

    settings, policy = get_settings(), get_policy()
    with wiring.engine().begin() as conn:
        result = monitor(conn, policy=policy, run_date=run_date, timezone=settings.timezone)
        due_today = due_today_by_queue(conn, run_date=run_date, timezone=settings.timezone)
        queued = result.queued + queue_digests(
            conn, policy=policy, run_date=run_date, result=result, due_today=due_today
        )
        queued += queue_alert(conn, quarantine_alerts(policy, run_date, quarantined))
        # Everything queued tonight counts: new high-risk cases, held files and unassigned cases as well, and
        # what the night's attempts that failed since it last completed queued (this run does not queue it
        # again). Found through the index on creation time, not by reading every night's alerts.
        created = ALERTS.c.created_at
        queued = conn.execute(
            select(func.count())
            .select_from(ALERTS)
            .where(created >= night_began(run_date), created_by_the_night(run_date, created))
        ).scalar_one()
    get_run_logger().info(
        "overdue contacts: level 1 %d, level 2 %d, level 3 %d; %d alert(s) queued",
        result.overdue["1"],
        result.overdue["2"],
        result.overdue["3"],
        queued,
    )
    return {"overdue": result.overdue, "queued": queued, "by_queue": result.by_queue}
