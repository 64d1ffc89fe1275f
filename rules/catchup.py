"""Which nights a catch-up run must process."""

from __future__ import annotations

from datetime import date, timedelta


def nights_to_run(*, last_completed: date | None, through: date, since: date | None, max_nights: int) -> list[date]:
    """Dates after the watermark (or from `since`) through `through`, oldest first, at most `max_nights`.

    With no watermark and no `since`, only `through` runs: a new installation does not invent a history.
    A gap longer than `max_nights` is refused rather than silently cut, so an operator decides.
    """
    if since is not None:
        first = since
    elif last_completed is not None:
        first = last_completed + timedelta(days=1)
    else:
        first = through
    if first > through:
        return []
    count = (through - first).days + 1
    if count > max_nights:
        raise ValueError(
            f"{count} nights to catch up from {first} to {through}, more than max_nights={max_nights}: "
            "run with since= and a larger max_nights deliberately"
        )
    return [first + timedelta(days=i) for i in range(count)]
