"""The `displayd` command: serve | db upgrade | keys create/list/revoke | slogans import | demo.

Each command builds the settings once from the environment and the config file and passes
them down. Output meant for scripts is on stdout (the new key alone on the last line);
errors go to stderr with exit status 2.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from pydantic import ValidationError

from displayd.auth.roles import Principal, Role, cli_principal
from displayd.config import Settings
from displayd.errors import DisplaydError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.load()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from None


def _actor(name: str | None) -> Principal:
    return cli_principal(name or f"cli:{getpass.getuser()}")


def _run_in_transaction(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(session)` in one transaction on a fresh engine; domain errors exit 2."""
    from displayd.db.session import create_engine, create_sessionmaker

    async def main() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except DisplaydError as exc:
        raise click.ClickException(exc.detail) from None


@click.group()
@click.version_option(package_name="displayd")
def main() -> None:
    """displayd: slogan campaigns on electronic display boards."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default: settings.host, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default: settings.port, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API, board polls, dashboard and scheduler (one process, one worker)."""
    import uvicorn

    from displayd.app import create_app
    from displayd.boards.poll import PollPath
    from displayd.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    app = create_app(settings)
    # The poll path in front of the FastAPI object itself: board polls skip even FastAPI's
    # outermost layers (error and telemetry middleware), about half the cost of a poll.
    uvicorn.run(
        PollPath(app, app.state), host=host or settings.host, port=port or settings.port,
        log_config=None, access_log=False, server_header=False,
    )


@main.group()
def db() -> None:
    """Database schema (Alembic migrations shipped in the package)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database named by DISPLAYD_DATABASE_URL up to REVISION (default head)."""
    from displayd.db import migrate

    settings = _settings()
    migrate.upgrade(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (`base` empties it)."""
    from displayd.db import migrate

    settings = _settings()
    migrate.downgrade(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.database_url)}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def keys() -> None:
    """Staff API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the key may do.")
@click.option("--name", required=True, help="Whose key it is (the name in the audit log).")
def keys_create(role: str, name: str) -> None:
    """Create a key; it is printed alone on the last line, and never shown again."""
    from displayd.auth.keys import create_key

    async def work(session: object) -> str:
        _, key = await create_key(session, actor=_actor(None), role=role, name=name,  # type: ignore[arg-type]
                                  now=datetime.now(UTC))
        return key

    key = _run_in_transaction(_settings(), work)
    click.echo(f"created {role} key for {name!r}; store it now, it is not shown again:")
    click.echo(key)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z") if value else "-"


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key instead of a table.")
def keys_list(as_json: bool) -> None:
    """List the keys: id, name, role, created, last used, revoked (never the keys themselves)."""
    import json

    from displayd.auth.keys import list_keys
    from displayd.db.models import ApiKey

    async def work(session: object) -> list[ApiKey]:
        return await list_keys(session, limit=1_000_000)  # type: ignore[arg-type]

    rows = [{"id": r.id, "name": r.name, "role": r.role, "created_at": _when(r.created_at),
             "last_used_at": _when(r.last_used_at), "revoked_at": _when(r.revoked_at)}
            for r in _run_in_transaction(_settings(), work)]
    if as_json:
        for row in rows:
            click.echo(json.dumps({k: None if v == "-" else v for k, v in row.items()}, ensure_ascii=False))
        return
    table = [("ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED")]
    table += [(str(r["id"]), str(r["name"]), str(r["role"]), str(r["created_at"]), str(r["last_used_at"]),
               str(r["revoked_at"])) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@keys.command("revoke")
@click.argument("key_id", metavar="ID", type=int)
@click.option("--as", "as_name", default=None, help="Name recorded in the audit log (default cli:<user>).")
def keys_revoke(key_id: int, as_name: str | None) -> None:
    """Revoke key ID: it and the dashboard sessions opened with it stop working on every
    running displayd within change_poll_seconds."""
    from displayd.auth.keys import revoke_key
    from displayd.db.models import ApiKey

    async def work(session: object) -> ApiKey:
        return await revoke_key(session, key_id, actor=_actor(as_name), now=datetime.now(UTC))  # type: ignore[arg-type]

    try:
        row = _run_in_transaction(_settings(), work)
    except click.ClickException as exc:  # no such key, or already revoked
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(2)
    click.echo(f"revoked key {row.id} ({row.name}, {row.role})")


@main.group()
def slogans() -> None:
    """The slogan catalog."""


@slogans.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_name", default=None, help="Name recorded in the audit log (default cli:<user>).")
def slogans_import(file: Path, as_name: str | None) -> None:
    """Import approved slogans from FILE (YAML); importing the same file again adds nothing."""
    from displayd.catalog.importer import ImportResult, import_file

    async def work(session: object) -> ImportResult:
        return await import_file(session, file, actor=_actor(as_name), now=datetime.now(UTC))  # type: ignore[arg-type]

    result = _run_in_transaction(_settings(), work)
    if result.added:
        click.echo(f"imported {len(result.added)} slogans, {len(result.unchanged)} unchanged")
    else:
        click.echo(f"nothing to import: all {len(result.unchanged)} slogans are already in the catalog")


@main.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on (127.0.0.1).")
@click.option("--dwell", default=10, show_default=True, type=click.IntRange(5, 3600),
              help="Seconds each slogan stays on a board.")
def demo(port: int, dwell: int) -> None:
    """Try displayd: SQLite, the section IV slogans, simulated boards, URLs and keys printed."""
    from displayd import demo as demo_module
    from displayd.logs import configure_logging

    # Line-buffered, so the boards' lines appear at once even when stdout is a pipe.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        settings, throwaway = demo_module.demo_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from None
    try:
        if throwaway:
            removed = demo_module.remove_demo_database()
            note = "deleted the previous demo database and started fresh" if removed else "a new demo database"
            click.echo(f"{note}: {demo_module.DEMO_DATABASE} (the demo never touches var/displayd.db)")
        else:
            click.echo(f"using the database named by DISPLAYD_DATABASE_URL: {_redacted(settings.database_url)}")
        configure_logging(settings)
        count, keys = demo_module.prepare(settings)
        status = asyncio.run(demo_module.run(settings, port=port, dwell=dwell, keys=keys, count=count,
                                             echo=click.echo))
    except KeyboardInterrupt:  # Ctrl-C before the server was up (migrating, importing)
        click.echo("displayd demo stopped.")
        status = 0
    except DisplaydError as exc:
        raise click.ClickException(exc.detail) from None
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
