"""Writing a synthetic inbox: one folder per day, one export per source, optionally dirty."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from iasu.synthetic.defects import RECORD_DEFECTS, DefectKind, inject, truncate
from iasu.synthetic.feeds import CSV_FEEDS, STYLES, CsvWriter, encode, native, nhs_record
from iasu.synthetic.referrals import Referral, ReferralFactory
from rules.codes import Source
from tasks.adapters import inbox_file_name

FAKER_LOCALE = "en_GB"


@dataclass(frozen=True)
class FileSummary:
    """What was written to one file: counts only, never a value."""

    day: date
    source: Source
    file_name: str
    records: int  # records in the file, repeats and a truncated last record included
    defects: Mapping[DefectKind, int]  # every kind, zero when none injected


@dataclass(frozen=True)
class GenerateSummary:
    """What generate() wrote, per day and file."""

    files: tuple[FileSummary, ...]

    @property
    def records(self) -> int:
        """Records written across all files."""
        return sum(file.records for file in self.files)

    def defect_totals(self) -> dict[DefectKind, int]:
        """Injected defects of each kind across all files."""
        return {kind: sum(file.defects[kind] for file in self.files) for kind in DefectKind}

    def records_by_day(self) -> dict[date, dict[Source, int]]:
        """Records written per folder and source."""
        out: dict[date, dict[Source, int]] = {}
        for file in self.files:
            out.setdefault(file.day, {})[file.source] = file.records
        return out

    def as_dict(self) -> dict[str, object]:
        """The summary as JSON-ready counts, for the CLI."""
        return {
            "records": self.records,
            "defects": {kind.value: count for kind, count in self.defect_totals().items()},
            "files": [
                {
                    "day": file.day.isoformat(),
                    "source": file.source.value,
                    "file": file.file_name,
                    "records": file.records,
                    "defects": {kind.value: count for kind, count in file.defects.items() if count},
                }
                for file in self.files
            ],
        }


def _render(source: Source, texts: list[str]) -> str:
    if source is Source.nhs_trust:
        return "".join(texts)
    return CsvWriter(CSV_FEEDS[source]).header() + "".join(texts)


def _record_text(
    source: Source, writer: CsvWriter | None, referral: Referral, kind: DefectKind | None, day: date, rng: random.Random
) -> str:
    values = native(referral)
    if kind is not None:
        inject(values, kind, referral=referral, day=day, style=STYLES[source], rng=rng)
    return writer.record(values) if writer is not None else nhs_record(values)


def write_file(
    folder: Path, source: Source, day: date, referrals: list[Referral], *, dirty: float, rng: random.Random
) -> FileSummary:
    """Write one source's export for one day, injecting defects into a `dirty` fraction of records."""
    writer = CsvWriter(CSV_FEEDS[source]) if source in CSV_FEEDS else None
    count = len(referrals)
    chosen = rng.sample(range(count), round(dirty * count))
    # Cycling through the kinds (in an order drawn per file) means every kind
    # shows up once a file has enough defects, and small files still vary.
    order = list(RECORD_DEFECTS)
    rng.shuffle(order)
    kinds = [order[index % len(order)] for index in range(len(chosen))]  # `chosen` is in random order
    kind_of = dict(zip(chosen, kinds, strict=True))
    defects = dict.fromkeys(DefectKind, 0)
    keyed: list[tuple[float, int, str, bool]] = []  # (position, tie-break, text, clean)
    for index, referral in enumerate(referrals):
        kind = kind_of.get(index)
        text = _record_text(source, writer, referral, kind, day, rng)
        keyed.append((float(index), len(keyed), text, kind is None))
        if kind is not None:
            defects[kind] += 1
        if kind is DefectKind.repeated_row:
            keyed.append((index + rng.random() * (count - index), len(keyed), text, False))
    keyed.sort()
    texts = [text for _, _, text, _ in keyed]
    clean = [is_clean for _, _, _, is_clean in keyed]
    if dirty > 0 and texts and rng.random() < dirty and True in clean:
        last = len(clean) - 1 - clean[::-1].index(True)
        texts.append(truncate(texts.pop(last), rng))
        defects[DefectKind.truncated_last_line] += 1
    name = inbox_file_name(source, day)
    (folder / name).write_bytes(encode(source, _render(source, texts)))
    return FileSummary(day=day, source=source, file_name=name, records=len(texts), defects=defects)


def generate(start: date, days: int, per_day: int, seed: int, dirty: float, out: Path) -> GenerateSummary:
    """Write `days` inbox folders from `start` under `out`, `per_day` records each across the sources.

    The same arguments always give byte-identical files. A `dirty` fraction of
    each file's records gets one injected defect (see DefectKind).
    """
    if days < 0 or per_day < 0:
        raise ValueError("days and per_day must not be negative")
    if not 0.0 <= dirty <= 1.0:
        raise ValueError("dirty must be between 0 and 1")
    rng = random.Random(seed)
    fake = Faker(FAKER_LOCALE)
    fake.seed_instance(seed)
    factory = ReferralFactory(rng, fake)
    files: list[FileSummary] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        folder = out / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        referrals = factory.day(day, per_day)
        for source in Source:
            mine = [referral for referral in referrals if referral.source is source]
            files.append(write_file(folder, source, day, mine, dirty=dirty, rng=rng))
    return GenerateSummary(files=tuple(files))


UNDECODABLE = b"\x81\x8d\x8f\x90\x9d\xff"  # undefined in Windows-1252 and invalid UTF-8


def write_undecodable(folder: Path, source: Source, day: date) -> Path:
    """Write a source's export for `day` that cannot be decoded in its declared encoding."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / inbox_file_name(source, day)
    if source is Source.nhs_trust:
        content = b'{"referralId": "NHS-REF-' + UNDECODABLE + b'"}\n'
    else:
        content = encode(source, CsvWriter(CSV_FEEDS[source]).header()) + UNDECODABLE + b"\n"
    path.write_bytes(content)
    return path
