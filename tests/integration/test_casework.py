"""Casework between nights: queue moves, staff moves, check-ins that stop and start, outcomes, moot alerts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from iasu import wiring
from iasu.cli import app
from iasu.policy import get_policy
from models import Alert, Case, Contact, Staff
from rules.codes import Force, Queue
from tasks.outcomes import OutcomeReport, record_outcomes
from tasks.schedule import schedule
from tasks.staff import StaffChange, add_staff
from tests.support import audit_events, open_case

CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
STAFF = Staff.__table__  # type: ignore[attr-defined]
ALERTS = Alert.__table__  # type: ignore[attr-defined]
TZ = "Europe/London"
REF = "CH-2026-000001"
runner = CliRunner()
# `iasu contact record` of the case's first victim contact by its worker, before --at and --outcome
RECORD_FIRST = ["contact", "record", REF, "--kind", "victim_first_contact", "--by", "CH-UNI-01"]


def staff(code: str, queue: str, **options: Any) -> StaffChange:
    with wiring.engine().begin() as conn:
        return add_staff(
            conn,
            staff_code=code,
            queue=Queue(queue),
            force=Force.cheshire,
            cipher=wiring.cipher(),
            actor="test",
            **options,
        )


def staff_id(code: str) -> int:
    with wiring.engine().connect() as conn:
        return int(conn.execute(select(STAFF.c.id).where(STAFF.c.staff_code == code)).scalar_one())


def a_case(queue: str, opened: date, tier: str = "high") -> int:
    """One open case, scheduled and assigned as the night of its opening would."""
    with wiring.engine().begin() as conn:
        case_id = open_case(
            conn, REF, tier=tier, queue=queue, opened_at=datetime(opened.year, opened.month, opened.day, 9, tzinfo=UTC)
        )
        schedule(conn, policy=get_policy(), run_date=opened, actor="test", timezone=TZ)
    return case_id


def holders(case_id: int) -> tuple[int | None, set[int | None]]:
    """Who holds the case, and who holds its pending contacts."""
    with wiring.engine().connect() as conn:
        case = conn.execute(select(CASES.c.assigned_staff_id).where(CASES.c.id == case_id)).scalar_one()
        contacts = set(
            conn.execute(
                select(CONTACTS.c.assigned_staff_id).where(
                    CONTACTS.c.case_id == case_id, CONTACTS.c.status == "pending"
                )
            ).scalars()
        )
    return case, contacts


def pending(case_id: int) -> dict[str, datetime]:
    with wiring.engine().connect() as conn:
        rows = conn.execute(
            select(CONTACTS.c.kind, CONTACTS.c.due_at).where(
                CONTACTS.c.case_id == case_id, CONTACTS.c.status == "pending"
            )
        ).all()
    return {r.kind: r.due_at if isinstance(r.due_at, datetime) else datetime.fromisoformat(r.due_at) for r in rows}


def test_a_case_overridden_into_another_queue_goes_to_a_worker_of_that_queue_with_its_check_ins(
    configured: str,
) -> None:
    staff("CH-POL-01", "police_investigation")
    staff("CH-UNI-01", "unit")
    with wiring.engine().begin() as conn:  # a case nobody can take: the night's summary tells ops, not the override
        open_case(
            conn,
            "CH-2026-000002",
            tier="standard",
            queue="victim_advocacy",
            opened_at=datetime(2026, 11, 2, tzinfo=UTC),
        )
    case_id = a_case("police_investigation", date(2026, 11, 2))
    assert holders(case_id) == (staff_id("CH-POL-01"), {staff_id("CH-POL-01")})
    assert "perpetrator_checkin" not in pending(case_id)

    out = runner.invoke(app, ["case", "override", REF, "--queue", "unit", "--by", "DI Example", "--reason", "risk"])

    assert out.exit_code == 0, out.output
    assert "assigned to CH-UNI-01" in out.output
    unit = staff_id("CH-UNI-01")
    assert holders(case_id) == (unit, {unit})  # the police worker no longer holds a unit case
    assert "perpetrator_checkin" in pending(case_id)  # at once, not at the next night
    with wiring.engine().connect() as conn:
        ops = list(conn.execute(select(ALERTS.c.dedupe_key).where(ALERTS.c.kind == "ops")).scalars())
    assert ops == ["ops:unassigned:2026-11-02:night"]


def test_a_worker_moved_to_another_queue_hands_on_their_cases_and_keeps_what_the_update_does_not_name(
    configured: str,
) -> None:
    staff("CH-POL-01", "police_investigation", capacity=5, slack_user_id="U0POL1", name="Worker Name Marker")
    staff("CH-POL-02", "police_investigation")
    case_id = a_case("police_investigation", date(2026, 11, 2))
    assert holders(case_id)[0] == staff_id("CH-POL-01")

    moved = runner.invoke(app, ["staff", "add", "CH-POL-01", "--queue", "unit", "--force", "cheshire", "--by", "Ops"])

    assert moved.exit_code == 0, moved.output
    assert "1 case(s) handed on; 1 case(s) given to a worker, 0 open case(s) in all still without one" in moved.output
    assert holders(case_id) == (staff_id("CH-POL-02"), {staff_id("CH-POL-02")})
    with wiring.engine().connect() as conn:
        kept = conn.execute(
            select(STAFF.c.slack_user_id, STAFF.c.name_enc, STAFF.c.capacity, STAFF.c.role, STAFF.c.queue).where(
                STAFF.c.staff_code == "CH-POL-01"
            )
        ).one()
    assert (kept.slack_user_id, kept.capacity, kept.role, kept.queue) == ("U0POL1", 5, "worker", "unit")
    assert wiring.cipher().decrypt("staff", "name_enc", kept.name_enc) == "Worker Name Marker"
    assert "Worker Name Marker" not in moved.output


def test_a_worker_made_supervisor_hands_on_their_open_cases(configured: str) -> None:
    """Only workers are given cases: one who becomes a supervisor must not keep cases nobody else sees."""
    staff("CH-UNI-01", "unit")
    case_id = a_case("unit", date(2026, 11, 2))
    assert holders(case_id)[0] == staff_id("CH-UNI-01")

    staff("CH-UNI-01", "unit", role="supervisor")

    assert holders(case_id) == (None, {None})
    [update] = audit_events("staff_update")
    assert update["details"]["role"] == "supervisor" and update["details"]["cases_released"] == 1


def test_a_worker_who_moves_keeps_their_closed_cases_and_counts_only_the_open_ones_released(
    configured: str,
) -> None:
    """Who worked a closed case stays on its record; only open cases are handed on."""
    staff("CH-UNI-09", "unit", capacity=2)
    closed = a_case("unit", date(2026, 11, 2))
    out = runner.invoke(app, ["case", "close", REF, "--outcome", "risk_reduced", "--by", "DI Example"])
    assert out.exit_code == 0, out.output
    with wiring.engine().begin() as conn:
        still_open = open_case(
            conn, "CH-2026-000002", tier="high", queue="unit", opened_at=datetime(2026, 11, 3, 9, tzinfo=UTC)
        )
        schedule(conn, policy=get_policy(), run_date=date(2026, 11, 3), actor="test", timezone=TZ)
    worker = staff_id("CH-UNI-09")
    assert holders(closed)[0] == holders(still_open)[0] == worker

    change = staff("CH-UNI-09", "probation")

    assert change.released == 1
    assert holders(closed)[0] == worker
    assert holders(still_open) == (None, {None})
    [update] = audit_events("staff_update")
    assert update["details"]["cases_released"] == 1


def test_a_name_or_slack_id_given_on_an_update_is_stored_and_what_is_not_given_is_kept(configured: str) -> None:
    """A worker's new name or Slack id, once given, is what the staff table and the audit log hold."""
    staff("CH-UNI-01", "unit", slack_user_id="U0OLD", name="Old Name Marker")

    staff("CH-UNI-01", "unit", name="New Name Marker")  # the name only
    staff("CH-UNI-01", "unit", slack_user_id="U0NEW")  # the Slack id only

    with wiring.engine().connect() as conn:
        row = conn.execute(
            select(STAFF.c.slack_user_id, STAFF.c.name_enc).where(STAFF.c.staff_code == "CH-UNI-01")
        ).one()
    assert row.slack_user_id == "U0NEW"
    assert wiring.cipher().decrypt("staff", "name_enc", row.name_enc) == "New Name Marker"
    updates = audit_events("staff_update")
    assert len(updates) == 2 and updates[1]["details"]["slack_user_id"] == "U0NEW"
    assert "Marker" not in str(updates)


