"""Intake of generated files on SQLite and real PostgreSQL: reconciliation, idempotency, quarantine, privacy."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from expectations.runner import NightValidator
from iasu import wiring
from iasu.policy import get_policy
from models import Alert, IngestBatch, Person, QuarantineEntry, Referral
from models.referrals import PERSON_FIELDS
from rules.linkage import name_dob_key, pnc_key
from tasks.adapters import adapt, shown_name
from tasks.ingest import FileCounts, ingest_path
from tasks.night import input_files
from tasks.route import route
from tests.conftest import KeptStates
from tests.support import counts, dump_database, leaks, personal_needles, write_days

DAY = date(2026, 11, 16)


def run_files(paths: list[Path], tmp_path: Path, run_date: date = DAY, data_docs: bool = False) -> list[FileCounts]:
    """Take in the files as a night's intake does; its Data Docs (a second or so) only when asked."""
    validator = NightValidator(tmp_path / "docs" / run_date.isoformat())
    results = [
        ingest_path(
            p,
            run_date=run_date,
            night_run_id=None,  # type: ignore[arg-type]  # batches may exist outside a recorded night
            actor="test",
            engine=wiring.engine(),
            cipher=wiring.cipher(),
            index=wiring.blind_index(),
            validator=validator,
        )
        for p in paths
    ]
    if data_docs:
        validator.build_docs()
    return results


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    write_days(folder, DAY, per_day=90, dirty=0.15)
    return folder


def test_every_row_is_accounted_for_and_a_rerun_adds_nothing(configured: str, inbox: Path, tmp_path: Path) -> None:
    first = run_files(input_files(inbox, DAY), tmp_path)
    received = sum(f.received for f in first)
    assert received > 0
    for f in first:
        assert f.received == f.loaded + f.duplicates + f.quarantined + f.held_rows
    assert sum(f.quarantined for f in first) > 0, "a dirty day quarantines something"
    after_first = counts(configured)
    assert after_first["referrals"] == sum(f.loaded for f in first)
    assert after_first["quarantine_open"] == sum(f.quarantined for f in first)

    second = run_files(input_files(inbox, DAY), tmp_path)
    assert sum(f.loaded for f in second) == 0
    assert sum(f.duplicates for f in second) == received - sum(f.quarantined + f.held_rows for f in second)
    assert {f.status for f in second} == {"repeat"}
    assert counts(configured) == after_first


def test_rows_already_stored_are_duplicates_even_in_a_new_file(configured: str, inbox: Path, tmp_path: Path) -> None:
    paths = input_files(inbox, DAY)
    first = run_files(paths, tmp_path)
    resent = tmp_path / "resend" / DAY.isoformat()
    resent.mkdir(parents=True)
    for p in paths:  # the same rows with one extra blank line: new bytes, same referrals
        (resent / p.name).write_bytes(p.read_bytes() + (b"\r\n" if p.suffix == ".csv" else b"\n"))
    again = run_files(input_files(tmp_path / "resend", DAY), tmp_path)
    assert sum(f.loaded for f in again) == 0
    assert all(f.status == "loaded" for f in again)
    assert [f.received for f in again] == [f.received for f in first]
    # A bad row sent again while its entry is still open is that entry's duplicate, not a second entry.
    assert sum(f.quarantined for f in again) == 0 < sum(f.quarantined for f in first)
    assert sum(f.duplicates for f in again) == sum(f.received for f in first)
    assert counts(configured)["quarantine_open"] == sum(f.quarantined for f in first)


def test_people_are_stored_encrypted_and_indexed_as_one_at_a_time_and_never_twice(
    configured: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=3)
    paths = input_files(inbox, DAY)
    loaded = sum(f.loaded for f in run_files(paths, tmp_path))
    # (source, source_ref, role) -> the clear fields and indexes each row gives, one value at a time
    expected: dict[tuple[str, str, str], tuple[list[str | None], str | None, str | None]] = {}
    for path in paths:
        for row in adapt(path).frame.to_dict(orient="records"):
            for role, prefix in (("victim", "victim"), ("perpetrator", "perp")):
                clear = [row.get(f"{prefix}_{suffix}") for _, suffix in PERSON_FIELDS]
                if any(v is not None for v in clear):
                    name_dob = name_dob_key(row[f"{prefix}_forename"], row[f"{prefix}_surname"], row[f"{prefix}_dob"])
                    expected[(row["source"], row["source_ref"], role)] = (
                        [v.isoformat() if isinstance(v, date) else v for v in clear],
                        wiring.blind_index()("name_dob", name_dob),
                        wiring.blind_index()("pnc", pnc_key(row.get(f"{prefix}_pnc_id"))),
                    )
    people, referrals = Person.__table__, Referral.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        stored = (
            conn.execute(select(people, referrals.c.source, referrals.c.source_ref).join(referrals)).mappings().all()
        )
    cipher = wiring.cipher()
    found = {
        (p["source"], p["source_ref"], p["role"]): (
            [cipher.decrypt("people", column, p[column]) for column, _ in PERSON_FIELDS],
            p["name_dob_index"],
            p["pnc_index"],
        )
        for p in stored
    }
    assert len(found) == len(stored) > loaded
    assert found == expected
    nonces = [p[column][1:13] for p in stored for column, _ in PERSON_FIELDS if p[column] is not None]
    assert len(set(nonces)) == len(nonces)

    resent = tmp_path / "resend" / DAY.isoformat()
    resent.mkdir(parents=True)
    for p in paths:  # new bytes, the same referrals: duplicates, whose people are not stored again
        (resent / p.name).write_bytes(p.read_bytes() + (b"\r\n" if p.suffix == ".csv" else b"\n"))
    run_files(input_files(tmp_path / "resend", DAY), tmp_path)
    assert counts(configured)["people"] == len(stored)


