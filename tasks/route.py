"""Routing: every referral not yet in a case gets one, set-based, for the whole night at once.

One query reads the unrouted referrals with their blind indexes, one reads the
earlier referrals linked to them; rules decide in memory; cases, links and
audit events are written in bulk in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain
from typing import Any

import orjson
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Text, and_, cast, func, select, text, union, update
from sqlalchemy.orm import aliased

from iasu import wiring
from iasu.policy import get_policy
from models import Case, CaseRefCounter, Person, Referral
from models.types import utcnow
from rules.codes import FORCE_PREFIX, CaseStatus, Force, Marker, PersonRole, Queue, ReferringAgency, SrpLevel, Tier
from rules.linkage import Linked, LinkRow, link
from rules.policy import Policy
from rules.triage import TIER_RANK, Decision, LinkedHistory, ReferralFacts, allocate, assess_all
from tasks import audit
from tasks.audit import AUDIT
from tasks.bulk import copy_insert, one_of, update_rows
from tasks.collector import gc_paused
from tasks.load import dialect_insert
from tasks.locks import casework_lock
from tasks.outbox import outbox_row, queue_alert
from tasks.report import CASE_REFS_SHOWN

REFERRALS = Referral.__table__  # type: ignore[attr-defined]
PEOPLE = Person.__table__  # type: ignore[attr-defined]
CASES = Case.__table__  # type: ignore[attr-defined]
COUNTERS = CaseRefCounter.__table__  # type: ignore[attr-defined]


@dataclass
class RouteResult:
    """What one routing pass did: counts only."""

    routed: dict[str, int]  # new cases per queue code
    tiers: dict[str, int]  # new cases per tier code
    merged: int  # referrals that joined an existing case (the same referral from another source)
    turned_away_for_capacity: int
    case_refs: dict[str, dict[str, list[str]]]  # queue -> tier -> the first references opened (for the report)
    opened: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> tier -> cases opened
    raised_for_serial: int = 0  # earlier open cases whose perpetrator turned out to be serial

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts and references."""
        return {
            "routed": self.routed,
            "tiers": self.tiers,
            "merged": self.merged,
            "turned_away_for_capacity": self.turned_away_for_capacity,
            "case_refs": self.case_refs,
            "opened": self.opened,
            "raised_for_serial": self.raised_for_serial,
        }


def _link_select(policy: Policy) -> Any:
    r = REFERRALS.c
    victim, perp = aliased(PEOPLE), aliased(PEOPLE)
    return (
        select(
            r.id,
            r.source,
            r.source_ref,
            r.force,
            r.received_date,
            r.referring_agency,
            r.crime_ref,
            r.sdash_yes_count,
            r.sdash_violence_this_episode,
            r.sdash_threats_violence,
            r.srp,
            # As text: a night's hundred thousand lists are a few hundred distinct ones, decoded once each (_facts).
            cast(r.markers, Text).label("markers"),
            r.case_id,
            victim.c.name_dob_index.label("victim_index"),
            perp.c.name_dob_index.label("perp_name_dob"),
            perp.c.pnc_index.label("perp_pnc"),
        )
        .select_from(REFERRALS)
        .outerjoin(victim, and_(victim.c.referral_id == r.id, victim.c.role == PersonRole.victim))
        .outerjoin(perp, and_(perp.c.referral_id == r.id, perp.c.role == PersonRole.perpetrator))
    )


def _link_rows(rows: Iterable[Any], policy: Policy, open_of: Callable[[Any], bool] | None = None) -> list[LinkRow]:
    """Rows as linkage sees them; perpetrator keys only for the policy's signals; open unless open_of says not."""
    # The policy is asked once, not twice per row: a night has a hundred thousand rows.
    name_dob = "name_dob" in policy.linkage.signals
    pnc = "pnc" in policy.linkage.signals
    out = []
    for row in rows:
        keys = []
        if name_dob and row.perp_name_dob:
            keys.append(f"name_dob:{row.perp_name_dob}")
        if pnc and row.perp_pnc:
            keys.append(f"pnc:{row.perp_pnc}")
        out.append(
            LinkRow(
                referral_id=row.id,
                source=row.source,
                key=f"{row.source}:{row.source_ref}",
                received_date=row.received_date,
                victim_index=row.victim_index,
                perp_keys=frozenset(keys),
                case_id=row.case_id,
                case_open=True if open_of is None else open_of(row),
            )
        )
    return out


