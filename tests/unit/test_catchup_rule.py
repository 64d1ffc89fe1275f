"""Which nights a catch-up processes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from iasu.errors import OperatorError
from rules.catchup import nights_to_run

D = date(2026, 11, 20)


@pytest.mark.parametrize(
    ("last_completed", "since", "expected"),
    [
        (None, None, [D]),  # a new installation runs the one night asked for
        (date(2026, 11, 19), None, [D]),
        (date(2026, 11, 17), None, [date(2026, 11, 18), date(2026, 11, 19), D]),  # two missed nights caught up
        (D, None, []),  # already done
        (date(2026, 11, 25), None, []),
        (None, date(2026, 11, 19), [date(2026, 11, 19), D]),
        (D, date(2026, 11, 19), [date(2026, 11, 19), D]),  # since= replays deliberately
    ],
)
def test_nights_after_the_watermark_run_oldest_first(
    last_completed: date | None, since: date | None, expected: list[date]
) -> None:
    assert nights_to_run(last_completed=last_completed, through=D, since=since, max_nights=31) == expected


def test_nights_completed_out_of_turn_are_not_run_again_and_the_ones_between_are() -> None:
    """10-17 completed, then 10-19 run by hand: the watermark stays at 10-17, and 10-18 is not lost."""
    done = {date(2026, 11, 19)}
    run = nights_to_run(last_completed=date(2026, 11, 17), through=D, since=None, max_nights=31, completed=done)
    assert run == [date(2026, 11, 18), D]
    # Counted as what runs: a long stretch mostly completed by hand is within the limit.
    by_hand = {date(2026, 10, 12) + timedelta(days=i) for i in range(38)}
    run = nights_to_run(last_completed=date(2026, 10, 11), through=D, since=None, max_nights=3, completed=by_hand)
    assert run == [date(2026, 11, 19), D]


def test_a_gap_longer_than_the_limit_is_refused_in_one_line_not_cut() -> None:
    with pytest.raises(OperatorError, match="40 nights to catch up from 2026-10-12 to 2026-11-20"):
        nights_to_run(last_completed=date(2026, 10, 11), through=D, since=None, max_nights=31)


def test_a_since_after_the_last_ended_night_is_refused_not_run_as_nothing() -> None:
    with pytest.raises(OperatorError, match=r"^since=2026-12-20 is after 2026-11-20, the last night whose day has"):
        nights_to_run(
            last_completed=date(2026, 11, 17), through=date(2026, 11, 20), since=date(2026, 12, 20), max_nights=31
        )
