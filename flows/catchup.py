"""Catch-up: run every night not yet completed, so a night that did not run is caught up, not lost."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import State, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed

from flows.nightly import ALERTS_UNDELIVERED, night_summary, nightly
from iasu import wiring
from iasu.errors import OperatorError
from rules.catchup import nights_to_run
from tasks.night import completed_after, last_completed

MAX_NIGHTS = 31  # nights one catch-up runs unasked: a longer outage is the operator's call (max_nights=)


@task(name="read-watermark", cache_policy=NO_CACHE)
def read_watermark(through: date) -> tuple[date | None, frozenset[date]]:
    """The night up to which every night completed, and the nights after it through `through` completed since."""
    with wiring.engine().connect() as conn:
        watermark = last_completed(conn)
        done = completed_after(conn, watermark, through) if watermark else frozenset[date]()
        return watermark, done


@flow(name="catch-up", flow_run_name="catch-up-through-{through}")
def catch_up(through: date, since: date | None = None, max_nights: int = MAX_NIGHTS) -> list[dict[str, Any]] | State:
    """Run the nightly flow for each night not yet completed after the watermark (or from `since`) to `through`."""
    watermark, done = read_watermark(through)
    try:
        dates = nights_to_run(
            last_completed=watermark, through=through, since=since, max_nights=max_nights, completed=done
        )
    except OperatorError as exc:
        # An operator decides (since=, max_nights=): one line in the run's log and its state, not a traceback.
        get_run_logger().error("catch-up refused: %s", exc)
        return Failed(message=str(exc))
    ran = []
    for d in dates:
        state = nightly(run_date=d, return_state=True)
        if not state.is_completed():
            # In order: the nights after a failed one wait for it. Its failure was logged where it happened.
            return Failed(message=state.message)
        ran.append(night_summary(state))
    stopped = [summary["alerts"]["stopped"] for summary in ran if summary["alerts"].get("stopped")]
    if stopped:  # shown on the run operators look at, not only on the nights inside it
        return Completed(data=ran, name=ALERTS_UNDELIVERED, message=stopped[-1])
    return ran
