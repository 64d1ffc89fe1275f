"""Intake of one file: adapt, gate, validate, quarantine, load. One Prefect task per file, never per row."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine, and_, or_, select, update

from expectations.derive import validation_frame
from expectations.runner import NightValidator
from iasu import wiring
from iasu.policy import get_policy
from iasu.privacy import BlindIndex, FieldCipher
from models import BatchStatus
from models.types import utcnow
from rules.gate import RowCountGate, is_size_hold, row_count_hold_reason
from tasks import audit
from tasks.adapters import NO_ADAPTER, adapt, run_name, shown_name
from tasks.adapters.canonical import FileHeld, read_bytes
from tasks.collector import gc_paused
from tasks.load import BATCHES, QuarantinedRow, load_accepted, quarantine, stage_rows
from tasks.outbox import outbox_row, queue_alert

UNREAD = ""  # the digest of a file that could not be read: its batch is kept under its night and name alone
GATE_HISTORY = 10  # recent files of the same source the row-count gate compares against


@dataclass
class FileCounts:
    """The reconciled outcome of one file: received = loaded + duplicates + quarantined + held_rows."""

    file: str
    source: str | None
    status: str  # loaded | held | repeat (the same bytes were ingested before)
    received: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    held_rows: int = 0
    held_reason: str | None = None
    quarantine_resolved: int = 0
    completed: int = 0  # contacts feeds: contacts reported completed
    batch_id: int | None = None
    failed_expectations: dict[str, int] = field(default_factory=dict)  # expectation name -> rows
    stage_seconds: dict[str, float] = field(default_factory=dict)  # parse / validate / load, for ops and benchmarks

    def check(self) -> None:
        """Every input row is accounted for, or this is a bug worth stopping for."""
        total = self.loaded + self.duplicates + self.quarantined + self.held_rows
        if total != self.received:
            raise AssertionError(f"{self.file}: received {self.received} but accounted for {total}")

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready counts (no personal value anywhere)."""
        return asdict(self)


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def night_key(sha256: str, run_date: date, file_name: str) -> str:
    """The key a file with no record is kept under: its bytes' SHA-256 with its night and name.

    Zero bytes, a BOM alone or a header alone are what a failed export job writes, the same bytes every
    time: each night's such file is its own batch, gated and held (and told to ops) on its own, and only a
    rerun of its night meets it again as a repeat.
    """
    return hashlib.sha256(f"{sha256}\x00{run_date.isoformat()}\x00{file_name}".encode()).hexdigest()


def batch_key(sha256: str, counts: FileCounts, run_date: date) -> str:
    """The key a file's batch is kept and found under: its bytes' SHA-256 if it holds a record, else night_key."""
    return sha256 if counts.received else night_key(sha256, run_date, counts.file)


def _batch(conn: Connection, key: str) -> Any:
    return conn.execute(select(BATCHES).where(BATCHES.c.sha256 == key)).mappings().first()


def names_of(path: Path) -> tuple[str, ...]:
    """The names a file's batch may be recorded under: as shown (tasks.adapters.shown_name), then as it is.

    Releases before shown names recorded every file under its own name (and keyed a file with no record by
    it): a rerun of such a night must still find those batches, or it would take their files in again.
    A name that is not UTF-8 was never recorded (it failed the night), so it is looked up as shown only.
    """
    shown = shown_name(path)
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return (shown,)
    return (shown,) if path.name == shown else (shown, path.name)


def _previous(conn: Connection, sha256: str, run_date: date, names: tuple[str, ...]) -> Any:
    """The batch these bytes repeat: this night's of this name with no record, or one that held a record.

    The night's own batch first: the same bytes may also have been held under another name with their lines
    counted (a header-only copy misnamed), and that batch is not this file's.
    """
    for name in names:
        keyed = _batch(conn, night_key(sha256, run_date, name))
        if keyed is not None:
            return keyed
    previous = _batch(conn, sha256)
    if previous is not None and previous["received"] > 0:
        return previous
    # A file with no record kept under its bytes' hash alone, before such files had a key of their own
    # (taken in again, insert_batch re-keys that batch).
    if previous is not None and previous["run_date"] == run_date and previous["file_name"] in names:
        return previous
    return None


def _taken_over(previous: Any, names: tuple[str, ...]) -> bool:
    """Whether these bytes, met before as `previous`, are taken in again instead of counted as a repeat.

    Released after a hold by staff; or held for a file name no adapter knows, and now arriving under
    another name (an agency resending its file named as agreed).
    """
    if previous["status"] == BatchStatus.released:
        return True
    misnamed = previous["status"] == BatchStatus.held and previous["held_reason"] == NO_ADAPTER
    return bool(misnamed and previous["file_name"] not in names)


