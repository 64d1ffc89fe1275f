"""Contact outcomes coming back: the daily contacts feed and `iasu contact record`, applied once each.

A reported outcome is stored once (natural key: case, kind, when, outcome),
so a rerun or a resent file never applies it twice. Completing a contact only
marks it done; the scheduler creates the next one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine, select, update

from expectations.runner import NightValidator
from iasu.privacy import BlindIndex, FieldCipher
from models import Case, Contact, ContactOutcome
from models.types import utcnow
from rules.cadence import rescheduled, retry_after_no_answer
from rules.calendar import calendars, iso_datetime, iso_day
from rules.clock import end_of_day
from rules.codes import CaseStatus, ContactKind, ContactStatus, Force
from rules.policy import Policy
from tasks import audit
from tasks.adapters import run_name, shown_name
from tasks.audit import AUDIT
from tasks.bulk import copy_insert, copy_insert_returning, one_of, update_rows
from tasks.ingest import FileCounts, hold_unread, insert_batch, record_held, seen_before
from tasks.load import BATCHES, QuarantinedRow, quarantine, resolve_quarantined_keys
from tasks.locks import casework_lock

CASES = Case.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
OUTCOMES = ContactOutcome.__table__  # type: ignore[attr-defined]
FEED_COLUMNS = ("case_ref", "kind", "happened_at", "outcome", "new_date", "recorded_by")
REQUIRED_COLUMNS = ("case_ref", "kind", "happened_at", "outcome")
OUTCOMES_KNOWN = ("completed", "attempted_no_answer", "refused", "rescheduled")
# The spelling agreed with the units ("attempted-no-answer"), read as the code the platform stores.
OUTCOME_SPELLINGS = {"attempted-no-answer": "attempted_no_answer"}
SOURCE = "contacts"
CASE_REF = re.compile(r"^[A-Z]{2,3}-\d{4}-\d{6}$")
KINDS = frozenset(k.value for k in ContactKind)


@dataclass(frozen=True)
class OutcomeReport:
    """One reported outcome: codes and a case reference only."""

    case_ref: str
    kind: str
    happened_at: datetime  # aware
    outcome: str
    new_date: date | None = None
    recorded_by: str | None = None
    line_no: int | None = None


@dataclass
class OutcomeResult:
    """What became of a set of reports."""

    applied: int = 0
    duplicates: int = 0
    rejected: dict[int, str] = field(default_factory=dict)  # index in the input -> reason
    applied_at: set[int] = field(default_factory=set)  # indexes in the input of the reports applied
    completed: int = 0
    touched_cases: set[int] = field(default_factory=set)


def parse_when(text: str, timezone: str) -> datetime | None:
    """ISO 8601 date-time; without an offset it is local time in the unit's time zone."""
    try:
        value = iso_datetime(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(timezone))


