"""A small run of the benchmark: it completes, writes a whole results file, and stays within the task-run budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import psycopg
import pytest
from sqlalchemy.engine import make_url

import benchmarks.run
from benchmarks.night import copy_floor
from benchmarks.run import BUDGETS, DEFAULT_OUT, NO_WRITE_FLOOR, PROFILE_RATE, ROOT, generate_night, write_floor
from tests.conftest import PG_ADMIN_URL, _admin_conninfo, _admin_execute

# The nights alone, each once: no monitor at scale, no burst, no history.
NIGHTS_ONLY = ("--repeat", "1", "--contacts", "0", "--alerts", "0", "--history-days", "0")


def run_benchmark(*args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.run ARGS` from the repository, with env added to this environment."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=ROOT,
        # An operator's Prefect server named here must not receive the benchmark's nights (nothing listens).
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.postgres
def test_a_small_benchmark_writes_a_complete_results_file(tmp_path: Path, pg_template: str) -> None:
    out = tmp_path / "latest.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = run_benchmark(
        *("--sizes", "1000", "--contacts", "30000", "--alerts", "200", "--repeat", "1"),
        *("--history-days", "1", "--history-size", "1000", "--out", str(out)),
        TMPDIR=str(scratch),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert not list(scratch.glob("iasu-bench-*"))  # the generated inboxes (synthetic people) are not left behind
    report = json.loads(out.read_text())
    assert report["git_revision"]
    [night] = report["nights"]
    for key in ("rows", "copy_floor_s", "end_to_end_s", "without_startup_s", "peak_rss_mb", "task_runs", "stages"):
        assert key in night
    assert night["rows"] >= 1000 and night["task_runs"] <= BUDGETS["task_runs"]
    assert night["runs"] == [
        {"copy_floor_s": night["copy_floor_s"], "without_startup_s": night["without_startup_s"], "multiple": ANY}
    ]
    # The floor is the best of its COPYs, each of the same rows into an emptied table; the unlogged one beside it.
    assert len(night["copy_floor_runs_s"]) == 3 and night["copy_floor_s"] == min(night["copy_floor_runs_s"]) > 0
    unlogged = night["copy_floor_unlogged_runs_s"]
    assert len(unlogged) == 3 and night["copy_floor_unlogged_s"] == min(unlogged) > 0
    assert "The same COPY into an UNLOGGED table instead" in run.stdout
    # The writes' floor: the night's own stored rows (more than it received) copied into a fresh schema.
    assert len(night["write_floor_runs_s"]) == 3 and night["write_floor_s"] == min(night["write_floor_runs_s"]) > 0
    assert night["written_rows"] > night["rows"] and night["slack_floor_s"] >= 0
    assert night["slack_messages"] > 0  # the night's dispatch stage really delivered, to the local fake Slack
    assert night["alerts"]["sent"] > 0 and night["alerts"]["queued"] >= night["alerts"]["sent"]
    assert night["process_cpu_s"] > 0
    if make_url(PG_ADMIN_URL).host in ("127.0.0.1", "localhost", None):  # its backends are on this machine
        assert night["database_cpu_s"] > 0
    assert night["assigned_cases"] > 0  # the night has a roster: scheduling assigned cases as in service
    assert set(night["stages"]) == {"parse", "validate", "load", "route", "schedule", "monitor", "dispatch"}
    assert {"contacts", "overdue", "seconds", "uses_index"} <= set(report["monitor"]) and report["monitor"][
        "uses_index"
    ]
    # Best of its runs, each finding (and queueing, then rolling back) the same overdue contacts.
    assert report["monitor"]["seconds"] == min(report["monitor"]["runs_s"]) and report["monitor"]["overdue"] > 0
    assert set(report["machine"]["python_loop_s"]) == {"before", "after"}
    server = report["machine"]["postgresql"]
    assert server["version"] and server["collation"] and all(server["settings"].values())
    assert f"PostgreSQL {server['version']}, databases collated {server['collation']}" in run.stdout
    assert {"alerts", "channels", "messages", "seconds", "rate_limited"} <= set(report["alert_burst"])
    assert report["alert_burst"]["messages"] < report["alert_burst"]["alerts"]  # grouped, not one per alert
    verdict = {v["budget"]: v for v in report["verdicts"]}
    assert verdict["task runs per night (most)"] == {
        "budget": "task runs per night (most)",
        "measured": max(night["task_runs"], report["history_night"]["task_runs"]),
        "limit": BUDGETS["task_runs"],
        "met": True,
    }
    assert verdict["monitor uses an index"]["met"]
    # Another night of the same size, on the night before it taken in first: read against the empty one.
    on_history = report["history_night"]
    assert on_history["history"]["days"] == 1 and on_history["task_runs"] <= BUDGETS["task_runs"]
    # A night of 1,000 loads about 950: the dirty rows are quarantined or duplicates.
    assert on_history["history"]["referrals"] >= 900 and on_history["history"]["pending_contacts"] > 0
    assert on_history["rows"] >= 1000 and on_history["received"] == on_history["rows"]
    # Staff worked the history's contacts (the feed was taken in), and linkage found the history's people:
    # the two processes sealed and indexed with the same keys.
    assert on_history["contacts_feed"]["applied"] > 0 and on_history["contacts_feed"]["seconds"] > 0
    assert on_history["linked_to_history"] > 0
    assert "write_floor_s" not in on_history  # the database holds more than the night's own rows

    def over_floor(n: dict[str, Any], seconds: float) -> float:
        return seconds / float(n["copy_floor_s"])

    def stages(n: dict[str, Any]) -> float:
        return over_floor(n, sum(n["stages"][s] for s in ("parse", "validate", "load", "route")))

    assert on_history["against_empty"] == {
        "referral_stages": round(stages(on_history) / stages(night), 2),
        "without_startup": round(
            over_floor(on_history, on_history["without_startup_s"]) / over_floor(night, night["without_startup_s"]), 2
        ),
    }
    assert f"On a history: a night of {on_history['rows']:,} referrals after 1 night of as many" in run.stdout


@pytest.mark.postgres
def test_without_a_superuser_the_writes_floor_is_left_out_and_said_why(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    role, password = f"iasu_plain_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    _admin_execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'")
    try:
        plain = make_url(PG_ADMIN_URL).set(username=role, password=password).render_as_string(hide_password=False)
        monkeypatch.setattr(benchmarks.run, "ADMIN_URL", plain)
        assert write_floor(pg_url) == {"write_floor_s": None, "write_floor_note": NO_WRITE_FLOOR}
    finally:
        # A database the role created and could not drop would keep the role too, and hide why.
        with psycopg.connect(**_admin_conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
            owned = conn.execute(
                "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = %s", (role,)
            ).fetchall()
            for (name,) in owned:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.postgres
def test_the_copy_floor_is_timed_into_an_ordinary_table_and_the_unlogged_one_beside_it(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_night(300, tmp_path)
    timed = benchmarks.run.timed_copies
    order: list[str] = []

    def persistence_as_timing(conn: psycopg.Connection[Any], empty: str, copies: dict[str, bytes], runs: int) -> Any:
        # Each COPY still runs; its figure is replaced by the kind of table it went into (p: permanent, through
        # the write-ahead log; u: unlogged), so the results say which table each reported floor was taken from.
        assert timed(conn, empty, copies, runs)
        (table,) = [statement.split()[1] for statement in copies]
        (kind,) = conn.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [table]).fetchone() or ("",)
        order.append(str(kind))
        return [1.0 if kind == "p" else 2.0]

    monkeypatch.setattr(benchmarks.run, "timed_copies", persistence_as_timing)
    rows, runs = copy_floor(pg_url, tmp_path / "inbox")
    assert rows >= 300
    assert runs == {"copy_floor_runs_s": [1.0, 1.0, 1.0], "copy_floor_unlogged_runs_s": [2.0, 2.0, 2.0]}
    assert order == ["p", "u", "u", "p", "p", "u"]  # alternating, each first in turn


@pytest.mark.postgres
def test_a_profiled_night_writes_its_flame_graph_and_is_not_judged_against_the_budgets(
    tmp_path: Path, pg_template: str
) -> None:
    profile = tmp_path / "profile"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    published = DEFAULT_OUT.read_bytes()
    run = run_benchmark("--sizes", "300", *NIGHTS_ONLY, "--profile", str(profile), TMPDIR=str(scratch))
    assert run.returncode == 0, run.stderr[-2000:]
    graph = (profile / "night-300-run1.svg").read_text(encoding="utf-8")
    # The night's own stages, sampled in its process: intake, routing and dispatch each appear by their task.
    for task_fn in ("ingest_file (tasks/ingest.py", "route_referrals (tasks/route.py", "dispatch_alerts (tasks/"):
        assert task_fn in graph
    # The database's URL (which may carry a password) reaches the night through its environment, so py-spy's
    # record of the command line does not hold it.
    assert "iasu_bench_" not in graph
    assert f"record --rate {PROFILE_RATE} --format flamegraph" in graph  # py-spy's own command, in its title
    report = json.loads((profile / "results.json").read_text())
    assert report["profiled"] == {
        "sampler": "py-spy",
        "rate_per_s": PROFILE_RATE,
        "flame_graphs": ["night-300-run1.svg"],
    }
    assert report["verdicts"] == [] and "| budget |" not in run.stdout
    assert "Profiled: each night ran under py-spy" in run.stdout
    assert DEFAULT_OUT.read_bytes() == published  # the published run stands
    assert not list(scratch.glob("iasu-bench-*"))


@pytest.mark.postgres
def test_a_profiled_night_that_fails_says_why(tmp_path: Path, pg_template: str) -> None:
    # py-spy exits 0 whatever the program it ran did: the night's failure must still stop the run, with its log.
    run = run_benchmark(
        "--sizes", "100", *NIGHTS_ONLY, "--profile", str(tmp_path / "p"), IASU_ENCRYPTION_KEY="not-a-key"
    )
    assert run.returncode == 1
    assert "failed (no result written)" in run.stderr
    assert "bad settings: IASU_ENCRYPTION_KEY: " in run.stderr  # the night's own error, from its log's tail
    assert "not-a-key" not in run.stderr
    assert not (tmp_path / "p" / "results.json").exists()


@pytest.mark.parametrize(
    "out",
    ["benchmarks/results/latest.json", str(DEFAULT_OUT)],
    ids=["relative", "absolute"],
)
def test_a_profiled_run_cannot_write_the_published_results(tmp_path: Path, out: str) -> None:
    run = run_benchmark("--profile", str(tmp_path / "p"), "--out", out, timeout=120)
    assert run.returncode == 2
    assert "--profile does not write the published results" in run.stderr
    assert not (tmp_path / "p").exists()


def test_a_profiled_run_cannot_rewrite_the_readme(tmp_path: Path) -> None:
    run = run_benchmark("--profile", str(tmp_path / "p"), "--readme", timeout=120)
    assert run.returncode == 2
    assert "--profile and --readme do not go together" in run.stderr
    assert not (tmp_path / "p").exists()
