"""The night's clock: a run date D decides as if it were the end of D in the unit's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def last_ended_day(now: datetime, timezone: str) -> date:
    """The latest day that has ended in `timezone` at `now` (aware): the newest run date a night may have."""
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def end_of_day(day: date, timezone: str) -> datetime:
    """The last instant of `day` in `timezone`, as aware UTC (DST-safe: local midnight of the next day)."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(timezone))
    return (next_midnight - timedelta(microseconds=1)).astimezone(UTC)
