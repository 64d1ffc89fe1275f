"""Catch-up: run every night not yet completed, so a night that did not run is caught up, not lost."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.nightly import nightly
from iasu import wiring
from rules.catchup import nights_to_run
from tasks.night import last_completed


@task(name="read-watermark", cache_policy=NO_CACHE)
def read_watermark() -> date | None:
    """The last run date the nightly flow completed."""
    with wiring.engine().connect() as conn:
        return last_completed(conn)


@flow(name="catch-up")
def catch_up(through: date, since: date | None = None, max_nights: int = 31) -> list[dict[str, Any]]:
    """Run the nightly flow for each date after the watermark (or from `since`) up to `through`."""
    dates = nights_to_run(last_completed=read_watermark(), through=through, since=since, max_nights=max_nights)
    return [nightly(run_date=d) for d in dates]
