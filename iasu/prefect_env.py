"""Prefect settings the product needs before Prefect is first imported."""

from __future__ import annotations

import os

DEFAULTS = {
    # No telemetry: this machine reaches no network beyond package registries, and none is wanted.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
    # The temporary server a run starts without PREFECT_API_URL creates its database on first use; on a
    # cold, busy 2-core machine that can take longer than Prefect's 20 s, and the night would fail unread.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # The product's own log lines (a stage waiting for a casework command, say) reach the run's log in the UI.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "iasu",
}


def quiet_prefect() -> None:
    """Apply defaults an operator has not set (their own environment always wins)."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
