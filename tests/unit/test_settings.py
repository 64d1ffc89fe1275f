"""Settings are validated at start with messages an operator can act on."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from iasu.settings import Settings

GOOD = base64.urlsafe_b64encode(b"g" * 32).decode()


def make(**env: str) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("encryption_key", "not base64!!", "URL-safe base64"),
        ("encryption_key", base64.urlsafe_b64encode(b"short").decode(), "32 bytes"),
        ("blind_index_key", "", "32 bytes"),
        ("database_url", "postgresql://x@y/z", "postgresql+psycopg"),
        ("database_url", "mysql://x@y/z", "sqlite:///"),
    ],
)
def test_bad_values_name_the_setting_and_the_fix(field: str, value: str, message: str) -> None:
    values = {"encryption_key": GOOD, "blind_index_key": GOOD, field: value}
    with pytest.raises(ValidationError) as info:
        make(**values)
    assert message in str(info.value)
    assert info.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IASU_ENCRYPTION_KEY", "MARKERkeyMARKERé"),  # not base64
        ("IASU_BLIND_INDEX_KEY", base64.urlsafe_b64encode(b"MARKER-short-key").decode()),  # base64, too short
        ("IASU_DATABASE_URL", "postgresql://user:MARKERpassword@db/iasu"),
    ],
)
def test_a_refused_setting_is_named_and_its_value_is_not_repeated(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle
    import traceback

    from iasu.errors import OperatorError
    from iasu.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(OperatorError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    # As the CLI prints it, as a flow run's log would show it (every chained cause), and as a result store keeps it.
    printed = "".join(traceback.format_exception(info.value))
    stored = pickle.dumps(info.value)
    assert printed.count(variable) == 1 and str(info.value).startswith(f"bad settings: {variable}: ")
    # Nothing chained: pydantic's error, kept as a cause or a context, would still hold the value.
    assert info.value.__cause__ is None and info.value.__context__ is None
    for shown in (value, "MARKER", "TUFSS0VS"):  # the value, its marker, and the marker as base64
        assert shown not in printed and shown.encode() not in stored
    # Settings built directly (not through get_settings) do not repeat the value in their message either.
    with pytest.raises(ValidationError) as direct:
        make(**{variable.removeprefix("IASU_").lower(): value})
    assert "MARKER" not in str(direct.value)


def test_the_settings_repr_leaves_the_database_url_out() -> None:
    settings = make(database_url="postgresql+psycopg://iasu:MARKERpassword@db.internal/iasu")
    assert "MARKER" not in repr(settings) and "MARKER" not in str(settings)


def test_keys_are_required_only_by_commands_that_handle_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from iasu.errors import OperatorError

    monkeypatch.delenv("IASU_ENCRYPTION_KEY")
    monkeypatch.delenv("IASU_BLIND_INDEX_KEY")
    s = make()
    with pytest.raises(OperatorError, match="IASU_ENCRYPTION_KEY and IASU_BLIND_INDEX_KEY not set"):
        s.require_keys()
    with pytest.raises(OperatorError, match="IASU_BLIND_INDEX_KEY not set"):
        _ = make(encryption_key=GOOD).blind_index_key_bytes


def test_defaults_are_the_embedded_demo_setup() -> None:
    s = make(encryption_key=GOOD, blind_index_key=GOOD)
    assert s.database_url == "sqlite:///var/iasu.db"
    assert s.timezone == "Europe/London"
    assert str(s.inbox) == "inbox"
    assert s.encryption_key_bytes == b"g" * 32


def test_prefect_defaults_apply_only_where_the_operator_set_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from iasu.prefect_env import DEFAULTS, quiet_prefect

    for key in DEFAULTS:
        monkeypatch.setenv(key, "")  # so that whatever quiet_prefect sets is undone after the test
        monkeypatch.delenv(key)
    quiet_prefect()
    # Room for a temporary server creating its database on a cold machine (Prefect waits 20 s by default).
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "120"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "45")
    quiet_prefect()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "45"


@pytest.mark.parametrize(
    ("values", "served"),
    [
        ({"slack_token": "xoxb-1"}, True),
        ({"slack_dry_run": "true"}, True),  # asked for: the served alerts end dry_run
        ({"slack_token": "xoxb-1", "slack_dry_run": "true"}, True),
        ({}, False),  # no token, no dry run asked for: alerts would silently never be sent
        ({"slack_token": ""}, False),
    ],
)
def test_serving_without_slack_must_be_asked_for(values: dict[str, str], served: bool) -> None:
    from iasu.errors import OperatorError

    settings = make(encryption_key=GOOD, blind_index_key=GOOD, **values)
    if served:
        settings.require_slack()
    else:
        with pytest.raises(OperatorError, match=r"IASU_SLACK_TOKEN not set.*IASU_SLACK_DRY_RUN=true"):
            settings.require_slack()
