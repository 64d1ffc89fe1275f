"""Routing a generated month on SQLite and real PostgreSQL: one decision per referral, capacity, linkage, audit."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from iasu import wiring
from iasu.policy import get_policy
from models import Case, Person, Referral
from rules.triage import TIER_RANK
from tasks.route import linked_history
from tests.conftest import migrated_sqlite, pg_clone
from tests.support import audit_events, counts, night_without_prefect, open_case, policy_with, write_days

START = date(2026, 10, 19)
NIGHTS = 10
CAPACITY = 6


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def month(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fortnight of generated nights routed once per database (the tests below only read it)."""
    tmp_path = tmp_path_factory.mktemp("fortnight")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = migrated_sqlite(tmp_path)
        else:
            url = stack.enter_context(pg_clone(request.getfixturevalue("pg_template")))
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv("IASU_DATABASE_URL", url)
        env.setenv("IASU_VAR_DIR", str(tmp_path / "var"))
        env.setenv(
            "IASU_POLICY_FILE",
            str(
                policy_with(
                    tmp_path, a="cheshire: 40=>cheshire: 6", b="hampshire: 40=>hampshire: 6", c="met: 60=>met: 6"
                )
            ),
        )
        wiring.reset()
        stack.callback(wiring.reset)
        inbox = tmp_path / "inbox"
        write_days(inbox, START, days=NIGHTS, per_day=25, dirty=0.05, seed=44)
        nights = [night_without_prefect(inbox, START + timedelta(days=i), tmp_path / "docs") for i in range(NIGHTS)]
        yield {"inbox": inbox, "nights": nights, "url": url, "tmp": tmp_path}


CASES = Case.__table__  # type: ignore[attr-defined]
REFERRALS = Referral.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]


def cases_and_referrals() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with wiring.engine().connect() as conn:
        cases = [dict(r) for r in conn.execute(select(CASES).order_by(CASES.c.id)).mappings()]
        refs = [dict(r) for r in conn.execute(select(REFERRALS).order_by(REFERRALS.c.id)).mappings()]
    return cases, refs


def test_every_loaded_referral_has_exactly_one_case_with_reasons(month: dict[str, Any]) -> None:
    cases, referrals = cases_and_referrals()
    assert referrals and all(r["case_id"] is not None for r in referrals)
    assert all(c["reasons"] and c["reasons"][0]["rule"] == "sdash_band" for c in cases)
    assert all(re.fullmatch(r"[A-Z]{2,3}-\d{4}-\d{6}", str(c["case_ref"])) for c in cases)
    nights = month["nights"]
    assert sum(sum(n["routed"].values()) for n in nights) == len(cases) == counts(str(month["url"]))["cases"]
    assert sum(sum(n["tiers"].values()) for n in nights) == len(cases)
    tiers = {c["tier"] for c in cases}
    assert tiers == {"high", "medium", "standard"}


def test_the_unit_is_bounded_by_capacity_and_takes_the_highest_risk_first(month: dict[str, Any]) -> None:
    cases, _ = cases_and_referrals()
    for force in ("cheshire", "hampshire", "met"):
        unit = [c for c in cases if c["force"] == force and c["queue"] == "unit"]
        assert len(unit) <= CAPACITY
        turned = [c for c in cases if c["force"] == force and c["turned_away_for_capacity"]]
        assert turned, "capacity binds over a fortnight"
        for t in turned:
            rules = [r["rule"] for r in t["reasons"]]
            # Turned away at intake, or raised later by a serial finding and listed for the unit.
            assert "unit_at_capacity" in rules or rules[-1] == "serial_perpetrator_linked"
            if "serial_perpetrator_linked" in rules:
                continue  # its tier changed after the night it was decided
            same_night = [u for u in unit if u["opened_on"] == t["opened_on"]]
            assert all(TIER_RANK[u["tier"]] >= TIER_RANK[t["tier"]] for u in same_night)


