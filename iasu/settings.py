"""One typed settings object, validated at start: the only reader of the environment."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from iasu.errors import OperatorError

KEY_BYTES = 32


def decode_key(value: str) -> bytes:
    """Decode a URL-safe base64 key of exactly 32 bytes, or raise ValueError."""
    try:
        raw = base64.urlsafe_b64decode(value.strip().encode("ascii") + b"=" * (-len(value.strip()) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError("is not URL-safe base64 (generate one with `iasu keygen`)") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"must decode to {KEY_BYTES} bytes, got {len(raw)} (generate one with `iasu keygen`)")
    return raw


class Settings(BaseSettings):
    """Runtime configuration, from IASU_* environment variables."""

    # pydantic does not repeat a refused value after its message: a mistyped key is still most of a key, and a
    # database URL may carry a password (the time zone's own message names the zone, which is no secret).
    model_config = SettingsConfigDict(env_prefix="IASU_", extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(default="sqlite:///var/iasu.db", repr=False)  # a URL may carry a password
    # Optional here so that commands which never touch personal data (status, lists) run without them;
    # every command that reads or writes personal data calls require_keys() before it starts.
    encryption_key: SecretStr | None = None
    blind_index_key: SecretStr | None = None
    slack_token: SecretStr | None = None
    slack_base_url: str = "https://slack.com/api/"
    # Serving without a token must be asked for: its alerts end `dry_run`, a final state, never sent.
    slack_dry_run: bool = False
    timezone: str = "Europe/London"
    policy_file: Path | None = None
    inbox: Path = Path("inbox")
    var_dir: Path = Field(
        default=Path("var"),
        description="Local state: SQLite file, Data Docs, dry-run outbox",
    )

    @field_validator("encryption_key", "blind_index_key")
    @classmethod
    def _key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value())
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder name such as Europe
            raise ValueError(f"no time zone {value!r} (an IANA name such as Europe/London)") from None
        return value

    @field_validator("slack_base_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        # Checked here, not at the first post: a dispatch that met it there would stop with its alerts claimed.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// address, such as https://slack.com/api/")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            raise ValueError("write PostgreSQL URLs as postgresql+psycopg://… (psycopg 3)")
        if not (value.startswith(("sqlite:///", "postgresql+psycopg://"))):
            raise ValueError("must be sqlite:///PATH or postgresql+psycopg://…")
        return value

    def require_slack(self) -> None:
        """Stop at start when served alerts would silently never reach Slack: no token, and no dry run asked for."""
        if (self.slack_token is None or not self.slack_token.get_secret_value()) and not self.slack_dry_run:
            raise OperatorError(
                "bad settings: IASU_SLACK_TOKEN not set, so served alerts would be marked dry_run and never "
                "sent; set it, or IASU_SLACK_DRY_RUN=true to serve without Slack"
            )

    def require_keys(self) -> None:
        """Stop at start, with the variables named, when a command that handles personal data lacks its keys."""
        missing = [
            name
            for name, value in (
                ("IASU_ENCRYPTION_KEY", self.encryption_key),
                ("IASU_BLIND_INDEX_KEY", self.blind_index_key),
            )
            if value is None
        ]
        if missing:
            raise OperatorError(f"bad settings: {' and '.join(missing)} not set (generate each with `iasu keygen`)")

    @property
    def encryption_key_bytes(self) -> bytes:
        """The AES-256-GCM key for personal fields."""
        self.require_keys()
        assert self.encryption_key is not None
        return decode_key(self.encryption_key.get_secret_value())

    @property
    def blind_index_key_bytes(self) -> bytes:
        """The HMAC key for blind indexes (kept apart from the encryption key)."""
        self.require_keys()
        assert self.blind_index_key is not None
        return decode_key(self.blind_index_key.get_secret_value())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; refused ones raise OperatorError naming each variable, not its value."""
    try:
        return Settings()  # required fields come from the environment
    except ValidationError as exc:
        said = bad_settings(exc)
    # Raised outside the handler, so pydantic's error is neither its cause nor its context: its details keep
    # each refused value, and a flow that raises is logged with its traceback and pickled into result storage.
    raise OperatorError(said)


def bad_prefect_setting(exc: ValidationError) -> str:
    """A Prefect setting the environment got wrong (Prefect reads its own as it starts), in one line."""
    first = exc.errors()[0]
    where = ".".join([exc.title, *(str(part) for part in first["loc"])])
    return f"bad Prefect setting ({where}): {first['msg']}"


def bad_settings(exc: ValidationError) -> str:
    """Settings the environment got wrong, in one line naming each variable (never its value)."""

    def said(err: Any) -> str:
        if err["type"] == "missing":
            return "missing (generate one with `iasu keygen`)" if "key" in str(err["loc"]) else "missing"
        return str(err["msg"]).removeprefix("Value error, ")

    problems = "; ".join(f"IASU_{'_'.join(str(p) for p in err['loc']).upper()}: {said(err)}" for err in exc.errors())
    return f"bad settings: {problems}"
