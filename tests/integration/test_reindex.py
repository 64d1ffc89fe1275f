"""Reindexing people stored under the old rules: their indexes follow the new rules, and linkage finds them."""

from __future__ import annotations

import json
import re
import traceback
import unicodedata
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update
from typer.testing import CliRunner

from iasu import wiring
from iasu.cli import app
from models import Case, Person, Referral
from rules.linkage import _FOLD, name_dob_key, pnc_key
from tasks.reindex import ReindexResult, reindex_people
from tests.support import audit_events, leaks, night_without_prefect, personal_needles, write_days

D1 = date(2026, 11, 9)
D2 = D1 + timedelta(days=1)
PERP_DOB = date(1980, 3, 4)
PNC = "26/45678B"  # fictional; the other spelling below is one id
CASES = Case.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
REFERRALS = Referral.__table__  # type: ignore[attr-defined]
runner = CliRunner()
# Victims' forenames and perpetrators' names whose old key kept a space: (victim forename, (forename, surname)).
OTHERS_WRITTEN_THE_OLD_WAY = [
    ("Mary Ann", ("Jo", "Smith Jones")),
    ("Ana María", ("Pat", "O\u00b4Neill")),
    ("Mary\u2011Jane", ("Kim", "Smith\u2013Jones")),
    ("Ann Marie", ("Noël", "D`Arcy")),
    ("Rose Ann", ("Lee", "Ó Súilleabháin")),
    ("Lily May", ("Sam", "Ní Bhriain")),
    ("Ella Rose", ("Max", "van der Berg")),
    ("Eve Ann", ("Ray", "O\u02bcHara")),
]


def old_normalise_name_part(text: str | None) -> str:
    """normalise_name_part as releases before the reindex had it: separators other than ' ’ - became kept spaces."""
    folded = unicodedata.normalize("NFKD", (text or "").casefold().translate(_FOLD))
    letters = "".join(ch for ch in folded if not unicodedata.combining(ch))
    squeezed = letters.replace("'", "").replace("\u2019", "").replace("-", "")
    return re.sub(r"\s+", " ", re.sub(r"[^a-z ]+", " ", squeezed)).strip()


def old_name_dob_keys(
    forenames: Iterable[str | None],
    surnames: Iterable[str | None],
    dobs: Iterable[date | None],
    parts: dict[str | None, str] | None = None,
) -> list[str | None]:
    """name_dob_keys as releases before the reindex had them: the old parts, joined by one space."""
    keys: list[str | None] = []
    for forename, surname, dob in zip(forenames, surnames, dobs, strict=True):
        name = " ".join(part for part in (old_normalise_name_part(forename), old_normalise_name_part(surname)) if part)
        keys.append(f"{name}|{dob.isoformat()}" if name and dob else None)
    return keys


def old_pnc_key(pnc_id: str | None) -> str | None:
    """pnc_key as releases before the reindex had it: upper case, separators dropped, leading zeros kept."""
    return re.sub(r"[^0-9A-Z]+", "", pnc_id.upper()) or None if pnc_id else None


