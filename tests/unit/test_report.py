"""The night's markdown report: counts come from the totals, references only as many as are shown."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.report import CASE_REFS_SHOWN, night_markdown

SUMMARY = {"run_date": "2026-11-02", "received": 0, "loaded": 0, "duplicates": 0, "quarantined": 0}
SUMMARY |= {"held_rows": 0, "held_files": 0}


def test_a_national_night_lists_the_first_references_and_counts_the_rest() -> None:
    refs = [f"CH-2026-{n:06d}" for n in range(1, CASE_REFS_SHOWN + 1)]
    text = night_markdown(SUMMARY, [], None, {"unit": {"high": refs}}, {"unit": {"high": 40_000}})
    assert f"| unit | high | 40000 | {', '.join(refs)} and {40_000 - CASE_REFS_SHOWN} more |" in text


def test_a_queue_with_exactly_as_many_cases_as_are_shown_lists_them_all_and_counts_none_more() -> None:
    refs = [f"CH-2026-{n:06d}" for n in range(1, CASE_REFS_SHOWN + 1)]
    text = night_markdown(SUMMARY, [], None, {"unit": {"high": refs}}, {"unit": {"high": CASE_REFS_SHOWN}})
    assert f"| unit | high | {CASE_REFS_SHOWN} | {', '.join(refs)} |" in text
    assert "more" not in text


@pytest.mark.parametrize(
    ("merged", "turned", "line"),
    [
        (0, 0, None),
        (2, 0, "2 referral(s) joined an existing case"),
        (0, 1, "1 case(s) qualified for the unit but were turned away for capacity."),
    ],
)
def test_referrals_merged_or_turned_away_get_their_line_and_a_night_with_neither_none(
    merged: int, turned: int, line: str | None
) -> None:
    text = night_markdown(SUMMARY | {"merged": merged, "turned_away_for_capacity": turned}, [], None, {}, {})
    assert ("turned away for capacity" in text) == (line is not None)
    assert line is None or line in text


def test_the_due_list_names_each_contact_s_worker_by_staff_code_or_a_dash_when_nobody_has_it() -> None:
    summary = SUMMARY | {"completed": 0, "scheduled": 0, "due_today": 2, "open_contacts": 2}
    due: dict[str, dict[str, Any]] = {
        "unit": {
            "due": 2,
            "first": [
                {"case_ref": "CH-2026-000001", "kind": "victim_first_contact", "due_at": "T1", "staff_code": "S-017"},
                {"case_ref": "CH-2026-000002", "kind": "perpetrator_checkin", "due_at": "T2", "staff_code": None},
            ],
        }
    }
    lines = night_markdown(summary, [], None, {}, {}, due).splitlines()
    start = lines.index("Due today in unit (2, soonest first):")
    assert lines[start + 2 :] == [
        "| case | kind | due | worker |",
        "|---|---|---|---|",
        "| CH-2026-000001 | victim_first_contact | T1 | S-017 |",
        "| CH-2026-000002 | perpetrator_checkin | T2 | — |",
    ]
    assert "more due today" not in "\n".join(lines)


def test_a_due_list_cut_short_says_how_many_more_are_due() -> None:
    summary = SUMMARY | {"completed": 0, "scheduled": 0, "due_today": 75, "open_contacts": 90}
    first = [
        {"case_ref": f"CH-2026-{n:06d}", "kind": "victim_followup", "due_at": "T", "staff_code": None} for n in (1, 2)
    ]
    text = night_markdown(summary, [], None, {}, {}, {"unit": {"due": 75, "first": first}})
    assert "Due today in unit (75, soonest first):" in text
    assert "| CH-2026-000002 | victim_followup | T | — |\n\nand 73 more due today in unit.\n" in text


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


def test_the_contacts_feed_has_its_own_totals_beside_the_referrals() -> None:
    from datetime import date

    from tasks.ingest import FileCounts
    from tasks.night import summarise

    referrals = [FileCounts(file="police_rms_2026-11-02.csv", source="police_rms", status="loaded", received=20)]
    referrals[0].loaded = 20
    feed = FileCounts(
        file="contacts_2026-11-02.csv", source="contacts", status="held", received=1, held_rows=1, held_reason="x"
    )
    files = [f.as_dict() for f in referrals]
    summary = summarise(date(2026, 11, 2), files)
    summary["contacts_feed"] = summarise(date(2026, 11, 2), [feed.as_dict()]) | {"applied": 0}
    text = night_markdown(summary, [*files, feed.as_dict()], None, {}, {})
    assert "Received **20**: loaded 20" in text
    assert "Contacts feed received **1**: applied 0, duplicates 0, quarantined 0, held 1 (in 1 held file(s))." in text
    assert "Contacts feed" not in night_markdown(
        SUMMARY | {"contacts_feed": summarise(date(2026, 11, 2), [])}, [], None
    )


def test_cases_no_worker_could_take_are_said_to_be_counted_in_one_ops_alert() -> None:
    summary = SUMMARY | {"completed": 0, "scheduled": 0, "due_today": 0, "open_contacts": 3}
    summary |= {"unassigned_count": 2, "unassigned": ["CH-2026-000001", "CH-2026-000002"]}
    text = night_markdown(summary, [], None, {}, {})
    assert (
        "No eligible worker for 2 case(s): CH-2026-000001, CH-2026-000002 (counted in one ops alert queued tonight)."
        in text
    )


def test_cases_no_worker_could_take_beyond_those_listed_are_counted() -> None:
    refs = [f"CH-2026-{n:06d}" for n in range(1, CASE_REFS_SHOWN + 1)]
    summary = SUMMARY | {"completed": 0, "scheduled": 0, "due_today": 0, "open_contacts": 98}
    text = night_markdown(summary | {"unassigned_count": 98, "unassigned": refs}, [], None, {}, {})
    assert f"No eligible worker for 98 case(s): {', '.join(refs)} and {98 - CASE_REFS_SHOWN} more (counted" in text


def test_the_report_gives_missed_deadlines_by_level_and_what_became_of_the_alerts() -> None:
    alerts = {"queued": 31, "sent": 0, "failed": 0, "dry_run": 0, "pending": 92}
    summary = SUMMARY | {"overdue": {"1": 22, "2": 18, "3": 0}, "alerts": alerts | {"stopped": None}}
    text = night_markdown(summary, [], None, {}, {})
    assert "Overdue contacts: level 1 22, level 2 18, level 3 0." in text
    assert "Alerts: 31 queued tonight; 0 sent, 0 dry run, 0 failed, 92 pending." in text
    assert "undelivered" not in text
    stopped = "Slack unreachable: 92 alert(s) pending, sent by the next dispatch once Slack answers"
    text = night_markdown(summary | {"alerts": alerts | {"stopped": stopped}}, [], None, {}, {})
    assert f"**Alerts undelivered.** {stopped}." in text


def test_the_command_line_summary_gives_the_contacts_feed_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    from iasu.cli import _print_summary

    feed = {"files": 1, "received": 1, "applied": 0, "duplicates": 0, "quarantined": 0, "held_rows": 1}
    _print_summary(SUMMARY | {"contacts_feed": feed | {"held_files": 1}}, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026-11-02: received 0, loaded 0, duplicates 0, quarantined 0, held 0 (in 0 held file(s))"
    assert lines[1] == "  contacts feed: received 1, applied 0, duplicates 0, quarantined 0, held 1 (in 1 held file(s))"
