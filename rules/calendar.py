"""Working days of a force's jurisdiction and the end-of-day instants contacts fall due at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from rules.codes import Force
from rules.policy import Policy

JURISDICTIONS: tuple[str, ...] = ("ENG", "WLS", "SCT", "NIR")

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_TIME = re.compile(r"[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,6})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?")


def iso_day(text: str) -> date:
    """A day written YYYY-MM-DD and nothing else; raises ValueError otherwise."""
    # date.fromisoformat also takes 20261021 and week dates such as 2026-W43-3, which the
    # formats and commands do not promise and an operator would not expect to be read as a day.
    if not _ISO_DAY.fullmatch(text):
        raise ValueError("not a day written YYYY-MM-DD")
    return date.fromisoformat(text)


def iso_datetime(text: str) -> datetime:
    """A date and time written YYYY-MM-DD[THH:MM[:SS[.ffffff]]][offset] (a day alone is its midnight)."""
    if not (_ISO_DAY.match(text) and (len(text) == 10 or _ISO_TIME.fullmatch(text, 10))):
        raise ValueError("not a date and time written YYYY-MM-DDTHH:MM")
    return datetime.fromisoformat(text)


@lru_cache(maxsize=512)
def _bank_holidays(jurisdiction: str, year: int) -> frozenset[date]:
    # Building a holidays object computes Easter and substitutes each time; the nightly
    # scheduler asks about the same few years for every case, so one build per year suffices.
    return frozenset(holidays.country_holidays("GB", subdiv=jurisdiction, years=year).keys())


def _weekdays_up_to(d: date) -> int:
    # date.min (ordinal 1) is a Monday, so whole weeks since then hold five weekdays each.
    weeks, rest = divmod(d.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days (Mon-Fri, not a bank holiday) of one GB jurisdiction and its end of day."""

    jurisdiction: str
    timezone: str = "Europe/London"
    end_of_day: time = time(17, 0)

    def __post_init__(self) -> None:
        # Fail at construction, not at the first holiday lookup deep inside a night's run.
        if self.jurisdiction not in JURISDICTIONS:
            raise ValueError(f"jurisdiction must be one of {', '.join(JURISDICTIONS)}, not {self.jurisdiction!r}")
        ZoneInfo(self.timezone)
        if self.end_of_day.tzinfo is not None:
            raise ValueError("end_of_day is a local wall-clock time and must be naive")

    def is_working_day(self, d: date) -> bool:
        """Whether d is Monday to Friday and not a bank holiday here."""
        return d.weekday() < 5 and d not in _bank_holidays(self.jurisdiction, d.year)

    def on_or_after(self, d: date) -> date:
        """d if it is a working day, else the next working day."""
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after d (counting from the day after); n == 0 gives on_or_after(d)."""
        if n < 0:
            raise ValueError(f"n must not be negative, not {n}")
        if n == 0:
            return self.on_or_after(d)
        while n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d

    def due_at(self, d: date) -> datetime:
        """End of the working day on or after d, local time, as aware UTC."""
        local = datetime.combine(self.on_or_after(d), self.end_of_day, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    def local_date(self, instant: datetime) -> date:
        """The local calendar date of an aware instant."""
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("instant must be timezone-aware")
        return instant.astimezone(ZoneInfo(self.timezone)).date()

    def working_days_between(self, start: date, end: date) -> int:
        """Number of working days d with start < d <= end (0 if end <= start)."""
        if end <= start:
            return 0
        # Arithmetic rather than a day-by-day walk: escalation asks this of every overdue contact.
        weekdays = _weekdays_up_to(end) - _weekdays_up_to(start)
        holidays_on_weekdays = sum(
            1
            for year in range(start.year, end.year + 1)
            for h in _bank_holidays(self.jurisdiction, year)
            if start < h <= end and h.weekday() < 5
        )
        return weekdays - holidays_on_weekdays


def calendar_for(force: Force, policy: Policy, timezone: str = "Europe/London") -> WorkingCalendar:
    """The working calendar of a force under the policy."""
    return WorkingCalendar(
        jurisdiction=policy.forces[force].jurisdiction,
        timezone=timezone,
        end_of_day=policy.contacts.end_of_working_day,
    )


def calendars(policy: Policy, timezone: str) -> dict[Force, WorkingCalendar]:
    """One working-day calendar per force (its jurisdiction's bank holidays)."""
    return {force: calendar_for(force, policy, timezone) for force in Force}
