"""Source adapters: each inbox file onto the canonical referral frame, chosen by file-name prefix.

Inbox layout: inbox/<YYYY-MM-DD>/<source>_<YYYY-MM-DD>.<ext>, one file per
source and day, <source> a rules.codes.Source value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from rules.codes import Source
from tasks.adapters import nhs_trust, police_rms, victim_service
from tasks.adapters.canonical import AdaptedFile, FileHeld

Adapter = Callable[[Path], AdaptedFile]

# File-name prefix (the Source value followed by "_") -> the adapter that reads it.
SOURCES_BY_PREFIX: dict[str, Source] = {f"{source.value}_": source for source in Source}
ADAPTERS: dict[Source, Adapter] = {
    Source.police_rms: police_rms.adapt,
    Source.nhs_trust: nhs_trust.adapt,
    Source.victim_service: victim_service.adapt,
}
FILE_EXTENSIONS: dict[Source, str] = {
    Source.police_rms: police_rms.FILE_EXTENSION,
    Source.nhs_trust: nhs_trust.FILE_EXTENSION,
    Source.victim_service: victim_service.FILE_EXTENSION,
}
SOURCE_REF_PATTERNS: dict[Source, str] = {
    Source.police_rms: police_rms.SOURCE_REF_PATTERN,
    Source.nhs_trust: nhs_trust.SOURCE_REF_PATTERN,
    Source.victim_service: victim_service.SOURCE_REF_PATTERN,
}


def inbox_file_name(source: Source, day: date) -> str:
    """The name a source's export for one day has in the inbox."""
    return f"{source.value}_{day.isoformat()}.{FILE_EXTENSIONS[source]}"


def source_of(path: Path) -> Source | None:
    """The source a file name belongs to, or None when no adapter reads it."""
    for prefix, source in SOURCES_BY_PREFIX.items():
        if path.name.startswith(prefix):
            return source
    return None


NO_ADAPTER = "no adapter for this file name"


def records_as_named(path: Path) -> int | None:
    """The records a file holds, read as the feed its name gives but for case; None if it gives none.

    A file held for its name is counted as it will be once renamed as agreed, not by its physical lines.
    """
    from tasks.outcomes import FEED_PREFIX, feed_frame  # the contacts feed's reader imports these adapters

    folded = path.name.lower()
    try:
        if folded.startswith(FEED_PREFIX):
            return len(feed_frame(path))
        for prefix, source in SOURCES_BY_PREFIX.items():
            if folded.startswith(prefix):
                return len(ADAPTERS[source](path).frame)
    except FileHeld as held:
        return held.rows
    return None


def adapt(path: Path) -> AdaptedFile:
    """Map one inbox file onto the canonical frame, or raise FileHeld."""
    source = source_of(path)
    if source is None:
        raise FileHeld(NO_ADAPTER, rows=records_as_named(path))
    return ADAPTERS[source](path)


__all__ = [
    "ADAPTERS",
    "FILE_EXTENSIONS",
    "SOURCES_BY_PREFIX",
    "SOURCE_REF_PATTERNS",
    "AdaptedFile",
    "FileHeld",
    "adapt",
    "inbox_file_name",
    "source_of",
]
