"""Reading a delimited export: decoding, records with their physical lines, header checks.

The police and victim-service feeds differ only in the facts a CsvFeed holds
(encoding, headers, date layout, list separator, labels), so one reader
serves both, and the synthetic generator writes from the same description.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rules.codes import Source
from tasks.adapters.canonical import AdaptedFile, FileHeld, frame_from_columns, read_bytes
from tasks.adapters.mapping import canonical_columns
from tasks.adapters.normalise import DateFormat, Labels, label_key, reference
from tasks.collector import gc_paused

UTF8_BOM = b"\xef\xbb\xbf"

# Canonical columns a delimited feed may leave out entirely; any other missing
# header holds the file. A blank cell is a different matter: validation decides.
OPTIONAL_COLUMNS = frozenset(
    {
        "crime_ref",
        "incident_date",
        "srp",
        "markers",
        "victim_phone",
        "victim_email",
        "victim_address",
        "victim_postcode",
        "perp_phone",
        "perp_email",
        "perp_address",
        "perp_postcode",
        "perp_pnc_id",
        "notes",
    }
)


@dataclass(frozen=True)
class CsvFeed:
    """Everything that distinguishes one delimited source's export."""

    source: Source
    encoding: str  # Python codec name, decoded strictly
    bom: bool  # whether the export starts with a UTF-8 byte-order mark
    line_terminator: str
    columns: tuple[tuple[str, str], ...]  # (header as exported, canonical column), in file order
    optional: frozenset[str]  # canonical columns whose header may be absent
    list_separator: str  # between labels in the behaviours and markers cells
    yes: str
    no: str
    dates: DateFormat
    labels: Labels
    source_ref_pattern: str

    @property
    def headers(self) -> tuple[str, ...]:
        """The header row as the source writes it."""
        return tuple(header for header, _ in self.columns)


class Record(NamedTuple):
    """One record as found: where it starts, its text, its fields (None if unreadable)."""

    line_no: int
    raw: str  # without its final line ending
    fields: list[str] | None
    terminated: bool  # False only for a last record cut off before its line ending


def whole_cells(record: Record, width: int) -> list[str]:
    """The cells read whole from a last record cut off before its line ending: every cell but its last.

    Empty for any other record: one of the wrong width may have its cells shifted, so none is trusted.
    """
    if record.terminated or record.fields is None or len(record.fields) > width:
        return []
    return record.fields[:-1]


def physical_lines(text: str) -> list[str]:
    """Split on LF only, keeping endings: other Unicode line breaks may sit inside a field."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def hold_cr_only(text: str) -> None:
    """Hold a file whose lines end in CR alone, its records counted: read on LF, it would be one line."""
    if "\r" in text and "\n" not in text:
        lines = [line for line in text.split("\r") if line.strip()]
        raise FileHeld("lines end in CR alone: export with LF or CRLF endings", rows=max(len(lines) - 1, 0))


def records(text: str) -> Iterator[Record]:
    """Every non-blank record in the text, header included, with its starting line."""
    lines = physical_lines(text)
    reader = csv.reader(lines)
    while True:
        start = reader.line_num
        fields: list[str] | None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = None
        if fields == []:
            continue
        raw = lines[start] if reader.line_num == start + 1 else "".join(lines[start : reader.line_num])
        terminated = raw.endswith("\n")
        yield Record(start + 1, raw.removesuffix("\n").removesuffix("\r"), fields, terminated)


@gc_paused
def adapt_csv(path: Path, feed: CsvFeed) -> AdaptedFile:
    """Read one delimited export onto the canonical frame, or hold the whole file."""
    data = read_bytes(path)
    body = data.removeprefix(UTF8_BOM)
    try:
        text = body.decode(feed.encoding)
    except UnicodeDecodeError as err:
        counted = sum(1 for _ in records(body.decode(feed.encoding, "replace")))
        offset = err.start + len(data) - len(body)
        raise FileHeld(
            f"not valid {feed.encoding}: undecodable byte at offset {offset}", rows=max(counted - 1, 0)
        ) from None
    hold_cr_only(text)
    found = records(text)
    header = next(found, None)
    if header is None:
        raise FileHeld("no header row", rows=0)
    if header.fields is None:  # the records after an unreadable header are still counted, not the header
        raise FileHeld("no header row", rows=sum(1 for _ in found))
    position = {label_key(name): index for index, name in enumerate(header.fields)}
    missing = [name for name, column in feed.columns if label_key(name) not in position and column not in feed.optional]
    if missing:
        raise FileHeld(f"missing required columns: {', '.join(missing)}", rows=sum(1 for _ in found))
    # Which of two columns of one name carries the data is anybody's guess: the last would silently win.
    seen = Counter(label_key(name) for name in header.fields)
    doubled = [name for name in feed.headers if seen[label_key(name)] > 1]
    if doubled:
        raise FileHeld(f"duplicated columns: {', '.join(doubled)}", rows=sum(1 for _ in found))
    column_of = {label_key(name): column for name, column in feed.columns}
    names = [column_of.get(label_key(name), "") for name in header.fields]  # "" for a column nobody reads
    notes = _header_notes(feed, header.fields, position)
    width = len(header.fields)
    unread: list[str | None] = [None] * width  # the cells of a record that could not be read
    line_no: list[int] = []
    raw: list[str] = []
    parse_ok: list[bool] = []
    cells: list[Sequence[str | None]] = []
    ref_at = position.get(label_key(next(name for name, column in feed.columns if column == "source_ref")))
    cut_refs: dict[int, str | None] = {}
    for record in found:
        ok = record.fields is not None and len(record.fields) == width and record.terminated
        line_no.append(record.line_no)
        raw.append(record.raw)
        parse_ok.append(ok)
        cells.append(record.fields if ok and record.fields is not None else unread)
        if not ok and ref_at is not None and ref_at < len(whole := whole_cells(record, width)):
            cut_refs[record.line_no] = reference(whole[ref_at])
    by_position = list(zip(*cells, strict=True)) if cells else [() for _ in names]
    columns = canonical_columns(
        {name: values for name, values in zip(names, by_position, strict=True) if name},
        line_no=line_no,
        raw=raw,
        parse_ok=parse_ok,
        source=feed.source,
        labels=feed.labels,
        dates=feed.dates,
        list_separator=feed.list_separator,
        plain=True,
    )
    return AdaptedFile(
        path=path,
        source=feed.source,
        frame=frame_from_columns(columns),
        source_ref_pattern=feed.source_ref_pattern,
        notes=notes,
        cut_refs=cut_refs,
    )


def _header_notes(feed: CsvFeed, header: list[str], position: dict[str, int]) -> list[str]:
    """Remarks on optional columns absent (by name) and unexpected columns (counted only).

    An unexpected header cell is counted, not named: a file whose header row is
    damaged could put a record's values there.
    """
    known = {label_key(name) for name in feed.headers}
    notes = []
    absent = [name for name in feed.headers if label_key(name) not in position]
    if absent:
        notes.append(f"optional columns absent: {', '.join(absent)}")
    extra = sum(1 for name in header if label_key(name) not in known)
    if extra:
        notes.append(f"unexpected columns ignored: {extra}")
    return notes
