"""Reported outcomes applied to pending contacts, on SQLite and PostgreSQL, several to one contact in one go."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from expectations.runner import NightValidator
from iasu import wiring
from iasu.policy import get_policy
from models import AuditEvent, Contact, ContactOutcome, QuarantineEntry
from rules.cadence import rescheduled, retry_after_no_answer
from rules.calendar import calendar_for
from rules.codes import Force
from tasks.ingest import FileCounts
from tasks.outcomes import OutcomeReport, ingest_contacts_path, parse_when, record_outcomes
from tasks.schedule import schedule
from tests.support import open_case

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
OUTCOMES = ContactOutcome.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
QUARANTINE = QuarantineEntry.__table__  # type: ignore[attr-defined]
OPENED = datetime(2026, 10, 19, 10, tzinfo=UTC)  # a Monday, the week before the clocks go back
KIND = "victim_first_contact"
TZ = "Europe/London"
RUN = date(2026, 10, 20)  # the night after OPENED: both first contacts pending
HEADER = "case_ref,kind,happened_at,outcome,new_date,recorded_by\n"
FIRST, SECOND, UNKNOWN = "CH-2026-000001", "CH-2026-000002", "CH-2026-000009"
LONG_ID = "A" * 129  # one more than contact_outcomes.recorded_by holds (varchar(128) on PostgreSQL)


@pytest.fixture
def contacts(configured: str) -> dict[str, int]:
    """Two open cases, each with its first victim contact pending; case reference -> that contact's id."""
    refs = ("CH-2026-000001", "CH-2026-000002")
    with wiring.engine().begin() as conn:
        for ref in refs:
            open_case(conn, ref, tier="standard", queue="police_investigation", opened_at=OPENED)
        schedule(conn, policy=get_policy(), run_date=OPENED.date(), actor="test", timezone=TZ)
        rows = conn.execute(select(CONTACTS.c.id, CONTACTS.c.case_id).where(CONTACTS.c.kind == KIND)).all()
    assert len(rows) == 2
    return dict(zip(refs, [r.id for r in sorted(rows, key=lambda r: r.case_id)], strict=True))


def _contact(contact_id: int) -> dict[str, object]:
    with wiring.engine().connect() as conn:
        row = conn.execute(select(CONTACTS).where(CONTACTS.c.id == contact_id)).mappings().one()
    return dict(row)


def _retry(on: date) -> datetime:
    return retry_after_no_answer(on, get_policy(), calendar_for(Force.cheshire, get_policy(), TZ))


def test_a_refusal_closes_the_contact_but_is_not_counted_as_completed(contacts: dict[str, int]) -> None:
    first, second = contacts
    at = datetime(2026, 11, 3, 11, tzinfo=UTC)
    reports = [
        OutcomeReport(case_ref=first, kind=KIND, happened_at=at, outcome="refused"),
        OutcomeReport(case_ref=second, kind=KIND, happened_at=at, outcome="completed"),
    ]
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, reports, origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (result.applied, result.completed) == (2, 1)
    assert (_contact(contacts[first])["status"], _contact(contacts[first])["outcome"]) == ("done", "refused")


def test_several_reports_on_one_contact_apply_in_time_order(contacts: dict[str, int]) -> None:
    first, second = contacts
    tue, wed, thu = (datetime(2026, 11, d, 11, tzinfo=UTC) for d in (3, 4, 5))
    cal = calendar_for(Force.cheshire, get_policy(), TZ)
    reports = [
        # Given out of order: they are applied in the order they happened.
        OutcomeReport(case_ref=first, kind=KIND, happened_at=wed, outcome="completed"),
        OutcomeReport(case_ref=first, kind=KIND, happened_at=tue, outcome="attempted_no_answer"),
        OutcomeReport(case_ref=second, kind=KIND, happened_at=tue, outcome="rescheduled", new_date=date(2026, 11, 9)),
        OutcomeReport(case_ref=second, kind=KIND, happened_at=thu, outcome="attempted_no_answer"),
    ]
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, reports, origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (result.applied, result.duplicates, result.rejected, result.completed) == (4, 0, {}, 1)

    done = _contact(contacts[first])
    # Done on Wednesday, after Tuesday's unanswered attempt had moved it: it keeps the due time that attempt gave.
    assert (done["status"], done["outcome"], done["attempts"]) == ("done", "completed", 2)
    assert (done["completed_at"], done["last_attempt_at"], done["due_at"]) == (wed, wed, _retry(tue.date()))

    moved = _contact(contacts[second])
    # Rescheduled to Monday 9th (no attempt), then an unanswered call on Thursday: due a working day after that.
    assert rescheduled(date(2026, 11, 9), cal) != _retry(thu.date())
    assert (moved["status"], moved["outcome"], moved["attempts"]) == ("pending", "attempted_no_answer", 1)
    assert (moved["completed_at"], moved["last_attempt_at"], moved["due_at"]) == (None, thu, _retry(thu.date()))

    with wiring.engine().connect() as conn:
        linked = conn.execute(select(OUTCOMES.c.contact_id).order_by(OUTCOMES.c.id)).scalars().all()
        audited = conn.execute(
            select(AUDIT.c.entity_id).where(AUDIT.c.action == "contact_outcome").order_by(AUDIT.c.id)
        ).scalars()
        assert sorted(linked) == sorted([contacts[first]] * 2 + [contacts[second]] * 2)
        assert sorted(audited) == sorted(str(c) for c in linked)


