"""Missed-contact escalation: how far a missed contact has escalated, where that level is told, and its alert key."""

from __future__ import annotations

from datetime import UTC, datetime

from rules.calendar import WorkingCalendar
from rules.codes import Force
from rules.policy import Policy

LEVELS: tuple[int, ...] = (1, 2, 3)  # 1 the worker's team, 2 the force's supervisors, 3 the unit lead


def _require_aware(name: str, instant: datetime) -> None:
    # Comparing naive with aware instants raises deep inside a nightly run; fail with the argument named instead.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_level(level: int) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(str, LEVELS))}, not {level!r}")


def escalation_level(
    due_at: datetime, completed_at: datetime | None, now: datetime, cal: WorkingCalendar, policy: Policy
) -> int:
    """Escalation level of a contact at `now`: 0 not missed, 1 team, 2 supervisor, 3 unit lead."""
    _require_aware("due_at", due_at)
    _require_aware("now", now)
    if completed_at is not None:
        _require_aware("completed_at", completed_at)
    if now <= due_at:
        return 0
    # A contact completed late stops its escalation: once done, nobody need be told again.
    if completed_at is not None and completed_at <= now:
        return 0
    # Counted in local working days so a weekend or bank holiday does not hasten the supervisor's alert.
    elapsed = cal.working_days_between(cal.local_date(due_at), cal.local_date(now))
    if elapsed >= policy.escalation.level3_after_working_days:
        return 3
    if elapsed >= policy.escalation.level2_after_working_days:
        return 2
    return 1


def channel_for(level: int, *, queue_channel: str, force: Force, policy: Policy) -> str:
    """Slack channel id told of a missed contact at this escalation level."""
    _require_level(level)
    if level == 1:
        return queue_channel
    if level == 2:
        return policy.escalation.supervisor_channels[force]
    return policy.escalation.lead_channels[force]


def dedupe_key(contact_id: int, level: int, *, due_at: datetime, original_due_at: datetime) -> str:
    """Outbox key that allows one alert per contact, deadline and escalation level.

    A contact keeps its row when an unanswered attempt, a reschedule or a tier change moves its deadline;
    a missed new deadline is a new thing to tell, from the team up again, so the key names the deadline.
    The first deadline keeps the short key, the one alerts queued before deadlines were named carry.
    """
    _require_level(level)
    _require_aware("due_at", due_at)
    _require_aware("original_due_at", original_due_at)
    if due_at == original_due_at:
        return f"missed:{contact_id}:L{level}"
    return f"missed:{contact_id}:{due_at.astimezone(UTC):%Y%m%dT%H%MZ}:L{level}"
