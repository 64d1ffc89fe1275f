"""A local Slack Web API (chat.postMessage, conversations.history) on 127.0.0.1, with switchable failure modes."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

Mode = Literal[
    "ok",
    "rate_limited",
    "server_error",
    "unavailable",
    "down",
    "hang",
    "channel_not_found",
    "invalid_auth",
    "invalid_arguments",  # a refusal Slack names, neither its passing trouble nor one the product knows as lasting
]
MODES: tuple[str, ...] = get_args(Mode)
# Slack refuses a message whose blocks hold more than about 12,000 characters of text in all, below
# what 50 blocks of 3,000 would allow (answered as msg_blocks_too_long).
BLOCKS_TEXT_LIMIT = 12_000
DROPPED = 0  # status recorded in `requests` when the connection was closed without an answer


@dataclass
class _Reply:
    """What the handler sends back: an HTTP answer, or nothing at all when `status` is DROPPED."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def block_text_chars(value: object) -> int:
    """Characters of text in a Block Kit structure, all blocks together."""
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else block_text_chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(block_text_chars(v) for v in value)
    return 0


def _truthy(value: object) -> bool:
    # The WebClient turns booleans into "1"/"0" in form bodies; JSON bodies keep real booleans.
    return value is True or str(value).lower() in ("1", "true")