def seen_before(path: Path, engine: Engine, *, run_date: date) -> tuple[str, FileCounts | None, bool]:
    """The file's sha256, its counts again if the same bytes were taken in before (a repeat adds nothing),
    and whether staff released these bytes after a size hold (the size gate has then had its say);
    FileHeld if the file cannot be read (hold_unread).

    Bytes released, or held for their name and now arriving under another, are not a repeat; nor are
    bytes with no record, but on a rerun of their night under the same name (night_key).
    """
    sha256, names = hashlib.sha256(read_bytes(path)).hexdigest(), names_of(path)
    with engine.begin() as conn:
        previous = _previous(conn, sha256, run_date, names)
    if previous is None or _taken_over(previous, names):
        return sha256, None, previous is not None and previous["status"] == BatchStatus.released
    held = previous["held_rows"]
    counts = FileCounts(
        file=shown_name(path),
        source=previous["source"],
        status="repeat",
        received=previous["received"],
        quarantined=previous["quarantined"],
        held_rows=held,
        held_reason=previous["held_reason"],
        duplicates=previous["received"] - previous["quarantined"] - held,
        batch_id=previous["id"],
    )
    counts.check()
    return sha256, counts, False


def hold_unread(
    counts: FileCounts, *, engine: Engine, run_date: date, night_run_id: int | None, actor: str
) -> FileCounts:
    """Hold a file that cannot be read, no row counted; a rerun of its night that still cannot read it repeats."""
    with engine.begin() as conn:
        previous = _batch(conn, night_key(UNREAD, run_date, counts.file))
    if previous is not None and previous["status"] == BatchStatus.held:
        counts.status, counts.batch_id = "repeat", previous["id"]
        return counts
    return record_held(counts, engine=engine, run_date=run_date, night_run_id=night_run_id, sha256=UNREAD, actor=actor)


def gate_history(conn: Connection, source: str) -> list[int]:
    """Records in the source's most recent loaded files, newest first: what the row-count gate compares with."""
    rows = conn.execute(
        select(BATCHES.c.received)
        # Files with records only: each night's empty export is a batch of its own (night_key), and a few
        # of them would pull the median to 0 and hold the next real file as a surge.
        .where(BATCHES.c.source == source, BATCHES.c.status == BatchStatus.loaded, BATCHES.c.received > 0)
        .order_by(BATCHES.c.run_date.desc(), BATCHES.c.id.desc())
        .limit(GATE_HISTORY)
    )
    return [int(r) for r in rows.scalars()]


def insert_batch(conn: Connection, counts: FileCounts, *, run_date: date, night_run_id: int | None, sha256: str) -> int:
    """Record a file taken in; the same bytes taken in again after a hold take over the held or released batch."""
    key = batch_key(sha256, counts, run_date)
    values = {k: v for k, v in counts.as_dict().items() if k in BATCHES.c and k not in ("status",)}
    values.update(
        night_run_id=night_run_id,
        run_date=run_date,
        file_name=counts.file,
        sha256=key,
        status=BatchStatus.held if counts.status == "held" else BatchStatus.loaded,
        created_at=utcnow(),
    )
    values.pop("batch_id", None)
    b = BATCHES.c
    # One batch per file's bytes, or per night and name for bytes with no record (the key is unique): bytes
    # taken in again after a hold (seen_before) take over the held or released batch.
    # A batch of no-record bytes kept under their hash alone (before night keys) is taken over for its night
    # and name, and re-keyed: one batch per file, never a second under the same key.
    own = or_(
        b.sha256 == key,
        # The same night's file held as unreadable, now read: one batch for the file, not one left held for ever.
        b.sha256 == night_key(UNREAD, run_date, counts.file),
        *([] if key == sha256 else [and_(b.sha256 == sha256, b.run_date == run_date, b.file_name == counts.file)]),
    )
    earlier = conn.execute(
        select(b.id).where(own, b.status.in_([BatchStatus.released, BatchStatus.held])).order_by(b.id).limit(1)
    ).scalar_one_or_none()
    if earlier is not None:
        conn.execute(BATCHES.update().where(b.id == earlier).values(**values))
        return int(earlier)
    return int(conn.execute(BATCHES.insert().values(**values).returning(b.id)).scalar_one())