def test_a_worker_already_deactivated_is_refused_and_audited_once(configured: str) -> None:
    """Deactivating twice is an operator's slip: the second is refused, not recorded as a second leaving."""
    from iasu.errors import OperatorError
    from tasks.staff import deactivate_staff

    staff("CH-UNI-01", "unit")
    with wiring.engine().begin() as conn:
        assert deactivate_staff(conn, "CH-UNI-01", by="Ops", reason="left", cipher=wiring.cipher()) == 0

    with pytest.raises(OperatorError, match="no active staff member CH-UNI-01"), wiring.engine().begin() as conn:
        deactivate_staff(conn, "CH-UNI-01", by="Ops", reason="left", cipher=wiring.cipher())

    assert len(audit_events("staff_deactivate")) == 1


def test_a_worker_may_be_given_no_room_or_the_largest_caseload_but_no_more(configured: str) -> None:
    """Capacity 0 keeps a worker on the roster (on leave, say) without giving them cases."""
    from iasu.errors import OperatorError
    from tasks.staff import MAX_CAPACITY

    staff("CH-UNI-01", "unit", capacity=0)
    staff("CH-UNI-02", "probation", capacity=MAX_CAPACITY)
    with pytest.raises(OperatorError, match="capacity must be from 0 to"):
        staff("CH-UNI-03", "unit", capacity=MAX_CAPACITY + 1)

    case_id = a_case("unit", date(2026, 11, 2))

    assert holders(case_id) == (None, {None})
    with wiring.engine().connect() as conn:
        kept = {r.staff_code: r.capacity for r in conn.execute(select(STAFF.c.staff_code, STAFF.c.capacity))}
    assert kept == {"CH-UNI-01": 0, "CH-UNI-02": MAX_CAPACITY}


