"""Defects the generator injects with --dirty: at most one per record, written the source's way."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum

from iasu.synthetic.feeds import Native, Style
from iasu.synthetic.referrals import Referral
from rules.codes import SDASH_COLUMNS, Source


class DefectKind(StrEnum):
    """A kind of injected defect; the summary counts each per file."""

    missing_required = "missing_required"
    impossible_date = "impossible_date"
    future_date = "future_date"
    unknown_code = "unknown_code"
    sdash_not_yes_no = "sdash_not_yes_no"
    dates_out_of_order = "dates_out_of_order"
    repeated_row = "repeated_row"
    whitespace_case = "whitespace_case"
    truncated_last_line = "truncated_last_line"


# Kinds given to single records; truncation is decided once per file.
RECORD_DEFECTS: tuple[DefectKind, ...] = tuple(
    kind for kind in DefectKind if kind is not DefectKind.truncated_last_line
)

REQUIRED_FIELDS = ("source_ref", "force", "received_date", "relationship", "victim_surname", "victim_dob")
UNKNOWN_LABELS: dict[str, tuple[str, ...]] = {
    "force": ("Durham Constabulary", "Police Scotland", "Lancashire"),
    "relationship": ("Neighbour", "Landlord"),
    "behaviours": ("Hacking accounts", "Sending gifts"),
    "markers": ("Arson threat", "Animal cruelty"),
    "referring_agency": ("School", "Housing association"),
    "srp": ("Very high", "Medium"),
}
NOT_YES_NO: tuple[object, ...] = ("maybe", "Unknown", "2", "N/A", "?")
IMPOSSIBLE_MONTH_DAYS = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (13, 1), (0, 12))
WHITESPACE_FIELDS = ("source_ref", "force", "relationship", "referring_agency", "crime_ref", "srp", *SDASH_COLUMNS)

Injector = Callable[[Native, Referral, date, Style, random.Random], None]


def _missing_required(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    values[rng.choice(REQUIRED_FIELDS)] = rng.choice(("", None)) if style.source is Source.nhs_trust else ""


def _impossible_date(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    field = rng.choice(("received_date", "incident_date", "victim_dob", "perp_dob"))
    base = {
        "received_date": referral.received,
        "incident_date": referral.incident_date or referral.received,
        "victim_dob": referral.victim.dob,
        "perp_dob": referral.perp.dob,
    }[field]
    if field.endswith("_dob") and rng.random() < 0.5:
        values[field] = style.dates.render(1850, base.month, min(base.day, 28))
    else:
        month, day_of_month = rng.choice(IMPOSSIBLE_MONTH_DAYS)
        values[field] = style.dates.render(base.year, month, day_of_month)


def _future_date(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    field = rng.choice(("received_date", "incident_date"))
    values[field] = style.dates.format(day + timedelta(days=rng.randint(1, 30)))


def _unknown_code(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    field = rng.choice(list(UNKNOWN_LABELS))
    label = rng.choice(UNKNOWN_LABELS[field])
    current = values.get(field)
    values[field] = [*current, label] if isinstance(current, list) else label


def _sdash_not_yes_no(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    answers = (*NOT_YES_NO, 2) if style.source is Source.nhs_trust else NOT_YES_NO
    values[rng.choice(SDASH_COLUMNS)] = rng.choice(answers)


def _dates_out_of_order(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    # Received two days before the folder date, then something after it but
    # not after the folder date, so this never reads as a future date too.
    received = day - timedelta(days=2)
    values["received_date"] = style.dates.format(received)
    if rng.random() < 0.7:
        values["incident_date"] = style.dates.format(received + timedelta(days=rng.randint(1, 2)))
    else:
        values[rng.choice(("victim_dob", "perp_dob"))] = style.dates.format(received + timedelta(days=1))


def _repeated_row(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    """Nothing to change: the writer emits the record twice."""


def _odd(text: str, rng: random.Random) -> str:
    cased = rng.choice(
        (
            text.upper(),
            text.lower(),
            text.swapcase(),
            "".join(char.upper() if index % 2 else char.lower() for index, char in enumerate(text)),
        )
    )
    return rng.choice(("", " ", "  ", "\t")) + cased + rng.choice((" ", "  ", "\t "))


def _whitespace_case(values: Native, referral: Referral, day: date, style: Style, rng: random.Random) -> None:
    fields = [field for field in WHITESPACE_FIELDS if isinstance(values.get(field), str) and values[field]]
    for field in rng.sample(fields, min(len(fields), rng.randint(2, 3))):
        values[field] = _odd(str(values[field]), rng)
    behaviours = values.get("behaviours")
    if isinstance(behaviours, list) and behaviours:
        index = rng.randrange(len(behaviours))
        values["behaviours"] = [_odd(str(item), rng) if i == index else item for i, item in enumerate(behaviours)]


INJECTORS: dict[DefectKind, Injector] = {
    DefectKind.missing_required: _missing_required,
    DefectKind.impossible_date: _impossible_date,
    DefectKind.future_date: _future_date,
    DefectKind.unknown_code: _unknown_code,
    DefectKind.sdash_not_yes_no: _sdash_not_yes_no,
    DefectKind.dates_out_of_order: _dates_out_of_order,
    DefectKind.repeated_row: _repeated_row,
    DefectKind.whitespace_case: _whitespace_case,
}


def inject(
    values: Native, kind: DefectKind, *, referral: Referral, day: date, style: Style, rng: random.Random
) -> None:
    """Give one record's native values a defect of the given kind, in place."""
    INJECTORS[kind](values, referral, day, style, rng)


def truncate(record: str, rng: random.Random) -> str:
    """A record cut off part-way through, with no line ending."""
    body = record.rstrip("\r\n")
    return body[: rng.randint(max(1, len(body) // 5), max(1, len(body) * 4 // 5))]