def test_serial_perpetrators_and_two_source_duplicates_are_linked_without_clear_data(month: dict[str, Any]) -> None:
    cases, referrals = cases_and_referrals()
    rules = {r["rule"] for c in cases for r in c["reasons"]}
    assert "serial_perpetrator" in rules or "repeat_perpetrator" in rules
    by_case: dict[object, set[object]] = {}
    for r in referrals:
        by_case.setdefault(r["case_id"], set()).add(r["source"])
    assert any(len(sources) >= 2 for sources in by_case.values()), "the same referral from two sources is one case"
    nights = month["nights"]
    assert sum(int(n["merged"]) for n in nights) == len(referrals) - len(cases)
    # Each referral that joined another's case is on the audit record, with the case it joined.
    merges = [(e["entity_id"], e["details"]) for e in audit_events("merge")]
    joined = {str(r["id"]): r["case_id"] for r in referrals if r["id"] != origin_of(cases, r["case_id"])}
    assert joined and {entity: details["case_id"] for entity, details in merges} == joined, (len(merges), len(joined))


def test_each_decision_is_audited_with_the_referral_it_decided(month: dict[str, Any]) -> None:
    """The audit record alone says which referral opened each case, in which queue, and why."""
    cases, _ = cases_and_referrals()
    decided = {e["entity_id"]: e["details"] for e in audit_events("decide")}
    assert set(decided) == {c["case_ref"] for c in cases}
    for case in cases:
        details = decided[case["case_ref"]]
        assert details["referral_id"] == case["origin_referral_id"], case["case_ref"]
        assert details["queue"] == case["queue"], case["case_ref"]
        assert [r["rule"] for r in details["reasons"]] == [r["rule"] for r in case["reasons"]][
            : len(details["reasons"])
        ]


def origin_of(cases: list[dict[str, Any]], case_id: object) -> object:
    """The referral that opened the case."""
    return next(c["origin_referral_id"] for c in cases if c["id"] == case_id)


def test_rerunning_a_night_changes_no_decision(month: dict[str, Any]) -> None:
    before = cases_and_referrals()
    again = night_without_prefect(month["inbox"], START + timedelta(days=NIGHTS - 1), month["tmp"] / "docs")
    assert again["routed"] == {} and again["merged"] == 0
    assert cases_and_referrals() == before


@pytest.mark.parametrize("statement", ["UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"])
def test_the_audit_log_refuses_updates_and_deletes(month: dict[str, Any], statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), wiring.engine().begin() as conn:
        conn.execute(text(statement))
    with wiring.engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'decide'")).scalar_one() > 0


def test_a_serial_perpetrator_raises_the_earlier_linked_cases_too(month: dict[str, Any]) -> None:
    cases, _ = cases_and_referrals()
    raised = [c for c in cases if any(r["rule"] == "serial_perpetrator_linked" for r in c["reasons"])]
    assert sum(int(n["raised_for_serial"]) for n in month["nights"]) == len(raised)
    assert raised, "a fortnight with repeat perpetrators reveals some serial ones"
    assert all(c["tier"] == "high" for c in raised)
    with wiring.engine().connect() as conn:
        retiered = conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'retier'")).scalar_one()
    assert retiered == len(raised)


@pytest.mark.parametrize(
    ("serial_tier", "raised"),
    [("high", {"standard", "medium"}), ("medium", {"standard"}), ("standard", set())],
)
def test_a_serial_finding_raises_only_the_linked_open_cases_below_the_serial_tier(
    configured: str, serial_tier: str, raised: set[str]
) -> None:
    from iasu.policy import get_policy
    from rules.codes import Tier
    from rules.linkage import Linked
    from tasks.route import _raise_linked_cases

    policy = get_policy()
    policy = policy.model_copy(update={"linkage": policy.linkage.model_copy(update={"serial_tier": Tier(serial_tier)})})
    opened = datetime(2026, 11, 2, 12, tzinfo=UTC)
    with wiring.engine().begin() as conn:
        earlier = {
            tier: open_case(conn, f"CH-2026-00000{n}", tier=tier, queue="police_investigation", opened_at=opened)
            for n, tier in enumerate(("standard", "medium", "high"), start=1)
        }
        in_unit = open_case(conn, "CH-2026-000004", tier="standard", queue="unit", opened_at=opened)
        own = open_case(conn, "CH-2026-000009", tier="high", queue="unit", opened_at=opened)
        count = len(
            _raise_linked_cases(
                conn,
                serial={
                    100: Linked(duplicate_of=None, earlier_cases=4, other_victims=3, earlier_referral_ids=(1, 2, 3, 4))
                },
                case_of={1: earlier["standard"], 2: earlier["medium"], 3: earlier["high"], 4: in_unit, 100: own},
                joined=set(),
                policy=policy,
                actor="test",
                now=opened,
                run_date=opened.date(),
            )
        )
        cases = Case.__table__  # type: ignore[attr-defined]
        stored = {
            row.id: row for row in conn.execute(select(cases.c.id, cases.c.tier, cases.c.turned_away_for_capacity))
        }
        retiered = conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'retier'")).scalar_one()
    assert count == retiered == len(raised) + ("standard" in raised)
    # Raised to the serial tier, never lowered; the new referral's own case is not its own earlier case.
    assert {tier: stored[case_id].tier for tier, case_id in earlier.items()} == {
        tier: serial_tier if tier in raised else tier for tier in earlier
    }
    assert stored[in_unit].tier == (serial_tier if "standard" in raised else "standard")
    assert stored[own].tier == "high"
    # A partner's case raised this way is listed for the unit to pull in; one already in the unit is not.
    assert {tier: stored[case_id].turned_away_for_capacity for tier, case_id in earlier.items()} == {
        tier: tier in raised for tier in earlier
    }
    assert not stored[in_unit].turned_away_for_capacity


