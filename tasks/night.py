"""Night-run bookkeeping: the run row, the reconciled summary and the catch-up watermark."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

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
    # Held, or a repeat of a held file: by the reason, since an empty file is held with no rows to count.
    summary["held_files"] = sum(1 for f in files if f.get("held_reason"))
    summary["repeat_files"] = sum(1 for f in files if f["status"] == "repeat")
    if not files:
        summary["note"] = "nothing received"
    return summary


# A running night's process notes that it lives every minute (a thread beside the stages), and notes its
# progress as each stage finishes. One whose pulse stopped for DEAD_AFTER died without saying so (killed,
# the machine stopped): the next night need not wait long for it. One alive with no stage finished for
# STALLED_AFTER is stuck: longer than any stage can take (a national night's longest takes seconds, and the
# night's dispatch stops within an hour: twenty rounds of a three-minute send window).
PULSE_EVERY = timedelta(minutes=1)
DEAD_AFTER = timedelta(minutes=10)
STALLED_AFTER = timedelta(hours=2)


def night_running(conn: Connection, now: datetime) -> str | None:
    """What an operator needs to know of a night still running (or None), after retiring dead or stuck runs."""
    n = NIGHT_RUNS.c
    conn.execute(
        update(NIGHT_RUNS)
        .where(
            n.status == "running",
            or_(
                func.coalesce(n.heartbeat_at, n.started_at) < now - DEAD_AFTER,
                func.coalesce(n.progress_at, n.started_at) < now - STALLED_AFTER,
            ),
        )
        .values(status="failed", finished_at=now)
    )
    running = conn.execute(
        select(n.run_date, n.flow_run_id, n.started_at, n.heartbeat_at).where(n.status == "running")
    ).first()
    if running is None:
        return None
    last = running.heartbeat_at or running.started_at
    return (
        f"the night of {running.run_date} is still running (flow run {running.flow_run_id or 'unknown'}, started "
        f"{running.started_at:%Y-%m-%d %H:%M} UTC, last heard of {last:%H:%M} UTC): one night at a time; a run "
        f"that died is taken as failed once silent for {int(DEAD_AFTER.total_seconds() // 60)} minutes"
    )


def touch_night(night_run_id: int) -> None:
    """Note that the night has finished a stage: it is neither dead nor stuck."""
    n = NIGHT_RUNS.c
    now = utcnow()
    with wiring.engine().begin() as conn:
        noted = conn.execute(
            update(NIGHT_RUNS)
            .where(n.id == night_run_id, n.status == "running")
            .values(heartbeat_at=now, progress_at=now)
        ).rowcount
    if not noted:
        # Taken for dead or stuck, and perhaps another night started since: this one must not go on.
        raise taken_as_failed(night_run_id)


def taken_as_failed(night_run_id: int) -> OperatorError:
    """A night retired as dead or stuck while it still ran: it must stop, and not count as completed."""
    return OperatorError(f"night run {night_run_id} was taken as failed while it ran; rerun its night")


@contextmanager
def night_pulse(night_run_id: int, every: timedelta = PULSE_EVERY) -> Iterator[None]:
    """While the block runs, note every minute that the night's process lives (its heartbeat)."""
    stop = threading.Event()

    def beat() -> None:
        n = NIGHT_RUNS.c
        while not stop.wait(every.total_seconds()):
            try:
                with wiring.engine().begin() as conn:
                    conn.execute(
                        update(NIGHT_RUNS)
                        .where(n.id == night_run_id, n.status == "running")
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # a busy SQLite or a dropped connection: the next beat tries again
                continue

    pulse = threading.Thread(target=beat, name=f"night-pulse-{night_run_id}", daemon=True)
    pulse.start()
    try:
        yield
    finally:
        stop.set()
        # Not waited for long: a beat held by a busy SQLite (30 s) must not hold up the night's end.
        pulse.join(timeout=1)


@dataclass(frozen=True)
class NightStart:
    """A night opened (its run id), or why it could not be (one line for the operator)."""

    night_run_id: int | None = None
    refused: str | None = None


@task(name="start-night", cache_policy=NO_CACHE)
def start_night(run_date: date, flow_run_id: str | None) -> NightStart:
    """Check the schema and open a night-run record, one night at a time; a refusal is said, not raised."""
    # Not raised: a task's exception is logged with its traceback, and this is the operator's one line
    # (another night started while this one's Prefect started, after the command's own check).
    try:
        return NightStart(night_run_id=open_night(run_date, flow_run_id))
    except OperatorError as exc:
        return NightStart(refused=str(exc))


def open_night(run_date: date, flow_run_id: str | None) -> int:
    """Check the schema and open a night-run record, one night at a time; returns its id."""
    engine = wiring.engine()
    ensure_current(engine)
    with engine.begin() as conn:
        now = utcnow()
        busy = night_running(conn, now)
        if busy:
            raise OperatorError(busy)
        try:
            with conn.begin_nested():
                return int(
                    conn.execute(
                        NIGHT_RUNS.insert()
                        .values(
                            run_date=run_date, status="running", flow_run_id=flow_run_id, started_at=now, summary={}
                        )
                        .returning(NIGHT_RUNS.c.id)
                    ).scalar_one()
                )
        except IntegrityError:
            # Another night started between the check and the insert: the unique index over running runs says so.
            raise OperatorError(f"another night started just now; the night of {run_date} was not started") from None


# What a night's routing reports: counts, and the cases it opened (per queue and tier, the first references).
ROUTING_KEYS = ("routed", "tiers", "merged", "turned_away_for_capacity", "opened", "case_refs")


def routing_of_the_night(
    conn: Connection, night_run_id: int, run_date: date, routing: dict[str, Any]
) -> dict[str, Any]:
    """This run's routing report with those of the night's runs that failed after routing since it last completed.

    Each case is routed once, by whichever run got there, and the run that completes the night reports them,
    so `routed` over the nights sums to the cases.
    """
    return stage_of_the_night(conn, night_run_id, run_date, "routing", {key: routing[key] for key in ROUTING_KEYS})


def stage_of_the_night(
    conn: Connection, night_run_id: int, run_date: date, stage: str, mine: dict[str, Any]
) -> dict[str, Any]:
    """This run's report of one stage, kept on its run row in the stage's own transaction, added to the reports
    of the night's runs that failed since it last completed: their work is done once, and counted by the run
    that completes the night (counts summed, references listed the earliest first)."""
    n = NIGHT_RUNS.c
    # In the stage's transaction: a run killed after the stage committed still has its report on record.
    kept = conn.execute(select(n.summary).where(n.id == night_run_id)).scalar_one() or {}
    conn.execute(update(NIGHT_RUNS).where(n.id == night_run_id).values(summary={**kept, stage: mine}))
    earlier = conn.execute(
        select(n.summary)
        .where(n.run_date == run_date, n.status == "failed", n.id > _last_completed_run(run_date), n.id < night_run_id)
        .order_by(n.id)
    ).scalars()
    total: dict[str, Any] = {}
    for report in [*((summary or {}).get(stage) or {} for summary in earlier), mine]:  # the earliest first
        _add(total, report)
    return _sorted(total)


def dispatch_of_the_night(night_run_id: int, run_date: date, delivery: dict[str, Any]) -> dict[str, Any]:
    """The alerts this run's dispatch settled, with those the night's failed attempts settled (its own transaction:
    the dispatcher commits as it goes, and is also the five-minute flow's, which belongs to no night)."""
    mine = {key: delivery[key] for key in ("sent", "dry_run", "failed")}
    with wiring.engine().begin() as conn:
        return stage_of_the_night(conn, night_run_id, run_date, "dispatch", mine)


def created_by_the_night(run_date: date, created_at: Any) -> Any:
    """Whether a row's creation time falls in one of the night's runs since it last completed (a condition).

    Each run's own span, from its start to its end (or now, for this one): alerts queued between its attempts
    by daytime work, or by another night, are not the night's.
    """
    n = NIGHT_RUNS.c
    return exists().where(
        n.run_date == run_date,
        n.id > _last_completed_run(run_date),
        created_at >= n.started_at,
        or_(n.finished_at.is_(None), created_at <= n.finished_at),
    )


def night_began(run_date: date) -> Any:
    """When the night's first run since it last completed began (a scalar subquery)."""
    n = NIGHT_RUNS.c
    return (
        select(func.min(n.started_at)).where(n.run_date == run_date, n.id > _last_completed_run(run_date))
    ).scalar_subquery()


def _last_completed_run(run_date: date) -> Any:
    n = NIGHT_RUNS.c
    return (
        select(func.coalesce(func.max(n.id), 0)).where(n.run_date == run_date, n.status == "completed")
    ).scalar_subquery()


def _add(total: dict[str, Any], more: dict[str, Any]) -> None:
    """Add one report into another: counts summed, references listed after those before (nested by key)."""
    for key, value in more.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, list):
            total[key] = [*total.get(key, []), *value]
        else:
            total[key] = total.get(key, 0) + value