def record_outcomes(
    conn: Connection, reports: list[OutcomeReport], *, origin: str, actor: str, policy: Policy, timezone: str
) -> OutcomeResult:
    """Store new reports and apply each to its case's pending contact of that kind, in time order."""
    casework_lock(conn, "contact record" if origin == "cli" else "the contacts feed")
    result = OutcomeResult()
    refs = sorted({r.case_ref for r in reports})
    cases = {
        row.case_ref: row
        for row in conn.execute(
            select(CASES.c.id, CASES.c.case_ref, CASES.c.force, CASES.c.status, CASES.c.opened_on).where(
                one_of(conn, CASES.c.case_ref, refs)
            )
        )
    }
    candidates: list[tuple[int, OutcomeReport, Any]] = []
    zone = ZoneInfo(timezone)
    for i, report in enumerate(reports):
        case = cases.get(report.case_ref)
        if case is None:
            result.rejected[i] = "case_known"
        elif case.status != CaseStatus.open:
            result.rejected[i] = "case_open"
        elif (day := _local_date(report.happened_at, zone)) is None or day < case.opened_on:
            # A contact the unit made before its case existed is a mistyped date (a year out, say): applied,
            # it would set the next contact's deadline in the past and count a first contact before referral.
            result.rejected[i] = "happened_since_opened"
        else:
            candidates.append((i, report, case))
    if not candidates:
        return result
    now = utcnow()
    rows = [
        {
            "case_id": case.id,
            "kind": r.kind,
            "happened_at": r.happened_at,
            "outcome": r.outcome,
            "new_date": r.new_date,
            "recorded_by": r.recorded_by,
            "origin": origin,
            "recorded_at": now,
        }
        for _, r, case in candidates
    ]
    # Staged and inserted in one statement (COPY on PostgreSQL): a feed reports a day's contacts at once.
    inserted = copy_insert_returning(
        conn,
        OUTCOMES,
        rows,
        ["case_id", "kind", "happened_at", "outcome"],
        ["id", "case_id", "kind", "happened_at", "outcome"],
    )
    # Instants compared in UTC: a feed's local time in the hour the clocks go back never equals its UTC
    # value across zones (PEP 495), so the report would read as a duplicate of its own new row.
    new_ids = {(o.case_id, o.kind, o.happened_at.astimezone(UTC), o.outcome): o.id for o in inserted}
    fresh = []
    for i, report, case in candidates:
        key = (case.id, report.kind, report.happened_at.astimezone(UTC), report.outcome)
        outcome_id = new_ids.pop(key, None)  # pop: a repeat inside the same input is a duplicate too
        if outcome_id is None:
            result.duplicates += 1
        else:
            fresh.append((i, report, case, outcome_id))
    pending = {
        (row.case_id, row.kind): dict(row._mapping)
        for row in conn.execute(
            select(CONTACTS.c.id, CONTACTS.c.case_id, CONTACTS.c.kind, CONTACTS.c.attempts, CONTACTS.c.due_at).where(
                CONTACTS.c.status == ContactStatus.pending,
                one_of(conn, CONTACTS.c.case_id, sorted({case.id for _, _, case, _ in fresh})),
            )
        )
    }
    updates: dict[int, dict[str, Any]] = {}  # contact id -> its state after the reports so far
    cals = calendars(policy, timezone)  # once per feed, not once per report
    links: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, report, case, outcome_id in sorted(fresh, key=lambda f: (f[1].happened_at, f[0])):
        contact = pending.get((case.id, report.kind))
        if contact is None:
            result.rejected[i] = "contact_pending"  # nothing due of that kind: kept as reported, not applied
            continue
        cal = cals[Force(case.force)]
        change: dict[str, Any] = {
            "id": contact["id"],
            "attempts": contact["attempts"] + 1,
            "last_attempt_at": report.happened_at,
            "status": ContactStatus.pending,
            "outcome": report.outcome,
            "completed_at": None,
            "due_at": None,
        }
        if report.outcome in ("completed", "refused"):
            change.update(status=ContactStatus.done, completed_at=report.happened_at)
            pending.pop((case.id, report.kind))
            result.completed += report.outcome == "completed"
        elif report.outcome == "attempted_no_answer":
            change["due_at"] = retry_after_no_answer(cal.local_date(report.happened_at), policy, cal)
        else:  # rescheduled
            assert report.new_date is not None
            change.update(due_at=rescheduled(report.new_date, cal), attempts=contact["attempts"])
        # A contact not moved keeps its due time; one reported on twice (no answer, then done) ends as the last
        # report left it, with the due time the earlier one gave.
        if change["due_at"] is None:
            change["due_at"] = contact["due_at"]
        contact["attempts"], contact["due_at"] = change["attempts"], change["due_at"]
        updates[contact["id"]] = change
        links.append({"id": outcome_id, "contact_id": contact["id"]})
        events.append(
            audit.event(
                at=now,
                actor=actor,
                action="contact_outcome",
                entity="contacts",
                entity_id=contact["id"],
                details={"case_ref": report.case_ref, "kind": report.kind, "outcome": report.outcome, "origin": origin},
            )
        )
        result.applied += 1
        result.applied_at.add(i)
        result.touched_cases.add(case.id)
    # Set-based: a feed reports a day's contacts at once, thousands at national scale.
    update_rows(conn, CONTACTS, "id", updates.values())
    update_rows(conn, OUTCOMES, "id", links)
    copy_insert(conn, AUDIT, events)
    return result


