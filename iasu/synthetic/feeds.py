"""Writing synthetic referrals in each source's own export format.

A referral is first rendered to "native" values: a dict keyed by canonical
column name holding what the source would write (its labels, its date layout,
its yes/no spelling). Defects are injected there, then the record is
serialised. The formats come from the adapters' own descriptions.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from iasu.synthetic.people import Person
from iasu.synthetic.referrals import Referral
from rules.codes import SDASH_COLUMNS, Source
from tasks.adapters import nhs_trust, police_rms, victim_service
from tasks.adapters.csv_feed import UTF8_BOM, CsvFeed
from tasks.adapters.normalise import ISO_DATE, DateFormat

Native = dict[str, object]


def exported(labels: Mapping[str, StrEnum]) -> dict[str, str]:
    """Code -> the label a source writes for it (the first listed for that code)."""
    out: dict[str, str] = {}
    for label, member in labels.items():
        out.setdefault(member.value, label)
    return out


@dataclass(frozen=True)
class Style:
    """How one source writes values."""

    source: Source
    dates: DateFormat
    yes: object
    no: object
    force: dict[str, str]
    referring_agency: dict[str, str]
    relationship: dict[str, str]
    behaviour: dict[str, str]
    marker: dict[str, str]
    srp: dict[str, str]


STYLES: dict[Source, Style] = {
    module.SOURCE: Style(
        source=module.SOURCE,
        dates=dates,
        yes=yes,
        no=no,
        force=exported(module.FORCE_LABELS),
        referring_agency=exported(module.AGENCY_LABELS),
        relationship=exported(module.RELATIONSHIP_LABELS),
        behaviour=exported(module.BEHAVIOUR_LABELS),
        marker=exported(module.MARKER_LABELS),
        srp=exported(module.SRP_LABELS),
    )
    for module, dates, yes, no in (
        (police_rms, police_rms.FEED.dates, police_rms.FEED.yes, police_rms.FEED.no),
        (nhs_trust, ISO_DATE, True, False),
        (victim_service, victim_service.FEED.dates, victim_service.FEED.yes, victim_service.FEED.no),
    )
}
CSV_FEEDS: dict[Source, CsvFeed] = {Source.police_rms: police_rms.FEED, Source.victim_service: victim_service.FEED}


def _person(values: Native, prefix: str, person: Person, style: Style) -> None:
    values[f"{prefix}_forename"] = person.forename
    values[f"{prefix}_surname"] = person.surname
    values[f"{prefix}_dob"] = style.dates.format(person.dob)
    values[f"{prefix}_phone"] = person.phone
    values[f"{prefix}_email"] = person.email
    values[f"{prefix}_address"] = list(person.address)
    values[f"{prefix}_postcode"] = person.postcode


def native(referral: Referral) -> Native:
    """A referral's values as its source writes them, keyed by canonical column."""
    style = STYLES[referral.source]
    values: Native = {
        "source_ref": referral.source_ref,
        "force": style.force[referral.force],
        "received_date": style.dates.format(referral.received),
        "referring_agency": style.referring_agency[referral.referring_agency],
        "crime_ref": referral.crime_ref,
        "relationship": style.relationship[referral.relationship],
        "behaviours": [style.behaviour[code] for code in referral.behaviours],
        "duration_months": referral.duration_months,
        "incident_date": style.dates.format(referral.incident_date) if referral.incident_date else None,
        "srp": style.srp[referral.srp] if referral.srp else None,
        "markers": [style.marker[code] for code in referral.markers],
        "notes": referral.notes,
    }
    for column, answer in zip(SDASH_COLUMNS, referral.sdash, strict=True):
        values[column] = style.yes if answer else style.no
    _person(values, "victim", referral.victim, style)
    _person(values, "perp", referral.perp, style)
    values["perp_pnc_id"] = referral.perp.pnc_id if referral.pnc_shown else None
    return values


def _cell(value: object, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return separator.join(str(item) for item in value)
    return str(value)


class CsvWriter:
    """Serialises native records one at a time, so each record's text is known."""

    def __init__(self, feed: CsvFeed) -> None:
        self.feed = feed
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator=feed.line_terminator)

    def _line(self, cells: list[str]) -> str:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(cells)
        return self.buffer.getvalue()

    def header(self) -> str:
        """The header line, line ending included."""
        return self._line(list(self.feed.headers))

    def record(self, values: Native) -> str:
        """One record's text, line ending included."""
        cells = []
        for _, column in self.feed.columns:
            value = values.get(column)
            separator = ", " if column.endswith("_address") else self.feed.list_separator
            cells.append(_cell(value, separator))
        return self._line(cells)


def _json_person(values: Native, prefix: str) -> dict[str, object]:
    return {
        "name": {"given": values.get(f"{prefix}_forename"), "family": values.get(f"{prefix}_surname")},
        "dateOfBirth": values.get(f"{prefix}_dob"),
        "contact": {"phone": values.get(f"{prefix}_phone"), "email": values.get(f"{prefix}_email")},
        "address": {"lines": values.get(f"{prefix}_address"), "postcode": values.get(f"{prefix}_postcode")},
    }


def nhs_record(values: Native) -> str:
    """One NHS trust JSON line, line ending included."""
    record: dict[str, object] = {
        "referralId": values.get("source_ref"),
        "forceArea": values.get("force"),
        "receivedDate": values.get("received_date"),
        "referringAgency": values.get("referring_agency"),
        "crimeReference": values.get("crime_ref"),
        "relationship": values.get("relationship"),
        "behaviours": values.get("behaviours"),
        "durationMonths": values.get("duration_months"),
        "lastIncidentDate": values.get("incident_date"),
        "sdash": {key: values.get(column) for key, column in nhs_trust.SDASH_KEYS},
        "srp": values.get("srp"),
        "markers": values.get("markers"),
        "victim": _json_person(values, "victim"),
        "perpetrator": {**_json_person(values, "perp"), "pncId": values.get("perp_pnc_id")},
        "notes": values.get("notes"),
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def encode(source: Source, text: str) -> bytes:
    """The file's bytes in the source's declared encoding."""
    feed = CSV_FEEDS.get(source)
    if feed is None:
        return text.encode("utf-8")
    return (UTF8_BOM if feed.bom else b"") + text.encode(feed.encoding)
