"""The Slack notifier keeps to Slack's one message per second per channel instead of provoking 429s."""

from __future__ import annotations

import time

from tasks.messages import Message
from tasks.notify import CHANNEL_INTERVAL_S, SlackNotifier
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
