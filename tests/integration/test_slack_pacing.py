"""The Slack notifier keeps to Slack's one message per second per channel instead of provoking 429s."""

from __future__ import annotations

import time

from sqlalchemy import select

from iasu import wiring
from iasu.policy import get_policy
from tasks.messages import Message
from tasks.notify import CHANNEL_INTERVAL_S, SlackNotifier, dispatch, drain
from tasks.outbox import ALERTS, outbox_row, queue_alert
from tests.slack_server import FakeSlack


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


def test_a_drain_stops_after_a_refusal_rather_than_retrying_at_once(configured: str) -> None:
    with wiring.engine().begin() as conn:
        queue_alert(conn, missed_rows(("C0BROKEN", "C0FINE"), 15))
    with FakeSlack() as fake:
        fake.fail_channel("C0BROKEN")
        result = drain(wiring.engine(), SlackNotifier("xoxb-test", fake.base_url, 5), get_policy(), limit=20)
    # A full batch that delivered (5 to the working channel) but met a refusal ends the drain: another round
    # would post the refused alerts again at once.
    assert (result.claimed, result.sent, result.pending) == (20, 5, 25)
