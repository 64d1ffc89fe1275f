"""Triage: a referral's risk tier, its queue, recommended interventions, and the reasons for each.

`assess` decides one referral from its own facts and its perpetrator's linked
history; `allocate` then applies the unit's capacity to a whole night's
assessments at once, highest risk first. Both are pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from rules.codes import Force, Marker, Queue, ReferringAgency, SrpLevel, Tier
from rules.policy import PartnerRoute, Policy

TIER_RANK = {Tier.standard: 0, Tier.medium: 1, Tier.high: 2}
RANK_TIER = {rank: tier for tier, rank in TIER_RANK.items()}


class Intervention:
    """Intervention codes the unit can recommend."""

    psychological = "psychological"
    social_support = "social_support"
    spo_application = "legal:stalking_protection_order"
    charge = "legal:charge_s2a_s4a"
    restraining_order = "legal:restraining_order"


@dataclass(frozen=True)
class ReferralFacts:
    """What triage may look at: codes and counts, never a personal value."""

    key: str  # stable identity for ordering (source:source_ref)
    force: Force
    received_date: date
    referring_agency: ReferringAgency
    sdash_yes_count: int
    markers: frozenset[Marker]
    srp: SrpLevel | None = None
    crime_ref_present: bool = False
    violence_this_episode: bool = False
    threats_violence: bool = False


@dataclass(frozen=True)
class LinkedHistory:
    """Earlier referrals about the same perpetrator, found by blind index only."""

    earlier_referrals: int = 0  # distinct earlier cases with this perpetrator
    other_victims: int = 0  # of those (and of later_tonight), distinct victims other than this referral's
    later_tonight: int = 0  # referrals later the same night that show this perpetrator is serial


@dataclass(frozen=True)
class Reason:
    """One rule that fired: its code, a sentence for people, the inputs it used."""

    rule: str
    text: str
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored on the case and in the audit log)."""
        return {"rule": self.rule, "text": self.text, "inputs": dict(self.inputs)}


@dataclass(frozen=True)
class Decision:
    """Where a referral goes and why."""

    tier: Tier
    queue: Queue
    interventions: tuple[str, ...]
    reasons: tuple[Reason, ...]
    qualifies_for_unit: bool
    turned_away_for_capacity: bool = False
    partner_queue: Queue = Queue.police_investigation  # where it goes if not the unit


def _raise(tier: Tier, steps: int = 1) -> Tier:
    return RANK_TIER[min(TIER_RANK[tier] + steps, TIER_RANK[Tier.high])]


def _at_least(tier: Tier, floor: Tier) -> Tier:
    return tier if TIER_RANK[tier] >= TIER_RANK[floor] else floor


