"""Test helpers: generated inboxes, the personal values they hold, database dumps and counts."""

from __future__ import annotations

import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, select
from sqlalchemy.engine import make_url

from iasu.synthetic import generate
from tasks.adapters import adapt
from tasks.adapters.canonical import FileHeld
from tasks.queries import table_counts

NAME_FIELDS = ("victim_forename", "victim_surname", "perp_forename", "perp_surname")
CONTACT_FIELDS = ("victim_phone", "victim_email", "victim_address", "perp_phone", "perp_email", "perp_address", "notes")
MIN_NEEDLE = 6  # shorter strings (e.g. "Lee") occur by chance in unrelated text


def write_days(inbox: Path, start: date, days: int = 1, per_day: int = 60, seed: int = 7, dirty: float = 0.1) -> int:
    """Generate synthetic exports into inbox/<date>/; returns the number of records written."""
    return generate(start=start, days=days, per_day=per_day, seed=seed, dirty=dirty, out=inbox).records


def personal_needles(inbox: Path) -> set[str]:
    """Every personal value in the inbox's readable files that is long enough to search for."""
    needles: set[str] = set()
    for path in sorted(inbox.rglob("*.*")):
        try:
            frame = adapt(path).frame
        except FileHeld:
            continue
        for row in frame.to_dict(orient="records"):
            forename, surname = row["victim_forename"], row["victim_surname"]
            if forename and surname:
                needles.add(f"{forename} {surname}")
            for field in NAME_FIELDS + CONTACT_FIELDS:
                value = row[field]
                if isinstance(value, str) and len(value) >= MIN_NEEDLE:
                    needles.add(value)
    return needles


def leaks(text: str, needles: set[str]) -> list[str]:
    """The needles found in a text (empty means nothing personal leaked)."""
    return sorted(n for n in needles if n in text)


def dump_database(url: str) -> str:
    """A full text dump: pg_dump for PostgreSQL, iterdump for SQLite."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        cmd = ["pg_dump", "--no-owner", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432)]
        cmd += ["-U", u.username or "postgres", u.database or ""]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    import sqlite3

    with sqlite3.connect(u.database or "") as conn:
        return "\n".join(conn.iterdump())


def counts(url: str) -> dict[str, int]:
    """`iasu status` counts for a database."""
    engine = create_engine(url)
    try:
        return table_counts(engine)
    finally:
        engine.dispose()


def night_without_prefect(
    inbox: Path, run_date: date, docs: Path, skip_prefix: str | None = None, *, data_docs: bool = False
) -> dict[str, object]:
    """Ingest a night's files and route them, calling the task bodies directly (no Prefect engine).

    Data Docs (a second or so a night) are built only when asked: the nightly flow's tests read them.
    """
    from expectations.runner import NightValidator
    from iasu import wiring
    from iasu.policy import get_policy
    from tasks.ingest import ingest_path
    from tasks.night import input_files
    from tasks.route import route

    validator = NightValidator(docs / run_date.isoformat())
    files = [
        ingest_path(
            p,
            run_date=run_date,
            night_run_id=None,  # type: ignore[arg-type]
            actor="test",
            engine=wiring.engine(),
            cipher=wiring.cipher(),
            index=wiring.blind_index(),
            validator=validator,
        )
        for p in input_files(inbox, run_date)
        if not (skip_prefix and p.name.startswith(skip_prefix))
    ]
    if data_docs:
        validator.build_docs()
    with wiring.engine().begin() as conn:
        routing = route(conn, policy=get_policy(), run_date=run_date, actor="test").as_dict()
    return {"files": files, **routing}


def policy_with(tmp_path: Path, **replacements: str) -> Path:
    """A copy of the shipped policy with text replaced (old=new pairs given as keyword arguments' values)."""
    from iasu.policy import DEFAULT_POLICY

    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    for pair in replacements.values():
        old, new = pair.split("=>")
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def open_case(
    conn: Connection,
    case_ref: str,
    *,
    tier: str,
    queue: str,
    opened_at: datetime,
    reasons: list[dict[str, Any]] | None = None,
) -> int:
    """Insert one open Cheshire case as the policy decided it (for tests of the tables around cases); its id."""
    from models import Case

    cases = Case.__table__  # type: ignore[attr-defined]
    return int(
        conn.execute(
            insert(cases)
            .values(
                case_ref=case_ref,
                force="cheshire",
                status="open",
                tier=tier,
                queue=queue,
                reasons=reasons or [],
                interventions=[],
                turned_away_for_capacity=False,
                decided_by="policy",
                opened_on=opened_at.date(),
                opened_at=opened_at,
            )
            .returning(cases.c.id)
        ).scalar_one()
    )


def audit_events(action: str) -> list[dict[str, Any]]:
    """The configured database's audit events of one action, oldest first."""
    from iasu import wiring
    from models import AuditEvent

    audit = AuditEvent.__table__  # type: ignore[attr-defined]
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(audit).where(audit.c.action == action).order_by(audit.c.id)).mappings()
        return [dict(r) for r in rows]
