"""Each kind of defect the generator injects is caught by a named expectation (or handled as documented)."""

from __future__ import annotations

import gc
import random
import weakref
from datetime import date
from pathlib import Path

import pytest
from faker import Faker

from expectations.derive import validation_frame
from expectations.runner import NightValidator
from iasu.synthetic.defects import DefectKind, inject, truncate
from iasu.synthetic.feeds import CSV_FEEDS, STYLES, CsvWriter, encode, native, nhs_record
from iasu.synthetic.referrals import ReferralFactory
from rules.codes import SDASH_ITEMS, Source
from tasks.adapters import adapt, inbox_file_name

DAY = date(2026, 11, 19)
PER_KIND = 12  # records per defect kind and source: enough to hit each injector's random choices

# What a row with each defect must fail: at least one of these names, and nothing else.
CAUGHT_BY: dict[DefectKind, frozenset[str]] = {
    DefectKind.missing_required: frozenset(
        {
            "source_ref_present",
            "force_present",
            "received_date_present",
            "relationship_present",
            "victim_name_present",
            "victim_dob_present",
        }
    ),
    DefectKind.impossible_date: frozenset(
        {
            "received_date_real",
            "incident_date_real",
            "victim_dob_real",
            "perp_dob_real",
            "victim_dob_plausible",
            "perp_dob_plausible",
        }
    ),
    DefectKind.future_date: frozenset(
        {"received_date_not_future", "incident_date_not_future", "incident_date_not_after_received"}
    ),
    DefectKind.unknown_code: frozenset(
        {
            "force_known",
            "relationship_known",
            "behaviour_codes_known",
            "marker_codes_known",
            "referring_agency_known",
            "srp_known",
        }
    ),
    DefectKind.sdash_not_yes_no: frozenset(f"sdash_{item}_yes_no" for item in SDASH_ITEMS),
    DefectKind.dates_out_of_order: frozenset(
        {"incident_date_not_after_received", "victim_dob_plausible", "perp_dob_plausible"}
    ),
    DefectKind.truncated_last_line: frozenset({"record_readable"}),
}
NOT_QUARANTINED = {
    DefectKind.repeated_row: "an exact repeat is a duplicate: the first copy loads, the second is counted as duplicate",
    DefectKind.whitespace_case: "adapters trim whitespace and fold the case of codes, so the row loads",
}
assert set(CAUGHT_BY) | set(NOT_QUARANTINED) == set(DefectKind)


