"""The Slack notifier keeps to Slack's one message per second per channel instead of provoking 429s."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from iasu import wiring
from iasu.policy import get_policy
from tasks import notify
from tasks.messages import Message
from tasks.notify import CHANNEL_INTERVAL_S, SEND_WINDOW, SlackNotifier, dispatch, drain
from tasks.outbox import ALERTS, outbox_row, queue_alert
from tests.slack_server import FakeSlack, Mode


def _message(n: int) -> Message:
    return Message(text=f"test {n}", blocks=[], dedupe_keys=[f"test:{n}"])


def test_posts_to_one_channel_are_paced_and_never_refused() -> None:
    with FakeSlack(rate_limit_per_second=1.0) as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        started = time.monotonic()
        for n in range(3):
            notifier.send("C0PACED", _message(n))
        elapsed = time.monotonic() - started
        assert [status for _, status in fake.requests] == [200, 200, 200]  # no 429 was needed
        assert notifier.rate_limited == 0
        assert 2 * CHANNEL_INTERVAL_S <= elapsed < 2 * CHANNEL_INTERVAL_S + 1.5


def test_other_channels_do_not_wait_for_each_other() -> None:
    with FakeSlack(rate_limit_per_second=1.0) as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        started = time.monotonic()
        for n in range(4):
            notifier.send(f"C0CHAN{n}", _message(n))
        assert time.monotonic() - started < CHANNEL_INTERVAL_S
        assert len(fake.messages) == 4


def test_a_post_that_failed_still_paces_the_next_one_to_its_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A post answered with an error may still have reached Slack: the channel's next post waits its turn as usual."""
    waits: list[float] = []
    monkeypatch.setattr(notify, "time", SimpleNamespace(monotonic=time.monotonic, sleep=waits.append))
    with FakeSlack() as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        fake.fail_next(1, "server_error")
        with pytest.raises(notify.SlackRejectedError):
            notifier.send("C0FAILED", _message(1))
        notifier.send("C0FAILED", _message(2))
    assert fake.requests == [("chat.postMessage", 500), ("chat.postMessage", 200)]
    assert len(waits) == 1 and CHANNEL_INTERVAL_S / 2 < waits[0] <= CHANNEL_INTERVAL_S


def missed_rows(channels: tuple[str, ...], per_channel: int) -> list[dict[str, object]]:
    """Outbox rows for missed contacts, per_channel of them for each channel."""
    return [
        outbox_row(
            "missed_contact",
            f"missed:{channel}:{n}:L1",
            channel,
            {
                "case_ref": f"CH-2026-{n:06d}",
                "kind": "victim_followup",
                "level": 1,
                "due_local": "Mon 2 Nov 2026 17:00",
                "working_days_late": 1,
                "staff_code": "CH-UNI-01",
                "slack_user_id": "U012AB3CD",
            },
            level=1,
        )
        for channel in channels
        for n in range(per_channel)
    ]


def test_a_dispatch_lets_channels_take_turns(configured: str) -> None:
    """Two channels needing three grouped messages each take about two seconds, not four, and nothing is refused."""
    per_channel = 300  # more than two grouped messages' worth of missed contacts
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0TURNA", "C0TURNB"), per_channel))
    with FakeSlack(rate_limit_per_second=1.0) as fake:
        started = time.monotonic()
        result = dispatch(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy())
        elapsed = time.monotonic() - started
        channels = [m["channel"] for m in fake.messages]
    assert result.sent == 2 * per_channel and result.messages == 6 and result.rate_limited == 0
    assert channels == ["C0TURNA", "C0TURNB"] * 3
    assert elapsed < 3 * CHANNEL_INTERVAL_S  # one after the other would take at least 4


def test_a_drain_takes_batch_after_batch_until_none_is_left(configured: str) -> None:
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0DRAIN",), 25))
    with FakeSlack() as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        one = dispatch(wiring.engine(), notifier, get_policy(), limit=10)
        assert (one.sent, one.pending) == (10, 15)  # a single dispatch takes one batch
        rest = drain(wiring.engine(), notifier, get_policy(), limit=10)
    assert (rest.sent, rest.pending, rest.claimed) == (15, 0, 15)


def test_one_broken_channel_leaves_the_rotation_and_the_others_are_delivered(configured: str) -> None:
    """Channel A answers 500 while B works: A's alerts stay pending, attempts untouched, after the breaker's count."""
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0BROKEN", "C0FINE"), 1500))  # about a dozen messages each
    breaker = get_policy().alerts.circuit_breaker_failures
    with FakeSlack() as fake:
        fake.fail_channel("C0BROKEN")
        result = drain(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy())
        tried = [(method, status) for method, status in fake.requests if method == "chat.postMessage"]
    assert result.sent == 1500 and result.pending == 1500 and result.failed == 0
    assert sum(1 for _, status in tried if status == 500) == breaker  # then the channel is left alone
    with wiring.engine().connect() as conn:
        stuck = conn.execute(select(ALERTS.c.attempts).where(ALERTS.c.channel == "C0BROKEN")).scalars().all()
    assert set(stuck) == {0}


