"""Set-based, idempotent loading of one file's accepted rows, and quarantine of the rest.

Accepted rows are staged in a temporary table (COPY on PostgreSQL, one
executemany on SQLite) and moved with INSERT ... SELECT ... ON CONFLICT DO
NOTHING on the natural key (source, source_ref), so a row already stored is a
duplicate however often it arrives. Personal fields are encrypted and blind
indexed before they reach the database.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    exists,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from iasu.privacy import BlindIndex, FieldCipher
from models import Person, QuarantineEntry, QuarantineStatus, Referral
from models.referrals import PERSON_FIELDS
from models.types import UTCDateTime
from rules.codes import SDASH_COLUMNS, PersonRole
from rules.linkage import name_dob_key, pnc_key

REFERRALS = Referral.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
QUARANTINE = QuarantineEntry.__table__  # type: ignore[attr-defined]

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
PERSON_COLUMNS = (*tuple(col for col, _ in PERSON_FIELDS), "name_dob_index", "pnc_index")


def _stage_table() -> Table:
    """The temporary table one file's accepted rows pass through."""
    cols: list[Column[Any]] = []
    for name in REFERRAL_COLUMNS:
        cols.append(Column(name, REFERRALS.c[name].type))
    for prefix in PREFIX.values():
        cols.append(Column(f"{prefix}_present", Boolean))
        for name in PERSON_COLUMNS:
            cols.append(Column(f"{prefix}_{name}", PEOPLE.c[name].type))
    return Table("stage_referrals", MetaData(), *cols, prefixes=["TEMPORARY"])


STAGE = _stage_table()


@dataclass(frozen=True)
class LoadResult:
    """What became of the accepted rows of one file."""

    loaded: int
    duplicates: int
    quarantine_resolved: int


def _person_values(
    row: Mapping[Hashable, Any], role: PersonRole, cipher: FieldCipher, index: BlindIndex
) -> dict[str, Any]:
    prefix = PREFIX[role]
    out: dict[str, Any] = {}
    present = False
    for column, suffix in PERSON_FIELDS:
        value = row.get(f"{prefix}_{suffix}")
        if value is not None and not isinstance(value, str):
            value = value.isoformat()  # dates of birth
        present = present or value is not None
        out[f"{prefix}_{column}"] = cipher.encrypt("people", column, value)
    out[f"{prefix}_name_dob_index"] = index(
        "name_dob",
        name_dob_key(
            row.get(f"{prefix}_forename"),
            row.get(f"{prefix}_surname"),
            row.get(f"{prefix}_dob"),
        ),
    )
    out[f"{prefix}_pnc_index"] = index("pnc", pnc_key(row.get(f"{prefix}_pnc_id")))
    out[f"{prefix}_present"] = present
    return out


def stage_rows(
    accepted: pd.DataFrame, *, batch_id: int, cipher: FieldCipher, index: BlindIndex
) -> list[dict[str, Any]]:
    """Turn accepted canonical rows into staging rows: codes in the clear, personal fields encrypted."""
    staged: list[dict[str, Any]] = []
    for row in accepted.to_dict(orient="records"):
        answers = [row[c] == "yes" for c in SDASH_COLUMNS]
        values: dict[str, Any] = {name: row.get(name) for name in REFERRAL_COLUMNS if name in row}
        values.update(dict(zip(SDASH_COLUMNS, answers, strict=True)))
        values["sdash_yes_count"] = sum(answers)
        values["behaviours"] = sorted(row["behaviours"] or ())
        values["markers"] = sorted(row["markers"] or ())
        values["duration_months"] = None if row["duration_months"] is None else int(row["duration_months"])
        values["notes_enc"] = cipher.encrypt("referrals", "notes_enc", row.get("notes"))
        values["batch_id"] = batch_id
        values["line_no"] = int(row["line_no"])
        values.update(_person_values(row, PersonRole.victim, cipher, index))
        values.update(_person_values(row, PersonRole.perpetrator, cipher, index))
        staged.append(values)
    return staged


def _fill_stage(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(text("DROP TABLE IF EXISTS stage_referrals"))
    STAGE.create(conn)
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # COPY is the physical floor for bulk intake; executemany would be several times slower.
        names = [c.name for c in STAGE.columns]
        json_cols = {"behaviours", "markers"}
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cur, cur.copy(f"COPY stage_referrals ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[n]) if n in json_cols else row[n] for n in names])
    else:
        conn.execute(STAGE.insert(), list(rows))


def dialect_insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def load_accepted(conn: Connection, rows: Sequence[dict[str, Any]], *, batch_id: int, now: datetime) -> LoadResult:
    """Insert staged rows that are new on (source, source_ref), their people, and resolve matching quarantine."""
    _fill_stage(conn, rows)
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
        .returning(REFERRALS.c.id)
    )
    # Count what RETURNING gives back: rowcount of INSERT ... SELECT is not reliable across drivers.
    loaded = len(conn.execute(ins).all())
    r = REFERRALS.c
    for role, prefix in PREFIX.items():
        people = (
            select(
                r.id,
                literal(role.value, String()),
                *[s[f"{prefix}_{c}"] for c in PERSON_COLUMNS],
            )
            .select_from(STAGE.join(REFERRALS, and_(r.source == s.source, r.source_ref == s.source_ref)))
            .where(r.batch_id == batch_id, s[f"{prefix}_present"])
        )
        conn.execute(PEOPLE.insert().from_select(["referral_id", "role", *PERSON_COLUMNS], people))
    resolved = resolve_quarantine(conn, batch_id=batch_id, now=now)
    conn.execute(text("DROP TABLE IF EXISTS stage_referrals"))
    return LoadResult(loaded=loaded, duplicates=len(rows) - loaded, quarantine_resolved=resolved)


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
    """Store failed rows with their reasons (raw content encrypted); returns (quarantined, already open).

    A row identical to one already waiting in quarantine (a resent file) is a
    duplicate, found by a keyed hash of its text, not a second entry.
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
    q = QUARANTINE.c
    known = set(
        conn.execute(
            select(q.raw_index).where(
                q.status == QuarantineStatus.open, q.source == source, q.raw_index.in_([v["raw_index"] for v in values])
            )
        ).scalars()
    )
    fresh, seen = [], set(known)
    for v in values:
        if v["raw_index"] not in seen:
            fresh.append(v)
            seen.add(v["raw_index"])
    if fresh:
        conn.execute(QUARANTINE.insert(), fresh)
    return len(fresh), len(values) - len(fresh)
