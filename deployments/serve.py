"""Serve the scheduled deployments: `python -m deployments.serve` against a Prefect server.

The nightly catch-up runs at 02:00 Europe/London for every night up to
yesterday that has not completed; one run at a time (a new one is cancelled
while another is still running), so two nights never load concurrently.
Alert dispatch runs every five minutes, also one at a time, so alerts queued
by day (a retry, a reassignment) do not wait for the night; a dispatch that
meets the night's own takes only what the night's has not claimed.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.catchup import catch_up
from flows.dispatch import alert_dispatch
from iasu.prefect_env import quiet_prefect
from iasu.settings import get_settings

NIGHTLY_CRON = "0 2 * * *"
DISPATCH_CRON = "*/5 * * * *"
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def yesterday(timezone: str) -> date:
    """The run date a 02:00 start processes: the day that has just ended in the unit's time zone."""
    return datetime.now(ZoneInfo(timezone)).date() - timedelta(days=1)


@flow(name="scheduled-nightly")
def scheduled_nightly() -> None:
    """Catch up every night up to yesterday (the only place the nightly path reads the wall clock)."""
    catch_up(through=yesterday(get_settings().timezone))


def deployments() -> list[RunnerDeployment]:
    """The served deployments: the nightly catch-up and the alert dispatch between nights."""
    timezone = get_settings().timezone
    nightly = scheduled_nightly.to_deployment(
        name="nightly",
        schedule=Cron(NIGHTLY_CRON, timezone=timezone),
        concurrency_limit=ONE_AT_A_TIME,
        description="Nightly intake at 02:00 Europe/London, catching up any missed night.",
    )
    dispatch = alert_dispatch.to_deployment(
        name="alert-dispatch",
        schedule=Cron(DISPATCH_CRON, timezone=timezone),
        concurrency_limit=ONE_AT_A_TIME,
        description="Pending alerts to Slack every five minutes.",
    )
    # to_deployment is sync outside an event loop
    assert isinstance(nightly, RunnerDeployment) and isinstance(dispatch, RunnerDeployment)
    return [nightly, dispatch]


def main() -> None:
    """Register and serve the deployments until interrupted."""
    from iasu.errors import OperatorError

    settings = get_settings()
    try:
        # A served night handles personal data, and its alerts must reach Slack: both are checked before serving,
        # not found missing at 02:00 (a dry run's alerts are final and would never be sent).
        settings.require_keys()
        settings.require_slack()
    except OperatorError as exc:
        sys.stderr.write(f"deployments.serve: {exc}\n")
        raise SystemExit(2) from None
    quiet_prefect()
    serve(*deployments())


if __name__ == "__main__":
    main()
