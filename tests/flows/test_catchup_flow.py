"""Catch-up and the scheduled night under Prefect's test harness: gaps run, one night at a time, one-line failures."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from deployments.scheduled import _scheduled_run_name, scheduled_nightly
from flows.catchup import catch_up
from flows.dispatch import alert_dispatch
from flows.nightly import night_summary, nightly
from iasu import wiring
from iasu.errors import OperatorError
from models.types import utcnow
from tasks import report
from tasks.night import NIGHT_RUNS, finish_night, last_completed, night_pulse, open_night, touch_night
from tests.support import write_days

pytestmark = pytest.mark.flow
D1 = date(2026, 11, 2)


def night_runs() -> list[tuple[date, str]]:
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(NIGHT_RUNS.c.run_date, NIGHT_RUNS.c.status).order_by(NIGHT_RUNS.c.id))
        return [(r.run_date, r.status) for r in rows]


def broken(*args: object) -> None:
    """A stage failing part way, as a bug or a lost database would make it."""
    raise RuntimeError("stage failed")


def reports_kept(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The markdown of every night's report from now on, in order."""
    reports: list[str] = []
    real = report.night_markdown

    def kept(*args: Any, **kwargs: Any) -> str:
        reports.append(real(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(report, "night_markdown", kept)
    return reports


def watermark() -> date | None:
    with wiring.engine().connect() as conn:
        return last_completed(conn)


def test_a_night_run_by_hand_past_a_gap_leaves_the_gap_to_the_catch_up(configured: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, D1, days=4, per_day=8, dirty=0.0, seed=3)
    d2, d3, d4 = (D1 + timedelta(days=n) for n in (1, 2, 3))
    nightly(run_date=D1, inbox=inbox)
    nightly(run_date=d3, inbox=inbox)  # by hand, past the night of d2
    assert watermark() == D1  # not d3: the night of d2 has not run

    with pytest.MonkeyPatch.context() as env:
        env.setenv("IASU_INBOX", str(inbox))
        wiring.reset()
        ran = catch_up(through=d4)
    assert isinstance(ran, list) and [night["run_date"] for night in ran] == [d2.isoformat(), d4.isoformat()]
    assert watermark() == d4  # d2 closed the gap, over d3 completed before it, and d4 followed
    assert night_runs() == [(D1, "completed"), (d3, "completed"), (d2, "completed"), (d4, "completed")]


def test_the_night_that_closes_a_gap_moves_the_watermark_over_every_night_completed_after_it(configured: str) -> None:
    """Nights run by hand past a gap are not run again by the catch-up once the gap is closed."""
    d2, d3, d4, d6 = (D1 + timedelta(days=n) for n in (1, 2, 3, 5))
    for night in (D1, d3, d4, d6, d2):  # the nights after d2 run by hand, d5 not at all; then d2 closes the gap
        finish_night.fn(open_night(night, None), night, {})
        assert watermark() == (D1 if night != d2 else d4)


def test_one_night_at_a_time_and_a_run_dead_or_stuck_stops_counting(configured: str) -> None:
    first = open_night(D1, "first")
    with pytest.raises(OperatorError, match=r"the night of 2026-11-02 is still running \(flow run first"):
        open_night(D1 + timedelta(days=1), "second")
    # Past the checks (started between them), the unique index over running nights refuses the second.
    with pytest.MonkeyPatch.context() as race:
        race.setattr("tasks.night.night_running", lambda conn, now: None)
        with pytest.raises(OperatorError, match="another night started just now"):
            open_night(D1 + timedelta(days=1), "second")

    def heard(pulse: timedelta, progress: timedelta) -> None:
        with wiring.engine().begin() as conn:
            conn.execute(
                NIGHT_RUNS.update()
                .where(NIGHT_RUNS.c.status == "running")
                .values(
                    started_at=utcnow() - timedelta(hours=3),
                    heartbeat_at=utcnow() - pulse,
                    progress_at=utcnow() - progress,
                )
            )

    heard(pulse=timedelta(minutes=1), progress=timedelta(minutes=100))  # alive, in a long stage: still running
    with pytest.raises(OperatorError, match="still running"):
        open_night(D1 + timedelta(days=1), "second")
    heard(pulse=timedelta(minutes=11), progress=timedelta(minutes=11))  # its pulse stopped: its process died
    second = open_night(D1 + timedelta(days=1), "second")
    heard(pulse=timedelta(minutes=1), progress=timedelta(minutes=121))  # alive, but no stage finished: stuck
    third = open_night(D1 + timedelta(days=2), "third")
    # Had the first been alive after all, its next stage stops it rather than let it run beside the third.
    for taken in (first, second):
        with pytest.raises(OperatorError, match="was taken as failed while it ran"):
            touch_night(taken)
    touch_night(third)
    assert [status for _, status in night_runs()] == ["failed", "failed", "running"]


def test_a_running_night_notes_every_minute_that_its_process_lives(configured: str) -> None:
    night = open_night(D1, "pulsing")
    with wiring.engine().begin() as conn:
        conn.execute(NIGHT_RUNS.update().values(heartbeat_at=utcnow() - timedelta(minutes=9)))

    with night_pulse(night, every=timedelta(milliseconds=50)):
        time.sleep(0.5)

    with wiring.engine().connect() as conn:
        beat = conn.execute(select(NIGHT_RUNS.c.heartbeat_at)).scalar_one()
    if isinstance(beat, str):
        beat = datetime.fromisoformat(beat)
    assert utcnow() - beat.replace(tzinfo=beat.tzinfo or UTC) < timedelta(seconds=5)


def test_a_night_that_fails_part_way_is_marked_failed_and_the_next_can_start(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, D1, per_day=5, dirty=0.0, seed=3)

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("flows.nightly.route_referrals", broken)
    state = nightly(run_date=D1, inbox=inbox, return_state=True)
    assert state.is_failed()
    assert night_runs() == [(D1, "failed")]
    monkeypatch.setattr("flows.nightly.route_referrals", interrupted)  # Ctrl-C, Prefect perhaps gone with it
    with pytest.raises(KeyboardInterrupt):
        nightly(run_date=D1, inbox=inbox)
    assert night_runs() == [(D1, "failed"), (D1, "failed")]
    monkeypatch.undo()
    nightly(run_date=D1, inbox=inbox)  # rerun at once: nothing keeps it out
    assert night_runs() == [(D1, "failed"), (D1, "failed"), (D1, "completed")]


def test_a_night_that_failed_after_routing_is_reported_routed_by_the_rerun_that_completes_it(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import Case

    inbox = tmp_path / "inbox"
    write_days(inbox, D1, per_day=10, dirty=0.0, seed=3)
    monkeypatch.setattr("flows.nightly.schedule_contacts", broken)
    assert nightly(run_date=D1, inbox=inbox, return_state=True).is_failed()  # routed and committed, then failed
    assert nightly(run_date=D1, inbox=inbox, return_state=True).is_failed()  # again: routes nothing new
    monkeypatch.undo()
    reports = reports_kept(monkeypatch)
    summary = night_summary(nightly(run_date=D1, inbox=inbox, return_state=True))
    again = night_summary(nightly(run_date=D1, inbox=inbox, return_state=True))  # nothing routed, nothing carried
    k = Case.__table__.c  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        cases = conn.execute(select(k.queue, k.tier, k.case_ref)).all()
    assert len(cases) > 0 and night_runs() == [(D1, "failed"), (D1, "failed"), (D1, "completed"), (D1, "completed")]
    assert summary["routed"] == dict(sorted(Counter(c.queue for c in cases).items()))
    assert summary["tiers"] == dict(sorted(Counter(c.tier for c in cases).items()))
    # The completing run's report lists, under its cases opened, the cases its counts include.
    opened = reports[0].split("## Cases opened")[1].split("\n## ")[0]
    assert all(c.case_ref in opened for c in cases), opened
    assert again["routed"] == {} and again["tiers"] == {} and "No new cases." in reports[1]


def test_what_failed_attempts_of_a_night_did_is_counted_by_the_run_that_completes_it(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import Alert, Case, Contact

    inbox = tmp_path / "inbox"
    write_days(inbox, D1, per_day=10, dirty=0.0, seed=3)
    monkeypatch.setattr("flows.nightly.dispatch_alerts", broken)  # routed, scheduled and monitored, then failed
    assert nightly(run_date=D1, inbox=inbox, return_state=True).is_failed()
    monkeypatch.undo()
    monkeypatch.setattr("flows.nightly.publish_report", broken)  # everything done but the report
    assert nightly(run_date=D1, inbox=inbox, return_state=True).is_failed()
    monkeypatch.undo()
    reports = reports_kept(monkeypatch)
    summary = night_summary(nightly(run_date=D1, inbox=inbox, return_state=True))

    assert night_runs() == [(D1, "failed"), (D1, "failed"), (D1, "completed")]
    with wiring.engine().connect() as conn:
        cases = conn.execute(select(Case.__table__.c.case_ref)).scalars().all()  # type: ignore[attr-defined]
        contacts = conn.execute(select(func.count()).select_from(Contact)).scalar_one()
        alerts = conn.execute(select(func.count()).select_from(Alert)).scalar_one()
    assert cases and contacts and alerts
    assert sum(summary["routed"].values()) == len(cases)
    assert summary["scheduled"] == contacts  # created by the first attempt: the last found none missing
    assert summary["alerts"]["queued"] == alerts  # queued by the first attempt, sent by the last
    assert summary["alerts"]["sent"] + summary["alerts"]["dry_run"] == alerts
    opened = reports[0].split("## Cases opened")[1].split("\n## ")[0]
    assert len(reports) == 1 and all(ref in opened for ref in cases), reports


def test_a_nights_queued_alerts_are_those_of_its_own_attempts_not_what_came_between(
    configured: str, tmp_path: Path
) -> None:
    from models import Alert

    inbox = tmp_path / "inbox"
    write_days(inbox, D1, days=2, per_day=10, dirty=0.0, seed=3)
    d2 = D1 + timedelta(days=1)
    with wiring.engine().begin() as conn:  # an attempt at the night of D1 that failed an hour ago
        an_hour_ago = utcnow() - timedelta(hours=1)
        conn.execute(
            NIGHT_RUNS.insert().values(
                run_date=D1, status="failed", started_at=an_hour_ago, finished_at=an_hour_ago + timedelta(minutes=1),
                summary={},
            )
        )  # fmt: skip
    nightly(run_date=d2, inbox=inbox)  # another night, between the attempt and the rerun
    with wiring.engine().connect() as conn:
        between = conn.execute(select(func.count()).select_from(Alert)).scalar_one()
    summary = night_summary(nightly(run_date=D1, inbox=inbox, return_state=True))
    with wiring.engine().connect() as conn:
        every = conn.execute(select(func.count()).select_from(Alert)).scalar_one()
    assert between > 0 and summary["alerts"]["queued"] == every - between > 0


def test_what_the_operator_must_fix_fails_the_scheduled_run_in_one_line(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IASU_INBOX", str(tmp_path / "no-such-inbox"))
    wiring.reset()
    state = scheduled_nightly(return_state=True)
    assert state.is_failed() and state.message == f"inbox folder {tmp_path / 'no-such-inbox'} does not exist"
    assert night_runs() == []

    refused = catch_up(through=D1 + timedelta(days=60), since=D1, return_state=True)
    assert refused.is_failed() and refused.message is not None and "61 nights to catch up" in refused.message

    # The scheduled run takes since= and max_nights= when started by hand, for a longer outage or a replay.
    monkeypatch.setenv("IASU_INBOX", str(tmp_path))
    wiring.reset()
    by_hand = scheduled_nightly(since=D1, max_nights=2, return_state=True)
    assert by_hand.is_failed() and "more than max_nights=2" in (by_hand.message or "")
    assert "prefect deployment run scheduled-nightly/nightly --param max_nights=N" in (by_hand.message or "")

    monkeypatch.setenv("IASU_POLICY_FILE", str(tmp_path / "missing.yaml"))
    wiring.reset()
    dispatch = alert_dispatch(return_state=True)
    assert dispatch.is_failed() and dispatch.message is not None and "missing.yaml" in dispatch.message
    assert "Traceback" not in capfd.readouterr().err
    # Each run is named for what it covers, as operators look for it in the UI, not a generated word pair.
    with get_client(sync_client=True) as client:
        runs = [s.state_details.flow_run_id for s in (by_hand, refused, dispatch)]
        names = [client.read_flow_run(run).name for run in runs if run is not None]
    assert (
        names[0].startswith("scheduled-nightly-through-20")
        and names[1] == f"catch-up-through-{D1 + timedelta(days=60)}"
    )
    assert names[2].startswith("alert-dispatch-20") and names[2].endswith("Z")


def test_the_scheduled_run_takes_in_the_night_of_yesterday_and_is_named_for_it(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one place the nightly path reads the wall clock, fixed here: 23:30 UTC on 1 July is half past midnight
    # in London, so the last day that has ended there is the 1st (in UTC it would be 30 June).
    monkeypatch.setattr("deployments.scheduled.utcnow", lambda: datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    yesterday = date(2026, 7, 1)
    write_days(tmp_path / "inbox", yesterday, per_day=5, dirty=0.0)
    state = scheduled_nightly(since=yesterday, return_state=True)
    # A clean catch-up is a plain green run; only one whose alerts Slack refused is named otherwise.
    assert state.is_completed() and state.name == "Completed", state
    assert night_runs() == [(yesterday, "completed")]
    with get_client(sync_client=True) as client:
        assert state.state_details.flow_run_id is not None
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == f"scheduled-nightly-through-{yesterday}"


@pytest.mark.parametrize(
    ("now", "night"),
    [
        # Half past midnight in London in summer: the 1st has ended there, though not yet in UTC.
        (datetime(2026, 7, 1, 23, 30, tzinfo=UTC), date(2026, 7, 1)),
        # Midday: the day before, never the day still going.
        (datetime(2026, 7, 2, 12, 0, tzinfo=UTC), date(2026, 7, 1)),
        # Winter: London keeps UTC, and a month's last night is named as any other.
        (datetime(2026, 12, 1, 0, 30, tzinfo=UTC), date(2026, 11, 30)),
    ],
)
def test_the_scheduled_run_is_named_for_the_last_night_ended_in_london(
    monkeypatch: pytest.MonkeyPatch, now: datetime, night: date
) -> None:
    monkeypatch.setattr("deployments.scheduled.utcnow", lambda: now)
    assert _scheduled_run_name() == f"scheduled-nightly-through-{night}"


def test_a_since_after_the_last_ended_night_fails_the_run_in_one_line(configured: str, tmp_path: Path) -> None:
    state = catch_up(through=D1, since=D1 + timedelta(days=30), return_state=True)
    assert (
        state.is_failed()
        and state.message is not None
        and state.message.startswith(f"since={D1 + timedelta(days=30)} is after {D1}")
    )


def test_a_night_started_while_another_runs_is_refused_in_one_line_by_the_flow(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from iasu.cli import _run_night

    inbox = tmp_path / "inbox"
    write_days(inbox, D1, days=2, per_day=5, dirty=0.0, seed=3)
    open_night(D1, "first")  # began after the second's own check, while the second's Prefect started
    state = nightly(run_date=D1 + timedelta(days=1), inbox=inbox, return_state=True)
    assert state.is_failed() and "the night of 2026-11-02 is still running (flow run first" in (state.message or "")

    monkeypatch.setenv("IASU_INBOX", str(inbox))
    wiring.reset()
    caught_up = catch_up(through=D1 + timedelta(days=1), since=D1, return_state=True)
    assert caught_up.is_failed() and "still running" in (caught_up.message or "")

    monkeypatch.setattr("iasu.wiring.ready_for_night", lambda inbox: inbox)  # the command's check passed
    with pytest.raises(OperatorError, match="still running"):
        _run_night(D1 + timedelta(days=1), inbox)
    assert night_runs() == [(D1, "running")]  # nothing else started, nothing marked failed
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []  # no traceback logged


def test_a_night_taken_as_failed_after_its_last_stage_is_not_then_completed(configured: str) -> None:
    from tasks.night import finish_night

    night = open_night(D1, "late")
    with wiring.engine().begin() as conn:  # its pulse held up past the limit: another start retired it
        conn.execute(NIGHT_RUNS.update().values(status="failed"))

    with pytest.raises(OperatorError, match="was taken as failed while it ran"):
        finish_night.fn(night, D1, {"run_date": D1.isoformat()})

    assert night_runs() == [(D1, "failed")] and watermark() is None