def risk_tier(facts: ReferralFacts, history: LinkedHistory, policy: Policy) -> tuple[Tier, list[Reason]]:
    """The tier from S-DASH bands, markers, SRP and the linked history, with a reason for each step."""
    bands = policy.risk.sdash_bands
    count = facts.sdash_yes_count
    if count >= bands.high:
        tier, band_min = Tier.high, bands.high
    elif count >= bands.medium:
        tier, band_min = Tier.medium, bands.medium
    else:
        tier, band_min = Tier.standard, 0
    reasons = [
        Reason(
            "sdash_band",
            f"S-DASH {count} of 11 yes: {tier.value} band (from {band_min})",
            {"sdash_yes_count": count, "band": tier.value, "band_min": band_min},
        )
    ]
    forcing = sorted(m.value for m in facts.markers if m in policy.risk.high_markers)
    if forcing:
        if tier is not Tier.high:
            tier = Tier.high
        reasons.append(Reason("high_marker", f"high-risk marker(s): {', '.join(forcing)}", {"markers": forcing}))
    raising = sorted(m.value for m in facts.markers if m in policy.risk.raise_markers)
    if raising and tier is not Tier.high:
        tier = _raise(tier)
        reasons.append(Reason("raise_marker", f"raised one tier for {', '.join(raising)}", {"markers": raising}))
    if facts.srp is not None and facts.srp in policy.risk.srp_floor:
        floor = policy.risk.srp_floor[facts.srp]
        if TIER_RANK[floor] > TIER_RANK[tier]:
            tier = floor
            reasons.append(
                Reason(
                    "srp_floor", f"SRP judgement {facts.srp.value}: at least {floor.value}", {"srp": facts.srp.value}
                )
            )
    if history.earlier_referrals or history.later_tonight:
        link = {"earlier_referrals": history.earlier_referrals, "other_victims": history.other_victims}
        linked = [f"{history.earlier_referrals} earlier referral{'s' if history.earlier_referrals != 1 else ''}"]
        if history.later_tonight:
            link["later_tonight"] = history.later_tonight
            later = f"{history.later_tonight} later referral{'s' if history.later_tonight != 1 else ''} tonight"
            linked = [later] if not history.earlier_referrals else [*linked, later]
        text = (
            f"perpetrator linked to {' and '.join(linked)}, {history.other_victims} other victim"
            f"{'s' if history.other_victims != 1 else ''}"
        )
        if history.other_victims:
            new = _at_least(tier, policy.linkage.serial_tier)
            reasons.append(Reason("serial_perpetrator", f"{text}: serial, at least {new.value}", link))
            tier = new
        elif history.earlier_referrals >= policy.linkage.repeat_raise_after:
            new = _raise(tier)
            said = f"raised to {new.value}" if new is not tier else f"already {tier.value}"
            reasons.append(Reason("repeat_perpetrator", f"{text}: {said}", link))
            tier = new
    return tier, reasons


def _route_matches(route: PartnerRoute, facts: ReferralFacts, tier: Tier) -> bool:
    return (
        (not route.markers_any or bool(facts.markers & set(route.markers_any)))
        and (not route.referring_agency_any or facts.referring_agency in route.referring_agency_any)
        and (not route.tiers or tier in route.tiers)
    )


def partner_queue(facts: ReferralFacts, tier: Tier, policy: Policy) -> tuple[Queue, Reason]:
    """The first partner route that matches (the policy's last route always does)."""
    for index, route in enumerate(policy.partner_routes):
        if _route_matches(route, facts, tier):
            conditions = {
                k: [v.value for v in vals]
                for k, vals in (
                    ("markers_any", route.markers_any),
                    ("referring_agency_any", route.referring_agency_any),
                    ("tiers", route.tiers),
                )
                if vals
            }
            text = f"partner route {index + 1}: {route.queue.value}" + (
                f" ({', '.join(f'{k}={v}' for k, v in conditions.items())})" if conditions else " (default)"
            )
            return route.queue, Reason("partner_route", text, {"route": index + 1, **conditions})
    raise AssertionError("policy validation guarantees a default partner route")


def qualifies_for_unit(facts: ReferralFacts, tier: Tier, history: LinkedHistory, policy: Policy) -> Reason | None:
    """Why the unit should take this case, or None."""
    unit = policy.unit
    if tier in unit.take_tiers:
        return Reason("unit_tier", f"{tier.value} risk: unit case", {"tier": tier.value})
    if unit.take_serial and history.other_victims:
        return Reason("unit_serial", "serial perpetrator: unit case", {"other_victims": history.other_victims})
    complex_markers = sorted(m.value for m in facts.markers if m in unit.take_markers_at_medium)
    if tier is Tier.medium and complex_markers:
        return Reason(
            "unit_complex", f"medium risk with {', '.join(complex_markers)}: unit case", {"markers": complex_markers}
        )
    return None


def interventions(facts: ReferralFacts, tier: Tier, queue: Queue) -> tuple[str, ...]:
    """Recommended interventions: psychological, social support, legal options."""
    chosen: list[str] = []
    if Marker.perpetrator_mental_health in facts.markers or (queue is Queue.unit and facts.srp is not None):
        chosen.append(Intervention.psychological)
    if tier is not Tier.standard or queue is Queue.victim_advocacy:
        chosen.append(Intervention.social_support)
    if tier is Tier.high:
        chosen.append(Intervention.spo_application)
    if facts.crime_ref_present or facts.violence_this_episode or facts.threats_violence:
        chosen.append(Intervention.charge)
    if Marker.breach_of_order in facts.markers:
        chosen.append(Intervention.restraining_order)
    return tuple(chosen)