# Plain dict look-ups: calling an Enum class per value costs microseconds, a night has a hundred thousand rows.
_FORCE = {m.value: m for m in Force}
_AGENCY = {m.value: m for m in ReferringAgency}
_SRP = {m.value: m for m in SrpLevel}
_MARKER = {m.value: m for m in Marker}


def _facts(row: Any, marker_sets: dict[str, frozenset[Marker]]) -> ReferralFacts:
    markers = marker_sets.get(row.markers)
    if markers is None:
        markers = marker_sets[row.markers] = frozenset(_MARKER[m] for m in orjson.loads(row.markers))
    return ReferralFacts(
        key=f"{row.source}:{row.source_ref}",
        force=_FORCE[row.force],
        received_date=row.received_date,
        referring_agency=_AGENCY[row.referring_agency],
        sdash_yes_count=row.sdash_yes_count,
        markers=markers,
        srp=_SRP[row.srp] if row.srp else None,
        crime_ref_present=bool(row.crime_ref),
        violence_this_episode=bool(row.sdash_violence_this_episode),
        threats_violence=bool(row.sdash_threats_violence),
    )


def linked_history(policy: Policy, earliest: date) -> Any:
    """The routed referrals (with their case's status) sharing a key with an unrouted one, as linkage reads them.

    A victim's key links within the duplicate window (from `earliest`), a perpetrator's at any distance.
    Each signal finds its matches through its key's own index and the union of those is read. Asked as one
    OR of the signals per joined row, the server read every routed referral with its two people and case
    and tested each: against a history of 962,120 referrals, 2.1-2.7 s for a night of 1,000 (0.05-0.06 s
    this way) and 4.3-4.5 s for 10,000 (0.82-1.07 s), growing with every night stored.
    """
    p, r = PEOPLE.c, REFERRALS.c
    unrouted = select(r.id).where(r.case_id.is_(None))
    victim_key, perp_key = (
        select(p.name_dob_index, p.pnc_index).where(p.referral_id.in_(unrouted), p.role == role).subquery().c
        for role in (PersonRole.victim, PersonRole.perpetrator)
    )

    def routed_with(*condition: Any) -> Any:
        # Routed referrals only, in each signal too: every key of tonight's matches tonight's own person, and
        # on a first night (no history) the server can then start from the routed side and read nothing.
        return select(p.referral_id).join(REFERRALS, r.id == p.referral_id).where(r.case_id.is_not(None), *condition)

    # Same victim within the window: the same referral from another source, even with no perpetrator key.
    matches = [
        routed_with(
            p.role == PersonRole.victim,
            p.name_dob_index.in_(select(victim_key.name_dob_index)),
            r.received_date >= earliest,
        )
    ]
    if "name_dob" in policy.linkage.signals:
        matches.append(
            routed_with(p.role == PersonRole.perpetrator, p.name_dob_index.in_(select(perp_key.name_dob_index)))
        )
    if "pnc" in policy.linkage.signals:
        matches.append(
            routed_with(
                p.role == PersonRole.perpetrator, p.pnc_index.is_not(None), p.pnc_index.in_(select(perp_key.pnc_index))
            )
        )
    return (
        _link_select(policy)
        .add_columns(CASES.c.status)
        .join(CASES, CASES.c.id == r.case_id)
        .where(r.case_id.is_not(None), r.id.in_(union(*matches)))
    )


def _read(conn: Connection, policy: Policy) -> tuple[list[Any], list[LinkRow]]:
    """The unrouted referrals, and the routed ones sharing a key with them (two queries)."""
    new_rows = conn.execute(_link_select(policy).where(REFERRALS.c.case_id.is_(None))).all()
    if not new_rows:
        return [], []
    earliest = min(row.received_date for row in new_rows) - timedelta(days=policy.linkage.duplicate_window_days)
    linked = linked_history(policy, earliest)
    existing = _link_rows(conn.execute(linked), policy, lambda row: bool(row.status == CaseStatus.open))
    return list(new_rows), existing


def _free_places(conn: Connection, policy: Policy) -> dict[Force, int]:
    c = CASES.c
    used: dict[str, int] = dict(
        conn.execute(
            select(c.force, func.count()).where(c.queue == Queue.unit, c.status == CaseStatus.open).group_by(c.force)
        ).all()
    )
    return {force: max(policy.unit.capacity[force] - int(used.get(force.value, 0)), 0) for force in Force}