def test_a_copy_that_adds_nothing_does_not_raise_a_case_lowered_by_hand(configured: str) -> None:
    """A case already found serial, then lowered by staff, is not raised again by another source's copy of it."""
    from iasu.policy import get_policy
    from rules.linkage import Linked
    from tasks.route import _raise_linked_cases

    opened = datetime(2026, 11, 2, 12, tzinfo=UTC)
    serial = {"rule": "serial_perpetrator", "text": "serial", "inputs": {}}
    lowered = {"rule": "override", "text": "lowered by the unit", "inputs": {}}
    with wiring.engine().begin() as conn:
        known = open_case(
            conn, "CH-2026-000001", tier="medium", queue="unit", opened_at=opened, reasons=[serial, lowered]
        )
        unknown = open_case(conn, "CH-2026-000002", tier="medium", queue="unit", opened_at=opened, reasons=[])
        found = Linked(duplicate_of=1, earlier_cases=1, other_victims=1, earlier_referral_ids=())
        changes = _raise_linked_cases(
            conn,
            serial={10: found, 20: found},
            case_of={10: known, 20: unknown},
            joined={10, 20},
            policy=get_policy(),
            actor="test",
            now=opened,
            run_date=opened.date(),
        )
        tiers = {row.id: row.tier for row in conn.execute(select(CASES.c.id, CASES.c.tier))}
    assert [ch["cid"] for ch in changes] == [unknown]
    assert tiers == {known: "medium", unknown: "high"}


