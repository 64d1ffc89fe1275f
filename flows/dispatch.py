"""Alert dispatch between nights: alerts queued by day (a retried alert, a worker leaving) go within minutes."""

from __future__ import annotations

from typing import Any

from prefect import flow

from iasu.policy import get_policy
from tasks.notify import dispatch_alerts


@flow(name="alert-dispatch", log_prints=False)
def alert_dispatch() -> dict[str, Any]:
    """Send whatever alerts are pending (Slack, or the dry-run outbox); the nightly flow does the same at night."""
    get_policy()  # an invalid policy stops the run before any alert is claimed
    return dispatch_alerts()