def _sorted(report: dict[str, Any]) -> dict[str, Any]:
    return {key: _sorted(value) if isinstance(value, dict) else value for key, value in sorted(report.items())}


def mark_night_failed(night_run_id: int) -> None:
    """Mark a night that stopped part way as failed: it no longer keeps the next one out."""
    with wiring.engine().begin() as conn:
        conn.execute(
            update(NIGHT_RUNS)
            .where(NIGHT_RUNS.c.id == night_run_id, NIGHT_RUNS.c.status == "running")
            .values(status="failed", finished_at=utcnow())
        )


@task(name="finish-night", cache_policy=NO_CACHE)
def finish_night(night_run_id: int, run_date: date, summary: dict[str, Any]) -> None:
    """Store the night's summary and move the watermark forward."""
    with wiring.engine().begin() as conn:
        finished = conn.execute(
            update(NIGHT_RUNS)
            .where(NIGHT_RUNS.c.id == night_run_id, NIGHT_RUNS.c.status == "running")
            .values(status="completed", finished_at=utcnow(), summary=summary)
        ).rowcount
        if not finished:
            # Taken for dead after its last stage (its pulse held up) and perhaps another night started since:
            # it must not count as completed nor move the catch-up past the other.
            raise taken_as_failed(night_run_id)
        _advance_watermark(conn, run_date)


