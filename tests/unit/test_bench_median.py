"""The benchmark reports a night's median run by its multiple of the COPY floor, and the least time its CPU allows."""

from __future__ import annotations

import math

import pytest

from benchmarks.run import median_run, multiple, table


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


def test_the_cpu_bound_shares_the_process_and_the_database_over_the_cores() -> None:
    night = {
        "rows": 100_000,
        "copy_floor_s": 0.5,
        "write_floor_s": 3.0,
        "written_rows": 600_000,
        "process_cpu_s": 13.0,
        "database_cpu_s": 3.0,
        "end_to_end_s": 40.0,
        "without_startup_s": 20.0,
        "rows_per_s": 5000.0,
        "peak_rss_mb": 700.0,
        "task_runs": 11,
        "stages": {},
    }
    report = {"git_revision": "0" * 40, "when": "2026-11-29", "machine": {"cpus": 2}, "nights": [night]}
    # (13 + 3) s over 2 cores = 8 s, 16x the floor: no overlap of stages could bring the night under that.
    assert "100,000: process 13.0 s (26.0×), database 3.0 s (6.0×), over the cores 8.00 s (16.0×)" in table(report)
    night["database_cpu_s"] = None  # a server on another machine: the process's share alone
    assert "100,000: process 13.0 s (26.0×), database –, over the cores 6.50 s (13.0×)" in table(report)
    night.pop("process_cpu_s")  # a results file from before the figure existed still renders
    assert "CPU used from Running" not in table(report)
