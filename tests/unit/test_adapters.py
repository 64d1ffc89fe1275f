"""Source adapters as tables: hand-written records in each feed's format -> canonical values."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from rules.codes import SDASH_COLUMNS, Source
from tasks.adapters import (
    SOURCES_BY_PREFIX,
    adapt,
    inbox_file_name,
    nhs_trust,
    police_rms,
    shown_name,
    victim_service,
)
from tasks.adapters.canonical import COLUMNS, FileHeld

DAY = date(2026, 3, 2)

POLICE_ROW: dict[str, str] = {
    "URN": "CH-URN-2026-004512",
    "Force": "Cheshire Constabulary",
    "DateReceived": "2026-03-02",
    "ReferringAgency": "Police",
    "CrimeRef": "CH/0012345/26",
    "Relationship": "Ex-partner",
    "Behaviours": "Following;Loitering",
    "DurationMonths": "12",
    "LastIncidentDate": "2026-02-27",
    **{f"SDASH{n:02d}": ("Y" if n <= 4 else "N") for n in range(1, 12)},
    "SRP": "",
    "RiskMarkers": "Threats to kill;Suspect MH concern",
    "VictimForename": "Zoë",
    "VictimSurname": "O'Brien",
    "VictimDOB": "1990-05-17",
    "VictimPhone": "07700 900123",
    "VictimEmail": "zoe.obrien@example.com",
    "VictimAddress": "1 Test Street, Chester",
    "VictimPostcode": "CH1 1AA",
    "SuspectForename": "José",
    "SuspectSurname": "Smith-Jones",
    "SuspectDOB": "1984-11-02",
    "SuspectPhone": "",
    "SuspectEmail": "",
    "SuspectAddress": "",
    "SuspectPostcode": "",
    "SuspectPNC": "26/123456A",
    "OfficerNotes": 'Seen outside work, "twice".',
}

VICTIM_SERVICE_ROW: dict[str, str] = {
    "Case No": "VS0012345",
    "Force Area": "London (Met)",
    "Date Referred": "02/03/2026",
    "referred_by": "National Stalking Helpline",
    "crime_ref": "",
    "Relationship": "Online",
    "behaviours": "contacting,monitoring online",
    "Duration (months)": "3",
    "Last Incident": "28/02/2026",
    **{f"SDASH Q{n}": ("Yes" if n == 1 else "No") for n in range(1, 12)},
    "SRP": "Low",
    "risk_markers": "",
    "Victim First Name": "Siobhán",
    "Victim Last Name": "Ó Súilleabháin",
    "Victim DOB": "09/01/2001",
    "Victim Phone": "",
    "Victim Email": "",
    "Victim Address": "",
    "Victim Postcode": "",
    "Perp First Name": "Łukasz",
    "Perp Last Name": "Nguyễn",
    "Perp DOB": "31/12/1979",
    "Perp Phone": "",
    "Perp Email": "",
    "Perp Address": "",
    "Perp Postcode": "",
    "Perp PNC": "",
    "Notes": "",
}


def nhs_record() -> dict[str, object]:
    """A well-formed NHS trust referral with obviously fake values."""
    return {
        "referralId": "NHS-REF-00012345",
        "forceArea": "Hampshire",
        "receivedDate": "2026-03-01",
        "referringAgency": "Probation",
        "crimeReference": None,
        "relationship": "Former partner",
        "behaviours": ["Following", "Online monitoring"],
        "durationMonths": 18,
        "lastIncidentDate": "2026-02-20",
        "sdash": {key: key == "victimVeryFrightened" for key, _ in nhs_trust.SDASH_KEYS},
        "srp": "moderate",
        "markers": ["Order breach"],
        "victim": {
            "name": {"given": "Ní", "family": "Bhriain"},
            "dateOfBirth": "1995-07-04",
            "contact": {"phone": "07700 900456", "email": None},
            "address": {"lines": ["Flat 2", "3 Test Road", "Winchester"], "postcode": "SO23 9AA"},
        },
        "perpetrator": {
            "name": {"given": "Łukasz", "family": "Nguyễn"},
            "dateOfBirth": "1988-02-29",
            "contact": {"phone": None, "email": None},
            "address": {"lines": [], "postcode": None},
            "pncId": None,
        },
        "notes": 'Line one,\nline "two".',
    }


def csv_text(headers: list[str], rows: list[list[str]], terminator: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def write_police(tmp_path: Path, rows: list[dict[str, str]], *, bom: bool = True, drop: str | None = None) -> Path:
    headers = [header for header in police_rms.FEED.headers if header != drop]
    text = csv_text(headers, [[row[header] for header in headers] for row in rows], "\r\n")
    path = tmp_path / inbox_file_name(Source.police_rms, DAY)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("cp1252"))
    return path


def write_victim_service(tmp_path: Path, rows: list[dict[str, str]], *, drop: str | None = None) -> Path:
    headers = [header for header in victim_service.FEED.headers if header != drop]
    text = csv_text(headers, [[row[header] for header in headers] for row in rows], "\n")
    path = tmp_path / inbox_file_name(Source.victim_service, DAY)
    path.write_bytes(text.encode("utf-8"))
    return path


def write_nhs(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def only_row(path: Path) -> dict[str, object]:
    frame = adapt(path).frame
    assert len(frame) == 1
    return {str(column): value for column, value in frame.iloc[0].to_dict().items()}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"source": "police_rms", "source_ref": "CH-URN-2026-004512", "force": "cheshire", "parse_ok": True}),
        ({}, {"received_date": date(2026, 3, 2), "received_date_given": True, "referring_agency": "police"}),
        ({}, {"relationship": "ex_intimate_partner", "behaviours": ("following", "loitering"), "duration_months": 12}),
        ({}, {"markers": ("threats_to_kill", "perpetrator_mental_health"), "srp": None, "crime_ref": "CH/0012345/26"}),
        ({}, {"sdash_victim_very_frightened": "yes", "sdash_past_violence": "no", "incident_date": date(2026, 2, 27)}),
        ({}, {"victim_forename": "Zoë", "victim_surname": "O'Brien", "perp_surname": "Smith-Jones"}),
        ({}, {"victim_dob": date(1990, 5, 17), "perp_pnc_id": "26/123456A", "perp_phone": None}),
        ({}, {"victim_address": "1 Test Street, Chester", "notes": 'Seen outside work, "twice".'}),
        ({"URN": " ch-urn-2026-004512 "}, {"source_ref": "CH-URN-2026-004512"}),
        ({"Force": "  cHESHIRE   Constabulary\t"}, {"force": "cheshire"}),
        ({"Force": "Hampshire and Isle of Wight Constabulary"}, {"force": "hampshire"}),
        ({"Force": "Metropolitan Police Service"}, {"force": "met"}),
        ({"Force": "Durham Constabulary"}, {"force": "durham constabulary"}),
        ({"Force": ""}, {"force": None}),
        ({"DateReceived": "2026-02-30"}, {"received_date": None, "received_date_given": True}),
        ({"DateReceived": "02/03/2026"}, {"received_date": None, "received_date_given": True}),
        ({"DateReceived": "2026-03-02 09:15"}, {"received_date": None, "received_date_given": True}),
        ({"DateReceived": "  "}, {"received_date": None, "received_date_given": False}),
        ({"VictimDOB": "1850-06-01"}, {"victim_dob": date(1850, 6, 1), "victim_dob_given": True}),
        ({"SDASH01": " y "}, {"sdash_victim_very_frightened": "yes"}),
        ({"SDASH01": "No"}, {"sdash_victim_very_frightened": "no"}),
        ({"SDASH01": "maybe"}, {"sdash_victim_very_frightened": "maybe"}),
        ({"SDASH01": "Unknown"}, {"sdash_victim_very_frightened": "unknown"}),
        ({"SDASH01": ""}, {"sdash_victim_very_frightened": None}),
        ({"Behaviours": " following ; Hacking accounts;"}, {"behaviours": ("following", "hacking accounts")}),
        ({"RiskMarkers": ""}, {"markers": ()}),
        ({"Relationship": "COLLEAGUE"}, {"relationship": "work"}),
        ({"Relationship": "Neighbour"}, {"relationship": "neighbour"}),
        ({"ReferringAgency": "National Stalking Helpline"}, {"referring_agency": "helpline"}),
        ({"SRP": " HIGH"}, {"srp": "high"}),
        ({"DurationMonths": "twelve"}, {"duration_months": None, "duration_given": True}),
        ({"DurationMonths": ""}, {"duration_months": None, "duration_given": False}),
        ({"DurationMonths": "12345"}, {"duration_months": None, "duration_given": True}),
        ({"DurationMonths": "9" * 5000}, {"duration_months": None, "duration_given": True}),  # past int()'s limit
        ({"CrimeRef": " ch/0012345/26 "}, {"crime_ref": "CH/0012345/26"}),
        ({"VictimSurname": "  Ó Súilleabháin "}, {"victim_surname": "Ó Súilleabháin"}),
    ],
)
def test_police_records_map_onto_canonical_values(
    tmp_path: Path, changes: dict[str, str], expected: dict[str, object]
) -> None:
    row = only_row(write_police(tmp_path, [{**POLICE_ROW, **changes}]))
    assert {column: row[column] for column in expected} == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"source": "victim_service", "source_ref": "VS0012345", "force": "met", "referring_agency": "helpline"}),
        ({}, {"received_date": date(2026, 3, 2), "incident_date": date(2026, 2, 28), "perp_dob": date(1979, 12, 31)}),
        ({}, {"relationship": "online_only", "behaviours": ("contacting", "monitoring_online"), "srp": "low"}),
        ({}, {"sdash_victim_very_frightened": "yes", "sdash_previous_stalking": "no", "markers": ()}),
        ({}, {"victim_surname": "Ó Súilleabháin", "perp_forename": "Łukasz", "perp_surname": "Nguyễn"}),
        ({}, {"crime_ref": None, "notes": None, "victim_phone": None, "duration_months": 3}),
        ({"Date Referred": "2026-03-02"}, {"received_date": None, "received_date_given": True}),
        ({"Date Referred": "31/04/2026"}, {"received_date": None, "received_date_given": True}),
        ({"Date Referred": "2/3/2026"}, {"received_date": None, "received_date_given": True}),
        ({"Date Referred": "02/03/20261"}, {"received_date": None, "received_date_given": True}),
        ({"Victim DOB": ""}, {"victim_dob": None, "victim_dob_given": False}),
        ({"SDASH Q2": "YES "}, {"sdash_previous_stalking": "yes"}),
        ({"SDASH Q2": "2"}, {"sdash_previous_stalking": "2"}),
        ({"Force Area": "cheshire"}, {"force": "cheshire"}),
        ({"referred_by": "ISAC"}, {"referring_agency": "victim_service"}),
        ({"referred_by": "School"}, {"referring_agency": "school"}),
        ({"behaviours": "following, Watching/Spying , "}, {"behaviours": ("following", "watching_spying")}),
        ({"risk_markers": "breach,on licence"}, {"markers": ("breach_of_order", "perpetrator_on_licence")}),
        ({"Case No": "vs0012345"}, {"source_ref": "VS0012345"}),
        ({"Notes": 'a, b\nc "d"'}, {"notes": 'a, b\nc "d"'}),
    ],
)
def test_victim_service_records_map_onto_canonical_values(
    tmp_path: Path, changes: dict[str, str], expected: dict[str, object]
) -> None:
    row = only_row(write_victim_service(tmp_path, [{**VICTIM_SERVICE_ROW, **changes}]))
    assert {column: row[column] for column in expected} == expected


def _set(path: tuple[str, ...], value: object) -> Callable[[dict[str, object]], None]:
    def change(record: dict[str, object]) -> None:
        target = record
        for key in path[:-1]:
            inner = target[key]
            assert isinstance(inner, dict)
            target = inner
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (None, {"source": "nhs_trust", "source_ref": "NHS-REF-00012345", "force": "hampshire", "parse_ok": True}),
        (
            None,
            {"received_date": date(2026, 3, 1), "referring_agency": "probation", "relationship": "ex_intimate_partner"},
        ),
        (None, {"behaviours": ("following", "monitoring_online"), "markers": ("breach_of_order",), "srp": "moderate"}),
        (None, {"duration_months": 18, "crime_ref": None, "incident_date": date(2026, 2, 20)}),
        (None, {"sdash_victim_very_frightened": "yes", "sdash_past_violence": "no"}),
        (None, {"victim_forename": "Ní", "victim_address": "Flat 2, 3 Test Road, Winchester", "perp_address": None}),
        (None, {"perp_forename": "Łukasz", "perp_surname": "Nguyễn", "perp_dob": date(1988, 2, 29)}),
        (None, {"notes": 'Line one,\nline "two".', "perp_pnc_id": None, "victim_email": None}),
        (_set(("sdash", "pastViolence"), "maybe"), {"sdash_past_violence": "maybe"}),
        (_set(("sdash", "pastViolence"), 2), {"sdash_past_violence": "2"}),
        (_set(("sdash", "pastViolence"), None), {"sdash_past_violence": None}),
        (_set(("sdash", "pastViolence"), " Yes"), {"sdash_past_violence": "yes"}),
        (_set(("forceArea",), " METROPOLITAN "), {"force": "met"}),
        (_set(("forceArea",), "Lancashire"), {"force": "lancashire"}),
        (_set(("referralId",), " nhs-ref-00012345"), {"source_ref": "NHS-REF-00012345"}),
        (_set(("referralId",), ""), {"source_ref": None}),
        (_set(("receivedDate",), "2026-02-30"), {"received_date": None, "received_date_given": True}),
        (_set(("receivedDate",), None), {"received_date": None, "received_date_given": False}),
        (_set(("durationMonths",), "7"), {"duration_months": 7, "duration_given": True}),
        (_set(("durationMonths",), 7.5), {"duration_months": None, "duration_given": True}),
        (_set(("behaviours",), "Loitering"), {"behaviours": ("loitering",)}),
        (_set(("markers",), None), {"markers": ()}),
        (_set(("victim", "name", "family"), "  "), {"victim_surname": None}),
        (_set(("perpetrator", "pncId"), " 26/123456A "), {"perp_pnc_id": "26/123456A"}),
        (_set(("victim", "contact", "phone"), 7700900456), {"victim_phone": "7700900456"}),
        (_set(("victim", "address", "lines"), "2 Test Lane"), {"victim_address": "2 Test Lane"}),
        (
            _set(("victim", "address", "lines"), ["Flat 2", None, " ", "Winchester"]),
            {"victim_address": "Flat 2, Winchester"},
        ),
        (_set(("victim", "address", "lines"), [None, "  "]), {"victim_address": None}),
    ],
)
def test_nhs_records_map_onto_canonical_values(
    tmp_path: Path, change: Callable[[dict[str, object]], None] | None, expected: dict[str, object]
) -> None:
    record = nhs_record()
    if change is not None:
        change(record)
    row = only_row(write_nhs(tmp_path, [record]))
    assert {column: row[column] for column in expected} == expected


def test_police_export_is_read_as_cp1252_behind_a_utf8_bom(tmp_path: Path) -> None:
    path = write_police(tmp_path, [POLICE_ROW])
    assert path.read_bytes().startswith(b"\xef\xbb\xbfURN,")
    assert b"Zo\xeb" in path.read_bytes()  # ë as the single Windows-1252 byte
    row = only_row(path)
    assert (row["source_ref"], row["victim_forename"], row["line_no"]) == ("CH-URN-2026-004512", "Zoë", 2)


def test_police_export_without_a_bom_still_reads(tmp_path: Path) -> None:
    assert only_row(write_police(tmp_path, [POLICE_ROW], bom=False))["source_ref"] == "CH-URN-2026-004512"


def test_police_export_saved_as_utf8_with_non_cp1252_bytes_is_held(tmp_path: Path) -> None:
    path = write_police(tmp_path, [POLICE_ROW])
    # "Ł" in UTF-8 is C5 81, and 0x81 has no meaning in Windows-1252.
    path.write_bytes(path.read_bytes().replace(b"Zo\xeb", "Łukasz".encode()))
    with pytest.raises(FileHeld) as held:
        adapt(path)
    assert "cp1252" in held.value.reason
    assert held.value.rows == 1


def test_victim_service_file_in_cp1252_is_held_as_not_utf8(tmp_path: Path) -> None:
    row = {**VICTIM_SERVICE_ROW, "Perp First Name": "Zoë", "Perp Last Name": "Smith"}
    path = write_victim_service(tmp_path, [row, row])
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(FileHeld) as held:
        adapt(path)
    assert "utf-8" in held.value.reason
    assert held.value.rows == 2


def test_nhs_file_with_bytes_that_are_not_utf8_is_held(tmp_path: Path) -> None:
    path = write_nhs(tmp_path, [nhs_record(), nhs_record()])
    path.write_bytes(path.read_bytes() + b'{"referralId": "\xff"}\n')
    with pytest.raises(FileHeld) as held:
        adapt(path)
    assert held.value.rows == 3


@pytest.mark.parametrize(
    ("writer", "drop"),
    [
        (lambda tmp, drop: write_police(tmp, [POLICE_ROW], drop=drop), "VictimDOB"),
        (lambda tmp, drop: write_police(tmp, [POLICE_ROW], drop=drop), "SDASH07"),
        (lambda tmp, drop: write_victim_service(tmp, [VICTIM_SERVICE_ROW], drop=drop), "Date Referred"),
    ],
)
def test_a_missing_required_header_holds_the_file_and_names_the_column(
    tmp_path: Path, writer: Callable[[Path, str], Path], drop: str
) -> None:
    with pytest.raises(FileHeld) as held:
        adapt(writer(tmp_path, drop))
    assert held.value.reason == f"missing required columns: {drop}"
    assert held.value.rows == 1


@pytest.mark.parametrize(
    ("writer", "extra", "named"),
    [
        (
            lambda tmp: write_victim_service(tmp, [VICTIM_SERVICE_ROW, VICTIM_SERVICE_ROW]),
            "Victim Last Name",
            "Victim Last Name",
        ),
        (
            lambda tmp: write_victim_service(tmp, [VICTIM_SERVICE_ROW, VICTIM_SERVICE_ROW]),
            " date  REFERRED",
            "Date Referred",
        ),
        (lambda tmp: write_police(tmp, [POLICE_ROW, POLICE_ROW]), "urn", "URN"),
        (lambda tmp: write_police(tmp, [POLICE_ROW, POLICE_ROW]), "CrimeRef", "CrimeRef"),  # optional, but read
    ],
)
def test_a_header_the_adapter_reads_given_twice_holds_the_file_and_names_it(
    tmp_path: Path, writer: Callable[[Path], Path], extra: str, named: str
) -> None:
    path = writer(tmp_path)
    ending = "\r\n" if "police" in path.name else "\n"
    encoding = "cp1252" if "police" in path.name else "utf-8"
    data = path.read_bytes()
    bom = data[:3] if data.startswith(b"\xef\xbb\xbf") else b""
    lines = data.removeprefix(bom).decode(encoding).split(ending)
    # The export tool appended a second column of that name, empty: read last, it would replace the real one.
    lines = [lines[0] + f",{extra}"] + [line + "," if line else line for line in lines[1:]]
    path.write_bytes(bom + ending.join(lines).encode(encoding))
    with pytest.raises(FileHeld) as held:
        adapt(path)
    assert (held.value.reason, held.value.rows) == (f"duplicated columns: {named}", 2)


def test_a_missing_optional_header_is_noted_not_held(tmp_path: Path) -> None:
    adapted = adapt(write_police(tmp_path, [POLICE_ROW], drop="CrimeRef"))
    assert adapted.frame.iloc[0]["crime_ref"] is None
    assert adapted.notes == ["optional columns absent: CrimeRef"]


def test_headers_match_regardless_of_case_and_surrounding_spaces(tmp_path: Path) -> None:
    path = write_victim_service(tmp_path, [VICTIM_SERVICE_ROW])
    text = path.read_text(encoding="utf-8").replace("Case No,", " CASE NO ,", 1)
    path.write_text(text, encoding="utf-8")
    assert only_row(path)["source_ref"] == "VS0012345"


def test_header_cells_no_column_matches_even_by_case_are_counted_as_unexpected_never_named(
    tmp_path: Path,
) -> None:
    # A damaged header row can hold a record's values: the run summary counts such cells, never shows them.
    path = write_victim_service(tmp_path, [VICTIM_SERVICE_ROW])
    header, row, end = path.read_text(encoding="utf-8").split("\n")
    header = header.replace("Case No,", " CASE NO ,", 1).replace("Notes", "notes") + ",Zoë Example"
    path.write_text("\n".join([header, row + ",", end]), encoding="utf-8")
    adapted = adapt(path)
    assert adapted.notes == ["unexpected columns ignored: 1"]
    assert adapted.frame.iloc[0]["source_ref"] == "VS0012345"


def test_nhs_file_whose_records_lack_a_required_key_is_held(tmp_path: Path) -> None:
    record = nhs_record()
    del record["perpetrator"]
    with pytest.raises(FileHeld) as held:
        adapt(write_nhs(tmp_path, [record, record]))
    assert held.value.reason == "missing required keys: perpetrator"
    assert held.value.rows == 2


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        # One array: its records, as they will be counted once sent as JSON Lines, not its text's lines.
        (json.dumps([nhs_record(), nhs_record()], indent=2, ensure_ascii=False) + "\n", 2),
        (json.dumps([nhs_record(), nhs_record(), nhs_record()]) + "\n", 3),  # the array on one line
        ("referralId,forceArea\nNHS-REF-00012345,Cheshire\n", 2),  # a CSV given the .jsonl name
    ],
)
def test_an_nhs_file_with_no_json_object_on_any_line_is_held_with_its_records_counted(
    tmp_path: Path, content: str, rows: int
) -> None:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileHeld, match=r"^no JSON object on any line$") as held:
        adapt(path)
    assert held.value.rows == rows


def test_an_nhs_file_of_empty_objects_is_held_for_its_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    path.write_text("{}\n{}\n", encoding="utf-8")
    with pytest.raises(FileHeld, match=r"^missing required keys: referralId, ") as held:
        adapt(path)
    assert held.value.rows == 2


def test_an_empty_nhs_file_is_taken_in_with_no_record(tmp_path: Path) -> None:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    path.write_bytes(b"\n")
    assert len(adapt(path).frame) == 0


def test_an_empty_csv_file_is_held_for_want_of_a_header(tmp_path: Path) -> None:
    path = tmp_path / inbox_file_name(Source.victim_service, DAY)
    path.write_bytes(b"")
    with pytest.raises(FileHeld, match="no header row"):
        adapt(path)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_a_file_with_no_record_at_all_is_held_with_none_counted(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / inbox_file_name(Source.victim_service, DAY)
    path.write_bytes(content)
    with pytest.raises(FileHeld, match="no header row") as held:
        adapt(path)
    assert held.value.rows == 0


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), OSError(5, "Input/output error")])
def test_a_file_that_cannot_be_read_is_held_with_none_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    for path in (write_police(tmp_path, [POLICE_ROW]), write_nhs(tmp_path, [nhs_record()])):

        def refuse(self: Path) -> bytes:
            raise error

        monkeypatch.setattr(Path, "read_bytes", refuse)
        with pytest.raises(FileHeld) as held:
            adapt(path)
        monkeypatch.undo()
        assert (held.value.reason, held.value.rows) == (f"cannot be read: {error.strerror}", 0)


def test_the_records_after_an_unreadable_header_are_counted_not_the_header(tmp_path: Path) -> None:
    path = write_police(tmp_path, [POLICE_ROW, POLICE_ROW])
    data = path.read_bytes()
    path.write_bytes(data.replace(b"URN,", b"UR\rN,", 1))  # a lone CR in an unquoted cell: the csv module refuses it
    with pytest.raises(FileHeld, match="no header row") as held:
        adapt(path)
    assert held.value.rows == 2


@pytest.mark.parametrize("writer", ["police", "victim_service"])
def test_a_file_whose_lines_end_in_cr_alone_is_held_with_its_records_counted(tmp_path: Path, writer: str) -> None:
    rows = 3
    path = (
        write_police(tmp_path, [POLICE_ROW] * rows)
        if writer == "police"
        else write_victim_service(tmp_path, [VICTIM_SERVICE_ROW] * rows)
    )
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
    with pytest.raises(FileHeld, match="lines end in CR alone") as held:
        adapt(path)
    assert held.value.rows == rows


def test_a_header_only_file_gives_an_empty_frame_with_every_column(tmp_path: Path) -> None:
    frame = adapt(write_police(tmp_path, [])).frame
    assert (len(frame), tuple(frame.columns)) == (0, COLUMNS)


def test_a_truncated_last_csv_line_is_not_parse_ok(tmp_path: Path) -> None:
    path = write_police(tmp_path, [POLICE_ROW, POLICE_ROW])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut inside the last record, line ending gone
    frame = adapt(path).frame
    assert list(frame["parse_ok"]) == [True, False]
    assert list(frame["line_no"]) == [2, 3]
    assert frame.iloc[1]["source_ref"] is None


def test_a_truncated_last_json_line_is_not_parse_ok(tmp_path: Path) -> None:
    path = write_nhs(tmp_path, [nhs_record(), nhs_record()])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 30], encoding="utf-8")
    assert list(adapt(path).frame["parse_ok"]) == [True, False]


def test_a_reference_read_whole_from_a_cut_last_csv_record_is_kept_for_its_quarantine_entry(tmp_path: Path) -> None:
    second = {**POLICE_ROW, "URN": "CH-URN-2026-004513"}
    path = write_police(tmp_path, [POLICE_ROW, second])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut inside the last record's notes
    assert adapt(path).cut_refs == {3: "CH-URN-2026-004513"}
    # Cut inside the reference itself: what is left of it may name another referral, so nothing is kept.
    cut_in_ref = data[: data.rindex(b"CH-URN-2026-004513") + len("CH-URN-2026-0045")]
    path.write_bytes(cut_in_ref)
    assert adapt(path).cut_refs == {}


def test_no_reference_is_kept_from_a_complete_record_of_the_wrong_width(tmp_path: Path) -> None:
    short = {**POLICE_ROW, "URN": "CH-URN-2026-004513"}
    path = write_police(tmp_path, [short, POLICE_ROW])
    data = path.read_bytes().replace(b"CH-URN-2026-004513,", b"CH-URN-2026-004513,extra,", 1)
    path.write_bytes(data)  # its line ending read: not cut off, its cells perhaps shifted
    adapted = adapt(path)
    assert list(adapted.frame["parse_ok"]) == [False, True]
    assert adapted.cut_refs == {}


def test_no_reference_is_kept_from_a_complete_record_missing_a_field(tmp_path: Path) -> None:
    short = {**POLICE_ROW, "URN": "CH-URN-2026-004513"}
    path = write_police(tmp_path, [short, POLICE_ROW, short])
    data = path.read_bytes().replace(b"CH-URN-2026-004513,Cheshire Constabulary,", b"CH-URN-2026-004513,")
    path.write_bytes(data)  # every line ending read, the last one too: a field lost, not a record cut off
    adapted = adapt(path)
    assert list(adapted.frame["parse_ok"]) == [False, True, False]
    assert adapted.cut_refs == {}


def test_a_reference_read_whole_from_a_cut_last_json_line_is_kept(tmp_path: Path) -> None:
    path = write_nhs(tmp_path, [nhs_record(), {**nhs_record(), "referralId": "NHS-REF-00012346"}])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 30], encoding="utf-8")
    assert adapt(path).cut_refs == {2: "NHS-REF-00012346"}
    # A broken line that is not the last was not cut by an upload: nothing is read from it.
    path.write_text(text[: len(text) - 30] + "\n" + json.dumps(nhs_record()) + "\n", encoding="utf-8")
    assert adapt(path).cut_refs == {}


@pytest.mark.parametrize(
    ("line", "members"),
    [
        ('{"referralId": "NHS-REF-1", "force": "Ches', {"referralId": "NHS-REF-1"}),
        ('{"referralId": "NHS-REF-1"', {}),  # the brace or comma after it unread: perhaps cut short
        ('{"durationMonths": 12', {}),  # a number cut short reads as a smaller one
        ('{"durationMonths": 12 , "x": {"a": 1}, "y', {"durationMonths": 12, "x": {"a": 1}}),
        ('{"x": {"referralId": "NHS-REF-2", "b', {}),  # a nested member is not the record's own
        ('  {"a": [1, 2]}', {"a": [1, 2]}),
        ('["NHS-REF-1"', {}),
        ('{"a" "b"}', {}),
        ("", {}),
    ],
)
def test_whole_members_reads_only_members_ended_by_a_comma_or_brace(line: str, members: dict[str, object]) -> None:
    assert nhs_trust.whole_members(line) == members


def test_quoted_newlines_keep_each_record_at_its_starting_line(tmp_path: Path) -> None:
    rows = [{**POLICE_ROW, "OfficerNotes": 'first\nsecond, "third"\nfourth'}, POLICE_ROW, POLICE_ROW]
    frame = adapt(write_police(tmp_path, rows)).frame
    assert list(frame["line_no"]) == [2, 5, 6]
    assert frame.iloc[0]["notes"] == 'first\nsecond, "third"\nfourth'
    assert frame.iloc[0]["raw"].count("\n") == 2
    assert frame.iloc[1]["raw"] == frame.iloc[2]["raw"]
    assert not frame.iloc[1]["raw"].endswith(("\r", "\n"))


def test_a_csv_record_with_the_wrong_number_of_fields_is_not_parse_ok(tmp_path: Path) -> None:
    path = write_victim_service(tmp_path, [VICTIM_SERVICE_ROW, VICTIM_SERVICE_ROW])
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[1] += ",extra"
    path.write_text("\n".join(lines), encoding="utf-8")
    frame = adapt(path).frame
    assert list(frame["parse_ok"]) == [False, True]
    assert frame.iloc[0]["raw"].endswith(",extra")


def test_broken_json_lines_are_not_parse_ok_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    good = json.dumps(nhs_record(), ensure_ascii=False)
    path.write_text(f"{good}\n\n{{not json\n[1, 2]\n{good}\n", encoding="utf-8")
    frame = adapt(path).frame
    assert list(frame["line_no"]) == [1, 3, 4, 5]
    assert list(frame["parse_ok"]) == [True, False, False, True]
    assert frame.iloc[1]["raw"] == "{not json"


def test_a_json_line_nested_too_deep_to_parse_is_not_parse_ok(tmp_path: Path) -> None:
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    good = json.dumps(nhs_record(), ensure_ascii=False)
    deep = "[" * 1000
    path.write_text(f"{good}\n{deep}\n{good}\n", encoding="utf-8")
    frame = adapt(path).frame
    assert list(frame["parse_ok"]) == [True, False, True]
    assert frame.iloc[1]["raw"] == deep


@pytest.mark.parametrize(
    "change",
    [
        _set(("notes",), "Secret note \ud800 text"),
        _set(("victim", "name", "family"), "Sample\udfff"),
        _set(("forceArea",), "\udc80"),
        _set(("behaviours",), ["Following", "\ud83d"]),
        _set(("victim", "contact", "extra"), {"\ud800": "a key nobody reads"}),
    ],
)
def test_a_json_record_holding_a_lone_surrogate_is_not_parse_ok(
    tmp_path: Path, change: Callable[[dict[str, object]], None]
) -> None:
    # No UTF-8 store or cipher takes a lone surrogate, and only a \uXXXX escape can make one.
    record = nhs_record()
    change(record)
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    bad = json.dumps(record)  # ensure_ascii: the surrogate is written as its escape
    assert "\\ud" in bad
    path.write_text(f"{json.dumps(nhs_record())}\n{bad}\n", encoding="utf-8")
    frame = adapt(path).frame
    assert list(frame["parse_ok"]) == [True, False]
    assert frame.iloc[1]["raw"] == bad
    assert frame.iloc[1]["notes"] is None


def test_an_escaped_surrogate_pair_is_one_character_and_reads(tmp_path: Path) -> None:
    record = nhs_record()
    record["notes"] = "Sent \U0001f600 twice"
    path = tmp_path / inbox_file_name(Source.nhs_trust, DAY)
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert "\\ud83d\\ude00" in path.read_text(encoding="utf-8")
    row = only_row(path)
    assert (row["parse_ok"], row["notes"]) == (True, "Sent \U0001f600 twice")


def test_csv_feeds_cannot_yield_a_lone_surrogate_such_bytes_hold_the_file(tmp_path: Path) -> None:
    # Both CSV feeds decode strictly (cp1252 has no surrogates; Python's UTF-8 codec rejects
    # encoded ones), so a surrogate's bytes hold the file instead of reaching a record.
    path = write_victim_service(tmp_path, [VICTIM_SERVICE_ROW])
    path.write_bytes(path.read_bytes().replace("Łukasz".encode(), b"\xed\xa0\x80"))
    with pytest.raises(FileHeld, match="not valid utf-8"):
        adapt(path)


def test_every_canonical_column_is_present_and_integers_stay_integers(tmp_path: Path) -> None:
    frame = adapt(write_police(tmp_path, [POLICE_ROW, {**POLICE_ROW, "DurationMonths": ""}])).frame
    assert tuple(frame.columns) == COLUMNS
    assert [type(value) for value in frame["duration_months"]] == [int, type(None)]
    assert set(SDASH_COLUMNS) <= set(frame.columns)


def test_a_json_true_and_a_json_1_in_one_file_are_read_each_as_itself(tmp_path: Path) -> None:
    # Python counts True equal to 1: a file mixing them must not answer one record's question with another's.
    first, second = nhs_record(), nhs_record()
    _set(("sdash", "pastViolence"), True)(first)
    _set(("sdash", "pastViolence"), 1)(second)
    _set(("durationMonths",), 1)(first)
    _set(("durationMonths",), True)(second)
    frame = adapt(write_nhs(tmp_path, [first, second])).frame
    assert list(frame["sdash_past_violence"]) == ["yes", "1"]
    assert list(frame["duration_months"]) == [1, None]
    assert list(frame["duration_given"]) == [True, True]


@pytest.mark.parametrize(
    "name",
    ["contacts_2026-03-02.csv", "police_2026-03-02.csv", "README.md", "nhs-trust_2026-03-02.jsonl"],
)
def test_files_without_a_known_source_prefix_are_held(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("x\n", encoding="utf-8")
    with pytest.raises(FileHeld, match="no adapter for this file name"):
        adapt(path)


def test_a_file_named_as_a_source_but_for_case_is_held_with_its_records_counted_as_that_source_reads_them(
    tmp_path: Path,
) -> None:
    rows = [{**POLICE_ROW, "OfficerNotes": "first\nsecond"}, POLICE_ROW]  # 5 physical lines, 2 records
    path = write_police(tmp_path, rows)
    misnamed = path.rename(path.with_name(path.name.upper()))
    with pytest.raises(FileHeld, match="no adapter for this file name") as held:
        adapt(misnamed)
    assert held.value.rows == 2
    (tmp_path / "README.md").write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(FileHeld) as other:
        adapt(tmp_path / "README.md")
    assert other.value.rows is None  # no source's reader: the caller counts its lines


def test_each_source_prefix_names_one_source() -> None:
    expected = {
        "police_rms_": Source.police_rms,
        "nhs_trust_": Source.nhs_trust,
        "victim_service_": Source.victim_service,
    }
    assert expected == SOURCES_BY_PREFIX
    assert inbox_file_name(Source.nhs_trust, DAY) == "nhs_trust_2026-03-02.jsonl"


def test_each_adapter_reports_its_source_ref_pattern(tmp_path: Path) -> None:
    adapted = adapt(write_victim_service(tmp_path, [VICTIM_SERVICE_ROW]))
    assert (adapted.source, adapted.source_ref_pattern) == (Source.victim_service, victim_service.SOURCE_REF_PATTERN)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("police_rms_2026-11-17.csv", "police_rms_2026-11-17.csv"),  # as agreed: shown as it is
        ("NHS_TRUST_2026-11-17.jsonl", "NHS_TRUST_2026-11-17.jsonl"),  # but for case
        ("contacts_2026-11-17.csv", "contacts_2026-11-17.csv"),
        ("police_rms_2026-11-17_Jane_Doe.csv", "police_rms_2026-11-17~b81a4521.csv"),  # the rest is the sender's
        ("police_rms_2026-11-17.csv.bak", "police_rms_2026-11-17~5c75ed54"),
        ("victim_service_latest.csv", "victim_service~74d600af.csv"),
        ("Zoë Example.csv", "file~810461c5.csv"),
        ("_SUCCESS", "file~c2adf567"),
        ("police_rms_2026-11-17_Zo\udceb.csv", "police_rms_2026-11-17~d60d6790.csv"),  # not UTF-8: its bytes
        ("x" * 255, "file~d22609da"),
    ],
)
def test_a_file_name_is_shown_as_agreed_or_by_its_safe_part_and_a_digest(name: str, shown: str) -> None:
    assert shown_name(name) == shown