def release_batch(conn: Connection, batch_id: int, *, by: str, reason: str, cipher: FieldCipher) -> dict[str, Any]:
    """Release a held file: its same bytes are taken in again when its night reruns, past the size gate."""
    from iasu.errors import OperatorError

    if not reason.strip():
        raise OperatorError("a release needs a reason: it goes to the audit log")
    batch = conn.execute(select(BATCHES).where(BATCHES.c.id == batch_id)).mappings().first()
    if batch is None:
        raise OperatorError(f"no batch {batch_id}")
    if batch["status"] != BatchStatus.held:
        raise OperatorError(f"batch {batch_id} is {batch['status']}, not held")
    if not is_size_hold(batch["held_reason"]):
        # A rerun would meet the same unreadable, misshapen or misnamed bytes and hold them again.
        raise OperatorError(
            f"batch {batch_id} was held for its content or name ({batch['held_reason']}), not its size: "
            "only a corrected file (or the same file under its agreed name) can be taken in"
        )
    conn.execute(BATCHES.update().where(BATCHES.c.id == batch_id).values(status=BatchStatus.released))
    audit.record(
        conn,
        actor=by,
        action="release",
        entity="ingest_batches",
        entity_id=batch_id,
        details={"file": batch["file_name"], "rows": batch["held_rows"], "held_for": batch["held_reason"]},
        reason=reason,
        cipher=cipher,
    )
    return {"batch_id": batch_id, "file": batch["file_name"], "run_date": batch["run_date"].isoformat()}


def ingest_path(
    path: Path,
    *,
    run_date: date,
    night_run_id: int,
    actor: str,
    engine: Engine,
    cipher: FieldCipher,
    index: BlindIndex,
    validator: NightValidator,
    gate: RowCountGate | None = None,
) -> FileCounts:
    """Take in one file completely, in one transaction: either all of its rows are accounted for or none."""
    gate = gate or RowCountGate()
    try:
        sha256, repeat, released = seen_before(path, engine, run_date=run_date)
    except FileHeld as unread:  # its mode or an I/O error: the night goes on with the other files
        counts = FileCounts(file=shown_name(path), source=None, status="held", held_reason=unread.reason)
        return hold_unread(counts, engine=engine, run_date=run_date, night_run_id=night_run_id, actor=actor)
    if repeat is not None:
        return repeat

    clock = time.perf_counter()
    try:
        adapted = adapt(path)
    except FileHeld as held_file:
        rows = held_file.rows if held_file.rows is not None else _count_lines(path)
        counts = FileCounts(
            file=shown_name(path),
            source=None,
            status="held",
            received=rows,
            held_rows=rows,
            held_reason=held_file.reason,
        )
        return record_held(
            counts, engine=engine, run_date=run_date, night_run_id=night_run_id, sha256=sha256, actor=actor
        )

    frame = adapted.frame
    counts = FileCounts(file=shown_name(path), source=adapted.source.value, status="loaded", received=len(frame))
    counts.stage_seconds["parse"], clock = time.perf_counter() - clock, time.perf_counter()
    with engine.begin() as conn:
        reason = None if released else row_count_hold_reason(len(frame), gate_history(conn, adapted.source.value), gate)
    if reason is not None:
        counts.status, counts.held_rows, counts.held_reason = "held", len(frame), reason
        return record_held(
            counts, engine=engine, run_date=run_date, night_run_id=night_run_id, sha256=sha256, actor=actor
        )

    repeats = frame["raw"].duplicated(keep="first")
    counts.duplicates = int(repeats.sum())
    unique = frame[~repeats]
    # Great Expectations builds tens of thousands of small objects per file whatever its size; with the
    # collector paused for the call, the 100k night's validation took 2.4 s, not 2.9 s, and a 1k night's
    # 1.1 s, not 1.4 s. The cycles it leaves are one file's, freed when the collector restarts.
    verdicts = gc_paused(validator.validate)(
        validation_frame(unique, run_date, adapted.source_ref_pattern),
        asset_name=counts.file,
        parameters={"source_ref_pattern": adapted.source_ref_pattern},
    )
    # astype(bool): an empty object-typed mask would be read as a column selection.
    failed_mask = unique["line_no"].map(lambda n: bool(verdicts.reasons(int(n)))).astype(bool)
    failed, accepted = unique[failed_mask], unique[~failed_mask]
    well_formed = re.compile(adapted.source_ref_pattern)
    # A last record cut off is unread, but a reference read whole from it finds the complete record resent.
    cut = adapted.cut_refs
    rejects = [
        QuarantinedRow(
            line_no=int(n),
            source_ref=_kept_ref(ref if ref is not None else cut.get(int(n)), well_formed),
            reasons=verdicts.reasons(int(n)),
            raw=raw,
        )
        for n, ref, raw in zip(failed["line_no"], failed["source_ref"], failed["raw"], strict=True)
    ]
    counts.failed_expectations = dict(Counter(name for r in rejects for name in r.reasons))
    counts.stage_seconds["validate"], clock = time.perf_counter() - clock, time.perf_counter()
    now = utcnow()
    with engine.begin() as conn:
        batch_id = insert_batch(conn, counts, run_date=run_date, night_run_id=night_run_id, sha256=sha256)
        counts.quarantined, already = quarantine(
            conn, rejects, batch_id=batch_id, source=adapted.source.value, cipher=cipher, index=index, now=now
        )
        counts.duplicates += already
        staged = stage_rows(accepted, batch_id=batch_id)
        result = load_accepted(conn, staged, batch_id=batch_id, now=now, cipher=cipher, index=index)
        counts.loaded = result.loaded
        counts.duplicates += result.duplicates
        counts.quarantine_resolved = result.quarantine_resolved
        counts.batch_id = batch_id
        counts.check()
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.id == batch_id)
            .values(loaded=counts.loaded, duplicates=counts.duplicates, quarantined=counts.quarantined)
        )
        audit.record(
            conn,
            actor=actor,
            action="collect",
            entity="ingest_batches",
            entity_id=batch_id,
            details={k: v for k, v in counts.as_dict().items() if k not in ("failed_expectations", "stage_seconds")},
        )
    counts.stage_seconds["load"] = time.perf_counter() - clock
    return counts


