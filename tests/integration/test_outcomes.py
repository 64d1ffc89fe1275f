"""Reported outcomes applied to pending contacts, on SQLite and PostgreSQL, several to one contact in one go."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from iasu import wiring
from iasu.policy import get_policy
from models import AuditEvent, Contact, ContactOutcome
from rules.cadence import rescheduled, retry_after_no_answer
from rules.calendar import calendar_for
from rules.codes import Force
from tasks.outcomes import OutcomeReport, parse_when, record_outcomes
from tasks.schedule import schedule
from tests.support import open_case

CONTACTS = Contact.__table__  # type: ignore[attr-defined]
OUTCOMES = ContactOutcome.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
OPENED = datetime(2026, 10, 19, 10, tzinfo=UTC)  # a Monday, the week before the clocks go back
KIND = "victim_first_contact"
TZ = "Europe/London"


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
