"""Settings: `DISPLAYD_*` environment variables over `config/displayd.toml` over defaults.

Built once by the entry point (`Settings.load()`) and passed in (`create_app(settings)`);
nothing in displayd reads the environment at import time, so a test builds its own:

    Settings(database_url="sqlite+aiosqlite:///tmp/x.db", allowed_board_networks=["127.0.0.0/8"])
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("config/displayd.toml")
PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]


class Settings(BaseSettings):
    """Everything an office can set; each field is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="DISPLAYD_", extra="forbid")

    database_url: str = Field(
        "sqlite+aiosqlite:///var/displayd.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
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
    secret_key: str | None = Field(
        None,
        description="Master secret: board push secrets are derived from it (the database keeps "
        "only hashes) and dashboard cookies are signed with it. Required on PostgreSQL, where "
        "every replica must share it; on SQLite a key file beside the database is made once.",
    )

    @field_validator("allowed_board_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)
        return value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder_secret(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 32 or "change" in value.lower()):
            raise ValueError("secret_key must be at least 32 characters and not a placeholder")
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
        config_file = Path(os.environ.get("DISPLAYD_CONFIG", DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment and the config file now (call from entry points only)."""
        return cls(**overrides)

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