def _scanned(plan: dict[str, Any], tables: set[str]) -> int:
    """Rows the plan's nodes read from these tables, over all their loops."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") in tables else 0
    return own + sum(_scanned(child, tables) for child in plan.get("Plans", []))


def test_linkage_reads_what_tonight_shares_a_key_with_not_the_whole_history(month: dict[str, Any]) -> None:
    if not month["url"].startswith("postgresql"):
        pytest.skip("reads the server's query plan")
    last = START + timedelta(days=NIGHTS - 1)
    policy = get_policy()
    r_names = [c.name for c in REFERRALS.c if c.name != "id"]
    r_values = {"source_ref": "source_ref || '-h' || g", "received_date": "received_date - 40 * g"}
    p_names = [c.name for c in PEOPLE.c if c.name not in ("id", "referral_id")]
    p_values = {n: f"md5(p.{n} || g)" for n in ("name_dob_index", "pnc_index")}  # keys no one shares
    with wiring.engine().connect() as conn, conn.begin() as tx:
        # Tonight: the last night's referrals, as before routing. History: twenty copies of every routed
        # referral and its people, older and with keys of their own. All rolled back.
        conn.execute(text("UPDATE referrals SET case_id = NULL WHERE received_date = :d"), {"d": last})
        conn.execute(
            text(
                f"INSERT INTO referrals ({', '.join(r_names)}) SELECT "
                + ", ".join(r_values.get(n, n) for n in r_names)
                + " FROM referrals CROSS JOIN generate_series(1, 20) AS g WHERE case_id IS NOT NULL"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO people (referral_id, {', '.join(p_names)}) SELECT h.id, "
                + ", ".join(p_values.get(n, f"p.{n}") for n in p_names)
                + " FROM people p JOIN referrals o ON o.id = p.referral_id CROSS JOIN generate_series(1, 20) AS g"
                " JOIN referrals h ON h.source = o.source AND h.source_ref = o.source_ref || '-h' || g"
            )
        )
        history = conn.execute(text("SELECT count(*) FROM referrals WHERE case_id IS NOT NULL")).scalar_one()
        tonight = conn.execute(text("SELECT count(*) FROM referrals WHERE case_id IS NULL")).scalar_one()
        conn.execute(text("ANALYZE referrals, people, cases"))
        # The plan a long history gets: scans only where no index can serve.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        earliest = last - timedelta(days=policy.linkage.duplicate_window_days)
        query = linked_history(policy, earliest).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        [explained] = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}")).scalar_one()
        linked = conn.execute(linked_history(policy, earliest)).all()
        tx.rollback()
    assert history > 20 * tonight and linked, "a history far larger than tonight, some of it linked"
    read = _scanned(explained["Plan"], {"referrals", "people", "cases"})
    # Each signal's keys for tonight's referrals and each match, a few rows apiece: not the history's rows.
    assert read < history / 4, f"read {read} rows for {tonight} referrals against a history of {history}"


@pytest.mark.postgres
def test_statistics_are_taken_again_only_once_a_table_has_changed_past_the_servers_threshold(pg_url: str) -> None:
    """Routing's ANALYZE: a never-measured table is measured; 5% more rows is not stale, 20% more or fewer is."""
    from sqlalchemy import create_engine

    from tasks.route import refresh_statistics

    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE grown (n integer, label text)"))

        def change_and_refresh(sql: str = "", **params: int) -> list[str]:
            with engine.begin() as conn:
                if sql:
                    conn.execute(text(sql), params)
                    conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counted now, not within seconds
            with engine.begin() as conn:
                return refresh_statistics(conn, ["grown", "referrals"])

        add = "INSERT INTO grown SELECT g, md5(g::text) FROM generate_series(1, :n) AS g"
        assert change_and_refresh() == ["grown", "referrals"]  # never measured
        assert change_and_refresh() == []
        assert change_and_refresh(add, n=100_000) == ["grown"]
        assert change_and_refresh(add, n=5_000) == []  # within the server's own threshold: left to autovacuum
        assert change_and_refresh(add, n=20_000) == ["grown"]
        # Fewer rows, the same pages on disk: the server's count of changed rows says so.
        assert change_and_refresh("DELETE FROM grown WHERE n % 5 = 0") == ["grown"]
        assert change_and_refresh() == []
        with engine.connect() as conn:
            reltuples = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'grown'")).scalar_one()
        assert reltuples == 100_000  # the last ANALYZE saw every row (all the table's pages fit in its sample)
    finally:
        engine.dispose()


