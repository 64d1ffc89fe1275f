"""One benchmarked night of N referrals on a PostgreSQL database, in its own process (peak RSS is its own).

Prints one JSON object: the COPY floor for the same rows, each stage's seconds,
end to end with and without Prefect's start-up, peak RSS, the CPU the process
and (on this machine) its database's PostgreSQL backends used during the
night, and task runs. The database is fresh, or (--history-days) holds the
nights before it, taken in by another process with staff at work in between.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Any

RUN_DATE = date(2026, 11, 2)
HISTORY_SEED = 12  # staff behaviour in the history's contacts feeds (the demo's shares of on time, late, never)


FLOOR_RUNS = 3  # the floor is the best of these COPYs: one alone moves with the server's checkpoints
# The floor's table is an ordinary one, written through the write-ahead log as every table the night
# writes is; the same COPY into an UNLOGGED table (no log, lost in a crash) is timed beside it, for
# comparison with runs that took that as the floor. Each key is also the key of its runs in the results.
FLOOR_TABLES = {"copy_floor_runs_s": ("floor", ""), "copy_floor_unlogged_runs_s": ("floor_unlogged", "UNLOGGED ")}
FLOOR_METHOD = "COPY of the canonical rows as CSV into an ordinary unindexed table (through the write-ahead log)"


def copy_floor(url: str, inbox: Path) -> tuple[int, dict[str, list[float]]]:
    """COPY the night's canonical rows, pre-serialised as CSV, into an unindexed table: the physical floor.

    Returns the rows and, for each of FLOOR_TABLES, each COPY's seconds (the table emptied before each).
    """
    import psycopg

    from benchmarks.run import connect_args, timed_copies
    from tasks.adapters import adapt
    from tasks.adapters.canonical import COLUMNS

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = 0
    for path in sorted((inbox / RUN_DATE.isoformat()).iterdir()):
        frame = adapt(path).frame
        for record in frame.itertuples(index=False):
            writer.writerow(["" if v is None else str(v) for v in record])
            rows += 1
    data = buffer.getvalue().encode()
    runs: dict[str, list[float]] = {key: [] for key in FLOOR_TABLES}
    with psycopg.connect(**connect_args(url)) as conn:
        for name, kind in FLOOR_TABLES.values():
            conn.execute(f"CREATE {kind}TABLE {name} ({', '.join(f'{c} text' for c in COLUMNS)})")
        conn.commit()
        # The two alternate, each first in turn: a drift in the machine's speed touches both alike, and neither
        # always follows the other's writes still being flushed.
        for run in range(FLOOR_RUNS):
            for key, (name, _kind) in sorted(FLOOR_TABLES.items(), reverse=run % 2 == 1):
                copy_sql = f"COPY {name} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
                runs[key] += timed_copies(conn, f"TRUNCATE {name}", {copy_sql: data}, 1)
        conn.execute("DROP TABLE " + ", ".join(name for name, _kind in FLOOR_TABLES.values()))
        conn.commit()
    return rows, runs


def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM).

    Not getrusage's ru_maxrss: on Linux a child's starts from its parent's peak, and the benchmark's parent
    holds a night's stored rows for the writes floor between runs.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # no /proc: the best there is


def _cpu_seconds() -> float:
    """CPU seconds this process has used so far, user and system, all its threads."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _backend_cpu_seconds(url: str) -> dict[int, float]:
    """CPU seconds so far of each live PostgreSQL backend on this machine serving the URL's database, by pid.

    Found by process title ("postgres: ... user database host activity"), so none are found when the server
    runs on another machine or where this one's process table is hidden or absent.
    """
    from sqlalchemy.engine import make_url

    found: dict[int, float] = {}
    if not Path("/proc").is_dir():
        return found
    database, tick = f" {make_url(url).database} ", os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or (proc / "comm").read_text().strip() != "postgres":
                continue
            if database not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                continue
            # Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while being read, or not ours to read
            continue
        found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _database_cpu(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The night database's backends' CPU between two readings; None if none was seen at the end.

    A backend that ended in between is not counted (its time goes to the postmaster, mixed with every other
    database's), so the figure can only fall short: the pool keeps the night's own connections open.
    """
    if not after:
        return None
    return round(sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items()), 2)


def build_history(inbox: Path, days: int) -> None:
    """Take in the `days` nights before RUN_DATE, each after a contacts feed of what staff did; then RUN_DATE's feed.

    As the demo runs its nights: staff complete most contacts on time, some late, a few never, so the
    history holds open cases with their next contacts pending, not every first contact overdue. The
    database is then vacuumed and analysed, and checkpointed where the role may: in service a day passes
    between nights, and the night measured on it should not share the machine with the history's upkeep.
    """
    import psycopg

    from benchmarks.run import connect_args
    from flows.nightly import nightly
    from iasu import wiring
    from iasu.simulation import Behaviour, ensure_roster, write_day_feed

    with wiring.engine().begin() as conn:
        ensure_roster(conn, cipher=wiring.cipher(), actor="benchmark")
    for offset in range(days, 0, -1):
        day = RUN_DATE - timedelta(days=offset)
        write_day_feed(inbox, day, seed=HISTORY_SEED, behaviour=Behaviour())
        nightly(run_date=day, inbox=inbox)
    write_day_feed(inbox, RUN_DATE, seed=HISTORY_SEED, behaviour=Behaviour())
    wiring.engine().dispose()
    with psycopg.connect(**connect_args(os.environ["IASU_DATABASE_URL"]), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        # Without the right, the server's own checkpoints will come, and the night may carry some of one.
        with suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def database_facts() -> dict[str, int]:
    """What the database holds: referrals, open and assigned cases, pending and done contacts."""
    from sqlalchemy import text

    from iasu import wiring

    with wiring.engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM referrals), (SELECT count(*) FROM cases WHERE status = 'open'), "
                "(SELECT count(*) FROM cases WHERE assigned_staff_id IS NOT NULL), "
                "(SELECT count(*) FROM contacts WHERE status = 'pending'), "
                "(SELECT count(*) FROM contacts WHERE status = 'done')"
            )
        ).one()
    keys = ("referrals", "open_cases", "assigned_cases", "pending_contacts", "done_contacts")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def linked_to_history() -> int:
    """The night's referrals that joined a case opened on an earlier night: linkage across the two processes."""
    from sqlalchemy import text

    from iasu import wiring

    with wiring.engine().connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM referrals r JOIN ingest_batches b ON b.id = r.batch_id "
                    "JOIN cases c ON c.id = r.case_id WHERE b.run_date = :night AND c.opened_on < :night"
                ),
                {"night": RUN_DATE},
            ).scalar_one()
        )