def test_check_ins_of_a_case_that_comes_back_to_the_unit_start_again_from_that_night(configured: str) -> None:
    from tasks.cases import override_case

    staff("CH-UNI-01", "unit")
    staff("CH-POL-01", "police_investigation")
    opened, policy = date(2026, 10, 23), get_policy()
    case_id = a_case("unit", opened)
    with wiring.engine().begin() as conn:
        done = OutcomeReport(REF, "perpetrator_checkin", datetime(2026, 10, 24, 10, tzinfo=UTC), "completed")
        assert record_outcomes(conn, [done], origin="test", actor="test", policy=policy, timezone=TZ).applied == 1
        schedule(conn, policy=policy, run_date=date(2026, 10, 24), actor="test", timezone=TZ)
    for queue, night in (("police_investigation", date(2026, 10, 25)), ("unit", date(2026, 11, 20))):
        with wiring.engine().begin() as conn:
            override_case(
                conn, REF, queue=Queue(queue), tier=None, by="DI Example", reason="r", cipher=wiring.cipher(),
                policy=policy, timezone=TZ,
            )  # fmt: skip
            schedule(conn, policy=policy, run_date=night, actor="test", timezone=TZ)

    due = pending(case_id)["perpetrator_checkin"]

    # From the night it came back (Fri 20 Nov), not a week after the check-in of 24 October (2 November).
    assert due.astimezone(UTC).date() >= date(2026, 11, 20)


