"""NHS trust referral feed: UTF-8 JSON Lines, nested victim and perpetrator, ISO dates, true/false answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rules.codes import SDASH_COLUMNS, Behaviour, Force, Marker, ReferringAgency, Relationship, Source, SrpLevel
from tasks.adapters.canonical import AdaptedFile, FileHeld, frame_from_columns, read_bytes
from tasks.adapters.csv_feed import UTF8_BOM
from tasks.adapters.mapping import canonical_columns
from tasks.adapters.normalise import ISO_DATE, Labels, label_lookup, reference, text
from tasks.collector import gc_paused

SOURCE = Source.nhs_trust
FILE_EXTENSION = "jsonl"
# Trust referral id: "NHS-REF-" and eight digits (NHS-REF-00012345).
SOURCE_REF_PATTERN = r"^NHS-REF-[0-9]{8}$"

# Labels as the trust writes them; the first label of each code is the one it exports.
FORCE_LABELS: dict[str, Force] = {
    "Cheshire": Force.cheshire,
    "Hampshire": Force.hampshire,
    "Metropolitan": Force.met,
    "London": Force.met,
}
AGENCY_LABELS: dict[str, ReferringAgency] = {
    "NHS": ReferringAgency.nhs,
    "Probation": ReferringAgency.probation,
    "Police": ReferringAgency.police,
    "Victim service": ReferringAgency.victim_service,
    "Helpline": ReferringAgency.helpline,
}
RELATIONSHIP_LABELS: dict[str, Relationship] = {
    "Former partner": Relationship.ex_intimate_partner,
    "Acquaintance": Relationship.acquaintance,
    "Work": Relationship.work,
    "Family": Relationship.family,
    "Stranger": Relationship.stranger,
    "Online only": Relationship.online_only,
    "Public figure": Relationship.public_figure,
}
BEHAVIOUR_LABELS: dict[str, Behaviour] = {
    "Following": Behaviour.following,
    "Contacting": Behaviour.contacting,
    "Publishing": Behaviour.publishing,
    "Online monitoring": Behaviour.monitoring_online,
    "Loitering": Behaviour.loitering,
    "Property interference": Behaviour.interfering_property,
    "Watching or spying": Behaviour.watching_spying,
}
MARKER_LABELS: dict[str, Marker] = {
    "Threats to kill": Marker.threats_to_kill,
    "Weapon": Marker.weapon,
    "Order breach": Marker.breach_of_order,
    "Sexual violence": Marker.sexual_violence,
    "Escalating": Marker.escalation,
    "Public figure fixation": Marker.public_figure_fixation,
    "Mental health concern": Marker.perpetrator_mental_health,
    "On probation licence": Marker.perpetrator_on_licence,
}
SRP_LABELS: dict[str, SrpLevel] = {"low": SrpLevel.low, "moderate": SrpLevel.moderate, "high": SrpLevel.high}

# Top-level keys in the order the trust writes them.
KEYS: tuple[str, ...] = (
    "referralId",
    "forceArea",
    "receivedDate",
    "referringAgency",
    "crimeReference",
    "relationship",
    "behaviours",
    "durationMonths",
    "lastIncidentDate",
    "sdash",
    "srp",
    "markers",
    "victim",
    "perpetrator",
    "notes",
)
OPTIONAL_KEYS = frozenset({"crimeReference", "lastIncidentDate", "srp", "markers", "notes"})
REQUIRED_KEYS: tuple[str, ...] = tuple(key for key in KEYS if key not in OPTIONAL_KEYS)
# Keys of the "sdash" object, in the form's order, and the canonical column each fills.
SDASH_KEYS: tuple[tuple[str, str], ...] = tuple(
    zip(
        (
            "victimVeryFrightened",
            "previousStalking",
            "propertyDamage",
            "visitsMoreThan3AWeek",
            "loiteringFollowing",
            "threatsViolence",
            "thirdPartiesHarassed",
            "violenceThisEpisode",
            "othersRecruited",
            "drugsAlcohol",
            "pastViolence",
        ),
        SDASH_COLUMNS,
        strict=True,
    )
)

LABELS = Labels(
    force=label_lookup(FORCE_LABELS),
    referring_agency=label_lookup(AGENCY_LABELS),
    relationship=label_lookup(RELATIONSHIP_LABELS),
    behaviour=label_lookup(BEHAVIOUR_LABELS),
    marker=label_lookup(MARKER_LABELS),
    srp=label_lookup(SRP_LABELS),
)


def _labels(value: object) -> tuple[object, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _address(value: object) -> str | None:
    if isinstance(value, list):
        return ", ".join(line for line in (text(item) for item in value) if line is not None)
    return text(value)


_EMPTY: dict[str, object] = {}


def _person(person: object) -> tuple[object, ...]:
    """forename, surname, dob, phone, email, address, postcode of a victim or perpetrator object."""
    found = person if isinstance(person, dict) else _EMPTY
    name, contact, address = found.get("name"), found.get("contact"), found.get("address")
    name = name if isinstance(name, dict) else _EMPTY
    contact = contact if isinstance(contact, dict) else _EMPTY
    address = address if isinstance(address, dict) else _EMPTY
    return (
        name.get("given"),
        name.get("family"),
        found.get("dateOfBirth"),
        contact.get("phone"),
        contact.get("email"),
        _address(address.get("lines")),
        address.get("postcode"),
    )


_PERSON_PARTS = ("forename", "surname", "dob", "phone", "email", "address", "postcode")
# The canonical columns fields() fills, in the order it returns them.
FIELDS: tuple[str, ...] = (
    "source_ref",
    "force",
    "received_date",
    "referring_agency",
    "crime_ref",
    "relationship",
    "behaviours",
    "duration_months",
    "incident_date",
    "srp",
    "markers",
    "notes",
    *(column for _, column in SDASH_KEYS),
    *(f"victim_{part}" for part in _PERSON_PARTS),
    *(f"perp_{part}" for part in _PERSON_PARTS),
    "perp_pnc_id",
)
_UNREAD: tuple[None, ...] = (None,) * len(FIELDS)


# The content is decoded strictly, so a lone surrogate can only come from a \uD800-\uDFFF escape:
# only a line holding such an escape needs the full check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(record: object) -> bool:
    """Whether every string in a parsed record, keys included, can be written as UTF-8."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):  # too deep to walk: as unreadable as too deep to parse
        return False
    return True


