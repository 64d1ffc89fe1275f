"""Local keys for the demo only: real deployments must set IASU_ENCRYPTION_KEY and IASU_BLIND_INDEX_KEY."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

KEY_VARS = ("IASU_ENCRYPTION_KEY", "IASU_BLIND_INDEX_KEY")


def ensure_demo_keys(var_dir: Path) -> str | None:
    """Use keys from the environment, else from var/demo-keys.json (created once); returns a notice if so."""
    if all(os.environ.get(v) for v in KEY_VARS):
        return None
    path = var_dir / "demo-keys.json"
    if path.exists():
        keys = json.loads(path.read_text(encoding="utf-8"))
    else:
        var_dir.mkdir(parents=True, exist_ok=True)
        keys = {v: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii") for v in KEY_VARS}
        path.write_text(json.dumps(keys, indent=2) + "\n", encoding="utf-8")
        path.chmod(0o600)
    for var in KEY_VARS:
        os.environ.setdefault(var, keys[var])
    from iasu import wiring

    wiring.reset()
    return f"demo keys from {path}: local only, never for real data (set {' and '.join(KEY_VARS)} elsewhere)"
