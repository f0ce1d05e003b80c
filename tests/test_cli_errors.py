"""The command line explains a database it cannot use in one line, never with a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import run_displayd
from tests.conftest import fresh_database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has migrated."""
    yield from fresh_database_url(str(request.param), tmp_path)


def test_an_unmigrated_database_is_named_with_what_to_do(empty_url: str, tmp_path: Path) -> None:
    boards = tmp_path / "bang.csv"
    boards.write_text("id,name,delivery\nbang-1,Một,poll\n", encoding="utf-8")
    secret = {"DISPLAYD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789"}
    for command in (("keys", "create", "--role", "admin", "--name", "Quản trị"), ("boards", "import", str(boards)),
                    ("slogans", "import", str(Path(__file__).parent.parent / "slogans" / "huong-dan-101-muc-IV.yaml"))):
        result = run_displayd(*command, database_url=empty_url, check=False, env=secret)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert "not migrated: run `displayd db upgrade` first" in result.stderr, result.stderr
