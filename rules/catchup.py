"""Which nights a catch-up run must process."""

from __future__ import annotations

from collections.abc import Set
from datetime import date, timedelta

from iasu.errors import OperatorError


def nights_to_run(
    *,
    last_completed: date | None,
    through: date,
    since: date | None,
    max_nights: int,
    completed: Set[date] = frozenset(),
) -> list[date]:
    """Nights after the watermark not yet completed (or every night from `since`) through `through`, oldest first.

    The watermark is the last night up to which every night completed; nights after it that completed out of
    turn (run by hand) are in `completed` and not run again, the ones between them are. With no watermark and
    no `since`, only `through` runs: a new installation does not invent a history. More than `max_nights` to
    run is refused rather than silently cut, so an operator decides.
    """
    if since is not None and since > through:  # a mistyped date would otherwise run nothing and say nothing
        raise OperatorError(f"since={since} is after {through}, the last night whose day has ended: nothing to run")
    if since is not None:
        first, skip = since, frozenset[date]()  # since= replays deliberately, completed or not
    elif last_completed is not None:
        first, skip = last_completed + timedelta(days=1), frozenset(completed)
    else:
        first, skip = through, frozenset()
    dates = [first + timedelta(days=i) for i in range((through - first).days + 1)]
    wanted = [d for d in dates if d not in skip]
    if len(wanted) > max_nights:
        raise OperatorError(
            f"{len(wanted)} nights to catch up from {wanted[0]} to {through}, more than max_nights={max_nights}: "
            "start the nightly deployment once by hand with a larger max_nights (and since= to replay from a "
            "date), e.g. `prefect deployment run scheduled-nightly/nightly --param max_nights=N`, or run the "
            "nights in order with `iasu nightly --date`"
        )
    return wanted
