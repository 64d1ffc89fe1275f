"""The synthetic inbox generator: deterministic, realistic when clean, every defect kind when dirty."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from faker import Faker

from iasu.synthetic import DefectKind, GenerateSummary, generate, write_undecodable
from iasu.synthetic.defects import inject
from iasu.synthetic.feeds import CSV_FEEDS, STYLES, CsvWriter, Native, encode, native, nhs_record
from iasu.synthetic.people import CP1252_FORENAMES, CP1252_SURNAMES
from iasu.synthetic.referrals import ReferralFactory
from rules.codes import (
    SDASH_ANSWERS,
    SDASH_COLUMNS,
    Behaviour,
    Force,
    Marker,
    ReferringAgency,
    Relationship,
    Source,
    SrpLevel,
    values,
)
from tasks.adapters import SOURCE_REF_PATTERNS, adapt, inbox_file_name, police_rms
from tasks.adapters.canonical import CRIME_REF_PATTERN, PERSONAL, FileHeld

START = date(2026, 3, 2)
SEVERE = {Marker.threats_to_kill, Marker.weapon, Marker.breach_of_order, Marker.sexual_violence}


Row = dict[str, Any]


def rows_of(frame: pd.DataFrame) -> list[Row]:
    return [{str(key): value for key, value in record.items()} for record in frame.to_dict("records")]


def files_of(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def adapted(root: Path, summary: GenerateSummary) -> pd.DataFrame:
    frames = []
    for file in summary.files:
        frame = adapt(root / file.day.isoformat() / file.file_name).frame
        frame["folder_day"] = file.day
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary, pd.DataFrame]:
    root = tmp_path_factory.mktemp("clean")
    summary = generate(START, days=3, per_day=150, seed=11, dirty=0.0, out=root)
    return root, summary, adapted(root, summary)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    root = tmp_path_factory.mktemp("dirty")
    return root, generate(START, days=3, per_day=150, seed=5, dirty=0.3, out=root)


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    generate(START, days=2, per_day=40, seed=3, dirty=0.3, out=tmp_path / "a")
    generate(START, days=2, per_day=40, seed=3, dirty=0.3, out=tmp_path / "b")
    first, second = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert len(first) == 6
    assert first == second


def test_a_different_seed_writes_different_files(tmp_path: Path) -> None:
    generate(START, days=1, per_day=40, seed=3, dirty=0.0, out=tmp_path / "a")
    generate(START, days=1, per_day=40, seed=4, dirty=0.0, out=tmp_path / "b")
    first, second = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(first[name] != second[name] for name in first)


def test_each_day_gets_a_folder_with_one_file_per_source(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    root, summary, _ = clean
    assert sorted(path.name for path in (root / "2026-03-03").iterdir()) == [
        "nhs_trust_2026-03-03.jsonl",
        "police_rms_2026-03-03.csv",
        "victim_service_2026-03-03.csv",
    ]
    assert sorted(summary.records_by_day()) == [START + timedelta(days=n) for n in range(3)]
    assert all(sum(per_source.values()) == 150 for per_source in summary.records_by_day().values())


def test_police_file_is_cp1252_behind_a_bom_with_crlf_and_iso_dates(
    clean: tuple[Path, GenerateSummary, pd.DataFrame],
) -> None:
    data = (clean[0] / "2026-03-02" / "police_rms_2026-03-02.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfURN,Force,DateReceived,")
    text = data[3:].decode("cp1252")
    assert text.endswith("\r\n")
    first = next(iter(csv.DictReader(io.StringIO(text, newline=""))))
    assert re.fullmatch(r"2026-0[23]-[0-9]{2}", first["DateReceived"])
    assert first["Force"] in police_rms.FORCE_LABELS
    assert first["SDASH01"] in {"Y", "N"}


def test_victim_service_file_is_utf8_with_lf_and_day_first_dates(
    clean: tuple[Path, GenerateSummary, pd.DataFrame],
) -> None:
    data = (clean[0] / "2026-03-02" / "victim_service_2026-03-02.csv").read_bytes()
    text = data.decode("utf-8")
    assert "\r" not in text
    assert text.startswith("Case No,Force Area,Date Referred,")
    assert re.search(r",\d\d/\d\d/\d{4},", text)


def test_nhs_file_is_json_lines_with_nested_people(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    lines = (clean[0] / "2026-03-02" / "nhs_trust_2026-03-02.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    assert set(record["victim"]) == {"name", "dateOfBirth", "contact", "address"}
    assert set(record["victim"]["name"]) == {"given", "family"}
    assert all(isinstance(answer, bool) for answer in record["sdash"].values())


def test_a_clean_day_adapts_with_every_row_parsed_and_every_code_known(
    clean: tuple[Path, GenerateSummary, pd.DataFrame],
) -> None:
    _, summary, frame = clean
    assert len(frame) == summary.records
    assert frame["parse_ok"].all()
    assert set(frame["force"]) <= set(values(Force))
    assert set(frame["referring_agency"]) <= set(values(ReferringAgency))
    assert set(frame["relationship"]) <= set(values(Relationship))
    assert set(frame["srp"].dropna()) <= set(values(SrpLevel))
    assert {code for codes in frame["behaviours"] for code in codes} <= set(values(Behaviour))
    assert {code for codes in frame["markers"] for code in codes} <= set(values(Marker))
    for column in SDASH_COLUMNS:
        assert set(frame[column]) <= set(SDASH_ANSWERS)
    assert summary.defect_totals() == dict.fromkeys(DefectKind, 0)


def test_a_clean_day_has_every_required_field_and_plausible_dates(
    clean: tuple[Path, GenerateSummary, pd.DataFrame],
) -> None:
    frame = clean[2]
    required = ["source_ref", "force", "received_date", "referring_agency", "relationship", "duration_months"]
    required += ["victim_forename", "victim_surname", "victim_dob", "perp_forename", "perp_surname", "perp_dob"]
    assert frame[required].notna().all().all()
    assert frame["behaviours"].map(len).min() >= 1
    for row in rows_of(frame):
        assert re.fullmatch(SOURCE_REF_PATTERNS[Source(row["source"])], row["source_ref"])
        assert row["crime_ref"] is None or re.fullmatch(CRIME_REF_PATTERN, row["crime_ref"])
        assert timedelta(0) <= row["folder_day"] - row["received_date"] <= timedelta(days=2)
        assert row["incident_date"] is None or row["incident_date"] <= row["received_date"]
        assert row["victim_dob"] < row["received_date"] and row["perp_dob"] < row["received_date"]


def test_a_clean_day_has_roughly_a_third_high_risk(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    frame = clean[2]
    yes_count = (frame[list(SDASH_COLUMNS)] == "yes").sum(axis=1)
    severe = frame["markers"].map(lambda codes: bool(SEVERE & set(codes)))
    assert 0.2 < ((yes_count >= 6) | severe).mean() < 0.5


def test_perpetrators_come_back_across_days_and_sources(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    frame = clean[2]
    person = frame["perp_forename"] + "|" + frame["perp_surname"] + "|" + frame["perp_dob"].astype(str)
    spread = frame.groupby(person).agg(days=("folder_day", "nunique"), sources=("source", "nunique"))
    assert (spread["days"] > 1).any()
    assert (spread["sources"] > 1).any()
    victims = frame.groupby(person)["victim_surname"].nunique()
    assert (victims > 1).any()
    pnc = frame.dropna(subset=["perp_pnc_id"]).groupby(person)["perp_pnc_id"].nunique()
    assert (pnc == 1).all()  # one person, one PNC id


def test_some_referrals_arrive_from_two_sources(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    frame = clean[2]
    key = ["victim_surname", "victim_dob", "perp_surname", "perp_dob", "received_date", "incident_date"]
    sources = frame.astype({"incident_date": str}).groupby(key)["source"].nunique()
    assert (sources > 1).any()


def test_names_carry_apostrophes_hyphens_and_non_ascii_letters(
    clean: tuple[Path, GenerateSummary, pd.DataFrame],
) -> None:
    frame = clean[2]
    names = set(frame["victim_surname"]) | set(frame["perp_surname"]) | set(frame["victim_forename"])
    assert any("'" in name for name in names)
    assert any("-" in name for name in names)
    assert any(not name.isascii() for name in names)
    police = frame[frame["source"] == "police_rms"]
    "".join(police["victim_forename"]).encode("cp1252")  # representable, or this raises
    assert all(name.encode("cp1252") for name in CP1252_FORENAMES + CP1252_SURNAMES)


def test_the_summary_holds_counts_and_no_personal_value(clean: tuple[Path, GenerateSummary, pd.DataFrame]) -> None:
    _, summary, frame = clean
    shown = repr(summary)
    personal = {value for column in PERSONAL for value in frame[column].dropna() if isinstance(value, str)}
    assert not [value for value in personal if len(value) > 3 and value in shown]


def test_a_dirty_day_adapts_every_record_written(dirty: tuple[Path, GenerateSummary]) -> None:
    root, summary = dirty
    for file in summary.files:
        frame = adapt(root / file.day.isoformat() / file.file_name).frame
        assert len(frame) == file.records
        assert (~frame["parse_ok"].astype(bool)).sum() == file.defects[DefectKind.truncated_last_line]
        assert frame["raw"].duplicated().sum() == file.defects[DefectKind.repeated_row]


def test_a_dirty_day_shows_every_defect_kind(dirty: tuple[Path, GenerateSummary]) -> None:
    totals = dirty[1].defect_totals()
    assert all(totals[kind] > 0 for kind in DefectKind), totals
    assert all(file.defects[DefectKind.truncated_last_line] <= 1 for file in dirty[1].files)


def test_a_dirty_rate_marks_that_fraction_of_records(dirty: tuple[Path, GenerateSummary]) -> None:
    for file in dirty[1].files:
        per_record = sum(count for kind, count in file.defects.items() if kind is not DefectKind.truncated_last_line)
        written = file.records - file.defects[DefectKind.repeated_row]
        assert per_record == round(0.3 * written)


def test_a_truncated_file_has_no_final_line_ending(dirty: tuple[Path, GenerateSummary]) -> None:
    root, summary = dirty
    for file in summary.files:
        data = (root / file.day.isoformat() / file.file_name).read_bytes()
        assert data.endswith(b"\n") == (file.defects[DefectKind.truncated_last_line] == 0)


@pytest.mark.parametrize("source", list(Source))
def test_an_undecodable_file_is_held(tmp_path: Path, source: Source) -> None:
    with pytest.raises(FileHeld, match="not valid"):
        adapt(write_undecodable(tmp_path, source, START))


@pytest.mark.parametrize("dirty_rate", [-0.1, 1.5])
def test_a_dirty_rate_outside_zero_to_one_is_refused(tmp_path: Path, dirty_rate: float) -> None:
    with pytest.raises(ValueError, match="dirty"):
        generate(START, days=1, per_day=1, seed=1, dirty=dirty_rate, out=tmp_path)


@pytest.fixture(scope="module")
def factory() -> ReferralFactory:
    rng = random.Random(2)
    fake = Faker("en_GB")
    fake.seed_instance(2)
    return ReferralFactory(rng, fake)


def adapt_one(tmp_path: Path, source: Source, values: Native) -> Row:
    """Write one native record as its source would and read it back."""
    if source is Source.nhs_trust:
        text = nhs_record(values)
    else:
        writer = CsvWriter(CSV_FEEDS[source])
        text = writer.header() + writer.record(values)
    path = tmp_path / inbox_file_name(source, START)
    path.write_bytes(encode(source, text))
    return rows_of(adapt(path).frame)[0]


def _given_but_unreadable(row: Row) -> bool:
    flags = {"received_date": "received_date_given", "incident_date": "incident_date_given"}
    flags |= {"victim_dob": "victim_dob_given", "perp_dob": "perp_dob_given"}
    return any(row[column] is None and row[flag] for column, flag in flags.items())


def _after(row: Row, later: str, earlier: str) -> bool:
    first, second = row[earlier], row[later]
    return isinstance(first, date) and isinstance(second, date) and second > first


def _missing_required(row: Row, clean: Row) -> bool:
    required = ("source_ref", "force", "received_date", "relationship", "victim_surname")
    return any(row[column] is None for column in required) or not row["victim_dob_given"]


def _impossible_date(row: Row, clean: Row) -> bool:
    born_1850 = any(isinstance(row[c], date) and row[c].year == 1850 for c in ("victim_dob", "perp_dob"))
    return _given_but_unreadable(row) or born_1850


def _future_date(row: Row, clean: Row) -> bool:
    return any(isinstance(row[c], date) and row[c] > START for c in ("received_date", "incident_date"))


def _unknown_code(row: Row, clean: Row) -> bool:
    lists = {"force": Force, "relationship": Relationship, "referring_agency": ReferringAgency, "srp": SrpLevel}
    unknown = [row[column] not in values(codes) for column, codes in lists.items() if row[column] is not None]
    unknown += [code not in values(Behaviour) for code in row["behaviours"]]
    unknown += [code not in values(Marker) for code in row["markers"]]
    return any(unknown)


def _sdash_not_yes_no(row: Row, clean: Row) -> bool:
    return any(row[column] not in SDASH_ANSWERS for column in SDASH_COLUMNS)


def _dates_out_of_order(row: Row, clean: Row) -> bool:
    return any(_after(row, later, "received_date") for later in ("incident_date", "victim_dob", "perp_dob"))


def _same_as_clean(row: Row, clean: Row) -> bool:
    return {**row, "raw": ""} == {**clean, "raw": ""}


DEFECT_SHOWS: dict[DefectKind, Callable[[Row, Row], bool]] = {
    DefectKind.missing_required: _missing_required,
    DefectKind.impossible_date: _impossible_date,
    DefectKind.future_date: _future_date,
    DefectKind.unknown_code: _unknown_code,
    DefectKind.sdash_not_yes_no: _sdash_not_yes_no,
    DefectKind.dates_out_of_order: _dates_out_of_order,
    DefectKind.whitespace_case: _same_as_clean,
}


@pytest.mark.parametrize("source", list(Source))
@pytest.mark.parametrize("kind", list(DEFECT_SHOWS))
def test_each_injected_defect_shows_in_the_adapted_row(
    tmp_path: Path, factory: ReferralFactory, source: Source, kind: DefectKind
) -> None:
    for attempt in range(4):  # each kind has variants: try a few records
        referral = factory.referral(START, source)
        clean_row = adapt_one(tmp_path, source, native(referral))
        dirty_values = native(referral)
        inject(dirty_values, kind, referral=referral, day=START, style=STYLES[source], rng=random.Random(attempt))
        dirty_row = adapt_one(tmp_path, source, dirty_values)
        assert dirty_row["parse_ok"]
        assert DEFECT_SHOWS[kind](dirty_row, clean_row)
        if kind is not DefectKind.future_date:
            assert not _future_date(dirty_row, clean_row)


def test_the_summary_serialises_to_json_counts(dirty: tuple[Path, GenerateSummary]) -> None:
    shown = json.loads(json.dumps(dirty[1].as_dict()))
    assert shown["records"] == dirty[1].records
    assert set(shown["defects"]) == {kind.value for kind in DefectKind}
    assert [file["file"] for file in shown["files"]][:3] == [
        "police_rms_2026-03-02.csv",
        "nhs_trust_2026-03-02.jsonl",
        "victim_service_2026-03-02.csv",
    ]
