"""The `displayd` command: serve | db upgrade/copy | keys create/list/revoke | slogans, boards, campaigns import | demo.

Each command builds the settings once from the environment and the config file and passes
them down. Output meant for scripts is on stdout (the new key alone on the last line);
progress of long commands and errors go to stderr. Exit status: 1 for an error the command
explains (a refused setting, a bad file, a database that cannot be reached), 2 for a wrong
invocation (click's usage errors; `keys revoke` of a key that does not exist or is already
revoked), 3 when `serve` could not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from displayd.auth.roles import Principal, Role, cli_principal
from displayd.config import InvalidSettings, Settings
from displayd.errors import DisplaydError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.load()
    except InvalidSettings as exc:  # names each setting and why, never its value
        raise click.ClickException(str(exc)) from None


def _actor(name: str | None) -> Principal:
    return cli_principal(name or f"cli:{getpass.getuser()}")


def _run_in_transaction(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    """Run `work(session)` in one transaction on a fresh engine; a domain error, or a database
    that cannot be reached or is not migrated, is one line on stderr and exit status 1."""
    from displayd.db.session import create_engine, create_sessionmaker

    async def main() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        with _database_errors(settings):
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
    from displayd.app import create_app
    from displayd.live.poll import PollPath
    from displayd.live.stream import close_streams
    from displayd.logs import configure_logging
    from displayd.serving import Server, raise_open_file_limit, uvicorn_config

    settings = _settings()
    configure_logging(settings)
    raise_open_file_limit(settings)
    app = create_app(settings)
    # The poll path in front of the FastAPI object itself: board polls skip even FastAPI's
    # outermost layers (error and telemetry middleware), about half the cost of a poll.
    config = uvicorn_config(PollPath(app, app), settings, host=host or settings.host, port=port or settings.port)
    server = Server(config, before_shutdown=lambda: close_streams(app))  # streams end first: they hold it open
    server.run()
    if not server.started:  # could not bind, or the start-up failed (the log says why)
        sys.exit(3)


@main.group()
def db() -> None:
    """Database schema (Alembic migrations shipped in the package)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database named by DISPLAYD_DATABASE_URL up to REVISION (default head)."""
    from displayd.db import migrate

    settings = _settings()
    with _database_errors(settings):
        migrate.upgrade(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (`base` empties it)."""
    from displayd.db import migrate

    settings = _settings()
    with _database_errors(settings):
        migrate.downgrade(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.database_url)}")


@db.command("copy")
@click.argument("source_url")
@click.argument("target_url")
@click.option("--force", is_flag=True, help="Replace the rows a non-empty target already holds.")
def db_copy(source_url: str, target_url: str, force: bool) -> None:
    """Copy every row from SOURCE_URL to TARGET_URL (SQLite to PostgreSQL or back).

    The target is migrated first and must be empty unless --force; the copy is one
    transaction on the target, and the row counts are compared at the end. Stop displayd on
    the source first.
    """
    from sqlalchemy.exc import DBAPIError

    from displayd.db.copy import copy_database
    from displayd.progress import Progress

    try:
        report = asyncio.run(copy_database(source_url, target_url, force=force,
                                           progress=lambda label, total: Progress(label, total=total)))
    except InvalidSettings as exc:  # a malformed URL: named, never shown
        raise click.ClickException(str(exc)) from None
    except DisplaydError as exc:
        raise click.ClickException(exc.detail) from None
    except DBAPIError as exc:  # the driver's reason; nothing was written to the target
        raise click.ClickException(f"copying {_redacted(source_url)} to {_redacted(target_url)}: {exc.orig}") from None
    except (OSError, TimeoutError) as exc:
        raise click.ClickException(f"copying {_redacted(source_url)} to {_redacted(target_url)}: {exc}") from None
    total = sum(report.counts.values())
    click.echo(f"copied {total:,} rows in {len(report.counts)} tables to {_redacted(target_url)}; "
               "counts match the source")
    source = Settings(database_url=source_url)
    if source.sqlite_path is not None and not source.secret_key:
        key_file = source.sqlite_path.with_name(source.sqlite_path.name + ".key")
        click.echo(f"board secrets are derived from the master key: start the target's processes with "
                   f'DISPLAYD_SECRET_KEY="$(cat {key_file})" so that boards keep their credentials')
    elif Settings(database_url=target_url).sqlite_path is not None:
        click.echo("board secrets are derived from the master key: start the target with the source's "
                   "DISPLAYD_SECRET_KEY so that boards keep their credentials")


