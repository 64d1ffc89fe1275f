"""The alert dispatcher: sends pending outbox rows to Slack once each, or writes them out in dry run.

Slack has no idempotency key, so every message carries its alerts' dedupe
keys as message metadata; an alert whose send was attempted before (a timeout,
a crash) is first looked for in the channel's recent history. Dispatchers take
leases with FOR UPDATE SKIP LOCKED, so two running at once never send the same
alert. An outage (connection errors, 5xx) trips a breaker: the run stops,
attempts are not used up, and the next dispatch sends what is left.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import time
import urllib.error
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Connection, Engine, func, or_, select, update
from sqlalchemy import case as sql_case

from iasu import wiring
from iasu.policy import get_policy
from iasu.settings import get_settings
from models import Alert, Contact
from models.types import utcnow
from rules.codes import AlertStatus, ContactStatus
from rules.escalation import dedupe_key
from rules.policy import Policy
from tasks.bulk import one_of
from tasks.collector import gc_paused
from tasks.messages import Message, grouped, keys_in_metadata, render
from tasks.outbox import failure_report_key, outbox_row, queue_alert

ALERTS = Alert.__table__  # type: ignore[attr-defined]
CONTACTS = Contact.__table__  # type: ignore[attr-defined]
LEASE = timedelta(minutes=5)
# A dispatch stops starting new messages this long after its claim: past the lease another dispatcher may
# claim the same alerts, and a message still going out then could be sent twice. The margin covers a send
# with its retries (10 s timeouts, a connection retry); Slack's Retry-After waits are cut off at the lease.
SEND_WINDOW = LEASE - timedelta(minutes=2)
# Alerts one dispatch claims. A national night's forty thousand fit one batch, so each channel's grouped
# messages are as few as Slack's limits allow rather than one batch's worth at a time, a second apart.
DISPATCH_LIMIT = 50_000
# When a night queues more than one run takes (its limit), missed deadlines go first, the most escalated
# before the rest, then new high-risk cases, ops and digests; a big intake never holds back a missed contact.
CLAIM_ORDER = sql_case({"missed_contact": 0, "new_high_risk": 1, "ops": 2}, value=ALERTS.c.kind, else_=3)
HISTORY_LIMIT = 200  # messages a page of a channel's history, searched for dedupe keys before a resend
# A channel's messages since the first try are searched, up to this many pages: a busy channel's newer
# messages no longer hide the one looked for. The margin covers our clock against Slack's.
HISTORY_PAGES = 10
HISTORY_MARGIN = timedelta(minutes=1)
# Errors that mean Slack will not take this message however often it is sent.
PERMANENT = {
    "channel_not_found",
    "invalid_auth",
    "not_in_channel",
    "is_archived",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_authed",
    "invalid_blocks",
    "msg_too_long",
    "msg_blocks_too_long",
    "no_text",
    "restricted_action",
}
# Refusals of the token or the workspace, not of one message: every further post this run would be refused
# alike, so the run stops at the first and the rest stay pending for a dispatch with a working token.
TOKEN_REFUSED = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
OUTAGE = (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException, OSError)


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds a 429 asks to wait (slack_sdk keeps each header as a list of values); 1 when it does not say."""
    for name, values in headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list | tuple) and values else values
            try:
                return float(value)
            except (TypeError, ValueError):
                break
    return 1.0


class SlackRejectedError(Exception):
    """Slack answered and refused the message (ok: false)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(error)
        self.error, self.status = error, status


# Errors Slack names for its own passing trouble (listed for chat.postMessage and conversations.history),
# answered with HTTP 200 as often as with a 5xx: another try may well succeed.
PASSING = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})


def _for_now(exc: SlackRejectedError) -> bool:
    """Whether Slack refused for now: a rate limit, a 5xx, or an error it names as its own passing trouble."""
    return exc.status == 429 or exc.status >= 500 or exc.error in PASSING


def _lasting(exc: SlackRejectedError) -> bool:
    """Whether Slack named a refusal another try would meet again: not one for now, nor an answer not Slack's."""
    return not _for_now(exc) and re.fullmatch(r"[a-z_]+", exc.error) is not None


