"""Night-run bookkeeping: the run row, the reconciled summary and the catch-up watermark."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, select, update

from iasu import wiring
from iasu.db import ensure_current
from iasu.errors import OperatorError
from models import NightRun, RunWatermark
from models.types import utcnow

NIGHT_RUNS = NightRun.__table__  # type: ignore[attr-defined]
WATERMARKS = RunWatermark.__table__  # type: ignore[attr-defined]
WATERMARK = "nightly"
COUNT_KEYS = ("received", "loaded", "duplicates", "quarantined", "held_rows", "quarantine_resolved")


def night_folder(inbox: Path, run_date: date) -> Path:
    """Where a night's files arrive: INBOX/<YYYY-MM-DD>/."""
    return inbox / run_date.isoformat()


def input_files(inbox: Path, run_date: date) -> list[Path]:
    """The night's input files in a stable order; a missing night folder means nothing was received."""
    if not inbox.is_dir():
        raise OperatorError(f"inbox folder {inbox} does not exist")
    folder = night_folder(inbox, run_date)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def summarise(run_date: date, files: list[dict[str, Any]]) -> dict[str, Any]:
    """The night's reconciled totals over its files."""
    summary: dict[str, Any] = {"run_date": run_date.isoformat(), "files": len(files)}
    for key in COUNT_KEYS:
        summary[key] = sum(int(f[key]) for f in files)
    summary["held_files"] = sum(1 for f in files if f["held_rows"] and f["held_rows"] == f["received"])
    summary["repeat_files"] = sum(1 for f in files if f["status"] == "repeat")
    if not files:
        summary["note"] = "nothing received"
    return summary


@task(name="start-night", cache_policy=NO_CACHE)
def start_night(run_date: date, flow_run_id: str | None) -> int:
    """Check the schema and open a night-run record; returns its id."""
    engine = wiring.engine()
    ensure_current(engine)
    with engine.begin() as conn:
        return int(
            conn.execute(
                NIGHT_RUNS.insert()
                .values(run_date=run_date, status="running", flow_run_id=flow_run_id, started_at=utcnow(), summary={})
                .returning(NIGHT_RUNS.c.id)
            ).scalar_one()
        )


@task(name="finish-night", cache_policy=NO_CACHE)
def finish_night(night_run_id: int, run_date: date, summary: dict[str, Any]) -> None:
    """Store the night's summary and move the watermark forward."""
    with wiring.engine().begin() as conn:
        conn.execute(
            update(NIGHT_RUNS)
            .where(NIGHT_RUNS.c.id == night_run_id)
            .values(status="completed", finished_at=utcnow(), summary=summary)
        )
        _advance_watermark(conn, run_date)


def _advance_watermark(conn: Connection, run_date: date) -> None:
    current = conn.execute(
        select(WATERMARKS.c.last_completed_date).where(WATERMARKS.c.name == WATERMARK)
    ).scalar_one_or_none()
    if current is None:
        conn.execute(WATERMARKS.insert().values(name=WATERMARK, last_completed_date=run_date, updated_at=utcnow()))
    elif run_date > current:
        conn.execute(
            update(WATERMARKS)
            .where(WATERMARKS.c.name == WATERMARK)
            .values(last_completed_date=run_date, updated_at=utcnow())
        )


def last_completed(conn: Connection) -> date | None:
    """The latest run date the nightly flow completed, if any."""
    value = conn.execute(
        select(WATERMARKS.c.last_completed_date).where(WATERMARKS.c.name == WATERMARK)
    ).scalar_one_or_none()
    return value if isinstance(value, date) else None
