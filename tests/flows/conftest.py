"""One Prefect test harness (a throwaway API on SQLite) for the whole session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(prefect_database: Path) -> Iterator[None]:
    """Prefect's test harness, its database a copy of the run's migrated one (its start is half as long)."""
    from prefect.testing import utilities

    # The harness puts its database in a new temporary folder of its own, and removes that folder at exit.
    folder = tempfile.mkdtemp(prefix="iasu-prefect-harness-")
    shutil.copyfile(prefect_database, Path(folder) / "prefect-test.db")
    with (
        mock.patch.object(utilities, "mkdtemp", return_value=folder),
        utilities.prefect_test_harness(server_startup_timeout=120),
    ):
        yield
