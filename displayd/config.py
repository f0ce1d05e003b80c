"""Settings: `DISPLAYD_*` environment variables over `config/displayd.toml` over defaults.

Built once by the entry point (`Settings.load()`) and passed in (`create_app(settings)`);
nothing in displayd reads the environment at import time, so a test builds its own:

    Settings(database_url="sqlite+aiosqlite:///tmp/x.db", allowed_board_networks=["127.0.0.0/8"])

A value that is refused raises `InvalidSettings`, which names the setting and the reason and
never the value: a weak secret key or a database URL with its password must not reach a
terminal, a log or a CI transcript because it was mistyped.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import URL, make_url

__all__ = ["DATABASE_DRIVERS", "InvalidSettings", "Settings", "redact_database_url"]

DEFAULT_CONFIG_FILE = Path("config/displayd.toml")
PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
# The async drivers displayd is built and tested on.
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
DATABASE_URL_FORM = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE"


class InvalidSettings(ValueError):
    """One or more settings were refused; the message names each and says why, never its value.

        InvalidSettings([("secret_key", "must be at least 32 characters")])
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"  {_setting_name(name)}: {reason}" for name, reason in problems]
        super().__init__("invalid settings:\n" + "\n".join(lines))


def _setting_name(name: str) -> str:
    """`secret_key` → `DISPLAYD_SECRET_KEY (secret_key)`: how the operator set it, either way."""
    if name in Settings.model_fields:
        return f"DISPLAYD_{name.upper()} ({name})"
    return name


def _reason(error: ErrorDetails) -> str:
    """Why a value was refused. pydantic's own messages are built from the field's limits
    ("Input should be greater than 0"), never from the input; ours say it in our words."""
    if error["type"] == "extra_forbidden":
        return "no such setting"
    return str(error["msg"]).removeprefix("Value error, ")


def redact_database_url(url: str | URL) -> str:
    """The URL to show a person: password replaced by `***` (in the authority or the query)."""
    try:
        parsed = make_url(url)
    except Exception:  # unparseable: nothing of it can be shown safely
        return "<database URL not shown>"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


class Settings(BaseSettings):
    """Everything an office can set; each field is documented in the README."""

    # hide_input_in_errors: a ValidationError that escapes anyway does not carry the value.
    model_config = SettingsConfigDict(env_prefix="DISPLAYD_", extra="forbid", hide_input_in_errors=True)

    database_url: str = Field(
        "sqlite+aiosqlite:///var/displayd.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
        repr=False,  # it may carry a password; show it with `redact_database_url`
    )
    host: str = Field("127.0.0.1", description="Address `displayd serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `displayd serve` listens on.")
    public_url: str | None = Field(
        None, description="Base URL printed for people (dashboard, player); default from host/port."
    )
    allowed_board_networks: list[str] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        description="Networks board endpoint URLs may resolve into (CIDR list).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Networks of reverse proxies whose X-Forwarded-For names the client (CIDR list); the "
        "failed sign-in limit and the logs see that client instead of the proxy.",
    )
    push_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Hard deadline of one push attempt."
    )
    log_retention_days: int = Field(400, ge=1, description="Days detailed rotation rows are kept.")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or JSON.")
    log_level: str = Field("INFO", description="Python logging level name.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body accepted.")
    change_poll_seconds: float = Field(
        1.0, gt=0, le=5, description="How often a process checks the database for others' changes."
    )
    scheduler_enabled: bool = Field(True, description="Whether this process may lead pushes.")
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=1024 * 1024,
        description="Largest request head (request line and headers); larger gets 431 and the connection closes.",
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="A connection that has not sent a whole request head by then gets 408."
    )
    keep_alive_seconds: int = Field(
        15, ge=1, le=300, description="An idle keep-alive connection is closed after this many seconds."
    )
    max_connections: int = Field(
        4096, ge=2, le=1_000_000,
        description="Open connections at most; beyond, the oldest idle one is closed, or the new one gets 503.",
    )
    stream_connections_per_board: int = Field(
        2, ge=1, le=100,
        description="Event streams (`/api/v1/boards/{id}/events`) one board may hold open at once in a process; "
        "one more gets 429. Two lets a board reconnect before displayd has noticed its old connection is gone.",
    )
    outage_backlog_rows: int = Field(
        2_000_000, ge=1000, le=100_000_000,
        description="Rotation-log writes (slot rows, push outcomes) the leader keeps in memory while the database is "
        "unreachable, to write once it is back (~340 bytes each); beyond, newer ones are dropped and counted.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Master secret: board push secrets are derived from it (the database keeps "
        "only hashes). Required on PostgreSQL, where "
        "every replica must share it; on SQLite a key file beside the database is made once.",
    )

    if not TYPE_CHECKING:  # type checkers keep the pydantic plugin's signature, field by field

        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise InvalidSettings([(".".join(str(part) for part in error["loc"]), _reason(error))
                                       for error in exc.errors(include_url=False, include_input=False)]) from None
            except SettingsError as exc:  # a list that is not JSON, and the like: names the field, not the value
                raise InvalidSettings([("environment", str(exc))]) from None
            except tomllib.TOMLDecodeError as exc:
                raise InvalidSettings([(str(_config_file()), f"not valid TOML ({exc})")]) from None

    @field_validator("database_url")
    @classmethod
    def _database_url_known(cls, value: str) -> str:
        # make_url's own errors quote the whole URL, password included: say it in our words.
        try:
            url = make_url(value)
        except Exception:
            raise ValueError(f"not a database URL; expected {DATABASE_URL_FORM}") from None
        if url.drivername not in DATABASE_DRIVERS:
            raise ValueError(f"unknown database driver; expected {DATABASE_URL_FORM}")
        return value

    @field_validator("allowed_board_networks", "trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for index, net in enumerate(value):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"entry {index + 1} is not a network in CIDR form (like 10.0.0.0/8)") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if len(secret) < 32:
                raise ValueError("too short: at least 32 characters (python -c 'import secrets; "
                                 "print(secrets.token_urlsafe(48))' makes one)")
            if "change" in secret.lower():
                raise ValueError("a placeholder, not a secret: generate one")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment and the config file now (call from entry points only)."""
        return cls(**overrides)

    @property
    def database_url_redacted(self) -> str:
        return redact_database_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL or an in-memory database."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    def board_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.allowed_board_networks]


def _config_file() -> Path:
    return Path(os.environ.get("DISPLAYD_CONFIG", DEFAULT_CONFIG_FILE))
