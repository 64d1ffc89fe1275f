"""Source adapters: each inbox file onto the canonical referral frame, chosen by file-name prefix.

Inbox layout: inbox/<YYYY-MM-DD>/<source>_<YYYY-MM-DD>.<ext>, one file per
source and day, <source> a rules.codes.Source value.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rules.codes import Source
from tasks.adapters import nhs_trust, police_rms, victim_service
from tasks.adapters.canonical import AdaptedFile, FileHeld

if TYPE_CHECKING:
    from prefect.tasks import TaskRunNameCallbackWithParameters

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


# The contacts feed's file-name prefix (its reader, tasks.outcomes, reads it from here).
FEED_PREFIX = "contacts_"
_FEED_PREFIXES = "|".join(re.escape(p) for p in (*SOURCES_BY_PREFIX, FEED_PREFIX))
# A name as agreed, but for case: <source>_<YYYY-MM-DD>.<ext>, or the contacts feed's.
_AGREED_NAME = re.compile(rf"(?i)(?:{_FEED_PREFIXES})\d{{4}}-\d{{2}}-\d{{2}}\.(?:csv|jsonl)")
_SAFE_HEAD = re.compile(rf"(?i)(?:{_FEED_PREFIXES})(?:\d{{4}}-\d{{2}}-\d{{2}})?")
_SAFE_SUFFIXES = (".csv", ".jsonl", ".json", ".txt")


def shown_name(path: Path | str) -> str:
    """An inbox file's name as records, logs, the report, Data Docs and Slack show it.

    A name as agreed (whatever its case) is shown as it is. Any other is the sender's free text and may say
    anything, a person's name included, or not even be UTF-8: it is shown by what is safe in it (a feed's
    prefix and the date after it, a usual extension) and the first 8 hex digits of its bytes' SHA-256, so
    staff can still tell it apart and find it (`police_rms_2026-11-17~5e0c9a1b.csv`).
    """
    name = path.name if isinstance(path, Path) else path
    if _AGREED_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    head = _SAFE_HEAD.match(name)
    suffix = Path(name).suffix
    return (
        f"{head.group(0).rstrip('_') if head else 'file'}~{digest}{suffix if suffix.lower() in _SAFE_SUFFIXES else ''}"
    )


def run_name(verb: str) -> TaskRunNameCallbackWithParameters:
    """A Prefect task_run_name for a task taking one inbox file as `path`: the verb and the file as shown."""

    def name(parameters: dict[str, Any]) -> str:
        return f"{verb} {shown_name(parameters['path'])}"

    # Prefect passes the run's parameters to a callable whose argument is named `parameters`.
    return cast("TaskRunNameCallbackWithParameters", name)


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
    from tasks.outcomes import feed_frame  # the contacts feed's reader imports these adapters

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
    "FEED_PREFIX",
    "FILE_EXTENSIONS",
    "SOURCES_BY_PREFIX",
    "SOURCE_REF_PATTERNS",
    "AdaptedFile",
    "FileHeld",
    "adapt",
    "inbox_file_name",
    "shown_name",
    "source_of",
]
