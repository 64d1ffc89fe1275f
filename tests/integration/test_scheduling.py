"""Scheduling over simulated weeks on SQLite and PostgreSQL: the rolling-schedule invariant, outcomes, staff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text
from typer.testing import CliRunner

from iasu import wiring
from iasu.cli import app
from iasu.policy import get_policy
from iasu.simulation import Behaviour, ensure_roster, write_contacts_feed
from models import Case, Contact, Staff
from rules.cadence import applicable_kinds
from rules.calendar import calendar_for
from rules.codes import Force, Queue
from tasks.schedule import schedule
from tests.conftest import migrated_sqlite, pg_clone
from tests.support import night_without_prefect, write_days

START = date(2026, 8, 24)  # across two weekends and the August bank holiday (Mon 31 Aug)
NIGHTS = 12
CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]
runner = CliRunner()


def run_night_with_outcomes(
    inbox: Any, day: date, docs: Any, seed: int = 5, behaviour: Behaviour | None = None
) -> dict[str, Any]:
    """Write the day's contacts feed from what is due, take the night in, then schedule (as the flow does)."""
    from tasks.ingest import validator_for
    from tasks.outcomes import ingest_contacts_path

    policy = get_policy()
    with wiring.engine().begin() as conn:
        feed = write_contacts_feed(
            conn,
            inbox=inbox,
            day=day,
            policy=policy,
            timezone="Europe/London",
            seed=seed,
            behaviour=behaviour or Behaviour(),
        )
    night = night_without_prefect(inbox, day, docs, skip_prefix="contacts_")
    outcome = None
    if feed is not None:
        outcome = ingest_contacts_path(
            feed,
            run_date=day,
            night_run_id=None,
            actor="test",
            engine=wiring.engine(),
            cipher=wiring.cipher(),
            index=wiring.blind_index(),
            validator=validator_for(docs / f"c{day}"),
            policy=policy,
            timezone="Europe/London",
        )
    with wiring.engine().begin() as conn:
        result = schedule(conn, policy=policy, run_date=day, actor="test", timezone="Europe/London")
    return {"night": night, "outcome": outcome, "schedule": result}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def weeks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Twelve simulated nights with a roster; every night checked against the invariant as it goes."""
    tmp = tmp_path_factory.mktemp("weeks")
    with ExitStack() as stack:
        url = (
            migrated_sqlite(tmp)
            if request.param == "sqlite"
            else stack.enter_context(pg_clone(request.getfixturevalue("pg_template")))
        )
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv("IASU_DATABASE_URL", url)
        env.setenv("IASU_VAR_DIR", str(tmp / "var"))
        wiring.reset()
        stack.callback(wiring.reset)
        with wiring.engine().begin() as conn:
            ensure_roster(conn, cipher=wiring.cipher(), actor="test")
        write_days(tmp / "inbox", START, days=NIGHTS, per_day=15, dirty=0.0, seed=12)
        nights, violations = [], []
        for i in range(NIGHTS):
            day = START + timedelta(days=i)
            nights.append(run_night_with_outcomes(tmp / "inbox", day, tmp / "docs"))
            violations += invariant_violations(day)
        yield {"url": url, "tmp": tmp, "nights": nights, "violations": violations}


def invariant_violations(day: date) -> list[str]:
    """Each open case has exactly its next contacts, on working days, assigned to active staff (if any)."""
    policy = get_policy()
    problems: list[str] = []
    with wiring.engine().connect() as conn:
        cases = conn.execute(select(CASES).where(CASES.c.status == "open")).mappings().all()
        pending = conn.execute(
            select(CONTACTS.c.case_id, CONTACTS.c.kind, CONTACTS.c.due_at, CONTACTS.c.assigned_staff_id).where(
                CONTACTS.c.status == "pending"
            )
        ).all()
        active = set(conn.execute(select(STAFF.c.id).where(STAFF.c.active)).scalars())
        first_done = set(
            conn.execute(
                select(CONTACTS.c.case_id).where(CONTACTS.c.kind == "victim_first_contact", CONTACTS.c.status == "done")
            ).scalars()
        )
    by_case: dict[int, list[Any]] = {}
    for p in pending:
        by_case.setdefault(p.case_id, []).append(p)
    for case in cases:
        kinds = sorted(p.kind for p in by_case.get(case["id"], []))
        # The victim has one next contact: the first until it is done, then a follow-up.
        victim_next = "victim_followup" if case["id"] in first_done else "victim_first_contact"
        expected = sorted(
            k.value
            for k in applicable_kinds(Queue(case["queue"]), policy)
            if not k.value.startswith("victim_") or k.value == victim_next
        )
        if kinds != expected:
            problems.append(f"{day} {case['case_ref']}: pending {kinds}, expected {expected}")
        cal = calendar_for(Force(case["force"]), policy)
        for p in by_case.get(case["id"], []):
            if not cal.is_working_day(cal.local_date(p.due_at)):
                problems.append(f"{day} {case['case_ref']}: {p.kind} due on a non-working day")
            if p.assigned_staff_id is not None and p.assigned_staff_id not in active:
                problems.append(f"{day} {case['case_ref']}: {p.kind} with an inactive worker")
            if p.assigned_staff_id != case["assigned_staff_id"]:
                problems.append(f"{day} {case['case_ref']}: contact and case assigned differently")
    return problems


def test_every_night_keeps_the_rolling_schedule_invariant(weeks: dict[str, Any]) -> None:
    assert weeks["violations"] == []
    assert sum(n["schedule"].scheduled for n in weeks["nights"]) > 0
    assert sum(n["outcome"].completed for n in weeks["nights"] if n["outcome"]) > 0


def test_completed_contacts_roll_on_and_late_ones_stay_late(weeks: dict[str, Any]) -> None:
    with wiring.engine().connect() as conn:
        done = conn.execute(
            select(CONTACTS.c.kind, CONTACTS.c.completed_at, CONTACTS.c.original_due_at).where(
                CONTACTS.c.status == "done"
            )
        ).all()
        followups = conn.execute(select(CONTACTS.c.id).where(CONTACTS.c.kind == "victim_followup")).all()
    assert done and followups, "first contacts completed create follow-ups"
    assert any(d.completed_at > d.original_due_at for d in done), "some contacts are completed late"


def test_the_last_night_has_overdue_work(weeks: dict[str, Any]) -> None:
    from rules.clock import end_of_day

    last = START + timedelta(days=NIGHTS - 1)
    with wiring.engine().connect() as conn:
        overdue = conn.execute(
            select(CONTACTS.c.id).where(
                CONTACTS.c.status == "pending", CONTACTS.c.due_at <= end_of_day(last, "Europe/London")
            )
        ).all()
    assert overdue


def test_rerunning_a_night_changes_nothing(weeks: dict[str, Any]) -> None:
    audited = "SELECT count(*) FROM audit_events"
    with wiring.engine().connect() as conn:
        before = conn.execute(select(CONTACTS).order_by(CONTACTS.c.id)).all()
        events = conn.execute(text(audited)).scalar_one()
    with wiring.engine().begin() as conn:  # the demo's roster given again, as every demo run gives it
        assert ensure_roster(conn, cipher=wiring.cipher(), actor="test") == 0
    with wiring.engine().connect() as conn:
        assert conn.execute(text(audited)).scalar_one() == events  # nothing changed: nothing audited
    last = START + timedelta(days=NIGHTS - 1)
    again = run_night_with_outcomes(weeks["tmp"] / "inbox", last, weeks["tmp"] / "docs")
    assert again["schedule"].scheduled == 0
    if again["outcome"] is not None:
        assert again["outcome"].loaded == 0
    with wiring.engine().connect() as conn:
        assert conn.execute(select(CONTACTS).order_by(CONTACTS.c.id)).all() == before


def test_a_worker_leaving_hands_on_cases_and_contacts(weeks: dict[str, Any]) -> None:
    with wiring.engine().connect() as conn:
        busiest = conn.execute(
            text(
                "SELECT s.staff_code FROM staff s JOIN cases c ON c.assigned_staff_id = s.id "
                "WHERE c.status = 'open' AND s.active GROUP BY s.staff_code "
                "ORDER BY count(*) DESC, s.staff_code LIMIT 1"
            )
        ).scalar_one()
    out = runner.invoke(app, ["staff", "deactivate", busiest, "--by", "Ops Example", "--reason", "left"])
    assert out.exit_code == 0, out.output
    assert invariant_violations(START + timedelta(days=NIGHTS - 1)) == []
    with wiring.engine().connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'staff_deactivate'")).scalar_one()
    assert events == 1


def test_the_cli_records_an_outcome_once_and_schedules_the_next(weeks: dict[str, Any]) -> None:
    with wiring.engine().connect() as conn:
        row = conn.execute(
            select(CASES.c.case_ref, CONTACTS.c.due_at)
            .join(CONTACTS, CONTACTS.c.case_id == CASES.c.id)
            .where(CONTACTS.c.status == "pending", CONTACTS.c.kind == "victim_first_contact")
            .order_by(CASES.c.case_ref)
            .limit(1)
        ).one()
    at = min(row.due_at, datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    args = ["contact", "record", row.case_ref, "--kind", "victim_first_contact", "--at", at, "--outcome", "completed"]
    first = runner.invoke(app, [*args, "--by", "CH-UNI-01"])
    assert first.exit_code == 0, first.output
    assert "1 next contact(s) scheduled" in first.output
    again = runner.invoke(app, [*args, "--by", "CH-UNI-01"])
    assert "already recorded" in again.output
    listed = json.loads(runner.invoke(app, ["contact", "list", "--json"]).stdout)
    mine = [c for c in listed if c["case_ref"] == row.case_ref]
    assert {"victim_first_contact", "victim_followup"} <= {c["kind"] for c in mine}
    assert all(set(c) == {"case_ref", "kind", "due_at", "status", "assigned_to"} for c in mine)
    assert all("+" in c["due_at"] or c["due_at"].endswith("Z") for c in mine)  # ISO 8601 with offset
    order = [(datetime.fromisoformat(c["due_at"]), c["case_ref"], c["kind"]) for c in listed]
    assert order == sorted(order)  # soonest due first, as staff work them
    pending = json.loads(runner.invoke(app, ["contact", "list", "--status", "pending", "--json"]).stdout)
    assert all(c["status"] == "pending" for c in pending)
    with wiring.engine().connect() as conn:
        queue_of: dict[str, str] = dict(conn.execute(select(CASES.c.case_ref, CASES.c.queue)).all())
    assert len(set(queue_of.values())) > 1
    for queue in sorted(set(queue_of.values())):
        only = json.loads(runner.invoke(app, ["contact", "list", "--queue", queue, "--json"]).stdout)
        assert only == [c for c in listed if queue_of[c["case_ref"]] == queue], queue


def test_an_override_to_a_higher_tier_brings_pending_contacts_forward(weeks: dict[str, Any]) -> None:
    with wiring.engine().connect() as conn:
        row = conn.execute(
            select(CASES.c.case_ref, CASES.c.id, CONTACTS.c.due_at)
            .join(CONTACTS, CONTACTS.c.case_id == CASES.c.id)
            .where(CASES.c.status == "open", CASES.c.tier == "standard", CONTACTS.c.status == "pending")
            .order_by(CONTACTS.c.due_at.desc(), CASES.c.case_ref)
            .limit(1)
        ).one()
    out = runner.invoke(
        app,
        ["case", "override", row.case_ref, "--queue", "unit", "--tier", "high", "--by", "DI Example", "--reason", "r"],
    )
    assert out.exit_code == 0, out.output
    with wiring.engine().connect() as conn:
        due = conn.execute(
            select(func.min(CONTACTS.c.due_at)).where(CONTACTS.c.case_id == row.id, CONTACTS.c.status == "pending")
        ).scalar_one()
    if isinstance(due, str):
        due = datetime.fromisoformat(due).replace(tzinfo=UTC)
    assert due <= row.due_at


def test_a_tier_raised_on_a_given_day_moves_contacts_to_the_new_cadence_from_that_day(weeks: dict[str, Any]) -> None:
    from rules.codes import Tier
    from tasks.schedule import reschedule_for_tier_change

    day = START + timedelta(days=NIGHTS - 1)
    with wiring.engine().begin() as conn:
        row = conn.execute(
            select(CASES.c.id, CONTACTS.c.id.label("contact_id"), CONTACTS.c.due_at)
            .join(CONTACTS, CONTACTS.c.case_id == CASES.c.id)
            .where(
                CASES.c.status == "open",
                CASES.c.tier == "standard",
                CONTACTS.c.status == "pending",
                CONTACTS.c.kind == "victim_followup",
            )
            .order_by(CONTACTS.c.due_at.desc())
            .limit(1)
        ).one()
        moved = reschedule_for_tier_change(
            conn, {row.id: (Tier.standard, Tier.high)}, changed_on=day, policy=get_policy(), timezone="Europe/London"
        )
        due = conn.execute(select(CONTACTS.c.due_at).where(CONTACTS.c.id == row.contact_id)).scalar_one()
    assert moved >= 1 and due < row.due_at  # weekly from that day instead of monthly
    assert (due.date() - day).days <= 9  # seven days on, moved past a weekend at most


def high_case_scheduled(conn: Connection, day: date) -> int:
    """One high-risk police case opened at 09:00 UTC on `day` and scheduled that night; its id."""
    from tests.support import open_case

    opened = datetime.combine(day, time(9), tzinfo=UTC)
    case_id = open_case(conn, "CH-2026-000001", tier="high", queue="police_investigation", opened_at=opened)
    schedule(conn, policy=get_policy(), run_date=day, actor="test", timezone="Europe/London")
    return case_id


def test_a_tier_lowered_moves_pending_contacts_later_to_the_lower_tier_s_cadence(configured: str) -> None:
    """A step down relaxes the schedule from the day of the change: the lower tier's deadline, even if later."""
    from rules.codes import Tier
    from tasks.schedule import reschedule_for_tier_change

    day, policy, tz = date(2026, 11, 2), get_policy(), "Europe/London"  # a Monday
    with wiring.engine().begin() as conn:
        case_id = high_case_scheduled(conn, day)
        moved = reschedule_for_tier_change(
            conn, {case_id: (Tier.high, Tier.standard)}, changed_on=day, policy=policy, timezone=tz
        )
        due = conn.execute(
            select(CONTACTS.c.due_at).where(CONTACTS.c.case_id == case_id, CONTACTS.c.status == "pending")
        ).scalar_one()
    # First contact: high risk, one working day (Tue 3 Nov); standard, five working days (Mon 9 Nov), 17:00 GMT.
    assert (moved, due) == (1, datetime(2026, 11, 9, 17, tzinfo=UTC))


