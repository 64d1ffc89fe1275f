"""The frame Great Expectations sees: flags instead of personal values, as a table of cases."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from expectations.derive import phone_ok, validation_frame
from tasks.adapters.canonical import COLUMNS, PERSONAL, to_frame

RUN = date(2026, 11, 20)
MARKER = "ZZMARKERQX"


def good_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        line_no=2,
        raw=f"raw {MARKER}",
        parse_ok=True,
        source="police_rms",
        source_ref="CH-1",
        force="cheshire",
        received_date=date(2026, 11, 19),
        received_date_given=True,
        referring_agency="police",
        relationship="stranger",
        behaviours=("following",),
        duration_months=3,
        duration_given=True,
        incident_date=date(2026, 11, 1),
        incident_date_given=True,
        markers=(),
        victim_forename=f"{MARKER}F",
        victim_surname=f"{MARKER}S",
        victim_dob=date(1990, 5, 1),
        victim_dob_given=True,
        victim_phone="07700 900123",
        victim_email=f"{MARKER}@example.org",
        victim_address=f"1 {MARKER} Street",
        victim_postcode="CH1 1AA",
        perp_forename=f"{MARKER}PF",
        perp_surname=f"{MARKER}PS",
        perp_dob=None,
        perp_dob_given=False,
        perp_pnc_id="26/123456A",
        notes=f"note {MARKER}",
    )
    for col in COLUMNS:
        if col.startswith("sdash_"):
            row[col] = "no"
    row.update(changes)
    return row


def flags(**changes: Any) -> dict[str, Any]:
    frame = validation_frame(to_frame([good_row(**changes)]), RUN)
    return {str(k): v for k, v in frame.iloc[0].to_dict().items()}


def test_no_personal_column_or_value_reaches_validation() -> None:
    frame = validation_frame(to_frame([good_row()]), RUN)
    assert not set(PERSONAL) & set(frame.columns)
    assert "raw" not in frame.columns
    assert MARKER not in frame.to_csv()


@pytest.mark.parametrize(
    ("changes", "flag", "expected"),
    [
        ({}, "victim_name_present", True),
        ({"victim_surname": None}, "victim_name_present", False),
        ({"victim_dob": None, "victim_dob_given": False}, "victim_dob_present", False),
        ({"victim_dob": None, "victim_dob_given": True}, "victim_dob_real", False),
        ({"victim_dob": date(1850, 1, 1)}, "victim_dob_plausible", False),
        ({"victim_dob": date(2026, 11, 20)}, "victim_dob_plausible", False),  # after the date received
        ({"victim_phone": None, "victim_email": None, "victim_address": None}, "victim_contactable", False),
        ({"victim_phone": None}, "victim_contactable", True),
        ({"victim_phone": "12"}, "phones_well_formed", False),
        ({"perp_phone": "+44 (0)161 496 0000"}, "phones_well_formed", True),
        ({"victim_email": "not-an-email"}, "emails_well_formed", False),
        ({"victim_postcode": "XYZ"}, "postcodes_well_formed", False),
        ({"perp_pnc_id": "123"}, "pnc_id_well_formed", False),
        ({"perp_pnc_id": None}, "pnc_id_well_formed", True),
        ({"perp_pnc_id": "26/123456A"}, "pnc_id_well_formed", True),
        ({"perp_pnc_id": "2026/0123456a"}, "pnc_id_well_formed", True),
        ({"perp_pnc_id": "026/123456A"}, "pnc_id_well_formed", False),
        ({"perp_pnc_id": "26/12345678A"}, "pnc_id_well_formed", False),
        ({"perp_pnc_id": "26/123456A\n"}, "pnc_id_well_formed", False),
        ({"perp_pnc_id": "\u0662\u0666/123456A"}, "pnc_id_well_formed", False),  # Arabic-Indic digits
        ({"perp_pnc_id": "26/123456\u017f"}, "pnc_id_well_formed", False),  # long s, which upper-cases to S
        ({"perp_dob": None, "perp_dob_given": True}, "perp_dob_real", False),
        ({"received_date": None, "received_date_given": True}, "received_date_real", False),
        ({"received_date": date(2026, 11, 21)}, "received_days_before_run", -1.0),
        # Dates a unit could really be sent; year 1 would overflow routing's date arithmetic.
        ({"received_date": date(1, 1, 2), "incident_date": None}, "received_date_plausible", False),
        ({"received_date": date(1999, 12, 31), "incident_date": None}, "received_date_plausible", False),
        ({"received_date": date(2000, 1, 1), "incident_date": None}, "received_date_plausible", True),
        ({"received_date": None, "received_date_given": False}, "received_date_plausible", True),
        ({"incident_date": date(1, 1, 1)}, "incident_date_plausible", False),
        ({"incident_date": date(1899, 12, 31)}, "incident_date_plausible", False),
        ({"incident_date": date(1900, 1, 1)}, "incident_date_plausible", True),
        ({"incident_date": None, "incident_date_given": False}, "incident_date_plausible", True),
        ({"victim_dob": date(1899, 12, 31), "received_date": date(2005, 1, 1)}, "victim_dob_plausible", False),
        ({"victim_dob": date(1900, 1, 1), "received_date": date(2005, 1, 1)}, "victim_dob_plausible", True),
        ({"perp_dob": date(1, 1, 1), "received_date": date(1, 1, 2)}, "perp_dob_plausible", False),
        ({"incident_date": date(2026, 11, 19)}, "incident_days_before_received", 0.0),
        ({"behaviours": ("following", "teleporting")}, "behaviour_codes_known", False),
        ({"markers": ("weapon",)}, "marker_codes_known", True),
        ({"markers": ("dragons",)}, "marker_codes_known", False),
        ({"behaviours": ()}, "behaviour_count", 0),
    ],
)
def test_flags_describe_personal_fields_without_them(changes: dict[str, Any], flag: str, expected: object) -> None:
    assert flags(**changes)[flag] == expected


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("07700 900123", True),
        ("+447700900123", True),
        ("(0114) 496 0123", True),
        ("0161-496-0000", True),
        ("12345", False),
        ("+1 555 0100", False),
        (None, True),
    ],
)
def test_uk_phone_spellings(number: str | None, ok: bool) -> None:
    assert phone_ok(number) is ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("referring_agency", f"gp dr {MARKER}"),
        ("force", f"{MARKER} constabulary"),
        ("relationship", MARKER),
        ("srp", MARKER),
        ("source_ref", f"victim {MARKER} rang about CW1 2AB"),
        ("crime_ref", f"ask {MARKER}"),
        ("sdash_drugs_alcohol", f"{MARKER} said maybe"),
    ],
)
def test_a_misplaced_cell_never_reaches_validation_as_it_is(column: str, value: str) -> None:
    frame = validation_frame(to_frame([good_row(**{column: value})]), RUN, r"^CH-\d+$")
    assert MARKER not in frame.to_csv()
    assert frame.iloc[0][column].startswith("<")
