"""Alert dispatch between nights: alerts queued by day (a retried alert, a worker leaving) go within minutes."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.runtime import flow_run as this_run
from prefect.states import Failed

from iasu import wiring
from iasu.db import ensure_current
from iasu.errors import OperatorError
from iasu.policy import get_policy
from tasks.notify import dispatch_alerts


def _dispatch_run_name() -> str:
    """A dispatch run's name in the UI: the slot it was scheduled for (UTC, as its schedule), not a word pair."""
    # The schedule's slot, not the clock: a run the worker starts a moment early would be named for the minute
    # before. A run started by hand is scheduled for the moment it was asked for.
    slot = this_run.scheduled_start_time
    return f"alert-dispatch-{slot.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


# A dispatch hung past its lease twice over (a connection that never answers) ends, so the next, every five
# minutes, is not cancelled behind it for ever (the deployment runs one at a time).
@flow(name="alert-dispatch", flow_run_name=_dispatch_run_name, log_prints=False, timeout_seconds=600)
def alert_dispatch() -> dict[str, Any] | State:
    """Send whatever alerts are pending (Slack, or the dry-run outbox); the nightly flow does the same at night."""
    try:
        get_policy()  # an invalid policy stops the run before any alert is claimed
        ensure_current(wiring.engine())  # as does a missing or old schema, which would fail each query in turn
    except OperatorError as exc:
        # Every five minutes until fixed: one line each time in the log and the run's state, not a traceback.
        get_run_logger().error("alert dispatch cannot run: %s", exc)
        return Failed(message=str(exc))
    result = dispatch_alerts()
    if result["stopped"]:
        # Every five minutes while it lasts: a failed run in the UI, not a green one with alerts undelivered.
        return Failed(message=result["stopped"])
    return result
