"""Police records-system export: Windows-1252 CSV behind a UTF-8 BOM, CRLF, ISO dates, Y/N answers."""

from __future__ import annotations

from pathlib import Path

from rules.codes import SDASH_COLUMNS, Behaviour, Force, Marker, ReferringAgency, Relationship, Source, SrpLevel
from tasks.adapters.canonical import AdaptedFile
from tasks.adapters.csv_feed import OPTIONAL_COLUMNS, CsvFeed, adapt_csv
from tasks.adapters.normalise import ISO_DATE, Labels, label_lookup

SOURCE = Source.police_rms
FILE_EXTENSION = "csv"
# Unit reference number: force prefix, year, six-digit sequence (CH-URN-2026-004512).
SOURCE_REF_PATTERN = r"^(?:CH|HA|MP)-URN-[0-9]{4}-[0-9]{6}$"

# Labels as the police system writes them; the first label of each code is the one it exports.
FORCE_LABELS: dict[str, Force] = {
    "Cheshire Constabulary": Force.cheshire,
    "Hampshire Constabulary": Force.hampshire,
    "Hampshire and Isle of Wight Constabulary": Force.hampshire,
    "Metropolitan Police Service": Force.met,
    "Metropolitan Police": Force.met,
}
AGENCY_LABELS: dict[str, ReferringAgency] = {
    "Police": ReferringAgency.police,
    "NHS Trust": ReferringAgency.nhs,
    "Probation Service": ReferringAgency.probation,
    "Victim Service": ReferringAgency.victim_service,
    "National Stalking Helpline": ReferringAgency.helpline,
}
RELATIONSHIP_LABELS: dict[str, Relationship] = {
    "Ex-partner": Relationship.ex_intimate_partner,
    "Acquaintance": Relationship.acquaintance,
    "Colleague": Relationship.work,
    "Family member": Relationship.family,
    "Stranger": Relationship.stranger,
    "Online only": Relationship.online_only,
    "Public figure": Relationship.public_figure,
}
BEHAVIOUR_LABELS: dict[str, Behaviour] = {
    "Following": Behaviour.following,
    "Contacting": Behaviour.contacting,
    "Publishing material": Behaviour.publishing,
    "Monitoring online": Behaviour.monitoring_online,
    "Loitering": Behaviour.loitering,
    "Interfering with property": Behaviour.interfering_property,
    "Watching/spying": Behaviour.watching_spying,
}
MARKER_LABELS: dict[str, Marker] = {
    "Threats to kill": Marker.threats_to_kill,
    "Weapon": Marker.weapon,
    "Breach of order": Marker.breach_of_order,
    "Sexual violence": Marker.sexual_violence,
    "Escalation": Marker.escalation,
    "Fixated on public figure": Marker.public_figure_fixation,
    "Suspect MH concern": Marker.perpetrator_mental_health,
    "Suspect on licence": Marker.perpetrator_on_licence,
}
SRP_LABELS: dict[str, SrpLevel] = {"Low": SrpLevel.low, "Moderate": SrpLevel.moderate, "High": SrpLevel.high}

COLUMNS: tuple[tuple[str, str], ...] = (
    ("URN", "source_ref"),
    ("Force", "force"),
    ("DateReceived", "received_date"),
    ("ReferringAgency", "referring_agency"),
    ("CrimeRef", "crime_ref"),
    ("Relationship", "relationship"),
    ("Behaviours", "behaviours"),
    ("DurationMonths", "duration_months"),
    ("LastIncidentDate", "incident_date"),
    *((f"SDASH{number:02d}", column) for number, column in enumerate(SDASH_COLUMNS, start=1)),
    ("SRP", "srp"),
    ("RiskMarkers", "markers"),
    ("VictimForename", "victim_forename"),
    ("VictimSurname", "victim_surname"),
    ("VictimDOB", "victim_dob"),
    ("VictimPhone", "victim_phone"),
    ("VictimEmail", "victim_email"),
    ("VictimAddress", "victim_address"),
    ("VictimPostcode", "victim_postcode"),
    ("SuspectForename", "perp_forename"),
    ("SuspectSurname", "perp_surname"),
    ("SuspectDOB", "perp_dob"),
    ("SuspectPhone", "perp_phone"),
    ("SuspectEmail", "perp_email"),
    ("SuspectAddress", "perp_address"),
    ("SuspectPostcode", "perp_postcode"),
    ("SuspectPNC", "perp_pnc_id"),
    ("OfficerNotes", "notes"),
)
FEED = CsvFeed(
    source=SOURCE,
    encoding="cp1252",
    bom=True,
    line_terminator="\r\n",
    columns=COLUMNS,
    optional=OPTIONAL_COLUMNS,
    list_separator=";",
    yes="Y",
    no="N",
    dates=ISO_DATE,
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
    """Map one police export onto the canonical frame, or raise FileHeld."""
    return adapt_csv(path, FEED)
