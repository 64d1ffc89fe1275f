"""The `iasu` command line. Commands that only read import neither Prefect nor Great Expectations."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from iasu.errors import OperatorError

app = typer.Typer(help="Referral platform for integrated anti-stalking units.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rows held back by validation.", no_args_is_help=True)
batch_app = typer.Typer(help="Input files as taken in: release a held one.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")
app.add_typer(db_app, name="db")
case_app = typer.Typer(help="One case: show, override, close.", no_args_is_help=True)
queue_app = typer.Typer(help="Work queues.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(case_app, name="case")
app.add_typer(queue_app, name="queue")
contact_app = typer.Typer(help="Scheduled contacts: record outcomes, list.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff: add, load, deactivate, list.", no_args_is_help=True)
app.add_typer(contact_app, name="contact")
app.add_typer(staff_app, name="staff")
alert_app = typer.Typer(help="The alert outbox: list, dispatch, retry.", no_args_is_help=True)
app.add_typer(alert_app, name="alert")
linkage_app = typer.Typer(help="Linkage of perpetrators across referrals: blind indexes.", no_args_is_help=True)
app.add_typer(linkage_app, name="linkage")

P = ParamSpec("P")
R = TypeVar("R")
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _fail(message: str) -> None:
    typer.echo(f"iasu: {message}", err=True)
    raise typer.Exit(code=2)


# How Prefect says that the temporary server a run without PREFECT_API_URL starts did not answer in time.
PREFECT_SLOW_START = "Timed out while attempting to connect to ephemeral Prefect API server"


def operator_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors an operator can fix into one clear line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from pydantic import ValidationError
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        try:
            return fn(*args, **kwargs)
        except OperatorError as exc:
            _fail(str(exc))
        except ValidationError as exc:  # Prefect's own settings, read as it starts (ours raise OperatorError)
            from iasu.settings import bad_prefect_setting

            _fail(bad_prefect_setting(exc))
        except OperationalError as exc:
            from iasu.db import first_line

            # Never the statement or its parameters: they may carry personal data.
            _fail(f"database unreachable or refused the operation ({first_line(exc.orig)})")
        except SQLAlchemyError as exc:
            from iasu.db import first_line

            # The driver's first line only: never the statement or its parameters.
            _fail(f"database error ({first_line(getattr(exc, 'orig', None) or exc)})")
        except RuntimeError as exc:
            if not str(exc).startswith(PREFECT_SLOW_START):
                raise
            waited = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
            _fail(
                f"Prefect's temporary server did not start within {waited} s (a busy machine): run it again, or set"
                " PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL to a running server"
            )
        raise AssertionError("unreachable")

    return wrapper


@app.callback()
def _before_every_command() -> None:
    import sys

    from iasu.prefect_env import quiet_prefect

    # Before any command imports Prefect (through the tasks it runs): Prefect reads its settings once.
    quiet_prefect()
    # Bytes a terminal in another character set typed (Latin-1's "ë") reach Python as lone surrogates, which
    # no encoder takes: refused here in one line, before any command stores, compares or prints them.
    for argument in sys.argv[1:]:
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            # A file or folder that exists is named by its bytes on disk (copied from a Windows share, say).
            if not Path(argument).exists():
                _fail("an argument is not valid UTF-8 text: set the terminal to UTF-8 and type it again")


@app.command()
def keygen() -> None:
    """Print a new random 32-byte key (URL-safe base64) for IASU_ENCRYPTION_KEY or IASU_BLIND_INDEX_KEY."""
    typer.echo(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii"))


@app.command()
def generate(
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    days: Annotated[int, typer.Option(min=1, help="Number of days.")] = 1,
    per_day: Annotated[int, typer.Option("--per-day", min=0, help="Referrals per day, over all sources.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same files.")] = 1,
    dirty: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of records given a defect.")] = 0.0,
    out: Annotated[Path, typer.Option(help="Inbox folder to write <date>/ folders into.")] = Path("inbox"),
) -> None:
    """Write synthetic daily exports of the three sources (no real person in them)."""
    from iasu.synthetic import generate as write_feeds

    try:
        summary = write_feeds(start=_parse_date(start), days=days, per_day=per_day, seed=seed, dirty=dirty, out=out)
    except OSError as exc:
        _fail(f"cannot write the inbox under {out} ({exc.strerror})")
    typer.echo(json.dumps(summary.as_dict() if hasattr(summary, "as_dict") else str(summary), indent=2))


def _actor(value: str | None) -> str | None:
    """Refuse a --by the audit log cannot hold, before any work is done and without echoing it."""
    from models.audit import ACTOR_MAX_CHARS

    if value is None:
        return None
    if not value.strip():
        _fail("--by must name someone (a name or staff id), not be blank")
    if len(value) > ACTOR_MAX_CHARS:
        _fail(f"--by takes at most {ACTOR_MAX_CHARS} characters ({len(value)} given)")
    if not value.isprintable():
        _fail("--by holds a control character")
    return value.strip()


ROW_ID_MAX = 2**31 - 1  # ids are INTEGER keys: PostgreSQL refuses to compare a larger number with one


def _row_id(value: int | None) -> int | None:
    """An id that can name a row: a larger one is said as not found, on both databases alike."""
    if value is not None and not 0 < value <= ROW_ID_MAX:
        _fail(f"no such id {value}")
    return value


def _parse_date(value: str) -> date:
    from rules.calendar import iso_day

    try:
        return iso_day(value)
    except ValueError:
        _fail(f"not a date (YYYY-MM-DD): {value!r}")
        raise


@db_app.command("upgrade")
@operator_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest revision."""
    from iasu.db import upgrade
    from iasu.settings import get_settings

    revision = upgrade(get_settings().database_url)
    typer.echo(f"database at revision {revision}")


