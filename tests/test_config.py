"""Settings: sources, limits, and that a refused or logged setting never shows its value."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from displayd.config import InvalidSettings, Settings, redact_database_url
from tests.cli import run_displayd
from tests.conftest import fresh_database_url
from tests.servers import free_port, start_server

# Strings that must appear in no message, whatever goes wrong.
WEAK_SECRET = "Weak-Secret-77"
PLACEHOLDER_SECRET = "changeme-Placeholder-Secret-0123456789"
PASSWORD = "S3cret-Pa55-Xq9"


def test_environment_over_file_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "displayd.toml"
    config.write_text('port = 9001\nlog_format = "json"\nallowed_board_networks = ["10.1.0.0/16"]\n')
    monkeypatch.setenv("DISPLAYD_CONFIG", str(config))
    monkeypatch.setenv("DISPLAYD_PORT", "9002")
    monkeypatch.setenv("DISPLAYD_ALLOWED_BOARD_NETWORKS", '["127.0.0.0/8"]')
    settings = Settings.load()
    assert settings.port == 9002
    assert settings.log_format == "json"
    assert settings.allowed_board_networks == ["127.0.0.0/8"]
    assert settings.push_timeout_seconds == 5.0


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidSettings, match=r"DISPLAYD_ALLOWED_BOARD_NETWORKS .*entry 2 is not a network"):
        Settings(allowed_board_networks=["10.0.0.0/8", "not-a-network"])
    with pytest.raises(InvalidSettings, match=r"DISPLAYD_SECRET_KEY .*placeholder"):
        Settings(secret_key="changeme-changeme-changeme-changeme")
    with pytest.raises(InvalidSettings, match="unknown_setting: no such setting"):
        Settings(unknown_setting=1)  # type: ignore[call-arg]
    with pytest.raises(InvalidSettings, match=r"DISPLAYD_DATABASE_URL .*unknown database driver"):
        Settings(database_url="sqlite:///var/x.db")  # the synchronous driver: displayd needs aiosqlite


def test_http_limits_have_defaults_and_bounds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert (settings.max_header_bytes, settings.header_timeout_seconds, settings.keep_alive_seconds,
            settings.max_connections) == (16 * 1024, 10.0, 15, 4096)
    monkeypatch.setenv("DISPLAYD_HEADER_TIMEOUT_SECONDS", "1.5")
    assert Settings.load().header_timeout_seconds == 1.5
    for name, value in [("max_header_bytes", 100), ("max_header_bytes", 2 * 1024 * 1024),
                        ("header_timeout_seconds", 0), ("keep_alive_seconds", 0), ("keep_alive_seconds", 301),
                        ("max_connections", 1)]:
        with pytest.raises(InvalidSettings, match=f"DISPLAYD_{name.upper()} "):
            Settings.load(**{name: value})


@pytest.mark.parametrize(("values", "setting", "secret"), [
    ({"secret_key": WEAK_SECRET}, "DISPLAYD_SECRET_KEY", WEAK_SECRET),
    ({"secret_key": PLACEHOLDER_SECRET}, "DISPLAYD_SECRET_KEY", PLACEHOLDER_SECRET),
    ({"database_url": f"postgresql+asyncpg://displayd:{PASSWORD}@db:not-a-port/displayd"},
     "DISPLAYD_DATABASE_URL", PASSWORD),
    ({"database_url": f"mysql+aiomysql://displayd:{PASSWORD}@db/displayd"}, "DISPLAYD_DATABASE_URL", PASSWORD),
    ({"database_url": f"{PASSWORD}"}, "DISPLAYD_DATABASE_URL", PASSWORD),
])
def test_a_refused_setting_is_named_never_shown(values: dict[str, str], setting: str, secret: str) -> None:
    with pytest.raises(InvalidSettings) as caught:
        Settings(**values)  # type: ignore[arg-type]
    assert setting in str(caught.value)
    # Not in the message, nor anywhere a traceback of it would print (pydantic's error is not chained).
    printed = "".join(traceback.format_exception(caught.value))
    assert secret not in printed and secret not in repr(caught.value)


def test_settings_show_no_secret_when_printed(tmp_path: Path) -> None:
    settings = Settings(secret_key="x" * 40, database_url=f"postgresql+asyncpg://displayd:{PASSWORD}@db/displayd")
    assert "x" * 40 not in repr(settings) and "x" * 40 not in str(settings)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert settings.database_url_redacted == "postgresql+asyncpg://displayd:***@db/displayd"
    assert PASSWORD not in redact_database_url(f"postgresql+asyncpg://db/displayd?user=u&password={PASSWORD}")
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "x" * 40


def _output(result: object) -> str:
    return f"{getattr(result, 'stdout', '')}\n{getattr(result, 'stderr', '')}"


@pytest.mark.parametrize("command", [("serve",), ("db", "upgrade")])
def test_the_cli_names_a_weak_secret_and_never_prints_it(command: tuple[str, ...], tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    for secret in (WEAK_SECRET, PLACEHOLDER_SECRET):
        result = run_displayd(*command, database_url=url, check=False, env={"DISPLAYD_SECRET_KEY": secret})
        assert result.returncode != 0
        assert "invalid settings" in result.stderr and "DISPLAYD_SECRET_KEY" in result.stderr
        assert secret not in _output(result)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("serve",), ("db", "upgrade")])
def test_a_database_that_cannot_be_used_never_shows_its_password(command: tuple[str, ...], tmp_path: Path) -> None:
    urls = [
        f"postgresql+asyncpg://displayd:{PASSWORD}@127.0.0.1:{free_port()}/displayd",  # nothing listens
        f"postgresql+asyncpg://displayd:{PASSWORD}@no-such-host.invalid/displayd",
        f"postgresql+asyncpg://displayd:{PASSWORD}%25x@127.0.0.1:5432/no_such_database",  # no such role
        f"postgresql+asyncpg://displayd:{PASSWORD}@db:port/displayd",  # malformed
    ]
    arguments = command
    if command == ("serve",):  # each start costs seconds: one unreachable server and one refusal are enough
        arguments, urls = (*command, "--port", str(free_port())), urls[::2]
    for url in urls:
        result = run_displayd(*arguments, database_url=url, check=False,
                              env={"DISPLAYD_SECRET_KEY": "s" * 40, "DISPLAYD_LOG_LEVEL": "DEBUG"})
        assert result.returncode != 0, _output(result)
        assert PASSWORD not in _output(result)
        assert "s" * 40 not in _output(result)
        if command == ("db", "upgrade"):  # one line naming the database, not a traceback
            assert "Traceback" not in result.stderr, result.stderr
            assert "displayd:***@" in result.stderr or "DISPLAYD_DATABASE_URL" in result.stderr, result.stderr


@pytest.fixture
def postgres_with_password(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database, reached with a URL that carries a password (the test server
    trusts loopback, so the password is sent nowhere but must still appear nowhere)."""
    for url in fresh_database_url("postgresql", tmp_path):
        parsed = make_url(url)
        if parsed.password is not None:
            pytest.skip("DISPLAYD_TEST_PG carries its own password")
        yield parsed.set(password=PASSWORD).render_as_string(hide_password=False)


def test_a_running_server_never_shows_the_database_password(postgres_with_password: str, tmp_path: Path) -> None:
    url = postgres_with_password
    upgrade = run_displayd("db", "upgrade", database_url=url, env={"DISPLAYD_LOG_LEVEL": "DEBUG"})
    assert PASSWORD not in _output(upgrade) and "postgres:***@" in upgrade.stdout
    server = start_server(url, tmp_path, DISPLAYD_LOG_LEVEL="DEBUG", DISPLAYD_LOG_FORMAT="json")
    try:
        pages = [httpx.get(server.url + path, timeout=10).text
                 for path in ("/metrics", "/readyz", "/healthz", "/openapi.json", "/docs", "/no-such-page")]
    finally:
        server.stop()
    log = server.log.read_text()
    assert "leads push shards" in log  # the leadership connection (the password in its DSN) was made
    for text in (*pages, log):
        assert PASSWORD not in text
        assert "test-secret-key-0123456789abcdef0123456789" not in text


def test_importing_displayd_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    # A broken value in the environment must not break imports, only Settings.load().
    code = "import displayd.app, displayd.cli, displayd.db.models; print('ok')"
    env = {"DISPLAYD_PORT": "not-a-port", "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
