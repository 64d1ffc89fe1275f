"""Recomputing people's blind indexes (name + date of birth, PNC id) after the rules that normalise them change.

Indexes are keyed hashes of normalised text, so a stored one cannot be converted: each person's name, date
of birth and PNC id are decrypted, normalised by the current rules and hashed again, a batch at a time, and
only the rows whose indexes differ are written back, one UPDATE per batch. Counts leave this module, never a
value.
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
from rules.linkage import name_dob_keys, pnc_key
from tasks import audit
from tasks.bulk import update_rows
from tasks.locks import casework_lock

PEOPLE = Person.__table__  # type: ignore[attr-defined]
# People read, decrypted and written back per step: one read and one write a step, and a bounded
# amount of clear text in memory at any time.
BATCH = 10_000


@dataclass(frozen=True)
class ReindexResult:
    """How many people were read, and how many of each index changed."""

    read: int
    name_dob_changed: int
    pnc_changed: int

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "name_dob_changed": self.name_dob_changed, "pnc_changed": self.pnc_changed}


def reindex_people(
    conn: Connection, *, by: str, cipher: FieldCipher, index: BlindIndex, batch: int = BATCH
) -> ReindexResult:
    """Recompute every person's blind indexes by the current rules, write those that changed, and audit it."""
    casework_lock(conn, "linkage reindex")
    p = PEOPLE.c
    read = name_dob_changed = pnc_changed = 0
    after = 0
    parts: dict[str | None, str] = {}  # normalised name parts: personal, so kept for this run only
    while True:
        # By primary key from where the last batch ended: each batch an index range scan, however far in.
        rows = conn.execute(
            select(p.id, p.forename_enc, p.surname_enc, p.dob_enc, p.pnc_enc, p.name_dob_index, p.pnc_index)
            .where(p.id > after)
            .order_by(p.id)
            .limit(batch)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        read += len(rows)
        forenames, surnames, dobs, pncs = _clear(rows, cipher)
        name_dob = index.many("name_dob", name_dob_keys(forenames, surnames, dobs, parts))
        pnc = index.many("pnc", map(pnc_key, pncs))
        name_dob_changed += sum(new != row.name_dob_index for row, new in zip(rows, name_dob, strict=True))
        pnc_changed += sum(new != row.pnc_index for row, new in zip(rows, pnc, strict=True))
        moved = [
            {"id": row.id, "name_dob_index": new_name_dob, "pnc_index": new_pnc}
            for row, new_name_dob, new_pnc in zip(rows, name_dob, pnc, strict=True)
            if (new_name_dob, new_pnc) != (row.name_dob_index, row.pnc_index)
        ]
        update_rows(conn, PEOPLE, "id", moved)
    result = ReindexResult(read=read, name_dob_changed=name_dob_changed, pnc_changed=pnc_changed)
    audit.record(
        conn,
        actor=by,
        action="reindex",
        entity="people",
        entity_id=None,
        details=result.as_dict(),
    )
    return result


def _clear(
    rows: Sequence[Any], cipher: FieldCipher
) -> tuple[list[str | None], list[str | None], list[date | None], list[str | None]]:
    """The forenames, surnames, dates of birth and PNC ids of a batch of people, decrypted."""
    try:
        forenames = [cipher.decrypt("people", "forename_enc", row.forename_enc) for row in rows]
        surnames = [cipher.decrypt("people", "surname_enc", row.surname_enc) for row in rows]
        dobs = [_dob(row.id, cipher.decrypt("people", "dob_enc", row.dob_enc)) for row in rows]
        pncs = [cipher.decrypt("people", "pnc_enc", row.pnc_enc) for row in rows]
    except InvalidTag:
        # A wrong key fails every value alike: one line the operator can act on, not a traceback.
        raise OperatorError(
            "people's fields do not decrypt with IASU_ENCRYPTION_KEY: is it the key they were written with?"
        ) from None
    return forenames, surnames, dobs, pncs


def _dob(person_id: int, text: str | None) -> date | None:
    """A stored date of birth (ISO text, as load writes it) as a date."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        # Raised afresh: the parser's own message quotes the value, and a date of birth is personal.
        raise ValueError(f"people row {person_id}: stored date of birth is not an ISO date") from None
