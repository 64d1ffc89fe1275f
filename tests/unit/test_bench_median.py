"""The benchmark reports a night's median run by its multiple of the COPY floor."""

from __future__ import annotations

import math

import pytest

from benchmarks.run import median_run, multiple


def _run(floor: float, night: float) -> dict[str, float]:
    return {"copy_floor_s": floor, "without_startup_s": night}


@pytest.mark.parametrize(
    ("runs", "chosen"),
    [
        ([(1.0, 30.0)], 0),
        ([(1.0, 30.0), (1.0, 25.0), (0.9, 36.0)], 0),  # 30×, 25×, 40×: the middle one
        ([(1.2, 30.0), (0.8, 30.0)], 1),  # 25× and 37.5×: of two, the worse
        ([(1.0, 20.0), (1.0, 40.0), (1.0, 30.0), (1.0, 10.0)], 2),  # 10, 20, 30, 40: the upper middle
    ],
)
def test_the_median_run_by_its_multiple_of_the_floor(runs: list[tuple[float, float]], chosen: int) -> None:
    given = [_run(f, n) for f, n in runs]
    assert median_run(given) is given[chosen]


def test_a_floor_of_zero_is_no_multiple_at_all() -> None:
    assert multiple(_run(0.0, 5.0)) == math.inf
    assert multiple(_run(0.5, 5.0)) == 10.0
