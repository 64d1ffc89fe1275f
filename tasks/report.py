"""The night's report for operations staff: a markdown artifact in the Prefect UI, counts only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

ARTIFACT_KEY = "nightly-summary"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def night_markdown(summary: dict[str, Any], files: list[dict[str, Any]], docs_index: Path | None) -> str:
    """Markdown for one night: totals, then per file what became of its rows and why."""
    lines = [
        f"# Nightly intake {summary['run_date']}",
        "",
        f"Received **{summary['received']}**: loaded {summary['loaded']}, duplicates {summary['duplicates']}, "
        f"quarantined {summary['quarantined']}, held {summary['held_rows']} "
        f"(in {summary['held_files']} held file(s)).",
        "",
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
    if docs_index is not None:
        lines += ["", f"Validation results (Data Docs, this night only): [{docs_index.name}]({docs_index.as_uri()})"]
    return "\n".join(lines) + "\n"


@task(name="publish-report")
def publish_report(summary: dict[str, Any], files: list[dict[str, Any]], docs_index: Path | None) -> str:
    """Publish the night's summary as a keyed markdown artifact (kept as a history across runs)."""
    markdown = night_markdown(summary, files, docs_index)
    create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=markdown, description=f"Nightly intake for {summary['run_date']}"
    )
    return markdown