@pytest.mark.parametrize("copy_days_later", [1, 0])
def test_a_second_source_revealing_a_serial_perpetrator_raises_the_case_it_joins(
    configured: str, tmp_path: Path, copy_days_later: int
) -> None:
    """The NHS trust's referral names the perpetrator without a PNC id; victim services' copy of it carries one,
    the id of a man the police referred for another victim. The next night the copy raises the case it joins;
    the same night the case is decided on what both copies know."""
    from dataclasses import replace

    from faker import Faker

    from iasu.synthetic.generate import write_file
    from iasu.synthetic.referrals import ReferralFactory
    from rules.codes import Source

    day1 = date(2026, 11, 9)
    day2 = day1 + timedelta(days=copy_days_later)
    factory = ReferralFactory(random.Random(5), Faker("en_GB"))
    police = factory.referral(day1, Source.police_rms)
    police = replace(police, perp=replace(police.perp, pnc_id="26/45678B"), pnc_shown=True)
    nhs = factory.referral(day1, Source.nhs_trust)
    nhs = replace(nhs, sdash=(False,) * len(nhs.sdash), markers=(), srp=None, pnc_shown=False)  # low risk
    copy = replace(
        nhs,
        source=Source.victim_service,
        source_ref=factory.source_ref(Source.victim_service, nhs.force, day2),
        received=day2,
        perp=replace(nhs.perp, pnc_id="2026/0045678b"),  # the same man, under the name the NHS knows him by
        pnc_shown=True,
    )
    inbox = tmp_path / "inbox"
    files = [(day1, Source.police_rms, police), (day1, Source.nhs_trust, nhs), (day2, Source.victim_service, copy)]
    for day, source, referral in files:
        (inbox / day.isoformat()).mkdir(parents=True, exist_ok=True)
        write_file(inbox / day.isoformat(), source, day, [referral], dirty=0.0, rng=random.Random(1))
    first = night_without_prefect(inbox, day1, tmp_path / "docs")
    before = {c["id"]: c for c in cases_and_referrals()[0]}
    second = night_without_prefect(inbox, day2, tmp_path / "docs") if day2 != day1 else first

    cases, refs = cases_and_referrals()
    case_of = {r["source_ref"]: r["case_id"] for r in refs}
    joined = case_of[nhs.source_ref]
    assert case_of[copy.source_ref] == joined and len(cases) == 2  # the copy joined the NHS referral's case
    after = {c["id"]: c for c in cases}
    police_case = after[case_of[police.source_ref]]
    assert after[joined]["tier"] == police_case["tier"] == "high"
    with wiring.engine().connect() as conn:
        keys = conn.execute(text("SELECT dedupe_key FROM alerts WHERE kind = 'new_high_risk'")).scalars()
        announced = {key.removeprefix("new_high_risk:") for key in keys}
        events = [
            (e.entity_id, e.action)
            for e in conn.execute(text("SELECT entity_id, action FROM audit_events WHERE entity = 'cases' ORDER BY id"))
        ]
    if copy_days_later:
        assert first["raised_for_serial"] == 0 and before[joined]["tier"] != "high"  # decided without knowing
        assert after[joined]["reasons"][-1]["rule"] == "serial_perpetrator_linked"
        revealed_by = after[joined]["reasons"][-1]["inputs"]["revealed_by_referral_id"]
        assert revealed_by == next(r["id"] for r in refs if r["source_ref"] == copy.source_ref)
        assert second["raised_for_serial"] == 1 + (before[police_case["id"]]["tier"] != "high")
    else:
        # Decided serial at once, on the copy's PNC id: no raise after the decision for this case.
        rules = [r["rule"] for r in after[joined]["reasons"]]
        assert "serial_perpetrator" in rules and "serial_perpetrator_linked" not in rules
        assert (after[joined]["case_ref"], "retier") not in events
    # Every case that ends tonight high and was opened tonight is announced; each decision is logged before
    # any raise of it.
    opened_on_last_night = {c["case_ref"] for c in cases if c["opened_on"] == day2}
    assert announced >= opened_on_last_night
    for ref in {c["case_ref"] for c in cases}:
        mine = [action for entity, action in events if entity == ref]
        assert mine[0] == "decide" and set(mine[1:]) <= {"retier"}