def _clear_people(paths: list[Path]) -> dict[tuple[str, str, str], list[str | None]]:
    """(source, source_ref, role) -> the clear fields each file gives for that person."""
    expected: dict[tuple[str, str, str], list[str | None]] = {}
    for path in paths:
        for row in adapt(path).frame.to_dict(orient="records"):
            for role, prefix in (("victim", "victim"), ("perpetrator", "perp")):
                clear = [row.get(f"{prefix}_{suffix}") for _, suffix in PERSON_FIELDS]
                if any(v is not None for v in clear):
                    key = (row["source"], row["source_ref"], role)
                    expected[key] = [v.isoformat() if isinstance(v, date) else v for v in clear]
    return expected


def _stored_people(url: str) -> list[tuple[tuple[str, str, str], list[str | None]]]:
    people, referrals = Person.__table__, Referral.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        stored = (
            conn.execute(select(people, referrals.c.source, referrals.c.source_ref).join(referrals)).mappings().all()
        )
    cipher = wiring.cipher()
    return [
        (
            (p["source"], p["source_ref"], p["role"]),
            [cipher.decrypt("people", column, p[column]) for column, _ in PERSON_FIELDS],
        )
        for p in stored
    ]


def test_a_referral_with_no_suspect_given_stores_its_victim_alone(configured: str, tmp_path: Path) -> None:
    """A suspect not yet known is no person: an empty perpetrator stored would be one more record to link and keep."""
    from tasks.adapters.police_rms import COLUMNS

    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    police = next(p for p in input_files(inbox, DAY) if p.name.startswith("police_rms"))
    bom, body = police.read_bytes()[:3], police.read_bytes()[3:].decode("cp1252")
    header, record = list(csv.reader(io.StringIO(body)))[:2]
    suspect = {name for name, column in COLUMNS if column.startswith("perp_")}
    record = ["" if name in suspect else value for name, value in zip(header, record, strict=True)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, record])
    unknown = tmp_path / "unknown" / DAY.isoformat()
    unknown.mkdir(parents=True)
    (unknown / police.name).write_bytes(bom + out.getvalue().encode("cp1252"))
    [result] = run_files([unknown / police.name], tmp_path)
    assert (result.received, result.loaded) == (1, 1)
    with wiring.engine().connect() as conn:
        roles = conn.execute(select(Person.__table__.c.role)).scalars().all()  # type: ignore[attr-defined]
    assert roles == ["victim"]


