"""The canonical referral frame every source adapter produces.

One row per input record. Adapters normalise what any reasonable export
varies on (surrounding whitespace, letter case of codes, yes/no spellings,
each source's date format) and leave everything else as found, so that the
Great Expectations suite, not the adapter, decides what is wrong with a row.
A value the adapter cannot interpret becomes None (dates, integers) or stays
as the normalised raw string (codes), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rules.codes import FORCE_PREFIX, SDASH_COLUMNS, Source

# Record bookkeeping.
#   line_no   physical line of the file where the record starts (a CSV header
#             is line 1, so its first record is line 2; JSON Lines start at 1)
#   raw       the record's text exactly as read (decoded), used to spot exact
#             repeats and kept only encrypted, in quarantine
#   parse_ok  False when the record could not be read as a record at all
#             (a truncated last line, a wrong number of fields, broken JSON);
#             every other column is then None
BOOKKEEPING = ("line_no", "raw", "parse_ok")

# Non-personal referral fields. Codes are lower-case strings (see rules.codes);
# *_given says whether the source supplied a value at all, so "missing" and
# "supplied but not a real date" fail different expectations.
REFERRAL = (
    "source",  # rules.codes.Source value, set by the adapter
    "source_ref",  # the source's own reference, stripped and upper-cased
    "force",  # rules.codes.Force value when recognised, else the normalised raw text
    "received_date",  # datetime.date or None
    "received_date_given",  # bool
    "referring_agency",  # rules.codes.ReferringAgency value or normalised raw text
    "crime_ref",  # str or None (optional), stripped and upper-cased
    "relationship",  # rules.codes.Relationship value or normalised raw text
    "behaviours",  # tuple[str, ...] of normalised codes (may hold unknown codes)
    "duration_months",  # int or None
    "duration_given",  # bool
    "incident_date",  # datetime.date or None: latest incident reported (optional)
    "incident_date_given",  # bool
    *SDASH_COLUMNS,  # "yes" / "no" after normalising, else the raw text, None if absent
    "srp",  # rules.codes.SrpLevel value, raw text, or None (optional)
    "markers",  # tuple[str, ...] of normalised codes (may hold unknown codes)
)

# Personal fields: never logged, never shown to Great Expectations, encrypted at rest.
PERSONAL = (
    "victim_forename",
    "victim_surname",
    "victim_dob",  # datetime.date or None
    "victim_dob_given",  # bool
    "victim_phone",
    "victim_email",
    "victim_address",
    "victim_postcode",
    "perp_forename",
    "perp_surname",
    "perp_dob",  # datetime.date or None
    "perp_dob_given",  # bool
    "perp_phone",
    "perp_email",
    "perp_address",
    "perp_postcode",
    "perp_pnc_id",  # police national computer id, when known
    "notes",  # free text, the most sensitive field of all
)

COLUMNS: tuple[str, ...] = BOOKKEEPING + REFERRAL + PERSONAL

# Every source writes crime references in the one national shape: force prefix,
# seven digits, two-digit year (CH/0012345/26).
FORCE_PREFIXES = "|".join(FORCE_PREFIX.values())
CRIME_REF_PATTERN = rf"^({FORCE_PREFIXES})/[0-9]{{7}}/[0-9]{{2}}$"


class FileHeld(Exception):  # noqa: N818 - the name the whole pipeline uses
    """The whole file is unfit to read (wrong shape or encoding); no row is loaded."""

    def __init__(self, reason: str, rows: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rows = rows  # input records counted before giving up, for reconciliation; None: not counted


def read_bytes(path: Path) -> bytes:
    """The file's bytes; one that cannot be read (its mode, an I/O error) is held, none of its rows counted."""
    try:
        return path.read_bytes()
    except OSError as err:
        # The error's own words (Permission denied), not its text: that names the path, not needed twice.
        raise FileHeld(f"cannot be read: {err.strerror or type(err).__name__}", rows=0) from None


@dataclass(frozen=True)
class AdaptedFile:
    """One input file mapped onto the canonical frame."""

    path: Path
    source: Source
    frame: pd.DataFrame  # exactly COLUMNS, one row per input record
    source_ref_pattern: str  # regular expression a well-formed source_ref matches
    notes: list[str] = field(default_factory=list)  # non-personal remarks for the run summary
    # line_no -> source_ref read whole from a last record cut off (a truncated upload), which the frame leaves
    # unread: kept on its quarantine entry so the complete record, sent again, resolves it.
    cut_refs: dict[int, str | None] = field(default_factory=dict)


def empty_row(line_no: int, raw: str) -> dict[str, object]:
    """A row for a record that could not be parsed: bookkeeping only."""
    row: dict[str, object] = dict.fromkeys(COLUMNS)
    row.update(line_no=line_no, raw=raw, parse_ok=False)
    for flag in ("received_date_given", "duration_given", "incident_date_given", "victim_dob_given", "perp_dob_given"):
        row[flag] = False
    row["behaviours"] = ()
    row["markers"] = ()
    return row


def to_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Build the canonical frame from row dicts, with exactly COLUMNS in order.

    Every column is object dtype so values stay as the adapter made them:
    inference would turn an int column holding None into floats and None into NaN.
    """
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)


def frame_from_columns(columns: Mapping[str, Sequence[object]]) -> pd.DataFrame:
    """Build the canonical frame from whole columns (exactly COLUMNS), all object dtype like to_frame."""
    if tuple(columns) != COLUMNS:
        raise ValueError("columns must be exactly COLUMNS, in order")
    return pd.DataFrame({name: list(values) for name, values in columns.items()}, columns=list(COLUMNS), dtype=object)