def test_an_outcome_dated_before_its_case_opened_is_refused_and_a_new_date_before_the_contact_too(
    configured: str,
) -> None:
    staff("CH-UNI-01", "unit")
    case_id = a_case("unit", date(2026, 11, 2))
    before = pending(case_id)
    with wiring.engine().begin() as conn:
        typo = OutcomeReport(REF, "victim_first_contact", datetime(2025, 11, 3, 10, tzinfo=UTC), "completed")
        result = record_outcomes(conn, [typo], origin="test", actor="test", policy=get_policy(), timezone=TZ)
    assert result.rejected == {0: "happened_since_opened"} and result.applied == 0

    typed = runner.invoke(app, [*RECORD_FIRST, "--at", "2025-11-03T10:00", "--outcome", "completed"])
    moved = runner.invoke(
        app, [*RECORD_FIRST, "--at", "2026-11-03T10:00", "--outcome", "rescheduled", "--new-date", "2026-01-28"]
    )

    assert typed.exit_code == 2 and f"--at is before case {REF} was opened" in typed.output
    parked = runner.invoke(
        app, [*RECORD_FIRST, "--at", "2026-11-03T10:00", "--outcome", "rescheduled", "--new-date", "2030-11-03"]
    )
    assert moved.exit_code == 2 and "--new-date is before the day of --at" in moved.output
    assert parked.exit_code == 2 and "--new-date is more than 366 days after --at" in parked.output
    assert pending(case_id) == before