def test_cases_nobody_can_take_are_summarised_in_one_ops_alert_a_night(configured: str, tmp_path: Any) -> None:
    """No staff at all: each night queues one ops summary of the waiting cases, a rerun none, the next night one."""
    from tasks.messages import render
    from tasks.outbox import ALERTS

    inbox, first = tmp_path / "inbox", date(2026, 11, 2)
    write_days(inbox, first, days=1, per_day=40, dirty=0.0, seed=3)
    night_without_prefect(inbox, first, tmp_path / "docs")

    def schedule_on(day: date) -> Any:
        with wiring.engine().begin() as conn:
            return schedule(conn, policy=get_policy(), run_date=day, actor="test", timezone="Europe/London").assignment

    left = schedule_on(first)
    schedule_on(first)  # a rerun of the same night
    schedule_on(first + timedelta(days=1))  # the cases still wait the next night
    with wiring.engine().connect() as conn:
        open_cases = conn.execute(select(func.count()).select_from(CASES).where(CASES.c.status == "open")).scalar_one()
        ops = conn.execute(
            select(ALERTS.c.dedupe_key, ALERTS.c.payload).where(ALERTS.c.kind == "ops").order_by(ALERTS.c.id)
        ).all()
    assert left.waiting == open_cases > 30 and left.assigned == 0
    assert [o.dedupe_key for o in ops] == ["ops:unassigned:2026-11-02:night", "ops:unassigned:2026-11-03:night"]
    payload = ops[0].payload
    assert payload["cases"] == open_cases == sum(payload["by_queue"].values())
    assert payload["case_refs"] == left.first_waiting and len(left.first_waiting) == 30
    message = render("ops", payload, ops[0].dedupe_key)
    assert f"{open_cases} open case(s) have no eligible worker" in message.text
    assert f"and {open_cases - 30} more" in message.text


