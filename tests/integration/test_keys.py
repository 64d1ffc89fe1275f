"""A key other than the database's is refused before it writes; reasons the audit log needs are not blank."""

from __future__ import annotations

import base64
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from iasu import wiring
from iasu.cli import app
from iasu.errors import OperatorError
from iasu.keycheck import KEY_CHECKS
from models import AuditEvent, Case, Person, Staff
from tests.conftest import KeptStates
from tests.support import night_without_prefect, write_days

DAY = date(2026, 11, 2)
PEOPLE = Person.__table__  # type: ignore[attr-defined]
AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
runner = CliRunner()
OTHER_KEY = base64.urlsafe_b64encode(b"x" * 32).decode()


@pytest.fixture
def stored(configured: str, tmp_path: Path, kept_states: KeptStates) -> Path:
    """A night's people stored under the test keys, and the keys' checks recorded by a night's start."""
    inbox = tmp_path / "inbox"
    write_days(inbox, DAY, per_day=20, dirty=0.0, seed=4)

    def start_and_take_in() -> None:
        wiring.ready_for_night(inbox)
        night_without_prefect(inbox, DAY, tmp_path / "docs")

    kept_states.restore("keys-stored", start_and_take_in)
    return inbox


def a_case_ref() -> str:
    with wiring.engine().connect() as conn:
        return str(conn.execute(select(func.min(CASES.c.case_ref))).scalar_one())


def people() -> int:
    with wiring.engine().connect() as conn:
        return int(conn.execute(select(func.count()).select_from(PEOPLE)).scalar_one())


@pytest.mark.parametrize("variable", ["IASU_ENCRYPTION_KEY", "IASU_BLIND_INDEX_KEY"])
def test_a_night_with_another_key_is_refused_before_it_starts(
    stored: Path, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, OTHER_KEY)
    wiring.reset()

    with pytest.raises(OperatorError, match=f"{variable} is not the key this database"):
        wiring.ready_for_night(stored)


