"""The scheduled deployments: the nightly catch-up and the alert dispatch between nights.

The nightly catch-up runs at 02:00 Europe/London for every night up to
yesterday that has not completed; one run at a time (a new one is cancelled
while another is still running), so two nights never load concurrently.
Alert dispatch runs every five minutes, also one at a time, so alerts queued
by day (a retry, a reassignment) do not wait for the night; a dispatch that
meets the night's own takes only what the night's has not claimed.
"""

from __future__ import annotations

from datetime import date

from prefect import State, flow, get_run_logger
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.states import Completed, Failed

from flows.catchup import MAX_NIGHTS, catch_up
from flows.dispatch import alert_dispatch
from flows.nightly import ALERTS_UNDELIVERED
from iasu import wiring
from iasu.errors import OperatorError
from iasu.settings import get_settings
from models.types import utcnow
from rules.clock import last_ended_day

NIGHTLY_CRON = "0 2 * * *"
DISPATCH_CRON = "*/5 * * * *"
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def _scheduled_run_name() -> str:
    """The scheduled run's name in the UI: the last night it catches up to, as the nightly runs are named."""
    return f"scheduled-nightly-through-{last_ended_day(utcnow(), get_settings().timezone)}"


@flow(name="scheduled-nightly", flow_run_name=_scheduled_run_name)
def scheduled_nightly(since: date | None = None, max_nights: int = MAX_NIGHTS) -> State | None:
    """Catch up every night up to yesterday (the only place the nightly path reads the wall clock)."""
    # The schedule passes neither: an operator may, in one run started by hand (a custom run in the UI, or
    # `prefect deployment run`), to replay from a date or catch up a longer outage than max_nights allows.
    try:
        wiring.ready_for_night(None)
    except OperatorError as exc:
        # What the operator must fix (keys, policy, inbox, schema, a night still running): one line in the
        # run's log and its state, not three nested tracebacks.
        get_run_logger().error("the night cannot run: %s", exc)
        return Failed(message=str(exc))
    through = last_ended_day(utcnow(), get_settings().timezone)
    state = catch_up(through=through, since=since, max_nights=max_nights, return_state=True)
    # Its own failure is logged where it happened; here it is the run's state, not raised again.
    if not state.is_completed():
        return Failed(message=state.message)
    return Completed(name=state.name, message=state.message) if state.name == ALERTS_UNDELIVERED else None


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
        # Every five minutes of UTC: on local time the hour repeated when the clocks go back would get none.
        schedule=Cron(DISPATCH_CRON, timezone="UTC"),
        concurrency_limit=ONE_AT_A_TIME,
        description="Pending alerts to Slack every five minutes.",
    )
    # to_deployment is sync outside an event loop
    assert isinstance(nightly, RunnerDeployment) and isinstance(dispatch, RunnerDeployment)
    return [nightly, dispatch]
