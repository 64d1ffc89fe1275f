"""Contact cadence under the shipped policy: first contacts, follow-ups, check-ins and their changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iasu.policy import load_policy
from rules.cadence import (
    after_tier_change,
    applicable_kinds,
    initial_contacts,
    next_after_completion,
    rescheduled,
    retry_after_no_answer,
)
from rules.calendar import WorkingCalendar
from rules.codes import ContactKind, Queue, Tier

POLICY = load_policy(None)
CAL = WorkingCalendar("ENG")
FIRST, FOLLOWUP, CHECKIN = (
    ContactKind.victim_first_contact,
    ContactKind.victim_followup,
    ContactKind.perpetrator_checkin,
)


def gmt(month: int, day: int) -> datetime:
    """17:00 London on a 2026 day in winter time."""
    return datetime(2026, month, day, 17, 0, tzinfo=UTC)


def bst(month: int, day: int) -> datetime:
    """17:00 London on a 2026 day in summer time."""
    return datetime(2026, month, day, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (Queue.unit, (FIRST, FOLLOWUP, CHECKIN)),
        (Queue.police_investigation, (FIRST, FOLLOWUP)),
        (Queue.victim_advocacy, (FIRST, FOLLOWUP)),
        (Queue.mental_health, (FIRST, FOLLOWUP)),
        (Queue.probation, (FIRST, FOLLOWUP)),
    ],
)
def test_only_unit_cases_get_perpetrator_checkins(queue: Queue, expected: tuple[ContactKind, ...]) -> None:
    assert applicable_kinds(queue, POLICY) == expected


# Opened Monday 2 March 2026; the clocks go forward on Sunday 29 March.
@pytest.mark.parametrize(
    ("tier", "queue", "expected"),
    [
        (Tier.high, Queue.unit, [(FIRST, gmt(3, 3)), (CHECKIN, gmt(3, 9))]),
        (Tier.medium, Queue.unit, [(FIRST, gmt(3, 5)), (CHECKIN, gmt(3, 16))]),
        (Tier.standard, Queue.unit, [(FIRST, gmt(3, 9)), (CHECKIN, bst(3, 30))]),
        (Tier.high, Queue.police_investigation, [(FIRST, gmt(3, 3))]),
        (Tier.medium, Queue.victim_advocacy, [(FIRST, gmt(3, 5))]),
        (Tier.standard, Queue.probation, [(FIRST, gmt(3, 9))]),
    ],
)
def test_a_new_case_starts_with_a_first_contact_and_a_checkin_only_in_the_unit(
    tier: Tier, queue: Queue, expected: list[tuple[ContactKind, datetime]]
) -> None:
    assert initial_contacts(tier, queue, date(2026, 3, 2), POLICY, CAL) == expected


@pytest.mark.parametrize(
    ("opened_on", "tier", "expected_first", "expected_checkin"),
    [
        (date(2026, 5, 22), Tier.high, bst(5, 26), bst(5, 29)),  # Friday before the spring bank holiday
        (date(2026, 3, 27), Tier.high, bst(3, 30), bst(4, 7)),  # check-in lands on Good Friday -> Tuesday
        (date(2026, 10, 23), Tier.high, gmt(10, 26), gmt(10, 30)),  # opened in BST, due after clocks go back
        (date(2026, 12, 18), Tier.medium, gmt(12, 23), gmt(1, 4).replace(year=2027)),  # 1 Jan -> Monday 4th
    ],
)
def test_initial_due_dates_step_over_weekends_and_bank_holidays(
    opened_on: date, tier: Tier, expected_first: datetime, expected_checkin: datetime
) -> None:
    assert initial_contacts(tier, Queue.unit, opened_on, POLICY, CAL) == [
        (FIRST, expected_first),
        (CHECKIN, expected_checkin),
    ]


# Completed Wednesday 4 March 2026.
@pytest.mark.parametrize(
    ("kind", "tier", "expected"),
    [
        (FIRST, Tier.high, (FOLLOWUP, gmt(3, 11))),
        (FIRST, Tier.medium, (FOLLOWUP, gmt(3, 18))),
        (FIRST, Tier.standard, (FOLLOWUP, bst(4, 1))),
        (FOLLOWUP, Tier.high, (FOLLOWUP, gmt(3, 11))),
        (FOLLOWUP, Tier.medium, (FOLLOWUP, gmt(3, 18))),
        (FOLLOWUP, Tier.standard, (FOLLOWUP, bst(4, 1))),
        (CHECKIN, Tier.high, (CHECKIN, gmt(3, 11))),
        (CHECKIN, Tier.medium, (CHECKIN, gmt(3, 18))),
        (CHECKIN, Tier.standard, (CHECKIN, bst(4, 1))),
    ],
)
def test_completing_a_contact_creates_the_next_at_the_tiers_cadence(
    kind: ContactKind, tier: Tier, expected: tuple[ContactKind, datetime]
) -> None:
    assert next_after_completion(kind, tier, Queue.unit, date(2026, 3, 4), POLICY, CAL) == expected


def test_a_followup_landing_on_good_friday_moves_to_the_tuesday() -> None:
    assert next_after_completion(FOLLOWUP, Tier.high, Queue.unit, date(2026, 3, 27), POLICY, CAL) == (
        FOLLOWUP,
        bst(4, 7),
    )


@pytest.mark.parametrize("queue", [q for q in Queue if q is not Queue.unit])
def test_checkins_stop_once_the_case_leaves_the_unit(queue: Queue) -> None:
    assert next_after_completion(CHECKIN, Tier.high, queue, date(2026, 3, 4), POLICY, CAL) is None
    assert next_after_completion(FOLLOWUP, Tier.high, queue, date(2026, 3, 4), POLICY, CAL) == (FOLLOWUP, gmt(3, 11))


def test_a_chain_of_followups_rolls_on_from_each_completion() -> None:
    ((kind, due),) = initial_contacts(Tier.medium, Queue.victim_advocacy, date(2026, 3, 2), POLICY, CAL)
    seen = []
    for _ in range(4):
        # Each contact is done on its due day, and only then is the next one created.
        step = next_after_completion(kind, Tier.medium, Queue.victim_advocacy, CAL.local_date(due), POLICY, CAL)
        assert step is not None
        kind, due = step
        seen.append((kind, due))
    assert seen == [
        (FOLLOWUP, gmt(3, 19)),
        (FOLLOWUP, bst(4, 2)),
        (FOLLOWUP, bst(4, 16)),
        (FOLLOWUP, bst(4, 30)),
    ]


@pytest.mark.parametrize(
    ("attempted_on", "expected"),
    [
        (date(2026, 3, 4), gmt(3, 5)),
        (date(2026, 3, 6), gmt(3, 9)),  # Friday -> Monday
        (date(2026, 5, 22), bst(5, 26)),  # Friday before a bank-holiday Monday -> Tuesday
        (date(2026, 12, 24), gmt(12, 29)),
    ],
)
def test_an_unanswered_attempt_is_due_again_the_next_working_day(attempted_on: date, expected: datetime) -> None:
    assert retry_after_no_answer(attempted_on, POLICY, CAL) == expected


@pytest.mark.parametrize(
    ("new_date", "expected"),
    [
        (date(2026, 3, 7), gmt(3, 9)),  # Saturday -> Monday
        (date(2026, 3, 8), gmt(3, 9)),  # Sunday -> Monday
        (date(2026, 3, 10), gmt(3, 10)),
        (date(2026, 8, 31), bst(9, 1)),  # bank holiday -> Tuesday
    ],
)
def test_a_rescheduled_contact_is_due_at_the_end_of_that_working_day(new_date: date, expected: datetime) -> None:
    assert rescheduled(new_date, CAL) == expected


@pytest.mark.parametrize(
    ("kind", "old_tier", "new_tier", "changed_on", "current_due", "expected"),
    [
        # Up: standard first contact opened Mon 2 Mar (due Mon 9th) becomes high on Wed 4th.
        (FIRST, Tier.standard, Tier.high, date(2026, 3, 4), gmt(3, 9), gmt(3, 5)),
        # Up, but the old due is already sooner than the new cadence from today: kept.
        (FIRST, Tier.medium, Tier.high, date(2026, 3, 5), gmt(3, 5), gmt(3, 5)),
        (FOLLOWUP, Tier.standard, Tier.high, date(2026, 3, 10), bst(4, 1), gmt(3, 17)),
        (CHECKIN, Tier.medium, Tier.high, date(2026, 3, 10), gmt(3, 18), gmt(3, 17)),
        (CHECKIN, Tier.standard, Tier.medium, date(2026, 3, 20), bst(4, 1), bst(4, 1)),
        # Same tier (a re-referral): an overdue or running deadline is not reset.
        (FIRST, Tier.high, Tier.high, date(2026, 3, 10), gmt(3, 3), gmt(3, 3)),
        (FOLLOWUP, Tier.medium, Tier.medium, date(2026, 3, 10), gmt(3, 18), gmt(3, 18)),
        # Down: recomputed plainly from the day of the change, later or earlier.
        (FIRST, Tier.high, Tier.standard, date(2026, 3, 2), gmt(3, 3), gmt(3, 9)),
        (FOLLOWUP, Tier.high, Tier.standard, date(2026, 3, 10), gmt(3, 11), bst(4, 7)),
        (CHECKIN, Tier.high, Tier.medium, date(2026, 3, 10), gmt(3, 11), gmt(3, 24)),
        (FOLLOWUP, Tier.medium, Tier.standard, date(2026, 3, 2), bst(6, 1), bst(3, 30)),
    ],
)
def test_a_tier_change_reschedules_sooner_going_up_and_plainly_going_down(
    kind: ContactKind, old_tier: Tier, new_tier: Tier, changed_on: date, current_due: datetime, expected: datetime
) -> None:
    assert after_tier_change(kind, new_tier, changed_on, current_due, POLICY, CAL, old_tier=old_tier) == expected


CALENDARS = st.sampled_from([WorkingCalendar("ENG"), WorkingCalendar("SCT"), WorkingCalendar("NIR")])
DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))
TIERS = st.sampled_from(list(Tier))
KINDS = st.sampled_from(list(ContactKind))
QUEUES = st.sampled_from(list(Queue))


def end_of_a_working_day(due: datetime, cal: WorkingCalendar) -> date:
    """The local day a due instant closes, after checking it is the end of a working day in UTC."""
    local_day = cal.local_date(due)
    assert cal.is_working_day(local_day)
    assert due == cal.due_at(local_day)
    assert due.tzinfo is UTC
    return local_day


@given(cal=CALENDARS, day=DAYS, later=DAYS, tier=TIERS, old_tier=TIERS, kind=KINDS, queue=QUEUES)
def test_no_computed_due_date_is_ever_on_a_non_working_day(
    cal: WorkingCalendar, day: date, later: date, tier: Tier, old_tier: Tier, kind: ContactKind, queue: Queue
) -> None:
    dues = [due for _, due in initial_contacts(tier, queue, day, POLICY, cal)]
    step = next_after_completion(kind, tier, queue, day, POLICY, cal)
    if step is not None:
        dues.append(step[1])
    dues += [retry_after_no_answer(day, POLICY, cal), rescheduled(day, cal)]
    for due in dues:
        assert end_of_a_working_day(due, cal) >= day
    # The current due may be any earlier one, so only the working-day property holds here.
    end_of_a_working_day(after_tier_change(kind, tier, day, cal.due_at(later), POLICY, cal, old_tier=old_tier), cal)


def test_due_times_follow_the_policys_end_of_working_day() -> None:
    cal = WorkingCalendar("ENG", end_of_day=time(16, 30))
    assert retry_after_no_answer(date(2026, 3, 4), POLICY, cal) == datetime(2026, 3, 5, 16, 30, tzinfo=UTC)


def test_each_kind_keeps_its_own_interval_and_a_no_answer_its_own_working_days() -> None:
    # The shipped policy gives follow-ups and check-ins the same intervals and retries after one working
    # day; a unit's own may differ, and each must be read from its own setting.
    contacts = POLICY.contacts.model_copy(
        update={
            "victim_followup_days": {Tier.high: 2, Tier.medium: 14, Tier.standard: 28},
            "perpetrator_checkin_days": {Tier.high: 12, Tier.medium: 14, Tier.standard: 28},
            "no_answer_retry_working_days": 3,
        }
    )
    policy = POLICY.model_copy(update={"contacts": contacts})
    done = date(2026, 3, 4)  # a Wednesday
    assert next_after_completion(FOLLOWUP, Tier.high, Queue.unit, done, policy, CAL) == (FOLLOWUP, gmt(3, 6))
    assert next_after_completion(CHECKIN, Tier.high, Queue.unit, done, policy, CAL) == (CHECKIN, gmt(3, 16))
    assert retry_after_no_answer(done, policy, CAL) == gmt(3, 9)  # Thursday, Friday, Monday
