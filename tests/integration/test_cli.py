"""The `iasu` command as operators run it: a subprocess, real exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from iasu.demo_keys import KEY_VARS
from models import SCHEMA_REVISION
from tests.support import leaks, personal_needles, write_days

IASU = str(Path(sys.executable).with_name("iasu"))
DAY = date(2026, 11, 18)
STATUS_KEYS = [
    *("referrals", "people", "cases", "contacts", "alerts", "audit_events", "batches", "quarantine_open"),
    "alerts_failed",
]


def iasu(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IASU, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def env(tmp_path: Path, prefect_home: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith(("IASU_", "PYTEST_"))}
    values.update(
        IASU_ENCRYPTION_KEY=os.environ["IASU_ENCRYPTION_KEY"],
        IASU_BLIND_INDEX_KEY=os.environ["IASU_BLIND_INDEX_KEY"],
        IASU_DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'iasu.db'}",
        PREFECT_HOME=str(prefect_home),
    )
    return values


def assert_clean(stderr: str) -> None:
    for bad in ("Traceback", "ERROR", "WARNING", "Warning:", "database is locked"):
        assert bad not in stderr, stderr


def test_a_night_from_the_command_line_prints_its_summary_and_nothing_personal(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    write_days(tmp_path / "inbox", DAY, per_day=45, dirty=0.1, seed=33)
    (tmp_path / "inbox" / DAY.isoformat() / "mystery_export.txt").write_text("one\ntwo\n")  # held: no adapter
    needles = personal_needles(tmp_path / "inbox")

    night = iasu("nightly", "--date", DAY.isoformat(), "--json", env=env, cwd=tmp_path)
    assert night.returncode == 0, night.stderr
    assert_clean(night.stderr)
    summary = json.loads(night.stdout.strip().splitlines()[-1])
    for key in (
        "run_date",
        "received",
        "loaded",
        "duplicates",
        "quarantined",
        "held_files",
        "held_rows",
        "routed",
        "tiers",
    ):
        assert key in summary
    assert (
        summary["received"] == summary["loaded"] + summary["duplicates"] + summary["quarantined"] + summary["held_rows"]
    )
    assert leaks(night.stdout + night.stderr, needles) == []
    # The held file's batch id, which `iasu batch release` takes, is in the output, not only in Slack.
    [held] = summary["held_batches"]
    assert held["reason"] == "no adapter for this file name" and held["file"].startswith("file~")
    assert isinstance(held["batch_id"], int)

    status = iasu("status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0
    counts = json.loads(status.stdout)
    assert list(counts) == STATUS_KEYS
    assert counts["referrals"] == summary["loaded"]
    assert counts["quarantine_open"] == summary["quarantined"]
    assert counts["cases"] == sum(summary["routed"].values()) == sum(summary["tiers"].values())
    assert set(summary["overdue"]) == {"1", "2", "3"}
    assert set(summary["alerts"]) == {"queued", "sent", "failed", "dry_run", "pending", "stopped"}
    assert summary["alerts"]["stopped"] is None  # the dry run delivered everything
    assert summary["alerts"]["sent"] == 0 and summary["alerts"]["dry_run"] == summary["alerts"]["queued"] > 0

    listing = iasu("quarantine", "list", env=env, cwd=tmp_path)
    assert listing.returncode == 0
    assert len(listing.stdout.strip().splitlines()) == summary["quarantined"]
    assert leaks(listing.stdout, needles) == []


def test_read_only_commands_import_neither_prefect_nor_great_expectations(env: dict[str, str], tmp_path: Path) -> None:
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    probe = (
        "import sys\nfrom iasu.cli import app\n"
        "for args in (['status', '--json'], ['quarantine', 'list'], ['queue', 'list'], ['alert', 'list'],\n"
        "             ['contact', 'list'], ['--help']):\n"
        "    try:\n        app(args, prog_name='iasu')\n"
        "    except SystemExit as e:\n        assert not e.code, e.code\n"
        "import tasks.cases\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'great_expectations'))\n"
        "assert not loaded, loaded[:5]\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    started = time.monotonic()
    assert iasu("status", "--json", env=env, cwd=tmp_path).returncode == 0
    assert time.monotonic() - started < 10  # "about a second"; generous for a loaded CI machine


RECORD = ["contact", "record", "CH-2026-000001", "--kind", "victim_followup", "--outcome", "completed"]


def test_tonight_cannot_run_before_its_day_has_ended_and_nothing_of_it_is_taken_in(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The day that has not ended yet is the nearest date refused: its inbox is left as it is, the database empty."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    today = datetime.now(ZoneInfo("Europe/London")).date()
    write_days(tmp_path / "inbox", today, per_day=5, dirty=0.0, seed=7)
    night = iasu("nightly", "--date", today.isoformat(), env=env, cwd=tmp_path)
    if datetime.now(ZoneInfo("Europe/London")).date() != today:  # London's midnight passed in between
        pytest.skip("the day ended while the test ran")
    assert night.returncode == 2
    assert f"the night of {today} cannot run before that day has ended" in night.stderr
    assert "Traceback" not in night.stderr
    counts = json.loads(iasu("status", "--json", env=env, cwd=tmp_path).stdout)
    assert (counts["referrals"], counts["batches"], counts["audit_events"]) == (0, 0, 0)


def test_a_night_whose_data_docs_folder_cannot_be_made_is_refused_in_one_line_before_it_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A file left where the night's Data Docs folder goes stops the night before it reads anything, in one line."""
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    write_days(tmp_path / "inbox", DAY, per_day=5, dirty=0.0, seed=7)
    in_the_way = Path("var") / "data_docs" / DAY.isoformat()
    (tmp_path / in_the_way).parent.mkdir(parents=True)
    (tmp_path / in_the_way).write_text("not a folder\n")

    night = iasu("nightly", "--date", DAY.isoformat(), env=env, cwd=tmp_path)
    assert night.returncode == 2
    said = f"Data Docs folder {in_the_way} cannot be made (File exists)"
    assert f"iasu: {said}" in night.stderr.splitlines(), night.stderr
    assert "Traceback" not in night.stderr and "FileExistsError" not in night.stderr
    counts = json.loads(iasu("status", "--json", env=env, cwd=tmp_path).stdout)
    assert (counts["referrals"], counts["batches"], counts["audit_events"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("args", "changes", "message"),
    [
        (
            ["nightly", "--date", "2026-11-18", "--inbox", "no-such-folder"],
            {},
            "inbox folder no-such-folder does not exist",
        ),
        (["status"], {"IASU_ENCRYPTION_KEY": "short"}, "IASU_ENCRYPTION_KEY"),
        (["status"], {"IASU_BLIND_INDEX_KEY": ""}, "IASU_BLIND_INDEX_KEY"),
        (
            ["nightly", "--date", "2026-11-18"],
            {"IASU_ENCRYPTION_KEY": "", "IASU_BLIND_INDEX_KEY": ""},
            "IASU_ENCRYPTION_KEY",
        ),
        (["status"], {"IASU_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "database unreachable"),
        (["status"], {"IASU_DATABASE_URL": "sqlite:///empty.db"}, "iasu db upgrade"),
        (["status"], {"IASU_SLACK_BASE_URL": "not-a-url"}, "IASU_SLACK_BASE_URL: must be an http"),
        (
            ["nightly", "--date", "2026-11-18"],
            {"IASU_VAR_DIR": "/dev/null/var"},
            "IASU_VAR_DIR /dev/null/var cannot be",
        ),
        (
            ["generate", "--start", "2026-11-18", "--out", "/dev/null/inbox"],
            {},
            "cannot write the inbox under /dev/null",
        ),
        (["alert", "dispatch"], {"IASU_SLACK_BASE_URL": "slack.com/api/"}, "IASU_SLACK_BASE_URL: must be an http"),
        (
            ["nightly", "--date", "2026-11-18", "--inbox", "."],
            {"IASU_DATABASE_URL": "sqlite:///empty.db"},
            "db upgrade",
        ),
        (["nightly", "--date", "18/11/2026"], {}, "not a date"),
        (["nightly", "--date", "20261118"], {}, "not a date"),
        (["nightly", "--date", "2026-W47-3"], {}, "not a date"),
        (["nightly", "--date", "2099-11-18"], {}, "the night of 2099-11-18 cannot run before that day has ended"),
        (["demo", "--start", "2099-11-17", "--days", "2"], {}, "the night of 2099-11-18 cannot run before that day"),
        (["nightly", "--date", "2026-11-18"], {"IASU_TIMEZONE": "Europe/Londn"}, "IASU_TIMEZONE: no time zone"),
        (["nightly", "--date", "2026-11-18"], {"IASU_TIMEZONE": "Europe"}, "IASU_TIMEZONE: no time zone"),
        ([*RECORD, "--at", "20261118T1000"], {}, "not a date and time"),
        ([*RECORD, "--at", "2026-11-18T10:00", "--new-date", "2026-11-20"], {}, "--new-date is only for a rescheduled"),
        (["nightly", "--date", "2026-11-18", "--inbox", "/dev/null"], {}, "inbox folder /dev/null is not a folder"),
        (["batch", "release", "7", "--by", "x" * 129, "--reason", "r"], {}, "--by takes at most 128 characters"),
        (["case", "close", "CH-2026-000001", "--outcome", "x", "--by", "  ", "--reason", "r"], {}, "not be blank"),
        (
            [*RECORD, "--at", "2026-11-18T10:00", "--by", "ops\x1b[2J"],
            {},
            "--by holds a control character",
        ),
        (["alert", "retry"], {}, "give an alert id or --failed-with ERROR"),
        (["alert", "retry", "3", "--failed-with", "invalid_auth"], {}, "give an alert id or --failed-with ERROR"),
        (["nightly", "--date", "2026-11-18"], {"IASU_POLICY_FILE": "missing.yaml"}, "policy file missing.yaml"),
        # Typed on a terminal in Latin-1 (a lone byte 0xEB, not UTF-8): refused before any command reads it.
        (
            ["case", "close", "CH-2026-000001", "--outcome", "other", "--by", "sup", "--reason", "Zo\udceb"],
            {},
            "an argument is not valid UTF-8 text",
        ),
        (["staff", "add", "Zo\udceb", "--queue", "unit", "--force", "cheshire"], {}, "not valid UTF-8 text"),
        (
            [
                *("contact", "record", "CH-2026-000001", "--kind", "victim_followup", "--outcome", "rescheduled"),
                *("--at", "0001-01-01T00:30+01:00", "--new-date", "2026-11-20"),
            ],
            {},
            "--at is out of range",
        ),
    ],
)
def test_a_command_that_cannot_run_says_why_in_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str], changes: dict[str, str], message: str
) -> None:
    result = iasu(*args, env={**env, **changes}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_command_refused_for_want_of_a_sqlite_database_leaves_no_file_or_folder_behind(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A mistyped path must not become an empty database that a later `db upgrade` would be run on.
    missing = tmp_path / "mistyped" / "folder" / "iasu.db"
    changed = {**env, "IASU_DATABASE_URL": f"sqlite:///{missing}"}
    for args in (["status"], ["queue", "list"], ["contact", "list"], ["alert", "list"], ["alert", "dispatch"]):
        result = iasu(*args, env=changed, cwd=tmp_path)
        assert result.returncode == 2 and "run `iasu db upgrade`" in result.stderr, (args, result.stderr)
        assert not (tmp_path / "mistyped").exists(), args
    assert iasu("db", "upgrade", env=changed, cwd=tmp_path).returncode == 0
    assert missing.is_file() and iasu("status", env=changed, cwd=tmp_path).returncode == 0
    # The same database named as a URI filename is SQLite's to open, not a missing file.
    as_uri = {**env, "IASU_DATABASE_URL": f"sqlite:///file:{missing}?uri=true"}
    assert iasu("status", env=as_uri, cwd=tmp_path).returncode == 0


def test_an_unreachable_database_is_named_without_its_password_wherever_the_url_carries_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    # psycopg takes the password in the user part or as a query parameter; neither may be printed.
    for url in (
        "postgresql+psycopg://nobody:Pw-in-user-part-7431@127.0.0.1:1/none",
        "postgresql+psycopg://nobody@127.0.0.1:1/none?password=Pw-in-query-7431&connect_timeout=2",
    ):
        result = iasu("status", env={**env, "IASU_DATABASE_URL": url}, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "database unreachable: postgresql+psycopg://nobody" in result.stderr
        assert "7431" not in result.stdout + result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["staff", "add", "S" * 33, "--queue", "unit", "--force", "cheshire"], "staff id takes at most 32 characters"),
        (
            ["staff", "add", "s1", "--queue", "unit", "--force", "cheshire", "--slack-user", "U" + "0" * 40],
            "Slack user id takes at most 32 characters",
        ),
        (
            ["staff", "add", "s1", "--queue", "unit", "--force", "cheshire", "--capacity", "3000000000"],
            "capacity must be from 0 to 10000",
        ),
        (["alert", "retry", "99999999999"], "no such id 99999999999"),
        (["batch", "release", "99999999999", "--by", "ops", "--reason", "checked"], "no such id 99999999999"),
    ],
)
def test_input_the_schema_cannot_hold_is_refused_in_one_line_as_on_postgresql(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    # SQLite would store these (PostgreSQL refuses them with a database error): refused alike, before either.
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    result = iasu(*args, env=env, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr


def test_a_database_newer_than_the_code_is_said_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "var" / "iasu.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")  # a revision a later release would bring
    newer = (
        f"database schema is at revision 0099, newer than this code (which expects {SCHEMA_REVISION}): run the release"
    )
    for args in (["status"], ["db", "upgrade"]):
        result = iasu(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-600:]
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"iasu: {newer}"), line


def test_releasing_a_batch_that_does_not_exist_says_why_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    result = iasu("batch", "release", "7", "--by", "ops", "--reason", "checked", env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == "iasu: no batch 7", result.stderr


def test_the_demo_waits_for_prefect_as_every_night_does_and_says_so_in_one_line_when_it_cannot(
    env: dict[str, str], tmp_path: Path
) -> None:
    probe = (
        "import os\nfrom iasu.cli import app\n"
        "try:\n    app(['status'], prog_name='iasu')\nexcept SystemExit:\n    pass\n"
        "import iasu.simulation  # the demo's import, which imports Prefect through the tasks it runs\n"
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as waited\n"
        "assert waited.value() == 120, waited.value()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-800:]
    # A machine too busy for Prefect's temporary server to start in time (here: given one second).
    slow = {**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}
    demo = iasu("demo", "--days", "1", "--start", "2026-09-01", env=slow, cwd=tmp_path)
    assert demo.returncode == 2, demo.stderr[-800:]
    said = [line for line in demo.stderr.splitlines() if line.startswith("iasu: ")]
    assert said == [
        "iasu: Prefect's temporary server did not start within 1 s (a busy machine): run it again, or set"
        " PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL to a running server"
    ], demo.stderr[-800:]
    assert "Traceback" not in demo.stderr and "ERROR" not in demo.stderr


def test_the_demo_on_its_own_keys_runs_clean_and_says_once_they_are_for_local_data(
    env: dict[str, str], tmp_path: Path
) -> None:
    bare = {k: v for k, v in env.items() if k not in KEY_VARS}  # as `make demo` on a fresh machine
    demo = iasu("demo", "--days", "1", "--start", "2026-09-01", env=bare, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-800:]
    assert_clean(demo.stderr)
    assert "warning" not in demo.stderr.lower(), demo.stderr[-800:]
    said = [line for line in demo.stderr.splitlines() if line.startswith("iasu: ")]
    assert said == [
        "iasu: demo keys from var/demo-keys.json: local only, never for real data"
        " (set IASU_ENCRYPTION_KEY and IASU_BLIND_INDEX_KEY elsewhere)"
    ]
    assert "night 2026-09-01 done" in demo.stderr and "2026-09-01: received" in demo.stdout
    assert (tmp_path / "var" / "demo-keys.json").stat().st_mode & 0o777 == 0o600  # readable by its owner only


def test_a_held_files_line_names_its_batch_for_batch_release(capsys: pytest.CaptureFixture[str]) -> None:
    from iasu.cli import _print_summary

    held = {"file": "file~c2adf567", "status": "held", "held_reason": "no adapter for this file name", "batch_id": 7}
    counts = {"received": 2, "loaded": 0, "duplicates": 0, "quarantined": 0, "held_rows": 2}
    _print_summary({"run_date": "2026-11-18", "held_files": 1, **counts, "file_counts": [held | counts]}, False)
    line = "  file~c2adf567: held, received 2, loaded 0, duplicates 0, quarantined 0, held 2"
    assert f"{line} (no adapter for this file name; batch 7)\n" in capsys.readouterr().out


def test_the_demo_refuses_a_database_holding_what_it_did_not_write(env: dict[str, str], tmp_path: Path) -> None:
    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    added = iasu("staff", "add", "CH-UNI-77", "--queue", "unit", "--force", "cheshire", env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr

    live = {**env, "IASU_SLACK_TOKEN": "xoxb-the-units-own"}  # the unit's token left set in the shell
    demo = iasu("demo", "--days", "1", "--start", "2026-09-01", env=live, cwd=tmp_path)

    assert demo.returncode == 2
    assert "iasu: warning: the demo never posts to Slack: IASU_SLACK_TOKEN ignored" in demo.stderr
    said = [line for line in demo.stderr.splitlines() if line.startswith("iasu: ") and "warning" not in line]
    assert said == [
        "iasu: this database holds staff the demo did not write: the demo's synthetic records could never be"
        " removed from it (the audit log keeps them); give the demo a database of its own (IASU_DATABASE_URL,"
        " e.g. the default sqlite:///var/iasu.db)"
    ], demo.stderr[-800:]
    with sqlite3.connect(tmp_path / "var" / "iasu.db") as db:
        assert db.execute("SELECT count(*) FROM referrals").fetchone() == (0,)


def test_a_staff_file_whose_name_is_not_utf8_is_still_loaded_by_that_name(env: dict[str, str], tmp_path: Path) -> None:
    import os

    assert iasu("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    roster = tmp_path / os.fsdecode(b"roster_\xe9t\xe9.csv")  # copied from a share in cp1252
    roster.write_text("staff_code,name,role,queue,force,capacity,slack_user_id\nCH-UNI-21,,worker,unit,cheshire,5,\n")
    loaded = iasu("staff", "load", str(roster), env=env, cwd=tmp_path)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "1 staff row(s) loaded", loaded.stderr


def test_a_setting_prefect_refuses_is_said_as_prefects_not_as_one_of_ours(env: dict[str, str], tmp_path: Path) -> None:
    bad = {**env, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0.5"}
    result = iasu("nightly", "--date", "2026-11-18", "--inbox", ".", env=bad, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("iasu: ")]
    assert said == [
        "iasu: bad Prefect setting (ServerEphemeralSettings.startup_timeout_seconds): Input should be a valid"
        " integer, unable to parse string as an integer"
    ], result.stderr
