"""`make bench`: nights of 1k/10k/100k referrals, the monitor over 1M contacts, a 5,000-alert burst.

Each part runs on a fresh PostgreSQL database on the server the tests use
(IASU_TEST_DATABASE_URL, else 127.0.0.1:5432) and is dropped afterwards. The
results go to benchmarks/results/latest.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from benchmarks.night import RUN_DATE

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("IASU_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BUDGETS = {
    "copy_multiple": 10,
    "night_100k_s": 120,
    "scaling": 1.5,
    "rss_mb": 1024,
    "task_runs": 60,
    "monitor_s": 2,
    "burst_s": 60,
}
MONITOR_RUNS = 3  # the monitor's figure is the best of these (each rolled back)
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"


def connect_args(url: str) -> dict[str, Any]:
    """psycopg's connection arguments for a SQLAlchemy URL (postgresql+psycopg://...)."""
    u = make_url(url)
    return {
        "host": u.host,
        "port": u.port or 5432,
        "user": u.username,
        "password": u.password,
        "dbname": u.database or "postgres",
    }


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the benchmark server; dropped afterwards."""
    name = f"iasu_bench_{uuid.uuid4().hex[:8]}"
    admin = connect_args(ADMIN_URL)
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def generate_night(rows: int, work: Path, days: int = 1) -> None:
    """Write nights of N generated referrals (5% dirty, three forces, three sources) to work/inbox.

    The last is the benchmark's night; with days > 1 the nights before it come first, from the same
    generator, so their references never collide with the night's and their perpetrators recur in it.
    """
    python = sys.executable
    inbox = work / "inbox"
    subprocess.run(
        [
            python,
            "-m",
            "iasu.cli",
            "generate",
            "--start",
            (RUN_DATE - timedelta(days=days - 1)).isoformat(),
            "--days",
            str(days),
            "--per-day",
            str(rows),
            "--seed",
            "11",
            "--dirty",
            "0.05",
            "--out",
            str(inbox),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def isolated_prefect(home: Path) -> dict[str, str]:
    """This environment with a Prefect of its own: a temporary server over its own database under home.

    Every PREFECT_ setting is left out (an operator's API URL, profile or server database among them), so
    benchmark nights never show in the Prefect UI that operations staff watch, nor write to its database.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    return env


def migrated_prefect_home(home: Path) -> Path:
    """Create Prefect's own database under home and migrate it; returns the database file.

    A temporary server's first start on a new home spends most of its time (about 25 s of 40 here) migrating
    this database, which a machine's nights do once, on the first. Each night starts from a copy, so its
    start-up is that of every later night, and every night still starts from an empty Prefect.
    """
    prefect = Path(sys.executable).with_name("prefect")
    subprocess.run(
        [str(prefect), "server", "database", "upgrade", "-y"],
        env=isolated_prefect(home),
        check=True,
        capture_output=True,
    )
    return home / "prefect.db"


def night(
    work: Path, prefect_db: Path, slack_url: str | None, history_days: int = 0, profile_to: Path | None = None
) -> dict[str, Any]:
    """Take in the night in work/inbox on a fresh database, in a process of its own (its peak RSS is its own).

    Its Prefect starts from prefect_db (see `migrated_prefect_home`). With history_days, the nights before it
    in work/inbox are taken in first, and the writes floor is left out: the database holds more than the
    night's own rows. With profile_to, the night's process runs under py-spy, which writes its flame graph there.
    """
    python = sys.executable
    for folder in ("var", "prefect"):  # each run starts from nothing, as its database does
        shutil.rmtree(work / folder, ignore_errors=True)
    (work / "prefect").mkdir()
    shutil.copyfile(prefect_db, work / "prefect" / prefect_db.name)
    with fresh_database() as url:
        result_file = work / "night-result.json"
        result_file.unlink(missing_ok=True)
        # The URL goes in the environment, never on a command line (see benchmarks.night).
        cmd = [python, "-m", "benchmarks.night", "--work", str(work), "--result", str(result_file)]
        if slack_url:
            cmd += ["--slack", slack_url]
        if history_days:
            cmd += ["--history-days", str(history_days)]
        if profile_to is not None:
            cmd = profiled(cmd, profile_to)
        env = isolated_prefect(work / "prefect") | {"IASU_DATABASE_URL": url}
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        # Its result file, written last, says it completed: under py-spy the exit status is py-spy's, always 0.
        if out.returncode != 0 or not result_file.exists():
            # The night's own log says why; without it a failed run reads as a bare exit status.
            tail = "\n".join(out.stderr.strip().splitlines()[-40:])
            status = f"exit {out.returncode}" if out.returncode else "no result written"
            raise SystemExit(f"the night in {work} failed ({status}):\n{tail}")
        result = dict(json.loads(result_file.read_text(encoding="utf-8")))
        return result if history_days else result | write_floor(url)


PY_SPY = Path(sys.executable).with_name("py-spy")
PROFILE_RATE = 100  # samples a second: enough to place a stage of a tenth of a second, at a cost the night bears


def profiled(cmd: list[str], svg: Path) -> list[str]:
    """The command run under py-spy, sampling its process (not the subprocesses it starts) into a flame graph."""
    # Sampled from outside: the night's own code is the same as unprofiled, only slower (about a third at 100/s).
    return [
        str(PY_SPY),
        "record",
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "flamegraph",
        "--output",
        str(svg),
        "--",
        *cmd,
    ]


WRITE_FLOOR_RUNS = 3
NO_WRITE_FLOOR = "needs a superuser, or SET granted on session_replication_role, to skip foreign-key checks"


def write_floor(url: str) -> dict[str, Any]:
    """The night's rows as it stored them, COPYed in binary into a fresh schema's tables: the floor of its writes.

    Only the writing: no parsing, validation, encryption (the ciphertexts are copied), decisions or Slack.
    Indexes, unique and check constraints are kept, since every read and rerun relies on them; triggers,
    foreign-key checks among them, are not (session_replication_role = replica), because cases and
    referrals name each other. The schema's only other triggers keep the audit log append-only, which a
    COPY never touches; with them off the tables can be emptied between runs. The setting takes a
    superuser, or from PostgreSQL 15 a role granted SET on it; without that the figure is left out. Best
    of WRITE_FLOOR_RUNS, the tables emptied before each.
    """
    from iasu.db import upgrade

    with fresh_database() as target, psycopg.connect(**connect_args(target)) as conn:
        try:  # asked first: without it, reading the night's tables would be for nothing
            conn.execute("SET session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            return {"write_floor_s": None, "write_floor_note": NO_WRITE_FLOOR}
        upgrade(target)
        rows, data = _stored_rows(url)
        copies = {f'COPY "{t}" FROM STDIN (FORMAT binary)': copied for t, copied in data.items()}
        runs = timed_copies(conn, "TRUNCATE " + ", ".join(f'"{t}"' for t in data), copies, WRITE_FLOOR_RUNS)
    return {
        "written_rows": rows,
        "write_floor_s": round(min(runs), 3),
        "write_floor_runs_s": [round(r, 3) for r in runs],
    }


def timed_copies(conn: psycopg.Connection[Any], empty: str, copies: dict[str, bytes], runs: int) -> list[float]:
    """Seconds of each of `runs` passes of the COPY statements with their data, the tables emptied before each."""
    seconds = []
    for _ in range(runs):
        conn.execute(empty)
        conn.commit()
        started = time.perf_counter()
        for statement, data in copies.items():
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.write(data)
        conn.commit()
        seconds.append(time.perf_counter() - started)
    return seconds


def _stored_rows(url: str) -> tuple[int, dict[str, bytes]]:
    """Every row of the database's application tables (counted, and as binary COPY data per table)."""
    data: dict[str, bytes] = {}
    with psycopg.connect(**connect_args(url)) as conn:
        tables = [
            str(name)
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' "
                "ORDER BY tablename"
            )
        ]
        counted = conn.execute("SELECT " + " + ".join(f'(SELECT count(*) FROM "{t}")' for t in tables)).fetchone()
        for t in tables:
            with conn.cursor().copy(f'COPY "{t}" TO STDOUT (FORMAT binary)') as copy:
                data[t] = b"".join(bytes(chunk) for chunk in copy)
    return (int(counted[0]) if counted else 0), data


def multiple(run: dict[str, Any]) -> float:
    """A night's time without start-up over its COPY floor."""
    return float(run["without_startup_s"]) / float(run["copy_floor_s"]) if run["copy_floor_s"] else math.inf


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run in the middle by its multiple of the floor (of an even number, the worse of the middle two)."""
    return sorted(runs, key=multiple)[len(runs) // 2]


def monitor_at_scale(contacts: int) -> dict[str, Any]:
    """1M pending contacts, 5% overdue: time the monitor and check its query uses the index."""
    from sqlalchemy import text

    from iasu import wiring
    from iasu.db import upgrade
    from iasu.policy import get_policy
    from tasks.monitor import monitor, overdue_query

    run_date = RUN_DATE
    with fresh_database() as url:
        upgrade(url)
        os.environ["IASU_DATABASE_URL"] = url
        wiring.reset()
        cases = -(-contacts // 3)  # three contacts a case, the last case's surplus removed below
        with wiring.engine().begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO cases (case_ref, force, status, tier, queue, reasons, interventions, "
                    "turned_away_for_capacity, decided_by, opened_on, opened_at) "
                    "SELECT 'CH-2026-' || lpad(i::text, 6, '0'), 'cheshire', 'open', 'high', 'unit', "
                    "'[]', '[]', false, "
                    "'policy', DATE '2026-10-01', now() FROM generate_series(1, :n) AS i"
                ),
                {"n": cases},
            )
            # 5% due in the past (spread over the last 10 days), the rest in the next 30 days.
            conn.execute(
                text(
                    "INSERT INTO contacts (case_id, kind, due_at, original_due_at, status, attempts, created_at) "
                    "SELECT c.id, k.kind, d.due, d.due, 'pending', 0, now() FROM cases c "
                    "CROSS JOIN (VALUES ('victim_first_contact'), ('victim_followup'), "
                    "('perpetrator_checkin')) AS k(kind) "
                    "CROSS JOIN LATERAL (SELECT CASE WHEN (c.id * 3 + length(k.kind)) % 20 = 0 "
                    "THEN TIMESTAMPTZ '2026-11-02 17:00+00' - ((c.id % 10) || ' days')::interval "
                    "ELSE TIMESTAMPTZ '2026-11-03 17:00+00' + ((c.id % 30) || ' days')::interval END AS due) AS d"
                )
            )
            conn.execute(text("DELETE FROM contacts WHERE id > :n"), {"n": contacts})  # exactly as many as asked
            # Statistics as a live database has them (autovacuum analyses tables this size soon after loading).
            conn.execute(text("ANALYZE cases"))
            conn.execute(text("ANALYZE contacts"))
        from rules.clock import end_of_day

        now = end_of_day(run_date, "Europe/London")
        with wiring.engine().connect() as conn:
            query = str(overdue_query(now).compile(conn, compile_kwargs={"literal_binds": True}))
            plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + query)))
            tree = conn.execute(text("EXPLAIN (FORMAT JSON) " + query)).scalar_one()
            stored = int(conn.execute(text("SELECT count(*) FROM contacts")).scalar_one())
        # Best of MONITOR_RUNS, each rolled back so every run finds and queues the same alerts: a shared
        # 2-core machine's neighbours can slow one run by half, and the budget is about the query, not them.
        runs = []
        for _ in range(MONITOR_RUNS):
            with wiring.engine().connect() as conn:
                started = time.perf_counter()
                with conn.begin() as transaction:
                    result = monitor(conn, policy=get_policy(), run_date=run_date, timezone="Europe/London")
                    runs.append(time.perf_counter() - started)
                    transaction.rollback()
        total = sum(result.overdue.values())
        wiring.engine().dispose()
    return {
        "contacts": stored,
        "overdue": total,
        "seconds": round(min(runs), 2),
        "runs_s": [round(r, 2) for r in runs],
        "uses_index": reads_contacts_by_index(tree[0]["Plan"]),
        "plan": plan.splitlines(),
    }


MONITOR_INDEX = "ix_contacts_pending_due"


def reads_contacts_by_index(plan: dict[str, Any]) -> bool:
    """The plan reaches contacts through the pending-due index with a condition on it, and never scans contacts.

    The index's name in the plan's text is not enough: an index scan with no condition reads every row.
    """
    nodes, stack = [], [plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    by_index = any(n.get("Index Name") == MONITOR_INDEX and n.get("Index Cond") for n in nodes)
    scans = any(n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "contacts" for n in nodes)
    return by_index and not scans


# What a night's writes and the floor depend on in the server: recorded beside the figures, since the same
# code measured against another server's settings gives other multiples.
SERVER_SETTINGS = ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync", "full_page_writes", "wal_level")


def server_facts() -> dict[str, Any]:
    """The benchmark server's PostgreSQL version, the collation new databases get, and the settings above."""
    with psycopg.connect(**connect_args(ADMIN_URL)) as conn:

        def one(query: str, *params: str) -> str:
            row = conn.execute(query, params).fetchone()
            assert row is not None
            return str(row[0])

        return {
            "version": one("SHOW server_version"),
            # fresh_database creates from template1, so its databases are collated as template1 is.
            "collation": one("SELECT datcollate FROM pg_database WHERE datname = 'template1'"),
            "settings": {name: one("SELECT current_setting(%s)", name) for name in SERVER_SETTINGS},
        }


def cpu_check() -> float:
    """Seconds for a fixed pure-Python loop (best of three): how fast this machine was around the run."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 2)


def alert_burst(alerts: int, channels: int) -> dict[str, Any]:
    """Pending alerts across channels against a fake Slack allowing one message per second per channel."""
    from sqlalchemy import insert

    from iasu import wiring
    from iasu.db import upgrade
    from iasu.policy import get_policy
    from models import Alert
    from tasks.notify import SlackNotifier, dispatch
    from tests.slack_server import FakeSlack

    with fresh_database() as url, FakeSlack(rate_limit_per_second=1.0) as fake:
        upgrade(url)
        os.environ["IASU_DATABASE_URL"] = url
        wiring.reset()
        now = datetime.now(UTC)
        rows = [
            {
                "dedupe_key": f"missed:{i}:L1",
                "kind": "missed_contact",
                "level": 1,
                "channel": f"C0BURST{i % channels:02d}",
                "payload": {
                    "case_ref": f"CH-2026-{i:06d}",
                    "kind": "victim_followup",
                    "queue": "unit",
                    "tier": "high",
                    "level": 1,
                    "due_local": "Mon 02 Nov 2026 17:00",
                    "working_days_late": 1,
                    "staff_code": "CH-UNI-01",
                    "slack_user_id": None,
                },
                "status": "pending",
                "attempts": 0,
                "created_at": now,
            }
            for i in range(alerts)
        ]
        with wiring.engine().begin() as conn:
            conn.execute(insert(Alert.__table__), rows)  # type: ignore[attr-defined]
        started = time.perf_counter()
        result = dispatch(wiring.engine(), SlackNotifier("xoxb-bench", fake.base_url, 10), get_policy())
        seconds = time.perf_counter() - started
        limited = sum(1 for _, status in fake.requests if status == 429)
        wiring.engine().dispose()
    return {
        "alerts": alerts,
        "channels": channels,
        "messages": result.messages,
        "sent": result.sent,
        "seconds": round(seconds, 2),
        "rate_limited": limited,
    }


def main() -> None:
    """Run the benchmark and write benchmarks/results/latest.json."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None, help="results file (default: benchmarks/results/latest.json)")
    parser.add_argument("--readme", action="store_true", help="also rewrite the README's benchmark table")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each night; the median one is reported")
    parser.add_argument(
        "--history-days", type=int, default=7, help="nights of history under the history night (0: none)"
    )
    parser.add_argument(
        "--history-size", type=int, default=10_000, help="referrals a night, in the history and the night on it"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run each night under py-spy and write its flame graph (SVG) to DIR; figures to DIR/results.json",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.history_days < 0:
        parser.error("--history-days must not be negative")
    if args.history_days and args.history_size not in sizes:
        parser.error("--history-size must be one of --sizes: the night on a history is read against the empty one")
    if args.profile is not None:
        # A profiled night runs slower than it would: its figures must not pass for the published ones.
        if args.readme:
            parser.error("--profile and --readme do not go together: a profiled night's figures are not published")
        if not PY_SPY.exists():
            parser.error(f"--profile needs py-spy beside this Python ({PY_SPY.name}): run `make install`")
        # Absolute: py-spy writes the flame graphs from the nights' working directory, not this one.
        args.profile = args.profile.resolve()
        args.out = args.out or args.profile / "results.json"
        if args.out.resolve() == DEFAULT_OUT:
            parser.error("--profile does not write the published results: give --out another file, or none")
        args.profile.mkdir(parents=True, exist_ok=True)
    args.out = args.out or DEFAULT_OUT
    cpu_before = cpu_check()
    nights = []
    graphs: list[Path] = []  # this run's flame graphs, when profiled

    def graph(name: str) -> Path | None:
        if args.profile is None:
            return None
        graphs.append(args.profile / name)
        return graphs[-1]

    # The generated inboxes (a 100k night is about 70 MB of synthetic people) go when the nights are done.
    with tempfile.TemporaryDirectory(prefix="iasu-bench-") as scratch:
        work = Path(scratch)
        prefect_db = migrated_prefect_home(work / "prefect-home")
        # Each night dispatches its alerts to a local fake Slack at Slack's own per-channel rate.
        for size in sizes:
            generate_night(size, work / str(size))
            runs = []
            for k in range(1, args.repeat + 1):
                run = slack_night(work / str(size), prefect_db, profile_to=graph(f"night-{size}-run{k}.svg"))
                runs.append(run)
                print(f"night {size}: {json.dumps(run)}", file=sys.stderr)
            # The machine's speed drifts between runs: the median run is reported, every run's multiple beside it.
            result = median_run(runs) | {"size": size}
            result["runs"] = [
                {k: r[k] for k in ("copy_floor_s", "without_startup_s")} | {"multiple": round(multiple(r), 1)}
                for r in runs
            ]
            nights.append(result)
        on_history = None
        if args.history_days:
            place = work / f"{args.history_size}-history"
            generate_night(args.history_size, place, days=args.history_days + 1)
            on_history = slack_night(
                place, prefect_db, args.history_days, profile_to=graph(f"night-{args.history_size}-on-history.svg")
            )
            print(f"night {args.history_size} on a history: {json.dumps(on_history)}", file=sys.stderr)
            empty = next(n for n in nights if n["size"] == args.history_size)
            on_history["against_empty"] = against_empty(on_history, empty)
    monitored = monitor_at_scale(args.contacts) if args.contacts else None
    burst = alert_burst(args.alerts, 10) if args.alerts else None
    report: dict[str, Any] = {
        "git_revision": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # The same loop before and after: a shared machine's speed drifts, and every figure here with it.
            "python_loop_s": {"before": cpu_before, "after": cpu_check()},
            "postgresql": server_facts(),
        },
        "versions": {
            p: version(p) for p in ("prefect", "great-expectations", "sqlalchemy", "psycopg", "slack-sdk", "pandas")
        },
        # Under py-spy the nights run slower than they would: such a run's figures are read for where the
        # time goes, not against the budgets.
        "profiled": {
            "sampler": "py-spy",
            "rate_per_s": PROFILE_RATE,
            "flame_graphs": [g.name for g in graphs],
        }
        if args.profile
        else None,
        "nights": nights,
        "history_night": on_history,
        "monitor": monitored,
        "alert_burst": burst,
        "budgets": BUDGETS,
    }
    report["verdicts"] = [] if args.profile else verdicts(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    if args.readme:
        update_readme(ROOT / "README.md", report)


def slack_night(work: Path, prefect_db: Path, history_days: int = 0, profile_to: Path | None = None) -> dict[str, Any]:
    """One night (see `night`) dispatching its alerts to a local fake Slack at Slack's own per-channel rate."""
    from tests.slack_server import FakeSlack

    with FakeSlack(rate_limit_per_second=1.0) as fake:
        run = night(work, prefect_db, fake.base_url, history_days, profile_to)
        per_channel = Counter(m["channel"] for m in fake.messages)
    run["slack_messages"] = sum(per_channel.values())
    # Slack's one message a second per channel makes the busiest channel's messages a floor too.
    run["slack_floor_s"] = max(per_channel.values(), default=1) - 1
    return run


# The stages a night's referrals pass through alone: what follows them (scheduling, the monitor, dispatch)
# also answers for the staff's contacts feed and the history's open contacts, which an empty night lacks.
REFERRAL_STAGES = ("parse", "validate", "load", "route")


def against_empty(on_history: dict[str, Any], empty: dict[str, Any]) -> dict[str, float]:
    """The night on a history against the same size's night on an empty database, each over its own COPY floor.

    Each floor is measured in its night's own run, so the ratios hold across a drift in the machine's speed
    between the two (the history night runs once, after every empty one), and across their row counts.
    """

    def over_floor(run: dict[str, Any], seconds: float) -> float:
        return seconds / float(run["copy_floor_s"])

    def referral_stages(run: dict[str, Any]) -> float:
        return over_floor(run, sum(float(run["stages"][stage]) for stage in REFERRAL_STAGES))

    return {
        "referral_stages": round(referral_stages(on_history) / referral_stages(empty), 2),
        "without_startup": round(multiple(on_history) / multiple(empty), 2),
    }


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each budget of the issue against this run's figures: what was measured, the limit, met or not."""
    out: list[dict[str, Any]] = []

    def check(budget: str, measured: float, limit: float, under: bool = True) -> None:
        # "Under" a limit is strictly below it; "at most" and "within" allow it.
        met = measured < limit if under else measured <= limit
        out.append({"budget": budget, "measured": round(measured, 2), "limit": limit, "met": met})

    by_size = {n["size"]: n for n in report["nights"]}
    big = by_size.get(100_000)
    if big:
        check("100k night ÷ COPY floor", multiple(big), BUDGETS["copy_multiple"], under=False)
        check("100k night, s", big["without_startup_s"], BUDGETS["night_100k_s"])
        check("100k peak RSS, MB", big["peak_rss_mb"], BUDGETS["rss_mb"])
        if 10_000 in by_size:
            small = by_size[10_000]
            per_big, per_small = big["without_startup_s"] / big["rows"], small["without_startup_s"] / small["rows"]
            check("time per referral, 100k ÷ 10k", per_big / per_small, BUDGETS["scaling"], under=False)
    every_night = report["nights"] + ([report["history_night"]] if report.get("history_night") else [])
    if every_night:  # the night on a history too: its contacts feed is a task run of its own
        check("task runs per night (most)", max(n["task_runs"] for n in every_night), BUDGETS["task_runs"], under=False)
    if report.get("monitor"):
        check("monitor over 1M contacts, s", report["monitor"]["seconds"], BUDGETS["monitor_s"])
        out.append(_flag("monitor uses an index", bool(report["monitor"]["uses_index"])))
    if report.get("alert_burst"):
        burst = report["alert_burst"]
        check("alert burst of 5,000, s", burst["seconds"], BUDGETS["burst_s"])
        # Within the rate means Slack never had to say so: the fake answers 429 to a message sent too soon.
        within = burst["sent"] == burst["alerts"] and burst["rate_limited"] == 0
        out.append(_flag("burst: every alert sent within Slack's per-channel rate", within))
    return out


def _flag(budget: str, met: bool) -> dict[str, Any]:
    return {"budget": budget, "measured": met, "limit": True, "met": met}


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(readme: Path, report: dict[str, Any]) -> None:
    """Replace the README's benchmark block (between its markers) with this run's table and verdicts."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    readme.write_text(f"{text[:start]}\n{table(report)}\n{text[end:]}", encoding="utf-8")


def _cpu_bound(night: dict[str, Any], cpus: int) -> str:
    """A night's process and database CPU, and their sum over the cores, each also as a multiple of its floor."""
    floor, process, database = night["copy_floor_s"], night["process_cpu_s"], night.get("database_cpu_s")
    # CPU spreads over no more than the machine's cores: however the stages overlapped, the night's wall time
    # cannot be less than its CPU shared out over them. The backends' figure can only fall short of theirs
    # (ended ones are not counted), and the server's background writers are left out, so the bound holds.
    least = (process + (database or 0)) / cpus
    server = f"{database} s ({database / floor:.1f}×)" if database is not None else "–"
    return (
        f"{night['rows']:,}: process {process} s ({process / floor:.1f}×), database {server}, "
        f"over the cores {least:.2f} s ({least / floor:.1f}×)"
    )


def _history_line(h: dict[str, Any]) -> str:
    """The night on a history against the empty database's night of the same size."""
    before, feed, ratios = h["history"], h["contacts_feed"], h["against_empty"]
    stages, plural = h["stages"], "s" if before["days"] != 1 else ""
    return (
        f"On a history: a night of {h['rows']:,} referrals after {before['days']} night{plural} of as many, with staff "
        f"at work (the database held {before['referrals']:,} referrals, {before['open_cases']:,} open cases, "
        f"{before['pending_contacts']:,} pending contacts), and its contacts feed of {feed['received']:,} rows "
        f"({feed['applied']:,} applied); {h['linked_to_history']:,} of its referrals joined an earlier night's case. "
        f"Its referrals' stages ({', '.join(REFERRAL_STAGES)}) {sum(stages[s] for s in REFERRAL_STAGES):.2f} s, "
        f"the whole night {h['without_startup_s']} s without start-up against a COPY floor of {h['copy_floor_s']} s: "
        f"{ratios['referral_stages']}× and {ratios['without_startup']}× the empty database's night over its floor "
        f"(feed {feed['seconds']} s, schedule / monitor / dispatch "
        f"{stages['schedule']} / {stages['monitor']} / {stages['dispatch']} s, Slack's floor {h['slack_floor_s']} s)."
    )


def _profiled(profiled: dict[str, Any] | None) -> str:
    if not profiled:
        return ""
    return (
        f"\nProfiled: each night ran under {profiled['sampler']} at {profiled['rate_per_s']} samples a second, so "
        "slower than unprofiled; its figures say where the time goes, not whether a budget is met "
        f"(flame graphs: {', '.join(profiled['flame_graphs'])})."
    )


def _loop(check: dict[str, float] | None) -> str:
    return f"; a fixed Python loop took {check['before']} s before, {check['after']} s after" if check else ""


def _server(facts: dict[str, Any] | None) -> str:
    if not facts:
        return ""
    settings = ", ".join(f"{name} {value}" for name, value in facts["settings"].items())
    return f"\nPostgreSQL {facts['version']}, databases collated {facts['collation']}; {settings}."


def table(report: dict[str, Any]) -> str:
    """The results as Markdown: nights beside their COPY floor, monitor, burst, and each budget's verdict."""
    stages = ("parse", "validate", "load", "route", "schedule", "monitor", "dispatch")
    lines = [
        f"Revision {report['git_revision'][:10]}, {report['machine']['cpus']} cores, {report['when'][:10]}"
        + _loop(report["machine"].get("python_loop_s"))
        + "."
        + _server(report["machine"].get("postgresql"))
        + _profiled(report.get("profiled")),
        "",
        "| referrals | COPY floor s | writes floor s | end to end s | without start-up s | × floor | rows/s "
        "| peak RSS MB | task runs | " + " / ".join(stages) + " s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n in report["nights"]:
        each = sorted(r["multiple"] for r in n.get("runs", []))
        spread = f" ({each[0]:.0f}–{each[-1]:.0f} over {len(each)} runs)" if len(each) > 1 else ""
        lines.append(
            f"| {n['rows']:,} | {n['copy_floor_s']} | {n.get('write_floor_s') or '–'} | {n['end_to_end_s']} | "
            f"{n['without_startup_s']} | "
            f"{multiple(n):.0f}×{spread} | {n['rows_per_s']:,} | {n['peak_rss_mb']:,} | {n['task_runs']} | "
            + " / ".join(str(n["stages"].get(s, "–")) for s in stages)
            + " |"
        )
    if all("alerts" in n for n in report["nights"]):
        lines.append(
            "\nAlerts per night, queued / sent / left for the next dispatch: "
            + "; ".join(
                f"{n['rows']:,}: {n['alerts']['queued']:,} / {n['alerts']['sent']:,} / {n['alerts']['pending']:,}"
                for n in report["nights"]
            )
            + "."
        )
    if all("assigned_cases" in n for n in report["nights"]):
        lines.append(
            "Cases each night assigned to its staff (the demo's roster, as far as its capacity goes): "
            + "; ".join(f"{n['rows']:,}: {n['assigned_cases']:,}" for n in report["nights"])
            + "."
        )
    floors = [n for n in report["nights"] if n.get("write_floor_s") and n["copy_floor_s"]]
    if floors:
        lines.append(
            "The night's own writes alone (its stored rows COPYed into a fresh schema, indexes kept) and Slack's "
            "pacing of its busiest channel, against the COPY floor: "
            + "; ".join(
                f"{n['rows']:,}: {n['write_floor_s']} s ({n['write_floor_s'] / n['copy_floor_s']:.1f}×) "
                f"of {n['written_rows']:,} rows, {n.get('slack_floor_s', '–')} s"
                for n in floors
            )
            + "."
        )
    unlogged = [n for n in report["nights"] if n.get("copy_floor_unlogged_s")]
    if unlogged:
        lines.append(
            "The same COPY into an UNLOGGED table instead (no write-ahead log, so emptied by a crash), and the "
            "night against it: "
            + "; ".join(
                f"{n['rows']:,}: {n['copy_floor_unlogged_s']} s, "
                f"the night {n['without_startup_s'] / n['copy_floor_unlogged_s']:.0f}×"
                for n in unlogged
            )
            + "."
        )
    cpus = int(report["machine"].get("cpus") or 1)
    bounded = [n for n in report["nights"] if n.get("process_cpu_s") is not None and n["copy_floor_s"]]
    if bounded:
        lines.append(
            "CPU used from Running to Completed by the night's own process and by its database's PostgreSQL "
            "backends (– where they are not visible on this machine), and both shared over "
            f"{cpus} cores: the least the night could take however its stages overlapped, against the COPY floor: "
            + "; ".join(_cpu_bound(n, cpus) for n in bounded)
            + "."
        )
    h = report.get("history_night")
    if h:
        lines.append(_history_line(h))
    m, b = report.get("monitor"), report.get("alert_burst")
    if m:
        lines.append(
            f"\nMonitor: {m['contacts']:,} contacts, {m['overdue']:,} overdue, {m['seconds']} s "
            f"(best of {', '.join(map(str, m.get('runs_s', [m['seconds']])))}), index used: {m['uses_index']}."
        )
    if b:
        lines.append(
            f"Alert burst: {b['alerts']:,} alerts to {b['channels']} channels in {b['messages']} messages, "
            f"{b['seconds']} s, {b['rate_limited']} rate-limited answers."
        )
    if report.get("verdicts"):
        lines += ["", "| budget | measured | limit | met |", "|---|---:|---:|---|"]
        lines += [
            f"| {v['budget']} | {v['measured']} | {v['limit']} | {'yes' if v['met'] else '**no**'} |"
            for v in report["verdicts"]
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
