"""Recomputing people's name + date-of-birth blind index after the rule that normalises names changes.

Indexes are keyed hashes of normalised text, so a stored one cannot be converted: each person's name and
date of birth are decrypted, normalised by the current rule and hashed again, a batch at a time, and only
the indexes that differ are written back, one UPDATE per batch. Counts leave this module, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, select

from iasu.errors import OperatorError
from iasu.privacy import BlindIndex, FieldCipher
from models import Person
from rules.linkage import name_dob_keys
from tasks import audit
from tasks.bulk import update_rows

PEOPLE = Person.__table__  # type: ignore[attr-defined]
# People read, decrypted and written back per step: one read and one write a step, and a bounded
# amount of clear text in memory at any time.
BATCH = 10_000


@dataclass(frozen=True)
class ReindexResult:
    """How many people were read, and how many of their indexes changed."""

    read: int
    changed: int

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "changed": self.changed}


def reindex_name_dob(
    conn: Connection, *, by: str, cipher: FieldCipher, index: BlindIndex, batch: int = BATCH
) -> ReindexResult:
    """Recompute every person's name_dob_index by the current rule, write those that changed, and audit it."""
    p = PEOPLE.c
    read = changed = 0
    after = 0
    parts: dict[str | None, str] = {}  # normalised name parts: personal, so kept for this run only
    while True:
        # By primary key from where the last batch ended: each batch an index range scan, however far in.
        rows = conn.execute(
            select(p.id, p.forename_enc, p.surname_enc, p.dob_enc, p.name_dob_index)
            .where(p.id > after)
            .order_by(p.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        read += len(rows)
        fresh = index.many("name_dob", name_dob_keys(*_clear(rows, cipher), parts))
        moved = [
            {"id": row.id, "name_dob_index": new}
            for row, new in zip(rows, fresh, strict=True)
            if new != row.name_dob_index
        ]
        changed += len(moved)
        update_rows(conn, PEOPLE, "id", moved)
    result = ReindexResult(read=read, changed=changed)
    audit.record(
        conn,
        actor=by,
        action="reindex",
        entity="people",
        entity_id=None,
        details={"index": "name_dob", **result.as_dict()},
    )
    return result


def _clear(rows: Sequence[Any], cipher: FieldCipher) -> tuple[list[str | None], list[str | None], list[date | None]]:
    """The forenames, surnames and dates of birth of a batch of people, decrypted."""
    try:
        forenames = [cipher.decrypt("people", "forename_enc", row.forename_enc) for row in rows]
        surnames = [cipher.decrypt("people", "surname_enc", row.surname_enc) for row in rows]
        dobs = [_dob(row.id, cipher.decrypt("people", "dob_enc", row.dob_enc)) for row in rows]
    except InvalidTag:
        # A wrong key fails every value alike: one line the operator can act on, not a traceback.
        raise OperatorError(
            "people's fields do not decrypt with IASU_ENCRYPTION_KEY: is it the key they were written with?"
        ) from None
    return forenames, surnames, dobs


def _dob(person_id: int, text: str | None) -> date | None:
    """A stored date of birth (ISO text, as load writes it) as a date."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        # Raised afresh: the parser's own message quotes the value, and a date of birth is personal.
        raise ValueError(f"people row {person_id}: stored date of birth is not an ISO date") from None
