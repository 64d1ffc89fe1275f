"""The nightly flow end to end under Prefect's test harness, on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
)

from deployments.scheduled import scheduled_nightly
from flows.catchup import catch_up
from flows.nightly import ALERTS_UNDELIVERED, night_summary, nightly
from iasu import wiring
from iasu.errors import OperatorError
from tasks.adapters import shown_name
from tests.support import counts, dump_database, leaks, personal_needles, policy_with, write_days

DAY = date(2026, 11, 17)
QUARANTINE_OPS_THRESHOLD = 5  # below the dirty night's quarantined rows (the shipped policy says 20)
pytestmark = [pytest.mark.flow, pytest.mark.postgres]


@pytest.fixture
def pg_configured(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from iasu import wiring

    monkeypatch.setenv("IASU_DATABASE_URL", pg_url)
    monkeypatch.setenv("IASU_VAR_DIR", str(tmp_path / "var"))
    wiring.reset()
    return pg_url


def run(inbox: Path) -> tuple[dict[str, Any], UUID]:
    state = nightly(run_date=DAY, inbox=inbox, return_state=True)
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return night_summary(state), flow_run_id


def run_texts(flow_run_id: UUID) -> tuple[str, str, list[str]]:
    """Everything the Prefect UI shows for a run: its logs, artifacts, parameters and task-run names."""
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), task_run_filter=TaskRunFilter()
        )
    log_text = "\n".join(log.message for log in logs)
    ui_text = "\n".join(str(a.data) for a in artifacts) + str(flow_run.parameters)
    ui_text += "\n".join(f"{t.name} {t.task_inputs}" for t in task_runs)
    return log_text, ui_text, [t.name for t in task_runs]


def quarantine_alerts(url: str) -> list[dict[str, Any]]:
    """The payloads of the ops alerts queued for nights that quarantined too many rows."""
    from sqlalchemy import create_engine, select

    from models import Alert

    alerts = Alert.__table__  # type: ignore[attr-defined]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stmt = select(alerts.c.payload).where(alerts.c.dedupe_key.like("ops:quarantine:%"))
            return list(conn.execute(stmt).scalars())
    finally:
        engine.dispose()


def test_a_dirty_night_reconciles_reruns_idempotently_and_leaks_nothing(
    pg_configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threshold = f"quarantine_ops_threshold: {QUARANTINE_OPS_THRESHOLD}"
    monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a=f"quarantine_ops_threshold: 20=>{threshold}")))
    wiring.reset()
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=120, dirty=0.12, seed=21)
    (inbox / DAY.isoformat() / "police_rms_resend.csv").write_bytes(b"\xef\xbb\xbfURN\r\n\x81\x8d\r\n")
    needles = personal_needles(inbox)

    first, first_id = run(inbox)
    assert first["received"] == first["loaded"] + first["duplicates"] + first["quarantined"] + first["held_rows"]
    assert first["loaded"] > 0 and first["quarantined"] > 0
    assert first["held_files"] == 1 and first["held_rows"] > 0
    after_first = counts(pg_configured)
    assert after_first["referrals"] == first["loaded"]
    assert sum(first["routed"].values()) == sum(first["tiers"].values()) == after_first["cases"]
    assert after_first["cases"] == first["loaded"] - first["merged"]
    # More rows quarantined than the policy's threshold: ops are told once, with the night's count.
    assert first["quarantined"] > QUARANTINE_OPS_THRESHOLD
    assert quarantine_alerts(pg_configured) == [
        {"event": "quarantine_above_threshold", "date": str(DAY), "rows": first["quarantined"]}
    ]

    second, second_id = run(inbox)
    assert second["loaded"] == 0
    assert second["routed"] == {} and second["tiers"] == {}
    assert first["scheduled"] == first["open_contacts"] > 0 and second["scheduled"] == 0
    assert second["duplicates"] == second["received"] - second["quarantined"] - second["held_rows"]
    assert (second["received"], second["quarantined"], second["held_rows"]) == (
        first["received"],
        first["quarantined"],
        first["held_rows"],
    )
    after_second = counts(pg_configured)
    for table in ("referrals", "people", "cases", "contacts", "alerts", "quarantine_open", "batches"):
        assert after_second[table] == after_first[table], table

    logs, ui, task_names = run_texts(first_id)
    assert any(name.startswith("ingest police_rms_") for name in task_names), task_names
    assert f"| {shown_name('police_rms_resend.csv')} | held |" in ui
    assert "Data Docs" in ui
    assert "## Cases opened" in ui and "| unit | high |" in ui
    assert "## Contacts" in ui
    docs = Path(first["data_docs"]).parent
    docs_text = "".join(p.read_text(errors="ignore") for p in docs.rglob("*.html"))
    for text in (logs, ui, docs_text, dump_database(pg_configured), str(first), *run_texts(second_id)[:2]):
        assert leaks(text, needles) == []


def test_a_night_whose_alerts_slack_refuses_completes_under_a_name_that_says_so(
    pg_configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iasu import wiring
    from tests.slack_server import FakeSlack

    write_days(tmp_path / "inbox", DAY, per_day=30, dirty=0.0)
    with FakeSlack() as fake:
        fake.mode = "invalid_auth"
        monkeypatch.setenv("IASU_SLACK_TOKEN", "xoxb-revoked")
        monkeypatch.setenv("IASU_SLACK_BASE_URL", fake.base_url)
        monkeypatch.setenv("IASU_INBOX", str(tmp_path / "inbox"))
        wiring.reset()
        state = nightly(run_date=DAY, inbox=tmp_path / "inbox", return_state=True)
        # The next night's catch-up meets the same refusal: its run, the one operators look at, says so too.
        caught_up = catch_up(through=DAY + timedelta(days=1), return_state=True)
        # And so does the scheduled run that wraps the catch-up, as served at 02:00 (on the night after).
        monkeypatch.setattr("deployments.scheduled.utcnow", lambda: datetime(2026, 11, 20, 2, tzinfo=UTC))
        scheduled = scheduled_nightly(since=DAY + timedelta(days=2), return_state=True)
    # The night's own work is done and not to be rerun; its alerts wait for a new token, as the UI shows.
    assert state.is_completed() and state.name == ALERTS_UNDELIVERED
    assert caught_up.is_completed() and caught_up.name == ALERTS_UNDELIVERED
    assert scheduled.is_completed() and scheduled.name == ALERTS_UNDELIVERED
    nights = caught_up.result()
    assert isinstance(nights, list) and [night["run_date"] for night in nights] == [str(DAY + timedelta(days=1))]
    summary = night_summary(state)
    assert summary["received"] > 0 and summary["alerts"]["failed"] > 0
    assert state.message == summary["alerts"]["stopped"]
    assert "`iasu alert retry --failed-with invalid_auth`" in summary["alerts"]["stopped"]


def test_a_night_the_database_fails_mid_way_ends_in_one_line_without_its_sql(
    pg_configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from iasu import wiring
    from tasks import route
    from tasks.night import NIGHT_RUNS

    def lost(*args: object, **kwargs: object) -> None:  # the server restarted while routing
        raise OperationalError("SELECT ZZSTATEMENTMARKER FROM referrals", {}, Exception("server closed the connection"))

    write_days(tmp_path / "inbox", DAY, per_day=20, dirty=0.0)
    monkeypatch.setattr(route, "route", lost)
    state = nightly(run_date=DAY, inbox=tmp_path / "inbox", return_state=True)
    assert state.is_failed()
    assert state.message == (
        f"the night of {DAY} stopped on a database error (server closed the connection): it is marked failed, "
        "and the next catch-up or `iasu nightly --date` reruns it"
    )
    with wiring.engine().connect() as conn:
        assert conn.execute(select(NIGHT_RUNS.c.status)).scalars().all() == ["failed"]
    with pytest.raises(OperatorError, match="stopped on a database error"):
        night_summary(state)
    assert "ZZSTATEMENTMARKER" not in (state.message or "")


def test_a_night_blocked_behind_a_session_left_open_fails_in_one_line_and_frees_the_next(
    pg_configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, select, text

    from iasu import wiring
    from models import db
    from tasks.night import NIGHT_RUNS

    with wiring.engine().connect() as conn:  # as served: a lock is waited for ten minutes at most
        assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "10min"
    options = db.PG_CONNECT_ARGS | {"options": "-c lock_timeout=1s"}  # ten minutes shortened for the test
    monkeypatch.setattr(db, "PG_CONNECT_ARGS", options)
    wiring.reset()
    write_days(tmp_path / "inbox", DAY, per_day=20, dirty=0.0)
    forgotten = create_engine(pg_configured)  # a psql session someone left open holding a lock on referrals
    with forgotten.connect() as psql:
        psql.execute(text("LOCK TABLE referrals IN ACCESS EXCLUSIVE MODE"))
        state = nightly(run_date=DAY, inbox=tmp_path / "inbox", return_state=True)
        psql.rollback()
    forgotten.dispose()
    assert state.is_failed() and "canceling statement due to lock timeout" in (state.message or "")
    with wiring.engine().connect() as conn:
        assert conn.execute(select(NIGHT_RUNS.c.status)).scalars().all() == ["failed"]
    assert nightly(run_date=DAY, inbox=tmp_path / "inbox", return_state=True).is_completed()  # rerun: done


def test_files_named_freely_or_not_in_utf8_are_taken_in_under_names_that_say_nothing(
    pg_configured: str, tmp_path: Path
) -> None:
    import os

    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=20, dirty=0.0, seed=5)
    folder = inbox / DAY.isoformat()
    police = next(folder.glob("police_rms_*"))
    nhs = next(folder.glob("nhs_trust_*"))
    # A resend named after a person, and a name copied from a share in cp1252 (not UTF-8).
    police.rename(folder / f"police_rms_{DAY}_ZQXNAMEMARK_correction.csv")
    nhs.rename(folder / os.fsdecode(f"nhs_trust_{DAY}_Zo".encode() + b"\xeb.jsonl"))
    (folder / "ZQXSTRAYMARK.csv").write_text("a,b\n1,2\n")

    summary, flow_run_id = run(inbox)

    files = {f["file"]: f for f in summary["file_counts"]}
    assert files[shown_name(f"police_rms_{DAY}_ZQXNAMEMARK_correction.csv")]["loaded"] > 0
    assert any(name.startswith(f"nhs_trust_{DAY}~") and f["loaded"] > 0 for name, f in files.items())
    stray = next(f for name, f in files.items() if name.startswith("file~"))
    assert stray["held_reason"] == "no adapter for this file name"
    logs, ui, task_names = run_texts(flow_run_id)
    var = tmp_path / "var"
    elsewhere = "".join(p.read_text(errors="replace") for p in var.rglob("*") if p.is_file())
    everything = "\n".join([str(summary), logs, ui, *task_names, elsewhere, dump_database(pg_configured)])
    assert leaks(everything, {"ZQXNAMEMARK", "ZQXSTRAYMARK", f"{DAY}_Zo", "\udceb"}) == []
    assert f"ingest police_rms_{DAY}~" in "\n".join(task_names)