def write_source_file(folder: Path, source: Source, seed: int) -> tuple[Path, list[DefectKind | None]]:
    """One export holding PER_KIND records of every defect kind (and clean ones), each kind's line known."""
    rng = random.Random(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    factory = ReferralFactory(rng, fake)
    referrals = [r for r in factory.day(DAY, 900) if r.source is source]
    kinds: list[DefectKind | None] = [None] * 5
    for each in DefectKind:
        if each is not DefectKind.truncated_last_line:
            kinds += [each] * PER_KIND
    assert len(referrals) > len(kinds), "generate more referrals"
    writer = CsvWriter(CSV_FEEDS[source]) if source in CSV_FEEDS else None
    texts: list[str] = []
    row_kinds: list[DefectKind | None] = []
    for referral, kind in zip(referrals, kinds, strict=False):
        values = native(referral)
        if kind is not None:
            inject(values, kind, referral=referral, day=DAY, style=STYLES[source], rng=rng)
        text = writer.record(values) if writer is not None else nhs_record(values)
        copies = 2 if kind is DefectKind.repeated_row else 1
        texts += [text] * copies
        row_kinds += [kind] * copies
    texts.append(truncate(writer.record(native(referrals[-1])) if writer else nhs_record(native(referrals[-1])), rng))
    row_kinds.append(DefectKind.truncated_last_line)
    body = (writer.header() if writer else "") + "".join(texts)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / inbox_file_name(source, DAY)
    path.write_bytes(encode(source, body))
    return path, row_kinds


@pytest.mark.parametrize("source", list(Source))
def test_every_injected_defect_is_caught_by_its_named_expectation(source: Source, tmp_path: Path) -> None:
    path, row_kinds = write_source_file(tmp_path / "inbox" / DAY.isoformat(), source, seed=101)
    frame = adapt(path).frame
    assert len(frame) == len(row_kinds)
    repeats = frame["raw"].duplicated(keep="first")
    unique = frame[~repeats]
    adapted = adapt(path)
    verdicts = NightValidator(tmp_path / "docs").validate(
        validation_frame(unique, DAY, adapted.source_ref_pattern),
        path.name,
        {"source_ref_pattern": adapted.source_ref_pattern},
    )
    seen: dict[DefectKind, int] = {}
    for position, (line_no, kind) in enumerate(zip(frame["line_no"], row_kinds, strict=True)):
        reasons = set(verdicts.reasons(int(line_no)))
        if bool(repeats.iloc[position]):
            assert kind is DefectKind.repeated_row
            continue
        if kind is None or kind in NOT_QUARANTINED:
            assert reasons == set(), (kind, line_no, reasons)
            continue
        assert reasons, f"{kind} on line {line_no} was not caught"
        assert reasons <= CAUGHT_BY[kind], (kind, line_no, reasons - CAUGHT_BY[kind])
        seen[kind] = seen.get(kind, 0) + 1
    assert set(seen) == set(CAUGHT_BY)
    assert int(repeats.sum()) == PER_KIND


def test_stored_results_name_failing_rows_by_line_and_carry_no_values_nor_frame_query(tmp_path: Path) -> None:
    path, _ = write_source_file(tmp_path / "inbox" / DAY.isoformat(), Source.police_rms, seed=7)
    adapted = adapt(path)
    validator = NightValidator(tmp_path / "docs")
    verdicts = validator.validate(
        validation_frame(adapted.frame, DAY, adapted.source_ref_pattern),
        path.name,
        {"source_ref_pattern": adapted.source_ref_pattern},
    )
    store = validator._ctx().validation_results_store
    results = [store.get(key) for key in store.list_keys()]
    named: dict[int, list[str]] = {}
    for suite_result in results:
        assert suite_result is not None
        for result in suite_result.results:
            stored = result.result or {}
            assert "unexpected_index_query" not in stored
            # Line numbers and counts only: not even the masked values of the failing cells, and the line
            # numbers once (not again as a "partial" list).
            partial = {"partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list"}
            assert not ({"unexpected_list"} | partial) & set(stored)
            for entry in stored.get("unexpected_index_list") or []:
                assert set(entry) == {"line_no"}
                for line_no in entry["line_no"]:
                    named.setdefault(int(line_no), []).append(str(result.expectation_config.meta["name"]))
    assert named and set(named) == set(verdicts.failed)
    for line, names in verdicts.failed.items():
        # The verdicts keep only "record_readable" for an unreadable record, which fails everything else too.
        assert set(names) <= set(named[line])
        assert names == ["record_readable"] or set(names) == set(named[line])


def test_a_validated_frame_is_not_kept_for_the_night_and_data_docs_still_show_it(tmp_path: Path) -> None:
    # Great Expectations' data source would hold each file's frame until the night's context goes, through
    # routing's peak memory; the validator lets go of it once the results are stored.
    path, _ = write_source_file(tmp_path / "inbox" / DAY.isoformat(), Source.victim_service, seed=5)
    adapted = adapt(path)
    validator = NightValidator(tmp_path / "docs")
    frame = validation_frame(adapted.frame, DAY, adapted.source_ref_pattern)
    held = weakref.ref(frame)
    verdicts = validator.validate(frame, path.name, {"source_ref_pattern": adapted.source_ref_pattern})
    del frame
    gc.collect()
    assert held() is None
    assert verdicts.failed  # the file has defects, and they are still named
    index = validator.build_docs()
    assert index is not None
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))  # the file's validation page is there
