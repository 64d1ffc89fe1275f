"""Value normalisation shared by the source adapters.

Each function takes a value as found in a file (a string from CSV; a string,
number, bool or None from JSON) and returns its canonical form, following the
rules in tasks.adapters.canonical: whitespace stripped, empty becomes None,
codes lower-cased and mapped through the source's label table, unknown labels
kept as their normalised text, dates parsed strictly in the source's format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

YES_SPELLINGS = frozenset({"yes", "y", "true"})
NO_SPELLINGS = frozenset({"no", "n", "false"})


def text(value: object) -> str | None:
    """The value as a stripped string; None when absent or blank."""
    if value is None:
        return None
    stripped = (value if isinstance(value, str) else str(value)).strip()
    return stripped or None


def label_key(label: str) -> str:
    """A label as looked up: inner whitespace collapsed, lower case."""
    return " ".join(label.split()).lower()


def label_lookup(labels: Mapping[str, StrEnum]) -> dict[str, str]:
    """Turn a source's label table (label as written -> code) into a lookup by label_key."""
    return {label_key(label): member.value for label, member in labels.items()}


def code(value: object, lookup: Mapping[str, str]) -> str | None:
    """A code value: the mapped code, else the normalised label so validation can reject it."""
    found = text(value)
    if found is None:
        return None
    key = label_key(found)
    return lookup.get(key, key)


def codes(values: Iterable[object], lookup: Mapping[str, str]) -> tuple[str, ...]:
    """Several code values in source order, blanks dropped."""
    mapped = (code(value, lookup) for value in values)
    return tuple(value for value in mapped if value is not None)


def yes_no(value: object) -> str | None:
    """An S-DASH answer: "yes" / "no" for any usual spelling, else the normalised text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    found = text(value)
    if found is None:
        return None
    key = label_key(found)
    if key in YES_SPELLINGS:
        return "yes"
    if key in NO_SPELLINGS:
        return "no"
    return key


def reference(value: object) -> str | None:
    """A non-personal reference (source or crime ref): stripped and upper-cased."""
    found = text(value)
    return found.upper() if found is not None else None


_WHOLE_NUMBER = re.compile(r"[0-9]{1,4}")


def whole_number(value: object) -> tuple[int | None, bool]:
    """A count such as months: (the int or None, whether a value was given)."""
    found = text(value)
    if found is None:
        return None, False
    return (int(found) if _WHOLE_NUMBER.fullmatch(found) else None), True


@dataclass(frozen=True)
class DateFormat:
    """One source's date layout, read strictly and written the same way."""

    name: str  # as documented, e.g. "YYYY-MM-DD"
    pattern: re.Pattern[str]  # groups: year, month, day
    render: Callable[[int, int, int], str]  # year, month, day -> text (not validated)

    def parse(self, value: object) -> tuple[date | None, bool]:
        """(the date or None, whether a non-blank value was given)."""
        found = text(value)
        if found is None:
            return None, False
        match = self.pattern.fullmatch(found)
        if match is None:
            return None, True
        try:
            return date(int(match["year"]), int(match["month"]), int(match["day"])), True
        except ValueError:
            return None, True

    def format(self, day: date) -> str:
        """A real date in this layout."""
        return self.render(day.year, day.month, day.day)


ISO_DATE = DateFormat(
    name="YYYY-MM-DD",
    pattern=re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"),
    render=lambda year, month, day: f"{year:04d}-{month:02d}-{day:02d}",
)
DMY_DATE = DateFormat(
    name="DD/MM/YYYY",
    pattern=re.compile(r"(?P<day>[0-9]{2})/(?P<month>[0-9]{2})/(?P<year>[0-9]{4})"),
    render=lambda year, month, day: f"{day:02d}/{month:02d}/{year:04d}",
)


@dataclass(frozen=True)
class Labels:
    """A source's label lookups (built with label_lookup) for each coded field."""

    force: Mapping[str, str]
    referring_agency: Mapping[str, str]
    relationship: Mapping[str, str]
    behaviour: Mapping[str, str]
    marker: Mapping[str, str]
    srp: Mapping[str, str]
