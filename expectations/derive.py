"""The frame Great Expectations validates: referral codes and dates, and flags in place of personal values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

import pandas as pd

from rules.codes import SDASH_ANSWERS, Behaviour, Force, Marker, ReferringAgency, Relationship, SrpLevel
from rules.linkage import PNC_ID

PHONE = re.compile(r"^(?:\+44|0)\d{9,10}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$", re.IGNORECASE)
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")

OLDEST_PLAUSIBLE_AGE_YEARS = 110
# Floors no real referral goes below; year 1 would overflow the date arithmetic of later stages
# (routing looks back from the earliest date received).
EARLIEST_RECEIVED = date(2000, 1, 1)
EARLIEST_INCIDENT_OR_BIRTH = date(1900, 1, 1)
CRIME_REF = re.compile(r"^[A-Z]{2}/\d{5,8}/\d{2}$")
_BEHAVIOURS = frozenset(Behaviour)
_MARKERS = frozenset(Marker)
_CODE_COLUMNS: dict[str, frozenset[str]] = {
    "force": frozenset(Force),
    "referring_agency": frozenset(ReferringAgency),
    "relationship": frozenset(Relationship),
    "srp": frozenset(SrpLevel),
}
UNKNOWN, OTHER, MALFORMED = "<unknown code>", "<not yes or no>", "<malformed>"

# Referral columns Great Expectations may see as they are: codes, references, non-personal.
PASSTHROUGH = (
    "line_no",
    "parse_ok",
    "source_ref",
    "force",
    "referring_agency",
    "crime_ref",
    "relationship",
    "duration_months",
    "srp",
)


def phone_ok(value: str | None) -> bool:
    """A UK phone number in any usual spelling ("+44 (0)161 496 0000", "07700 900123")."""
    if value is None:
        return True
    digits = _PHONE_SEPARATORS.sub("", value).replace("+440", "+44")
    return PHONE.match(digits) is not None


def _ok(pattern: re.Pattern[str], value: str | None) -> bool:
    return value is None or pattern.match(value) is not None


def _days(later: date | None, earlier: date | None) -> float | None:
    if later is None or earlier is None:
        return None
    return float((later - earlier).days)


def _dob_plausible(dob: date | None, received: date | None, run_date: date) -> bool:
    if dob is None:
        return True  # presence and realness are separate expectations
    reference = received or run_date
    return EARLIEST_INCIDENT_OR_BIRTH <= dob <= reference and (reference.year - dob.year) <= OLDEST_PLAUSIBLE_AGE_YEARS


def _codes_known(codes: Iterable[str] | None, known: frozenset[str]) -> bool:
    return all(code in known for code in (codes or ()))


def _mask_free_text(frame: pd.DataFrame, c: pd.DataFrame, source_ref_pattern: str) -> None:
    """Replace whatever is not a known code or a well-formed reference by a marker.

    Great Expectations lists failing values in its results and Data Docs, and a
    misplaced cell can hold anything, a name included; so an unexpected value
    is shown as a marker, and the expectation that fails still names the defect.
    """
    ref = re.compile(source_ref_pattern)
    frame["source_ref"] = [
        v if v is None or ref.fullmatch(v) else f"{MALFORMED} line {n}"
        for v, n in zip(c["source_ref"], c["line_no"], strict=True)
    ]
    frame["crime_ref"] = [v if v is None or CRIME_REF.fullmatch(v) else MALFORMED for v in c["crime_ref"]]
    for column, known in _CODE_COLUMNS.items():
        frame[column] = [v if v is None or v in known else UNKNOWN for v in c[column]]


def validation_frame(canonical: pd.DataFrame, run_date: date, source_ref_pattern: str = r".*") -> pd.DataFrame:
    """Map the canonical frame (personal fields included) onto a frame with no personal value in it."""
    c = canonical
    received = c["received_date"].tolist()
    incident = c["incident_date"].tolist()
    # Column by column rather than row by row: one comprehension per derived column costs less than
    # appending to nine lists per row, and dates received (a few hundred distinct) are subtracted once each.
    days_before_run = {rec: _days(run_date, rec) for rec in set(received)}
    derived: dict[str, list[object]] = {
        "received_date_real": [
            not given or rec is not None for given, rec in zip(c["received_date_given"], received, strict=True)
        ],
        "received_days_before_run": [days_before_run[rec] for rec in received],
        "received_date_plausible": [rec is None or rec >= EARLIEST_RECEIVED for rec in received],
        "incident_date_real": [
            not given or inc is not None for given, inc in zip(c["incident_date_given"], incident, strict=True)
        ],
        "incident_days_before_received": [_days(rec, inc) for rec, inc in zip(received, incident, strict=True)],
        "incident_days_before_run": [_days(run_date, inc) for inc in incident],
        "incident_date_plausible": [inc is None or inc >= EARLIEST_INCIDENT_OR_BIRTH for inc in incident],
        "duration_real": [
            not given or dur is not None for given, dur in zip(c["duration_given"], c["duration_months"], strict=True)
        ],
        "behaviour_count": [len(behaviours or ()) for behaviours in c["behaviours"]],
        "behaviour_codes_known": [_codes_known(behaviours, _BEHAVIOURS) for behaviours in c["behaviours"]],
        "marker_codes_known": [_codes_known(markers, _MARKERS) for markers in c["markers"]],
    }

    frame = pd.DataFrame({name: c[name] for name in PASSTHROUGH}).astype(object)
    _mask_free_text(frame, c, source_ref_pattern)
    for name, column in derived.items():
        frame[name] = pd.Series(column, index=frame.index)
    frame["received_date_given"] = c["received_date_given"].astype(bool)
    for col in c.columns:
        if col.startswith("sdash_"):
            frame[col] = [v if v is None or v in SDASH_ANSWERS else OTHER for v in c[col]]
    for flag, values in _personal_flags(c, run_date).items():
        frame[flag] = values
    for numeric in (
        "received_days_before_run",
        "incident_days_before_received",
        "incident_days_before_run",
    ):
        frame[numeric] = pd.to_numeric(frame[numeric], errors="coerce").astype("float64")
    frame["duration_months"] = pd.to_numeric(frame["duration_months"], errors="coerce").astype("float64")
    frame["line_no"] = frame["line_no"].astype("int64")
    return frame


def _present(*columns: Iterable[object]) -> list[bool]:
    return [any(v not in (None, "") for v in values) for values in zip(*columns, strict=True)]


def _personal_flags(c: pd.DataFrame, run_date: date) -> dict[str, list[bool]]:
    """Booleans about personal fields: present, well-formed, plausible. The values themselves stay out."""
    received = list(c["received_date"])
    flags: dict[str, list[bool]] = {
        "victim_name_present": _present(c["victim_surname"]),
        "victim_dob_present": [bool(g) for g in c["victim_dob_given"]],
        "victim_dob_real": [
            not g or d is not None for g, d in zip(c["victim_dob_given"], c["victim_dob"], strict=True)
        ],
        "victim_dob_plausible": [
            _dob_plausible(d, r, run_date) for d, r in zip(c["victim_dob"], received, strict=True)
        ],
        "victim_contactable": _present(c["victim_phone"], c["victim_email"], c["victim_address"]),
        "perp_dob_real": [not g or d is not None for g, d in zip(c["perp_dob_given"], c["perp_dob"], strict=True)],
        "perp_dob_plausible": [_dob_plausible(d, r, run_date) for d, r in zip(c["perp_dob"], received, strict=True)],
        "phones_well_formed": [
            phone_ok(v) and phone_ok(p) for v, p in zip(c["victim_phone"], c["perp_phone"], strict=True)
        ],
        "emails_well_formed": [
            _ok(EMAIL, v) and _ok(EMAIL, p) for v, p in zip(c["victim_email"], c["perp_email"], strict=True)
        ],
        "postcodes_well_formed": [
            _ok(POSTCODE, v) and _ok(POSTCODE, p) for v, p in zip(c["victim_postcode"], c["perp_postcode"], strict=True)
        ],
        "pnc_id_well_formed": [v is None or PNC_ID.fullmatch(v) is not None for v in c["perp_pnc_id"]],
    }
    return flags