def fields(record: dict[str, object]) -> tuple[object, ...]:
    """One referral object flattened to values as found, in FIELDS order.

    A tuple rather than a dict: this runs once per record of files of 100,000.
    """
    get = record.get
    sdash = get("sdash")
    answers = sdash if isinstance(sdash, dict) else _EMPTY
    perpetrator = get("perpetrator")
    pnc_id = perpetrator.get("pncId") if isinstance(perpetrator, dict) else None
    return (
        get("referralId"),
        get("forceArea"),
        get("receivedDate"),
        get("referringAgency"),
        get("crimeReference"),
        get("relationship"),
        _labels(get("behaviours")),
        get("durationMonths"),
        get("lastIncidentDate"),
        get("srp"),
        _labels(get("markers")),
        get("notes"),
        *[answers.get(key) for key, _ in SDASH_KEYS],
        *_person(get("victim")),
        *_person(perpetrator),
        pnc_id,
    )


_DECODER = json.JSONDecoder()


def _skip(line: str, at: int) -> int:
    """The position of the first character from `at` on that is not JSON whitespace."""
    while at < len(line) and line[at] in " \t\r\n":
        at += 1
    return at


def whole_members(line: str) -> dict[str, object]:
    """The top-level members read whole from the start of a JSON object cut off (a truncated upload).

    A member counts only once the comma or brace after it is read: a number or a nested value cut short can
    look complete.
    """
    found: dict[str, object] = {}
    at = _skip(line, 0)
    if not line.startswith("{", at):
        return found
    at += 1
    try:
        while True:
            key, at = _DECODER.raw_decode(line, _skip(line, at))
            at = _skip(line, at)
            if not isinstance(key, str) or not line.startswith(":", at):
                return found
            value, at = _DECODER.raw_decode(line, _skip(line, at + 1))
            at = _skip(line, at)
            if not line.startswith((",", "}"), at):
                return found
            found[key] = value
            if line.startswith("}", at):
                return found
            at += 1
    except (ValueError, RecursionError):
        return found


def _records_in_array(content: str, lines: int) -> int:
    """A file's records if it is one JSON array (counted as they will be once sent as JSON Lines), else its lines."""
    try:
        whole = json.loads(content)
    except (ValueError, RecursionError):
        return lines
    return len(whole) if isinstance(whole, list) else lines


@gc_paused
def adapt(path: Path) -> AdaptedFile:
    """Map one NHS trust feed onto the canonical frame, or raise FileHeld."""
    data = read_bytes(path)
    body = data.removeprefix(UTF8_BOM)
    try:
        content = body.decode("utf-8")
    except UnicodeDecodeError as err:
        counted = sum(1 for line in body.split(b"\n") if line.strip())
        offset = err.start + len(data) - len(body)
        raise FileHeld(f"not valid utf-8: undecodable byte at offset {offset}", rows=counted) from None
    line_no: list[int] = []
    raw: list[str] = []
    parse_ok: list[bool] = []
    values: list[tuple[object, ...]] = []
    present: set[str] = set()
    cut_refs: dict[int, str | None] = {}
    lines = content.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        text_line = line.removesuffix("\r")
        try:
            record = json.loads(text_line)
        except (ValueError, RecursionError):  # nested past the parser's depth: as unreadable as broken JSON
            record = None
        # A lone surrogate (an unpaired \ud800 escape) parses, but no cipher or database takes it as UTF-8:
        # unreadable, quarantined on its own instead of failing the whole file at load.
        if isinstance(record, dict) and _SURROGATE_ESCAPE.search(text_line) and not _encodable(record):
            record = None
        ok = isinstance(record, dict)
        line_no.append(number)
        raw.append(text_line)
        parse_ok.append(ok)
        if isinstance(record, dict):
            present.update(record)
            values.append(fields(record))
        else:
            values.append(_UNREAD)
            # The last line, with no line ending after it: cut off by a truncated upload.
            if number == len(lines) and isinstance(ref := whole_members(text_line).get("referralId"), str):
                cut_refs[number] = reference(ref)
    # Not JSON Lines at all (one pretty-printed array, a CSV misnamed): each physical line would be quarantined
    # as a record of its own.
    if line_no and not any(parse_ok):
        raise FileHeld("no JSON object on any line", rows=_records_in_array(content, len(line_no)))
    missing = [key for key in REQUIRED_KEYS if key not in present]
    if line_no and missing:
        raise FileHeld(f"missing required keys: {', '.join(missing)}", rows=len(line_no))
    by_field = list(zip(*values, strict=True)) if values else [() for _ in FIELDS]
    columns = canonical_columns(
        dict(zip(FIELDS, by_field, strict=True)),
        line_no=line_no,
        raw=raw,
        parse_ok=parse_ok,
        source=SOURCE,
        labels=LABELS,
        dates=ISO_DATE,
        list_separator=None,
        plain=False,
    )
    return AdaptedFile(
        path=path,
        source=SOURCE,
        frame=frame_from_columns(columns),
        source_ref_pattern=SOURCE_REF_PATTERN,
        cut_refs=cut_refs,
    )
