"""Released revisions stay as they were released: Alembic never runs one again where it has run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import migrations

# Each revision file as released. A database records the revisions it has run and is never given them again, so
# what an edit adds to a released revision reaches only new databases (0003, 0008 and 0011 were edited that way,
# and 0014 had to repair the databases they had migrated). Only ever append to this list: a change to the schema
# is a new revision. 0009 was last changed, in the same release as 0014, only to pass over a column missing where
# the first 0003 ran; nothing else it does changed.
RELEASED = {
    "0001_initial_schema.py": "2c3f78493b2d9505789e3b857001801366184375340459e5b67e217c3ed049b7",
    "0002_cases_routing.py": "2073600cb0e2d22ace1bf38e177bab0dbbad94bd1b2604d0d96390ece37254fe",
    "0003_contact_schedules.py": "2a01add7a1026432207936011becb8dfb5b1669c9b018a0ba5187f780b6448ec",
    "0004_alert_delivery.py": "eb8bca5c9030a65e741a2980ef4dfd79e30bda3144cde82a3381d126b1b7e07c",
    "0005_drop_redundant_people_index.py": "97fc93b9e3fedf360eaaa8c02d70110b327e3cd99f6e6a7e2eff6163b190ce57",
    "0006_drop_unused_alert_indexes.py": "5a61af3d358b2ab8f21729eaeac5431bcf412a340b15a642732530c8b3c74a08",
    "0007_indexes_for_the_reads.py": "3b31c93bc64215fd0f807dacd52f524b0194d1e46532938d5aed5ed7b8fbd4e9",
    "0008_alerts_outbox_keys_and_time_index.py": "b7eef9ad2ba71b74e324d6ec187852e7401e8e85d103960a1503e3eca0089769",
    "0009_byte_ordered_identifiers.py": "2ce797d7c952951d06bb156f87c5e72c4b411783e2d6e6557751942225427670",
    "0010_people_pnc_index_partial.py": "0d7d7d692da98439aabfb3667e56564c7e54cbae0c7546567a64b7cedee6c5ea",
    "0011_one_running_night.py": "09a28e3a8df48288c9c7b91c3d07bd27cce23d5fe9d46b30ef23ff888c434f54",
    "0012_key_checks.py": "dc825dfe42cc635a2508da81e14d9b9467f54f629d1dfe84143ad92d06e43b89",
    "0013_night_pulse.py": "e01c470732e6ac56dd9d3dfe987d9b503a2f35ba20149e19303ab2c463256bdc",
    "0014_repair_edited_revisions.py": "86bd94c9db420fd6a25496a64fe6c3f445ba2e96c17cf3acd17ce30a1fdad4f6",
}


def sha256(path: Path) -> str:
    """The file's digest, line endings aside (a checkout on Windows may turn them into CRLF)."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def test_no_released_revision_is_edited_and_each_new_one_is_listed() -> None:
    versions = Path(migrations.__file__).parent / "versions"
    found = {path.name: sha256(path) for path in sorted(versions.glob("*.py"))}
    edited = sorted(name for name, digest in RELEASED.items() if found.get(name) != digest)
    assert edited == [], "released revisions changed or removed: write a new revision instead"
    unlisted = {name: digest for name, digest in found.items() if name not in RELEASED}
    assert unlisted == {}, "new revisions: append each to RELEASED as it is released"
