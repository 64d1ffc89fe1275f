"""Alert dispatch between nights: served every five minutes, one run at a time, and it delivers what is pending."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from deployments.scheduled import DISPATCH_CRON, NIGHTLY_CRON, deployments
from flows.dispatch import alert_dispatch
from iasu import wiring
from models import SCHEMA_REVISION
from tasks.outbox import ALERTS, outbox_row, queue_alert

pytestmark = pytest.mark.flow


def test_the_served_deployments_are_the_nightly_and_a_dispatch_every_five_minutes() -> None:
    served = {d.name: d for d in deployments()}
    assert set(served) == {"nightly", "alert-dispatch"}
    # The night at 02:00 local time; the dispatch every five minutes of UTC, so none is lost in the hour the
    # clocks go back.
    for name, cron, zone in (("nightly", NIGHTLY_CRON, "Europe/London"), ("alert-dispatch", DISPATCH_CRON, "UTC")):
        [schedule] = served[name].schedules or []
        assert getattr(schedule.schedule, "cron", None) == cron
        assert getattr(schedule.schedule, "timezone", None) == zone
        # One run at a time: a run still going cancels the next rather than a second one starting beside it.
        assert served[name].concurrency_limit == 1
        options = served[name].concurrency_options
        assert options is not None and options.collision_strategy == "CANCEL_NEW"


def test_the_dispatch_flow_sends_what_is_pending(configured: str) -> None:
    with wiring.engine().begin() as conn:
        queue_alert(conn, [outbox_row("ops", "ops:test:day", "C0OPS", {"event": "test"})])
    result = alert_dispatch()
    assert isinstance(result, dict)
    assert result["dry_run"] == 1 and result["pending"] == 0  # no Slack token here: the dry-run outbox
    with wiring.engine().connect() as conn:
        assert conn.execute(select(ALERTS.c.status)).scalars().all() == ["dry_run"]


def test_the_dispatch_flow_on_a_database_without_the_schema_fails_in_one_line(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IASU_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("IASU_VAR_DIR", str(tmp_path / "var"))
    wiring.reset()
    state = alert_dispatch(return_state=True)
    wiring.reset()
    assert state.is_failed(), state
    assert state.message == f"database schema is empty, code expects {SCHEMA_REVISION}: run `iasu db upgrade`"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "[SQL:" not in err, err[-600:]


def test_a_dispatch_with_a_refused_setting_fails_in_one_line_without_its_value(
    configured: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A key mistyped in the served environment: the run names the variable, never what it was set to.
    monkeypatch.setenv("IASU_ENCRYPTION_KEY", "MARKERkeyMARKERé")
    wiring.reset()
    state = alert_dispatch(return_state=True)
    monkeypatch.undo()
    wiring.reset()
    assert state.is_failed(), state
    assert state.message is not None and state.message.startswith("bad settings: IASU_ENCRYPTION_KEY: is not URL-safe")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "MARKER" not in err and "MARKER" not in state.message, err[-600:]


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("down", "Slack unreachable: 3 alert(s) pending, sent by the next dispatch once Slack answers"),
        (
            "invalid_auth",
            "Slack refused the token (invalid_auth): 1 alert(s) failed, 2 pending;"
            " set a working IASU_SLACK_TOKEN, then run `iasu alert retry --failed-with invalid_auth`",
        ),
    ],
)
def test_a_dispatch_that_slack_stops_fails_saying_what_to_do(
    configured: str, monkeypatch: pytest.MonkeyPatch, mode: str, said: str
) -> None:
    from tests.slack_server import FakeSlack

    with wiring.engine().begin() as conn:  # three channels: three failures in a row stop the dispatch
        queue_alert(conn, [outbox_row("ops", f"ops:test:{n}", f"C0OPS{n}", {"event": "test"}) for n in range(3)])
    with FakeSlack() as fake:
        fake.mode = mode  # type: ignore[assignment]
        monkeypatch.setenv("IASU_SLACK_TOKEN", "xoxb-test")
        monkeypatch.setenv("IASU_SLACK_BASE_URL", fake.base_url)
        wiring.reset()
        state = alert_dispatch(return_state=True)
    # Alerts undelivered until Slack answers or someone acts: a failed run in the UI, not a green one.
    assert state.is_failed() and state.message == said
    from tasks.queries import table_counts

    assert table_counts(wiring.engine())["alerts_failed"] == (1 if mode == "invalid_auth" else 0)  # iasu status


def test_one_message_that_cannot_reach_slack_fails_the_dispatch_too(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.slack_server import FakeSlack

    with wiring.engine().begin() as conn:  # one alert: too few sends for the breaker's three in a row
        queue_alert(conn, [outbox_row("ops", "ops:test:1", "C0OPS1", {"event": "test"})])
    with FakeSlack() as fake:
        fake.mode = "down"
        monkeypatch.setenv("IASU_SLACK_TOKEN", "xoxb-test")
        monkeypatch.setenv("IASU_SLACK_BASE_URL", fake.base_url)
        wiring.reset()
        state = alert_dispatch(return_state=True)
        assert state.is_failed() and state.message == (
            "Slack unreachable: 1 alert(s) pending, sent by the next dispatch once Slack answers"
        )
        fake.mode = "ok"
        assert alert_dispatch(return_state=True).is_completed()  # Slack back: delivered, green
    with wiring.engine().connect() as conn:
        assert conn.execute(select(ALERTS.c.status)).scalars().all() == ["sent"]


def serve(env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m deployments.serve` as an operator starts it; these tests expect it to stop at start."""
    command = [sys.executable, "-m", "deployments.serve"]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_serving_from_a_terminal_sends_prefect_no_usage_data(tmp_path: Path) -> None:
    # Prefect decides at import, and on a terminal a new Prefect home announces its telemetry and reports
    # a first import: the product's defaults must come before the served flows' module imports Prefect.
    env = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    env["PREFECT_HOME"] = str(tmp_path / "new-home")
    probe = "import deployments.scheduled, os; print('tracking', os.environ.get('DO_NOT_TRACK'))"
    controller, terminal = pty.openpty()
    with os.fdopen(controller, "rb") as screen:
        imported = subprocess.run(
            [sys.executable, "-c", probe], env=env, stdin=terminal, stdout=terminal, stderr=terminal, timeout=120
        )
        os.close(terminal)
        said = b""
        while chunk := _read_or_none(screen):
            said += chunk
    assert imported.returncode == 0, said.decode(errors="replace")
    assert "tracking 1" in said.decode(errors="replace")
    assert b"usage data" not in said, said.decode(errors="replace")


