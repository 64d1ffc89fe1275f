"""The outbox insert on SQLite and PostgreSQL: existing keys skipped, ids in the order the alerts were given."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from iasu import wiring
from models import Alert, Case, Contact
from tasks.outbox import outbox_row, queue_alert
from tests.support import open_case

ALERTS = Alert.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
DUE = datetime(2026, 11, 2, 17, tzinfo=UTC)
NOTE = 'tab\there, "quoted", back\\slash, new\nline, café'


@pytest.fixture
def contacts(configured: str) -> list[int]:
    """Four pending contacts of one case, ids ascending."""
    with wiring.engine().begin() as conn:
        case_id = open_case(conn, "CH-2026-000001", tier="high", queue="unit", opened_at=DUE)
        return [
            conn.execute(
                insert(CONTACTS)
                .values(
                    case_id=case_id,
                    kind=kind,
                    due_at=DUE,
                    original_due_at=DUE,
                    status="pending",
                    attempts=0,
                    created_at=DUE,
                )
                .returning(CONTACTS.c.id)
            ).scalar_one()
            for kind in ("victim_first_contact", "victim_followup", "perpetrator_checkin", "other")
        ]


def missed(contact_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
    # A generator, as the monitor passes: the outbox must not need the rows up front.
    for n in contact_ids:
        yield outbox_row("missed_contact", f"missed:{n}:L1", "C0UNIT", {"n": n, "note": NOTE}, level=1, contact_id=n)


def queue(rows: Iterable[dict[str, Any]]) -> int:
    with wiring.engine().begin() as conn:
        return queue_alert(conn, rows)


def queued() -> list[tuple[str, dict[str, Any]]]:
    with wiring.engine().connect() as conn:
        return [(r.dedupe_key, r.payload) for r in conn.execute(select(ALERTS).order_by(ALERTS.c.id))]


def test_ids_follow_the_order_given_and_existing_keys_are_skipped(contacts: list[int]) -> None:
    c1, c2, c3, c4 = contacts
    ops = outbox_row("ops", "ops:test", "C0OPS", {"event": "test"}, level=None, contact_id=None)
    # Out of contact order (as due order usually is), with an alert that has no contact in the middle.
    assert queue([*missed([c3, c1]), ops, *missed([c2])]) == 4
    # Existing keys between new ones; one new key twice.
    assert queue(missed([c2, c4, c1, c4])) == 1
    assert queue(missed([])) == 0
    got = queued()
    assert [key for key, _ in got] == [
        f"missed:{c3}:L1",
        f"missed:{c1}:L1",
        "ops:test",
        f"missed:{c2}:L1",
        f"missed:{c4}:L1",
    ]
    assert got[0][1] == {"n": c3, "note": NOTE}


def test_a_failure_while_the_alerts_are_built_queues_nothing(contacts: list[int]) -> None:
    def failing() -> Iterator[dict[str, Any]]:
        yield from missed(contacts[:2])
        raise RuntimeError("escalation rule failed")

    with pytest.raises(RuntimeError, match="escalation rule failed"):
        queue(failing())
    assert queued() == []
    assert queue(missed(contacts[:1])) == 1  # the connection went back to the pool usable


def test_an_alert_the_database_refuses_raises_as_any_statement_would(contacts: list[int]) -> None:
    no_channel = next(missed(contacts[2:3])) | {"channel": None}  # every alert goes somewhere
    with pytest.raises(IntegrityError):
        queue([*missed(contacts[:2]), no_channel])
    assert queued() == []


def test_a_row_copied_in_that_the_database_refuses_raises_as_any_statement_would(contacts: list[int]) -> None:
    from tasks.bulk import copy_insert

    with wiring.engine().connect() as conn:
        case_id = conn.execute(select(CONTACTS.c.case_id).where(CONTACTS.c.id == contacts[0])).scalar_one()
    second_pending = {
        "case_id": case_id,
        "kind": "victim_first_contact",  # already pending for this case: one pending contact per kind
        "due_at": DUE,
        "original_due_at": DUE,
        "status": "pending",
        "attempts": 0,
        "created_at": DUE,
    }
    # The CLI and callers handle SQLAlchemy's errors; COPY must not surface the driver's own instead.
    with pytest.raises(IntegrityError), wiring.engine().begin() as conn:
        copy_insert(conn, CONTACTS, iter([second_pending]))


@pytest.mark.parametrize(
    ("kind", "level", "queue_name", "force", "channel"),
    [
        ("ops", None, None, None, "C0IASUOPS"),
        ("new_high_risk", None, None, None, "C0IASUUNIT"),
        ("digest", None, "probation", None, "C0IASUPROBATION"),
        ("missed_contact", 1, "probation", "cheshire", "C0IASUPROBATION"),
        ("missed_contact", 2, "probation", "cheshire", "C0CHSUPER"),
        ("digest", None, "no_such_queue", None, None),
        ("missed_contact", 1, "probation", "no_such_force", None),
    ],
)
def test_an_alert_put_back_is_sent_where_the_policy_now_sends_its_kind(
    kind: str, level: int | None, queue_name: str | None, force: str | None, channel: str | None
) -> None:
    # An alert that failed for a wrong channel id must go to the mended one when put back, whatever its kind;
    # None keeps the stored channel where the policy cannot say.
    from iasu.policy import load_policy
    from tasks.outbox import channel_now

    assert channel_now(kind, level, queue_name, force, load_policy(None)) == channel
