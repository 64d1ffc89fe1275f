"""Set-based, idempotent loading of one file's accepted rows, and quarantine of the rest.

Accepted referrals are staged in a temporary table (COPY on PostgreSQL, one
executemany on SQLite) and moved with INSERT ... SELECT ... ON CONFLICT DO
NOTHING on the natural key (source, source_ref), so a row already stored is a
duplicate however often it arrives. The people of the referrals that were new
then go straight into their table the same way. Personal fields are encrypted
and blind indexed before they reach the database.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from iasu.privacy import BlindIndex, FieldCipher
from models import IngestBatch, Person, QuarantineEntry, QuarantineStatus, Referral
from models.referrals import PERSON_FIELDS
from models.types import UTCDateTime
from rules.codes import SDASH_COLUMNS, PersonRole
from rules.linkage import name_dob_keys, pnc_key
from tasks.bulk import copy_insert, copy_rows, one_of

REFERRALS = Referral.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
QUARANTINE = QuarantineEntry.__table__  # type: ignore[attr-defined]
BATCHES = IngestBatch.__table__  # type: ignore[attr-defined]

PREFIX = {PersonRole.victim: "victim", PersonRole.perpetrator: "perp"}
REFERRAL_COLUMNS = (
    "source",
    "source_ref",
    "force",
    "received_date",
    "referring_agency",
    "crime_ref",
    "relationship",
    "behaviours",
    "duration_months",
    "incident_date",
    *SDASH_COLUMNS,
    "sdash_yes_count",
    "srp",
    "markers",
    "notes_enc",
    "batch_id",
    "line_no",
)
# Referral columns the canonical frame already holds as they are stored.
AS_RECEIVED = (
    "source",
    "source_ref",
    "force",
    "received_date",
    "referring_agency",
    "crime_ref",
    "relationship",
    "incident_date",
    "srp",
)
JSON_COLUMNS = ("behaviours", "markers")
# How the stage table holds JSON: text that PostgreSQL's COPY parses, and SQLite stores as it is.
JSON_TEXT = Text().with_variant(JSONB(), "postgresql")
PERSON_COLUMNS = (*tuple(col for col, _ in PERSON_FIELDS), "name_dob_index", "pnc_index")


def _stage_table() -> Table:
    """The temporary table one file's accepted referrals pass through (their people go straight in).

    Code lists arrive as JSON text (see _codes_json), which PostgreSQL's COPY parses into JSONB
    and SQLite keeps as the text SQLAlchemy would have written.
    """
    cols = [Column(name, JSON_TEXT if name in JSON_COLUMNS else REFERRALS.c[name].type) for name in REFERRAL_COLUMNS]
    return Table("stage_referrals", MetaData(), *cols, prefixes=["TEMPORARY"])


STAGE = _stage_table()


@dataclass(frozen=True)
class LoadResult:
    """What became of the accepted rows of one file."""

    loaded: int
    duplicates: int
    quarantine_resolved: int


@dataclass(frozen=True)
class StagedPeople:
    """The victims or the perpetrators of one file's rows, column by column (one value per row)."""

    present: list[bool]  # the row gives at least one of this person's fields
    fields: dict[str, list[str | None]]  # people column (forename_enc, ...) -> clear text, dates as ISO
    dobs: list[date | None]  # dates of birth as dates, for the name + date of birth index


@dataclass(frozen=True)
class StagedRows:
    """One file's accepted rows, column by column (one value per row in each list), personal values still clear.

    Columns rather than a dict per row: at 100,000 referrals a night the per-row
    dicts (and pandas building them) cost more than encrypting the fields.
    load_accepted encrypts and indexes the personal values on their way into the database.
    """

    count: int
    referrals: dict[str, list[Any]]  # REFERRAL_COLUMNS, except notes_enc: "notes", clear
    people: dict[PersonRole, StagedPeople]


def _column(accepted: pd.DataFrame, name: str) -> list[Any]:
    """A canonical column's values, or all None for one the frame lacks (victims have no PNC id)."""
    return accepted[name].tolist() if name in accepted.columns else [None] * len(accepted)