def _issue_case_refs(conn: Connection, wanted: Counter[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Reserve a block of sequence numbers per (prefix, year); returns the first number of each block."""
    first: dict[tuple[str, int], int] = {}
    for (prefix, year), n in sorted(wanted.items()):
        key = and_(COUNTERS.c.prefix == prefix, COUNTERS.c.year == year)
        conn.execute(
            dialect_insert(conn, COUNTERS)
            .values(prefix=prefix, year=year, last_value=0)
            .on_conflict_do_nothing(index_elements=["prefix", "year"])
        )
        # The UPDATE takes the row lock, so two routing passes at once get disjoint blocks.
        last = conn.execute(
            update(COUNTERS).where(key).values(last_value=COUNTERS.c.last_value + n).returning(COUNTERS.c.last_value)
        ).scalar_one()
        if last > MAX_CASE_NUMBER:
            raise RuntimeError(
                f"case references for {prefix}-{year} would pass {MAX_CASE_NUMBER}: the six-digit format is exhausted"
            )
        first[(prefix, year)] = int(last) - n + 1
    return first


MAX_CASE_NUMBER = 999_999  # six digits, as case references are specified


def case_ref(force: Force, year: int, number: int) -> str:
    """Human-friendly and revealing nothing: force code, year, six-digit sequence (CH-2026-000123)."""
    return f"{FORCE_PREFIX[force]}-{year:04d}-{number:06d}"


# A night's rows, links, facts and cases are a few million small containers without reference cycles; the
# collector's repeated passes over them cost about as much CPU as routing itself (4 s of 10 s for 100,000).
@gc_paused
def route(conn: Connection, *, policy: Policy, run_date: date, actor: str) -> RouteResult:
    """Decide and open a case for every unrouted referral; join repeats from another source to their case."""
    casework_lock(conn, "routing")
    rows, existing = _read(conn, policy)
    result = RouteResult(routed={}, tiers={}, merged=0, turned_away_for_capacity=0, case_refs={})
    if not rows:
        return result
    by_id = {row.id: row for row in rows}
    links = link(
        _link_rows(rows, policy),
        existing,
        duplicate_window_days=policy.linkage.duplicate_window_days,
    )
    duplicates = {rid: found.duplicate_of for rid, found in links.items() if found.duplicate_of is not None}
    history = {
        rid: LinkedHistory(found.earlier_cases, found.other_victims)
        for rid, found in links.items()
        if found.duplicate_of is None
    }
    # A copy of tonight's referral from another source, also tonight, may know the perpetrator better (a PNC
    # id the first lacked): the case is decided on what either copy found, not raised after the decision.
    # Counts, not the referrals behind them, so the larger of each: what the case certainly has.
    joined_tonight: set[int] = set()
    for rid, target in duplicates.items():
        root = _first_of(target, duplicates)
        if root in history:
            joined_tonight.add(rid)
            found, was = links[rid], history[root]
            history[root] = LinkedHistory(
                max(was.earlier_referrals, found.earlier_cases), max(was.other_victims, found.other_victims)
            )
    # A referral later tonight that shows a perpetrator is serial makes serial every case of theirs opened
    # tonight too: decided so (tier, the unit's serial criterion, capacity) and numbered with that priority,
    # not opened lower and raised as the night ends. Earlier nights' cases are raised after (_raise_linked_cases).
    # Counted as linkage counts: cases, not referrals (a copy from a second source is no other case), and
    # distinct victims other than this case's own, earlier and later tonight together.
    later_cases: dict[int, set[int]] = {}
    for rid, found in links.items():
        if found.other_victims:
            own = _first_of(rid, duplicates)
            for earlier in {_first_of(e, duplicates) for e in found.earlier_referral_ids} - {own}:
                if earlier in history:
                    later_cases.setdefault(earlier, set()).add(rid)
    if later_cases:
        victim_of = {row.referral_id: row.victim_index for row in existing} | {
            rid: row.victim_index for rid, row in by_id.items()
        }
        for earlier, later in later_cases.items():
            was = history[earlier]
            victims = {victim_of.get(r) for r in (*links[earlier].earlier_referral_ids, *later)}
            victims -= {None, victim_of.get(earlier)}
            history[earlier] = LinkedHistory(
                was.earlier_referrals,
                # At least one: the later referral is serial, through this case's victim or another's.
                max(was.other_victims, len(victims), 1),
                later_tonight=len({_first_of(r, duplicates) for r in later}),
            )
    marker_sets: dict[str, frozenset[Marker]] = {}  # markers as stored (JSON text) -> codes
    batch = [(_facts(by_id[rid], marker_sets), linked, rid) for rid, linked in history.items()]
    rid_of = {facts.key: rid for facts, _, rid in batch}
    # Of the rows read, only the few that join an earlier case are needed from here on. The rows themselves
    # (with their decoded markers, about a sixth of routing's memory) go before the cases are built.
    joining = {rid: (by_id[rid].received_date, by_id[rid].source) for rid in duplicates}
    del rows, by_id
    allocated: list[tuple[ReferralFacts, Decision]] = allocate(
        assess_all([(f, h) for f, h, _ in batch], policy), _free_places(conn, policy), policy
    )

    year = run_date.year
    blocks = _issue_case_refs(conn, Counter((FORCE_PREFIX[f.force], year) for f, _ in allocated))
    now = utcnow()
    cases: list[dict[str, Any]] = []
    reasons_of: dict[int, list[dict[str, Any]]] = {}  # per shared decision object, built once
    before = conn.execute(select(func.coalesce(func.max(CASES.c.id), 0))).scalar_one()

    def opened() -> Iterator[dict[str, Any]]:
        """Each case as it is numbered (kept in cases too), so COPY sends it while the next is built."""
        for facts, decision in allocated:  # priority order: the most urgent case gets the lowest number
            prefix = FORCE_PREFIX[facts.force]
            reasons = reasons_of.get(id(decision))
            if reasons is None:
                reasons = reasons_of[id(decision)] = [r.as_dict() for r in decision.reasons]
            number = blocks[(prefix, year)]
            blocks[(prefix, year)] += 1
            case = {
                "case_ref": case_ref(facts.force, year, number),
                "force": facts.force.value,
                "status": CaseStatus.open,
                "tier": decision.tier.value,
                "queue": decision.queue.value,
                "reasons": reasons,
                "interventions": list(decision.interventions),
                "turned_away_for_capacity": decision.turned_away_for_capacity,
                "decided_by": "policy",
                "policy_version": policy.version,
                "opened_on": run_date,
                "opened_at": now,
                "origin_referral_id": rid_of[facts.key],
            }
            cases.append(case)
            yield case

    copy_insert(conn, CASES, opened())
    inserted = conn.execute(
        select(CASES.c.id, CASES.c.origin_referral_id).where(
            CASES.c.id > before, CASES.c.origin_referral_id.is_not(None)
        )
    ).all()
    case_id_of = {origin: cid for cid, origin in inserted}
    # Set-based: each referral that opened a case points at it (UPDATE ... FROM: one join, not a subquery per row).
    conn.execute(
        update(REFERRALS)
        .where(REFERRALS.c.case_id.is_(None), CASES.c.origin_referral_id == REFERRALS.c.id, CASES.c.id > before)
        .values(case_id=CASES.c.id)
    )
    existing_case = {row.referral_id: row.case_id for row in existing if row.case_id is not None}
    merged_into: dict[int, int] = {}
    for rid, target in sorted(duplicates.items(), key=lambda kv: (joining[kv[0]][0], kv[0])):
        # Through the chain to the referral it began with (tonight's, or an earlier night's): a copy of a
        # copy may come before its target in this order.
        root = _first_of(target, duplicates)
        merged_into[rid] = case_id_of.get(root) or existing_case[root]
    if merged_into:
        update_rows(conn, REFERRALS, "id", ({"id": rid, "case_id": cid} for rid, cid in merged_into.items()))

    # Generators: COPY takes each event as it is built, so a night's events are never all held at once.
    decided = (
        audit.event(
            at=now,
            actor=actor,
            action="decide",
            entity="cases",
            entity_id=case["case_ref"],
            details={
                "referral_id": case["origin_referral_id"],
                "tier": case["tier"],
                "queue": case["queue"],
                "reasons": case["reasons"],  # rules with their inputs, as decided (cases.reasons may change later)
                "turned_away_for_capacity": case["turned_away_for_capacity"],
                "policy_version": policy.version,
            },
        )
        for case in cases
    )
    merges = (
        audit.event(
            at=now,
            actor=actor,
            action="merge",
            entity="referrals",
            entity_id=rid,
            details={"case_id": cid, "duplicate_of_referral_id": duplicates[rid], "source": joining[rid][1]},
        )
        for rid, cid in merged_into.items()
    )
    copy_insert(conn, AUDIT, chain(decided, merges))
    # After the decisions are logged, so a case opened tonight and raised by a later referral of tonight's
    # shows its decision, then its raise.
    raised = _raise_linked_cases(
        conn,
        serial={rid: found for rid, found in links.items() if found.other_victims},
        case_of={**{r.referral_id: r.case_id for r in existing if r.case_id}, **case_id_of, **merged_into},
        joined=set(merged_into) - joined_tonight,
        policy=policy,
        actor=actor,
        now=now,
        run_date=run_date,
    )
    # A new high-risk case is announced to the unit the night it is routed, with the decision (same transaction).
    unit_channel = policy.queues[Queue.unit].channel
    queue_alert(
        conn,
        [
            outbox_row(
                "new_high_risk",
                f"new_high_risk:{case['case_ref']}",
                unit_channel,
                {
                    "case_ref": case["case_ref"],
                    "force": case["force"],
                    "tier": case["tier"],
                    "queue": case["queue"],
                    "reasons": [r["rule"] for r in case["reasons"]],
                },
                case_id=case_id_of[case["origin_referral_id"]],  # so `alert list` shows its case reference
                created_at=now,
            )
            for case in cases
            if case["tier"] == Tier.high.value
        ],
    )

    result.merged = len(merged_into)
    result.raised_for_serial = len(raised)
    result.turned_away_for_capacity = sum(1 for c in cases if c["turned_away_for_capacity"])
    result.routed = dict(sorted(Counter(c["queue"] for c in cases).items()))
    result.tiers = dict(sorted(Counter(c["tier"] for c in cases).items()))
    for c in cases:
        counts = result.opened.setdefault(c["queue"], {})
        counts[c["tier"]] = counts.get(c["tier"], 0) + 1
        # Only as many references as the report shows: a national night opens a hundred thousand.
        if counts[c["tier"]] <= CASE_REFS_SHOWN:
            result.case_refs.setdefault(c["queue"], {}).setdefault(c["tier"], []).append(c["case_ref"])
    return result


SERIAL_RULES = frozenset({"serial_perpetrator", "serial_perpetrator_linked"})


def _first_of(rid: int, duplicates: dict[int, int]) -> int:
    """The referral a chain of copies (each joining the one before) began with."""
    while rid in duplicates:
        rid = duplicates[rid]
    return rid


def _raise_linked_cases(
    conn: Connection,
    *,
    serial: dict[int, Linked],
    case_of: dict[int, int],
    joined: set[int],
    policy: Policy,
    actor: str,
    now: datetime,
    run_date: date,
) -> list[dict[str, Any]]:
    """A serial perpetrator raises the tier of each open case linked to them, not only the newest one; the changes.

    `joined` are the new referrals that joined an earlier night's case (the same referral from another
    source): what they reveal raises that case too, unless its reasons already say the perpetrator is serial
    (a case lowered by hand since is not raised again by a copy that adds nothing).
    """
    floor = policy.linkage.serial_tier
    wanted: dict[int, int] = {}  # case id -> the new referral that revealed the serial perpetrator
    by_copy: set[int] = set()  # cases wanted only because a copy joined them
    for rid, found in sorted(serial.items()):
        own = case_of.get(rid)
        for earlier in found.earlier_referral_ids:
            case_id = case_of.get(earlier)
            if case_id is not None and case_id != own:
                if case_id in by_copy:  # credited to the referral that links it, not the copy that joined it
                    wanted[case_id] = rid
                    by_copy.discard(case_id)
                wanted.setdefault(case_id, rid)
        if rid in joined and own is not None and own not in wanted:
            # Its second source may carry what the first lacked (a PNC id): the case it joined was
            # decided without knowing its perpetrator is serial.
            wanted[own] = rid
            by_copy.add(own)
    if not wanted:
        return []
    c = CASES.c
    below = [tier for tier in Tier if TIER_RANK[tier] < TIER_RANK[floor]]
    # Only the open cases below the serial tier: the others need no change, and their reasons are long.
    rows = conn.execute(
        select(c.id, c.case_ref, c.tier, c.queue, c.reasons).where(
            one_of(conn, c.id, wanted), c.status == CaseStatus.open, c.tier.in_(below)
        )
    ).all()
    changes = []
    for row in rows:
        if row.id in by_copy and any(r["rule"] in SERIAL_RULES for r in row.reasons):
            continue
        reason = {
            "rule": "serial_perpetrator_linked",
            "text": f"a later referral shows this perpetrator is serial (another victim): at least {floor.value}",
            "inputs": {"revealed_by_referral_id": wanted[row.id]},
        }
        changes.append(
            {
                "queue": row.queue,
                "cid": row.id,
                "tier": floor.value,
                "reasons": [*row.reasons, reason],
                "ref": row.case_ref,
                "old": row.tier,
            }
        )
    if changes:
        from iasu.settings import get_settings
        from tasks.schedule import reschedule_for_tier_change

        reschedule_for_tier_change(
            conn,
            {ch["cid"]: (Tier(ch["old"]), Tier(ch["tier"])) for ch in changes},
            changed_on=run_date,
            policy=policy,
            timezone=get_settings().timezone,
        )
        # Outside the unit, a case raised this way is listed for the unit to pull in (queue list --queue unit).
        update_rows(
            conn,
            CASES,
            "id",
            (
                {
                    "id": ch["cid"],
                    "tier": ch["tier"],
                    "reasons": ch["reasons"],
                    "turned_away_for_capacity": ch["queue"] != Queue.unit,
                }
                for ch in changes
            ),
        )
        copy_insert(
            conn,
            AUDIT,
            (
                audit.event(
                    at=now,
                    actor=actor,
                    action="retier",
                    entity="cases",
                    entity_id=ch["ref"],
                    details={"tier": [ch["old"], ch["tier"]], "rule": "serial_perpetrator_linked"},
                )
                for ch in changes
            ),
        )
    return changes


# Statistics are stale once a table's rows have changed by more than the server's own threshold for
# re-analysing (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x rows), counted by the server,
# or once it has grown on disk by that share: the server's counts can lag the last writes by seconds.
STALE = """
SELECT c.relname FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND (
    c.reltuples < 0
    OR coalesce(s.n_mod_since_analyze, 0) > current_setting('autovacuum_analyze_threshold')::float8
        + current_setting('autovacuum_analyze_scale_factor')::float8 * c.reltuples
    OR pg_relation_size(c.oid) > (1 + current_setting('autovacuum_analyze_scale_factor')::float8)
        * c.relpages * current_setting('block_size')::bigint
)
ORDER BY c.relname
"""


def refresh_statistics(conn: Connection, tables: Iterable[str]) -> list[str]:
    """ANALYZE those of the tables (PostgreSQL) whose statistics are stale; their names.

    A night of a thousand over a history of millions re-reads nothing; a first night, a backfill, or the
    night after one (whose routing changed every referral it linked) is measured before it is planned.
    """
    stale = list(conn.execute(text(STALE), {"tables": list(tables)}).scalars())
    if stale:
        quote = conn.dialect.identifier_preparer.quote
        conn.execute(text(f"ANALYZE {', '.join(quote(name) for name in stale)}"))
    return stale


@task(name="route-referrals", cache_policy=NO_CACHE)
def route_referrals(run_date: date, actor: str, night_run_id: int) -> dict[str, Any]:
    """Triage every referral not yet in a case: tier, queue, reasons, capacity, linkage; audited."""
    from tasks.night import routing_of_the_night

    engine = wiring.engine()
    if engine.dialect.name == "postgresql":
        # Tonight's referrals and people were loaded moments ago, perhaps before the server's own statistics
        # caught up with them; linkage's read is planned on these counts. Its own short transaction: ANALYZE
        # holds a lock that a second one would wait for until this commits.
        with engine.begin() as conn:
            refresh_statistics(conn, ("referrals", "people"))
    with engine.begin() as conn:
        result = route(conn, policy=get_policy(), run_date=run_date, actor=actor)
        night = routing_of_the_night(conn, night_run_id, run_date, result.as_dict())
    get_run_logger().info(
        "routed %d new case(s): %s; %d joined an existing case; %d turned away for capacity; %d raised (serial)",
        sum(result.routed.values()),
        ", ".join(f"{q} {n}" for q, n in result.routed.items()) or "none",
        result.merged,
        result.turned_away_for_capacity,
        result.raised_for_serial,
    )
    # The references a report shows, of tonight's runs together: the first of each queue and tier.
    night["case_refs"] = {
        queue: {tier: refs[:CASE_REFS_SHOWN] for tier, refs in tiers.items()}
        for queue, tiers in night["case_refs"].items()
    }
    return result.as_dict() | night
