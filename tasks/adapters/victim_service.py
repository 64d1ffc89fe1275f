"""Victim-service / national helpline feed: UTF-8 CSV, LF, DD/MM/YYYY dates, Yes/No answers."""

from __future__ import annotations

from pathlib import Path

from rules.codes import SDASH_COLUMNS, Behaviour, Force, Marker, ReferringAgency, Relationship, Source, SrpLevel
from tasks.adapters.canonical import AdaptedFile
from tasks.adapters.csv_feed import OPTIONAL_COLUMNS, CsvFeed, adapt_csv
from tasks.adapters.normalise import DMY_DATE, Labels, label_lookup

SOURCE = Source.victim_service
FILE_EXTENSION = "csv"
# Case number: "VS" and seven digits (VS0012345).
SOURCE_REF_PATTERN = r"^VS[0-9]{7}$"

# Labels as the victim service writes them; the first label of each code is the one it exports.
FORCE_LABELS: dict[str, Force] = {
    "Cheshire": Force.cheshire,
    "Hampshire": Force.hampshire,
    "London (Met)": Force.met,
    "London": Force.met,
}
AGENCY_LABELS: dict[str, ReferringAgency] = {
    "Victim service": ReferringAgency.victim_service,
    "National Stalking Helpline": ReferringAgency.helpline,
    "ISAC": ReferringAgency.victim_service,
    "Helpline": ReferringAgency.helpline,
    "Police": ReferringAgency.police,
    "NHS": ReferringAgency.nhs,
    "Probation": ReferringAgency.probation,
}
RELATIONSHIP_LABELS: dict[str, Relationship] = {
    "Ex partner": Relationship.ex_intimate_partner,
    "Acquaintance": Relationship.acquaintance,
    "Work": Relationship.work,
    "Family": Relationship.family,
    "Stranger": Relationship.stranger,
    "Online": Relationship.online_only,
    "Public figure": Relationship.public_figure,
}
BEHAVIOUR_LABELS: dict[str, Behaviour] = {
    "following": Behaviour.following,
    "contacting": Behaviour.contacting,
    "publishing": Behaviour.publishing,
    "monitoring online": Behaviour.monitoring_online,
    "loitering": Behaviour.loitering,
    "property interference": Behaviour.interfering_property,
    "watching/spying": Behaviour.watching_spying,
}
MARKER_LABELS: dict[str, Marker] = {
    "threats to kill": Marker.threats_to_kill,
    "weapon": Marker.weapon,
    "breach": Marker.breach_of_order,
    "sexual violence": Marker.sexual_violence,
    "escalation": Marker.escalation,
    "public figure": Marker.public_figure_fixation,
    "mental health": Marker.perpetrator_mental_health,
    "on licence": Marker.perpetrator_on_licence,
}
SRP_LABELS: dict[str, SrpLevel] = {"Low": SrpLevel.low, "Moderate": SrpLevel.moderate, "High": SrpLevel.high}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("Case No", "source_ref"),
    ("Force Area", "force"),
    ("Date Referred", "received_date"),
    ("referred_by", "referring_agency"),
    ("crime_ref", "crime_ref"),
    ("Relationship", "relationship"),
    ("behaviours", "behaviours"),
    ("Duration (months)", "duration_months"),
    ("Last Incident", "incident_date"),
    *((f"SDASH Q{number}", column) for number, column in enumerate(SDASH_COLUMNS, start=1)),
    ("SRP", "srp"),
    ("risk_markers", "markers"),
    ("Victim First Name", "victim_forename"),
    ("Victim Last Name", "victim_surname"),
    ("Victim DOB", "victim_dob"),
    ("Victim Phone", "victim_phone"),
    ("Victim Email", "victim_email"),
    ("Victim Address", "victim_address"),
    ("Victim Postcode", "victim_postcode"),
    ("Perp First Name", "perp_forename"),
    ("Perp Last Name", "perp_surname"),
    ("Perp DOB", "perp_dob"),
    ("Perp Phone", "perp_phone"),
    ("Perp Email", "perp_email"),
    ("Perp Address", "perp_address"),
    ("Perp Postcode", "perp_postcode"),
    ("Perp PNC", "perp_pnc_id"),
    ("Notes", "notes"),
)
FEED = CsvFeed(
    source=SOURCE,
    encoding="utf-8",
    bom=False,
    line_terminator="\n",
    columns=COLUMNS,
    optional=OPTIONAL_COLUMNS,
    list_separator=",",
    yes="Yes",
    no="No",
    dates=DMY_DATE,
    labels=Labels(
        force=label_lookup(FORCE_LABELS),
        referring_agency=label_lookup(AGENCY_LABELS),
        relationship=label_lookup(RELATIONSHIP_LABELS),
        behaviour=label_lookup(BEHAVIOUR_LABELS),
        marker=label_lookup(MARKER_LABELS),
        srp=label_lookup(SRP_LABELS),
    ),
    source_ref_pattern=SOURCE_REF_PATTERN,
)


def adapt(path: Path) -> AdaptedFile:
    """Map one victim-service export onto the canonical frame, or raise FileHeld."""
    return adapt_csv(path, FEED)