def _codes_json(values: Iterable[Sequence[str] | None]) -> list[str]:
    """Code lists as JSON arrays in a stable (sorted) order; each distinct list, of a few hundred, encoded once."""
    memo: dict[tuple[str, ...], str] = {}
    out: list[str] = []
    for value in values:
        key = tuple(value or ())
        encoded = memo.get(key)
        if encoded is None:
            encoded = memo[key] = json.dumps(sorted(key))
        out.append(encoded)
    return out


def _stage_people(accepted: pd.DataFrame, role: PersonRole) -> StagedPeople:
    prefix = PREFIX[role]
    dobs = _column(accepted, f"{prefix}_dob")
    fields: dict[str, list[str | None]] = {}
    for column, suffix in PERSON_FIELDS:
        if suffix == "dob":  # encrypted as ISO text; every other personal field is text already
            fields[column] = [v if v is None or isinstance(v, str) else v.isoformat() for v in dobs]
        else:
            fields[column] = _column(accepted, f"{prefix}_{suffix}")
    present = [values.count(None) < len(fields) for values in zip(*fields.values(), strict=True)]
    return StagedPeople(present=present, fields=fields, dobs=dobs)


def stage_rows(accepted: pd.DataFrame, *, batch_id: int) -> StagedRows:
    """Turn accepted canonical rows into staging columns: codes as stored, personal values still clear."""
    count = len(accepted)
    referrals: dict[str, list[Any]] = {name: accepted[name].tolist() for name in AS_RECEIVED}
    answers = [[value == "yes" for value in accepted[c].tolist()] for c in SDASH_COLUMNS]
    referrals.update(zip(SDASH_COLUMNS, answers, strict=True))
    referrals["sdash_yes_count"] = [sum(row) for row in zip(*answers, strict=True)]
    referrals["behaviours"] = _codes_json(accepted["behaviours"].tolist())
    referrals["markers"] = _codes_json(accepted["markers"].tolist())
    referrals["duration_months"] = [None if v is None else int(v) for v in accepted["duration_months"].tolist()]
    referrals["notes"] = _column(accepted, "notes")
    referrals["batch_id"] = [batch_id] * count
    referrals["line_no"] = [int(v) for v in accepted["line_no"].tolist()]
    people = {role: _stage_people(accepted, role) for role in PREFIX}
    return StagedRows(count=count, referrals=referrals, people=people)


