"""Helpers shared by the security tests: the API's operations, row counts, a DNS guard.

The operations come from the application's own OpenAPI document, so an endpoint added
later is fuzzed, fed the bad-input corpus and put through the authorisation edges without
anyone remembering to list it (or a test fails and says which one is missing).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from displayd.config import Settings
from displayd.db.session import create_engine

# Every table a write could touch; a rejected request must leave each count as it was.
TABLES = ("slogan", "campaign", "board", "audit_event", "api_key", "rotation", "emergency_stop")
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def api_operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (METHOD, path template) under /api/ that the OpenAPI document advertises."""
    return sorted((method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  if path.startswith("/api/") for method in operations)


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                for table in TABLES}


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine of the test's own on the app's database, for counting rows."""
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


def _is_literal_or_local(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in ("localhost", ""):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Board creation resolves `endpoint_url` hosts; generated names must never reach a resolver.

    Names are still put through the IDNA codec first, as the real `getaddrinfo` does, so a
    host the codec refuses fails here exactly as it would in production. Yields the names
    that were asked for.
    """
    real = socket.getaddrinfo
    asked: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_literal_or_local(host):
            return real(host, *args, **kwargs)
        if isinstance(host, str):
            host.encode("idna")  # UnicodeError for an empty or over-long label, like the real call
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "name resolution is disabled in the security tests")

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield asked
