"""Which nights a catch-up processes."""

from __future__ import annotations

from datetime import date

import pytest

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


def test_a_gap_longer_than_the_limit_is_refused_not_cut() -> None:
    with pytest.raises(ValueError, match="40 nights"):
        nights_to_run(last_completed=date(2026, 10, 11), through=D, since=None, max_nights=31)