def _kept_ref(ref: str | None, well_formed: re.Pattern[str]) -> str | None:
    """A quarantined row's reference, kept in the clear only when it is one: a misplaced cell could hold anything."""
    return ref if ref and well_formed.fullmatch(ref) else None


def record_held(
    counts: FileCounts, *, engine: Engine, run_date: date, night_run_id: int | None, sha256: str, actor: str
) -> FileCounts:
    counts.check()
    with engine.begin() as conn:
        counts.batch_id = insert_batch(conn, counts, run_date=run_date, night_run_id=night_run_id, sha256=sha256)
        from iasu.policy import get_policy

        queue_alert(
            conn,
            [
                outbox_row(
                    "ops",
                    # A file with no record is told each night it comes: its key names the night and name.
                    f"ops:held:{batch_key(sha256, counts, run_date)}",
                    get_policy().ops_channel,
                    {
                        "event": "file_held",
                        "batch_id": counts.batch_id,  # what `iasu batch release` takes, once staff have looked
                        "file": counts.file,
                        "rows": counts.held_rows,
                        "reason": counts.held_reason,
                    },
                )
            ],
        )
        audit.record(
            conn,
            actor=actor,
            action="hold",
            entity="ingest_batches",
            entity_id=counts.batch_id,
            details={"file": counts.file, "rows": counts.held_rows, "reason": counts.held_reason},
        )
    return counts


@lru_cache(maxsize=4)
def validator_for(docs_dir: Path) -> NightValidator:
    """One Great Expectations context per night, shared by that night's file tasks."""
    return NightValidator(docs_dir)


@task(name="build-data-docs", cache_policy=NO_CACHE)
def build_data_docs(docs_dir: Path) -> Path | None:
    """Render the night's validation results as Data Docs (this night only); returns the index page."""
    return validator_for(docs_dir).build_docs()


@task(
    name="ingest-file",
    task_run_name=run_name("ingest"),
    cache_policy=NO_CACHE,
)
def ingest_file(path: Path, run_date: date, night_run_id: int, docs_dir: Path, actor: str) -> dict[str, Any]:
    """Adapt, validate, quarantine and load one input file; returns its reconciled counts."""
    counts = ingest_path(
        path,
        run_date=run_date,
        night_run_id=night_run_id,
        actor=actor,
        engine=wiring.engine(),
        cipher=wiring.cipher(),
        index=wiring.blind_index(),
        validator=validator_for(docs_dir),
        gate=get_policy().intake.gate(),
    )
    get_run_logger().info(
        "%s: %s, received %d, loaded %d, duplicates %d, quarantined %d, held %d",
        counts.file,
        counts.status,
        counts.received,
        counts.loaded,
        counts.duplicates,
        counts.quarantined,
        counts.held_rows,
    )
    return counts.as_dict()