def _read_or_none(screen: Any) -> bytes:
    try:
        return bytes(os.read(screen.fileno(), 4096))
    except OSError:  # the terminal's other end is closed: everything written has been read
        return b""


@pytest.mark.parametrize(
    ("api_url", "said"),
    [
        (None, "PREFECT_API_URL is not set"),
        # Nothing listens on port 1: a server not started yet, or the wrong port.
        ("http://127.0.0.1:1/api", "the Prefect server at PREFECT_API_URL (http://127.0.0.1:1/api) does not answer"),
    ],
)
def test_serving_without_a_prefect_server_stops_at_start_in_one_line(
    sqlite_url: str, tmp_path: Path, api_url: str | None, said: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IASU_SLACK", "PREFECT_API"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), IASU_SLACK_DRY_RUN="true")
    env.update(IASU_DATABASE_URL=sqlite_url, IASU_INBOX=str(tmp_path))  # all else ready to serve
    if api_url:
        env["PREFECT_API_URL"] = api_url
    served = serve(env)
    assert served.returncode == 2
    [line] = served.stderr.strip().splitlines()
    assert line.startswith(f"deployments.serve: {said}"), served.stderr


def test_serving_without_a_slack_token_stops_at_start_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IASU_SLACK")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    served = serve(env)
    assert served.returncode == 2
    assert served.stderr.strip().splitlines() == [
        "deployments.serve: bad settings: IASU_SLACK_TOKEN not set, so served alerts would be marked dry_run and "
        "never sent; set it, or IASU_SLACK_DRY_RUN=true to serve without Slack"
    ]


def serve_ready_but(sqlite_url: str, tmp_path: Path, changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Serve with everything a served night needs in place (a Prefect server that does not answer) but changes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IASU_SLACK", "PREFECT_API"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"), IASU_SLACK_DRY_RUN="true", PREFECT_API_URL="http://127.0.0.1:1/api"
    )
    env.update({"IASU_DATABASE_URL": sqlite_url, "IASU_INBOX": str(tmp_path)} | changes)
    return serve(env, cwd=tmp_path)


def test_a_bad_prefect_setting_is_named_as_prefects(sqlite_url: str, tmp_path: Path) -> None:
    served = serve_ready_but(sqlite_url, tmp_path, {"PREFECT_CLIENT_MAX_RETRIES": "several"})
    assert served.returncode == 2
    # Prefect says so itself as it loads its plugins; serving's own line, last, names Prefect's setting.
    assert served.stderr.strip().splitlines()[-1] == (
        "deployments.serve: bad Prefect setting (ClientSettings.max_retries): "
        "Input should be a valid integer, unable to parse string as an integer"
    )


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"IASU_TIMEZONE": "Europe/Londn"}, "bad settings: IASU_TIMEZONE: "),
        ({"IASU_DATABASE_URL": "mysql://x"}, "bad settings: IASU_DATABASE_URL: must be sqlite:///PATH or"),
        ({"IASU_INBOX": "no-such-inbox"}, "inbox folder no-such-inbox does not exist"),
        ({"IASU_POLICY_FILE": "missing.yaml"}, "policy file missing.yaml cannot be read"),
        (
            {"IASU_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"},
            "database unreachable: postgresql+psycopg://nobody@",
        ),
    ],
)
def test_what_a_served_night_would_fail_on_at_2am_stops_serving_at_start_in_one_line(
    sqlite_url: str, tmp_path: Path, changes: dict[str, str], said: str
) -> None:
    served = serve_ready_but(sqlite_url, tmp_path, changes)
    assert served.returncode == 2
    [line] = served.stderr.strip().splitlines()
    assert line.startswith(f"deployments.serve: {said}"), served.stderr


def test_a_scheduled_dispatch_is_named_for_its_slot_not_the_minute_it_starts(configured: str) -> None:
    from datetime import UTC, datetime, timedelta

    from prefect import State, get_client
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    # A worker starts a run near its slot, often a fraction of a second before it: the UI names the slot. A slot
    # five minutes gone tells the two apart (a future one would make the engine wait for it).
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(alert_dispatch, state=Scheduled(scheduled_time=slot))
        state = run_flow(alert_dispatch, flow_run=run, return_type="state")
        assert isinstance(state, State) and state.is_completed(), state
        assert client.read_flow_run(run.id).name == f"alert-dispatch-{slot:%Y-%m-%dT%H:%M}Z"
