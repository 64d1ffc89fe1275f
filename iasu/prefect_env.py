"""Prefect settings the product needs before Prefect is first imported."""

from __future__ import annotations

import os

DEFAULTS = {
    # No telemetry: this machine reaches no network beyond package registries, and none is wanted.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


def quiet_prefect() -> None:
    """Apply defaults an operator has not set (their own environment always wins)."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
