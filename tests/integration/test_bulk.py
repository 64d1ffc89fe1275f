"""The bulk update on SQLite and PostgreSQL: only the rows named change, only in the columns given."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from iasu import wiring
from models import Case
from tasks.bulk import one_of, update_rows
from tests.support import open_case

CASES = Case.__table__  # type: ignore[attr-defined]
OPENED = datetime(2026, 11, 2, 17, tzinfo=UTC)
POLICE = "police_investigation"
TEXT = 'tab\there, "quoted", back\\slash, new\nline, café'


@pytest.fixture
def cases(configured: str) -> list[int]:
    """Three open standard cases, ids ascending."""
    reasons = [{"rule": "sdash_band", "text": "standard", "inputs": {}}]
    with wiring.engine().begin() as conn:
        return [
            open_case(conn, f"CH-2026-{n:06d}", tier="standard", queue=POLICE, opened_at=OPENED, reasons=reasons)
            for n in (1, 2, 3)
        ]


def _state() -> list[tuple[object, ...]]:
    c = CASES.c
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(c.id, c.tier, c.reasons, c.turned_away_for_capacity, c.queue).order_by(c.id))
        return [tuple(row) for row in rows]


def test_only_the_rows_and_columns_given_change(cases: list[int]) -> None:
    first, _, third = cases
    before = _state()
    reasons = [{"rule": "serial_perpetrator_linked", "text": TEXT, "inputs": {"revealed_by_referral_id": 7}}]
    with wiring.engine().begin() as conn:
        # A generator will do, as for the inserts; the key may come anywhere among the names.
        update_rows(
            conn,
            CASES,
            "id",
            (
                {"tier": "high", "id": case_id, "reasons": reasons, "turned_away_for_capacity": True}
                for case_id in (third, first)
            ),
        )
    after = _state()
    assert after[1] == before[1]
    for case_id, row in ((first, after[0]), (third, after[2])):
        assert row == (case_id, "high", reasons, True, POLICE)


def test_nothing_to_update_runs_nothing(cases: list[int]) -> None:
    before = _state()
    with wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", iter([]))
    assert _state() == before


def test_two_updates_in_one_transaction(cases: list[int]) -> None:
    # The staging table is dropped after each update, so a second one in the same transaction can stage again.
    with wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", [{"id": cases[0], "tier": "medium"}])
        update_rows(conn, CASES, "id", [{"id": cases[1], "tier": "high"}])
    assert [row[1] for row in _state()] == ["medium", "high", "standard"]


def test_a_condition_narrows_the_rows_a_key_names(cases: list[int]) -> None:
    first, second, third = cases
    with wiring.engine().begin() as conn:
        # The queue names all three cases; the condition leaves the second as it was.
        update_rows(conn, CASES, "queue", [{"queue": POLICE, "tier": "high"}], where=CASES.c.id != second)
    assert [(row[0], row[1]) for row in _state()] == [(first, "high"), (second, "standard"), (third, "high")]


def test_a_naive_time_is_refused_on_both_databases(cases: list[int]) -> None:
    # COPY would let the server read it in its session's time zone; the column type refuses it on SQLite.
    before = _state()
    with pytest.raises((ValueError, StatementError), match="naive datetime"), wiring.engine().begin() as conn:
        update_rows(conn, CASES, "id", [{"id": cases[0], "opened_at": datetime(2026, 11, 2, 17)}])
    assert _state() == before


def test_one_of_takes_more_values_than_a_statement_takes_parameters(cases: list[int]) -> None:
    # 70,000 values: PostgreSQL refuses an IN list of them (65,535 parameters at most in one statement).
    ids = [*range(10**6, 10**6 + 70_000), cases[1]]
    refs = [*(f"XX-2026-{n:06d}" for n in range(70_000)), "CH-2026-000003"]
    full = "CH-2026-000004-ABCDE"  # as long as a case reference may be (20)
    with wiring.engine().begin() as conn:
        open_case(conn, full, tier="standard", queue=POLICE, opened_at=OPENED)
    with wiring.engine().connect() as conn:
        found = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.id, ids))).scalars().all()
        named = conn.execute(select(CASES.c.case_ref).where(one_of(conn, CASES.c.case_ref, refs))).scalars().all()
        none = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.id, []))).scalars().all()
        # A longer value is not cut to the column's length and matched by what is left.
        longer = conn.execute(select(CASES.c.id).where(one_of(conn, CASES.c.case_ref, [f"{full}Z"]))).all()
    assert (found, named, none, longer) == ([cases[1]], ["CH-2026-000003"], [], [])