def test_a_move_of_a_year_and_a_day_is_accepted_one_day_more_refused_and_a_time_to_come_refused(
    configured: str,
) -> None:
    """366 days on (a leap year's worth) is the most a contact moves; --at is when it happened, never later than now."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    staff("CH-UNI-01", "unit")
    case_id = a_case("unit", date(2026, 11, 2))
    before = pending(case_id)
    at, outcome = ["--at", "2026-11-03T10:00"], ["--outcome", "rescheduled"]
    tomorrow = (datetime.now(ZoneInfo(TZ)) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    too_far = runner.invoke(app, [*RECORD_FIRST, *at, *outcome, "--new-date", "2027-11-05"])  # 367 days on
    to_come = runner.invoke(app, [*RECORD_FIRST, "--at", tomorrow, "--outcome", "completed"])
    assert too_far.exit_code == 2 and "--new-date is more than 366 days after --at" in too_far.output
    assert to_come.exit_code == 2 and "--at is in the future" in to_come.output
    assert pending(case_id) == before and audit_events("contact_outcome") == []

    furthest = runner.invoke(app, [*RECORD_FIRST, *at, *outcome, "--new-date", "2027-11-04"])  # 366 days on
    assert furthest.exit_code == 0, furthest.output
    assert pending(case_id)["victim_first_contact"].date() == date(2027, 11, 4)
    assert len(audit_events("contact_outcome")) == 1


def test_a_missed_contact_alert_still_waiting_when_its_case_closes_is_withdrawn_not_sent(
    configured: str, tmp_path: Path
) -> None:
    from tasks.cases import close_case
    from tasks.monitor import monitor

    staff("CH-UNI-01", "unit")
    a_case("unit", date(2026, 11, 2))
    policy = get_policy()
    with wiring.engine().begin() as conn:
        assert monitor(conn, policy=policy, run_date=date(2026, 11, 10), timezone=TZ).queued >= 1
        close_case(conn, REF, outcome=policy.outcomes[0], by="DI Example", reason=None, policy=policy,
                   cipher=wiring.cipher())  # fmt: skip

    out = runner.invoke(app, ["alert", "dispatch", "--json"])

    with wiring.engine().connect() as conn:
        statuses = set(conn.execute(select(ALERTS.c.status).where(ALERTS.c.kind == "missed_contact")).scalars())
    assert statuses == {"withdrawn"} and json.loads(out.stdout.splitlines()[-1])["withdrawn"] >= 1
    assert REF not in out.output


def test_alert_dispatch_json_prints_one_json_object_on_stdout_in_a_dry_run(configured: str) -> None:
    from tasks.monitor import monitor

    staff("CH-UNI-01", "unit")
    a_case("unit", date(2026, 11, 2))
    with wiring.engine().begin() as conn:
        assert monitor(conn, policy=get_policy(), run_date=date(2026, 11, 10), timezone=TZ).queued >= 1

    out = runner.invoke(app, ["alert", "dispatch", "--json"])

    assert out.exit_code == 0 and json.loads(out.stdout)["dry_run"] >= 1  # the whole of stdout is the object
    assert "[dry run]" in out.stderr  # the messages themselves are still shown


def test_a_missed_contact_alert_whose_deadline_moved_before_it_went_is_withdrawn(configured: str) -> None:
    """Slack was down when the first contact was missed; the advocate then tried and got no answer, which
    moves the deadline: the old miss is not told, and the new deadline, if missed, has its own alert."""
    from tasks.monitor import monitor

    staff("CH-UNI-01", "unit")
    case_id = a_case("unit", date(2026, 11, 2))
    policy = get_policy()
    with wiring.engine().begin() as conn:
        assert monitor(conn, policy=policy, run_date=date(2026, 11, 10), timezone=TZ).queued >= 1
        tried = OutcomeReport(
            REF, "victim_first_contact", datetime(2026, 11, 10, 18, tzinfo=UTC), "attempted_no_answer"
        )
        assert record_outcomes(conn, [tried], origin="test", actor="test", policy=policy, timezone=TZ).applied == 1
    moved_to = pending(case_id)["victim_first_contact"]

    out = runner.invoke(app, ["alert", "dispatch", "--json"])

    with wiring.engine().connect() as conn:
        rows = conn.execute(
            select(ALERTS.c.status, ALERTS.c.payload).where(
                ALERTS.c.kind == "missed_contact", ALERTS.c.case_id == case_id
            )
        ).all()
    first_contact = [r.status for r in rows if r.payload["kind"] == "victim_first_contact"]
    assert first_contact == ["withdrawn"] and moved_to.astimezone(UTC).date() > date(2026, 11, 10)
    assert json.loads(out.stdout.splitlines()[-1])["withdrawn"] >= 1


def test_a_new_high_risk_announcement_names_its_case_in_the_outbox(configured: str, tmp_path: Path) -> None:
    from tests.support import night_without_prefect, write_days

    write_days(tmp_path / "inbox", date(2026, 11, 2), per_day=40, dirty=0.0, seed=3)
    night_without_prefect(tmp_path / "inbox", date(2026, 11, 2), tmp_path / "docs")

    out = runner.invoke(app, ["alert", "list", "--json"])

    announced = [a for a in json.loads(out.stdout) if a["kind"] == "new_high_risk"]
    assert announced and all(a["case_ref"] for a in announced)


def test_a_case_overridden_into_a_queue_with_no_room_is_left_waiting_and_ops_is_told(configured: str) -> None:
    staff("CH-POL-01", "police_investigation")
    case_id = a_case("police_investigation", date(2026, 11, 2))

    out = runner.invoke(app, ["case", "override", REF, "--queue", "unit", "--by", "DI Example", "--reason", "risk"])

    assert out.exit_code == 0, out.output
    assert "no worker of that queue has room: left unassigned (ops told)" in out.output
    assert holders(case_id) == (None, {None})
    with wiring.engine().connect() as conn:
        ops = list(conn.execute(select(ALERTS.c.dedupe_key).where(ALERTS.c.kind == "ops")).scalars())
    assert any(key.endswith(f":override:{REF}") for key in ops)


def test_a_closed_case_frees_its_workers_place_and_keeps_its_done_contacts(configured: str) -> None:
    staff("CH-UNI-09", "unit", capacity=1)
    opened = date(2026, 11, 2)
    first = a_case("unit", opened)
    assert holders(first)[0] == staff_id("CH-UNI-09")
    assert [e["entity_id"] for e in audit_events("assign")] == [REF]  # who was given the case is on the record
    at = datetime(2026, 11, 3, 11, tzinfo=UTC)
    with wiring.engine().begin() as conn:
        report = OutcomeReport(case_ref=REF, kind="victim_first_contact", happened_at=at, outcome="completed")
        assert record_outcomes(conn, [report], origin="test", actor="test", policy=get_policy(), timezone=TZ).applied
    closed = runner.invoke(app, ["case", "close", REF, "--outcome", "risk_reduced", "--by", "DI Example"])
    assert closed.exit_code == 0, closed.output
    with wiring.engine().connect() as conn:
        case = conn.execute(select(CASES.c.status, CASES.c.outcome, CASES.c.closed_at).where(CASES.c.id == first)).one()
    assert (case.status, case.outcome) == ("closed", "risk_reduced") and case.closed_at is not None
    with wiring.engine().begin() as conn:
        second = open_case(conn, "CH-2026-000002", tier="high", queue="unit", opened_at=at)
        schedule(conn, policy=get_policy(), run_date=date(2026, 11, 4), actor="test", timezone=TZ)
    # The worker's one place is free again: a closed case is not part of their load.
    assert holders(second)[0] == staff_id("CH-UNI-09")
    # What was done before the case closed stays done; only what was still pending is called off.
    with wiring.engine().connect() as conn:
        kept = conn.execute(select(CONTACTS.c.kind, CONTACTS.c.status).where(CONTACTS.c.case_id == first)).all()
    assert ("victim_first_contact", "done") in kept and {s for _k, s in kept} <= {"done", "cancelled"}


def test_a_roster_is_loaded_in_the_same_statements_whatever_its_size_and_each_change_audited(
    configured: str, tmp_path: Path
) -> None:
    from sqlalchemy import event

    from tasks.staff import STAFF_FILE_COLUMNS, load_staff_file

    def load(first: int, count: int, queue: str) -> int:
        """Statements sent to the database to load a roster of `count` workers from CH-T-<first>."""
        path = tmp_path / "roster.csv"
        rows = [f"CH-T-{n:03d},Marker {n},,{queue},cheshire,5,U{n:03d}" for n in range(first, first + count)]
        path.write_text("\n".join([",".join(STAFF_FILE_COLUMNS), *rows]) + "\n", encoding="utf-8")
        sent: list[str] = []
        engine = wiring.engine()

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            with engine.begin() as conn:
                assert load_staff_file(conn, path, cipher=wiring.cipher(), actor="test")[0] == count
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        return len(sent)

    assert load(0, 10, "unit") == load(100, 100, "unit")  # new workers
    assert load(0, 10, "probation") == load(100, 100, "probation")  # each one moved
    assert load(0, 10, "probation") == load(100, 100, "probation")  # as recorded: nothing written
    case_id = a_case("probation", date(2026, 11, 2))
    holder = holders(case_id)[0]
    assert holder is not None
    load(0, 10, "unit")  # the holder is among them or among the next: moved back, they hand their case on
    load(100, 100, "unit")

    added, updated = audit_events("staff_add"), audit_events("staff_update")
    assert len(added) == 110 and len(updated) == 220
    with wiring.engine().connect() as conn:
        holder_code = conn.execute(select(STAFF.c.staff_code).where(STAFF.c.id == holder)).scalar_one()
    released = [(e["entity_id"], e["details"]["cases_released"]) for e in updated if "cases_released" in e["details"]]
    assert released == [(holder_code, 1)]
    assert holders(case_id) == (None, {None})  # for the next assignment to give on
    assert "Marker" not in str(added + updated)


def test_alert_dispatch_exits_1_when_slack_stops_it_and_leaves_the_alerts_pending(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.monitor import monitor
    from tests.slack_server import FakeSlack

    staff("CH-UNI-01", "unit")
    a_case("unit", date(2026, 11, 2))
    with wiring.engine().begin() as conn:
        assert monitor(conn, policy=get_policy(), run_date=date(2026, 11, 10), timezone=TZ).queued >= 1
    with FakeSlack() as fake:
        fake.mode = "down"
        monkeypatch.setenv("IASU_SLACK_TOKEN", "xoxb-test")
        monkeypatch.setenv("IASU_SLACK_BASE_URL", fake.base_url)
        wiring.reset()
        out = runner.invoke(app, ["alert", "dispatch"])

    assert out.exit_code == 1, out.output  # for the scripts and schedulers that run it: nothing was delivered
    assert "stopped early" in out.output
    with wiring.engine().connect() as conn:
        assert set(conn.execute(select(ALERTS.c.status)).scalars()) == {"pending"}