def _advance_watermark(conn: Connection, run_date: date) -> None:
    # The watermark is the last night up to which every night completed: a night run by hand past a gap
    # leaves it where it is, so catch-up still runs the nights in the gap; the night that closes the gap
    # moves it over every night completed after it.
    current = conn.execute(
        select(WATERMARKS.c.last_completed_date).where(WATERMARKS.c.name == WATERMARK)
    ).scalar_one_or_none()
    if current is None:
        conn.execute(WATERMARKS.insert().values(name=WATERMARK, last_completed_date=run_date, updated_at=utcnow()))
        return
    if run_date != current + timedelta(days=1):
        return
    later = completed_after(conn, run_date)
    reached = run_date
    while reached + timedelta(days=1) in later:
        reached += timedelta(days=1)
    conn.execute(
        update(WATERMARKS)
        .where(WATERMARKS.c.name == WATERMARK)
        .values(last_completed_date=reached, updated_at=utcnow())
    )


def completed_after(conn: Connection, after: date, through: date | None = None) -> frozenset[date]:
    """Run dates after `after` (through `through`) with a completed night: nights run out of turn."""
    n = NIGHT_RUNS.c
    query = select(n.run_date).distinct().where(n.status == "completed", n.run_date > after)
    if through is not None:
        query = query.where(n.run_date <= through)
    return frozenset(conn.execute(query).scalars())


def last_completed(conn: Connection) -> date | None:
    """The last run date up to which every night completed, if any (the catch-up watermark)."""
    value = conn.execute(
        select(WATERMARKS.c.last_completed_date).where(WATERMARKS.c.name == WATERMARK)
    ).scalar_one_or_none()
    return value if isinstance(value, date) else None