def test_a_report_given_again_changes_nothing(contacts: dict[str, int]) -> None:
    ref = next(iter(contacts))
    report = OutcomeReport(
        case_ref=ref, kind=KIND, happened_at=datetime(2026, 11, 3, 11, tzinfo=UTC), outcome="attempted_no_answer"
    )
    with wiring.engine().begin() as conn:
        # Twice in one input too (a feed listing a call twice): applied once.
        first = record_outcomes(conn, [report, report], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (first.applied, first.duplicates) == (1, 1)
    before = _contact(contacts[ref])
    assert before["attempts"] == 1
    with wiring.engine().begin() as conn:
        again = record_outcomes(conn, [report], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (again.applied, again.duplicates) == (0, 1)
    assert _contact(contacts[ref]) == before


def test_a_report_after_the_contact_is_done_is_kept_but_not_applied(contacts: dict[str, int]) -> None:
    ref = next(iter(contacts))
    done, later = datetime(2026, 11, 3, 11, tzinfo=UTC), datetime(2026, 11, 4, 11, tzinfo=UTC)
    reports = [
        OutcomeReport(case_ref=ref, kind=KIND, happened_at=later, outcome="attempted_no_answer"),
        OutcomeReport(case_ref=ref, kind=KIND, happened_at=done, outcome="completed"),
    ]
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, reports, origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (result.applied, result.rejected) == (1, {0: "contact_pending"})
    contact = _contact(contacts[ref])
    assert (contact["status"], contact["outcome"], contact["attempts"], contact["last_attempt_at"]) == (
        "done",
        "completed",
        1,
        done,
    )


def test_a_local_time_in_the_hour_the_clocks_go_back_is_applied(contacts: dict[str, int]) -> None:
    """01:30 on 25 October 2026 happens twice in London; a feed time without an offset is the first of them."""
    ref = next(iter(contacts))
    when = parse_when("2026-10-25T01:30:00", TZ)
    assert when is not None and when.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    report = OutcomeReport(case_ref=ref, kind=KIND, happened_at=when, outcome="attempted_no_answer")
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, [report], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (result.applied, result.duplicates) == (1, 0)
    contact = _contact(contacts[ref])
    assert (contact["attempts"], contact["last_attempt_at"]) == (1, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    with wiring.engine().connect() as conn:
        assert conn.execute(select(OUTCOMES.c.contact_id)).scalars().all() == [contacts[ref]]


def test_a_contact_made_on_the_day_its_case_opened_is_applied(contacts: dict[str, int]) -> None:
    """The unit often calls a high-risk victim the day the referral comes in: that day is not before the case."""
    ref = next(iter(contacts))
    same_day = datetime(2026, 10, 19, 15, tzinfo=UTC)  # OPENED was 10:00 that Monday
    report = OutcomeReport(case_ref=ref, kind=KIND, happened_at=same_day, outcome="completed")
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, [report], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert (result.applied, result.rejected, result.completed) == (1, {}, 1)
    assert (_contact(contacts[ref])["status"], _contact(contacts[ref])["completed_at"]) == ("done", same_day)


def test_a_no_answer_just_after_local_midnight_is_retried_from_the_local_date(contacts: dict[str, int]) -> None:
    """00:30 on Tuesday in London (summer time) is still Monday in UTC: the retry counts from Tuesday."""
    ref = next(iter(contacts))
    when = parse_when("2026-10-20T00:30:00", TZ)
    assert when is not None and when.astimezone(UTC) == datetime(2026, 10, 19, 23, 30, tzinfo=UTC)
    assert _retry(date(2026, 10, 20)) != _retry(date(2026, 10, 19))
    report = OutcomeReport(case_ref=ref, kind=KIND, happened_at=when, outcome="attempted_no_answer")
    with wiring.engine().begin() as conn:
        result = record_outcomes(conn, [report], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert result.applied == 1
    contact = _contact(contacts[ref])
    assert (contact["status"], contact["attempts"], contact["due_at"]) == ("pending", 1, _retry(date(2026, 10, 20)))


def _row(
    ref: str, when: str = "2026-10-20T10:00", outcome: str = "completed", new_date: str = "", by: str = "X"
) -> str:
    return f"{ref},{KIND},{when},{outcome},{new_date},{by}"


def _ingest(path: Path, validator: NightValidator, run_date: date = RUN) -> FileCounts:
    return ingest_contacts_path(
        path,
        run_date=run_date,
        night_run_id=None,
        actor="test",
        engine=wiring.engine(),
        cipher=wiring.cipher(),
        index=wiring.blind_index(),
        validator=validator,
        policy=get_policy(),
        timezone=TZ,
    )


def _quarantined() -> dict[int, tuple[list[str], str | None]]:
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(QUARANTINE.c.line_no, QUARANTINE.c.failed_expectations, QUARANTINE.c.raw_enc))
        return {
            r.line_no: (r.failed_expectations, wiring.cipher().decrypt("quarantine_entries", "raw_enc", r.raw_enc))
            for r in rows
        }


def test_a_row_resent_corrected_resolves_its_quarantine_entry(contacts: dict[str, int], tmp_path: Path) -> None:
    feed = tmp_path / f"contacts_{RUN.isoformat()}.csv"
    # A typo in one row (its contact's entry), and a bad row for the other case that nothing corrects.
    feed.write_text(HEADER + _row(FIRST, outcome="complete") + "\n" + _row(SECOND, when="2026-13-01T10:00") + "\n")
    validator = NightValidator(tmp_path / "docs")
    assert _ingest(feed, validator).quarantined == 2
    feed.write_text(HEADER + _row(FIRST) + "\n", encoding="utf-8")  # the first, corrected, in the next file
    resent = _ingest(feed, validator)
    assert (resent.loaded, resent.quarantine_resolved) == (1, 1)
    with wiring.engine().connect() as conn:
        entries = conn.execute(select(QUARANTINE.c.source_ref, QUARANTINE.c.status).order_by(QUARANTINE.c.id)).all()
    assert [tuple(e) for e in entries] == [(f"{FIRST}:{KIND}", "resolved"), (f"{SECOND}:{KIND}", "open")]
    assert _ingest(feed, validator).quarantine_resolved == 0  # the same file again: a repeat, nothing more


def test_an_entry_is_resolved_when_staff_record_its_outcome_by_hand(contacts: dict[str, int], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from iasu.cli import app

    feed = tmp_path / f"contacts_{RUN.isoformat()}.csv"
    feed.write_text(HEADER + _row(FIRST, outcome="complete") + "\n", encoding="utf-8")  # a typo: quarantined
    assert _ingest(feed, NightValidator(tmp_path / "docs")).quarantined == 1
    args = ["contact", "record", FIRST, "--kind", KIND, "--at", "2026-10-20T10:00", "--outcome", "completed"]
    out = CliRunner().invoke(app, [*args, "--by", "CH-UNI-01"])
    assert out.exit_code == 0, out.output
    assert "1 quarantined contacts-feed row(s) resolved" in out.stdout
    with wiring.engine().connect() as conn:
        assert conn.execute(select(QUARANTINE.c.status)).scalars().all() == ["resolved"]
    # The feed sent again with another line changed: its settled row is the same row, not a new entry to settle.
    feed.write_text(HEADER + _row(FIRST, outcome="complete") + "\n" + _row(SECOND) + "\n", encoding="utf-8")
    again = _ingest(feed, NightValidator(tmp_path / "docs"))
    assert (again.received, again.loaded, again.duplicates, again.quarantined) == (2, 1, 1, 0)
    with wiring.engine().connect() as conn:
        assert conn.execute(select(QUARANTINE.c.status)).scalars().all() == ["resolved"]
    # The same text on a later night's feed is a new report failing the same way (a contact recorded each week
    # with the same slip reads the same each time): staff see it.
    later = tmp_path / "later" / f"contacts_{RUN.isoformat()}.csv"
    later.parent.mkdir()
    later.write_text(HEADER + _row(FIRST, outcome="complete") + "\n" + _row(SECOND, by="Y") + "\n", encoding="utf-8")
    next_week = _ingest(later, NightValidator(tmp_path / "docs"), run_date=date(2026, 10, 27))
    assert (next_week.status, next_week.quarantined) == ("loaded", 1)
    with wiring.engine().connect() as conn:
        statuses = conn.execute(select(QUARANTINE.c.status).order_by(QUARANTINE.c.id)).scalars().all()
    assert statuses == ["resolved", "open"]


def test_an_entry_whose_kind_did_not_read_is_left_to_staff_not_closed_by_another_contact_s_outcome(
    contacts: dict[str, int], tmp_path: Path
) -> None:
    feed = tmp_path / f"contacts_{RUN.isoformat()}.csv"
    feed.write_text(HEADER + _row(FIRST).replace(KIND, "victim_folowup") + "\n", encoding="utf-8")
    validator = NightValidator(tmp_path / "docs")
    assert _ingest(feed, validator).quarantined == 1
    # The first contact's outcome, in the next file: another contact of the case, so the entry stays open.
    feed.write_text(HEADER + _row(FIRST) + "\n", encoding="utf-8")
    assert _ingest(feed, validator).quarantine_resolved == 0
    with wiring.engine().begin() as conn:
        entries = conn.execute(select(QUARANTINE.c.source_ref, QUARANTINE.c.status)).all()
    assert [tuple(e) for e in entries] == [(f"{FIRST}:?", "open")]


def test_a_last_row_cut_off_then_sent_complete_resolves_its_entry(contacts: dict[str, int], tmp_path: Path) -> None:
    feed = tmp_path / f"contacts_{RUN.isoformat()}.csv"
    # An upload stopped short: the last row loses its end and its line ending, its case and kind still whole.
    feed.write_text(HEADER + _row(SECOND) + "\n" + _row(FIRST)[:-8], encoding="utf-8")
    validator = NightValidator(tmp_path / "docs")
    assert _ingest(feed, validator).quarantined == 1
    feed.write_text(HEADER + _row(SECOND) + "\n" + _row(FIRST) + "\n", encoding="utf-8")  # sent again complete
    resent = _ingest(feed, validator)
    assert (resent.loaded, resent.quarantine_resolved) == (1, 1)
    with wiring.engine().connect() as conn:
        entries = conn.execute(select(QUARANTINE.c.source_ref, QUARANTINE.c.status)).all()
    assert [tuple(e) for e in entries] == [(f"{FIRST}:{KIND}", "resolved")]


CR_CELL = _row(FIRST, by="CH-UNI\r01")
# Quoted cells over two lines that end alike: two records, not one record and its repeat.
ALIKE_1, ALIKE_2 = _row(FIRST, by='"CH-UNI-01\nnight shift"'), _row(SECOND, by='"CH-UNI-02\nnight shift"')
# Form feed and line separator are not line breaks in a CSV: the record is its own text, from its first line.
ODD_BREAKS = _row(UNKNOWN, by='"CH-UNI-09\x0c\u2028night\nshift"')
EMPTY_RECORD = ",,,,,"
YEAR_ONE = _row(FIRST, when="0001-01-01T00:00+05:00")  # before the first instant UTC can hold
YEAR_MAX = _row(FIRST, when="9999-12-31T23:00-05:00", outcome="rescheduled", new_date="9999-12-31")
TOO_LONG = _row(SECOND, outcome="attempted_no_answer", by=LONG_ID)
NUL_ID = _row(SECOND, when="2026-10-20T09:00", outcome="attempted_no_answer", by="CH-UNI\x0001")  # not in PG text
YEARS_ON = _row(SECOND, outcome="rescheduled", new_date="2030-10-20")  # a mistyped year
WEEK_DAY = _row(FIRST, outcome="rescheduled", new_date="2026-W43-5")  # an ISO week date: not YYYY-MM-DD
BASIC_DAY = _row(SECOND, outcome="rescheduled", new_date="20261023")
BASIC_TIME = _row(FIRST, when="20261020T1000")
WEEK_TIME = _row(SECOND, when="2026-W43-2T10:00")
ESCAPED_ID = _row(FIRST, when="2026-10-20T09:00", outcome="attempted_no_answer", by="CH\tUNI\\N01")  # COPY's escapes
MOVED_BACK = _row(FIRST, outcome="rescheduled", new_date="2026-10-19")  # the day before the call
YEAR_AGO = _row(SECOND, when="2025-10-19T10:00")  # more than 366 days before the night's end: a mistyped year

# body after the header; (received, loaded, duplicates, quarantined); line -> (reasons, raw) in quarantine
FEEDS = {
    "a lone CR in an unquoted cell": (
        f"{CR_CELL}\n{_row(SECOND)}\n",
        (2, 1, 0, 1),
        {2: (["record_readable"], CR_CELL)},
    ),
    "multi-line cells ending alike": (
        f"{ALIKE_1}\n{ALIKE_2}\n{ODD_BREAKS}\n",
        (3, 2, 0, 1),
        {6: (["case_known"], ODD_BREAKS)},
    ),
    "a line of only commas, an empty line": (
        f"{EMPTY_RECORD}\n\n{_row(FIRST)}\n",
        (2, 1, 0, 1),
        {2: (["case_ref_present", "kind_present", "outcome_present", "happened_at_present"], EMPTY_RECORD)},
    ),
    "times out of range, staff ids PostgreSQL cannot store": (
        f"{YEAR_ONE}\n{YEAR_MAX}\n{TOO_LONG}\n{NUL_ID}\n{ESCAPED_ID}\n{_row(FIRST, by='B' * 128)}\n{_row(SECOND)}\n",
        (7, 3, 0, 4),
        {
            2: (["happened_at_not_too_old"], YEAR_ONE),
            3: (["happened_at_not_future"], YEAR_MAX),
            4: (["recorded_by_not_too_long"], TOO_LONG),
            5: (["recorded_by_nul_free"], NUL_ID),
        },
    ),
    "a time written other than YYYY-MM-DDTHH:MM": (
        f"{BASIC_TIME}\n{WEEK_TIME}\n{_row(FIRST)}\n",
        (3, 1, 0, 2),
        {2: (["happened_at_real"], BASIC_TIME), 3: (["happened_at_real"], WEEK_TIME)},
    ),
    "a contact moved years on": (
        f"{YEARS_ON}\n{_row(FIRST)}\n",
        (2, 1, 0, 1),
        {2: (["new_date_within_a_year"], YEARS_ON)},
    ),
    "a contact moved to a day before the call, a report over a year old": (
        f"{MOVED_BACK}\n{YEAR_AGO}\n{_row(FIRST)}\n",
        (3, 1, 0, 2),
        {2: (["new_date_not_before_happened"], MOVED_BACK), 3: (["happened_at_not_too_old"], YEAR_AGO)},
    ),
    "a new day written other than YYYY-MM-DD": (
        f"{WEEK_DAY}\n{BASIC_DAY}\n{_row(FIRST)}\n",
        (3, 1, 0, 2),
        {
            2: (["new_date_real", "rescheduled_has_new_date"], WEEK_DAY),
            3: (["new_date_real", "rescheduled_has_new_date"], BASIC_DAY),
        },
    ),
}


@pytest.mark.parametrize(("body", "expected", "quarantined"), FEEDS.values(), ids=FEEDS.keys())
def test_a_feed_accounts_for_every_record_and_applies_the_good_ones_once(
    contacts: dict[str, int],
    tmp_path: Path,
    body: str,
    expected: tuple[int, int, int, int],
    quarantined: dict[int, tuple[list[str], str]],
) -> None:
    feed = tmp_path / "contacts_2026-10-20.csv"
    feed.write_bytes((HEADER + body).encode())
    validator = NightValidator(tmp_path / "docs")
    first = _ingest(feed, validator)
    assert (first.status, first.received, first.loaded, first.duplicates, first.quarantined) == ("loaded", *expected)
    assert _quarantined() == quarantined
    with wiring.engine().connect() as conn:
        assert len(conn.execute(select(OUTCOMES.c.id)).all()) == first.loaded
    # Resent with other bytes (a trailing empty line, not a record): nothing new, everything accounted for.
    feed.write_bytes((HEADER + body + "\n").encode())
    again = _ingest(feed, validator)
    assert (again.received, again.loaded, again.quarantined, again.duplicates) == (expected[0], 0, 0, expected[0])
    assert _quarantined() == quarantined
    # Counts and Great Expectations' results name lines and expectations, never a cell's value.
    assert validator.build_docs() is not None
    published = json.dumps([first.as_dict(), again.as_dict()]) + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "docs").rglob("*") if p.is_file()
    )
    assert "CH-UNI" not in published and LONG_ID not in published


def test_an_undecodable_feed_is_held_with_its_records_counted(contacts: dict[str, int], tmp_path: Path) -> None:
    feed = tmp_path / "contacts_2026-10-20.csv"
    feed.write_bytes((HEADER + f"{_row(FIRST)}\n{_row(SECOND, by='José')}\n{_row(UNKNOWN)}\n").encode("latin-1"))
    counts = _ingest(feed, NightValidator(tmp_path / "docs"))
    assert (counts.status, counts.received, counts.held_rows, counts.loaded, counts.quarantined) == ("held", 3, 3, 0, 0)
    assert counts.held_reason is not None and "José" not in counts.held_reason


def test_a_feed_whose_lines_end_in_cr_alone_is_held_with_its_records_counted(
    contacts: dict[str, int], tmp_path: Path
) -> None:
    feed = tmp_path / "contacts_2026-10-20.csv"
    feed.write_text((HEADER + f"{_row(FIRST)}\n{_row(SECOND)}\n").replace("\n", "\r"), encoding="utf-8")
    counts = _ingest(feed, NightValidator(tmp_path / "docs"))
    assert (counts.status, counts.received, counts.held_rows, counts.loaded) == ("held", 2, 2, 0)
    assert counts.held_reason == "lines end in CR alone: export with LF or CRLF endings"


def test_a_feed_with_a_column_given_twice_is_held_with_its_records_counted(
    contacts: dict[str, int], tmp_path: Path
) -> None:
    feed = tmp_path / "contacts_2026-10-20.csv"
    feed.write_text(HEADER.strip() + ",Outcome \n" + f"{_row(FIRST)},refused\n{_row(SECOND)},\n", encoding="utf-8")
    counts = _ingest(feed, NightValidator(tmp_path / "docs"))
    assert (counts.status, counts.held_reason, counts.received, counts.held_rows) == (
        "held",
        "duplicated columns: outcome",
        2,
        2,
    )
    assert _contact(contacts[FIRST])["status"] == "pending"


def test_a_feed_that_cannot_be_read_is_held_with_none_counted(
    contacts: dict[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = tmp_path / "contacts_2026-10-20.csv"
    feed.write_text(HEADER + _row(FIRST) + "\n", encoding="utf-8")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    held = _ingest(feed, NightValidator(tmp_path / "docs"))
    assert (held.status, held.held_reason, held.received) == ("held", "cannot be read: Permission denied", 0)
    assert _contact(contacts[FIRST])["status"] == "pending"


def test_a_no_answer_spelt_as_agreed_with_the_units_is_applied_from_the_feed_and_by_hand(
    contacts: dict[str, int], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from iasu.cli import app

    feed = tmp_path / f"contacts_{RUN.isoformat()}.csv"
    feed.write_text(HEADER + _row(FIRST, outcome="attempted-no-answer") + "\n", encoding="utf-8")
    assert _ingest(feed, NightValidator(tmp_path / "docs")).loaded == 1
    assert (_contact(contacts[FIRST])["outcome"], _contact(contacts[FIRST])["attempts"]) == ("attempted_no_answer", 1)
    args = ["contact", "record", SECOND, "--kind", KIND, "--at", "2026-10-20T10:00", "--outcome", "attempted-no-answer"]
    out = CliRunner().invoke(app, [*args, "--by", "CH-UNI-01"])
    assert out.exit_code == 0, out.output
    assert _contact(contacts[SECOND])["outcome"] == "attempted_no_answer"
