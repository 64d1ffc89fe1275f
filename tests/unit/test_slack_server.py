"""The local Slack server answers the real WebClient as Slack would, and fails the way Slack can."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.client import RemoteDisconnected

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

from tests.slack_server import FakeSlack, Mode

METADATA = {"event_type": "contact_missed", "event_payload": {"contact_id": 42, "level": 1}}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def client(slack: FakeSlack, *, timeout: int = 30, retry_handlers: list[RetryHandler] | None = None) -> WebClient:
    """A real WebClient pointed at the fake (None: the client's default retry handlers)."""
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=timeout, retry_handlers=retry_handlers)


def test_a_post_is_recorded_with_its_blocks_and_metadata(slack: FakeSlack) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*missed*"}}]
    response = client(slack).chat_postMessage(channel="C0IASUUNIT", text="missed", blocks=blocks, metadata=METADATA)
    assert response["ok"] is True
    assert response["channel"] == "C0IASUUNIT"
    assert slack.messages == [
        {"channel": "C0IASUUNIT", "text": "missed", "blocks": blocks, "metadata": METADATA, "ts": response["ts"]}
    ]
    assert slack.requests == [("chat.postMessage", 200)]


def test_each_post_gets_a_later_unique_ts(slack: FakeSlack) -> None:
    web = client(slack)
    stamps = [web.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(3)]
    assert stamps == sorted(set(stamps), key=float)
    assert abs(float(stamps[0]) - time.time()) < 60  # the post's time, as Slack's ts is


def test_a_form_encoded_post_has_its_json_metadata_parsed(slack: FakeSlack) -> None:
    client(slack).api_call("chat.postMessage", params={"channel": "C1", "text": "hi", "metadata": json.dumps(METADATA)})
    assert slack.messages[0]["metadata"] == METADATA


def test_history_lists_posts_newest_first_with_metadata_when_asked(slack: FakeSlack) -> None:
    web = client(slack)
    first = web.chat_postMessage(channel="C1", text="first", metadata=METADATA)["ts"]
    second = web.chat_postMessage(channel="C1", text="second")["ts"]
    web.chat_postMessage(channel="C2", text="elsewhere")

    history = web.conversations_history(channel="C1", limit=10, include_all_metadata=True)
    assert history["has_more"] is False
    assert [(m["ts"], m["text"]) for m in history["messages"]] == [(second, "second"), (first, "first")]
    assert history["messages"][1]["metadata"] == METADATA
    assert "metadata" not in history["messages"][0]
    assert [m["ts"] for m in slack.history("C1")] == [second, first]


def test_history_leaves_metadata_out_unless_include_all_metadata(slack: FakeSlack) -> None:
    web = client(slack)
    web.chat_postMessage(channel="C1", text="first", metadata=METADATA)
    assert "metadata" not in web.conversations_history(channel="C1")["messages"][0]


def test_history_of_an_unknown_channel_is_empty(slack: FakeSlack) -> None:
    assert client(slack).conversations_history(channel="C0NEVERUSED")["messages"] == []


def test_a_post_without_a_token_is_refused(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        WebClient(base_url=slack.base_url).chat_postMessage(channel="C1", text="hi")
    assert raised.value.response["error"] == "invalid_auth"
    assert slack.messages == []


@pytest.mark.parametrize(("mode", "status"), [("rate_limited", 429), ("server_error", 500)])
def test_rate_limits_and_server_errors_raise_slack_api_error_with_the_status(
    slack: FakeSlack, mode: Mode, status: int
) -> None:
    slack.mode = mode
    with pytest.raises(SlackApiError) as raised:
        client(slack).chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.status_code == status
    assert slack.messages == []
    assert slack.requests == [("chat.postMessage", status)]


def test_a_rate_limit_carries_retry_after(slack: FakeSlack) -> None:
    slack.mode = "rate_limited"
    with pytest.raises(SlackApiError) as raised:
        client(slack).chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response["error"] == "ratelimited"


def test_a_rate_limit_retry_handler_waits_and_succeeds(slack: FakeSlack) -> None:
    slack.fail_next(1, "rate_limited")
    started = time.monotonic()
    client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]).chat_postMessage(
        channel="C1", text="hi"
    )
    assert time.monotonic() - started >= 0.9
    assert slack.requests == [("chat.postMessage", 429), ("chat.postMessage", 200)]
    assert len(slack.messages) == 1


@pytest.mark.parametrize("mode", ["channel_not_found", "invalid_auth", "invalid_arguments"])
def test_slack_errors_answer_200_with_the_error(slack: FakeSlack, mode: Mode) -> None:
    slack.mode = mode
    with pytest.raises(SlackApiError) as raised:
        client(slack).chat_postMessage(channel="C1", text="hi")
    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == mode


def test_a_down_server_drops_the_connection_after_the_default_retry(slack: FakeSlack) -> None:
    slack.mode = "down"
    # The WebClient's default ConnectionErrorRetryHandler tries once more, then lets the error through unwrapped.
    with pytest.raises(RemoteDisconnected):
        client(slack).chat_postMessage(channel="C1", text="hi")
    assert slack.requests == [("chat.postMessage", 0), ("chat.postMessage", 0)]
    assert slack.messages == []


def test_a_hang_times_out_the_client_after_the_message_was_delivered(slack: FakeSlack) -> None:
    slack.mode = "hang"
    with pytest.raises(TimeoutError):
        client(slack, timeout=1).chat_postMessage(channel="C1", text="hi")
    # Delivered all the same: a blind resend would post it twice.
    assert [m["text"] for m in slack.messages] == ["hi"]
    assert slack.requests == [("chat.postMessage", 200)]


def test_fail_next_fails_that_many_requests_then_reverts(slack: FakeSlack) -> None:
    slack.fail_next(2, "server_error")
    web = client(slack)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            web.chat_postMessage(channel="C1", text="hi")
    web.chat_postMessage(channel="C1", text="hi")
    assert [status for _, status in slack.requests] == [500, 500, 200]


def test_a_burst_over_the_per_channel_rate_is_refused_with_429(slack: FakeSlack) -> None:
    slack.rate_limit_per_second = 2
    web = client(slack)
    statuses = []
    for channel in ["C1", "C1", "C1", "C2"]:
        try:
            web.chat_postMessage(channel=channel, text="hi")
            statuses.append(200)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    assert statuses == [200, 200, 429, 200]
    assert len(slack.messages) == 3


def test_stopping_with_a_request_still_hanging_is_quick_and_leaves_no_threads() -> None:
    before = set(threading.enumerate())
    with FakeSlack(hang_seconds=30) as slack:
        slack.mode = "hang"
        # A bare urllib call: the server's shutdown is under test, and WebClient's timeout takes whole seconds.
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(f"{slack.base_url}chat.postMessage?channel=C1&text=hi&token=x", timeout=0.2)
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert set(threading.enumerate()) == before
    assert slack.errors == []
