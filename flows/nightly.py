"""The nightly flow for one run date D: everything decides as of the end of D, Europe/London."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import State, flow, get_run_logger, runtime
from prefect.exceptions import FailedRun
from prefect.states import Completed, Failed
from sqlalchemy.exc import SQLAlchemyError

from expectations.runner import import_gx
from iasu.db import first_line
from iasu.errors import OperatorError
from iasu.policy import get_policy
from iasu.settings import get_settings
from tasks.adapters import FEED_PREFIX
from tasks.ingest import build_data_docs, ingest_file
from tasks.monitor import monitor_deadlines
from tasks.night import (
    dispatch_of_the_night,
    finish_night,
    input_files,
    mark_night_failed,
    night_pulse,
    start_night,
    summarise,
    touch_night,
)
from tasks.notify import dispatch_alerts
from tasks.outcomes import ingest_contacts_file
from tasks.report import publish_report
from tasks.route import route_referrals
from tasks.schedule import schedule_contacts

# The state name of a night (and of the catch-up and scheduled run over it) whose work is done but whose
# alerts Slack did not take: Completed, so nothing reruns it, and named so in the UI.
ALERTS_UNDELIVERED = "Completed, alerts undelivered"

# Loaded with the flow, as a served deployment's run process loads it: the import's seconds are start-up.
import_gx()


@flow(name="nightly", flow_run_name="nightly-{run_date}", log_prints=False)
def nightly(run_date: date, inbox: Path | None = None) -> dict[str, Any] | State:
    """One night: referrals and outcomes in, cases routed, contacts scheduled, missed ones alerted, report."""
    settings = get_settings()
    settings.require_keys()
    get_policy()  # an invalid policy stops the night before anything is read or written
    inbox_dir = inbox or settings.inbox
    paths = input_files(inbox_dir, run_date)
    docs_dir = settings.var_dir / "data_docs" / run_date.isoformat()
    # Made before the night starts, if it has files to validate: a path that cannot be its folder (a file left
    # there, a parent folder it may not write in) is refused in one line, not met in the first validation.
    if paths:
        try:
            docs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _refused(run_date, f"Data Docs folder {docs_dir} cannot be made ({exc.strerror})")
    flow_run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    started = start_night(run_date, flow_run_id)
    if started.night_run_id is None:
        assert started.refused is not None  # another night running, or the schema not current
        return _refused(run_date, started.refused)
    night_run_id = started.night_run_id
    try:
        with night_pulse(night_run_id):  # a night killed outright frees the next in minutes
            return _night(run_date, paths, night_run_id, docs_dir, f"flow:nightly/{flow_run_id or night_run_id}")
    except SQLAlchemyError as exc:
        # The database lost or refusing mid-night: one line for the run's state and log, the driver's words
        # without the statement, rather than the error raised on (which Prefect would also keep pickled).
        _mark_failed(night_run_id)
        said = (
            f"the night of {run_date} stopped on a database error ({first_line(getattr(exc, 'orig', None) or exc)}):"
            " it is marked failed, and the next catch-up or `iasu nightly --date` reruns it"
        )
        get_run_logger().error(said)
        return Failed(message=said)
    except BaseException:
        _mark_failed(night_run_id)
        raise


def _refused(run_date: date, reason: str) -> State:
    # Refused before it started: one line in the run's log and its state (which the CLI prints), rather than
    # an error raised with its traceback.
    get_run_logger().error("the night of %s cannot run: %s", run_date, reason)
    return Failed(message=reason)


def _mark_failed(night_run_id: int) -> None:
    # Marked here rather than by a state hook: hooks run once Prefect has recorded the state, which an
    # interrupted run may never do (Ctrl-C takes a temporary Prefect server down with it).
    try:
        mark_night_failed(night_run_id)
    except Exception as exc:  # the database gone too: the night's own error is the one to see
        get_run_logger().warning("night run %s not marked failed: %s", night_run_id, type(exc).__name__)


def night_summary(state: State) -> dict[str, Any]:
    """A night run's summary from its final state: a refusal as the OperatorError it was, a failure as its own."""
    try:
        summary = state.result()  # a night that failed part way raises its own error here
    except FailedRun as exc:  # failed with no error of its own: refused as it started (see nightly)
        raise OperatorError(str(exc)) from None
    assert isinstance(summary, dict)
    return summary


def _night(run_date: date, paths: list[Path], night_run_id: int, docs_dir: Path, actor: str) -> dict[str, Any] | State:
    # One file after another: a night has a handful of files, and concurrent writers
    # would contend on SQLite; each file is still its own task run in the UI.
    feeds = [p for p in paths if p.name.startswith(FEED_PREFIX)]
    files = []
    for path in (p for p in paths if p not in feeds):
        files.append(ingest_file(path, run_date, night_run_id, docs_dir, actor))
        touch_night(night_run_id)  # between stages, so a night still working is not taken for a stuck one
    routing = route_referrals(run_date, actor, night_run_id)
    touch_night(night_run_id)
    outcomes = [ingest_contacts_file(p, run_date, night_run_id, docs_dir, actor) for p in feeds]
    touch_night(night_run_id)
    scheduling = schedule_contacts(run_date, actor, night_run_id)
    touch_night(night_run_id)
    quarantined_tonight = sum(f["quarantined"] for f in files + outcomes)
    monitoring = monitor_deadlines(run_date, quarantined_tonight)
    touch_night(night_run_id)
    delivery = dispatch_alerts()
    settled = dispatch_of_the_night(night_run_id, run_date, delivery)
    touch_night(night_run_id)
    summary = summarise(run_date, files)
    summary["routed"], summary["tiers"] = routing["routed"], routing["tiers"]
    summary["merged"], summary["turned_away_for_capacity"] = routing["merged"], routing["turned_away_for_capacity"]
    summary["contacts_feed"] = summarise(run_date, outcomes) | {"applied": sum(f["loaded"] for f in outcomes)}
    summary["scheduled"], summary["completed"] = scheduling["scheduled"], sum(f["completed"] for f in outcomes)
    summary["due_today"], summary["open_contacts"] = scheduling["due_today"], scheduling["open_contacts"]
    summary["unassigned"], summary["unassigned_count"] = scheduling["unassigned"], scheduling["unassigned_count"]
    summary["overdue"] = monitoring["overdue"]
    summary["alerts"] = {"queued": monitoring["queued"]} | {
        k: (delivery | settled)[k] for k in ("sent", "failed", "dry_run", "pending", "stopped")
    }
    docs_index = build_data_docs(docs_dir)
    summary["data_docs"] = str(docs_index) if docs_index else None
    summary["file_counts"] = files + outcomes
    # Published before the night is marked completed: a run killed between the two is rerun, and the rerun's
    # report carries this one's counts (a completed night's rerun would report nothing routed).
    publish_report(
        summary, files + outcomes, docs_index, routing["case_refs"], routing["opened"], scheduling["due_list"]
    )
    finish_night(night_run_id, run_date, summary)
    if delivery["stopped"]:
        # The night's own work is done (not rerun); its alerts wait for Slack or a new token, named in the UI.
        return Completed(data=summary, name=ALERTS_UNDELIVERED, message=delivery["stopped"])
    return summary
