"""Working days per jurisdiction and the end-of-day instants contacts fall due at."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iasu.policy import load_policy
from rules.calendar import WorkingCalendar, calendar_for
from rules.clock import last_ended_day
from rules.codes import Force

POLICY = load_policy(None)
ENG = WorkingCalendar("ENG")
WLS = WorkingCalendar("WLS")
SCT = WorkingCalendar("SCT")
NIR = WorkingCalendar("NIR")


@pytest.mark.parametrize(
    ("d", "working"),
    [
        (date(2026, 3, 6), True),  # Friday
        (date(2026, 3, 7), False),  # Saturday
        (date(2026, 3, 8), False),  # Sunday
        (date(2026, 3, 9), True),  # Monday
    ],
)
def test_weekends_are_not_working_days(d: date, working: bool) -> None:
    assert ENG.is_working_day(d) is working


ENGLAND_AND_WALES_2026 = [
    date(2026, 1, 1),
    date(2026, 4, 3),  # Good Friday
    date(2026, 4, 6),  # Easter Monday
    date(2026, 5, 4),
    date(2026, 5, 25),
    date(2026, 8, 31),
    date(2026, 12, 25),
    date(2026, 12, 28),  # Boxing Day falls on a Saturday: substitute Monday
]


@pytest.mark.parametrize("cal", [ENG, WLS], ids=["ENG", "WLS"])
@pytest.mark.parametrize("d", ENGLAND_AND_WALES_2026)
def test_england_and_wales_bank_holidays_2026_are_not_working_days(cal: WorkingCalendar, d: date) -> None:
    assert not cal.is_working_day(d)


@pytest.mark.parametrize(
    ("cal", "d", "working"),
    [
        (SCT, date(2026, 1, 2), False),  # 2 January is a Scottish bank holiday
        (ENG, date(2026, 1, 2), True),
        (SCT, date(2026, 4, 6), True),  # Easter Monday is not a Scottish bank holiday
        (ENG, date(2026, 4, 6), False),
        (SCT, date(2026, 8, 3), False),  # Scotland's summer holiday is the first Monday of August
        (ENG, date(2026, 8, 3), True),
        (SCT, date(2026, 8, 31), True),
        (NIR, date(2026, 3, 17), False),  # St Patrick's Day
        (NIR, date(2026, 7, 13), False),  # Battle of the Boyne (12 July is a Sunday): substitute Monday
        (ENG, date(2026, 7, 13), True),
    ],
)
def test_scotland_and_northern_ireland_have_their_own_bank_holidays(
    cal: WorkingCalendar, d: date, working: bool
) -> None:
    assert cal.is_working_day(d) is working


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 3, 9), date(2026, 3, 9)),  # already a working day
        (date(2026, 3, 7), date(2026, 3, 9)),  # Saturday -> Monday
        (date(2026, 4, 3), date(2026, 4, 7)),  # Good Friday -> Tuesday after Easter Monday
        (date(2026, 12, 25), date(2026, 12, 29)),
    ],
)
def test_a_non_working_day_moves_on_to_the_next_working_day(d: date, expected: date) -> None:
    assert ENG.on_or_after(d) == expected


@pytest.mark.parametrize(
    ("cal", "d", "n", "expected"),
    [
        (ENG, date(2026, 3, 9), 0, date(2026, 3, 9)),
        (ENG, date(2026, 3, 7), 0, date(2026, 3, 9)),  # zero days from a Saturday is Monday
        (ENG, date(2026, 3, 9), 1, date(2026, 3, 10)),
        (ENG, date(2026, 3, 6), 1, date(2026, 3, 9)),  # across a weekend
        (ENG, date(2026, 3, 7), 1, date(2026, 3, 9)),  # counting starts the day after a Saturday
        (ENG, date(2026, 3, 4), 5, date(2026, 3, 11)),
        (ENG, date(2026, 5, 22), 1, date(2026, 5, 26)),  # Friday before the spring bank holiday
        (ENG, date(2026, 4, 2), 1, date(2026, 4, 7)),  # across Easter
        (SCT, date(2026, 4, 2), 1, date(2026, 4, 6)),  # Scotland works Easter Monday
        (ENG, date(2026, 12, 24), 1, date(2026, 12, 29)),  # across Christmas
        (ENG, date(2026, 12, 24), 3, date(2026, 12, 31)),
        (ENG, date(2026, 12, 31), 1, date(2027, 1, 4)),  # across New Year and the weekend
        (SCT, date(2026, 12, 31), 1, date(2027, 1, 5)),  # 1 and 2 January substitutes in Scotland
        (ENG, date(2026, 12, 23), 5, date(2027, 1, 4)),
    ],
)
def test_working_days_are_counted_from_the_day_after(cal: WorkingCalendar, d: date, n: int, expected: date) -> None:
    assert cal.add_working_days(d, n) == expected


def test_a_negative_number_of_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ENG.add_working_days(date(2026, 3, 9), -1)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 1, 14), datetime(2026, 1, 14, 17, 0, tzinfo=UTC)),  # GMT
        (date(2026, 7, 15), datetime(2026, 7, 15, 16, 0, tzinfo=UTC)),  # BST
        (date(2026, 3, 27), datetime(2026, 3, 27, 17, 0, tzinfo=UTC)),  # Friday before the clocks go forward
        (date(2026, 3, 29), datetime(2026, 3, 30, 16, 0, tzinfo=UTC)),  # that Sunday -> Monday, in BST
        (date(2026, 10, 23), datetime(2026, 10, 23, 16, 0, tzinfo=UTC)),  # Friday before the clocks go back
        (date(2026, 10, 25), datetime(2026, 10, 26, 17, 0, tzinfo=UTC)),  # that Sunday -> Monday, in GMT
        (date(2026, 5, 23), datetime(2026, 5, 26, 16, 0, tzinfo=UTC)),  # Saturday before a bank-holiday Monday
    ],
)
def test_due_at_is_the_end_of_the_working_day_in_london_as_utc(d: date, expected: datetime) -> None:
    assert ENG.due_at(d) == expected
    assert ENG.due_at(d).tzinfo is UTC


def test_a_high_tier_case_opened_on_the_friday_before_a_clock_change_is_due_monday() -> None:
    assert ENG.due_at(ENG.add_working_days(date(2026, 3, 27), 1)) == datetime(2026, 3, 30, 16, 0, tzinfo=UTC)
    assert ENG.due_at(ENG.add_working_days(date(2026, 10, 23), 1)) == datetime(2026, 10, 26, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(2026, 1, 14, 23, 30, tzinfo=UTC), date(2026, 1, 14)),  # GMT: still the 14th
        (datetime(2026, 7, 14, 23, 30, tzinfo=UTC), date(2026, 7, 15)),  # BST: already the 15th
        (datetime(2026, 7, 15, 1, 0, tzinfo=timezone(timedelta(hours=2))), date(2026, 7, 15)),
    ],
)
def test_local_date_is_the_london_calendar_date_of_an_instant(instant: datetime, expected: date) -> None:
    assert ENG.local_date(instant) == expected


def test_local_date_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        ENG.local_date(datetime(2026, 7, 15, 12, 0))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 9), date(2026, 3, 9), 0),  # same day
        (date(2026, 3, 10), date(2026, 3, 9), 0),  # end before start
        (date(2026, 3, 9), date(2026, 3, 10), 1),  # start excluded, end included
        (date(2026, 3, 6), date(2026, 3, 8), 0),  # Friday to Sunday
        (date(2026, 3, 6), date(2026, 3, 9), 1),
        (date(2026, 3, 7), date(2026, 3, 14), 5),
        (date(2026, 4, 2), date(2026, 4, 7), 1),  # Easter
        (date(2026, 12, 24), date(2027, 1, 4), 4),  # 29, 30, 31 Dec and 4 Jan
        (date(2025, 12, 31), date(2027, 12, 31), 506),  # two whole years of England's working days
    ],
)
def test_working_days_between_excludes_start_and_includes_end(start: date, end: date, expected: int) -> None:
    assert ENG.working_days_between(start, end) == expected


DAYS_2026_2027 = st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31))
CALENDARS = st.sampled_from([ENG, SCT, NIR])


@given(cal=CALENDARS, start=DAYS_2026_2027, n=st.integers(min_value=1, max_value=40))
def test_working_days_between_undoes_add_working_days(cal: WorkingCalendar, start: date, n: int) -> None:
    assert cal.working_days_between(start, cal.add_working_days(start, n)) == n


@given(cal=CALENDARS, start=DAYS_2026_2027, span=st.integers(min_value=-5, max_value=400))
def test_working_days_between_agrees_with_counting_day_by_day(cal: WorkingCalendar, start: date, span: int) -> None:
    end = start + timedelta(days=span)
    walked = sum(1 for i in range(1, span + 1) if cal.is_working_day(start + timedelta(days=i)))
    assert cal.working_days_between(start, end) == walked


@pytest.mark.parametrize("force", list(Force))
def test_each_pilot_force_works_to_england_and_wales_at_five_pm(force: Force) -> None:
    assert calendar_for(force, POLICY) == WorkingCalendar("ENG", "Europe/London", time(17, 0))


def test_calendar_for_follows_the_policy() -> None:
    policy = POLICY.model_copy(
        update={
            "forces": {**POLICY.forces, Force.met: POLICY.forces[Force.met].model_copy(update={"jurisdiction": "SCT"})},
            "contacts": POLICY.contacts.model_copy(update={"end_of_working_day": time(16, 30)}),
        }
    )
    assert calendar_for(Force.met, policy) == WorkingCalendar("SCT", "Europe/London", time(16, 30))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"jurisdiction": "GB"}, "jurisdiction"),
        ({"jurisdiction": "ENG", "end_of_day": time(17, 0, tzinfo=UTC)}, "naive"),
    ],
)
def test_a_bad_calendar_is_refused_when_built(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WorkingCalendar(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "latest"),
    [
        (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), date(2026, 11, 29)),
        (datetime(2026, 11, 30, 0, 30, tzinfo=UTC), date(2026, 11, 29)),  # GMT: 00:30 on the 30th
        (datetime(2026, 7, 1, 23, 30, tzinfo=UTC), date(2026, 7, 1)),  # BST: already 00:30 on 2 July in London
        (datetime(2026, 7, 1, 22, 59, tzinfo=UTC), date(2026, 6, 30)),  # BST: 23:59 on 1 July, not yet ended
    ],
)
def test_the_latest_day_a_night_may_run_for_has_ended_in_london(now: datetime, latest: date) -> None:
    assert last_ended_day(now, "Europe/London") == latest