UNREAD_KIND = "?"  # an entry's kind when it does not read: no outcome names it, so only a person settles it


def entry_key(case_ref: str | None, kind: str | None) -> str | None:
    """A contacts-feed quarantine entry's key: its case and contact kind (neither personal), the kind `?` when
    it does not read (staff still see the case; an outcome of another contact of the case must not close it);
    None when the case does not read."""
    if not (case_ref and CASE_REF.fullmatch(case_ref)):
        return None
    return f"{case_ref}:{kind if kind in KINDS else UNREAD_KIND}"


def resolve_by_hand(conn: Connection, case_ref: str, kind: str) -> int:
    """Close the feed's open entries for a contact whose outcome staff recorded by hand: it has arrived."""
    keys = [key] if (key := entry_key(case_ref, kind)) else []
    return resolve_quarantined_keys(conn, source=SOURCE, keys=keys, before_batch=None, now=utcnow())


def feed_frame(path: Path) -> pd.DataFrame:
    """Read a contacts feed (UTF-8 CSV, header FEED_COLUMNS) into rows with validation flags."""
    from tasks.adapters.canonical import FileHeld, read_bytes
    from tasks.adapters.csv_feed import UTF8_BOM, hold_cr_only, records, whole_cells

    data = read_bytes(path)
    body = data.removeprefix(UTF8_BOM)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Records counted as the referral feeds count them, so a held file's received equals its held rows.
        counted = sum(1 for _ in records(body.decode("utf-8", "replace")))
        offset = exc.start + len(data) - len(body)
        raise FileHeld(f"not valid utf-8: undecodable byte at offset {offset}", rows=max(counted - 1, 0)) from None
    # The referral feeds' reader: records split on LF only (CR, form feed and U+2028 may sit in a cell), each
    # with its own text and first line; one the csv module cannot read comes back without fields, not raised.
    hold_cr_only(text)
    found = records(text)
    first = next(found, None)
    header = [h.strip().lower() for h in (first.fields or [])] if first else []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FileHeld(f"missing column(s): {', '.join(missing)}", rows=sum(1 for _ in found))
    # As in the referral feeds: which of two columns of one name carries the outcome is anybody's guess.
    doubled = [name for name in FEED_COLUMNS if header.count(name) > 1]
    if doubled:
        raise FileHeld(f"duplicated columns: {', '.join(doubled)}", rows=sum(1 for _ in found))
    position = {name: header.index(name) for name in FEED_COLUMNS if name in header}
    rows: list[dict[str, Any]] = []
    for record in found:
        # A line of only commas is a record with every field empty: counted, and quarantined by the suite.
        values = record.fields if record.fields is not None and len(record.fields) == len(header) else None
        get = {name: (values[idx].strip() or None) if values else None for name, idx in position.items()}
        if (spelt := get.get("outcome")) in OUTCOME_SPELLINGS:
            get["outcome"] = OUTCOME_SPELLINGS[str(spelt)]
        # A last record cut off is unread; its case and kind, if read whole, still key its quarantine entry.
        whole = [] if values else whole_cells(record, len(header))
        case_at, kind_at = position["case_ref"], position["kind"]
        cut_key = (
            entry_key(whole[case_at].strip(), whole[kind_at].strip()) if max(case_at, kind_at) < len(whole) else None
        )
        rows.append(
            {
                "line_no": record.line_no,
                "raw": record.raw,
                "parse_ok": values is not None,
                **{n: get.get(n) for n in FEED_COLUMNS},
                "cut_key": cut_key,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=["line_no", "raw", "parse_ok", *FEED_COLUMNS, "cut_key"])
    return frame.astype(object).where(frame.notna(), None)


def _local_date(when: datetime, zone: ZoneInfo) -> date | None:
    """The instant's local date; None for one at the edge of datetime's range (year 1, 9999) that cannot move."""
    try:
        return when.astimezone(zone).date()
    except OverflowError:
        return None


def validation_frame(frame: pd.DataFrame, run_date: date, timezone: str) -> pd.DataFrame:
    """The contacts feed as Great Expectations checks it (no personal data in this feed at all)."""
    run_end = end_of_day(run_date, timezone)
    happened = [parse_when(v, timezone) if v else None for v in frame["happened_at"]]
    zone = ZoneInfo(timezone)
    happened_days = [_local_date(h, zone) if h else None for h in happened]
    new_dates: list[date | None] = []
    for v in frame["new_date"]:
        try:
            new_dates.append(iso_day(v) if v else None)
        except ValueError:
            new_dates.append(None)
    out = pd.DataFrame(
        {
            "line_no": frame["line_no"].astype("int64"),
            "parse_ok": frame["parse_ok"],
            "case_ref": frame["case_ref"],
            "kind": frame["kind"],
            "outcome": frame["outcome"],
            "happened_given": [v is not None for v in frame["happened_at"]],
            "happened_real": [v is None or h is not None for v, h in zip(frame["happened_at"], happened, strict=True)],
            "hours_after_run_end": [(h - run_end) / timedelta(hours=1) if h else None for h in happened],
            "new_date_real": [v is None or d is not None for v, d in zip(frame["new_date"], new_dates, strict=True)],
            "rescheduled_has_new_date": [
                o != "rescheduled" or d is not None for o, d in zip(frame["outcome"], new_dates, strict=True)
            ],
            "new_date_days_after": [
                float((d - day).days) if d and day else None for d, day in zip(new_dates, happened_days, strict=True)
            ],
            # A length and a flag, not the value: the suite checks that it fits contact_outcomes.recorded_by.
            "recorded_by_chars": [len(v) if v else None for v in frame["recorded_by"]],
            "recorded_by_nul_free": [v is None or "\x00" not in v for v in frame["recorded_by"]],
        }
    )
    out["hours_after_run_end"] = pd.to_numeric(out["hours_after_run_end"], errors="coerce").astype("float64")
    out["new_date_days_after"] = pd.to_numeric(out["new_date_days_after"], errors="coerce").astype("float64")
    out["recorded_by_chars"] = pd.to_numeric(out["recorded_by_chars"], errors="coerce").astype("float64")
    return out


def ingest_contacts_path(
    path: Path,
    *,
    run_date: date,
    night_run_id: int | None,
    actor: str,
    engine: Engine,
    cipher: FieldCipher,
    index: BlindIndex,
    validator: NightValidator,
    policy: Policy,
    timezone: str,
) -> FileCounts:
    """Validate one contacts feed, quarantine what is wrong, apply the rest; counts reconcile like referrals."""
    from tasks.adapters.canonical import FileHeld

    try:  # no size gate on the feed: a release changes nothing
        sha256, repeat, _ = seen_before(path, engine, run_date=run_date)
    except FileHeld as unread:
        counts = FileCounts(file=shown_name(path), source=SOURCE, status="held", held_reason=unread.reason)
        return hold_unread(counts, engine=engine, run_date=run_date, night_run_id=night_run_id, actor=actor)
    if repeat is not None:
        return repeat
    try:
        frame = feed_frame(path)
    except FileHeld as held:
        counts = FileCounts(
            file=shown_name(path),
            source=SOURCE,
            status="held",
            received=held.rows or 0,
            held_rows=held.rows or 0,
            held_reason=held.reason,
        )
        return record_held(
            counts, engine=engine, run_date=run_date, night_run_id=night_run_id, sha256=sha256, actor=actor
        )
    counts = FileCounts(file=shown_name(path), source=SOURCE, status="loaded", received=len(frame))
    repeats = frame["raw"].duplicated(keep="first")
    counts.duplicates = int(repeats.sum())
    unique = frame[~repeats].reset_index(drop=True)
    verdicts = validator.validate(validation_frame(unique, run_date, timezone), counts.file, {}, suite="contacts")
    reasons: dict[int, list[str]] = {
        int(n): verdicts.reasons(int(n)) for n in unique["line_no"] if verdicts.reasons(int(n))
    }
    reports: list[OutcomeReport] = []
    for row in unique.to_dict(orient="records"):
        if int(row["line_no"]) in reasons:
            continue
        happened = parse_when(row["happened_at"], timezone)
        assert happened is not None
        reports.append(
            OutcomeReport(
                case_ref=row["case_ref"],
                kind=row["kind"],
                happened_at=happened,
                outcome=row["outcome"],
                new_date=iso_day(row["new_date"]) if row["new_date"] else None,
                recorded_by=row["recorded_by"],
                line_no=int(row["line_no"]),
            )
        )
    with engine.begin() as conn:
        batch_id = insert_batch(conn, counts, run_date=run_date, night_run_id=night_run_id, sha256=sha256)
        applied = record_outcomes(conn, reports, origin=counts.file, actor=actor, policy=policy, timezone=timezone)
        for position, reason in applied.rejected.items():
            reasons[reports[position].line_no or 0] = [reason]
        raw_of = dict(zip(unique["line_no"], unique["raw"], strict=True))
        ref_of = {
            n: key
            for n, ref, kind, cut in zip(
                unique["line_no"], unique["case_ref"], unique["kind"], unique["cut_key"], strict=True
            )
            if (key := entry_key(ref, kind) or cut)
        }
        rejects = [
            QuarantinedRow(line_no=n, source_ref=ref_of.get(n), reasons=names, raw=str(raw_of.get(n, "")))
            for n, names in sorted(reasons.items())
        ]
        now = utcnow()
        counts.quarantined, already = quarantine(
            conn, rejects, batch_id=batch_id, source=SOURCE, cipher=cipher, index=index, now=now
        )
        # An outcome applied now closes the earlier files' entries of its case's contact of that kind: a
        # corrected row resolves its quarantine entry. (A file's own bad rows stay open beside its good ones:
        # a resend of it is then all duplicates, as any resent feed.)
        corrected = [key for i in applied.applied_at if (key := entry_key(reports[i].case_ref, reports[i].kind))]
        counts.quarantine_resolved = resolve_quarantined_keys(
            conn, source=SOURCE, keys=corrected, before_batch=batch_id, now=now
        )
        counts.duplicates += already
        counts.loaded = applied.applied
        counts.duplicates += applied.duplicates
        counts.batch_id = batch_id
        counts.failed_expectations = dict(Counter(name for r in rejects for name in r.reasons))
        counts.check()
        counts.completed = applied.completed
        conn.execute(
            update(BATCHES)
            .where(BATCHES.c.id == batch_id)
            .values(loaded=counts.loaded, duplicates=counts.duplicates, quarantined=counts.quarantined)
        )
    return counts


@task(
    name="ingest-contacts",
    task_run_name=run_name("contacts"),
    cache_policy=NO_CACHE,
)
def ingest_contacts_file(path: Path, run_date: date, night_run_id: int, docs_dir: Path, actor: str) -> dict[str, Any]:
    """Validate and apply one daily contacts feed; returns its reconciled counts."""
    from iasu import wiring
    from iasu.policy import get_policy
    from iasu.settings import get_settings
    from tasks.ingest import validator_for

    counts = ingest_contacts_path(
        path,
        run_date=run_date,
        night_run_id=night_run_id,
        actor=actor,
        engine=wiring.engine(),
        cipher=wiring.cipher(),
        index=wiring.blind_index(),
        validator=validator_for(docs_dir),
        policy=get_policy(),
        timezone=get_settings().timezone,
    )
    get_run_logger().info(
        "%s: %s, received %d, applied %d (completed %d), duplicates %d, quarantined %d, held %d",
        counts.file,
        counts.status,
        counts.received,
        counts.loaded,
        counts.completed,
        counts.duplicates,
        counts.quarantined,
        counts.held_rows,
    )
    return counts.as_dict()
