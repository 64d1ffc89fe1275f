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


def _node(kind: str, **fields: object) -> dict[str, object]:
    return {"Node Type": kind, **fields}


INDEX = {"Index Name": "ix_contacts_pending_due"}
BY_INDEX = _node(
    "Bitmap Heap Scan",
    **{"Relation Name": "contacts", "Plans": [_node("Bitmap Index Scan", **INDEX, **{"Index Cond": "(due_at < x)"})]},
)


@pytest.mark.parametrize(
    ("plan", "uses"),
    [
        (_node("Hash Join", Plans=[BY_INDEX, _node("Seq Scan", **{"Relation Name": "cases"})]), True),
        # The index read from end to end, with no condition: every row, the index's name notwithstanding.
        (_node("Index Scan", **INDEX, **{"Relation Name": "contacts"}), False),
        # The index used, and the table scanned elsewhere in the plan too.
        (_node("Append", Plans=[BY_INDEX, _node("Seq Scan", **{"Relation Name": "contacts"})]), False),
        (_node("Seq Scan", **{"Relation Name": "contacts"}), False),
    ],
)
def test_the_monitor_counts_as_using_its_index_only_when_the_plan_reads_contacts_through_it(
    plan: dict[str, object], uses: bool
) -> None:
    from benchmarks.run import reads_contacts_by_index

    assert reads_contacts_by_index(plan) is uses


@pytest.mark.parametrize(("sent", "rate_limited", "met"), [(5000, 0, True), (5000, 3, False), (4999, 0, False)])
def test_the_burst_honours_slacks_rate_only_if_every_alert_went_and_no_429_came_back(
    sent: int, rate_limited: int, met: bool
) -> None:
    from benchmarks.run import verdicts

    burst = {"alerts": 5000, "sent": sent, "rate_limited": rate_limited, "seconds": 3.5}
    [*_, honoured] = verdicts({"nights": [], "alert_burst": burst})
    assert honoured["met"] is met


def _night(size: int, rows: int, floor: float, seconds: float, rss: float, task_runs: int) -> dict[str, float]:
    return _run(floor, seconds) | {"size": size, "rows": rows, "peak_rss_mb": rss, "task_runs": task_runs}


@pytest.mark.parametrize(
    ("floor", "seconds", "rss", "small_seconds", "history_runs", "met"),
    [
        # At each limit: "at most" and "within" are met there, "under" is not. Rows are powers of two, so each
        # time per referral is exact in binary and a ratio at its limit is the limit.
        (12.0, 120.0, 1024.0, 40.0, 60, [True, False, False, True, True]),
        # One step to the other side of each: every verdict turns.
        (11.9, 119.9, 1023.9, 39.9, 61, [False, True, True, False, False]),
    ],
)
def test_each_budget_of_the_big_nights_is_judged_under_or_at_most_as_the_issue_says(
    floor: float, seconds: float, rss: float, small_seconds: float, history_runs: int, met: list[bool]
) -> None:
    from benchmarks.run import verdicts

    small = _night(10_000, 65_536, 1.0, small_seconds, 300.0, 11)
    big = _night(100_000, 131_072, floor, seconds, rss, 60)
    history = _night(10_000, 65_536, 1.0, 41.0, 310.0, history_runs)  # its task runs count as every night's
    judged = verdicts({"nights": [small, big], "history_night": history})
    assert judged == [
        {"budget": budget, "measured": measured, "limit": limit, "met": m}
        for (budget, measured, limit), m in zip(
            [
                ("100k night ÷ COPY floor", round(seconds / floor, 2), 10),
                ("100k night, s", seconds, 120),
                ("100k peak RSS, MB", rss, 1024),
                ("time per referral, 100k ÷ 10k", round((seconds / 131_072) / (small_seconds / 65_536), 2), 1.5),
                ("task runs per night (most)", max(60, history_runs), 60),
            ],
            met,
            strict=True,
        )
    ]
