"""Mapping a whole file's parsed values onto canonical columns at once.

Adapters collect each canonical field as one column of values as found (a
record that could not be parsed contributes None everywhere), then every
column is normalised in one pass. A feed repeats its labels and dates
endlessly, so each distinct value is normalised once and looked up after:
that, not per-row work, keeps a 100,000-record file to a second or two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar

from rules.codes import SDASH_COLUMNS, Source
from tasks.adapters.canonical import COLUMNS
from tasks.adapters.normalise import DateFormat, Labels, code, codes, reference, text, whole_number, yes_no

T = TypeVar("T")

PERSONAL_TEXT = (
    "victim_forename",
    "victim_surname",
    "victim_phone",
    "victim_email",
    "victim_address",
    "victim_postcode",
    "perp_forename",
    "perp_surname",
    "perp_phone",
    "perp_email",
    "perp_address",
    "perp_postcode",
    "perp_pnc_id",
    "notes",
)
# Each parsed field with its *_given flag.
DATE_FIELDS = (
    ("received_date", "received_date_given"),
    ("incident_date", "incident_date_given"),
    ("victim_dob", "victim_dob_given"),
    ("perp_dob", "perp_dob_given"),
)
# Value types that can share one cache without equal-but-different keys (True == 1 == 1.0).
_SAFE_MIXES = (frozenset({str, type(None), bool}), frozenset({str, type(None), int}))


def map_column(values: Sequence[object], compute: Callable[[object], T], *, plain: bool = False) -> list[T]:
    """compute() of every value, called once per distinct value.

    `plain` promises that every value is a str or None (any delimited feed),
    which saves a pass over the column.
    """
    kinds = set() if plain else set(map(type, values))
    if plain or any(kinds <= safe for safe in _SAFE_MIXES):
        table = {value: compute(value) for value in set(values)}
        return list(map(table.__getitem__, values))
    # Mixed JSON values: keep True apart from 1, and compute unhashable values each time.
    cache: dict[object, T] = {}
    out: list[T] = []
    for value in values:
        try:
            key = (type(value), value)
            if key not in cache:
                cache[key] = compute(value)
            out.append(cache[key])
        except TypeError:
            out.append(compute(value))
    return out


def _unzip(pairs: list[tuple[object, bool]], count: int) -> tuple[list[object], list[object]]:
    """Values and their given-flags as two columns."""
    if not count:
        return [], []
    values, flags = zip(*pairs, strict=True)
    return list(values), list(flags)


def _labels(value: object, lookup: Mapping[str, str], separator: str | None) -> tuple[str, ...]:
    if isinstance(value, str):
        return codes(value.split(separator) if separator else [value], lookup)
    if isinstance(value, list | tuple):
        return codes(value, lookup)
    return ()


def canonical_columns(
    fields: Mapping[str, Sequence[object]],
    *,
    line_no: list[int],
    raw: list[str],
    parse_ok: list[bool],
    source: Source,
    labels: Labels,
    dates: DateFormat,
    list_separator: str | None,
    plain: bool,
) -> dict[str, list[object]]:
    """Every canonical column, in COLUMNS order, from columns of values as found.

    `fields` is keyed by canonical column name; a missing key is a column of
    absent values. Behaviours and markers hold lists of labels or, for a
    delimited feed, cell text to split on `list_separator`. `plain` says every
    value is a str or None, as in any delimited feed.
    """
    count = len(line_no)
    absent: list[object] = [None] * count

    def column(name: str) -> Sequence[object]:
        return fields.get(name, absent)

    def mapped(name: str, compute: Callable[[object], T]) -> list[T]:
        return map_column(column(name), compute, plain=plain)

    out: dict[str, list[object]] = {
        "line_no": list(line_no),
        "raw": list(raw),
        "parse_ok": list(parse_ok),
        "source": [source.value if ok else None for ok in parse_ok],
        # References and personal values are nearly all distinct: a cache would only cost.
        "source_ref": [None if value is None else reference(value) for value in column("source_ref")],
        "crime_ref": [None if value is None else reference(value) for value in column("crime_ref")],
        "force": mapped("force", partial(code, lookup=labels.force)),
        "referring_agency": mapped("referring_agency", partial(code, lookup=labels.referring_agency)),
        "relationship": mapped("relationship", partial(code, lookup=labels.relationship)),
        "srp": mapped("srp", partial(code, lookup=labels.srp)),
        "behaviours": mapped("behaviours", partial(_labels, lookup=labels.behaviour, separator=list_separator)),
        "markers": mapped("markers", partial(_labels, lookup=labels.marker, separator=list_separator)),
    }
    for name, given in DATE_FIELDS:
        out[name], out[given] = _unzip(mapped(name, dates.parse), count)
    out["duration_months"], out["duration_given"] = _unzip(mapped("duration_months", whole_number), count)
    for name in SDASH_COLUMNS:
        out[name] = mapped(name, yes_no)
    for name in PERSONAL_TEXT:
        out[name] = [(value.strip() or None) if type(value) is str else text(value) for value in column(name)]
    return {name: out[name] for name in COLUMNS}