def _json_field(value: object) -> Any:
    # Form-encoded posts carry blocks and metadata as JSON strings; JSON posts carry them as objects.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class FakeSlack:
    """A Slack Web API for tests that records what it was sent and fails on demand."""

    def __init__(
        self, *, hang_seconds: float = 3.0, rate_limit_per_second: float | None = None, retry_after: int = 1
    ) -> None:
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after  # seconds in each 429's Retry-After (0: the client waits only its jitter)
        self.rate_limit_per_second = rate_limit_per_second
        self._mode: Mode = "ok"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._messages: list[dict[str, Any]] = []
        self._requests: list[tuple[str, int]] = []
        self._errors: list[BaseException] = []
        self._forced: deque[Mode] = deque()
        self._failing_channels: set[str] = set()
        self._recent: dict[str, deque[float]] = {}
        self._next_ts = 0  # microseconds of the last ts given
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free loopback port and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeSlack is already running")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-slack", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake any hanging request, and join every thread the server started."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        # server_close joins the per-request threads (block_on_close), so none outlive the fake.
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        """URL to give WebClient(base_url=...); ends with "/" as the client requires."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    # -- controls and records --------------------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """How requests are answered from now on (after any fail_next ones)."""
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {value!r}")
        self._mode = value

    def fail_channel(self, channel: str) -> None:
        """Answer every post to this channel with a 500 (one channel broken while the others work)."""
        self._failing_channels.add(channel)

    def fail_next(self, n: int, mode: Mode) -> None:
        """Answer the next n requests (of any method) in `mode`, then return to the current mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        with self._lock:
            self._forced.extend([mode] * n)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted chat.postMessage calls, oldest first: channel, text, blocks, metadata, ts."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def requests(self) -> list[tuple[str, int]]:
        """Every request as (API method, HTTP status); status 0 means the connection was dropped."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised while serving (a bug in the fake, not a client that went away)."""
        with self._lock:
            return list(self._errors)

    def history(self, channel: str) -> list[dict[str, Any]]:
        """Accepted posts to one channel, newest first as conversations.history lists them."""
        with self._lock:
            return [dict(m) for m in reversed(self._messages) if m["channel"] == channel]

    # -- answering (called from request threads) -------------------------------------------------------------------

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        with self._lock:
            mode = self._forced.popleft() if self._forced else self._mode
            reply = self._decide(mode, method, params, token)
            self._requests.append((method, reply.status))
            return reply

    def _rate_limited(self) -> _Reply:
        return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.retry_after)})

    def _decide(self, mode: Mode, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        if mode == "down":
            return _Reply(DROPPED)
        if mode == "rate_limited":
            return self._rate_limited()
        if mode == "server_error":
            return _Reply(500, {"ok": False, "error": "internal_error"})
        if mode == "unavailable":  # Slack's own passing trouble, answered as HTTP 200
            return _Reply(200, {"ok": False, "error": "service_unavailable"})
        if mode in ("channel_not_found", "invalid_auth", "invalid_arguments"):
            return _Reply(200, {"ok": False, "error": mode})
        if not token:
            return _Reply(200, {"ok": False, "error": "invalid_auth"})
        if method == "chat.postMessage" and params.get("channel") in self._failing_channels:
            reply = _Reply(500, {"ok": False, "error": "internal_error"})
        elif method == "chat.postMessage":
            reply = self._post(params)
        elif method == "conversations.history":
            reply = self._history(params)
        else:
            reply = _Reply(200, {"ok": False, "error": "unknown_method"})
        if mode == "hang":
            # The work is done (the message is recorded) before the answer is held back: a timeout after delivery.
            reply.delay = self.hang_seconds
        return reply

    def _post(self, params: dict[str, Any]) -> _Reply:
        channel = params.get("channel")
        if not channel:
            return _Reply(200, {"ok": False, "error": "channel_not_found"})
        text, blocks = params.get("text"), _json_field(params.get("blocks"))
        if not text and not blocks:
            return _Reply(200, {"ok": False, "error": "no_text"})
        if blocks and block_text_chars(blocks) > BLOCKS_TEXT_LIMIT:
            return _Reply(200, {"ok": False, "error": "msg_blocks_too_long"})
        if self._over_rate(str(channel)):
            return self._rate_limited()
        # As Slack's: the post's time ("1764500000.000100"), which history's oldest and latest compare; unique.
        self._next_ts = max(self._next_ts + 100, time.time_ns() // 1_000)
        ts = f"{self._next_ts // 1_000_000}.{self._next_ts % 1_000_000:06d}"
        record = {
            "channel": str(channel),
            "text": text,
            "blocks": blocks,
            "metadata": _json_field(params.get("metadata")),
            "ts": ts,
        }
        self._messages.append(record)
        return _Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": self._as_slack(record, True)})

    def _over_rate(self, channel: str) -> bool:
        if self.rate_limit_per_second is None:
            return False
        now = time.monotonic()
        window = self._recent.setdefault(channel, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.rate_limit_per_second:
            return True
        window.append(now)
        return False

    def _history(self, params: dict[str, Any]) -> _Reply:
        channel = str(params.get("channel", ""))
        limit = int(params.get("limit") or 100)
        oldest, latest = params.get("oldest"), params.get("latest")
        with_metadata = _truthy(params.get("include_all_metadata"))
        found = [
            self._as_slack(m, with_metadata)
            for m in reversed(self._messages)
            if m["channel"] == channel
            and (oldest is None or float(m["ts"]) > float(oldest))
            and (latest is None or float(m["ts"]) < float(latest))
        ]
        # Channels are configured by id and any id is a real channel here: an unknown one is just empty.
        return _Reply(200, {"ok": True, "messages": found[:limit], "has_more": len(found) > limit})

    @staticmethod
    def _as_slack(record: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "bot_id": "B0FAKESLACK", "ts": record["ts"]}
        message["text"] = record["text"] or ""
        if record["blocks"] is not None:
            message["blocks"] = record["blocks"]
        metadata = record["metadata"]
        if with_metadata and isinstance(metadata, dict):
            message["metadata"] = {
                "event_type": metadata.get("event_type"),
                "event_payload": metadata.get("event_payload", {}),
            }
        return message

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)


class _Server(ThreadingHTTPServer):
    # Non-daemon request threads so server_close() joins them: a test must not leak a thread into the next.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        # A client that timed out or gave up leaves a broken socket behind: expected, not worth a traceback.
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        if exc is not None:
            self.fake._record_error(exc)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A client that connects and never sends must not keep stop() waiting for ever.
    timeout = 10

    def do_POST(self) -> None:
        """Answer a Slack Web API call."""
        self._serve()

    def do_GET(self) -> None:
        """Answer a Slack Web API call sent as a query string."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean: no per-request line on stderr."""

    def _serve(self) -> None:
        # Read the whole body even when about to drop the connection: unread bytes turn a clean close into a reset.
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        method = url.path.rstrip("/").rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = self.headers.get_content_type()
        if content_type == "application/json" and raw:
            body = json.loads(raw)
            if isinstance(body, dict):
                params.update(body)
        elif content_type == "application/x-www-form-urlencoded":
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else params.get("token")

        reply = self.server.fake._answer(method, params, token)
        if reply.status == DROPPED or (reply.delay and self.server.fake._stopping.wait(reply.delay)):
            # No status line at all: the client sees the connection closed under it.
            self.close_connection = True
            return
        payload = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
