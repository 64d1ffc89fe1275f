"""Working cases: override, reveal and close are audited; closing frees a unit place for the next night."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from iasu import wiring
from iasu.cli import app
from models import Alert, Case
from tests.conftest import KeptStates
from tests.support import audit_events, dump_database, night_without_prefect, policy_with, write_days

DAY = date(2026, 11, 9)
ALERTS = Alert.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
runner = CliRunner()


@pytest.fixture
def routed(configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept_states: KeptStates) -> dict[str, Any]:
    policy = policy_with(tmp_path, a="cheshire: 40=>cheshire: 2", b="hampshire: 40=>hampshire: 2", c="met: 60=>met: 2")
    monkeypatch.setenv("IASU_POLICY_FILE", str(policy))
    wiring.reset()
    write_days(tmp_path / "inbox", DAY, per_day=60, dirty=0.0, seed=8)
    kept_states.restore("cases-routed", lambda: night_without_prefect(tmp_path / "inbox", DAY, tmp_path / "docs"))
    return {"url": configured, "tmp": tmp_path}


def iasu(*args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


def test_the_unit_queue_lists_every_case_turned_away_and_an_override_pulls_one_in(routed: dict[str, Any]) -> None:
    listed = json.loads(iasu("queue", "list", "--queue", "unit", "--json").stdout)
    assert listed["cases"] and all(c["queue"] == "unit" for c in listed["cases"])
    turned = listed["turned_away_for_capacity"]
    assert turned and all(c["queue"] != "unit" for c in turned)
    # Every tier the unit's criteria take (medium with a marker the policy names, too), as routing flagged them.
    everything = json.loads(iasu("queue", "list", "--json").stdout)["cases"]
    flagged = sorted(c["case_ref"] for c in everything if c["turned_away_for_capacity"])
    assert sorted(c["case_ref"] for c in turned) == flagged and {c["tier"] for c in turned} == {"high", "medium"}
    ref = turned[0]["case_ref"]
    # A high-risk case the unit had no place for is announced all the same: the unit may pull it in.
    with wiring.engine().connect() as conn:
        announced = set(conn.execute(select(ALERTS.c.dedupe_key).where(ALERTS.c.kind == "new_high_risk")).scalars())
    assert {f"new_high_risk:{c['case_ref']}" for c in turned if c["tier"] == "high"} <= announced
    # Each routing decision is audited with the rules that made it.
    assert all(e["details"]["reasons"] for e in audit_events("decide"))

    out = iasu("case", "override", ref, "--queue", "unit", "--by", "DS Example", "--reason", "ZZREASONMARKER pull in")
    assert out.exit_code == 0, out.output
    shown = json.loads(iasu("case", "show", ref, "--json").stdout)
    assert shown["queue"] == "unit" and shown["decided_by"] == "DS Example"
    [override] = audit_events("override")
    assert override["actor"] == "DS Example" and override["os_user"]
    assert override["details"]["from"]["queue"] == turned[0]["queue"]
    assert override["details"]["from"]["decided_by"] == "policy"
    assert override["reason_enc"] is not None
    assert "ZZREASONMARKER" not in dump_database(routed["url"])  # the typed reason is stored encrypted
    assert [h["action"] for h in shown["history"]] == ["decide", "override"]


def test_an_override_of_the_tier_alone_confirms_and_ends_the_unit_s_offer(routed: dict[str, Any]) -> None:
    turned = json.loads(iasu("queue", "list", "--queue", "unit", "--json").stdout)["turned_away_for_capacity"]
    ref, queue = turned[0]["case_ref"], turned[0]["queue"]
    out = iasu("case", "override", ref, "--queue", queue, "--tier", "standard", "--by", "DS Example", "--reason", "x")
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == f"{ref}: queue {queue} -> {queue}, tier {turned[0]['tier']} -> standard"
    # A supervisor has decided where the case belongs: it is no longer offered to the unit.
    still = json.loads(iasu("queue", "list", "--queue", "unit", "--json").stdout)["turned_away_for_capacity"]
    assert ref not in {c["case_ref"] for c in still} and len(still) == len(turned) - 1
    assert "high risk" not in iasu("queue", "list", "--queue", "unit").stdout


def test_the_queue_list_names_each_case_s_worker_by_staff_code(routed: dict[str, Any]) -> None:
    # No roster yet: every case waits for a worker. One added to the unit takes the case pulled in by override.
    assert iasu("staff", "add", "CH-UNI-07", "--queue", "unit", "--force", "cheshire").exit_code == 0
    turned = json.loads(iasu("queue", "list", "--queue", "unit", "--json").stdout)["turned_away_for_capacity"]
    ref = next(c["case_ref"] for c in turned if c["case_ref"].startswith("CH-"))
    assert iasu("case", "override", ref, "--queue", "unit", "--by", "DS Example", "--reason", "x").exit_code == 0
    listed = json.loads(iasu("queue", "list", "--json").stdout)["cases"]
    with wiring.engine().connect() as conn:
        internal: dict[str, int | None] = dict(conn.execute(select(CASES.c.case_ref, CASES.c.assigned_staff_id)).all())
    assigned = {c["case_ref"]: c["assigned_to"] for c in listed if c["assigned_to"]}
    # The unit's waiting Cheshire cases went to the new worker too; every other case still waits.
    assert ref in assigned and set(assigned.values()) == {"CH-UNI-07"} and len(assigned) < len(listed)
    assert {c["case_ref"] for c in listed if c["assigned_staff_id"]} == set(assigned)
    assert all(c["assigned_staff_id"] == internal[c["case_ref"]] for c in listed)
    shown = iasu("queue", "list").stdout.splitlines()
    for case in listed:
        [line] = [line for line in shown if f"  {case['case_ref']}  " in line]
        assert line.endswith(f"  {case['assigned_to'] or 'unassigned'}")


def test_reveal_shows_personal_fields_and_records_the_consultation(routed: dict[str, Any]) -> None:
    ref = json.loads(iasu("queue", "list", "--json").stdout)["cases"][0]["case_ref"]
    plain = iasu("case", "show", ref)
    assert "personal fields" not in plain.stdout and audit_events("reveal") == []
    unexplained = iasu("case", "show", ref, "--reveal", "--by", "PC Example")
    assert unexplained.exit_code == 2 and "--reason" in unexplained.output and audit_events("reveal") == []
    revealed = iasu("case", "show", ref, "--reveal", "--by", "PC Example", "--reason", "safety planning")
    assert revealed.exit_code == 0
    assert "forename:" in revealed.stdout and "recorded in the audit log" in revealed.stdout
    [reveal] = audit_events("reveal")
    assert reveal["actor"] == "PC Example" and reveal["entity_id"] == ref
    # Why the personal data was consulted is kept with the consultation (encrypted: a typed reason may name someone).
    assert wiring.cipher().decrypt("audit_events", "reason_enc", reveal["reason_enc"]) == "safety planning"


def test_closing_a_unit_case_frees_a_place_for_the_next_night(routed: dict[str, Any]) -> None:
    unit = json.loads(iasu("queue", "list", "--queue", "unit", "--force", "cheshire", "--json").stdout)["cases"]
    assert len(unit) == 2  # at capacity
    bad = iasu("case", "close", unit[0]["case_ref"], "--outcome", "vanished", "--by", "ops")
    assert bad.exit_code == 2 and "unknown outcome" in bad.output
    closed = iasu("case", "close", unit[0]["case_ref"], "--outcome", "risk_reduced", "--by", "DI Example")
    assert closed.exit_code == 0
    assert [e["details"]["outcome"] for e in audit_events("close")] == ["risk_reduced"]
    again = iasu("case", "close", unit[0]["case_ref"], "--outcome", "risk_reduced", "--by", "DI Example")
    assert again.exit_code == 2 and "already closed" in again.output

    tmp: Path = routed["tmp"]
    next_day = date(2026, 11, 10)
    write_days(tmp / "inbox", next_day, per_day=60, dirty=0.0, seed=9)
    night_without_prefect(tmp / "inbox", next_day, tmp / "docs")
    with wiring.engine().connect() as conn:
        open_unit = conn.execute(
            select(CASES.c.case_ref, CASES.c.opened_on).where(
                CASES.c.queue == "unit", CASES.c.status == "open", CASES.c.force == "cheshire"
            )
        ).all()
    assert len(open_unit) == 2  # still bounded by capacity
    assert sum(1 for _, opened in open_unit if opened == next_day) == 1  # exactly the freed place was taken
    assert {unit[1]["case_ref"]} <= {ref for ref, _ in open_unit}  # nobody already in the unit was displaced


def test_unknown_case_and_codes_are_one_line_errors(routed: dict[str, Any]) -> None:
    assert "no case XX-2026-000000" in iasu("case", "show", "XX-2026-000000").output
    out = iasu("case", "override", "CH-2026-000001", "--queue", "space", "--by", "x", "--reason", "y")
    assert out.exit_code == 2 and "unknown queue 'space'" in out.output