def at(instant: datetime) -> Callable[[], datetime]:
    """A clock stopped at one instant."""
    return lambda: instant


def ops_reports() -> list[dict[str, object]]:
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(ALERTS).where(ALERTS.c.kind == "ops").order_by(ALERTS.c.id)).mappings()
        return [dict(r) for r in rows]


@pytest.mark.parametrize("mode", ["server_error", "down"])
def test_a_channel_whose_alerts_wait_an_hour_after_their_first_try_is_reported_once_a_day(
    configured: str, mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5xx or dropped connections on one channel: its alerts stay pending, and ops hears of it, not every dispatch."""
    monkeypatch.setattr(notify, "CHANNEL_INTERVAL_S", 0.0)  # the dispatches' clock is simulated; pacing is not
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0STUCK",), 2))
    first_try = datetime.now(UTC)
    policy = get_policy()
    with FakeSlack() as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        fake.mode = mode
        for minutes in (0, 55):  # first tried now: not yet an hour
            drain(wiring.engine(), notifier, policy, now=at(first_try + timedelta(minutes=minutes)))
            assert ops_reports() == []
        later = first_try + timedelta(minutes=61)
        for minutes in (61, 66):  # an hour on, still failing: one report, kept once for the day
            result = drain(wiring.engine(), notifier, policy, now=at(first_try + timedelta(minutes=minutes)))
        [report] = ops_reports()
        assert report["channel"] == policy.ops_channel and report["status"] == "pending"
        assert report["dedupe_key"] == f"ops:channel_failing:C0STUCK:{later:%Y-%m-%d}"
        assert report["payload"] == {
            "event": "channel_failing",
            "channel": "C0STUCK",
            "alerts_waiting": 2,
            "first_tried_utc": f"{first_try:%Y-%m-%dT%H:%MZ}",
        }
        assert result.pending == 2 + 1 and result.sent == 0
        fake.mode = "ok"
        done = drain(wiring.engine(), notifier, policy, now=at(later + timedelta(minutes=10)))
    # Slack answers again: the report and the alerts go, each once.
    assert done.sent == 2 + 1 and done.pending == 0
    assert [r["status"] for r in ops_reports()] == ["sent"]


def test_the_ops_channel_failing_is_not_reported_to_itself(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report of the ops channel failing would only wait there with its alerts, and add one more every day."""
    monkeypatch.setattr(notify, "CHANNEL_INTERVAL_S", 0.0)  # the dispatches' clock is simulated; pacing is not
    policy = get_policy()
    held = {"event": "file_held", "batch_id": 7, "file": "police_rms_2026-11-02.csv", "rows": 3, "reason": "r"}
    with wiring.engine().begin() as conn:
        queue_alert(conn, [outbox_row("ops", f"ops:held:{n}", policy.ops_channel, held) for n in range(2)])
    first_try = datetime.now(UTC)
    with FakeSlack() as fake:
        fake.fail_channel(policy.ops_channel)
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        for minutes in (0, 61, 66):
            result = drain(wiring.engine(), notifier, policy, now=at(first_try + timedelta(minutes=minutes)))
    assert (result.sent, result.pending) == (0, 2)
    assert [r["dedupe_key"] for r in ops_reports()] == ["ops:held:0", "ops:held:1"]


def test_a_drain_stops_after_a_refusal_rather_than_retrying_at_once(configured: str) -> None:
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0BROKEN", "C0FINE"), 15))
    with FakeSlack() as fake:
        fake.fail_channel("C0BROKEN")
        result = drain(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy(), limit=20)
    # A full batch that delivered (5 to the working channel) but met a refusal ends the drain: another round
    # would post the refused alerts again at once.
    assert (result.claimed, result.sent, result.pending) == (20, 5, 25)


def test_a_batch_is_claimed_sent_and_released_whole(configured: str) -> None:
    """Every statement over a batch's ids takes them all as one parameter (tasks.bulk.one_of), on both databases."""
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0CHUNKA", "C0CHUNKB"), 20))
    with FakeSlack() as fake:
        fake.fail_channel("C0CHUNKB")
        result = drain(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy())
    assert (result.claimed, result.sent, result.pending) == (40, 20, 20)
    with wiring.engine().connect() as conn:
        rows = conn.execute(select(ALERTS.c.channel, ALERTS.c.status, ALERTS.c.claimed_until, ALERTS.c.tried_at))
        by_channel = {(r.channel, r.status, r.claimed_until is None, r.tried_at is not None) for r in rows}
    # Sent on one channel; on the refused one, tried, left pending and handed back, every chunk of them.
    assert by_channel == {("C0CHUNKA", "sent", True, True), ("C0CHUNKB", "pending", True, True)}


def advancing(step: timedelta) -> Callable[[], datetime]:
    """A clock that moves on by step each time it is read."""
    current = [datetime(2026, 11, 2, 2, 0, tzinfo=UTC)]

    def now() -> datetime:
        current[0] += step
        return current[0]

    return now


def test_a_dispatch_stops_sending_before_its_lease_runs_out_and_hands_the_rest_back(configured: str) -> None:
    """Past the lease another dispatcher may claim the same alerts: no message starts after the send window."""
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0SLOWA", "C0SLOWB", "C0SLOWC"), 1))
    step = SEND_WINDOW / 4  # read at the claim, then before, while and after each send: the second send is too late
    with FakeSlack() as fake:
        notifier = SlackNotifier("xoxb-test", fake.base_url, 5)
        one = dispatch(wiring.engine(), notifier, get_policy(), now=advancing(step))
        assert (one.claimed, one.sent, one.pending, one.out_of_time) == (3, 1, 2, True)
        with wiring.engine().connect() as conn:
            held = conn.execute(select(ALERTS.c.id).where(ALERTS.c.claimed_until.is_not(None))).all()
        assert held == []  # the rest are free for the next dispatch at once, not when the lease expires
        # A drain goes on with a fresh claim when a batch ran out of time rather than out of alerts.
        rest = drain(wiring.engine(), notifier, get_policy(), now=advancing(step))
        assert (rest.sent, rest.pending) == (2, 0)
        assert len(fake.messages) == 3


def test_a_dispatch_past_its_lease_leaves_another_dispatchers_claim_alone(configured: str) -> None:
    """A late dispatcher hands back only what is still its own claim, never one taken since its lease ran out."""
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0LATEA", "C0LATEB", "C0LATEC"), 1))
    clock = advancing(SEND_WINDOW / 4)
    later = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # after the first dispatcher's lease

    class Overtaken(SlackNotifier):
        def send(self, channel: str, message: Message, within: float = math.inf) -> str:
            # While this first message goes out, another dispatcher claims what this one's lease held.
            notify._claim(wiring.engine(), limit=10, now=later)
            return super().send(channel, message, within)

    with FakeSlack() as fake:
        one = dispatch(wiring.engine(), Overtaken("xoxb-test", fake.base_url, 5), get_policy(), now=clock)
    assert (one.sent, one.out_of_time) == (1, True)
    with wiring.engine().connect() as conn:
        held = conn.execute(select(ALERTS.c.claimed_until).where(ALERTS.c.status == "pending")).scalars().all()
    assert len(held) == 2 and set(held) == {later + notify.LEASE}


def test_a_rate_limited_send_stops_waiting_before_its_time_is_up() -> None:
    """Slack's Retry-After waits are taken only while the wait and one more try fit in the send's time."""
    with FakeSlack(retry_after=1) as fake:
        fake.mode = "rate_limited"
        notifier = SlackNotifier("xoxb-test", fake.base_url, 1)
        started = time.monotonic()
        with pytest.raises(notify.SlackRejectedError) as refused:
            # One wait (1 s and up to 1 s of jitter) and a try of at most 1 s fit in 4 s; a second wait,
            # starting more than 1 s in, would not. Without the bound the client tries nine times, about 13 s.
            notifier.send("C0LIMITED", _message(1), within=4.0)
        elapsed = time.monotonic() - started
        assert refused.value.status == 429
        assert fake.requests == [("chat.postMessage", 429)] * 2
        assert elapsed < 4.0
        # The bound was that send's only: a history read after it waits out its own 429 as usual.
        fake.mode = "ok"
        fake.fail_next(1, "rate_limited")
        assert notifier.delivered_keys("C0LIMITED", since=datetime.now(UTC)) == {}
        assert fake.requests[2:] == [("conversations.history", 429), ("conversations.history", 200)]


def test_a_dispatch_leaves_a_channel_pending_rather_than_wait_past_its_lease(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack asking for a wait longer than the lease has left: no wait, and the channel sits out the run."""
    from slack_sdk.http_retry import builtin_handlers

    def no_wait(seconds: float) -> None:
        raise AssertionError(f"waited {seconds:.0f} s for Slack past the lease")

    # Were the bound lost, the test fails at once rather than after eight five-minute waits.
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=no_wait))
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0WAIT",), 2))
    with FakeSlack(retry_after=int(notify.LEASE.total_seconds())) as fake:
        fake.mode = "rate_limited"
        result = dispatch(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy())
        requests = fake.requests
    # One message tried and refused; the channel's other message is not tried in this run.
    assert requests == [("chat.postMessage", 429)]
    assert (result.sent, result.pending, result.rate_limited) == (0, 2, 1)
    assert result.errors == {"ratelimited": 1}
    with wiring.engine().connect() as conn:
        assert conn.execute(select(ALERTS.c.claimed_until, ALERTS.c.attempts)).all() == [(None, 0)] * 2