def test_a_perpetrator_shown_serial_later_the_same_night_makes_each_of_their_cases_tonight_serial(
    configured: str, tmp_path: Path
) -> None:
    """Three police referrals, one night, one man (the same PNC id), three victims: the first two are decided
    serial too, numbered among tonight's high-risk cases and announced with them, not opened low and raised
    after; each reason counts the cases and victims linkage found, before and after it."""
    from dataclasses import replace

    from faker import Faker

    from iasu.synthetic.generate import write_file
    from iasu.synthetic.referrals import ReferralFactory
    from rules.codes import Source

    day = date(2026, 11, 9)
    factory = ReferralFactory(random.Random(8), Faker("en_GB"))
    quiet = []
    for _ in range(3):
        referral = factory.referral(day, Source.police_rms)
        quiet.append(
            replace(
                referral,
                sdash=(False,) * len(referral.sdash),
                markers=(),
                srp=None,
                perp=replace(referral.perp, pnc_id="26/0071234C"),
                pnc_shown=True,
            )
        )
    # Others from a factory of their own: a factory names some perpetrators again, and these must not be his.
    others_factory = ReferralFactory(random.Random(99), Faker("en_GB"))
    others = [others_factory.referral(day, Source.police_rms) for _ in range(20)]
    inbox = tmp_path / "inbox" / day.isoformat()
    inbox.mkdir(parents=True)
    write_file(inbox, Source.police_rms, day, [*quiet, *others], dirty=0.0, rng=random.Random(1))

    night = night_without_prefect(tmp_path / "inbox", day, tmp_path / "docs")

    cases, refs = cases_and_referrals()
    case_of = {r["source_ref"]: r["case_id"] for r in refs}
    serial = [next(c for c in cases if c["id"] == case_of[q.source_ref]) for q in quiet]
    assert [c["tier"] for c in serial] == ["high", "high", "high"]
    texts = sorted(next(r["text"] for r in c["reasons"] if r["rule"] == "serial_perpetrator") for c in serial)
    assert texts == [
        "perpetrator linked to 1 earlier referral and 1 later referral tonight, 2 other victims: serial, at least high",
        "perpetrator linked to 2 earlier referrals, 2 other victims: serial, at least high",
        "perpetrator linked to 2 later referrals tonight, 2 other victims: serial, at least high",
    ]
    assert night["raised_for_serial"] == 0  # decided so, not raised as the night ends
    # Numbered with the night's high-risk cases: in each force, every high case's number comes before the rest.
    for force in {c["force"] for c in serial}:
        mine = [c for c in cases if c["force"] == force]
        high = [int(c["case_ref"][-6:]) for c in mine if c["tier"] == "high"]
        rest = [int(c["case_ref"][-6:]) for c in mine if c["tier"] != "high"]
        assert max(high) < min(rest, default=max(high) + 1)
    with wiring.engine().connect() as conn:
        actions = set(conn.execute(text("SELECT action FROM audit_events WHERE entity = 'cases'")).scalars())
        announced = set(conn.execute(text("SELECT dedupe_key FROM alerts WHERE kind = 'new_high_risk'")).scalars())
    assert "retier" not in actions
    assert {f"new_high_risk:{c['case_ref']}" for c in serial} <= announced


def nhs_referral_and_victim_service_copy(
    day: date, received: date, *, pnc_shown: bool | None = None
) -> tuple[Any, Any]:
    """An NHS referral of `day`, and the same referral as victim services send it on, received on `received`."""
    from dataclasses import replace

    from faker import Faker

    from iasu.synthetic.referrals import ReferralFactory
    from rules.codes import Source

    factory = ReferralFactory(random.Random(5), Faker("en_GB"))
    nhs = factory.referral(day, Source.nhs_trust)
    if pnc_shown is not None:  # whether the NHS export names the perpetrator's PNC id, if not left to chance
        nhs = replace(nhs, pnc_shown=pnc_shown)
    ref = factory.source_ref(Source.victim_service, nhs.force, received)
    return nhs, replace(nhs, source=Source.victim_service, source_ref=ref, received=received)


def write_inbox(inbox: Path, files: list[tuple[date, Any, list[Any]]]) -> None:
    """Each (day, source, referrals) written clean as that source's export in inbox/<day>/."""
    from iasu.synthetic.generate import write_file

    for day, source, batch in files:
        (inbox / day.isoformat()).mkdir(parents=True, exist_ok=True)
        write_file(inbox / day.isoformat(), source, day, batch, dirty=0.0, rng=random.Random(1))


def test_a_copy_of_a_referral_whose_case_has_closed_opens_a_case_of_its_own(configured: str, tmp_path: Path) -> None:
    """Victim services send on an NHS referral after the unit closed its case: the copy is not filed in a closed
    case nobody reads, it opens a case of its own."""
    from rules.codes import Source
    from tasks.cases import close_case

    day1 = date(2026, 11, 9)
    day2 = day1 + timedelta(days=2)
    nhs, copy = nhs_referral_and_victim_service_copy(day1, day2)
    inbox = tmp_path / "inbox"
    write_inbox(inbox, [(day1, Source.nhs_trust, [nhs]), (day2, Source.victim_service, [copy])])
    night_without_prefect(inbox, day1, tmp_path / "docs")
    (closed,) = cases_and_referrals()[0]
    policy = get_policy()
    with wiring.engine().begin() as conn:
        close_case(
            conn,
            closed["case_ref"],
            outcome=policy.outcomes[0],
            by="DI Example",
            reason=None,
            policy=policy,
            cipher=wiring.cipher(),
        )
    night = night_without_prefect(inbox, day2, tmp_path / "docs")

    cases, refs = cases_and_referrals()
    case_of = {r["source_ref"]: r["case_id"] for r in refs}
    assert case_of[nhs.source_ref] == closed["id"]
    assert case_of[copy.source_ref] not in (None, closed["id"])
    assert night["merged"] == 0
    assert {c["id"]: c["status"] for c in cases} == {closed["id"]: "closed", case_of[copy.source_ref]: "open"}


