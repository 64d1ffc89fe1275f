"""The night's report for operations staff: a markdown artifact in the Prefect UI, counts only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

ARTIFACT_KEY = "nightly-summary"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


CASE_REFS_SHOWN = 30  # per queue and tier; the rest are counted, so a national-scale night stays readable


def _first_of(refs: list[str], count: int) -> str:
    """The first references of `count`, and how many more there are: a cut list never passes for a whole one."""
    shown = refs[:CASE_REFS_SHOWN]
    return ", ".join(shown) + (f" and {count - len(shown)} more" if count > len(shown) else "")


def night_markdown(
    summary: dict[str, Any],
    files: list[dict[str, Any]],
    docs_index: Path | None,
    case_refs: dict[str, dict[str, list[str]]] | None = None,
    opened: dict[str, dict[str, int]] | None = None,
    due: dict[str, dict[str, Any]] | None = None,
) -> str:
    """Markdown for one night: totals, per file what became of its rows and why, cases, contacts due."""
    lines = [
        f"# Nightly run {summary['run_date']}",
        "",
        f"Received **{summary['received']}**: loaded {summary['loaded']}, duplicates {summary['duplicates']}, "
        f"quarantined {summary['quarantined']}, held {summary['held_rows']} "
        f"(in {summary['held_files']} held file(s)).",
        "",
    ]
    feed = summary.get("contacts_feed")
    if feed and feed["files"]:  # its own totals: the line above counts the referral files alone
        lines[-1:-1] = [
            "",
            f"Contacts feed received **{feed['received']}**: applied {feed['applied']}, "
            f"duplicates {feed['duplicates']}, quarantined {feed['quarantined']}, held {feed['held_rows']} "
            f"(in {feed['held_files']} held file(s)).",
        ]
    if not files:
        lines.append("Nothing was received for this date (no inbox folder or no files in it).")
    else:
        lines += [
            "| file | status | received | loaded | duplicates | quarantined | held | why |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for f in files:
            why = f["held_reason"] or ", ".join(
                f"{name} ×{n}" for name, n in sorted(f["failed_expectations"].items(), key=lambda kv: (-kv[1], kv[0]))
            )
            if f["status"] == "repeat":
                why = "same file already taken in; rows counted again as before" + (f" ({why})" if why else "")
            lines.append(
                f"| {_cell(f['file'])} | {f['status']} | {f['received']} | {f['loaded']} | {f['duplicates']} "
                f"| {f['quarantined']} | {f['held_rows']} | {_cell(why)} |"
            )
    lines += ["", "## Cases opened", ""]
    if not opened:
        lines.append("No new cases.")
    else:
        lines += ["| queue | tier | cases | case references |", "|---|---|---:|---|"]
        for queue in sorted(opened):
            for tier in ("high", "medium", "standard"):
                count = opened[queue].get(tier, 0)
                if count:
                    refs = (case_refs or {}).get(queue, {}).get(tier, [])
                    lines.append(f"| {queue} | {tier} | {count} | {_first_of(refs, count)} |")
    merged, turned = summary.get("merged", 0), summary.get("turned_away_for_capacity", 0)
    if merged or turned:
        lines += [
            "",
            f"{merged} referral(s) joined an existing case (the same referral from another source); "
            f"{turned} case(s) qualified for the unit but were turned away for capacity.",
        ]
    if "scheduled" in summary:
        lines += [
            "",
            "## Contacts",
            "",
            f"{summary['completed']} completed, {summary['scheduled']} newly scheduled, "
            f"{summary['due_today']} due today, {summary['open_contacts']} open in all.",
        ]
        if summary.get("unassigned_count"):
            lines.append(
                f"No eligible worker for {summary['unassigned_count']} case(s): "
                + _first_of(summary["unassigned"], summary["unassigned_count"])
                + " (counted in one ops alert queued tonight)."
            )
        for queue, listed in sorted((due or {}).items()):
            lines += ["", f"Due today in {queue} ({listed['due']}, soonest first):", ""]
            lines += ["| case | kind | due | worker |", "|---|---|---|---|"]
            lines += [
                f"| {r['case_ref']} | {r['kind']} | {r['due_at']} | {r['staff_code'] or '—'} |" for r in listed["first"]
            ]
            if listed["due"] > len(listed["first"]):
                lines += ["", f"and {listed['due'] - len(listed['first'])} more due today in {queue}."]
    if "overdue" in summary:
        alerts = summary["alerts"]
        lines += [
            "",
            "## Missed deadlines and alerts",
            "",
            "Overdue contacts: " + ", ".join(f"level {k} {v}" for k, v in summary["overdue"].items()) + ".",
            "",
            f"Alerts: {alerts['queued']} queued tonight; {alerts['sent']} sent, {alerts['dry_run']} dry run, "
            f"{alerts['failed']} failed, {alerts['pending']} pending.",
        ]
        if alerts.get("stopped"):
            lines += ["", f"**Alerts undelivered.** {alerts['stopped']}."]
    if docs_index is not None:
        lines += ["", f"Validation results (Data Docs, this night only): [{docs_index.name}]({docs_index.as_uri()})"]
    return "\n".join(lines) + "\n"


@task(name="publish-report")
def publish_report(
    summary: dict[str, Any],
    files: list[dict[str, Any]],
    docs_index: Path | None,
    case_refs: dict[str, dict[str, list[str]]] | None = None,
    opened: dict[str, dict[str, int]] | None = None,
    due: dict[str, dict[str, Any]] | None = None,
) -> str:
    """Publish the night's summary as a keyed markdown artifact (kept as a history across runs)."""
    markdown = night_markdown(summary, files, docs_index, case_refs, opened, due)
    create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=markdown, description=f"Nightly intake for {summary['run_date']}"
    )
    return markdown
