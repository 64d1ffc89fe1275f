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
from datetime import date
from typing import NoReturn

from prefect import State, flow, get_run_logger, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.states import Completed, Failed
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from flows.catchup import MAX_NIGHTS, catch_up
from flows.dispatch import alert_dispatch
from flows.nightly import ALERTS_UNDELIVERED
from iasu import wiring
from iasu.db import first_line
from iasu.errors import OperatorError
from iasu.settings import bad_settings, get_settings
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


def main() -> None:
    """Register and serve the deployments until interrupted."""
    try:
        # A served night handles personal data, and its alerts must reach Slack: what it needs is checked before
        # serving, not found missing at 02:00 (a dry run's alerts are final and would never be sent).
        get_settings().require_slack()
        wiring.ready_for_nights(None)
        require_prefect_server()
    except OperatorError as exc:
        _refuse(str(exc))
    except ValidationError as exc:
        _refuse(bad_settings(exc))
    except SQLAlchemyError as exc:  # the driver's first line: never a statement
        _refuse(f"database unreachable or refused the operation ({first_line(getattr(exc, 'orig', None) or exc)})")
    serve(*deployments())


def _refuse(said: str) -> NoReturn:
    sys.stderr.write(f"deployments.serve: {said}\n")
    raise SystemExit(2)


def require_prefect_server() -> None:
    """Serving needs a Prefect server of its own: a temporary one would take the deployments but run none."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise OperatorError(
            "PREFECT_API_URL is not set, and the temporary server Prefect would start runs no schedules: "
            "start `prefect server start` and set PREFECT_API_URL to its API (http://127.0.0.1:4200/api)"
        )
    with get_client(sync_client=True) as client:
        failed = client.api_healthcheck()
    if failed is not None:
        # A server not started yet, or the wrong port: said in one line, not a connection error's traceback.
        raise OperatorError(f"the Prefect server at PREFECT_API_URL ({url}) does not answer: {failed}")


if __name__ == "__main__":
    main()