def test_a_copy_received_on_the_last_day_of_the_duplicate_window_joins_its_case(
    configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found through the victim alone (neither copy names the perpetrator by a signal the policy links on), the
    window counts whole days, both ends included, from each referral's own date received, even for a copy that
    arrives late in a night that also takes newer referrals."""
    from faker import Faker

    from iasu.synthetic.referrals import ReferralFactory
    from rules.codes import Source

    monkeypatch.setenv("IASU_POLICY_FILE", str(policy_with(tmp_path, a="signals: [name_dob, pnc]=>signals: [pnc]")))
    wiring.reset()
    window = get_policy().linkage.duplicate_window_days
    day1 = date(2026, 11, 2)
    received = day1 + timedelta(days=window)
    night2 = received + timedelta(days=1)
    nhs, copy = nhs_referral_and_victim_service_copy(day1, received, pnc_shown=False)
    newer = ReferralFactory(random.Random(99), Faker("en_GB")).referral(night2, Source.police_rms)
    inbox = tmp_path / "inbox"
    write_inbox(
        inbox,
        [
            (day1, Source.nhs_trust, [nhs]),
            (night2, Source.victim_service, [copy]),
            (night2, Source.police_rms, [newer]),
        ],
    )
    night_without_prefect(inbox, day1, tmp_path / "docs")
    night = night_without_prefect(inbox, night2, tmp_path / "docs")

    cases, refs = cases_and_referrals()
    case_of = {r["source_ref"]: r["case_id"] for r in refs}
    assert {r["source_ref"]: r["received_date"] for r in refs}[copy.source_ref] == received
    assert case_of[copy.source_ref] == case_of[nhs.source_ref]
    assert night["merged"] == 1 and len(cases) == 2


def test_the_units_free_places_are_its_capacity_less_its_open_cases(configured: str) -> None:
    """A case the unit has closed frees its place, and a partner's case never took one."""
    from rules.codes import Force
    from tasks.route import _free_places

    policy = get_policy()
    opened = datetime(2026, 11, 2, 12, tzinfo=UTC)
    with wiring.engine().begin() as conn:
        for n, queue in enumerate(("unit", "unit", "unit", "police_investigation"), start=1):
            open_case(conn, f"CH-2026-00000{n}", tier="high", queue=queue, opened_at=opened)
        conn.execute(CASES.update().where(CASES.c.case_ref == "CH-2026-000001").values(status="closed"))
        free = _free_places(conn, policy)
    capacity = policy.unit.capacity
    assert free == {force: capacity[force] - (2 if force is Force.cheshire else 0) for force in Force}


def test_case_numbers_run_to_the_last_six_digit_one_and_no_further(configured: str) -> None:
    """CH-2026-999999 is issued; a block that would need a seventh digit is refused, not numbered past it."""
    from collections import Counter

    from models import CaseRefCounter
    from rules.codes import Force
    from tasks.route import _issue_case_refs, case_ref

    counters = CaseRefCounter.__table__  # type: ignore[attr-defined]
    with wiring.engine().begin() as conn:
        conn.execute(counters.insert().values(prefix="CH", year=2026, last_value=999_997))
        first = _issue_case_refs(conn, Counter({("CH", 2026): 2}))
        with pytest.raises(RuntimeError, match="six-digit format is exhausted"):
            _issue_case_refs(conn, Counter({("CH", 2026): 1}))
    assert first == {("CH", 2026): 999_998}
    assert case_ref(Force.cheshire, 2026, first[("CH", 2026)] + 1) == "CH-2026-999999"