def nhs_line(
    ref: str, received: date, victim: tuple[str, str, date], perp: tuple[str, str, date], pnc: str | None = None
) -> str:
    """One low-risk NHS trust referral (no S-DASH yes, no marker) between fictional people."""

    def person(forename: str, surname: str, dob: date, phone: str | None = None) -> dict[str, Any]:
        return {
            "name": {"given": forename, "family": surname},
            "dateOfBirth": dob.isoformat(),
            "contact": {"phone": phone, "email": None},
            "address": {"lines": [], "postcode": None},
        }

    sdash = (
        "victimVeryFrightened previousStalking propertyDamage visitsMoreThan3AWeek loiteringFollowing threatsViolence "
        "thirdPartiesHarassed violenceThisEpisode othersRecruited drugsAlcohol pastViolence"
    )
    record = {
        "referralId": ref,
        "forceArea": "Cheshire",
        "receivedDate": received.isoformat(),
        "referringAgency": "NHS",
        "crimeReference": None,
        "relationship": "Acquaintance",
        "behaviours": ["Contacting"],
        "durationMonths": 2,
        "lastIncidentDate": (received - timedelta(days=3)).isoformat(),
        "sdash": dict.fromkeys(sdash.split(), False),
        "srp": None,
        "markers": [],
        "victim": person(*victim, phone="07700 900" + ref[-3:]),  # Ofcom's drama range: nobody's number
        "perpetrator": {**person(*perp), "pncId": pnc},
        "notes": None,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def add_nhs_lines(inbox: Path, day: date, *lines: str) -> None:
    path = inbox / day.isoformat() / f"nhs_trust_{day.isoformat()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.writelines(lines)


def people() -> dict[int, dict[str, Any]]:
    with wiring.engine().connect() as conn:
        return {row["id"]: dict(row) for row in conn.execute(select(PEOPLE).order_by(PEOPLE.c.id)).mappings()}


def new_rule_index(person: dict[str, Any]) -> str | None:
    """A stored person's name + date-of-birth index as the current rule computes it."""
    cipher = wiring.cipher()
    forename, surname, dob = (
        cipher.decrypt("people", c, person[c]) for c in ("forename_enc", "surname_enc", "dob_enc")
    )
    key = name_dob_key(forename, surname, date.fromisoformat(dob) if dob else None)
    return wiring.blind_index()("name_dob", key)


def new_rule_pnc_index(person: dict[str, Any]) -> str | None:
    """A stored person's PNC id index as the current rule computes it."""
    return wiring.blind_index()("pnc", pnc_key(wiring.cipher().decrypt("people", "pnc_enc", person["pnc_enc"])))


def case_of(source_ref: str) -> dict[str, Any]:
    r = REFERRALS.c
    with wiring.engine().connect() as conn:
        return dict(
            conn.execute(select(CASES).join(REFERRALS, r.case_id == CASES.c.id).where(r.source_ref == source_ref))
            .mappings()
            .one()
        )


@pytest.fixture
def stored_the_old_way(configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A night of generated referrals and one "O Brien", loaded and routed as releases before the reindex did."""
    inbox = tmp_path / "inbox"
    write_days(inbox, D1, per_day=60, dirty=0.0, seed=21)
    others = [
        nhs_line(
            f"NHS-REF-900001{i:02d}", D1, (victim, "Testvictim", date(1990, 1, 1 + i)), (*perp, date(1970, 1, 1 + i))
        )
        for i, (victim, perp) in enumerate(OTHERS_WRITTEN_THE_OLD_WAY)
    ]
    add_nhs_lines(
        inbox,
        D1,
        nhs_line("NHS-REF-90000001", D1, ("Alex", "Testvictim", date(1991, 6, 7)), ("Seán", "O Brien", PERP_DOB), PNC),
        *others,
    )
    with monkeypatch.context() as old_release:
        old_release.setattr("tasks.load.name_dob_keys", old_name_dob_keys)
        old_release.setattr("tasks.load.pnc_key", old_pnc_key)
        night_without_prefect(inbox, D1, tmp_path / "docs")
    return inbox


def test_people_stored_under_the_old_rule_are_reindexed_once_and_then_link(
    stored_the_old_way: Path, tmp_path: Path
) -> None:
    inbox = stored_the_old_way
    before = people()
    index = wiring.blind_index()
    with wiring.engine().connect() as conn:
        first_referral = conn.execute(
            select(REFERRALS.c.id).where(REFERRALS.c.source_ref == "NHS-REF-90000001")
        ).scalar_one()
    [perp] = [p for p in before.values() if p["referral_id"] == first_referral and p["role"] == "perpetrator"]
    assert perp["name_dob_index"] == index("name_dob", f"sean o brien|{PERP_DOB.isoformat()}")  # the old rule's key
    expected = {pid: new_rule_index(p) for pid, p in before.items()}
    stale = {pid for pid, p in before.items() if p["name_dob_index"] != expected[pid]}
    # Every key moved (the space between forename and surname is gone), bar people with no name or birth date.
    assert perp["id"] in stale and stale == {pid for pid in before if expected[pid] is not None}
    assert expected[perp["id"]] == index("name_dob", f"seanobrien|{PERP_DOB.isoformat()}")
    # Every PNC id's key moved too (now "26/0045678B"); the police export gives one for most perpetrators.
    expected_pnc = {pid: new_rule_pnc_index(p) for pid, p in before.items()}
    stale_pnc = {pid for pid, p in before.items() if p["pnc_index"] != expected_pnc[pid]}
    assert perp["pnc_index"] == index("pnc", "2645678B") and expected_pnc[perp["id"]] == index("pnc", "26/0045678B")
    assert len(stale_pnc) > 10 and stale_pnc == {pid for pid in before if expected_pnc[pid] is not None}

    first = runner.invoke(app, ["linkage", "reindex", "--by", "Ops Example"])
    assert first.exit_code == 0, first.output
    assert first.output == (
        f"{len(before)} people read; indexes changed: {len(stale)} name + date of birth, {len(stale_pnc)} PNC id\n"
    )
    after = people()
    assert {pid: p["name_dob_index"] for pid, p in after.items()} == expected
    assert {pid: p["pnc_index"] for pid, p in after.items()} == expected_pnc

    def unindexed(rows: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        return {pid: {**p, "name_dob_index": None, "pnc_index": None} for pid, p in rows.items()}

    assert unindexed(after) == unindexed(before)  # nothing else moved

    again = runner.invoke(app, ["linkage", "reindex", "--by", "Ops Example"])
    assert again.exit_code == 0, again.output
    assert again.output == f"{len(before)} people read; indexes changed: 0 name + date of birth, 0 PNC id\n"
    assert people() == after
    events = audit_events("reindex")
    assert [(e["actor"], e["entity"], e["details"]) for e in events] == [
        (
            "Ops Example",
            "people",
            {"read": len(before), "name_dob_changed": len(stale), "pnc_changed": len(stale_pnc)},
        ),
        ("Ops Example", "people", {"read": len(before), "name_dob_changed": 0, "pnc_changed": 0}),
    ]
    needles = personal_needles(inbox)
    assert {"O Brien", "Alex Testvictim"} <= needles  # the hand-written people are searched for too
    written = first.output + again.output + json.dumps(events, default=str)
    assert leaks(written, needles) == []

    # The same perpetrator, spelt as another system writes him, against another victim: serial.
    add_nhs_lines(
        inbox,
        D2,
        nhs_line("NHS-REF-90000002", D2, ("Sam", "Samplevictim", date(1988, 1, 2)), ("Sean", "O'Brien", PERP_DOB)),
    )
    night_without_prefect(inbox, D2, tmp_path / "docs")
    later, earlier = case_of("NHS-REF-90000002"), case_of("NHS-REF-90000001")
    serial = [r for r in later["reasons"] if r["rule"] == "serial_perpetrator"]
    assert [r["inputs"] for r in serial] == [{"earlier_referrals": 1, "other_victims": 1}]
    assert earlier["tier"] == "high" and earlier["reasons"][-1]["rule"] == "serial_perpetrator_linked"


def test_the_reindex_stops_in_one_line_without_the_keys(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IASU_BLIND_INDEX_KEY")
    wiring.reset()
    result = runner.invoke(app, ["linkage", "reindex", "--by", "Ops Example"])
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert "IASU_BLIND_INDEX_KEY not set" in result.stderr
    assert audit_events("reindex") == []


def test_the_reindex_reads_and_writes_a_batch_at_a_time_not_a_person_at_a_time(stored_the_old_way: Path) -> None:
    before = people()
    expected = {pid: new_rule_index(p) for pid, p in before.items()}
    stale = sum(p["name_dob_index"] != expected[pid] for pid, p in before.items())
    stale_pnc = sum(p["pnc_index"] != new_rule_pnc_index(p) for p in before.values())
    statements: list[str] = []
    engine = wiring.engine()
    listen = (engine, "before_cursor_execute", lambda conn, cursor, sql, *args: statements.append(sql))
    event.listen(*listen)
    try:
        with engine.begin() as conn:
            one_batch = reindex_people(conn, by="test", cipher=wiring.cipher(), index=wiring.blind_index())
    finally:
        event.remove(*listen)
    assert one_batch == ReindexResult(read=len(before), name_dob_changed=stale, pnc_changed=stale_pnc)
    # The casework lock (PostgreSQL), a read, an empty read, the write (staged on PostgreSQL: create, update,
    # drop) and the audit event, however many people changed.
    assert stale > 6 and len(statements) <= 7, statements

    with engine.begin() as conn:  # back to the old rule's indexes, to go again in batches of 7
        conn.execute(
            update(PEOPLE)
            .where(PEOPLE.c.id == bindparam("pid"))
            .values(name_dob_index=bindparam("old"), pnc_index=bindparam("old_pnc")),
            [{"pid": pid, "old": p["name_dob_index"], "old_pnc": p["pnc_index"]} for pid, p in before.items()],
        )
    with engine.begin() as conn:
        in_sevens = reindex_people(conn, by="test", cipher=wiring.cipher(), index=wiring.blind_index(), batch=7)
    assert in_sevens == one_batch
    assert {pid: p["name_dob_index"] for pid, p in people().items()} == expected
    assert {pid: p["pnc_index"] for pid, p in people().items()} == {
        pid: new_rule_pnc_index(p) for pid, p in before.items()
    }


def test_a_stored_date_of_birth_that_is_not_a_date_stops_the_reindex_without_quoting_it(
    stored_the_old_way: Path,
) -> None:
    # A traceback is logged and mailed: it may name the person's row, never show their date of birth.
    before = people()
    pid = min(pid for pid, p in before.items() if p["dob_enc"] is not None)
    engine = wiring.engine()
    with engine.begin() as conn:
        dob = wiring.cipher().encrypt("people", "dob_enc", "04/03/1980")
        conn.execute(update(PEOPLE).where(PEOPLE.c.id == pid).values(dob_enc=dob))
    with pytest.raises(ValueError) as raised, engine.begin() as conn:
        reindex_people(conn, by="test", cipher=wiring.cipher(), index=wiring.blind_index())
    shown = "".join(traceback.format_exception(raised.value))
    assert f"people row {pid}: stored date of birth is not an ISO date" in shown
    assert "04/03/1980" not in shown
    assert {p: row["name_dob_index"] for p, row in people().items()} == {
        p: row["name_dob_index"] for p, row in before.items()
    }


def test_after_the_reindex_a_pnc_id_written_another_way_links_the_perpetrator(
    stored_the_old_way: Path, tmp_path: Path
) -> None:
    assert runner.invoke(app, ["linkage", "reindex", "--by", "Ops Example"]).exit_code == 0
    # Another system's record of the same man: his name spelt otherwise, his birth date mistyped, the
    # PNC id with a four-digit year, the serial's leading zeros and a lower-case check letter.
    add_nhs_lines(
        stored_the_old_way,
        D2,
        nhs_line(
            "NHS-REF-90000003",
            D2,
            ("Sam", "Samplevictim", date(1988, 1, 2)),
            ("John", "Otherwise", date(1980, 4, 3)),
            "2026/0045678b",
        ),
    )
    night_without_prefect(stored_the_old_way, D2, tmp_path / "docs")
    later, earlier = case_of("NHS-REF-90000003"), case_of("NHS-REF-90000001")
    serial = [r for r in later["reasons"] if r["rule"] == "serial_perpetrator"]
    assert [r["inputs"] for r in serial] == [{"earlier_referrals": 1, "other_victims": 1}]
    assert later["tier"] == "high" and earlier["reasons"][-1]["rule"] == "serial_perpetrator_linked"