class Notifier(Protocol):
    """Where messages go: Slack, or a dry-run folder."""

    dry_run: bool

    # Returns the message ts. `within`: seconds the send may still take (its retries' waits included).
    def send(self, channel: str, message: Message, within: float = math.inf) -> str: ...

    # Dedupe key -> ts, from the channel's messages since `since` (the earliest try of what is looked for).
    # `within`: seconds the read may still take (its rate-limit waits included).
    def delivered_keys(self, channel: str, since: datetime, within: float = math.inf) -> dict[str, str]: ...


# Slack allows chat.postMessage about one message per second per channel: pacing to that, rather than
# sending at once and sleeping off each 429 (Retry-After plus up to a second of jitter), is quicker and politer.
CHANNEL_INTERVAL_S = 1.0


def _never_reached_slack(error: BaseException | None) -> bool:
    """Whether a connection error shows the request never left: refused, or the host not found."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _connection_retry_handler() -> Any:
    """slack_sdk's connection-error retry, kept from re-posting a message Slack may already have.

    A reset or a dropped answer can come after Slack stored the post: trying it again at once would send it
    twice. Such a post stays pending, marked as tried, and the next dispatch looks for it in the channel's
    history first. Reads, and posts that never reached Slack, are retried as the SDK would.
    """
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

    class PostSafeConnectionRetry(ConnectionErrorRetryHandler):
        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            retry: bool = super()._can_retry(state=state, request=request, response=response, error=error)
            if retry and str(request.url).endswith("/chat.postMessage"):
                return _never_reached_slack(error)
            return retry

    return PostSafeConnectionRetry(max_retry_count=1)


class SlackNotifier:
    """The real slack_sdk WebClient, paced per channel, with rate limits waited out and connection errors retried."""

    dry_run = False

    def __init__(self, token: str, base_url: str, timeout: float) -> None:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        self.rate_limited = 0
        self._last_post: dict[str, float] = {}  # channel -> monotonic time of the last post
        self._give_up_at = math.inf  # monotonic time past which the current send must not wait again
        self._timeout = int(max(timeout, 1))
        outer = self

        class CountingRateLimitHandler(RateLimitErrorRetryHandler):
            def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
                ok: bool = super()._can_retry(state=state, request=request, response=response, error=error)
                if response is not None and response.status_code == 429:
                    outer.rate_limited += 1
                    # Waiting out Retry-After (plus up to a second of jitter) and trying again must end
                    # within the send's time: past the dispatcher's lease, another may claim the alerts and
                    # the message could go out twice. (The handlers share one attempt count, so after this
                    # wait the connection handler's one retry is spent: one timeout is the try's longest.)
                    after = _retry_after(response.headers)
                    ok = ok and time.monotonic() + after + 1 + outer._timeout <= outer._give_up_at
                return ok

        self.client = WebClient(
            token=token,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=self._timeout,
            retry_handlers=[
                _connection_retry_handler(),
                CountingRateLimitHandler(max_retry_count=8),
            ],
        )

    def send(self, channel: str, message: Message, within: float = math.inf) -> str:
        """Post one message; raise SlackRejectedError when Slack refuses it, or asks for a wait past `within` s."""
        from slack_sdk.errors import SlackApiError

        self._give_up_at = time.monotonic() + within  # counted from the call: the pacing wait takes from it
        wait = self._last_post.get(channel, float("-inf")) + CHANNEL_INTERVAL_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            response = self.client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, metadata=message.metadata()
            )
        except SlackApiError as exc:
            raise SlackRejectedError(str(exc.response.get("error", "unknown")), exc.response.status_code) from None
        finally:
            self._last_post[channel] = time.monotonic()
            self._give_up_at = math.inf  # the bound is this send's only: a history read after it has its own
        return str(response["ts"])

    def delivered_keys(self, channel: str, since: datetime, within: float = math.inf) -> dict[str, str]:
        """Dedupe keys found in the metadata of the channel's messages since `since`, newest page first."""
        from slack_sdk.errors import SlackApiError

        oldest = f"{(since - HISTORY_MARGIN).timestamp():.6f}"
        latest: str | None = None  # each page ends where the one before it stopped
        found: dict[str, str] = {}
        # A rate-limited read waits out Retry-After only within the dispatch's lease, as a send does.
        self._give_up_at = time.monotonic() + within
        try:
            for _ in range(HISTORY_PAGES):
                try:
                    response = self.client.conversations_history(
                        channel=channel, limit=HISTORY_LIMIT, oldest=oldest, latest=latest, include_all_metadata=True
                    )
                except SlackApiError as exc:
                    error = str(exc.response.get("error", "unknown"))
                    raise SlackRejectedError(error, exc.response.status_code) from None
                messages: list[dict[str, Any]] = response.get("messages", []) or []
                for msg in messages:
                    metadata = msg.get("metadata") or {}
                    if metadata.get("event_type") != "iasu_alert":  # another app's message: its metadata is not ours
                        continue
                    for key in keys_in_metadata(metadata.get("event_payload") or {}):
                        found[key] = str(msg.get("ts"))
                if not response.get("has_more") or not messages:
                    break
                latest = str(messages[-1].get("ts"))
        finally:
            self._give_up_at = math.inf
        return found