def test_people_sealed_ahead_in_small_chunks_are_stored_once_for_the_new_referrals_only(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks smaller than a file, and a second file half of whose referrals are stored already:
    # people are sealed for every staged row before the database says which referrals are new.
    monkeypatch.setattr("tasks.load.PEOPLE_CHUNK", 3)
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=5)
    paths = input_files(inbox, DAY)
    first_half = tmp_path / "half" / DAY.isoformat()
    first_half.mkdir(parents=True)
    for p in paths:  # the file up to (not including) the record that starts halfway through it
        starts = adapt(p).frame["line_no"].tolist()
        lines = p.read_bytes().split(b"\n")
        (first_half / p.name).write_bytes(b"\n".join(lines[: starts[len(starts) // 2] - 1]) + b"\n")
    half = run_files(input_files(tmp_path / "half", DAY), tmp_path)
    full = run_files(paths, tmp_path)
    assert sum(f.loaded for f in half) > 0 and sum(f.loaded for f in full) > 0
    assert sum(f.duplicates for f in full) >= sum(f.loaded for f in half)
    stored = _stored_people(configured)
    assert len({key for key, _ in stored}) == len(stored)  # nobody twice
    assert dict(stored) == _clear_people(paths)


def test_a_failure_while_sealing_people_loads_nothing_of_the_file(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> list[str | None]:
        raise RuntimeError("sealing failed")

    monkeypatch.setattr("tasks.load.name_dob_keys", fail)
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=20, dirty=0.0, seed=5)
    before = counts(configured)
    with pytest.raises(RuntimeError, match="sealing failed"):
        run_files(input_files(inbox, DAY)[:1], tmp_path)
    assert counts(configured) == before


def test_a_record_repeated_within_a_file_loads_once_and_its_copy_is_a_duplicate(
    configured: str, tmp_path: Path
) -> None:
    """An export that repeats a record loads it once: the copy is a duplicate, the record itself is never lost."""
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    police = next(p for p in input_files(inbox, DAY) if p.name.startswith("police_rms"))
    header, first, second = police.read_bytes().split(b"\r\n")[:3]
    repeated = tmp_path / "repeated" / DAY.isoformat()
    repeated.mkdir(parents=True)
    (repeated / police.name).write_bytes(b"\r\n".join([header, first, first, second]) + b"\r\n")
    [result] = run_files([repeated / police.name], tmp_path)
    assert (result.received, result.loaded, result.duplicates, result.quarantined) == (3, 2, 1, 0)
    with wiring.engine().connect() as conn:
        line_nos = conn.execute(select(Referral.__table__.c.line_no).order_by(Referral.__table__.c.line_no)).scalars()  # type: ignore[attr-defined]
        assert list(line_nos) == [2, 4]  # the first copy of the repeated record, and the record after it


def test_a_corrected_resend_resolves_its_quarantine_entry(configured: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    police = next(p for p in input_files(inbox, DAY) if p.name.startswith("police_rms"))
    raw = police.read_bytes()
    lines = raw.split(b"\r\n")
    header, first = lines[0], lines[1]
    # Break the first record's force code, keep everything else: the row is quarantined.
    broken = (
        first.replace(b"Cheshire Constabulary", b"Narnia Police")
        .replace(b"Hampshire Constabulary", b"Narnia Police")
        .replace(b"Metropolitan Police Service", b"Narnia Police")
    )
    assert broken != first
    bad = tmp_path / "bad" / DAY.isoformat()
    bad.mkdir(parents=True)
    (bad / police.name).write_bytes(b"\r\n".join([header, broken]) + b"\r\n")
    [result] = run_files([bad / police.name], tmp_path)
    assert (result.quarantined, result.failed_expectations) == (1, {"force_known": 1})
    # Another source's entry under the same reference (the sources' formats keep that from happening
    # today): a police referral is no answer to it.
    quarantine = QuarantineEntry.__table__  # type: ignore[attr-defined]
    with wiring.engine().begin() as conn:
        entry = conn.execute(select(quarantine)).mappings().one()
        other = {**entry, "source": "victim_service", "line_no": entry["line_no"] + 1}
        conn.execute(quarantine.insert().values({k: v for k, v in other.items() if k != "id"}))

    [fixed] = run_files([police], tmp_path)
    assert fixed.quarantine_resolved == 1
    with wiring.engine().connect() as conn:
        still = conn.execute(select(quarantine.c.status).where(quarantine.c.source == "victim_service")).scalar_one()
        assert still == "open"
        entry = conn.execute(select(quarantine).where(quarantine.c.source == "police_rms")).mappings().one()
        referral_id = conn.execute(
            select(Referral.__table__.c.id).where(Referral.__table__.c.source_ref == entry["source_ref"])  # type: ignore[attr-defined]
        ).scalar_one()
    assert entry["status"] == "resolved" and entry["resolved_by_referral_id"] == referral_id


def police_export_and_a_bad_copy_of_its_first_row(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A clean police export of the day, its header line, and its first record with a force no one knows."""
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    police = next(p for p in input_files(inbox, DAY) if p.name.startswith("police_rms"))
    header, first = police.read_bytes().split(b"\r\n")[:2]
    broken = first
    for force in (b"Cheshire Constabulary", b"Hampshire Constabulary", b"Metropolitan Police Service"):
        broken = broken.replace(force, b"Narnia Police")
    assert broken != first
    return police, header, broken


def test_a_bad_row_sent_again_while_its_entry_is_open_is_a_duplicate_not_a_second_entry(
    configured: str, tmp_path: Path
) -> None:
    """Staff see one quarantine entry for a bad row however often the agency resends it before it is fixed."""
    police, header, broken = police_export_and_a_bad_copy_of_its_first_row(tmp_path)
    body = b"\r\n".join([header, broken]) + b"\r\n"
    sent, resent = tmp_path / "sent" / DAY.isoformat(), tmp_path / "resent" / DAY.isoformat()
    for folder, data in ((sent, body), (resent, body + b"\r\n")):  # new bytes, the same bad row
        folder.mkdir(parents=True)
        (folder / police.name).write_bytes(data)
    [before] = run_files([sent / police.name], tmp_path)
    [again] = run_files([resent / police.name], tmp_path)
    assert (before.quarantined, before.duplicates) == (1, 0)
    assert (again.status, again.received, again.quarantined, again.duplicates) == ("loaded", 1, 0, 1)
    assert counts(configured)["quarantine_open"] == 1


def test_a_bad_row_sent_again_after_its_entry_was_settled_is_a_duplicate_not_a_new_entry(
    configured: str, tmp_path: Path
) -> None:
    """Once its corrected referral came, the same bad row resent (with another line changed) reopens nothing."""
    police, header, broken = police_export_and_a_bad_copy_of_its_first_row(tmp_path)
    sent, resent = tmp_path / "sent" / DAY.isoformat(), tmp_path / "resent" / DAY.isoformat()
    for folder, data in ((sent, [header, broken]), (resent, [header, broken, b""])):  # new bytes, same bad row
        folder.mkdir(parents=True)
        (folder / police.name).write_bytes(b"\r\n".join(data) + b"\r\n")
    assert run_files([sent / police.name], tmp_path)[0].quarantined == 1
    assert run_files([police], tmp_path)[0].quarantine_resolved == 1  # the agency's corrected export
    [again] = run_files([resent / police.name], tmp_path)
    assert (again.status, again.quarantined, again.duplicates, again.quarantine_resolved) == ("loaded", 0, 1, 0)
    with wiring.engine().connect() as conn:
        statuses = conn.execute(select(QuarantineEntry.__table__.c.status)).scalars().all()  # type: ignore[attr-defined]
    assert statuses == ["resolved"]


def test_a_bad_copy_of_a_referral_already_stored_is_quarantined_and_resolved_at_once(
    configured: str, tmp_path: Path
) -> None:
    """Staff are not asked to fix a bad copy of a referral the system already holds: its entry closes as it opens."""
    police, header, broken = police_export_and_a_bad_copy_of_its_first_row(tmp_path)
    [stored] = run_files([police], tmp_path)
    bad = tmp_path / "bad" / DAY.isoformat()
    bad.mkdir(parents=True)
    (bad / police.name).write_bytes(b"\r\n".join([header, broken]) + b"\r\n")
    [copy] = run_files([bad / police.name], tmp_path)
    assert stored.loaded > 0
    assert (copy.quarantined, copy.quarantine_resolved) == (1, 1)
    assert counts(configured)["quarantine_open"] == 0


def test_a_cut_off_upload_sent_again_complete_resolves_its_last_records_entry(configured: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    complete = [p for p in input_files(inbox, DAY) if not p.name.startswith("victim_service")]
    cut = tmp_path / "cut" / DAY.isoformat()
    cut.mkdir(parents=True)
    for p in complete:  # an upload stopped 30 bytes short: the last record loses its end and its line ending
        (cut / p.name).write_bytes(p.read_bytes().rstrip(b"\r\n")[:-30])
    first = run_files(sorted(cut.iterdir()), tmp_path)
    assert [f.quarantined for f in first] == [1, 1]
    with wiring.engine().connect() as conn:
        refs = conn.execute(select(QuarantineEntry.__table__.c.source_ref)).scalars().all()  # type: ignore[attr-defined]
    assert len(refs) == 2 and all(refs), "each entry keeps the reference read whole"

    again = run_files(complete, tmp_path)  # the agency sends the complete files
    assert [(f.loaded, f.quarantine_resolved) for f in again] == [(1, 1), (1, 1)]
    assert counts(configured)["quarantine_open"] == 0


def test_an_unreadable_file_is_held_whole_and_the_rest_goes_on(configured: str, inbox: Path, tmp_path: Path) -> None:
    folder = inbox / DAY.isoformat()
    (folder / "police_rms_broken.csv").write_bytes(b"\xef\xbb\xbfURN,Force\r\nabc,\x81\x8d\x90\r\n")
    (folder / "mystery_export.txt").write_text("one\ntwo\nthree\n")
    results = {f.file: f for f in run_files(input_files(inbox, DAY), tmp_path)}
    # Named other than as agreed: recorded by prefix, date and digest (tasks.adapters.shown_name).
    broken, mystery = shown_name("police_rms_broken.csv"), shown_name("mystery_export.txt")
    held = [results[broken], results[mystery]]
    assert all(h.status == "held" and h.loaded == 0 and h.held_rows == h.received for h in held)
    assert results[mystery].held_rows == 3
    assert results[mystery].held_reason == "no adapter for this file name"
    assert sum(f.loaded for f in results.values()) > 0
    with wiring.engine().connect() as conn:
        statuses = dict(conn.execute(select(IngestBatch.__table__.c.file_name, IngestBatch.__table__.c.status)).all())  # type: ignore[attr-defined]
    assert statuses[broken] == "held"


def test_a_held_file_counts_its_records_not_its_blank_lines(configured: str, tmp_path: Path) -> None:
    """The rows ops are told are held are the file's records: blank lines are no referral waiting on anyone."""
    folder = tmp_path / "inbox" / DAY.isoformat()
    folder.mkdir(parents=True)
    (folder / "mystery_export.txt").write_bytes(b"one\n\ntwo\r\n \r\nthree\n\n")
    [held] = run_files(input_files(tmp_path / "inbox", DAY), tmp_path)
    assert (held.status, held.received, held.held_rows) == ("held", 3, 3)


def test_an_inbox_file_that_cannot_be_read_is_held_and_the_night_goes_on(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=11)
    paths = input_files(inbox, DAY)
    locked = paths[0]  # uploaded by the agency's own SFTP account with mode 0600, say
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    results = run_files(paths, tmp_path)
    assert (results[0].status, results[0].held_reason, results[0].received) == (
        "held",
        "cannot be read: Permission denied",
        0,
    )
    assert sum(r.loaded for r in results[1:]) > 0 and all(r.status == "loaded" for r in results[1:])
    # The night reruns before anyone mends the mode: nothing new, and ops were told once.
    [again] = run_files(paths[:1], tmp_path)
    assert (again.status, again.batch_id) == ("repeat", results[0].batch_id)
    assert _held_file_alerts() == [(locked.name, "cannot be read: Permission denied")]
    monkeypatch.undo()  # mended: the file is taken in
    [taken] = run_files(paths[:1], tmp_path)
    assert taken.status == "loaded" and taken.loaded > 0
    batches = IngestBatch.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:  # one batch for the file, taken over: none left held for ever
        kept = conn.execute(select(batches.c.id, batches.c.status).where(batches.c.file_name == locked.name)).all()
    assert [tuple(b) for b in kept] == [(results[0].batch_id, "loaded")]


def held_surge(tmp_path: Path, kept_states: KeptStates) -> tuple[Path, date, list[FileCounts]]:
    """Five nights of 30 referrals a file, then a night of 900 a file: the inbox, that night, its results."""
    inbox = tmp_path / "inbox"
    days = [date(2026, 11, d) for d in range(1, 7)]
    write_days(inbox, days[0], days=5, per_day=30, dirty=0.0, seed=5)

    def history() -> None:
        for d in days[:5]:
            run_files(input_files(inbox, d), tmp_path, run_date=d)

    kept_states.restore("intake-five-quiet-nights", history)
    write_days(inbox, days[5], days=1, per_day=900, dirty=0.0, seed=6)
    return inbox, days[5], run_files(input_files(inbox, days[5]), tmp_path, run_date=days[5])


def test_a_row_count_far_outside_history_holds_the_file(
    configured: str, tmp_path: Path, kept_states: KeptStates
) -> None:
    _, _, results = held_surge(tmp_path, kept_states)
    assert all(r.status == "held" and "far above" in (r.held_reason or "") for r in results)


def test_the_row_count_gate_compares_with_the_sources_most_recent_loaded_files(configured: str) -> None:
    from tasks.ingest import GATE_HISTORY, gate_history, insert_batch

    # Two big files long ago, then a quiet month; the newest file of all was held as a surge; another source
    # is big every night. Only the quiet loaded files of this source say what its usual size is now.
    files = [("police_rms", "loaded", 900 if n < 2 else 30 + n) for n in range(GATE_HISTORY + 2)]
    files += [("police_rms", "held", 5000), ("nhs_trust", "loaded", 800)]
    with wiring.engine().begin() as conn:
        for n, (source, status, received) in enumerate(files):
            counts = FileCounts(file=f"{source}_{n}.csv", source=source, status=status, received=received)
            insert_batch(conn, counts, run_date=DAY + timedelta(days=n), night_run_id=None, sha256=f"{n:064x}")
        history = gate_history(conn, "police_rms")
    assert history == [30 + n for n in range(GATE_HISTORY + 1, 1, -1)]


def test_nights_of_empty_exports_do_not_make_the_next_real_file_a_surge(configured: str, tmp_path: Path) -> None:
    from tasks.adapters import police_rms

    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, days=12, per_day=150, dirty=0.0, seed=3)
    police = sorted(inbox.rglob("police_rms_*.csv"))
    results = []
    for n, path in enumerate(police):
        day = DAY + timedelta(days=n)
        if 5 <= n < 11:  # six nights of a failed export job: the header alone, a quiet source's lower limit below 0
            path.write_text(",".join(police_rms.FEED.headers) + "\r\n", encoding="utf-8")
        results.append(run_files([path], tmp_path, run_date=day)[0])
    assert [r.received for r in results[5:11]] == [0] * 6
    assert results[-1].status == "loaded" and results[-1].received > 20, results[-1].held_reason


def test_a_held_file_released_by_staff_is_taken_in_when_its_night_reruns(
    configured: str, tmp_path: Path, kept_states: KeptStates
) -> None:
    from iasu.errors import OperatorError
    from models import AuditEvent
    from tasks.ingest import release_batch

    inbox, surge_day, held = held_surge(tmp_path, kept_states)  # a real surge, held for its size
    assert {r.status for r in held} == {"held"}
    surge = held[0]
    assert surge.batch_id is not None
    assert run_files([inbox / surge_day.isoformat() / surge.file], tmp_path, run_date=surge_day)[0].status == "repeat"

    with wiring.engine().begin() as conn:
        released = release_batch(conn, surge.batch_id, by="ops-lead", reason="confirmed surge", cipher=wiring.cipher())
        with pytest.raises(OperatorError, match="is released, not held"):
            release_batch(conn, surge.batch_id, by="ops-lead", reason="again", cipher=wiring.cipher())
    assert released["file"] == surge.file and released["run_date"] == surge_day.isoformat()
    [taken] = run_files([inbox / surge_day.isoformat() / surge.file], tmp_path, run_date=surge_day)  # the night reruns
    assert taken.status == "loaded" and taken.batch_id == surge.batch_id  # the same batch: one per file's bytes
    assert taken.received == surge.received == taken.loaded + taken.duplicates + taken.quarantined
    assert taken.loaded > 0
    [again] = run_files([inbox / surge_day.isoformat() / surge.file], tmp_path, run_date=surge_day)
    assert again.status == "repeat" and again.batch_id == surge.batch_id
    with wiring.engine().begin() as conn:
        with pytest.raises(OperatorError, match="is loaded, not held"):
            release_batch(conn, surge.batch_id, by="ops-lead", reason="no", cipher=wiring.cipher())
        with pytest.raises(OperatorError, match="no batch 99999"):
            release_batch(conn, 99999, by="ops-lead", reason="no", cipher=wiring.cipher())
        events = conn.execute(select(AuditEvent.__table__)).mappings().all()  # type: ignore[attr-defined]
    release = [e for e in events if e["action"] == "release"]
    assert [(e["actor"], e["entity_id"]) for e in release] == [("ops-lead", str(surge.batch_id))]
    assert "confirmed surge" not in str(release[0]["details"]) and release[0]["reason_enc"] is not None


def test_a_misnamed_file_is_taken_in_when_it_comes_again_under_its_agreed_name(
    configured: str, inbox: Path, tmp_path: Path
) -> None:
    from iasu.errors import OperatorError
    from tasks.ingest import release_batch

    folder = inbox / DAY.isoformat()
    police = next(p for p in input_files(inbox, DAY) if p.name.startswith("police_rms"))
    records = len(adapt(police).frame)
    misnamed = police.rename(folder / police.name.upper())
    [held] = run_files([misnamed], tmp_path)
    assert held.held_reason == "no adapter for this file name" and held.batch_id is not None
    # Its records are counted as its source reads them (not its physical lines): a rerun after renaming agrees.
    assert held.received == held.held_rows == records
    assert run_files([misnamed], tmp_path)[0].status == "repeat"  # the same bytes under the same wrong name
    with wiring.engine().begin() as conn, pytest.raises(OperatorError, match="content or name"):
        release_batch(conn, held.batch_id, by="ops", reason="no", cipher=wiring.cipher())  # a rerun cannot help
    renamed = misnamed.rename(police)  # the agency sends the same bytes again, named as agreed
    [taken] = run_files([renamed], tmp_path)
    assert taken.status == "loaded" and taken.loaded > 0 and taken.batch_id == held.batch_id
    assert taken.received == taken.loaded + taken.duplicates + taken.quarantined == held.received
    assert run_files([renamed], tmp_path)[0].status == "repeat"


def test_a_contacts_feed_named_with_capitals_is_counted_by_its_records(configured: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    feed = folder / f"Contacts_{DAY.isoformat()}.csv"
    rows = [f"CH-2026-00000{n},victim_followup,2026-11-16T10:00,completed,,CH-UNI-01" for n in (1, 2)]
    feed.write_text("case_ref,kind,happened_at,outcome,new_date,recorded_by\n" + "\n".join(rows) + "\n")
    [held] = run_files([feed], tmp_path)
    # Counted as the contacts feed counts it (as it will be once renamed), not by its lines, header included.
    assert (held.held_reason, held.received, held.held_rows) == ("no adapter for this file name", 2, 2)


def _held_file_alerts() -> list[tuple[str, object]]:
    """(file, reason) of every file_held ops alert, oldest first."""
    alerts = Alert.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        payloads = conn.execute(select(alerts.c.payload).order_by(alerts.c.id)).scalars().all()
    return [(p["file"], p["reason"]) for p in payloads if p.get("event") == "file_held"]


def test_an_empty_export_is_held_for_its_own_source_after_an_empty_file_from_another(
    configured: str, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "nhs_trust_2026-11-16.jsonl").write_bytes(b"")  # the trust's quiet night: taken in, 0 rows
    [nhs] = run_files([one / "nhs_trust_2026-11-16.jsonl"], tmp_path)
    assert (nhs.status, nhs.received) == ("loaded", 0)
    (two / "police_rms_2026-11-17.csv").write_bytes(b"")  # the police export job failed: the same zero bytes
    [police] = run_files([two / "police_rms_2026-11-17.csv"], tmp_path, run_date=date(2026, 11, 17))
    assert (police.status, police.source, police.held_reason) == ("held", None, "no header row")
    assert _held_file_alerts() == [("police_rms_2026-11-17.csv", "no header row")]


def test_each_night_an_export_job_fails_its_empty_file_is_held_and_told_but_a_rerun_is_a_repeat(
    configured: str, tmp_path: Path
) -> None:
    nights = [DAY, date(2026, 11, 17)]
    for night in nights:
        folder = tmp_path / night.isoformat()
        folder.mkdir()
        (folder / f"police_rms_{night.isoformat()}.csv").write_bytes(b"\xef\xbb\xbf")  # a BOM alone each night
    for night in nights:
        [held] = run_files([tmp_path / night.isoformat() / f"police_rms_{night.isoformat()}.csv"], tmp_path, night)
        assert (held.status, held.held_reason) == ("held", "no header row")
        # The night reruns: the same file is a repeat, no second batch and no second alert.
        [again] = run_files([tmp_path / night.isoformat() / held.file], tmp_path, night)
        assert (again.status, again.batch_id, again.received) == ("repeat", held.batch_id, 0)
    with wiring.engine().connect() as conn:
        batches = conn.execute(select(IngestBatch.__table__.c.file_name)).scalars().all()  # type: ignore[attr-defined]
    assert sorted(batches) == ["police_rms_2026-11-16.csv", "police_rms_2026-11-17.csv"]
    assert _held_file_alerts() == [
        ("police_rms_2026-11-16.csv", "no header row"),
        ("police_rms_2026-11-17.csv", "no header row"),
    ]


def kept_under_bare_digest(file: Path, run_date: date, name: str, status: str, reason: str) -> None:
    """A batch of no records for the file's bytes, keyed by their digest alone, as releases before night keys kept."""
    import hashlib

    from models.types import utcnow

    with wiring.engine().begin() as conn:
        conn.execute(
            IngestBatch.__table__.insert().values(  # type: ignore[attr-defined]
                run_date=run_date,
                file_name=name,
                source=None,
                sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
                status=status,
                held_reason=reason,
                **dict.fromkeys(("received", "loaded", "duplicates", "quarantined", "held_rows"), 0),
                created_at=utcnow(),
            )
        )


def test_an_empty_export_held_under_its_bare_digest_on_an_earlier_night_does_not_make_tonights_a_repeat(
    configured: str, tmp_path: Path
) -> None:
    """Each night's failed export is told to ops, even after one kept as releases before night keys kept them."""
    earlier, tonight = DAY, date(2026, 11, 17)
    folder = tmp_path / tonight.isoformat()
    folder.mkdir()
    police = folder / f"police_rms_{tonight.isoformat()}.csv"
    police.write_bytes(b"\xef\xbb\xbf")  # a BOM alone, as the night before
    kept_under_bare_digest(police, earlier, f"police_rms_{earlier.isoformat()}.csv", "held", "no header row")
    [held] = run_files([police], tmp_path, tonight)
    assert (held.status, held.held_reason) == ("held", "no header row")
    assert _held_file_alerts() == [(police.name, "no header row")]


def test_a_no_record_file_released_under_its_bare_digest_is_taken_over_once_and_then_repeats(
    configured: str, tmp_path: Path
) -> None:
    folder = tmp_path / DAY.isoformat()
    folder.mkdir()
    police = folder / f"police_rms_{DAY.isoformat()}.csv"
    write_days(tmp_path / "inbox", DAY, per_day=30, dirty=0.0, seed=3)
    generated = next(p for p in input_files(tmp_path / "inbox", DAY) if p.name.startswith("police_rms"))
    police.write_bytes(generated.read_bytes().split(b"\r\n")[0] + b"\r\n")  # the export job died after the header
    # As a release before no-record files had keys of their own left it: kept under the bytes' digest alone.
    kept_under_bare_digest(police, DAY, police.name, "released", "row count 0 below the lower limit")
    [first] = run_files([police], tmp_path)  # its night reruns once released: taken in
    [second] = run_files([police], tmp_path)  # and again: the same batch, a repeat
    assert first.status == "loaded" and (second.status, second.batch_id) == ("repeat", first.batch_id)
    batches = IngestBatch.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        assert conn.execute(select(batches.c.status)).scalars().all() == ["loaded"]  # one batch, re-keyed


def test_a_header_only_export_far_below_its_usual_size_is_held_though_the_same_header_came_before(
    configured: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    # About 165 police referrals a night: the gate's lower limit (median / 5 - 20 rows) is above 0.
    write_days(inbox, DAY, days=7, per_day=300, dirty=0.0, seed=3)
    nights = [DAY + timedelta(days=i) for i in range(7)]
    police = [next(p for p in input_files(inbox, d) if p.name.startswith("police_rms")) for d in nights]
    header = police[0].read_bytes().split(b"\r\n")[0] + b"\r\n"
    police[0].write_bytes(header)  # a quiet first night, no history yet: taken in with 0 rows
    assert run_files([police[0]], tmp_path, run_date=nights[0])[0].status == "loaded"
    for path, night in zip(police[1:6], nights[1:6], strict=True):  # five ordinary nights
        run_files([path], tmp_path, run_date=night)
    police[6].write_bytes(header)  # the export job died after writing the header
    [held] = run_files([police[6]], tmp_path, run_date=nights[6])
    assert held.status == "held" and (held.held_reason or "").startswith("row count 0"), held
    assert _held_file_alerts()[-1][0] == police[6].name


def test_the_database_holds_no_clear_personal_data(configured: str, inbox: Path, tmp_path: Path) -> None:
    run_files(input_files(inbox, DAY), tmp_path, data_docs=True)
    needles = personal_needles(inbox)
    assert len(needles) > 100
    dump = dump_database(configured)
    assert "referrals" in dump
    assert leaks(dump, needles) == []
    docs = "".join(p.read_text(errors="ignore") for p in (tmp_path / "docs").rglob("*") if p.is_file())
    assert "index.html" in {p.name for p in (tmp_path / "docs").rglob("*")}
    assert leaks(docs, needles) == []


def test_a_rerun_validating_one_changed_file_keeps_the_night_s_other_files_in_its_data_docs(
    configured: str, inbox: Path, tmp_path: Path
) -> None:
    files = input_files(inbox, DAY)
    run_files(files, tmp_path, data_docs=True)
    index = tmp_path / "docs" / DAY.isoformat() / "index.html"
    assert all(f.name in index.read_text() for f in files)
    # A corrected export of one source comes in again; the others are the same bytes and are not validated again.
    police = next(f for f in files if f.name.startswith("police_rms"))
    police.write_bytes(police.read_bytes().rstrip(b"\r\n").rsplit(b"\r\n", 1)[0] + b"\r\n")
    statuses = {c.file: c.status for c in run_files(files, tmp_path, data_docs=True)}  # as a new process would
    assert statuses[police.name] == "loaded" and {s for f, s in statuses.items() if f != police.name} == {"repeat"}
    shown = index.read_text()
    assert all(f.name in shown for f in files), [f.name for f in files if f.name not in shown]
    # The corrected file's second run is told apart by name, though each run had a process of its own.
    assert f"{police.name} (attempt 2)" in shown and f"{police.name} (attempt 3)" not in shown


def _generated(tmp_path: Path, prefix: str) -> Path:
    """One clean generated export of the day, by source prefix."""
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=40, dirty=0.0, seed=13)
    return next(p for p in input_files(inbox, DAY) if p.name.startswith(prefix))


def _quarantined() -> list[tuple[int, list[str]]]:
    """(line, failed expectations) of every quarantine entry, in line order."""
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(QuarantineEntry.__table__)).mappings().all()  # type: ignore[attr-defined]
    return sorted((row["line_no"], sorted(row["failed_expectations"])) for row in rows)


def test_unreadable_json_lines_are_quarantined_and_the_rest_of_the_file_loads(configured: str, tmp_path: Path) -> None:
    nhs = _generated(tmp_path, "nhs_trust")
    good = [line for line in nhs.read_text(encoding="utf-8").split("\n") if line]
    record = json.loads(good[0])
    record["referralId"], record["notes"] = "NHS-REF-99999999", "Secret note \ud800 text"
    deep = "[" * 1000  # too deep for the JSON parser: RecursionError, not ValueError
    surrogate = json.dumps(record)  # a lone surrogate escape: no UTF-8 store or cipher takes it
    nhs.write_text("\n".join([deep, *good, surrogate]) + "\n", encoding="utf-8")

    [result] = run_files([nhs], tmp_path)
    assert result.received == len(good) + 2
    assert result.received == result.loaded + result.duplicates + result.quarantined
    assert (result.loaded, result.quarantined) == (len(good), 2)
    assert result.failed_expectations == {"record_readable": 2}
    assert _quarantined() == [(1, ["record_readable"]), (len(good) + 2, ["record_readable"])]
    docs = "".join(p.read_text(errors="ignore") for p in (tmp_path / "docs").rglob("*") if p.is_file())
    assert "Secret note" not in docs + json.dumps(result.as_dict())
    [again] = run_files([nhs], tmp_path)  # a rerun finishes as well, and changes nothing
    assert again.status == "repeat" and counts(configured)["referrals"] == len(good)


def test_a_json_array_sent_as_the_nhs_feed_is_held_not_quarantined_line_by_line(
    configured: str, tmp_path: Path
) -> None:
    nhs = _generated(tmp_path, "nhs_trust")
    records = [json.loads(line) for line in nhs.read_text(encoding="utf-8").splitlines() if line.strip()]
    # The trust's new export writes one pretty-printed JSON array instead of JSON Lines.
    nhs.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    [result] = run_files([nhs], tmp_path)
    assert (result.status, result.held_reason) == ("held", "no JSON object on any line")
    assert result.received == result.held_rows and (result.loaded, result.quarantined) == (0, 0)
    assert _quarantined() == []


def test_a_victim_service_export_with_a_column_given_twice_is_held_not_read_from_the_empty_copy(
    configured: str, tmp_path: Path
) -> None:
    vs = _generated(tmp_path, "victim_service")
    lines = vs.read_bytes().split(b"\n")
    # The export tool appended a second, empty "Victim Last Name" column.
    vs.write_bytes(b"\n".join([lines[0] + b",Victim Last Name"] + [x + b"," if x else x for x in lines[1:]]))
    [result] = run_files([vs], tmp_path)
    assert (result.status, result.held_reason) == ("held", "duplicated columns: Victim Last Name")
    assert result.received == result.held_rows > 0 and _quarantined() == []


def test_dates_outside_a_sane_range_are_quarantined_and_routing_goes_on(configured: str, tmp_path: Path) -> None:
    police = _generated(tmp_path, "police_rms")
    header, *rows = list(csv.reader(io.StringIO(police.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("cp1252"))))
    bad = dict(zip(header, rows[0], strict=True))
    # Year 1 loaded once made routing's "earliest received minus the window" overflow every night after.
    bad.update(DateReceived="0001-01-02", LastIncidentDate="", VictimDOB="0001-01-01", SuspectDOB="0001-01-01")
    rows[0] = [bad[name] for name in header]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    police.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("cp1252"))

    [result] = run_files([police], tmp_path)
    assert result.received == len(rows)
    assert result.received == result.loaded + result.duplicates + result.quarantined
    assert (result.loaded, result.quarantined) == (len(rows) - 1, 1)
    expected = ["perp_dob_plausible", "received_date_plausible", "victim_dob_plausible"]
    assert result.failed_expectations == dict.fromkeys(expected, 1)
    assert _quarantined() == [(2, expected)]
    with wiring.engine().begin() as conn:
        routed = route(conn, policy=get_policy(), run_date=DAY, actor="test")
    assert sum(routed.routed.values()) + routed.merged == len(rows) - 1


def test_a_duration_past_fifty_years_or_no_behaviour_at_all_is_quarantined_and_the_edges_load(
    configured: str, tmp_path: Path
) -> None:
    """600 months and one behaviour are the limits: one month more, or no behaviour named, is a row to correct."""
    police = _generated(tmp_path, "police_rms")
    header, *rows = list(csv.reader(io.StringIO(police.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("cp1252"))))
    changes = [
        {"DurationMonths": "601"},
        {"DurationMonths": "600"},
        {"Behaviours": ""},
        {"Behaviours": "Following"},
    ]
    for i, change in enumerate(changes):
        row = dict(zip(header, rows[i], strict=True)) | change
        rows[i] = [row[name] for name in header]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    police.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("cp1252"))

    [result] = run_files([police], tmp_path)
    assert (result.received, result.loaded, result.quarantined) == (len(rows), len(rows) - 2, 2)
    assert result.failed_expectations == {"duration_months_plausible": 1, "behaviours_present": 1}
    assert _quarantined() == [(2, ["duration_months_plausible"]), (4, ["behaviours_present"])]


def test_a_header_only_export_sent_under_its_agreed_name_and_another_repeats_on_every_rerun(
    configured: str, tmp_path: Path
) -> None:
    police = _generated(tmp_path, "police_rms")
    header = police.read_bytes().splitlines(keepends=True)[0]
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / police.name).write_bytes(header)
    (folder / "Police export.csv").write_bytes(header)  # the same bytes, misnamed: held with its line counted
    first = run_files(sorted(folder.iterdir()), tmp_path)
    for _ in range(2):  # each rerun found its own batch: before, the second failed on the batches' unique key
        again = run_files(sorted(folder.iterdir()), tmp_path)
        assert [f.status for f in again] == ["repeat", "repeat"]
        assert [f.batch_id for f in again] == [f.batch_id for f in first]


def test_a_batch_recorded_under_a_files_own_name_by_an_earlier_release_is_found_on_a_rerun(
    configured: str, tmp_path: Path
) -> None:
    import hashlib

    from tasks.ingest import night_key

    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "police_rms_2026-11-16 (2).csv").write_bytes(b"")  # an empty export, named other than as agreed
    [held] = run_files([folder / "police_rms_2026-11-16 (2).csv"], tmp_path)
    assert held.status == "held" and held.file == shown_name("police_rms_2026-11-16 (2).csv")
    empty = hashlib.sha256(b"").hexdigest()
    batches = IngestBatch.__table__  # type: ignore[attr-defined]
    with wiring.engine().begin() as conn:  # as a release before shown names recorded it
        conn.execute(
            batches.update().values(
                file_name="police_rms_2026-11-16 (2).csv", sha256=night_key(empty, DAY, "police_rms_2026-11-16 (2).csv")
            )
        )
    [again] = run_files([folder / "police_rms_2026-11-16 (2).csv"], tmp_path)
    assert again.status == "repeat" and again.batch_id == held.batch_id
    with wiring.engine().connect() as conn:
        assert conn.execute(select(batches.c.id)).scalars().all() == [held.batch_id]