def task_runs(flow_run_id: Any) -> tuple[int, dict[str, float]]:
    """Task runs the flow run created, and seconds per task name prefix."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    seconds: dict[str, float] = {}
    for run in runs:
        name = run.name.rsplit("-", 1)[0] if not run.name.startswith(("ingest ", "contacts ")) else run.name.split()[0]
        seconds[name] = seconds.get(name, 0.0) + run.total_run_time.total_seconds()
    return len(runs), seconds


def main() -> None:
    """Generate, take in and report one night."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--result", type=Path, default=None, help="also write the night's figures to this file")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--slack", default=None, help="base URL of a local fake Slack server")
    parser.add_argument("--floor-only", action="store_true", help="measure the COPY floor alone and print it")
    parser.add_argument(
        "--history-days", type=int, default=0, help="first take in this many nights before it (in another process)"
    )
    parser.add_argument("--history-only", action="store_true", help="take in the history alone (internal)")
    args = parser.parse_args()
    # From the environment only: a URL on the command line shows in the process list and in a profile's flame
    # graph, and the server's may carry a password.
    url = os.environ.get("IASU_DATABASE_URL")
    if not url:
        parser.error("the night's database goes in IASU_DATABASE_URL")
    if args.floor_only:
        rows, floors = copy_floor(url, args.work / "inbox")
        sys.stdout.write(json.dumps({"rows": rows} | floors) + "\n")
        return
    # Synthetic data: throwaway keys, the same for the history's process and the night's (linkage needs them).
    for key in ("IASU_ENCRYPTION_KEY", "IASU_BLIND_INDEX_KEY"):
        os.environ.setdefault(key, base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    os.environ["IASU_VAR_DIR"] = str(args.work / "var")
    # The history's alerts are dry runs, as in the demo: never an operator's Slack, nor the fake's pacing.
    quiet = {k: v for k, v in os.environ.items() if not k.startswith("IASU_SLACK_")}
    if args.slack:
        os.environ["IASU_SLACK_BASE_URL"], os.environ["IASU_SLACK_TOKEN"] = args.slack, "xoxb-bench"
    from iasu.prefect_env import quiet_prefect

    quiet_prefect()
    # Loading the night's code (Prefect, Great Expectations), as a served deployment's run process does, is
    # start-up too: timed here, and counted in end to end.
    loading = time.perf_counter()
    from flows.nightly import night_summary, nightly

    loaded_s = time.perf_counter() - loading
    from iasu.db import upgrade

    upgrade(url)
    inbox = args.work / "inbox"  # generated by the caller in another process, so RSS here is the night's own
    if args.history_only:
        build_history(inbox, args.history_days)
        return
    itself = [sys.executable, "-m", "benchmarks.night", "--work", str(args.work)]  # the URL is in the environment
    # The floor in a process of its own too: holding the night's rows as one CSV would count in this RSS. It
    # comes first, while the night's folder holds its referrals alone (the history adds its contacts feed).
    measured = subprocess.run(
        [*itself, "--floor-only"],
        check=True,
        capture_output=True,
        text=True,
    )
    if args.history_days:
        subprocess.run(
            [*itself, "--history-only", "--history-days", str(args.history_days)],
            check=True,
            env=quiet,
            stdout=subprocess.DEVNULL,  # its log goes to stderr, where the caller looks when a night fails
        )
    floor_result = json.loads(measured.stdout.strip().splitlines()[-1])
    rows, floor_runs = int(floor_result["rows"]), [float(r) for r in floor_result["copy_floor_runs_s"]]
    unlogged_runs = [float(r) for r in floor_result["copy_floor_unlogged_runs_s"]]
    floor = min(floor_runs)

    from iasu import wiring
    from iasu.simulation import ensure_roster

    # A unit's roster (the demo's: two workers per queue and force), so scheduling assigns cases as in service.
    with wiring.engine().begin() as conn:
        ensure_roster(conn, cipher=wiring.cipher(), actor="benchmark")
    before = database_facts()

    from prefect import Flow, State
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import FlowStateHook

    # The CPU count covers the same span as "without start-up": from the flow run's Running state to its
    # Completed one, so neither Prefect's start-up in this process nor its teardown counts as the night's.
    cpu_at: dict[str, tuple[float, dict[int, float]]] = {}

    def read_cpu(moment: str) -> FlowStateHook[..., Any]:
        def hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
            cpu_at[moment] = (_cpu_seconds(), _backend_cpu_seconds(url))

        return hook

    night = nightly.with_options(
        on_running=[*nightly.on_running_hooks, read_cpu("running")],
        on_completion=[*nightly.on_completion_hooks, read_cpu("completed")],
    )
    started = time.perf_counter()
    state = night(run_date=RUN_DATE, inbox=inbox, return_state=True)
    ended = time.perf_counter()
    summary = night_summary(state)  # a failed night raises its own error here, before the CPU figure is read
    # Prefect logs a hook's failure and carries on: a missing reading must not pass as a figure.
    assert set(cpu_at) == {"running", "completed"}, f"CPU read only at {sorted(cpu_at)}"
    (process_from, backends_from), (process_to, backends_to) = cpu_at["running"], cpu_at["completed"]
    from prefect.client.orchestration import get_client

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    running_for = flow_run.total_run_time.total_seconds()  # in the Running state: start-up excluded
    count, per_task = task_runs(flow_run.id)
    after = database_facts()
    stages = {"parse": 0.0, "validate": 0.0, "load": 0.0}
    for f in summary["file_counts"]:  # the referrals' files: a contacts feed's counts have no stages
        for k, v in f.get("stage_seconds", {}).items():
            stages[k] = stages.get(k, 0.0) + v
    for stage, task_name in (
        ("route", "route-referrals"),
        ("schedule", "schedule-contacts"),
        ("monitor", "monitor-deadlines"),
        ("dispatch", "dispatch-alerts"),
    ):
        stages[stage] = per_task.get(task_name, 0.0)
    result = {
        "rows": rows,
        "received": summary["received"],
        "copy_floor_method": FLOOR_METHOD,
        "copy_floor_s": round(floor, 3),
        "copy_floor_runs_s": [round(r, 3) for r in floor_runs],
        "copy_floor_unlogged_s": round(min(unlogged_runs), 3),
        "copy_floor_unlogged_runs_s": [round(r, 3) for r in unlogged_runs],
        "end_to_end_s": round(loaded_s + ended - started, 2),  # loading the code, then the flow run
        "without_startup_s": round(running_for, 2),
        "rows_per_s": round(rows / running_for, 1) if running_for else None,
        "peak_rss_mb": peak_rss_mb(),
        "process_cpu_s": round(process_to - process_from, 2),
        "database_cpu_s": _database_cpu(backends_from, backends_to),
        "task_runs": count,
        "stages": {k: round(v, 2) for k, v in stages.items()},
        "alerts": {k: summary["alerts"][k] for k in ("queued", "sent", "pending")},
        # Assigned tonight: on a history, the earlier nights' assigned cases are not the night's.
        "assigned_cases": after["assigned_cases"] - before["assigned_cases"],
    }
    if args.history_days:
        result["history"] = {"days": args.history_days} | before
        result["linked_to_history"] = linked_to_history()
        result["contacts_feed"] = {
            "received": summary["contacts_feed"]["received"],
            "applied": summary["contacts_feed"]["applied"],
            "seconds": round(per_task.get("contacts", 0.0), 2),
        }
    line = json.dumps(result) + "\n"
    sys.stdout.write(line)
    if args.result:
        # A night run under py-spy exits 0 whatever it did (py-spy does not pass its status on): the caller
        # takes this file, written last, as the sign that the night completed.
        args.result.write_text(line, encoding="utf-8")


if __name__ == "__main__":
    main()
