"""Triage rules as tables: every band edge, every marker, SRP, linkage, partner routes, capacity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iasu.errors import OperatorError
from iasu.policy import DEFAULT_POLICY, load_policy
from rules.codes import Force, Marker, Queue, ReferringAgency, SrpLevel, Tier
from rules.triage import (
    Decision,
    Intervention,
    LinkedHistory,
    ReferralFacts,
    allocate,
    assess,
    assess_all,
    risk_tier,
)

POLICY = load_policy(None)  # the shipped default: high from 8 yes, medium from 5
NONE = LinkedHistory()


def facts(
    sdash: int = 0,
    markers: tuple[Marker, ...] = (),
    *,
    srp: SrpLevel | None = None,
    agency: ReferringAgency = ReferringAgency.police,
    force: Force = Force.cheshire,
    key: str = "police_rms:A",
    received: date = date(2026, 11, 1),
) -> ReferralFacts:
    return ReferralFacts(
        key=key,
        force=force,
        received_date=received,
        referring_agency=agency,
        sdash_yes_count=sdash,
        markers=frozenset(markers),
        srp=srp,
    )


@pytest.mark.parametrize(
    ("sdash", "tier"),
    [(0, Tier.standard), (4, Tier.standard), (5, Tier.medium), (7, Tier.medium), (8, Tier.high), (11, Tier.high)],
)
def test_sdash_bands_at_every_edge(sdash: int, tier: Tier) -> None:
    got, reasons = risk_tier(facts(sdash), NONE, POLICY)
    assert got is tier
    assert reasons[0].rule == "sdash_band" and reasons[0].inputs["sdash_yes_count"] == sdash


@pytest.mark.parametrize("marker", list(Marker))
def test_each_marker_does_what_the_policy_says(marker: Marker) -> None:
    tier, reasons = risk_tier(facts(0, (marker,)), NONE, POLICY)
    rules = [r.rule for r in reasons]
    if marker in POLICY.risk.high_markers:
        assert tier is Tier.high and "high_marker" in rules
    elif marker in POLICY.risk.raise_markers:
        assert tier is Tier.medium and "raise_marker" in rules
    else:
        assert tier is Tier.standard and rules == ["sdash_band"]


@pytest.mark.parametrize("marker", sorted(POLICY.risk.raise_markers))
def test_a_raising_marker_takes_medium_to_high(marker: Marker) -> None:
    tier, reasons = risk_tier(facts(6, (marker,)), NONE, POLICY)
    assert tier is Tier.high and [r.rule for r in reasons] == ["sdash_band", "raise_marker"]


def test_threats_of_violence_recommend_a_charge() -> None:
    threatened = ReferralFacts(
        key="k",
        force=Force.cheshire,
        received_date=date(2026, 11, 1),
        referring_agency=ReferringAgency.police,
        sdash_yes_count=2,
        markers=frozenset(),
        srp=None,
        threats_violence=True,
    )
    assert Intervention.charge in assess(threatened, NONE, POLICY).interventions
    assert Intervention.charge not in assess(facts(2), NONE, POLICY).interventions


def test_a_serial_perpetrator_goes_to_the_unit_at_the_policys_serial_tier() -> None:
    medium = POLICY.model_copy(update={"linkage": POLICY.linkage.model_copy(update={"serial_tier": Tier.medium})})
    serial = LinkedHistory(1, 1)
    assert assess(facts(0), serial, medium).queue is Queue.unit


@pytest.mark.parametrize(
    ("sdash", "srp", "tier"),
    [
        (0, SrpLevel.low, Tier.standard),
        (0, SrpLevel.moderate, Tier.medium),
        (0, SrpLevel.high, Tier.high),
        (9, SrpLevel.low, Tier.high),
        (6, SrpLevel.moderate, Tier.medium),
    ],
)
def test_a_clinicians_srp_sets_a_floor_never_a_ceiling(sdash: int, srp: SrpLevel, tier: Tier) -> None:
    assert risk_tier(facts(sdash, srp=srp), NONE, POLICY)[0] is tier


@pytest.mark.parametrize(
    ("sdash", "history", "tier", "rule"),
    [
        (0, LinkedHistory(1, 0), Tier.medium, "repeat_perpetrator"),
        (5, LinkedHistory(2, 0), Tier.high, "repeat_perpetrator"),
        (0, LinkedHistory(2, 1), Tier.high, "serial_perpetrator"),
        (9, LinkedHistory(3, 2), Tier.high, "serial_perpetrator"),
        (0, LinkedHistory(0, 0), Tier.standard, None),
    ],
)
def test_a_linked_history_raises_the_tier(sdash: int, history: LinkedHistory, tier: Tier, rule: str | None) -> None:
    got, reasons = risk_tier(facts(sdash), history, POLICY)
    assert got is tier
    if rule:
        reason = next(r for r in reasons if r.rule == rule)
        assert reason.inputs == {"earlier_referrals": history.earlier_referrals, "other_victims": history.other_victims}


def test_a_repeat_perpetrator_already_high_is_not_said_to_be_raised() -> None:
    tier, reasons = risk_tier(facts(9), LinkedHistory(1, 0), POLICY)
    said = next(r.text for r in reasons if r.rule == "repeat_perpetrator")
    assert tier is Tier.high and said == "perpetrator linked to 1 earlier referral, 0 other victims: already high"
    assert next(
        r.text for r in risk_tier(facts(0), LinkedHistory(1, 0), POLICY)[1] if r.rule == "repeat_perpetrator"
    ).endswith(": raised to medium")


@pytest.mark.parametrize(
    ("history", "sentence"),
    [
        (LinkedHistory(2, 1), "perpetrator linked to 2 earlier referrals, 1 other victim: serial"),
        (
            LinkedHistory(0, 1, later_tonight=1),
            "perpetrator linked to 1 later referral tonight, 1 other victim: serial",
        ),
        (
            LinkedHistory(1, 2, later_tonight=2),
            "perpetrator linked to 1 earlier referral and 2 later referrals tonight, 2 other victims: serial",
        ),
    ],
)
def test_the_linkage_reason_reads_as_a_sentence(history: LinkedHistory, sentence: str) -> None:
    tier, reasons = risk_tier(facts(0), history, POLICY)
    assert sentence in reasons[-1].text and tier is Tier.high
    assert reasons[-1].inputs.get("later_tonight", 0) == history.later_tonight


@pytest.mark.parametrize(
    ("case", "queue"),
    [
        (facts(9), Queue.unit),  # high risk: the unit
        (facts(5, (Marker.perpetrator_mental_health,)), Queue.unit),  # complex medium case
        (facts(2, (Marker.perpetrator_on_licence,)), Queue.probation),
        (facts(2, (Marker.perpetrator_mental_health,)), Queue.mental_health),
        (facts(2, agency=ReferringAgency.helpline), Queue.victim_advocacy),
        (facts(6, agency=ReferringAgency.victim_service), Queue.victim_advocacy),
        (facts(2), Queue.police_investigation),  # the default route
        (facts(2, (Marker.perpetrator_on_licence, Marker.perpetrator_mental_health)), Queue.probation),  # first match
    ],
)
def test_queues_follow_the_unit_criteria_then_the_first_matching_partner_route(
    case: ReferralFacts, queue: Queue
) -> None:
    decision = assess(case, NONE, POLICY)
    assert decision.queue is queue
    assert decision.reasons[-1].rule in ("unit_tier", "unit_complex", "unit_serial", "partner_route")


def test_a_serial_perpetrator_goes_to_the_unit() -> None:
    decision = assess(facts(0), LinkedHistory(1, 1), POLICY)
    assert decision.queue is Queue.unit and decision.tier is Tier.high


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (facts(9, (Marker.breach_of_order,)), {"legal:stalking_protection_order", "legal:restraining_order"}),
        (facts(2, (Marker.perpetrator_mental_health,)), {"psychological"}),
        (facts(6), {"social_support"}),
    ],
)
def test_interventions_are_recommended_from_the_facts(case: ReferralFacts, expected: set[str]) -> None:
    assert expected <= set(assess(case, NONE, POLICY).interventions)


def high(key: str, sdash: int = 9, force: Force = Force.cheshire, received: date = date(2026, 11, 1)) -> ReferralFacts:
    return facts(sdash, key=key, force=force, received=received)


def test_capacity_goes_to_the_highest_risk_and_the_rest_overflow_with_a_reason() -> None:
    cases = [high("a", 8), high("b", 11), high("c", 10), facts(2, key="d")]
    out = {f.key: d for f, d in allocate([(f, assess(f, NONE, POLICY)) for f in cases], {Force.cheshire: 2}, POLICY)}
    assert [k for k, d in out.items() if d.queue is Queue.unit] == ["b", "c"]
    turned = out["a"]
    assert turned.queue is POLICY.unit.overflow_queue and turned.turned_away_for_capacity
    assert turned.reasons[-1].rule == "unit_at_capacity"
    assert out["d"].queue is Queue.police_investigation and not out["d"].turned_away_for_capacity


def test_capacity_ties_break_by_received_date_then_reference() -> None:
    cases = [high("z", received=date(2026, 11, 2)), high("y"), high("x")]
    out = allocate([(f, assess(f, NONE, POLICY)) for f in cases], {Force.cheshire: 2}, POLICY)
    assert [(f.key, d.queue is Queue.unit) for f, d in out] == [("x", True), ("y", True), ("z", False)]


def test_an_older_referral_takes_the_last_place_before_a_smaller_reference() -> None:
    cases = [high("a", received=date(2026, 11, 2)), high("b", received=date(2026, 11, 1))]
    out = allocate([(f, assess(f, NONE, POLICY)) for f in cases], {Force.cheshire: 1}, POLICY)
    assert [f.key for f, d in out if d.queue is Queue.unit] == ["b"]


def test_at_the_same_tier_and_sdash_the_case_with_more_markers_takes_the_last_place() -> None:
    plain, marked = high("a"), facts(9, (Marker.perpetrator_on_licence, Marker.escalation), key="b")
    out = allocate([(f, assess(f, NONE, POLICY)) for f in (plain, marked)], {Force.cheshire: 1}, POLICY)
    assert [f.key for f, d in out if d.queue is Queue.unit] == ["b"]


def test_a_case_turned_away_for_capacity_loses_the_units_own_interventions() -> None:
    cases = [facts(9, srp=SrpLevel.moderate, key="a"), high("b", 10)]
    out = {f.key: d for f, d in allocate([(f, assess(f, NONE, POLICY)) for f in cases], {Force.cheshire: 1}, POLICY)}
    assert Intervention.psychological in assess(cases[0], NONE, POLICY).interventions  # in the unit: with its clinician
    assert out["b"].queue is Queue.unit
    assert out["a"].queue is POLICY.unit.overflow_queue and Intervention.psychological not in out["a"].interventions


def test_capacity_is_per_force() -> None:
    cases = [high("a", force=Force.met), high("b", force=Force.cheshire)]
    out = {
        f.key: d.queue
        for f, d in allocate([(f, assess(f, NONE, POLICY)) for f in cases], {Force.met: 1, Force.cheshire: 0}, POLICY)
    }
    assert out == {"a": Queue.unit, "b": POLICY.unit.overflow_queue}


facts_strategy = st.builds(
    facts,
    sdash=st.integers(0, 11),
    markers=st.lists(st.sampled_from(list(Marker)), max_size=4, unique=True).map(tuple),
    srp=st.none() | st.sampled_from(list(SrpLevel)),
    agency=st.sampled_from(list(ReferringAgency)),
    force=st.sampled_from(list(Force)),
    key=st.text("abcdef", min_size=1, max_size=6),
)
history_strategy = st.builds(LinkedHistory, st.integers(0, 5), st.integers(0, 3)).filter(
    lambda h: h.other_victims <= h.earlier_referrals
)


@given(
    st.lists(st.tuples(facts_strategy, history_strategy), max_size=30, unique_by=lambda fh: fh[0].key),
    st.integers(0, 5),
)
def test_routing_is_total_and_deterministic(batch: list[tuple[ReferralFacts, LinkedHistory]], free: int) -> None:
    places = dict.fromkeys(Force, free)
    assessed = [(f, assess(f, h, POLICY)) for f, h in batch]
    once = allocate(assessed, places, POLICY)
    again = allocate(list(reversed(assessed)), places, POLICY)
    assert len(once) == len(batch)  # every referral gets exactly one decision
    assert all(isinstance(d, Decision) and d.queue in Queue and d.reasons for _, d in once)
    assert sorted(once, key=lambda fd: fd[0].key) == sorted(again, key=lambda fd: fd[0].key)  # order-independent
    for force in Force:
        assert sum(1 for f, d in once if f.force is force and d.queue is Queue.unit) <= free


full_facts_strategy = st.builds(
    ReferralFacts,
    key=st.text("abcdef", min_size=1, max_size=6),
    force=st.sampled_from(list(Force)),
    received_date=st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    referring_agency=st.sampled_from(list(ReferringAgency)),
    sdash_yes_count=st.integers(0, 11),
    markers=st.frozensets(st.sampled_from(list(Marker)), max_size=4),
    srp=st.none() | st.sampled_from(list(SrpLevel)),
    crime_ref_present=st.booleans(),
    violence_this_episode=st.booleans(),
    threats_violence=st.booleans(),
)


@given(st.lists(st.tuples(full_facts_strategy, history_strategy), max_size=40), st.integers(0, 5))
def test_deciding_equal_inputs_once_changes_no_decision(
    batch: list[tuple[ReferralFacts, LinkedHistory]], free: int
) -> None:
    shared = assess_all(batch, POLICY)
    assert shared == [(f, assess(f, h, POLICY)) for f, h in batch]
    places = dict.fromkeys(Force, free)
    assert allocate(shared, places, POLICY) == allocate([(f, assess(f, h, POLICY)) for f, h in batch], places, POLICY)


def test_an_invalid_policy_names_the_bad_key(tmp_path: Path) -> None:
    good = DEFAULT_POLICY.read_text()
    bad = tmp_path / "policy.yaml"
    bad.write_text(good.replace("high: 8", "high: 12", 1))
    with pytest.raises(OperatorError, match=r"risk\.sdash_bands\.high"):
        load_policy(bad)
    bad.write_text(good.replace("overflow_queue: police_investigation", "overflow_queue: unit"))
    with pytest.raises(OperatorError, match=r"unit.*overflow_queue must be a partner queue"):
        load_policy(bad)
    bad.write_text(good + "\nsurprise: 1\n")
    with pytest.raises(OperatorError, match="surprise"):
        load_policy(bad)
    # A channel must be a channel's id wherever it is named, never free text Slack would read as a mention.
    bad.write_text(good.replace("cheshire: C0CHLEAD", "cheshire: 'lead <!channel>'", 1))
    with pytest.raises(OperatorError, match=r"escalation\.lead_channels\.cheshire: String should match pattern"):
        load_policy(bad)
    # Unquoted, YAML reads 17:00 as a number; with an offset it is no wall-clock time: refused at load, not mid-night.
    for end in ("17:00", '"17:00+01:00"', '"5pm"'):
        bad.write_text(good.replace('end_of_working_day: "17:00"', f"end_of_working_day: {end}", 1))
        with pytest.raises(OperatorError, match=r"contacts\.end_of_working_day: must be a local time in quotes"):
            load_policy(bad)
    bad.write_text(good.replace('end_of_working_day: "17:00"', 'end_of_working_day: "16:30"', 1))
    assert str(load_policy(bad).contacts.end_of_working_day) == "16:30:00"
    # A section given again (to change one value) would silently replace the first: refused, naming the key.
    bad.write_text(good + "\nunit:\n  capacity: {cheshire: 10, hampshire: 10, met: 12}\n")
    with pytest.raises(OperatorError, match=r"not valid YAML at line \d+: key 'unit' given twice in one section"):
        load_policy(bad)
    # YAML's merge keys still work, an anchored section's keys given again below them included.
    shared = "forces:\n  cheshire: {jurisdiction: ENG}\n  hampshire: {jurisdiction: ENG}\n  met: {jurisdiction: ENG}\n"
    merged = (
        "forces:\n  cheshire: &eng {jurisdiction: ENG}\n  hampshire:\n    <<: *eng\n    jurisdiction: WLS\n"
        "  met: *eng\n"
    )
    bad.write_text(good.replace(shared, merged, 1))
    assert load_policy(bad).forces[Force.hampshire].jurisdiction == "WLS"
    # Saved in a Windows code page: one line, not a traceback.
    bad.write_bytes(good.replace("version:", "# \u00a3 costs\nversion:", 1).encode("cp1252"))
    with pytest.raises(OperatorError, match=r"is not UTF-8 \(byte \d+\)"):
        load_policy(bad)
