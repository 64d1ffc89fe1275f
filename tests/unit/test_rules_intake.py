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
from rules.linkage import _FOLD, name_dob_key, name_dob_keys, normalise_name, normalise_name_part, pnc_key


@pytest.mark.parametrize(
    ("forename", "surname", "expected"),
    [
        ("Zoë", "O'Brien-Hall", "zoeobrienhall"),
        ("  ZOE ", "obrien hall", "zoeobrienhall"),
        ("Siobhán", "Ó Súilleabháin", "siobhanosuilleabhain"),
        ("Łukasz", "Nowak", "lukasznowak"),  # Ł has no decomposition: folded by table
        ("Nguyễn", "Văn", "nguyenvan"),
        ("Mary", "O’Neill", "maryoneill"),
        ("Søren", "Strauß", "sorenstrauss"),
        ("Ana María", "van der Berg", "anamariavanderberg"),
        ("Aoife", "Ní Bhriain", "aoifenibhriain"),
        (None, "Smith", "smith"),
        ("Smith", "  '- ", "smith"),  # a part of separators only adds nothing
        ("Ludwig van", "Beethoven", "ludwigvanbeethoven"),  # systems split a name differently
        ("Ludwig", "van Beethoven", "ludwigvanbeethoven"),
        (None, None, ""),
        # Letters of every script are a name's letters: kept a-z only, these had no key, or the surname's alone.
        ("Иван", "Петров", "иванпетров"),
        ("ИВАН", "ПЕТРОВ", "иванпетров"),
        ("Γιώργος", "Παπαδόπουλος", "γιωργοσπαπαδοπουλοσ"),  # accent dropped, final sigma folded
        ("محمد", "علي", "محمدعلي"),
        ("Анна", "Smith", "аннаsmith"),
        # Vowel points are written or left out as the writer pleases: one name either way.
        ("مُحَمَّد", "علي", "محمدعلي"),
        ("محـمد", "علي", "محمدعلي"),  # the tatweel only stretches the line
        ("דָּוִד", "כהן", "דודכהן"),
        ("ガク", "佐々木", "カ\u3099ク佐々木"),  # the voicing mark and the repeat mark spell the name
    ],
)
def test_names_normalise_across_spellings(forename: str | None, surname: str | None, expected: str) -> None:
    assert normalise_name(forename, surname) == expected


# Apostrophes, dashes and spaces as systems write them inside one name part.
APOSTROPHES = ("'", "\u2019", "\u2018", "\u00b4", "`", "\u02bc", "\u02bb", "\u2032", "\uff07", "")
DASHES = ("-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d")
SPACES = (" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2009", "\u202f", "\u3000", "\u200b", " - ")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        *[(f"O{mark}Brien", "obrien") for mark in APOSTROPHES + SPACES],
        *[(f"Smith{mark}Jones", "smithjones") for mark in DASHES + SPACES + ("",)],
        ("O'BRIEN", "obrien"),
        ("  o'brien\t", "obrien"),
        ("Mary Ann", "maryann"),
        ("Mary-Ann", "maryann"),
        ("Maryann", "maryann"),
        ("MaryAnn", "maryann"),
        ("Ní Bhriain", "nibhriain"),
        ("Ni Bhriain", "nibhriain"),
        ("O'Brien-Hall", "obrienhall"),
        ("Ó Súilleabháin", "osuilleabhain"),
        ("D’Arcy", "darcy"),
        (None, ""),
        ("", ""),
        (" \u2019-\u00a0", ""),
    ],
)
def test_every_spelling_of_one_name_part_is_one_key(written: str | None, expected: str) -> None:
    assert normalise_name_part(written) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("Ann Marie", "Lee"), ("Anne Marie", "Lee")),
        (("Sean", "O'Brien"), ("Sean", "O'Brian")),
        (("Jo", "Smith-Jones"), ("Jo", "Smith-Jonas")),
        (("Ann", "Lee"), ("Ann", "Leigh")),
        (("Lee", "Ann"), ("Ann", "Lee")),
        (("Анна", "Smith"), ("Ольга", "Smith")),  # two people, not one surname
        # A vowel sign or voicing mark of these scripts spells the name: Sunil and Sonal are two people.
        (("सुनील", "शर्मा"), ("सोनल", "शर्मा")),
        (("राम", "Lee"), ("रमा", "Lee")),
        (("குமார்", "Lee"), ("கமர", "Lee")),
        (("ガク", "Lee"), ("カク", "Lee")),
        (("Ann", "佐々木"), ("Ann", "佐木")),
    ],
)
def test_two_different_names_still_differ(one: tuple[str, str], other: tuple[str, str]) -> None:
    day = date(1990, 1, 2)
    assert normalise_name(*one) != normalise_name(*other)
    assert name_dob_key(*one, day) != name_dob_key(*other, day)


