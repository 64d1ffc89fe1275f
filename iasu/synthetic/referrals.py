"""Synthetic referrals in canonical terms, before any source writes them its own way."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TypeVar

from faker import Faker

from iasu.synthetic.people import Person, PersonFactory
from rules.codes import SDASH_ITEMS, Behaviour, Force, Marker, ReferringAgency, Relationship, Source, SrpLevel

HIGH_RISK_RATE = 0.32  # roughly the third the unit takes on
REPEAT_PERPETRATOR_RATE = 0.18
SAME_VICTIM_RATE = 0.25  # of repeats: a re-referral for the same victim
DUPLICATE_RATE = 0.04  # the same referral also sent by a second source
SEVERE_MARKERS = (Marker.threats_to_kill, Marker.weapon, Marker.breach_of_order, Marker.sexual_violence)

SOURCE_WEIGHTS: dict[Source, float] = {Source.police_rms: 0.55, Source.nhs_trust: 0.2, Source.victim_service: 0.25}
FORCE_WEIGHTS: dict[Force, float] = {Force.cheshire: 0.3, Force.hampshire: 0.3, Force.met: 0.4}
AGENCY_WEIGHTS: dict[Source, dict[ReferringAgency, float]] = {
    Source.police_rms: {
        ReferringAgency.police: 0.9,
        ReferringAgency.nhs: 0.04,
        ReferringAgency.probation: 0.03,
        ReferringAgency.victim_service: 0.02,
        ReferringAgency.helpline: 0.01,
    },
    Source.nhs_trust: {ReferringAgency.nhs: 0.65, ReferringAgency.probation: 0.3, ReferringAgency.police: 0.05},
    Source.victim_service: {ReferringAgency.victim_service: 0.55, ReferringAgency.helpline: 0.45},
}
RELATIONSHIP_WEIGHTS: dict[Relationship, float] = {
    Relationship.ex_intimate_partner: 0.45,
    Relationship.acquaintance: 0.18,
    Relationship.work: 0.1,
    Relationship.family: 0.05,
    Relationship.stranger: 0.1,
    Relationship.online_only: 0.09,
    Relationship.public_figure: 0.03,
}
CRIME_REF_RATE: dict[Source, float] = {Source.police_rms: 0.8, Source.nhs_trust: 0.15, Source.victim_service: 0.25}
SRP_RATE: dict[Source, float] = {Source.police_rms: 0.1, Source.nhs_trust: 0.55, Source.victim_service: 0.1}
PNC_SHOWN_RATE: dict[Source, float] = {Source.police_rms: 1.0, Source.nhs_trust: 0.3, Source.victim_service: 0.3}

# Fake case notes. They carry commas, quotes and line breaks on purpose; all
# are plain ASCII so that every feed, the police one included, can carry them.
NOTE_SENTENCES: tuple[str, ...] = (
    "Victim reports repeated calls, texts and voicemails from the suspect.",
    'Suspect seen outside victim\'s workplace "most mornings", per a colleague.',
    'Victim says: "I can\'t sleep, I check the windows every night."',
    "Gifts left on the doorstep; victim did not open them.",
    "New social media accounts created after each block, victim believes.",
    'Suspect told a friend he "would never let her go".',
    "Advised on diary keeping, evidence capture and 999 if in danger.",
    "Car tyres slashed twice last month, reported to the local team.",
    "Victim has moved address once already; suspect found the new one.",
    "Referred for ISAC support, consent given.",
    'Messages sent via a third party, "just to check she\'s ok".',
    "Suspect turned up at the victim's gym, then at her parents' house.",
)


@dataclass(frozen=True)
class Referral:
    """One referral as a source would send it, in canonical codes and real dates."""

    source: Source
    source_ref: str
    force: Force
    received: date
    referring_agency: ReferringAgency
    crime_ref: str | None
    relationship: Relationship
    behaviours: tuple[Behaviour, ...]
    duration_months: int
    incident_date: date | None
    sdash: tuple[bool, ...]  # one answer per rules.codes.SDASH_ITEMS, True meaning yes
    srp: SrpLevel | None
    markers: tuple[Marker, ...]
    victim: Person
    perp: Person
    pnc_shown: bool  # whether this source's export carries the perpetrator's PNC id
    notes: str


T = TypeVar("T")


def _weighted(rng: random.Random, weights: dict[T, float]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _in_order(chosen: Sequence[T], order: Sequence[T]) -> tuple[T, ...]:
    return tuple(item for item in order if item in chosen)


class ReferralFactory:
    """Draws each day's referrals, remembering perpetrators so that some come back."""

    def __init__(self, rng: random.Random, fake: Faker) -> None:
        self.rng = rng
        self.people = PersonFactory(rng, fake)
        # Perpetrators seen so far, each with their victims; the second list keeps
        # those the police export can carry, so a draw never scans the whole history.
        self.perpetrators: list[tuple[Person, list[Person]]] = []
        self.cp1252_perpetrators: list[tuple[Person, list[Person]]] = []
        self.sequence: dict[str, int] = {}

    def _next(self, key: str) -> int:
        if key not in self.sequence:
            self.sequence[key] = self.rng.randint(1_000, 9_000)
        self.sequence[key] += 1
        return self.sequence[key]

    def source_ref(self, source: Source, force: Force, received: date) -> str:
        """A new reference in the source's own shape."""
        if source is Source.police_rms:
            return f"{force.prefix}-URN-{received.year}-{self._next(force.value):06d}"
        if source is Source.nhs_trust:
            return f"NHS-REF-{self._next(source.value):08d}"
        return f"VS{self._next(source.value):07d}"

    def _people(self, day: date, cp1252_only: bool) -> tuple[Person, Person]:
        rng = self.rng
        known = self.cp1252_perpetrators if cp1252_only else self.perpetrators
        if known and rng.random() < REPEAT_PERPETRATOR_RATE:
            perp, victims = rng.choice(known)
            same = [victim for victim in victims if not cp1252_only or victim.cp1252_safe]
            if same and rng.random() < SAME_VICTIM_RATE:
                return rng.choice(same), perp
            victim = self.people.person(on=day, ages=(16, 80), cp1252_only=cp1252_only, perpetrator=False)
            victims.append(victim)
            return victim, perp
        perp = self.people.person(on=day, ages=(18, 70), cp1252_only=cp1252_only, perpetrator=True)
        victim = self.people.person(on=day, ages=(16, 80), cp1252_only=cp1252_only, perpetrator=False)
        entry = (perp, [victim])
        self.perpetrators.append(entry)
        if perp.cp1252_safe:
            self.cp1252_perpetrators.append(entry)
        return victim, perp

    def _risk(self, relationship: Relationship) -> tuple[tuple[bool, ...], tuple[Marker, ...], SrpLevel]:
        rng = self.rng
        high = rng.random() < HIGH_RISK_RATE
        yes_count = rng.randint(6, 11) if high else rng.choice((0, 1, 1, 2, 2, 3, 3, 4, 4, 5))
        yes_items = set(rng.sample(range(len(SDASH_ITEMS)), yes_count))
        sdash = tuple(index in yes_items for index in range(len(SDASH_ITEMS)))
        markers: set[Marker] = set()
        if rng.random() < (0.75 if high else 0.03):
            markers.update(rng.sample(SEVERE_MARKERS, rng.randint(1, 2)))
        for marker, (high_rate, other_rate) in {
            Marker.escalation: (0.4, 0.15),
            Marker.perpetrator_mental_health: (0.3, 0.12),
            Marker.perpetrator_on_licence: (0.15, 0.04),
        }.items():
            if rng.random() < (high_rate if high else other_rate):
                markers.add(marker)
        if relationship is Relationship.public_figure and rng.random() < 0.8:
            markers.add(Marker.public_figure_fixation)
        srp = rng.choice(
            (SrpLevel.moderate, SrpLevel.high) if high else (SrpLevel.low, SrpLevel.low, SrpLevel.moderate)
        )
        return sdash, _in_order(list(markers), list(Marker)), srp

    def referral(self, day: date, source: Source) -> Referral:
        """A new referral first sent by `source`, in that day's inbox."""
        rng = self.rng
        force = _weighted(rng, FORCE_WEIGHTS)
        received = day - timedelta(days=rng.choice((0,) * 18 + (1, 2)))
        victim, perp = self._people(day, cp1252_only=source is Source.police_rms)
        relationship = _weighted(rng, RELATIONSHIP_WEIGHTS)
        sdash, markers, srp = self._risk(relationship)
        behaviours = rng.sample(list(Behaviour), rng.randint(1, 4))
        sentences = rng.sample(NOTE_SENTENCES, rng.randint(1, 3))
        crime_ref = f"{force.prefix}/{rng.randint(1, 9_999_999):07d}/{received.year % 100:02d}"
        return Referral(
            source=source,
            source_ref=self.source_ref(source, force, received),
            force=force,
            received=received,
            referring_agency=_weighted(rng, AGENCY_WEIGHTS[source]),
            crime_ref=crime_ref if rng.random() < CRIME_REF_RATE[source] else None,
            relationship=relationship,
            behaviours=_in_order(behaviours, list(Behaviour)),
            duration_months=min(int(rng.expovariate(1 / 8)) + 1, 120),
            incident_date=received - timedelta(days=rng.randint(0, 45)) if rng.random() < 0.92 else None,
            sdash=sdash,
            srp=srp if rng.random() < SRP_RATE[source] else None,
            markers=markers,
            victim=victim,
            perp=perp,
            pnc_shown=rng.random() < PNC_SHOWN_RATE[source],
            notes=("\n" if rng.random() < 0.3 else " ").join(sentences),
        )

    def duplicate(self, original: Referral) -> Referral | None:
        """The same referral as sent by another source, or None if no other source can carry it."""
        others = [source for source in Source if source is not original.source]
        if not (original.victim.cp1252_safe and original.perp.cp1252_safe):
            others = [source for source in others if source is not Source.police_rms]
        if not others:
            return None
        source = self.rng.choice(others)
        return replace(
            original,
            source=source,
            source_ref=self.source_ref(source, original.force, original.received),
            pnc_shown=self.rng.random() < PNC_SHOWN_RATE[source],
        )

    def day(self, day: date, count: int) -> list[Referral]:
        """Exactly `count` records for one inbox folder, a few of them duplicates across sources."""
        rng = self.rng
        out: list[Referral] = []
        while len(out) < count:
            referral = self.referral(day, _weighted(rng, SOURCE_WEIGHTS))
            out.append(referral)
            if len(out) < count and rng.random() < DUPLICATE_RATE:
                copy = self.duplicate(referral)
                if copy is not None:
                    out.append(copy)
        return out
