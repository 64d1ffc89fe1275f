"""The night's markdown report: counts come from the totals, references only as many as are shown."""

from __future__ import annotations

from tasks.report import CASE_REFS_SHOWN, night_markdown

SUMMARY = {"run_date": "2026-11-02", "received": 0, "loaded": 0, "duplicates": 0, "quarantined": 0}
SUMMARY |= {"held_rows": 0, "held_files": 0}


def test_a_national_night_lists_the_first_references_and_counts_the_rest() -> None:
    refs = [f"CH-2026-{n:06d}" for n in range(1, CASE_REFS_SHOWN + 1)]
    text = night_markdown(SUMMARY, [], None, {"unit": {"high": refs}}, {"unit": {"high": 40_000}})
    assert f"| unit | high | 40000 | {', '.join(refs)} and {40_000 - CASE_REFS_SHOWN} more |" in text


def test_a_night_with_no_cases_says_so() -> None:
    assert "No new cases." in night_markdown(SUMMARY, [], None, {}, {})


def test_the_night_counts_every_held_file_even_an_empty_one_and_a_repeat_of_one() -> None:
    from datetime import date

    from tasks.ingest import FileCounts
    from tasks.night import summarise

    files = [
        FileCounts(file="police_rms_2026-11-02.csv", source="police_rms", status="held", held_reason="no header row"),
        FileCounts(
            file="nhs_trust_2026-11-02.jsonl",
            source="nhs_trust",
            status="repeat",
            received=5,
            held_rows=5,
            held_reason="too many rows",
        ),
        FileCounts(
            file="victim_service_2026-11-02.csv", source="victim_service", status="loaded", received=3, loaded=3
        ),
    ]

    summary = summarise(date(2026, 11, 2), [f.as_dict() for f in files])

    assert (summary["held_files"], summary["held_rows"], summary["repeat_files"]) == (2, 5, 1)
