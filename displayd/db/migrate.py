"""Programmatic Alembic: the migrations ship inside the package (`displayd/migrations`), so
`displayd db upgrade` works from any directory and from an installed wheel.

Alembic's env.py runs its own event loop, so these functions are synchronous; from async
code call them with `asyncio.to_thread`.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command
from displayd.config import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # No `sqlalchemy.url`: env.py takes the URL from the settings, and an ini option would run
    # through configparser's interpolation, whose errors quote the value (password included).
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision() -> str | None:
    """The newest migration this displayd ships (what `upgrade` reaches)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
