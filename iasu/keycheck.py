"""Both keys checked against the database before they write to it.

A night run with another encryption key writes personal fields that no one can read with the right one;
with another blind-index key it links none of its perpetrators to earlier ones. Neither fails on its own:
the database keeps what each key makes of a fixed, public text, and a key that makes something else is
refused in one line before anything is written.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from iasu.errors import OperatorError
from iasu.privacy import BlindIndex, FieldCipher
from models import KeyCheck, Person, Staff
from models.types import utcnow

KEY_CHECKS = KeyCheck.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]
FIXED_TEXT = "iasu key check"  # public: the check proves which key, and reveals nothing
ENCRYPTION, BLIND_INDEX = "encryption", "blind_index"
WRONG = {
    ENCRYPTION: "IASU_ENCRYPTION_KEY is not the key this database's personal fields were written with",
    BLIND_INDEX: "IASU_BLIND_INDEX_KEY is not the key this database's linkage indexes were made with",
}


def verify_keys(conn: Connection, *, cipher: FieldCipher | None = None, index: BlindIndex | None = None) -> None:
    """Refuse a key other than the one the database's data was written with; record a key on its first use."""
    known = {str(name): bytes(value) for name, value in conn.execute(select(KEY_CHECKS.c.name, KEY_CHECKS.c.value))}
    if cipher is not None:
        if ENCRYPTION in known:
            _check(_opens(cipher, "key_checks", "value", known[ENCRYPTION]), ENCRYPTION)
        else:
            # First use on a database written before this check: the key must open what is stored already.
            stored = _any_ciphertext(conn)
            _check(stored is None or _opens(cipher, *stored), ENCRYPTION)
            kept = _record(conn, ENCRYPTION, cipher.encrypt("key_checks", "value", FIXED_TEXT))
            _check(_opens(cipher, "key_checks", "value", kept), ENCRYPTION)
    if index is not None:
        made = _hashed(index)
        if BLIND_INDEX in known:
            _check(known[BLIND_INDEX] == made, BLIND_INDEX)
        else:
            # Nothing stored tells an index key apart (the linkage rules that made the indexes may have
            # changed since): the key in use when the check arrives is the one kept.
            _check(_record(conn, BLIND_INDEX, made) == made, BLIND_INDEX)


def _hashed(index: BlindIndex) -> bytes:
    return (index("key_check", FIXED_TEXT) or "").encode()


def _opens(cipher: FieldCipher, table: str, column: str, blob: bytes) -> bool:
    try:
        cipher.decrypt(table, column, blob)
    except (InvalidTag, ValueError):
        return False
    return True


def _any_ciphertext(conn: Connection) -> tuple[str, str, bytes] | None:
    """One stored personal field, to try a key on: a person's surname, or else a member of staff's name."""
    surname = conn.execute(select(PEOPLE.c.surname_enc).where(PEOPLE.c.surname_enc.is_not(None)).limit(1)).scalar()
    if surname is not None:
        return "people", "surname_enc", bytes(surname)
    name = conn.execute(select(STAFF.c.name_enc).where(STAFF.c.name_enc.is_not(None)).limit(1)).scalar()
    return ("staff", "name_enc", bytes(name)) if name is not None else None


def _check(ok: bool, name: str) -> None:
    if not ok:
        raise OperatorError(f"{WRONG[name]}: nothing was done")


def _record(conn: Connection, name: str, value: bytes | None) -> bytes:
    """Keep a key's check unless one is kept already (two commands at once on a new database); the one kept."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(KEY_CHECKS)
    conn.execute(
        insert.values(name=name, value=value, created_at=utcnow()).on_conflict_do_nothing(index_elements=["name"])
    )
    return bytes(conn.execute(select(KEY_CHECKS.c.value).where(KEY_CHECKS.c.name == name)).scalar_one())
