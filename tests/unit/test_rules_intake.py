"""Pure intake rules as tables: linkage normalisation, the row-count gate, the night's clock."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.clock import end_of_day
from rules.gate import RowCountGate, row_count_hold_reason
from rules.linkage import _FOLD, name_dob_key, name_dob_keys, normalise_name, pnc_key


@pytest.mark.parametrize(
    ("forename", "surname", "expected"),
    [
        ("Zoë", "O'Brien-Hall", "zoe obrienhall"),
        ("  ZOE ", "obrien hall", "zoe obrien hall"),
        ("Siobhán", "Ó Súilleabháin", "siobhan o suilleabhain"),
        ("Łukasz", "Nowak", "lukasz nowak"),  # Ł has no decomposition: folded by table
        ("Nguyễn", "Văn", "nguyen van"),
        ("Mary", "O’Neill", "mary oneill"),
        ("Søren", "Strauß", "soren strauss"),
        (None, "Smith", "smith"),
        (None, None, ""),
    ],
)
def test_names_normalise_across_spellings(forename: str | None, surname: str | None, expected: str) -> None:
    assert normalise_name(forename, surname) == expected


def test_name_dob_key_needs_both_name_and_date_of_birth() -> None:
    assert name_dob_key("Ann", "Lee", date(1990, 1, 2)) == "ann lee|1990-01-02"
    assert name_dob_key("Ann", "Lee", None) is None
    assert name_dob_key(None, None, date(1990, 1, 2)) is None


def test_the_ascii_shortcut_of_normalise_name_skips_only_passes_that_change_nothing() -> None:
    text = "".join(map(chr, range(128)))
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    assert folded == text.lower()
    assert not any(unicodedata.combining(ch) for ch in folded)


def test_name_dob_keys_are_name_dob_key_for_each_person() -> None:
    people = [
        ("Zoë", "O'Brien-Hall", date(2001, 12, 31)),
        ("Ann", "Lee", date(1990, 1, 2)),
        ("Ann", "Lee", None),
        (None, None, date(1990, 1, 2)),
        ("ANN", "lee", date(1990, 1, 2)),
        ("Ann", "Lee", date(1985, 5, 5)),
    ]
    parts: dict[str | None, str] = {}
    for _ in range(2):  # the second time from the cache
        forenames, surnames, dobs = zip(*people, strict=True)
        assert name_dob_keys(forenames, surnames, dobs, parts) == [name_dob_key(*p) for p in people]
    assert parts["Zoë"] == "zoe"
    assert parts["O'Brien-Hall"] == "obrienhall"
    assert parts[None] == ""


def _normalise_joined(forename: str | None, surname: str | None) -> str:
    """normalise_name as it was written before parts were normalised apart: over the joined text."""
    text = f"{forename or ''} {surname or ''}"
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    letters = "".join(ch for ch in folded if not unicodedata.combining(ch))
    squeezed = letters.replace("'", "").replace("\u2019", "").replace("-", "")
    return re.sub(r"\s+", " ", re.sub(r"[^a-z ]+", " ", squeezed)).strip()


_NAMEISH = st.text(alphabet=st.sampled_from("aZ ë'’-.\u0301\u0308Łßæ\t1Ó"), max_size=8)


@given(forename=st.none() | _NAMEISH, surname=st.none() | _NAMEISH)
def test_normalising_name_parts_apart_is_normalising_them_joined(forename: str | None, surname: str | None) -> None:
    assert normalise_name(forename, surname) == _normalise_joined(forename, surname)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("26/123456A", "26123456A"), (" 26/123456a ", "26123456A"), ("", None), (None, None), ("//", None)],
)
def test_pnc_ids_normalise(raw: str | None, expected: str | None) -> None:
    assert pnc_key(raw) == expected


@pytest.mark.parametrize(
    ("rows", "history", "held"),
    [
        (100, [], False),  # no history: no opinion
        (100, [100, 100, 100, 100], False),  # fewer than min_history files
        (100, [100] * 5, False),
        (520, [100] * 5, False),  # exactly at the upper limit 100*5+20
        (521, [100] * 5, True),
        (0, [100] * 5, False),  # lower limit 100/5-20 = 0: an empty day is allowed
        (0, [1000] * 5, True),
        (180, [1000] * 5, False),
        (179, [1000] * 5, True),
        (60, [10] * 10, False),  # small feeds swing a lot
        (71, [10] * 10, True),
    ],
)
def test_row_count_gate_holds_only_far_outliers(rows: int, history: list[int], held: bool) -> None:
    assert (row_count_hold_reason(rows, history, RowCountGate()) is not None) is held


def test_hold_reason_names_the_count_and_the_median() -> None:
    reason = row_count_hold_reason(5000, [100] * 5)
    assert reason is not None and "5000" in reason and "100" in reason


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 1, 15), datetime(2026, 1, 15, 23, 59, 59, 999999, tzinfo=UTC)),  # GMT
        (date(2026, 7, 15), datetime(2026, 7, 15, 22, 59, 59, 999999, tzinfo=UTC)),  # BST
        (date(2026, 3, 29), datetime(2026, 3, 29, 22, 59, 59, 999999, tzinfo=UTC)),  # clocks went forward that day
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, 59, 59, 999999, tzinfo=UTC)),  # clocks went back that day
    ],
)
def test_end_of_day_is_local_midnight_across_clock_changes(day: date, expected_utc: datetime) -> None:
    assert end_of_day(day, "Europe/London") == expected_utc