def _insert_rows(conn: Connection, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert rows (values in the order of names): streamed by COPY on PostgreSQL, one executemany on SQLite."""
    if conn.dialect.name != "postgresql":
        values = [dict(zip(names, row, strict=True)) for row in rows]
        if values:
            conn.execute(table.insert(), values)
        return
    # COPY is the physical floor for bulk intake; executemany would be several times slower.
    copy_rows(conn, table, names, rows)


# People sealed per step: big enough to amortise each step, small enough that the database
# always has rows to insert while the next step runs.
PEOPLE_CHUNK = 2000
SEAL_AHEAD = 16  # chunks queued ahead of the one being copied, at most (a 100k night's largest file has 52)

SealedChunk = tuple[list[int], list[tuple[Any, ...]]]  # staged row numbers, their people rows without referral_id


def _seal_chunk(
    role: PersonRole,
    people: StagedPeople,
    chunk: list[int],
    names: dict[str | None, str],
    cipher: FieldCipher,
    index: BlindIndex,
) -> SealedChunk:
    """The people of some staged rows as stored (role, *PERSON_COLUMNS): fields encrypted, blind indexes computed."""
    clear = {column: [values[i] for i in chunk] for column, values in people.fields.items()}
    dobs = [people.dobs[i] for i in chunk]
    name_dob = name_dob_keys(clear["forename_enc"], clear["surname_enc"], dobs, names)
    rows = zip(
        [role.value] * len(chunk),
        *[cipher.encrypt_many("people", column, clear[column]) for column, _ in PERSON_FIELDS],
        index.many("name_dob", name_dob),
        index.many("pnc", map(pnc_key, clear["pnc_enc"])),
        strict=True,
    )
    return chunk, list(rows)


def _seal_people(
    pool: Executor, staged: StagedRows, cipher: FieldCipher, index: BlindIndex
) -> Iterator[Future[SealedChunk]]:
    """Start sealing the staged people, victims then perpetrators, a chunk per task, in order, as asked for."""
    for role, people in staged.people.items():
        present = [i for i, given in enumerate(people.present) if given]
        names: dict[str | None, str] = {}  # normalised forenames and surnames, for this file only
        for start in range(0, len(present), PEOPLE_CHUNK):
            chunk = present[start : start + PEOPLE_CHUNK]
            yield pool.submit(_seal_chunk, role, people, chunk, names, cipher, index)


def _people_rows(
    staged: StagedRows, referral_ids: Mapping[int, int], sealed: Iterable[SealedChunk]
) -> Iterator[tuple[Any, ...]]:
    """Rows for people (referral_id, role, *PERSON_COLUMNS) of the referrals loaded now, in the order sealed."""
    line_nos = staged.referrals["line_no"]
    for chunk, rows in sealed:
        for i, row in zip(chunk, rows, strict=True):
            referral_id = referral_ids.get(line_nos[i])
            if referral_id is not None:  # the people of a duplicate are already stored with it
                yield (referral_id, *row)


def dialect_insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def load_accepted(
    conn: Connection, staged: StagedRows, *, batch_id: int, now: datetime, cipher: FieldCipher, index: BlindIndex
) -> LoadResult:
    """Insert staged rows that are new on (source, source_ref), their people, and resolve matching quarantine.

    Personal values are encrypted and blind indexed here, before they reach the database.
    """
    conn.execute(text("DROP TABLE IF EXISTS stage_referrals"))
    STAGE.create(conn)
    notes = cipher.encrypt_many("referrals", "notes_enc", staged.referrals["notes"])
    columns = [notes if name == "notes_enc" else staged.referrals[name] for name in REFERRAL_COLUMNS]
    _insert_rows(conn, STAGE, REFERRAL_COLUMNS, zip(*columns, strict=True))
    s = STAGE.c
    moved = (
        select(
            *[s[c] for c in REFERRAL_COLUMNS],
            bindparam("now", now, type_=UTCDateTime()),
        )
        .where(true())
        .order_by(s.line_no)
    )
    ins = (
        dialect_insert(conn, REFERRALS)
        .from_select([*REFERRAL_COLUMNS, "created_at"], moved)
        .on_conflict_do_nothing(index_elements=["source", "source_ref"])
        .returning(REFERRALS.c.line_no, REFERRALS.c.id)
    )
    # People are encrypted and indexed on a worker thread from here on, while the database inserts the
    # referrals and then the people (the main thread mostly waits for the database meanwhile), instead
    # of only once the referrals are in. The people of duplicates are sealed too and dropped: few, and
    # sealed while waiting.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seal-people") as pool:
        starting = _seal_people(pool, staged, cipher, index)
        # At most SEAL_AHEAD chunks queued ahead of the copy: the worker still seals while the referrals go
        # in (the 100k night's load times did not move), without holding a whole file's ciphertexts at
        # once on PostgreSQL (SQLite's insert takes its rows as one list anyway).
        sealed = deque(islice(starting, SEAL_AHEAD))

        def in_order() -> Iterator[SealedChunk]:
            # Each chunk is let go once copied, and the next one started in its place.
            while sealed:
                chunk = sealed.popleft().result()
                sealed.extend(islice(starting, 1))
                yield chunk

        try:
            # What RETURNING gives back is what was loaded (rowcount of INSERT ... SELECT is not reliable across
            # drivers); line numbers are unique in a file, so they say which staged rows' people to store.
            referral_ids = {int(line_no): int(referral_id) for line_no, referral_id in conn.execute(ins)}
            people = _people_rows(staged, referral_ids, in_order())
            _insert_rows(conn, PEOPLE, ["referral_id", "role", *PERSON_COLUMNS], people)
        finally:
            for future in sealed:  # on an error, what is not sealed yet need not be
                future.cancel()
    resolved = resolve_quarantine(conn, batch_id=batch_id, now=now)
    conn.execute(text("DROP TABLE IF EXISTS stage_referrals"))
    loaded = len(referral_ids)
    return LoadResult(loaded=loaded, duplicates=staged.count - loaded, quarantine_resolved=resolved)


def resolve_quarantine(conn: Connection, *, batch_id: int, now: datetime) -> int:
    """Close open quarantine entries whose referral has now arrived corrected in this batch."""
    q, r = QUARANTINE.c, REFERRALS.c
    # A referral loaded now resolves older entries; one stored before resolves this batch's bad copies of it.
    match = and_(
        r.source == q.source, r.source_ref == q.source_ref, or_(r.batch_id == batch_id, q.batch_id == batch_id)
    )
    stmt = (
        update(QUARANTINE)
        .where(
            q.status == QuarantineStatus.open,
            q.source_ref.is_not(None),
            exists().where(match),
        )
        .values(
            status=QuarantineStatus.resolved,
            resolved_at=now,
            resolved_by_referral_id=select(r.id).where(match).limit(1).scalar_subquery(),
        )
    )
    return conn.execute(stmt).rowcount or 0


def resolve_quarantined_keys(
    conn: Connection, *, source: str, keys: Iterable[str], before_batch: int | None, now: datetime
) -> int:
    """Close the source's open entries kept under these keys (of batches before `before_batch`, if given):
    what they were for has arrived."""
    q = QUARANTINE.c
    wanted = sorted(set(keys))
    if not wanted:
        return 0
    earlier = [] if before_batch is None else [q.batch_id < before_batch]
    stmt = (
        update(QUARANTINE)
        .where(q.status == QuarantineStatus.open, q.source == source, *earlier, one_of(conn, q.source_ref, wanted))
        .values(status=QuarantineStatus.resolved, resolved_at=now)
    )
    return conn.execute(stmt).rowcount or 0


@dataclass(frozen=True)
class QuarantinedRow:
    """A failed row: where it was, why, and its raw text (encrypted before storing)."""

    line_no: int
    source_ref: str | None
    reasons: list[str]
    raw: str


def quarantine(
    conn: Connection,
    rows: Iterable[QuarantinedRow],
    *,
    batch_id: int,
    source: str,
    cipher: FieldCipher,
    index: BlindIndex,
    now: datetime,
) -> tuple[int, int]:
    """Store failed rows with their reasons (raw content encrypted); returns (quarantined, already there).

    A row identical to one waiting in quarantine (a resent file) is a duplicate,
    found by a keyed hash of its text, not a second entry; so is one identical to an
    entry of the same night already settled (by a corrected row or by hand), which a
    rerun of that night must not reopen. Another night's identical row is new: a
    contacts-feed row that fails the same way each week reads the same each time.
    """
    values = [
        {
            "batch_id": batch_id,
            "line_no": row.line_no,
            "source": source,
            "source_ref": row.source_ref,
            "failed_expectations": row.reasons,
            "raw_enc": cipher.encrypt("quarantine_entries", "raw_enc", row.raw),
            "raw_index": index("quarantine_raw", f"{source}\x00{row.raw}"),
            "status": QuarantineStatus.open,
            "created_at": now,
        }
        for row in rows
    ]
    if not values:
        return 0, 0
    q, b = QUARANTINE.c, BATCHES.c
    this_night = select(b.run_date).where(b.id == batch_id).scalar_subquery()
    settled_tonight = q.batch_id.in_(select(b.id).where(b.run_date == this_night))
    known = set(
        conn.execute(
            select(q.raw_index).where(
                q.source == source,
                one_of(conn, q.raw_index, [v["raw_index"] for v in values]),
                or_(q.status == QuarantineStatus.open, settled_tonight),
            )
        ).scalars()
    )
    fresh, seen = [], set(known)
    for v in values:
        if v["raw_index"] not in seen:
            fresh.append(v)
            seen.add(v["raw_index"])
    copy_insert(conn, QUARANTINE, fresh)  # one COPY: an INSERT of many rows runs once per row on the server
    return len(fresh), len(values) - len(fresh)
