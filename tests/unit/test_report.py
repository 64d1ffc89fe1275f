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
