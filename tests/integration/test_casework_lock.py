"""The night's stages and staff's casework commands take turns on PostgreSQL (the casework lock)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from iasu import wiring
from iasu.policy import get_policy
from models import Contact
from rules.codes import Force, Queue, Tier
from tasks.cases import close_case, override_case
from tasks.locks import CASEWORK_LOCK, casework_lock
from tasks.outcomes import OutcomeReport, record_outcomes
from tasks.reindex import reindex_people
from tasks.route import route
from tasks.schedule import schedule
from tasks.staff import add_staff, deactivate_staff, load_staff_file
from tests.support import open_case

pytestmark = pytest.mark.postgres
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
OPENED = datetime(2026, 10, 19, 10, tzinfo=UTC)
RUN = date(2026, 10, 20)
TZ = "Europe/London"
REF = "CH-2026-000001"


@pytest.fixture
def casework(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """PostgreSQL with one open unit case, its first contacts pending and a worker holding it."""
    monkeypatch.setenv("IASU_DATABASE_URL", pg_url)
    monkeypatch.setenv("IASU_VAR_DIR", str(tmp_path / "var"))
    wiring.reset()
    with wiring.engine().begin() as conn:
        add_staff(
            conn,
            staff_code="CH-UNI-01",
            queue=Queue.unit,
            force=Force.cheshire,
            role="worker",
            capacity=10,
            cipher=wiring.cipher(),
            actor="test",
        )
        open_case(conn, REF, tier="high", queue="unit", opened_at=OPENED)
        schedule(conn, policy=get_policy(), run_date=RUN, actor="test", timezone=TZ)
    yield pg_url
    wiring.reset()


def _waiting(conn: Connection, *, casework_only: bool) -> bool:
    """Whether another session of this database waits for a lock: the casework lock, or any (a row's).

    Ends the watcher's transaction after: the activity statistics are a snapshot taken once per transaction.
    """
    sql = (
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()"
    )
    if casework_only:
        sql += f" AND l.locktype = 'advisory' AND l.objid = {CASEWORK_LOCK}"
    waiting = bool(conn.execute(text(sql)).scalar_one())
    conn.commit()
    return waiting


def _seen_waiting(watcher: Connection, worker: threading.Thread, *, casework_only: bool) -> bool:
    """Whether the worker, still running, is seen waiting for a lock within ten seconds."""
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        if _waiting(watcher, casework_only=casework_only):
            return worker.is_alive()
        time.sleep(0.05)
    return False


def _run_while_held(work: Callable[[Connection], Any]) -> None:
    """Run `work` in its own transaction while another holds the casework lock; it must wait for it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with wiring.engine().begin() as conn:
                work(conn)
        except BaseException as exc:  # reported by the test below, not lost in the thread
            outcome["error"] = exc

    with wiring.engine().connect() as holder, wiring.engine().connect() as watcher:
        with holder.begin():
            casework_lock(holder, "routing")
            worker = threading.Thread(target=run)
            worker.start()
            waited = _seen_waiting(watcher, worker, casework_only=True)
        worker.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert waited, "it went ahead while the night (or another command) held the casework lock"


def _report(outcome: str, hour: int) -> OutcomeReport:
    return OutcomeReport(
        case_ref=REF,
        kind="victim_first_contact",
        happened_at=datetime(2026, 10, 20, hour, tzinfo=UTC),
        outcome=outcome,
        new_date=None,
        recorded_by="CH-UNI-01",
    )


def _staff_file(folder: Path) -> Path:
    """A roster of one worker, as `iasu staff load` reads it."""
    roster = folder / "staff.csv"
    roster.write_text("staff_code,name,role,queue,force,capacity,slack_user_id\nCH-UNI-03,,worker,unit,cheshire,5,\n")
    return roster


WRITERS: dict[str, Callable[[Connection, Path], Any]] = {
    "route": lambda conn, folder: route(conn, policy=get_policy(), run_date=RUN, actor="test"),
    "schedule": lambda conn, folder: schedule(conn, policy=get_policy(), run_date=RUN, actor="test", timezone=TZ),
    "record outcomes": lambda conn, folder: record_outcomes(
        conn, [_report("completed", 9)], origin="cli", actor="test", policy=get_policy(), timezone=TZ
    ),
    "case close": lambda conn, folder: close_case(
        conn, REF, outcome="risk_reduced", by="sup", reason="done", policy=get_policy(), cipher=wiring.cipher()
    ),
    "case override": lambda conn, folder: override_case(
        conn,
        REF,
        queue=Queue.police_investigation,
        tier=Tier.medium,
        by="sup",
        reason="test",
        cipher=wiring.cipher(),
        policy=get_policy(),
        timezone=TZ,
    ),
    "staff add": lambda conn, folder: add_staff(
        conn, staff_code="CH-UNI-02", queue=Queue.unit, force=Force.cheshire, cipher=wiring.cipher(), actor="test"
    ),
    "staff load": lambda conn, folder: load_staff_file(conn, _staff_file(folder), cipher=wiring.cipher(), actor="test"),
    "staff deactivate": lambda conn, folder: deactivate_staff(
        conn, "CH-UNI-01", by="ops", reason="leaving", cipher=wiring.cipher()
    ),
    "linkage reindex": lambda conn, folder: reindex_people(
        conn, by="ops", cipher=wiring.cipher(), index=wiring.blind_index()
    ),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_each_writer_of_casework_waits_for_the_one_before_it(casework: str, writer: str, tmp_path: Path) -> None:
    _run_while_held(lambda conn: WRITERS[writer](conn, tmp_path))


def test_an_outcome_recorded_while_the_feed_applies_one_does_not_undo_it(casework: str) -> None:
    # The feed's completion at 09:00 is being applied (uncommitted) when staff record an earlier attempt.
    with wiring.engine().connect() as feed, wiring.engine().connect() as watcher:
        with feed.begin():
            record_outcomes(feed, [_report("completed", 9)], origin="feed", actor="t", policy=get_policy(), timezone=TZ)
            staff: dict[str, Any] = {}

            def by_hand() -> None:
                with wiring.engine().begin() as conn:
                    staff["result"] = record_outcomes(
                        conn,
                        [_report("attempted_no_answer", 8)],
                        origin="cli",
                        actor="t",
                        policy=get_policy(),
                        timezone=TZ,
                    )

            worker = threading.Thread(target=by_hand)
            worker.start()
            _seen_waiting(watcher, worker, casework_only=False)
        worker.join(30)
    with wiring.engine().connect() as conn:
        status = conn.execute(select(CONTACTS.c.status).where(CONTACTS.c.kind == "victim_first_contact")).scalar_one()
    assert status == "done", "the completed contact went back to pending"
    assert staff["result"].rejected == {0: "contact_pending"}


def test_each_writer_that_waits_says_once_for_what(
    casework: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="iasu.casework"):
        _run_while_held(lambda conn: WRITERS["case close"](conn, tmp_path))
    said = [r.getMessage() for r in caplog.records if r.name == "iasu.casework"]
    assert len(said) == 1, said
    assert said[0].startswith("case close waits for routing to finish (casework takes turns"), said


def test_a_transaction_that_takes_the_lock_again_keeps_its_first_name(casework: str) -> None:
    with wiring.engine().begin() as conn:
        casework_lock(conn, "case override")
        casework_lock(conn, "scheduling")  # the override's own scheduling, in the same transaction
        assert conn.execute(text("SHOW application_name")).scalar_one() == "iasu: case override"
    with wiring.engine().connect() as conn:
        assert not conn.execute(text("SHOW application_name")).scalar_one().startswith("iasu: ")


def test_a_command_behind_the_night_tells_the_operator_on_stderr(casework: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(IASU_DATABASE_URL=casework, IASU_VAR_DIR=str(tmp_path / "var"), PREFECT_HOME=str(tmp_path / "p"))
    command = [str(Path(sys.executable).with_name("iasu")), "case", "close", REF, "--outcome", "risk_reduced"]
    with wiring.engine().connect() as holder, wiring.engine().connect() as watcher:
        with holder.begin():
            casework_lock(holder, "routing")
            closing = subprocess.Popen(
                [*command, "--by", "sup"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            deadline = time.monotonic() + 60
            while closing.poll() is None and not _waiting(watcher, casework_only=True):
                assert time.monotonic() < deadline, "the command never reached the lock"
                time.sleep(0.1)
        _out, err = closing.communicate(timeout=60)
    assert closing.returncode == 0, err
    with wiring.engine().connect() as conn:
        assert conn.execute(text("SELECT status FROM cases")).scalar_one() == "closed"
    # One plain line, not a log record's decoration or a traceback.
    assert re.fullmatch(
        r"case close waits for routing to finish \(casework takes turns; it has held the lock for \d+ s\)\n", err
    ), err