def test_commands_with_another_encryption_key_say_so_in_one_line_and_write_nothing(
    stored: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_ref = a_case_ref()
    monkeypatch.setenv("IASU_ENCRYPTION_KEY", OTHER_KEY)
    wiring.reset()
    before = people()

    outs = [
        runner.invoke(app, ["case", "show", case_ref, "--reveal", "--by", "DI Example", "--reason", "safety check"]),
        runner.invoke(app, ["staff", "add", "CH-UNI-09", "--queue", "unit", "--force", "cheshire", "--name", "N"]),
        runner.invoke(app, ["linkage", "reindex", "--by", "Ops"]),
    ]

    for out in outs:
        assert out.exit_code == 2, out.output
        assert "IASU_ENCRYPTION_KEY is not the key this database" in out.output
        assert "Traceback" not in out.output
    assert people() == before


def test_the_first_use_on_a_database_written_before_the_check_tries_the_key_on_what_is_stored(
    stored: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wiring.engine().begin() as conn:
        conn.execute(delete(KEY_CHECKS))  # as after upgrading a database that holds people
    right = os.environ["IASU_ENCRYPTION_KEY"]
    monkeypatch.setenv("IASU_ENCRYPTION_KEY", OTHER_KEY)
    wiring.reset()
    with pytest.raises(OperatorError, match="IASU_ENCRYPTION_KEY is not the key"):
        wiring.ready_for_night(stored)

    monkeypatch.setenv("IASU_ENCRYPTION_KEY", right)
    wiring.reset()
    wiring.ready_for_night(stored)  # the right key opens a stored surname, and is kept from then on
    with wiring.engine().connect() as conn:
        assert set(conn.execute(select(KEY_CHECKS.c.name)).scalars()) == {"encryption", "blind_index"}


def test_the_first_use_on_a_database_holding_only_staff_tries_the_key_on_a_staff_name(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staff are loaded before the first referral: a wrong key kept then would make their names unreadable.
    add = ["staff", "add", "CH-UNI-09", "--queue", "unit", "--force", "cheshire", "--name", "Worker Example"]
    assert runner.invoke(app, add).exit_code == 0
    with wiring.engine().begin() as conn:
        conn.execute(delete(KEY_CHECKS))  # as after upgrading a database that holds staff and no people yet
    monkeypatch.setenv("IASU_ENCRYPTION_KEY", OTHER_KEY)
    wiring.reset()

    out = runner.invoke(app, ["staff", "add", "CH-UNI-10", "--queue", "unit", "--force", "cheshire", "--name", "N"])

    assert out.exit_code == 2 and "IASU_ENCRYPTION_KEY is not the key this database" in out.output, out.output
    with wiring.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(KEY_CHECKS)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(Staff.__table__)).scalar_one() == 1  # type: ignore[attr-defined]


def test_a_reveal_a_release_or_an_override_with_a_blank_reason_is_refused(stored: Path) -> None:
    case_ref = a_case_ref()

    reveal = runner.invoke(app, ["case", "show", case_ref, "--reveal", "--by", "DI Example", "--reason", "   "])
    release = runner.invoke(app, ["batch", "release", "1", "--by", "Ops", "--reason", " "])
    override = runner.invoke(app, ["case", "override", case_ref, "--queue", "unit", "--by", "Ops", "--reason", "  "])

    assert reveal.exit_code == 2 and "--reveal needs --by and --reason" in reveal.output
    assert release.exit_code == 2 and "a release needs a reason" in release.output
    assert override.exit_code == 2 and "an override needs a reason" in override.output
    with wiring.engine().connect() as conn:
        reveals = conn.execute(
            select(func.count()).select_from(AUDIT).where(AUDIT.c.action.in_(["reveal", "release", "override"]))
        ).scalar_one()
    assert reveals == 0


HEADER = "staff_code,name,role,queue,force,capacity,slack_user_id\n"


@pytest.mark.parametrize(
    ("row", "said"),
    [
        ("CH-UNI-07,X\n", "line 2: not 7 fields"),
        ("CH-UNI-09,Jane,Surname Marker,unit,cheshire,20,U9\n", "line 2: unknown role"),  # a name split in two
        ("CH-UNI-08,Zo\xe9,,unit,cheshire,,\n", "not UTF-8"),
        (" ,Name Marker,,unit,cheshire,,\n", "line 2: a staff id must not be blank"),
        ("CH-UNI-12,,worker,Name Marker,cheshire,,\n", "line 2: unknown queue; one of: unit, "),
        ("CH-UNI-13,,worker,unit,Name Marker,,\n", "line 2: unknown force; one of: cheshire, "),
        ("CH-UNI-14,,worker,unit,cheshire,Marker,\n", "line 2: capacity is not a whole number"),
        ("CH-UNI-15,,worker,unit,cheshire,-3,\n", "line 2: capacity must be from 0 to"),
        (  # one worker twice: which line is meant is not for the loader to guess
            "CH-UNI-16,Name Marker,,unit,cheshire,,\nCH-UNI-16,,,probation,cheshire,,\n",
            "line 3: the same staff id as line 2; give each worker once",
        ),
        ("CH-UNI-10,Name Marker" + "x" * 140_000 + ",,unit,cheshire,,\n", "cannot be read as CSV (field larger"),
    ],
)
def test_a_staff_file_with_a_bad_row_is_refused_in_one_line_without_its_cells(
    configured: str, tmp_path: Path, row: str, said: str
) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes((HEADER + row).encode("cp1252"))

    out: Any = runner.invoke(app, ["staff", "load", str(path)])

    assert out.exit_code == 2 and said in out.output
    assert "Traceback" not in out.output and "Marker" not in out.output
    with wiring.engine().connect() as conn:  # nothing of the file is kept, its good lines included
        assert conn.execute(select(func.count()).select_from(Staff.__table__)).scalar_one() == 0  # type: ignore[attr-defined]


def test_a_staff_file_saved_as_a_spreadsheets_csv_utf8_is_read_despite_its_byte_order_mark(
    configured: str, tmp_path: Path
) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes((HEADER + "CH-UNI-11,,worker,unit,cheshire,5,\n").encode("utf-8-sig"))

    out: Any = runner.invoke(app, ["staff", "load", str(path)])

    assert out.exit_code == 0 and "1 staff row(s) loaded" in out.output, out.output