def assess(facts: ReferralFacts, history: LinkedHistory, policy: Policy) -> Decision:
    """Decide one referral as if the unit had room (allocate() applies capacity)."""
    tier, reasons = risk_tier(facts, history, policy)
    partner, route_reason = partner_queue(facts, tier, policy)
    unit_reason = qualifies_for_unit(facts, tier, history, policy)
    queue = Queue.unit if unit_reason else partner
    reasons.append(unit_reason or route_reason)
    return Decision(
        tier=tier,
        queue=queue,
        interventions=interventions(facts, tier, queue),
        reasons=tuple(reasons),
        qualifies_for_unit=unit_reason is not None,
        partner_queue=partner,
    )


def _decision_key(facts: ReferralFacts, history: LinkedHistory) -> tuple[Any, ...]:
    # Everything assess() reads, and nothing else: key, force and received date do not change a decision.
    return (
        facts.referring_agency,
        facts.sdash_yes_count,
        facts.markers,
        facts.srp,
        facts.crime_ref_present,
        facts.violence_this_episode,
        facts.threats_violence,
        history,
    )


def assess_all(
    batch: Iterable[tuple[ReferralFacts, LinkedHistory]], policy: Policy
) -> list[tuple[ReferralFacts, Decision]]:
    """assess() for a night's referrals; equal inputs share one (immutable) decision.

    A night of a hundred thousand referrals has only a few hundred distinct
    combinations of what triage reads, so each is decided once.
    """
    decided: dict[tuple[Any, ...], Decision] = {}
    out: list[tuple[ReferralFacts, Decision]] = []
    for facts, history in batch:
        key = _decision_key(facts, history)
        decision = decided.get(key)
        if decision is None:
            decision = decided[key] = assess(facts, history, policy)
        out.append((facts, decision))
    return out


def priority(facts: ReferralFacts, decision: Decision) -> tuple[Any, ...]:
    """Sort key, most urgent first: tier, S-DASH count, markers, then oldest and by key (deterministic)."""
    return (
        -TIER_RANK[decision.tier],
        -facts.sdash_yes_count,
        -len(facts.markers),
        facts.received_date,
        facts.key,
    )


def allocate(
    assessed: Iterable[tuple[ReferralFacts, Decision]], free_places: Mapping[Force, int], policy: Policy
) -> list[tuple[ReferralFacts, Decision]]:
    """Give the unit's free places per force to the most urgent qualifying cases; the rest overflow, reasoned.

    Nothing is dropped and nothing already in the unit is displaced: a case
    turned away goes to the policy's overflow queue with the reason visible.
    """
    ordered: Sequence[tuple[ReferralFacts, Decision]] = sorted(assessed, key=lambda fd: priority(*fd))
    left = dict(free_places)
    out: list[tuple[ReferralFacts, Decision]] = []
    # Decisions are immutable and shared between equal referrals (assess_all), so is their overflow.
    turned_away: dict[tuple[int, Force], Decision] = {}
    for facts, decision in ordered:
        if decision.queue is Queue.unit:
            if left.get(facts.force, 0) > 0:
                left[facts.force] -= 1
            else:
                key = (id(decision), facts.force)
                if key not in turned_away:
                    turned_away[key] = _overflow(facts, decision, policy)
                decision = turned_away[key]
        out.append((facts, decision))
    return out


def _overflow(facts: ReferralFacts, decision: Decision, policy: Policy) -> Decision:
    """The decision for a unit case the unit has no place for: the overflow queue, with the reason."""
    overflow = policy.unit.overflow_queue
    reason = Reason(
        "unit_at_capacity",
        f"unit at capacity for {facts.force.value} "
        f"({policy.unit.capacity[facts.force]} places): sent to {overflow.value}",
        {"force": facts.force.value, "capacity": policy.unit.capacity[facts.force]},
    )
    return replace(
        decision,
        queue=overflow,
        reasons=(*decision.reasons, reason),
        interventions=interventions(facts, decision.tier, overflow),
        turned_away_for_capacity=True,
    )