def test_a_case_found_closed_has_its_pending_contacts_cancelled_by_the_next_scheduling_pass(configured: str) -> None:
    """Scheduling heals a case closed other than by `iasu case close` (in the database): nothing stays due on it."""

    day, policy, tz = date(2026, 11, 2), get_policy(), "Europe/London"
    with wiring.engine().begin() as conn:
        case_id = high_case_scheduled(conn, day)
        conn.execute(
            CASES.update()
            .where(CASES.c.id == case_id)
            .values(status="closed", closed_at=datetime(2026, 11, 2, 15, tzinfo=UTC), outcome="risk_reduced")
        )
        result = schedule(conn, policy=policy, run_date=day + timedelta(days=1), actor="test", timezone=tz)
        statuses = conn.execute(select(CONTACTS.c.status).where(CONTACTS.c.case_id == case_id)).scalars().all()
    assert (result.cancelled, result.scheduled, statuses) == (1, 0, ["cancelled"])


def test_due_today_counts_per_queue_the_pending_contacts_due_that_day_only(configured: str) -> None:
    """Not a contact of the day done or cancelled, nor one overdue since the day before."""
    from tasks.cases import close_case
    from tasks.outcomes import OutcomeReport, record_outcomes
    from tasks.schedule import due_today_by_queue
    from tests.support import open_case

    policy, tz, day = get_policy(), "Europe/London", date(2026, 11, 3)  # a Tuesday
    police, unit = "police_investigation", "unit"
    # High risk: each first contact falls due one working day after its case opened.
    opened = {
        "CH-2026-000001": (police, date(2026, 11, 2)),
        "CH-2026-000002": (police, date(2026, 11, 2)),  # done that day
        "CH-2026-000003": (police, date(2026, 11, 2)),  # its case closed: cancelled
        "CH-2026-000004": (police, date(2026, 10, 30)),  # due Monday: overdue
        "CH-2026-000005": (unit, date(2026, 11, 2)),
    }
    with wiring.engine().begin() as conn:
        for ref, (queue, on) in opened.items():
            open_case(conn, ref, tier="high", queue=queue, opened_at=datetime.combine(on, time(9), tzinfo=UTC))
        schedule(conn, policy=policy, run_date=date(2026, 11, 2), actor="test", timezone=tz)
        done = OutcomeReport(
            "CH-2026-000002", "victim_first_contact", datetime(2026, 11, 3, 10, tzinfo=UTC), "completed"
        )
        assert record_outcomes(conn, [done], origin="test", actor="test", policy=policy, timezone=tz).applied == 1
        close_case(
            conn,
            "CH-2026-000003",
            outcome="risk_reduced",
            by="test",
            reason=None,
            policy=policy,
            cipher=wiring.cipher(),
        )
        due = due_today_by_queue(conn, run_date=day, timezone=tz)
    assert due == {police: 1, unit: 1}