def test_name_dob_key_needs_both_name_and_date_of_birth() -> None:
    assert name_dob_key("Ann", "Lee", date(1990, 1, 2)) == "annlee|1990-01-02"
    assert name_dob_key("Ann", "Lee", None) is None
    assert name_dob_key(None, None, date(1990, 1, 2)) is None
    assert name_dob_key("-", "\u2019", date(1990, 1, 2)) is None  # separators alone name nobody
    assert name_dob_key("Иван", "Петров", date(1990, 1, 2)) == "иванпетров|1990-01-02"


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
        ("Mary Ann", "O Brien", date(1979, 3, 4)),
        ("Mary-Ann", "O\u00b4Brien", date(1979, 3, 4)),
    ]
    parts: dict[str | None, str] = {}
    for _ in range(2):  # the second time from the cache
        forenames, surnames, dobs = zip(*people, strict=True)
        assert name_dob_keys(forenames, surnames, dobs, parts) == [name_dob_key(*p) for p in people]
    assert parts["Zoë"] == "zoe"
    assert parts["O'Brien-Hall"] == "obrienhall"
    assert parts[None] == ""
    assert name_dob_key(*people[-1]) == name_dob_key(*people[-2]) == "maryannobrien|1979-03-04"


_SEPARATORS = (*APOSTROPHES, *DASHES, *SPACES, ".", ",", "1", "/")
_NAME_CHARACTERS = ("a", "Z", "ë", "\u0301", "\u0308", "Ł", "ß", "æ", "Ó", *(s for s in _SEPARATORS if len(s) == 1))
_NAMEISH = st.text(alphabet=st.sampled_from(_NAME_CHARACTERS), max_size=8)


@given(forename=st.none() | _NAMEISH, surname=st.none() | _NAMEISH)
def test_a_name_is_its_parts_normalised_apart_and_run_together(forename: str | None, surname: str | None) -> None:
    first, last = normalise_name_part(forename), normalise_name_part(surname)
    assert re.fullmatch("[a-z]*", first) and re.fullmatch("[a-z]*", last)
    assert normalise_name(forename, surname) == first + last


@given(left=_NAMEISH, right=_NAMEISH, separator=st.sampled_from(_SEPARATORS))
def test_no_separator_survives_inside_a_part(left: str, right: str, separator: str) -> None:
    assert normalise_name_part(left + separator + right) == normalise_name_part(left + right)
    assert normalise_name_part(left + right) == normalise_name_part(left) + normalise_name_part(right)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("26/123456A", "26/0123456A"),
        ("26/0123456A", "26/0123456A"),  # the serial's leading zeros
        ("2026/123456A", "26/0123456A"),  # the year in four digits
        ("2026/0123456a", "26/0123456A"),  # the check letter's case
        (" 26/123456a ", "26/0123456A"),  # spaces around it
        ("99/7B", "99/0000007B"),
        ("1999/0000007B", "99/0000007B"),
        ("26/123456B", "26/0123456B"),  # another check letter: another id
        ("25/123456A", "25/0123456A"),  # another year: another id
        ("", None),
        (None, None),
        ("//", None),
    ],
)
def test_a_pnc_id_has_one_key_however_a_system_writes_it(raw: str | None, expected: str | None) -> None:
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
        # The median, not the mean: one surge released into the history does not move the limits.
        (521, [100, 100, 100, 100, 100, 100, 100, 100, 100, 5000], True),
        (160, [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 0], True),
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
