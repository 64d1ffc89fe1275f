"""The code lists every stage shares: one name for one thing, everywhere."""

from __future__ import annotations

from enum import StrEnum


class Force(StrEnum):
    """A police force area taking part in the programme."""

    cheshire = "cheshire"
    hampshire = "hampshire"
    met = "met"

    @property
    def prefix(self) -> str:
        """Two-letter code used in case references (CH-2026-000123)."""
        return FORCE_PREFIX[self]


FORCE_PREFIX: dict[Force, str] = {
    Force.cheshire: "CH",
    Force.hampshire: "HA",
    Force.met: "MP",
}


class Source(StrEnum):
    """The system a referral export comes from; also the inbox file-name prefix."""

    police_rms = "police_rms"
    nhs_trust = "nhs_trust"
    victim_service = "victim_service"


class ReferringAgency(StrEnum):
    """Who made the referral (may differ from the system that exported it)."""

    police = "police"
    nhs = "nhs"
    probation = "probation"
    victim_service = "victim_service"
    helpline = "helpline"


class Relationship(StrEnum):
    """Relationship of the suspected perpetrator to the victim."""

    ex_intimate_partner = "ex_intimate_partner"
    acquaintance = "acquaintance"
    work = "work"
    family = "family"
    stranger = "stranger"
    online_only = "online_only"
    public_figure = "public_figure"


class Behaviour(StrEnum):
    """Behaviours listed in s2A(3) Protection from Harassment Act 1997."""

    following = "following"
    contacting = "contacting"
    publishing = "publishing"
    monitoring_online = "monitoring_online"
    loitering = "loitering"
    interfering_property = "interfering_property"
    watching_spying = "watching_spying"


class Marker(StrEnum):
    """Aggravating markers recorded on a referral."""

    threats_to_kill = "threats_to_kill"
    weapon = "weapon"
    breach_of_order = "breach_of_order"
    sexual_violence = "sexual_violence"
    escalation = "escalation"
    public_figure_fixation = "public_figure_fixation"
    perpetrator_mental_health = "perpetrator_mental_health"
    perpetrator_on_licence = "perpetrator_on_licence"


class SrpLevel(StrEnum):
    """Stalking Risk Profile judgement, when a clinician has made one."""

    low = "low"
    moderate = "moderate"
    high = "high"


# The eleven S-DASH (2009) stalking screening questions, in the form's order.
SDASH_ITEMS: tuple[str, ...] = (
    "victim_very_frightened",
    "previous_stalking",
    "property_damage",
    "visits_more_than_3_a_week",
    "loitering_following",
    "threats_violence",
    "third_parties_harassed",
    "violence_this_episode",
    "others_recruited",
    "drugs_alcohol",
    "past_violence",
)

SDASH_ANSWERS: tuple[str, ...] = ("yes", "no")


def sdash_column(item: str) -> str:
    """Name of the canonical-frame column holding one S-DASH answer."""
    return f"sdash_{item}"


SDASH_COLUMNS: tuple[str, ...] = tuple(sdash_column(i) for i in SDASH_ITEMS)


def values(enum: type[StrEnum]) -> list[str]:
    """The code strings of an enum, in declaration order."""
    return [m.value for m in enum]


class Tier(StrEnum):
    """Risk tier a triage decision assigns."""

    high = "high"
    medium = "medium"
    standard = "standard"


class Queue(StrEnum):
    """Where a case is worked: the unit itself or one partner agency's queue."""

    unit = "unit"
    police_investigation = "police_investigation"
    victim_advocacy = "victim_advocacy"
    mental_health = "mental_health"
    probation = "probation"


class CaseStatus(StrEnum):
    """Whether a case is still being worked."""

    open = "open"
    closed = "closed"


class PersonRole(StrEnum):
    """The part a person plays in a referral."""

    victim = "victim"
    perpetrator = "perpetrator"


class ContactKind(StrEnum):
    """Kinds of scheduled contact."""

    victim_first_contact = "victim_first_contact"
    victim_followup = "victim_followup"
    perpetrator_checkin = "perpetrator_checkin"


class ContactStatus(StrEnum):
    """Lifecycle of a scheduled contact; only pending ones can be missed."""

    pending = "pending"
    done = "done"
    cancelled = "cancelled"
    superseded = "superseded"


class AlertStatus(StrEnum):
    """Delivery state of an outbox alert."""

    pending = "pending"
    sent = "sent"
    failed = "failed"
    dry_run = "dry_run"
    # An unsent report that an alert failed, made moot when that alert was put back to be sent again.
    withdrawn = "withdrawn"