def test_due_list_names_each_queue_s_soonest_contacts_up_to_its_limit(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night's artifact lists a queue's contacts due that day soonest first, cut at the limit; no one else's."""
    from tasks import schedule as scheduling
    from tests.support import open_case

    policy, tz, day = get_policy(), "Europe/London", date(2026, 11, 3)  # a Tuesday
    police, unit = "police_investigation", "unit"
    # The case references run against the due times, so a list in reference order is told apart.
    due_hour = {"CH-2026-000001": 16, "CH-2026-000002": 11, "CH-2026-000003": 9, "CH-2026-000004": 14}
    with wiring.engine().begin() as conn:
        for ref in due_hour:
            open_case(conn, ref, tier="high", queue=police, opened_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
        open_case(conn, "CH-2026-000005", tier="high", queue=unit, opened_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
        # Opened a day earlier: its first contacts fall due on Monday, not on the day listed.
        open_case(conn, "CH-2026-000006", tier="high", queue=police, opened_at=datetime(2026, 10, 30, 9, tzinfo=UTC))
        schedule(conn, policy=policy, run_date=date(2026, 11, 2), actor="test", timezone=tz)
        for ref, hour in due_hour.items():
            conn.execute(
                CONTACTS.update()
                .where(CONTACTS.c.case_id == select(CASES.c.id).where(CASES.c.case_ref == ref).scalar_subquery())
                .values(due_at=datetime(2026, 11, 3, hour, tzinfo=UTC))
            )
        everything = scheduling.due_list(conn, run_date=day, timezone=tz)
        monkeypatch.setattr(scheduling, "DUE_LIST_LIMIT", 2)
        cut = scheduling.due_list(conn, run_date=day, timezone=tz)
    first = "victim_first_contact"  # a high-risk case's one contact due the next working day
    assert everything == {
        police: {
            "due": 4,
            "first": [
                {
                    "case_ref": ref,
                    "kind": first,
                    "due_at": f"2026-11-03T{due_hour[ref]:02d}:00:00+00:00",
                    "staff_code": None,
                }
                for ref in ("CH-2026-000003", "CH-2026-000002", "CH-2026-000004", "CH-2026-000001")
            ],
        },
        unit: {
            "due": 1,
            "first": [
                {"case_ref": "CH-2026-000005", "kind": first, "due_at": "2026-11-03T17:00:00+00:00", "staff_code": None}
            ],
        },
    }
    # Cut at the limit, a queue still says how many are due.
    assert cut == {police: {"due": 4, "first": everything[police]["first"][:2]}, unit: everything[unit]}


def test_the_due_list_gives_due_times_in_the_unit_s_own_time(configured: str) -> None:
    from tasks import schedule as scheduling
    from tests.support import open_case

    tz = "Europe/London"
    with wiring.engine().begin() as conn:
        # Opened on Tuesday 14 July 2026 (British Summer Time): its first contact is due by 17:00 on Wednesday.
        open_case(conn, "CH-2026-000001", tier="high", queue="unit", opened_at=datetime(2026, 7, 14, 9, tzinfo=UTC))
        schedule(conn, policy=get_policy(), run_date=date(2026, 7, 14), actor="test", timezone=tz)
        listed = scheduling.due_list(conn, run_date=date(2026, 7, 15), timezone=tz)
    [contact] = listed["unit"]["first"]
    assert contact["due_at"] == "2026-07-15T17:00:00+01:00"  # not 16:00 UTC, which staff would misread


def test_a_case_handed_on_takes_its_pending_contacts_and_leaves_its_done_ones(configured: str) -> None:
    """Reassignment moves only what is still to do: a done contact stays with whoever did it."""
    from tasks.outcomes import OutcomeReport, record_outcomes
    from tasks.staff import add_staff, deactivate_staff

    day, policy, tz = date(2026, 11, 2), get_policy(), "Europe/London"
    police = Queue("police_investigation")

    def add(code: str) -> int:
        with wiring.engine().begin() as conn:
            add_staff(conn, staff_code=code, queue=police, force=Force.cheshire, cipher=wiring.cipher(), actor="test")
            return int(conn.execute(select(STAFF.c.id).where(STAFF.c.staff_code == code)).scalar_one())

    def assignees() -> dict[str, int | None]:
        with wiring.engine().connect() as conn:
            rows = conn.execute(select(CONTACTS.c.kind, CONTACTS.c.status, CONTACTS.c.assigned_staff_id)).all()
        return {f"{r.kind}/{r.status}": r.assigned_staff_id for r in rows}

    first = add("CH-POL-01")
    with wiring.engine().begin() as conn:
        high_case_scheduled(conn, day)
    pending = assignees()
    assert pending and set(pending.values()) == {first}
    done_kind = sorted(pending)[0].split("/")[0]
    with wiring.engine().begin() as conn:
        report = OutcomeReport(
            case_ref="CH-2026-000001",
            kind=done_kind,
            happened_at=datetime(2026, 11, 2, 15, tzinfo=UTC),
            outcome="completed",
        )
        assert record_outcomes(conn, [report], origin="test", actor="test", policy=policy, timezone=tz).applied == 1
        deactivate_staff(conn, "CH-POL-01", by="test", reason=None, cipher=wiring.cipher())
    second = add("CH-POL-02")
    with wiring.engine().begin() as conn:
        assert (
            schedule(
                conn, policy=policy, run_date=day + timedelta(days=1), actor="test", timezone=tz
            ).assignment.assigned
            == 1
        )
    after = assignees()
    assert after[f"{done_kind}/done"] == first
    assert {v for k, v in after.items() if k.endswith("/pending")} == {second}


def test_waiting_cases_go_most_urgent_first_to_the_least_loaded_worker_with_room(configured: str) -> None:
    """Highest tier, then longest waiting, then reference; least load, then staff code; capacity and roles kept."""
    from tasks.outbox import ALERTS
    from tasks.staff import add_staff, deactivate_staff
    from tests.support import open_case

    day, police, unit = date(2026, 11, 2), Queue("police_investigation"), Queue("unit")
    advocacy, health = Queue("victim_advocacy"), Queue("mental_health")
    with wiring.engine().begin() as conn:
        for code, queue, capacity in (
            ("CH-POL-B", police, 3),
            ("CH-POL-A", police, 2),
            ("CH-POL-GONE", police, 10),
            ("CH-ADV-A", advocacy, 1),
            ("CH-MH-A", health, 1),
        ):
            add_staff(
                conn,
                staff_code=code,
                queue=queue,
                force=Force.cheshire,
                capacity=capacity,
                cipher=wiring.cipher(),
                actor="test",
            )
        add_staff(
            conn,
            staff_code="CH-POL-SUP",
            queue=police,
            force=Force.cheshire,
            role="supervisor",
            capacity=10,
            cipher=wiring.cipher(),
            actor="test",
        )
        deactivate_staff(conn, "CH-POL-GONE", by="test", reason=None, cipher=wiring.cipher())
        staff_id = {code: int(sid) for code, sid in conn.execute(select(STAFF.c.staff_code, STAFF.c.id))}
        # CH-POL-A already works one case: one place left of its two. CH-MH-A's one place is taken.
        for ref, queue, code in (("CH-2026-000090", police, "CH-POL-A"), ("CH-2026-000091", health, "CH-MH-A")):
            held = open_case(
                conn, ref, tier="standard", queue=queue.value, opened_at=datetime(2026, 10, 1, 9, tzinfo=UTC)
            )
            conn.execute(CASES.update().where(CASES.c.id == held).values(assigned_staff_id=staff_id[code]))
        waiting = [  # reference, tier, queue, day opened
            ("CH-2026-000001", "standard", police, 2),
            ("CH-2026-000002", "high", police, 2),
            ("CH-2026-000003", "medium", police, 1),
            ("CH-2026-000004", "high", police, 1),
            ("CH-2026-000005", "high", unit, 2),
            ("CH-2026-000006", "medium", police, 1),
            ("CH-2026-000007", "high", police, 1),
            ("CH-2026-000008", "standard", advocacy, 1),
            ("CH-2026-000009", "high", advocacy, 2),
            ("CH-2026-000010", "high", health, 1),
        ]
        for ref, tier, queue, opened in waiting:
            open_case(conn, ref, tier=tier, queue=queue.value, opened_at=datetime(2026, 11, opened, 9, tzinfo=UTC))
        schedule(conn, policy=get_policy(), run_date=day, actor="test", timezone="Europe/London")
        code_of = {v: k for k, v in staff_id.items()}
        assigned = {
            ref: code_of.get(sid)
            for ref, sid in conn.execute(select(CASES.c.case_ref, CASES.c.assigned_staff_id)).all()
        }
        ops = conn.execute(select(ALERTS.c.payload).where(ALERTS.c.kind == "ops")).scalar_one()
    # Police, most urgent first: 04 and 07 (high, 1 Nov), 02 (high, 2 Nov), 03 and 06 (medium, 1 Nov), 01.
    # B has no case, A one: 04 to B; 07 to A (one each, A's code first), which fills A; 02 and 03 to B, which
    # fills B. 06 and 01 wait, as does the unit's case: the unit has no worker. Advocacy's one place goes to
    # its high-risk case, not the older standard one; mental health's worker is full.
    assert assigned == {
        "CH-2026-000090": "CH-POL-A",
        "CH-2026-000091": "CH-MH-A",
        "CH-2026-000004": "CH-POL-B",
        "CH-2026-000007": "CH-POL-A",
        "CH-2026-000002": "CH-POL-B",
        "CH-2026-000003": "CH-POL-B",
        "CH-2026-000006": None,
        "CH-2026-000001": None,
        "CH-2026-000005": None,
        "CH-2026-000008": None,
        "CH-2026-000009": "CH-ADV-A",
        "CH-2026-000010": None,
    }
    assert ops["cases"] == 5
    assert ops["by_queue"] == {
        "mental_health/cheshire": 1,
        "police_investigation/cheshire": 2,
        "unit/cheshire": 1,
        "victim_advocacy/cheshire": 1,
    }
    # Across queues, most urgent first.
    assert ops["case_refs"] == [
        "CH-2026-000010",
        "CH-2026-000005",
        "CH-2026-000006",
        "CH-2026-000008",
        "CH-2026-000001",
    ]


def test_every_case_the_rules_want_a_contact_for_is_among_the_cases_scheduling_reads(weeks: dict[str, Any]) -> None:
    """Scheduling reads only the cases lacking a contact: the rest, by the rules, want nothing, whatever came before."""
    from tasks.schedule import _contact_state, lacking_a_contact, missing_contacts

    policy, day = get_policy(), START + timedelta(days=NIGHTS)
    cals = {force: calendar_for(force, policy, "Europe/London") for force in Force}
    with wiring.engine().connect() as conn, conn.begin() as tx:
        # A day's outcomes (done, and a few cancelled) across the pending contacts: the next ones become wanted.
        done_at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        c = CONTACTS.c
        conn.execute(
            CONTACTS.update().where(c.status == "pending", c.id % 3 == 0).values(status="done", completed_at=done_at)
        )
        conn.execute(CONTACTS.update().where(c.status == "pending", c.id % 7 == 0).values(status="cancelled"))
        open_cases = conn.execute(select(CASES).where(CASES.c.status == "open")).all()
        state = _contact_state(conn, [case.id for case in open_cases])
        read = set(
            conn.execute(select(CASES.c.id).where(CASES.c.status == "open", lacking_a_contact(policy))).scalars()
        )
        wanted = {
            case.id
            for case in open_cases
            if missing_contacts(case, state.get(case.id, {}), run_date=day, policy=policy, cal=cals[Force(case.force)])
        }
        tx.rollback()
    assert wanted and wanted <= read
    assert len(read) < len(open_cases)  # and the cases between their contacts are not read


def test_case_show_says_what_became_of_each_contact(weeks: dict[str, Any]) -> None:
    with wiring.engine().connect() as conn:
        ref = conn.execute(
            text(
                "SELECT k.case_ref FROM cases k JOIN contacts c ON c.case_id = k.id"
                " WHERE c.status = 'done' AND c.outcome = 'completed' ORDER BY k.case_ref LIMIT 1"
            )
        ).scalar_one()
        expected = conn.execute(
            text("SELECT count(*) FROM contacts c JOIN cases k ON k.id = c.case_id WHERE k.case_ref = :ref"),
            {"ref": ref},
        ).scalar_one()
    shown = json.loads(runner.invoke(app, ["case", "show", ref, "--json"]).stdout)
    assert len(shown["contacts"]) == expected
    done = [c for c in shown["contacts"] if c["status"] == "done"]
    assert done and all(c["outcome"] and c["completed_at"] and c["attempts"] >= 1 for c in done)
    plain = runner.invoke(app, ["case", "show", ref]).stdout
    assert "  contacts:\n" in plain and f"{done[0]['kind']} due {done[0]['due_at']} done (" in plain


def test_case_show_history_lists_each_outcome_recorded_against_the_case_s_contacts(weeks: dict[str, Any]) -> None:
    """Not only where each contact ended: every attempt recorded, by whom and from where, in the case's history."""
    with wiring.engine().connect() as conn:
        ref, recorded = conn.execute(
            text(
                "SELECT k.case_ref, count(*) FROM audit_events a"
                " JOIN contacts c ON a.entity = 'contacts' AND a.entity_id = CAST(c.id AS TEXT)"
                " JOIN cases k ON k.id = c.case_id WHERE a.action = 'contact_outcome'"
                " GROUP BY k.case_ref ORDER BY count(*) DESC, k.case_ref LIMIT 1"
            )
        ).one()
    assert recorded >= 2  # the simulated weeks record several outcomes for some case (a no answer, then done)
    shown = json.loads(runner.invoke(app, ["case", "show", ref, "--json"]).stdout)
    outcomes = [h for h in shown["history"] if h["action"] == "contact_outcome"]
    assert len(outcomes) == recorded
    kinds = {c["kind"] for c in shown["contacts"]}
    assert all(h["details"]["case_ref"] == ref and h["details"]["kind"] in kinds for h in outcomes)
    assert [h["at"] for h in shown["history"]] == sorted(h["at"] for h in shown["history"])  # one timeline
    assert shown["history"][0]["action"] == "decide"  # the case's own events are still there, first
    plain = runner.invoke(app, ["case", "show", ref]).stdout
    first, details = outcomes[0], outcomes[0]["details"]
    assert f"{first['at']} contact_outcome ({details['kind']}: {details['outcome']}) by {first['actor']}" in plain