class DryRunNotifier:
    """No token: each message is written to var/outbox/ and shown, never marked sent to Slack."""

    dry_run = True

    def __init__(self, folder: Path, show: Callable[[str], None]) -> None:
        self.folder, self.show, self.count = folder, show, 0

    def send(self, channel: str, message: Message, within: float = math.inf) -> str:
        """Write the message as JSON and show its fallback text."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        ts = f"dry-run-{self.count}"
        body = {"channel": channel, "text": message.text, "blocks": message.blocks, "metadata": message.metadata()}
        name = message.dedupe_keys[0].replace(":", "_").replace("/", "_")
        (self.folder / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        self.show(f"[dry run] {channel}: {message.text}")
        return ts

    def delivered_keys(self, channel: str, since: datetime, within: float = math.inf) -> dict[str, str]:
        """Nothing was ever delivered."""
        return {}


@dataclass
class DispatchResult:
    """What one dispatch did."""

    sent: int = 0
    failed: int = 0
    dry_run: int = 0
    pending: int = 0  # left for the next dispatch
    messages: int = 0
    rate_limited: int = 0
    stopped_for_outage: bool = False
    token_refused: bool = False  # Slack refused the token: the run stopped, the rest stay pending
    errors: dict[str, int] = field(default_factory=dict)
    claimed: int = 0  # taken from the outbox by this dispatch (not reported: pending says what is left)
    out_of_time: bool = False  # the send window closed with messages still to send (they stay pending)
    withdrawn: int = 0  # missed-contact alerts not sent: their contact was done or cancelled before they went

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dry_run": self.dry_run,
            "pending": self.pending,
            "messages": self.messages,
            "rate_limited": self.rate_limited,
            "stopped_for_outage": self.stopped_for_outage,
            "token_refused": self.token_refused,
            "withdrawn": self.withdrawn,
        }

    def stopped(self) -> str | None:
        """Why the dispatch stopped with alerts undelivered, and what to do, in one line; None if it did not."""
        if self.token_refused:
            error = next((e for e in sorted(self.errors) if e in TOKEN_REFUSED), "invalid_auth")
            return (
                f"Slack refused the token ({error}): {self.failed} alert(s) failed, {self.pending} pending;"
                f" set a working IASU_SLACK_TOKEN, then run `iasu alert retry --failed-with {error}`"
            )
        if self.stopped_for_outage:
            return f"Slack unreachable: {self.pending} alert(s) pending, sent by the next dispatch once Slack answers"
        return None


def notifier_from_settings(show: Callable[[str], None]) -> Notifier:
    """Slack when a token is set, otherwise the dry run under var/outbox/."""
    settings = get_settings()
    if settings.slack_token is None or not settings.slack_token.get_secret_value():
        return DryRunNotifier(settings.var_dir / "outbox" / utcnow().date().isoformat(), show)
    policy = get_policy()
    return SlackNotifier(
        settings.slack_token.get_secret_value(), settings.slack_base_url, policy.alerts.timeout_seconds
    )


def _update_ids(conn: Connection, ids: Sequence[int], *where: Any, **values: Any) -> None:
    """Set values on the alerts with these ids, in one statement however many they are."""
    if ids:
        conn.execute(update(ALERTS).where(one_of(conn, ALERTS.c.id, ids), *where).values(**values))


def _withdraw_moot(engine: Engine, now: datetime) -> int:
    """Withdraw missed-contact alerts never tried whose deadline no longer stands; how many.

    The case was closed, the contact done or cancelled, or its deadline moved (no answer, rescheduled, a
    tier change) after the alert was queued and before it went (a night's dispatch ran out of time, say):
    staff are not told of a miss that no longer stands. A missed new deadline has an alert of its own. One
    tried already may have reached Slack: the history check settles it as it settles any other.
    """
    a, c = ALERTS.c, CONTACTS.c
    candidate = (
        a.status == AlertStatus.pending,
        or_(a.claimed_until.is_(None), a.claimed_until < now),
        a.tried_at.is_(None),
        a.kind == "missed_contact",
    )
    with engine.begin() as conn:  # its own transaction: on SQLite the claim's must not hold a write lock early
        waiting = conn.execute(select(a.id, a.contact_id, a.level, a.dedupe_key).where(*candidate)).all()
        if not waiting:
            return 0
        # The contacts by primary key: asked as one semi-join, the server read every contact ever done.
        contacts = {
            row.id: row
            for row in conn.execute(
                select(c.id, c.status, c.due_at, c.original_due_at).where(
                    one_of(conn, c.id, sorted({w.contact_id for w in waiting if w.contact_id is not None}))
                )
            )
        }

        def stands(alert: Any) -> bool:
            if alert.contact_id is None:
                return True  # nothing to judge it by
            contact = contacts.get(alert.contact_id)
            if contact is None or contact.status != ContactStatus.pending:
                return False
            # The key names the deadline it tells of: the contact's deadline now gives the same key.
            now_key = dedupe_key(
                contact.id, alert.level, due_at=contact.due_at, original_due_at=contact.original_due_at
            )
            return bool(now_key == alert.dedupe_key)

        ids = [w.id for w in waiting if not stands(w)]
        if not ids:
            return 0
        withdrawn = update(ALERTS).where(one_of(conn, a.id, ids), *candidate).values(status=AlertStatus.withdrawn)
        return int(conn.execute(withdrawn).rowcount or 0)


def _claim(engine: Engine, *, limit: int, now: datetime) -> list[dict[str, Any]]:
    a = ALERTS.c
    unclaimed = (a.status == AlertStatus.pending, or_(a.claimed_until.is_(None), a.claimed_until < now))
    with engine.begin() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(a.id, a.dedupe_key, a.kind, a.channel, a.payload, a.attempts, a.tried_at)
                .where(*unclaimed)
                .order_by(CLAIM_ORDER, a.level.desc().nulls_last(), a.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ]
        if not rows:
            return rows
        # The claim re-checks what the select saw and keeps only the rows it took. PostgreSQL's row locks
        # make that all of them; SQLite has none, and another dispatcher may claim some of these rows
        # between this select and this update (both would then have sent them).
        taken = set(
            conn.execute(
                update(ALERTS)
                .where(one_of(conn, a.id, [r["id"] for r in rows]), *unclaimed)
                .values(claimed_until=now + LEASE)
                .returning(a.id)
            ).scalars()
        )
    return [r for r in rows if r["id"] in taken]


def _record(engine: Engine, changes: list[dict[str, Any]], ops: list[dict[str, Any]]) -> set[int]:
    """Write each alert's outcome (which also ends its claim) and any ops alerts; returns the ids settled."""
    if not changes and not ops:
        return set()
    # The members of one grouped message share every outcome: one UPDATE per distinct outcome, not per alert.
    outcomes: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for ch in changes:
        outcomes[(ch["b_status"], ch["b_attempts"], ch["b_error"], ch["b_ts"], ch["b_sent_at"])].append(ch["aid"])
    with engine.begin() as conn:
        for (status, attempts, error, ts, sent_at), ids in outcomes.items():
            _update_ids(
                conn,
                ids,
                status=status,
                attempts=attempts,
                last_error=error,
                slack_ts=ts,
                sent_at=sent_at,
                claimed_until=None,
            )
        queue_alert(conn, ops)
    return {ch["aid"] for ch in changes}


def _mark_tried(engine: Engine, ids: list[int], now: datetime) -> None:
    with engine.begin() as conn:
        _update_ids(conn, ids, ALERTS.c.tried_at.is_(None), tried_at=now)


@gc_paused
def dispatch(
    engine: Engine,
    notifier: Notifier,
    policy: Policy,
    *,
    limit: int = DISPATCH_LIMIT,
    now: Callable[[], datetime] = utcnow,
) -> DispatchResult:
    """Send pending alerts, grouped per channel beyond the policy's threshold; record every outcome."""
    result = DispatchResult()
    claimed_at = now()
    result.withdrawn = _withdraw_moot(engine, claimed_at)
    claimed = _claim(engine, limit=limit, now=claimed_at)
    result.claimed = len(claimed)
    by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in claimed:
        by_channel[alert["channel"]].append(alert)
    outages = calls = 0  # Slack's answers missing in a row, and calls made (history reads and sends)
    settled: set[int] = set()  # outcomes written, claims ended with them
    plans: list[tuple[str, deque[tuple[Message, list[dict[str, Any]]]]]] = []
    for channel, alerts in sorted(by_channel.items()):
        if result.stopped_for_outage:
            break
        changes: list[dict[str, Any]] = []
        try:
            tried = [a["tried_at"] for a in alerts if a["tried_at"]]
            if tried:  # a send may have arrived before a timeout or crash
                calls += 1
                within = (claimed_at + LEASE - now()).total_seconds()
                seen, found_at = notifier.delivered_keys(channel, since=min(tried), within=within), now()
                for a in [a for a in alerts if a["dedupe_key"] in seen]:
                    changes.append(_change(a, AlertStatus.sent, ts=seen[a["dedupe_key"]], sent_at=found_at))
                    result.sent += 1
                alerts = [a for a in alerts if a["dedupe_key"] not in seen]
        except OUTAGE:
            outages += 1
            result.stopped_for_outage = outages >= policy.alerts.circuit_breaker_failures
            settled |= _record(engine, changes, [])
            continue
        except SlackRejectedError as exc:
            if not _lasting(exc):
                # Not read this time (rate limited, Slack failing, an answer not Slack's): what was tried may be
                # there, so it waits, attempts untouched, for the next dispatch's read; the rest go now.
                alerts = [a for a in alerts if not a["tried_at"]]
            # A lasting refusal (say, no scope to read history) would hold them for ever: they are sent again,
            # each message still carrying its dedupe keys.
        settled |= _record(engine, changes, [])
        if alerts:
            plans.append((channel, deque(_messages(alerts, policy))))
    # Channels take turns, one message each: Slack's one message a second is per channel, so one
    # channel's wait overlaps the others' sends instead of adding to them. The breaker counts failures
    # in a row across channels (Slack unreachable) and per channel (one channel's sends keep failing
    # while others succeed: that channel leaves the rotation, its alerts stay pending).
    failing: Counter[str] = Counter()
    breaker = policy.alerts.circuit_breaker_failures
    while plans and not (result.stopped_for_outage or result.out_of_time or result.token_refused):
        for channel, queued in plans:
            if result.stopped_for_outage or result.token_refused:
                break
            if now() - claimed_at >= SEND_WINDOW:
                result.out_of_time = True
                break
            message, members = queued.popleft()
            changes, ops = [], []
            calls += 1
            _mark_tried(engine, [m["id"] for m in members], now())
            try:
                ts = notifier.send(channel, message, within=(claimed_at + LEASE - now()).total_seconds())
            except SlackRejectedError as exc:
                result.errors[exc.error] = result.errors.get(exc.error, 0) + len(members)
                if _for_now(exc):  # left pending, attempts not used up
                    if exc.status == 429 or exc.error == "ratelimited":  # the channel sits out the rest of the run
                        failing[channel] = policy.alerts.circuit_breaker_failures
                    else:
                        outages += 1
                        failing[channel] += 1
                    result.stopped_for_outage = outages >= breaker
                    continue
                outages = failing[channel] = 0
                for m in members:
                    attempts = m["attempts"] + 1
                    final = exc.error in PERMANENT or attempts >= policy.alerts.max_attempts
                    changes.append(
                        _change(
                            m, AlertStatus.failed if final else AlertStatus.pending, attempts=attempts, error=exc.error
                        )
                    )
                    if final:
                        result.failed += 1
                        # An ops alert that fails is not announced by another to the same ops channel: that
                        # one would fail too, and breed a new one every dispatch. It shows as failed instead.
                        if m["kind"] != "ops":
                            ops.append(_ops_failed(m, exc.error, policy, now()))
                settled |= _record(engine, changes, ops)
                result.token_refused = exc.error in TOKEN_REFUSED
                continue
            except OUTAGE as exc:
                outages += 1
                failing[channel] += 1
                result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + len(members)
                result.stopped_for_outage = outages >= breaker
                continue
            outages = failing[channel] = 0
            result.messages += 1
            status = AlertStatus.dry_run if notifier.dry_run else AlertStatus.sent
            sent_at = now()  # one instant per message, so its members settle in one UPDATE
            for m in members:
                changes.append(_change(m, status, attempts=m["attempts"] + 1, ts=ts, sent_at=sent_at))
            if notifier.dry_run:
                result.dry_run += len(members)
            else:
                result.sent += len(members)
            settled |= _record(engine, changes, ops)
        plans = [(channel, queued) for channel, queued in plans if queued and failing[channel] < breaker]
    # Too few calls to trip the breaker (a message or two for one channel), every one of them failing for an
    # outage: as much a stop as the breaker's, said as one, not a green run that delivered nothing.
    result.stopped_for_outage |= calls > 0 and outages == calls
    if not result.token_refused:  # a refused token is its own report: nothing could go anywhere
        _record(engine, [], _stuck_channels([a for a in claimed if a["id"] not in settled], policy, now()))
    # Whatever was claimed and not settled goes back for the next dispatch, attempts untouched; only while
    # the claim is still this dispatch's own (past its lease another may have claimed the same alerts).
    with engine.begin() as conn:
        unsettled = [a["id"] for a in claimed if a["id"] not in settled]
        own = ALERTS.c.claimed_until == claimed_at + LEASE
        _update_ids(conn, unsettled, ALERTS.c.status == AlertStatus.pending, own, claimed_until=None)
        result.pending = conn.execute(
            select(func.count()).select_from(ALERTS).where(ALERTS.c.status == AlertStatus.pending)
        ).scalar_one()
    result.rate_limited = getattr(notifier, "rate_limited", 0)
    return result


MAX_ROUNDS = 20  # a drain stops after this many batches (a million alerts at the default limit)


def drain(
    engine: Engine,
    notifier: Notifier,
    policy: Policy,
    *,
    limit: int = DISPATCH_LIMIT,
    now: Callable[[], datetime] = utcnow,
) -> DispatchResult:
    """Dispatch batch after batch while each delivers and either took a full batch or ran out of time."""
    total = DispatchResult()
    for _ in range(MAX_ROUNDS):
        one = dispatch(engine, notifier, policy, limit=limit, now=now)
        total.sent += one.sent
        total.failed += one.failed
        total.dry_run += one.dry_run
        total.messages += one.messages
        total.claimed += one.claimed
        total.withdrawn += one.withdrawn
        for error, n in one.errors.items():
            total.errors[error] = total.errors.get(error, 0) + n
        total.pending, total.rate_limited = one.pending, one.rate_limited
        total.stopped_for_outage, total.out_of_time = one.stopped_for_outage, one.out_of_time
        total.token_refused = one.token_refused
        # After a refusal, or a batch that delivered nothing (another dispatcher holding the rest), another
        # round would retry alerts sooner than the next dispatch should and could spend their attempts in one
        # run. A batch that was not full took everything there was, unless its send window closed first.
        if one.stopped_for_outage or one.errors or not (one.sent or one.dry_run):
            break
        if one.claimed < limit and not one.out_of_time:
            break
    return total


def _messages(alerts: list[dict[str, Any]], policy: Policy) -> list[tuple[Message, list[dict[str, Any]]]]:
    """One message per alert, or grouped ones when the channel has more than the threshold this run."""
    if len(alerts) <= policy.alerts.group_threshold:
        return [(render(a["kind"], a["payload"], a["dedupe_key"]), [a]) for a in alerts]
    by_key = {a["dedupe_key"]: a for a in alerts}
    messages = grouped([(a["kind"], a["payload"], a["dedupe_key"]) for a in alerts])
    return [(m, [by_key[k] for k in m.dedupe_keys]) for m in messages]


def _change(
    alert: dict[str, Any],
    status: str,
    *,
    attempts: int | None = None,
    error: str | None = None,
    ts: str | None = None,
    sent_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "aid": alert["id"],
        "b_status": status,
        "b_attempts": alert["attempts"] if attempts is None else attempts,
        "b_error": error,
        "b_ts": ts,
        "b_sent_at": sent_at,
    }


def _ops_failed(alert: dict[str, Any], error: str, policy: Policy, failed_at: datetime) -> dict[str, Any]:
    return outbox_row(
        "ops",
        failure_report_key(alert["id"], failed_at),
        policy.ops_channel,
        {
            "event": "alert_failed",
            "alert_id": alert["id"],
            "error": error,
            "case_ref": alert["payload"].get("case_ref"),
        },
    )


STUCK_AFTER = timedelta(hours=1)


def _stuck_channels(unsent: list[dict[str, Any]], policy: Policy, at: datetime) -> list[dict[str, Any]]:
    """Ops reports for channels with an alert still unsent an hour or more after its first try."""
    # Whatever keeps them once tried (5xx, dropped connections, 429s, a history that cannot be read, send
    # windows that close first), missed contacts must not wait unseen: ops hears once a day per channel.
    # Not of the ops channel itself, where the report would wait with them. Alerts never tried are not
    # counted: a channel is judged by what was sent to it.
    waiting: Counter[str] = Counter(a["channel"] for a in unsent)
    since: dict[str, datetime] = {}
    for a in unsent:
        if a["tried_at"] is not None and a["tried_at"] <= at - STUCK_AFTER:
            since[a["channel"]] = min(a["tried_at"], since.get(a["channel"], a["tried_at"]))
    return [
        outbox_row(
            "ops",
            f"ops:channel_failing:{channel}:{at.astimezone(UTC):%Y-%m-%d}",
            policy.ops_channel,
            {
                "event": "channel_failing",
                "channel": channel,
                "alerts_waiting": waiting[channel],
                "first_tried_utc": f"{first.astimezone(UTC):%Y-%m-%dT%H:%MZ}",
            },
        )
        for channel, first in sorted(since.items())
        if channel != policy.ops_channel
    ]


@task(name="dispatch-alerts", cache_policy=NO_CACHE)
def dispatch_alerts() -> dict[str, Any]:
    """Send pending alerts to Slack (or the dry-run outbox), once each; what cannot go now stays pending."""
    logger = get_run_logger()
    result = drain(wiring.engine(), notifier_from_settings(logger.info), get_policy())
    counts = f"alerts: {result.sent} sent, {result.dry_run} dry run, {result.failed} failed, {result.pending} pending"
    stopped = result.stopped()
    if stopped:  # alerts undelivered until someone acts, or Slack is back: not a line to pass over
        logger.warning("%s; %s", counts, stopped)
    else:
        logger.info("%s%s", counts, " (out of time: the rest go with the next dispatch)" if result.out_of_time else "")
    return result.as_dict() | {"stopped": stopped}