def _redacted(url: str) -> str:
    from displayd.config import redact_database_url

    return redact_database_url(url)


@contextlib.contextmanager
def _database_errors(settings: Settings) -> Iterator[None]:
    """A database that cannot be reached or refuses us: one line naming it (password hidden)
    and the driver's reason, instead of a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:  # the driver's own message; SQLAlchemy's adds the statement and parameters
        reason = str(exc.orig)
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            reason += "; the database is not migrated: run `displayd db upgrade` first"
        raise click.ClickException(f"database {_redacted(settings.database_url)}: {reason}") from None
    except (OSError, TimeoutError) as exc:
        raise click.ClickException(f"cannot reach the database {_redacted(settings.database_url)}: {exc}") from None


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


@main.group()
def boards() -> None:
    """Boards."""


@boards.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--credentials", "credentials_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write new boards' tokens and secrets (default: beside FILE, a new name each run).")
@click.option("--as", "as_name", default=None, help="Name recorded in the audit log (default cli:<user>).")
def boards_import(file: Path, credentials_path: Path | None, as_name: str | None) -> None:
    """Create or update boards from FILE (CSV with a header row, or YAML), all or nothing.

    New boards' tokens and secrets go to a file only you can read, never to the terminal.
    """
    from displayd.boards import bulk
    from displayd.keyring import master_key
    from displayd.progress import Progress

    settings = _settings()
    try:
        rows = bulk.parse_file(file)
    except DisplaydError as exc:
        raise click.ClickException(f"{file}: {exc.detail}; nothing was imported") from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = credentials_path or file.with_name(f"{file.stem}-credentials-{stamp}.csv")
    written: list[Path] = []

    async def work(session: object) -> bulk.BulkResult:
        result = await bulk.apply(session, rows, actor=_actor(as_name), now=datetime.now(UTC),  # type: ignore[arg-type]
                                  networks=settings.board_networks(), master=master_key(settings),
                                  progress=Progress("imported", total=len(rows), unit="boards"))
        if result.created:  # written before the commit: credentials are never lost to a crash after it
            bulk.write_credentials(target, result.created)
            written.append(target)
        return result

    try:
        result = _run_in_transaction(settings, work)
    except (click.ClickException, OSError) as exc:
        for path in written:  # the transaction did not commit: those boards do not exist
            path.unlink(missing_ok=True)
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        raise click.ClickException(f"{file}: {message}; nothing was imported") from None
    click.echo(f"boards: {len(result.created)} created, {len(result.updated)} updated")
    if written:
        click.echo(f"new tokens and secrets (readable by you only): {target}")


@main.group()
def campaigns() -> None:
    """Campaigns."""


@campaigns.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_name", default=None, help="Name recorded in the audit log (default cli:<user>).")
def campaigns_import(file: Path, as_name: str | None) -> None:
    """Create the campaigns FILE's `campaign:` block implies (window, peak, anniversary).

    The file's slogans are imported first; a campaign whose name exists is left alone, so
    running it twice changes nothing.
    """
    from displayd.campaigns.document import PlanImport, import_plan

    async def work(session: object) -> PlanImport:
        return await import_plan(session, file, actor=_actor(as_name), now=datetime.now(UTC))  # type: ignore[arg-type]

    result = _run_in_transaction(_settings(), work)
    click.echo(f"slogans: {len(result.slogans.added)} imported, {len(result.slogans.unchanged)} already there")
    click.echo(f"campaigns: {len(result.created)} created, {len(result.unchanged)} already there"
               + (f" (ids {', '.join(map(str, result.created))})" if result.created else ""))


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
    except InvalidSettings as exc:
        raise click.ClickException(str(exc)) from None
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
