"""Missed-contact escalation: levels by working days missed, where each level goes, and its dedupe key."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from iasu.policy import load_policy
from rules.calendar import calendar_for
from rules.codes import Force
from rules.escalation import channel_for, dedupe_key, escalation_level
from rules.policy import Policy

POLICY = load_policy(None)
CAL = calendar_for(Force.met, POLICY)
LONDON = ZoneInfo("Europe/London")


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """A London wall-clock instant."""
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


def due(y: int, m: int, d: int) -> datetime:
    """End of the working day on that date, as the scheduler stores it."""
    return CAL.due_at(date(y, m, d))


def with_levels(level2: int, level3: int) -> Policy:
    """The shipped policy with other escalation thresholds."""
    escalation = POLICY.escalation.model_copy(
        update={"level2_after_working_days": level2, "level3_after_working_days": level3}
    )
    return POLICY.model_copy(update={"escalation": escalation})


def test_the_shipped_policy_escalates_after_two_and_five_working_days() -> None:
    # The tables below are written against these thresholds.
    assert (POLICY.escalation.level2_after_working_days, POLICY.escalation.level3_after_working_days) == (2, 5)


@pytest.mark.parametrize(
    ("now", "level"),
    [
        (local(2026, 3, 2, 16, 59), 0),  # before the due time
        (local(2026, 3, 2, 17, 0), 0),  # exactly at the due time: not yet missed
        (local(2026, 3, 2, 17, 1), 1),  # a minute after
        (local(2026, 3, 2, 23, 59), 1),  # later the same day
        (local(2026, 3, 3), 1),  # Tue: 1 working day
        (local(2026, 3, 4), 2),  # Wed: 2
        (local(2026, 3, 5), 2),  # Thu: 3
        (local(2026, 3, 6), 2),  # Fri: 4
        (local(2026, 3, 9), 3),  # Mon: 5
        (local(2026, 4, 30), 3),  # long after: stays at the top level
    ],
)
def test_a_missed_contact_escalates_as_working_days_pass(now: datetime, level: int) -> None:
    assert escalation_level(due(2026, 3, 2), None, now, CAL, POLICY) == level


@pytest.mark.parametrize(
    ("now", "level"),
    [
        (local(2026, 3, 7), 1),  # Sat: 0 working days
        (local(2026, 3, 8, 20), 1),  # Sun: 0
        (local(2026, 3, 9), 1),  # Mon: 1
        (local(2026, 3, 10), 2),  # Tue: 2
        (local(2026, 3, 12), 2),  # Thu: 4
        (local(2026, 3, 13), 3),  # Fri: 5
    ],
)
def test_a_weekend_does_not_count_towards_escalation(now: datetime, level: int) -> None:
    assert escalation_level(due(2026, 3, 6), None, now, CAL, POLICY) == level


@pytest.mark.parametrize(
    ("due_at", "now", "level"),
    [
        # Due Fri 28 Aug; Mon 31 Aug is the summer bank holiday.
        (due(2026, 8, 28), local(2026, 8, 31), 1),
        (due(2026, 8, 28), local(2026, 9, 1), 1),  # Tue: 1 working day
        (due(2026, 8, 28), local(2026, 9, 2), 2),  # Wed: 2
        # Due Thu 24 Dec; Fri 25 and Mon 28 Dec (Boxing Day substitute) and Fri 1 Jan are holidays.
        (due(2026, 12, 24), local(2026, 12, 28), 1),  # 0 working days
        (due(2026, 12, 24), local(2026, 12, 29), 1),  # 1
        (due(2026, 12, 24), local(2026, 12, 30), 2),  # 2
        (due(2026, 12, 24), local(2027, 1, 4), 2),  # 29, 30, 31 Dec and 4 Jan: 4
        (due(2026, 12, 24), local(2027, 1, 5), 3),  # 5
    ],
)
def test_bank_holidays_do_not_count_towards_escalation(due_at: datetime, now: datetime, level: int) -> None:
    assert escalation_level(due_at, None, now, CAL, POLICY) == level


def test_working_days_are_counted_on_local_dates_not_utc_dates() -> None:
    # Due Mon 20 Jul 17:00 BST; 00:30 BST on Wed is still Tue in UTC, which would give one day, not two.
    now = local(2026, 7, 22, 0, 30)
    assert now.astimezone(UTC).date() == date(2026, 7, 21)
    assert escalation_level(due(2026, 7, 20), None, now, CAL, POLICY) == 2


@pytest.mark.parametrize(
    ("completed_at", "now", "level"),
    [
        (local(2026, 3, 2, 12), local(2026, 3, 9), 0),  # done on time
        (local(2026, 3, 3, 10), local(2026, 3, 3, 10), 0),  # done late, at this very instant
        (local(2026, 3, 3, 10), local(2026, 3, 9), 0),  # done late: escalation stops, even past level 3
        (local(2026, 3, 5, 10), local(2026, 3, 4), 2),  # recorded as done after `now`: still missed then
    ],
)
def test_a_completed_contact_stops_escalating(completed_at: datetime, now: datetime, level: int) -> None:
    assert escalation_level(due(2026, 3, 2), completed_at, now, CAL, POLICY) == level


@pytest.mark.parametrize(
    ("level2", "level3", "elapsed", "level"),
    [
        (2, 5, 1, 1),
        (2, 5, 2, 2),  # exactly N
        (2, 5, 4, 2),
        (2, 5, 5, 3),  # exactly M
        (1, 2, 0, 1),
        (1, 2, 1, 2),
        (1, 2, 2, 3),
        (3, 10, 9, 2),
        (3, 10, 10, 3),
    ],
)
def test_levels_change_exactly_at_the_policy_thresholds(level2: int, level3: int, elapsed: int, level: int) -> None:
    day = CAL.add_working_days(date(2026, 3, 2), elapsed)
    # With no working day elapsed, "now" must still be past the 17:00 due time.
    now = local(day.year, day.month, day.day, 18 if elapsed == 0 else 9)
    assert CAL.working_days_between(date(2026, 3, 2), day) == elapsed
    assert escalation_level(due(2026, 3, 2), None, now, CAL, with_levels(level2, level3)) == level


@pytest.mark.parametrize(
    ("due_at", "completed_at", "now"),
    [
        (datetime(2026, 3, 2, 17), None, local(2026, 3, 3)),
        (due(2026, 3, 2), None, datetime(2026, 3, 3, 9)),
        (due(2026, 3, 2), datetime(2026, 3, 3, 9), local(2026, 3, 3)),
    ],
    ids=["due_at", "now", "completed_at"],
)
def test_naive_datetimes_are_refused(due_at: datetime, completed_at: datetime | None, now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        escalation_level(due_at, completed_at, now, CAL, POLICY)


@pytest.mark.parametrize(
    ("level", "force", "channel"),
    [
        (1, Force.met, "C0IASUUNIT"),  # the queue's own channel, whatever the force
        (2, Force.met, "C0MPSUPER"),
        (3, Force.met, "C0MPLEAD"),
        (1, Force.cheshire, "C0IASUUNIT"),
        (2, Force.cheshire, "C0CHSUPER"),
        (3, Force.hampshire, "C0HALEAD"),
    ],
)
def test_each_level_goes_to_its_channel(level: int, force: Force, channel: str) -> None:
    assert channel_for(level, queue_channel="C0IASUUNIT", force=force, policy=POLICY) == channel


@pytest.mark.parametrize("level", [0, 4, -1])
def test_there_is_no_channel_for_a_level_outside_one_to_three(level: int) -> None:
    with pytest.raises(ValueError, match="level"):
        channel_for(level, queue_channel="C0IASUUNIT", force=Force.met, policy=POLICY)


FIRST_DUE = datetime(2026, 11, 2, 17, tzinfo=UTC)  # Mon 2 Nov 17:00 GMT
RETRY_DUE = datetime(2026, 11, 4, 17, tzinfo=UTC)  # an unanswered attempt moved it to Wed
BST_DUE = datetime(2026, 7, 20, 17, tzinfo=ZoneInfo("Europe/London"))  # 16:00 UTC


@pytest.mark.parametrize(
    ("contact_id", "level", "due_at", "original_due_at", "key"),
    [
        (42, 1, FIRST_DUE, FIRST_DUE, "missed:42:L1"),
        (42, 2, FIRST_DUE, FIRST_DUE, "missed:42:L2"),
        (7, 3, FIRST_DUE, FIRST_DUE, "missed:7:L3"),
        # the same instant written in another zone is the same deadline
        (7, 1, FIRST_DUE.astimezone(ZoneInfo("Europe/London")), FIRST_DUE, "missed:7:L1"),
        # a moved deadline is a new thing to tell: named in UTC, from level 1 again
        (42, 1, RETRY_DUE, FIRST_DUE, "missed:42:20261104T1700Z:L1"),
        (42, 3, RETRY_DUE, FIRST_DUE, "missed:42:20261104T1700Z:L3"),
        (9, 1, BST_DUE, FIRST_DUE, "missed:9:20260720T1600Z:L1"),
    ],
)
def test_the_dedupe_key_names_the_contact_the_level_and_a_moved_deadline(
    contact_id: int, level: int, due_at: datetime, original_due_at: datetime, key: str
) -> None:
    assert dedupe_key(contact_id, level, due_at=due_at, original_due_at=original_due_at) == key


def test_there_is_no_dedupe_key_for_level_zero() -> None:
    with pytest.raises(ValueError, match="level"):
        dedupe_key(42, 0, due_at=FIRST_DUE, original_due_at=FIRST_DUE)


def test_a_dedupe_key_needs_aware_deadlines() -> None:
    with pytest.raises(ValueError, match="due_at must be timezone-aware"):
        dedupe_key(42, 1, due_at=datetime(2026, 11, 4, 17), original_due_at=FIRST_DUE)


@pytest.mark.parametrize(
    ("threshold", "quarantined", "alerted"),
    [(20, 0, False), (20, 20, False), (20, 21, True), (20, 5000, True), (0, 0, False), (0, 1, True)],
)
def test_ops_hear_of_a_night_that_quarantined_more_rows_than_the_threshold(
    threshold: int, quarantined: int, alerted: bool
) -> None:
    from tasks.monitor import quarantine_alerts

    policy = POLICY.model_copy(
        update={"alerts": POLICY.alerts.model_copy(update={"quarantine_ops_threshold": threshold})}
    )
    rows = quarantine_alerts(policy, date(2026, 11, 17), quarantined)
    assert [(r["kind"], r["channel"], r["dedupe_key"], r["payload"]) for r in rows] == (
        [
            (
                "ops",
                POLICY.ops_channel,
                "ops:quarantine:2026-11-17",
                {"event": "quarantine_above_threshold", "date": "2026-11-17", "rows": quarantined},
            )
        ]
        if alerted
        else []
    )