@app.command()
@operator_errors
def nightly(
    run_date: Annotated[str, typer.Option("--date", help="Run date D, YYYY-MM-DD: reads INBOX/D/.")],
    inbox: Annotated[Path | None, typer.Option(help="Inbox folder (default IASU_INBOX).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the nightly flow for one date and print its summary."""
    night = _parse_date(run_date)
    _refuse_unended(night)
    summary = _run_night(night, inbox)
    _print_summary(summary, as_json)


def _refuse_unended(night: date) -> None:
    """A night decides as of the end of its day (missed deadlines, escalations): run early, or for a mistyped
    year, it would escalate every pending contact and move the catch-up past real nights."""
    from iasu.settings import get_settings
    from models.types import utcnow
    from rules.clock import last_ended_day

    timezone = get_settings().timezone
    latest = last_ended_day(utcnow(), timezone)
    if night > latest:
        raise OperatorError(
            f"the night of {night} cannot run before that day has ended ({timezone}: the latest is {latest})"
        )


def _run_night(run_date: date, inbox: Path | None) -> dict[str, Any]:
    from iasu.prefect_env import quiet_prefect

    quiet_prefect()  # before Prefect is first imported
    from iasu import wiring

    # Bad settings, policy, inbox or schema, or a night still running, fail here in one line, not mid-run.
    inbox_dir = wiring.ready_for_night(inbox)
    from flows.nightly import night_summary
    from flows.nightly import nightly as nightly_flow

    # Another night may have begun while this one's Prefect started: refused in one line as well.
    return night_summary(nightly_flow(run_date=run_date, inbox=inbox_dir, return_state=True))


def _batch(counts: dict[str, Any]) -> str:
    return f"; batch {counts['batch_id']}" if counts.get("batch_id") is not None else ""


SUMMARY_KEYS = ("run_date", "received", "loaded", "duplicates", "quarantined", "held_files", "held_rows")


def _set_aside(counts: dict[str, Any]) -> str:
    """The rows a night's files (or its contacts feed) did not take in, and why, as the summary line ends."""
    return (
        f"duplicates {counts['duplicates']}, quarantined {counts['quarantined']}, "
        f"held {counts['held_rows']} (in {counts['held_files']} held file(s))"
    )


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    # Held files with the batch id `iasu batch release` takes: found here, not only in the ops alert on Slack.
    held = [
        {"file": f["file"], "batch_id": f["batch_id"], "reason": f["held_reason"]}
        for f in summary.get("file_counts", [])
        if f["held_reason"] and f.get("batch_id") is not None
    ]
    if as_json:
        shown = {k: v for k, v in summary.items() if k != "file_counts"}
        typer.echo(json.dumps(shown | {"held_batches": held}, sort_keys=False))
        return
    typer.echo(
        f"{summary['run_date']}: received {summary['received']}, loaded {summary['loaded']}, {_set_aside(summary)}"
    )
    feed = summary.get("contacts_feed")
    if feed and feed["files"]:  # the feed's own totals: the line above counts the referral files alone
        typer.echo(f"  contacts feed: received {feed['received']}, applied {feed['applied']}, {_set_aside(feed)}")
    for f in summary.get("file_counts", []):
        typer.echo(
            f"  {f['file']}: {f['status']}, received {f['received']}, loaded {f['loaded']}, "
            f"duplicates {f['duplicates']}, quarantined {f['quarantined']}, held {f['held_rows']}"
            + (f" ({f['held_reason']}{_batch(f)})" if f["held_reason"] else "")
        )
    if "routed" in summary:
        routed = ", ".join(f"{q} {n}" for q, n in summary["routed"].items()) or "none"
        tiers = ", ".join(f"{t} {n}" for t, n in summary["tiers"].items()) or "none"
        typer.echo(f"  new cases by queue: {routed}; by tier: {tiers}")
    if "scheduled" in summary:
        typer.echo(
            f"  contacts: {summary['completed']} completed, {summary['scheduled']} scheduled, "
            f"{summary['due_today']} due today, {summary['open_contacts']} open"
            + (
                f"; {summary['unassigned_count']} case(s) with no eligible worker"
                if summary["unassigned_count"]
                else ""
            )
        )
    if "overdue" in summary:
        levels = ", ".join(f"level {k} {v}" for k, v in summary["overdue"].items())
        a = summary["alerts"]
        typer.echo(
            f"  overdue: {levels}; alerts queued {a['queued']}, sent {a['sent']}, dry run {a['dry_run']}, "
            f"failed {a['failed']}, pending {a['pending']}"
            + (f"; stopped early: {a['stopped']}" if a.get("stopped") else "")
        )
    if summary.get("data_docs"):
        typer.echo(f"  validation results: {summary['data_docs']}")


@app.command()
@operator_errors
def status(as_json: JsonOption = False) -> None:
    """Counts of the main tables, of open quarantine entries and of failed alerts."""
    from iasu import wiring
    from iasu.db import ensure_current
    from tasks.queries import table_counts

    engine = wiring.engine()
    ensure_current(engine)
    counts = table_counts(engine)
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        for key, value in counts.items():
            typer.echo(f"{key:16} {value}")


@quarantine_app.command("list")
@operator_errors
def quarantine_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include resolved entries.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Quarantined rows: file, line and the expectations they failed (never their content)."""
    from iasu import wiring
    from iasu.db import ensure_current
    from tasks.queries import quarantine_entries

    engine = wiring.engine()
    ensure_current(engine)
    entries = quarantine_entries(engine, include_resolved=show_all)
    if as_json:
        typer.echo(json.dumps(entries))
        return
    if not entries:
        typer.echo("no quarantine entries" if show_all else "no open quarantine entries")
    for e in entries:
        typer.echo(f"{e['file']}:{e['line']}  {e['status']:8}  {', '.join(e['failed_expectations'])}")


@batch_app.command("release")
@operator_errors
def batch_release(
    batch_id: Annotated[int, typer.Argument(help="Batch id of a held file (in its ops alert).", callback=_row_id)],
    by: Annotated[str, typer.Option(help="The responsible person (name or staff id).", callback=_actor)],
    reason: Annotated[str, typer.Option(help="Why the file may be taken in (encrypted in the audit log).")],
) -> None:
    """Release a held file: rerunning its night takes the same bytes in, past the size gate; audited."""
    from iasu import wiring
    from tasks.ingest import release_batch

    with _read_engine().begin() as conn:
        released = release_batch(conn, batch_id, by=by, reason=reason, cipher=wiring.checked_cipher(conn))
    typer.echo(
        f"batch {batch_id} ({released['file']}): released; rerun its night to take it in: "
        f"iasu nightly --date {released['run_date']}"
    )


def _read_engine() -> Any:
    from iasu import wiring
    from iasu.db import ensure_current

    engine = wiring.engine()
    ensure_current(engine)
    return engine


@case_app.command("show")
@operator_errors
def case_show(
    case_ref: Annotated[str, typer.Argument(help="Case reference, e.g. CH-2026-000123.")],
    reveal: Annotated[bool, typer.Option("--reveal", help="Also show personal fields (audited).")] = False,
    by: Annotated[
        str | None, typer.Option(help="With --reveal: who is looking (name or staff id).", callback=_actor)
    ] = None,
    reason: Annotated[str | None, typer.Option(help="With --reveal: why the personal fields are needed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Tier, queue, reasons, referrals and history of a case; --reveal adds personal fields and is audited."""
    from iasu import wiring
    from tasks.cases import reveal_case, show_case

    if reveal and not (by and reason and reason.strip()):
        _fail("--reveal needs --by and --reason: both go to the audit log (DPA 2018 s62)")
    engine = _read_engine()
    with engine.begin() as conn:
        shown = show_case(conn, case_ref)
        if reveal:
            cipher = wiring.checked_cipher(conn)
            shown["revealed"] = reveal_case(conn, case_ref, by=by or "", reason=reason, cipher=cipher)
    if as_json:
        typer.echo(json.dumps(shown, default=str))
        return
    typer.echo(
        f"{shown['case_ref']}  {shown['status']}  {shown['force']}  tier {shown['tier']}  queue {shown['queue']}"
    )
    typer.echo(f"  opened {shown['opened_on']}, decided by {shown['decided_by']} (policy {shown['policy_version']})")
    if shown["outcome"]:
        typer.echo(f"  closed {shown['closed_at']} with outcome {shown['outcome']}")
    typer.echo("  reasons:")
    for reason_ in shown["reasons"]:
        typer.echo(f"    - [{reason_['rule']}] {reason_['text']}")
    typer.echo(f"  interventions: {', '.join(shown['interventions']) or 'none'}")
    typer.echo("  referrals:")
    for ref in shown["referrals"]:
        typer.echo(
            f"    - {ref['source']} {ref['source_ref']} received {ref['received_date']} ({ref['file']}:{ref['line']})"
        )
    typer.echo("  contacts:")
    for k in shown["contacts"]:
        done = f", {k['outcome']} {k['completed_at'] or ''}".rstrip() if k["outcome"] else ""
        typer.echo(
            f"    - {k['kind']} due {k['due_at']} {k['status']} ({k['attempts']} attempt(s){done})"
            f" {k['assigned_to'] or 'unassigned'}"
        )
    typer.echo("  history:")
    for event in shown["history"]:
        details = event["details"]
        what = f" ({details['kind']}: {details['outcome']})" if event["action"] == "contact_outcome" else ""
        typer.echo(f"    - {event['at']} {event['action']}{what} by {event['actor']}")
    if reveal:
        typer.echo("  personal fields (this consultation is recorded in the audit log):")
        for person in shown["revealed"]["people"]:
            fields = ", ".join(
                f"{k}: {v}" for k, v in person.items() if k not in ("source", "source_ref", "role") and v
            )
            typer.echo(f"    - {person['role']} ({person['source']} {person['source_ref']}): {fields}")
        for ref, note in shown["revealed"]["notes"].items():
            typer.echo(f"    - notes ({ref}): {note}")


@case_app.command("override")
@operator_errors
def case_override(
    case_ref: Annotated[str, typer.Argument(help="Case reference.")],
    queue: Annotated[str, typer.Option(help="New queue code.")],
    by: Annotated[str, typer.Option(help="The responsible person (name or staff id).", callback=_actor)],
    reason: Annotated[str, typer.Option(help="Why the decision changes.")],
    tier: Annotated[str | None, typer.Option(help="New tier code.")] = None,
) -> None:
    """Change a case's queue (and tier); the original decision, who and why go to the audit log."""
    from iasu import wiring
    from iasu.policy import get_policy
    from iasu.settings import get_settings
    from rules.codes import Queue, Tier
    from tasks.cases import override_case
    from tasks.schedule import schedule

    new_queue = _code(Queue, queue, "queue")
    new_tier = _code(Tier, tier, "tier") if tier else None
    tz = get_settings().timezone
    policy = get_policy()
    engine = _read_engine()
    with engine.begin() as conn:
        change, case_id = override_case(
            conn,
            case_ref,
            queue=new_queue,
            tier=new_tier,
            by=by,
            reason=reason,
            cipher=wiring.checked_cipher(conn),
            policy=policy,
            timezone=tz,
        )
        holder = ""
        if change["queue"][0] != change["queue"][1]:
            # At once, not at the next night: check-ins start or stop, and a worker of the new queue takes it.
            schedule(conn, policy=policy, run_date=_today(tz), actor=by, timezone=tz, case_ids=[case_id])
            holder = _hand_over(conn, case_id, actor=by, cause=f"override:{case_ref}")
    typer.echo(f"{case_ref}: queue {' -> '.join(change['queue'])}, tier {' -> '.join(change['tier'])}" + holder)


@case_app.command("close")
@operator_errors
def case_close(
    case_ref: Annotated[str, typer.Argument(help="Case reference.")],
    outcome: Annotated[str, typer.Option(help="Outcome code from the policy file.")],
    by: Annotated[str, typer.Option(help="The responsible person (name or staff id).", callback=_actor)],
    reason: Annotated[str | None, typer.Option(help="Optional note on why.")] = None,
) -> None:
    """Close a case with an outcome; its pending contacts are cancelled and a unit place frees."""
    from iasu import wiring
    from iasu.policy import get_policy
    from tasks.cases import close_case

    engine = _read_engine()
    with engine.begin() as conn:
        cipher, policy = wiring.checked_cipher(conn), get_policy()
        cancelled = close_case(conn, case_ref, outcome=outcome, by=by, reason=reason, policy=policy, cipher=cipher)
    typer.echo(f"{case_ref}: closed with outcome {outcome}; {cancelled} pending contact(s) cancelled")


@queue_app.command("list")
@operator_errors
def queue_list(
    queue: Annotated[str | None, typer.Option(help="Queue code.")] = None,
    force: Annotated[str | None, typer.Option(help="Force code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Open cases in priority order (for the unit, also the cases its capacity turned away)."""
    from rules.codes import Force, Queue
    from tasks.cases import queue_list as list_queue

    chosen = _code(Queue, queue, "queue") if queue else None
    if force:
        _code(Force, force, "force")
    with _read_engine().connect() as conn:
        listed = list_queue(conn, queue=chosen, force=force)
    if as_json:
        typer.echo(json.dumps(listed))
        return
    for section, rows in listed.items():
        if section != "cases":
            typer.echo(
                f"\n{section.replace('_', ' ')} (the unit's criteria took them; in a partner queue;"
                " pull in with `iasu case override`):"
            )
        if not rows:
            typer.echo("  none")
        for row in rows:
            typer.echo(
                f"  {row['case_ref']}  {row['tier']:8}  {row['queue']:20}  {row['force']:9}  opened {row['opened_on']}"
                f"  {row['assigned_to'] or 'unassigned'}"
            )


@contact_app.command("record")
@operator_errors
def contact_record(
    case_ref: Annotated[str, typer.Argument(help="Case reference.")],
    kind: Annotated[str, typer.Option(help="victim_first_contact, victim_followup or perpetrator_checkin.")],
    at: Annotated[str, typer.Option(help="When it happened, YYYY-MM-DDTHH:MM (local time if no offset).")],
    outcome: Annotated[
        str, typer.Option(help="completed, attempted_no_answer (or attempted-no-answer), refused or rescheduled.")
    ],
    new_date: Annotated[str | None, typer.Option("--new-date", help="For rescheduled: the new day.")] = None,
    by: Annotated[
        str | None, typer.Option(help="Who made the contact (name or staff id); default: the OS user.", callback=_actor)
    ] = None,
) -> None:
    """Record a contact's outcome; the next contact is scheduled at once (audited)."""
    from datetime import UTC, datetime

    from iasu.policy import get_policy
    from iasu.settings import get_settings
    from rules.codes import ContactKind
    from tasks.audit import os_user
    from tasks.outcomes import (
        OUTCOME_SPELLINGS,
        OUTCOMES_KNOWN,
        OutcomeReport,
        parse_when,
        record_outcomes,
        resolve_by_hand,
    )
    from tasks.schedule import schedule

    _code(ContactKind, kind, "kind")
    outcome = OUTCOME_SPELLINGS.get(outcome, outcome)
    if outcome not in OUTCOMES_KNOWN:
        _fail(f"unknown outcome {outcome!r}; one of: {', '.join(OUTCOMES_KNOWN)}")
    tz = get_settings().timezone
    happened = parse_when(at, tz)
    if happened is None:
        _fail(f"not a date and time (ISO 8601): {at!r}")
    assert happened is not None
    if happened > datetime.now(UTC):
        _fail("--at is in the future")
    moved_to = _parse_date(new_date) if new_date else None
    if outcome == "rescheduled" and moved_to is None:
        _fail("a rescheduled contact needs --new-date")
    if outcome != "rescheduled" and moved_to is not None:  # it would be dropped unsaid
        _fail("--new-date is only for a rescheduled contact")
    if moved_to is not None:  # as the contacts feed quarantines them
        days_on = (moved_to - _local_day(happened, tz)).days
        if days_on < 0:
            _fail("--new-date is before the day of --at")
        if days_on > MAX_MOVE_DAYS:
            _fail(f"--new-date is more than {MAX_MOVE_DAYS} days after --at")  # a mistyped year
    actor = by or os_user() or "unknown"
    report = OutcomeReport(
        case_ref=case_ref, kind=kind, happened_at=happened, outcome=outcome, new_date=moved_to, recorded_by=actor
    )
    policy = get_policy()
    with _read_engine().begin() as conn:
        result = record_outcomes(conn, [report], origin="cli", actor=actor, policy=policy, timezone=tz)
        if result.rejected:
            reason = result.rejected[0]
            raise OperatorError(
                {
                    "case_known": f"no case {case_ref}",
                    "case_open": f"case {case_ref} is closed",
                    "contact_pending": f"case {case_ref} has no pending {kind}",
                    "happened_since_opened": f"--at is before case {case_ref} was opened",
                }[reason]
            )
        if result.duplicates:
            typer.echo(f"{case_ref}: this outcome was already recorded; nothing changed")
            return
        # The feed's row for this contact that could not be applied, if any, is settled by this record.
        resolved = resolve_by_hand(conn, case_ref, kind)
        scheduled = schedule(
            conn,
            policy=policy,
            run_date=happened.astimezone(UTC).date(),
            actor=actor,
            timezone=tz,
            case_ids=result.touched_cases,
        )
    typer.echo(
        f"{case_ref}: {kind} {outcome}; {scheduled.scheduled} next contact(s) scheduled"
        + (f"; {resolved} quarantined contacts-feed row(s) resolved" if resolved else "")
    )


@contact_app.command("list")
@operator_errors
def contact_list(
    status: Annotated[str | None, typer.Option(help="pending, done, cancelled or superseded.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Scheduled contacts: case reference, kind, due time, status, assigned staff id."""
    from rules.codes import ContactStatus, Queue
    from tasks.queries import contacts

    if status:
        _code(ContactStatus, status, "status")
    if queue:
        _code(Queue, queue, "queue")
    with _read_engine().connect() as conn:
        rows = contacts(conn, status=status, queue=queue)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['case_ref']}  {r['kind']:22}  due {r['due_at']}  {r['status']:9}  {r['assigned_to'] or '-'}")


def _hand_over(conn: Any, case_id: int, *, actor: str, cause: str) -> str:
    """Give an overridden case to a worker of its new queue now; who took it, or that nobody could (ops told)."""
    from sqlalchemy import select

    from models import Case, Staff

    _reassign(conn, actor=actor, cause=cause, summarise=False)
    cases, staff = Case.__table__, Staff.__table__  # type: ignore[attr-defined]
    holder = conn.execute(
        select(staff.c.staff_code).join(cases, cases.c.assigned_staff_id == staff.c.id).where(cases.c.id == case_id)
    ).scalar_one_or_none()
    if holder is not None:
        return f"; assigned to {holder}"
    # Nobody of its new queue has room: ops hears of it now, not at the night's summary.
    _reassign(conn, actor=actor, cause=cause, summarise=True)
    return "; no worker of that queue has room: left unassigned (ops told)"


def _reassign(conn: Any, *, actor: str, cause: str, summarise: bool = True) -> Any:
    """Give released cases to eligible workers now (as the night would), with the unit's date.

    summarise: tell ops of the cases nobody could take (all of them, as the night does).
    """
    from datetime import UTC, datetime

    from iasu.policy import get_policy
    from iasu.settings import get_settings
    from tasks.schedule import assign_unassigned

    return assign_unassigned(
        conn,
        policy=get_policy(),
        actor=actor,
        now=datetime.now(UTC),
        on=_today(get_settings().timezone),
        cause=cause,
        summarise=summarise,
    )


def _today(timezone: str) -> date:
    """The unit's date now (a person's action is taken today, in the unit's clock)."""
    from datetime import UTC, datetime

    return _local_day(datetime.now(UTC), timezone)


def _local_day(when: datetime, timezone: str) -> date:
    """The unit's date at an instant."""
    from zoneinfo import ZoneInfo

    try:
        return when.astimezone(ZoneInfo(timezone)).date()
    except OverflowError:  # year 1 or 9999 at the edge of a day: no real contact's time
        _fail("--at is out of range: a mistyped year?")
        raise


@staff_app.command("add")
@operator_errors
def staff_add(
    staff_code: Annotated[str, typer.Argument(help="Staff id shown in lists and alerts (never a name).")],
    queue: Annotated[str, typer.Option(help="Queue code.")],
    force: Annotated[str, typer.Option(help="Force code.")],
    role: Annotated[str | None, typer.Option(help="worker, supervisor or lead (new staff: worker).")] = None,
    capacity: Annotated[
        int | None, typer.Option(min=0, help="Open cases this worker can carry (new staff: 20).")
    ] = None,
    slack_user: Annotated[str | None, typer.Option("--slack-user", help="Slack user id, for mentions.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name (stored encrypted).")] = None,
    by: Annotated[str | None, typer.Option(help="Who adds them; default: the OS user.", callback=_actor)] = None,
) -> None:
    """Add (or update and re-activate) a member of staff; on an update, what is not given is kept."""
    from iasu import wiring
    from rules.codes import Force, Queue
    from tasks.audit import os_user
    from tasks.staff import add_staff

    actor = by or os_user() or "unknown"
    with _read_engine().begin() as conn:
        change = add_staff(
            conn,
            staff_code=staff_code,
            queue=_code(Queue, queue, "queue"),
            force=_code(Force, force, "force"),
            role=role,
            capacity=capacity,
            slack_user_id=slack_user,
            name=name,
            cipher=wiring.checked_cipher(conn),
            actor=actor,
        )
        handed = _reassign(conn, actor=actor, cause=f"moved:{staff_code}") if change.released else None
    done = "added" if change.added else "updated" if change.changed else "unchanged (as already recorded)"
    typer.echo(f"{staff_code}: {done}" + _handed_on(change.released, handed))


@staff_app.command("load")
@operator_errors
def staff_load(
    path: Annotated[Path, typer.Argument(help="CSV: staff_code,name,role,queue,force,capacity,slack_user_id")],
) -> None:
    """Add or update staff from a file."""
    from iasu import wiring
    from tasks.audit import os_user
    from tasks.staff import load_staff_file

    actor = os_user() or "unknown"
    with _read_engine().begin() as conn:
        n, released = load_staff_file(conn, path, cipher=wiring.checked_cipher(conn), actor=actor)
        # The alert's key (at most 200 characters) names the file by a digest of its name: any length, any text.
        loaded = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
        handed = _reassign(conn, actor=actor, cause=f"loaded:{loaded}") if released else None
    typer.echo(f"{n} staff row(s) loaded" + _handed_on(released, handed))


@staff_app.command("deactivate")
@operator_errors
def staff_deactivate(
    staff_code: Annotated[str, typer.Argument(help="Staff id.")],
    by: Annotated[str, typer.Option(help="The responsible person (name or staff id).", callback=_actor)],
    reason: Annotated[str | None, typer.Option(help="Optional note on why.")] = None,
) -> None:
    """A worker leaves: their open cases and pending contacts go to other eligible workers (audited)."""
    from iasu import wiring
    from tasks.staff import deactivate_staff

    with _read_engine().begin() as conn:
        released = deactivate_staff(conn, staff_code, by=by, reason=reason, cipher=wiring.checked_cipher(conn))
        done = _reassign(conn, actor=by, cause=f"deactivated:{staff_code}")
    typer.echo(f"{staff_code}: deactivated; {released} case(s) released" + _given(done))


def _handed_on(released: int, done: Any) -> str:
    """What became of the cases a worker who moved queue, force or role let go."""
    if not released:
        return ""
    return f"; {released} case(s) handed on" + _given(done)


def _given(done: Any) -> str:
    # The pass gives out every case waiting for a worker, not only these: its counts are said as the whole's.
    return f"; {done.assigned} case(s) given to a worker, {done.waiting} open case(s) in all still without one"


@staff_app.command("list")
@operator_errors
def staff_list(as_json: JsonOption = False) -> None:
    """Staff with queue, force, capacity and current load (no names)."""
    from tasks.staff import list_staff

    with _read_engine().connect() as conn:
        rows = list_staff(conn)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "active" if r["active"] else "inactive"
        typer.echo(
            f"{r['staff_code']:12} {r['role']:10} {r['queue']:20} {r['force']:9} "
            f"load {r['load']}/{r['capacity']} {state}"
        )


@alert_app.command("list")
@operator_errors
def alert_list(
    status: Annotated[str | None, typer.Option(help="pending, sent, failed, dry_run or withdrawn.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Alerts in the outbox: id, kind, level, channel, status, attempts, case reference (no personal data)."""
    from rules.codes import AlertStatus
    from tasks.queries import alerts

    if status:
        _code(AlertStatus, status, "status")
    with _read_engine().connect() as conn:
        rows = alerts(conn, status=status)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(
            f"{r['id']:>6}  {r['kind']:15} L{r['level'] or '-'}  {r['channel']:14} {r['status']:8} "
            f"attempts {r['attempts']}  {r['case_ref'] or ''} {r['last_error'] or ''}"
        )


@alert_app.command("dispatch")
@operator_errors
def alert_dispatch(as_json: JsonOption = False) -> None:
    """Send pending alerts now (Slack, or the dry-run outbox with no token); can run more often than nightly."""
    from iasu.policy import get_policy
    from tasks.notify import drain, notifier_from_settings

    engine = _read_engine()
    # With --json, stdout is the one JSON object: a dry run's messages are shown on stderr instead.
    show = (lambda text: typer.echo(text, err=True)) if as_json else typer.echo
    result = drain(engine, notifier_from_settings(show), get_policy())
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        typer.echo(
            f"{result.sent} sent, {result.dry_run} dry run, {result.failed} failed, {result.pending} pending"
            + (f", {result.withdrawn} withdrawn (their contact no longer pending)" if result.withdrawn else "")
            + (f"; stopped early: {result.stopped()}" if result.stopped() else "")
        )
    if result.stopped():  # for scripts and schedulers: alerts undelivered until Slack answers or someone acts
        raise typer.Exit(code=1)


@alert_app.command("retry")
@operator_errors
def alert_retry(
    alert_id: Annotated[int | None, typer.Argument(help="Alert id (from `iasu alert list`).", callback=_row_id)] = None,
    failed_with: Annotated[
        str | None,
        typer.Option(help="Every failed alert whose last error is this (e.g. invalid_auth, once the token is fixed)."),
    ] = None,
) -> None:
    """Put a failed alert, or every one failed with an error, back in the outbox; the next dispatch sends them."""
    from iasu.policy import get_policy
    from tasks.queries import retry_alert, retry_failed

    if alert_id is not None and failed_with is None:
        with _read_engine().begin() as conn:
            retried = retry_alert(conn, alert_id, get_policy())
        said = f"alert {alert_id}: pending again"
    elif failed_with is not None and alert_id is None:
        with _read_engine().begin() as conn:
            retried = retry_failed(conn, failed_with, get_policy())
        said = f"{retried.pending_again} alert(s) failed with {failed_with}: pending again"
    else:
        _fail("give an alert id or --failed-with ERROR, one of the two")
        return
    if retried.rerouted:
        said += f"; {retried.rerouted} to the channel the policy now gives"
    if retried.reports_withdrawn:
        said += f"; {retried.reports_withdrawn} unsent report(s) of their failure withdrawn"
    typer.echo(said)


@linkage_app.command("reindex")
@operator_errors
def linkage_reindex(
    by: Annotated[str, typer.Option(help="The responsible person (name or staff id).", callback=_actor)],
) -> None:
    """Recompute every person's blind indexes by the current rules (once after an upgrade); audited."""
    from iasu import wiring
    from iasu.settings import get_settings
    from tasks.reindex import reindex_people

    get_settings().require_keys()  # it decrypts every person's name: say so before touching the database
    with _read_engine().begin() as conn:
        cipher, index = wiring.checked_keys(conn)
        result = reindex_people(conn, by=by, cipher=cipher, index=index)
    typer.echo(
        f"{result.read} people read; indexes changed: {result.name_dob_changed} name + date of birth,"
        f" {result.pnc_changed} PNC id"
    )


def _code(enum: Any, value: str, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        _fail(f"unknown {what} {value!r}; one of: {', '.join(m.value for m in enum)}")


MAX_MOVE_DAYS = 366  # as the contacts suite's new_date_within_a_year
DEMO_START = "2026-08-24"  # a fortnight across two weekends and the August bank holiday (31 Aug)


@app.command()
@operator_errors
def demo(
    days: Annotated[int, typer.Option(min=1, help="Nights to simulate.")] = 14,
    per_day: Annotated[int, typer.Option("--per-day", min=1, help="Referrals a day, over all sources.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed for referrals and staff behaviour.")] = 2026,
    dirty: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of referral records with a defect.")] = 0.05,
    start: Annotated[str, typer.Option(help="First night, YYYY-MM-DD.")] = DEMO_START,
    on_time: Annotated[
        float, typer.Option("--on-time", min=0.0, max=1.0, help="Share of contacts done on time.")
    ] = 0.82,
    late: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share done two working days late.")] = 0.08,
    never: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share never done.")] = 0.06,
    as_json: JsonOption = False,
) -> None:
    """Simulate nights with a staff roster: referrals in, contacts done (or not), on the configured database."""
    from datetime import timedelta

    from iasu.demo_keys import ensure_demo_keys

    if on_time + late + never > 1:
        _fail("--on-time, --late and --never add up to more than 1")
    if os.environ.pop("IASU_SLACK_TOKEN", None):
        # Synthetic cases announced in a unit's real channels would be taken for real ones.
        said = "the demo never posts to Slack: IASU_SLACK_TOKEN ignored (alerts go to var/outbox/)"
        typer.echo(f"iasu: warning: {said}", err=True)
    # Keys of its own are the demo's normal course, not a fault: said plainly, not as a warning.
    notice = ensure_demo_keys(Path("var"))
    if notice:
        typer.echo(f"iasu: {notice}", err=True)
    from iasu import wiring
    from iasu.db import upgrade
    from iasu.policy import get_policy
    from iasu.settings import get_settings
    from iasu.simulation import DEMO_ACTOR, Behaviour, claim_for_demo, ensure_roster, write_day_feed
    from iasu.synthetic import generate as write_feeds

    settings = get_settings()
    get_policy()  # an invalid policy stops the demo before anything is written
    first = _parse_date(start)
    if days > 0:
        _refuse_unended(first + timedelta(days=days - 1))  # the demo may run on a real database
    upgrade(settings.database_url)
    with wiring.engine().begin() as conn:
        claim_for_demo(conn)
    inbox = settings.var_dir / "demo" / "inbox"
    write_feeds(start=first, days=days, per_day=per_day, seed=seed, dirty=dirty, out=inbox)
    behaviour = Behaviour(on_time=on_time, late=late, never=never)
    with wiring.engine().begin() as conn:
        ensure_roster(conn, cipher=wiring.checked_cipher(conn), actor=DEMO_ACTOR)
    summary: dict[str, Any] = {}
    for offset in range(days):
        night = first + timedelta(days=offset)
        write_day_feed(inbox, night, seed=seed, behaviour=behaviour)
        summary = _run_night(night, inbox)
        if not as_json:
            typer.echo(f"night {summary['run_date']} done", err=True)
    _print_summary(summary, as_json)
    if not as_json:
        overdue = _overdue_count(first + timedelta(days=days - 1), settings.timezone)
        typer.echo(f"  overdue at the end of the last night: {overdue} contact(s) due and not done")


def _overdue_count(run_date: date, timezone: str) -> int:
    from sqlalchemy import func, select

    from iasu import wiring
    from models import Contact
    from rules.clock import end_of_day

    c = Contact.__table__.c  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(c.status == "pending", c.due_at <= end_of_day(run_date, timezone))
            ).scalar_one()
        )


def main() -> None:
    """Console entry point."""
    app(prog_name="iasu")


if __name__ == "__main__":
    main()
