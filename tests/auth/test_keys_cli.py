from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from displayd.auth.sessions import COOKIE
from displayd.config import Settings
from displayd.db.session import create_engine
from displayd.runtime import runtime_of
from tests.cli import run_displayd
from tests.conftest import Keys
from tests.factories import sign_in


async def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # From another working directory: the command must not depend on the checkout.
    result = run_displayd("keys", "create", "--role", "operator", "--name", "Thanh tra Sở",
                          database_url=settings.database_url, cwd=tmp_path)
    key = result.stdout.rstrip("\n").splitlines()[-1]
    assert key.startswith("dk_") and " " not in key and len(key) > 40
    engine = create_engine(settings)
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT name, role, key_hash, prefix FROM api_key"))).all()
    await engine.dispose()
    assert [(r.name, r.role) for r in rows] == [("Thanh tra Sở", "operator")]
    assert rows[0].key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(rows)  # only a short prefix, never the key
    ok = await client.get("/api/v1/slogans", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    denied = await client.post("/api/v1/slogans", json={"text": "x"}, headers={"Authorization": f"Bearer {key}"})
    assert denied.status_code == 403


def test_keys_create_refuses_an_unknown_role(settings: Settings) -> None:
    result = run_displayd("keys", "create", "--role", "root", "--name", "x",
                          database_url=settings.database_url, check=False)
    assert result.returncode != 0
    assert "root" in result.stderr


# These tests run a command (another process) beside an app serving the same database, so the
# keys are made before the app starts: on SQLite, opening a second engine in the app's process
# would drop the app's file locks (db/session.private_sqlite_file closes a descriptor of the file),
# and the command would then take itself for the last user of the file and remove its WAL.

async def test_keys_list_shows_every_key_but_never_a_secret(settings: Settings, keys: Keys, app: FastAPI,
                                                            client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/slogans", headers=keys.auth("operator"))).status_code == 200
    await runtime_of(app).key_cache.flush()  # what a running server writes within a minute
    result = run_displayd("keys", "list", database_url=settings.database_url)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ROLE", "CREATED", "LAST", "USED", "REVOKED"]
    assert len(lines) == 7
    thanh_tra = next(line for line in lines if "Thanh tra" in line)
    assert "operator" in thanh_tra and "2024-05-07T00:00:00Z" in thanh_tra  # last used, by the fake clock
    every = [keys.admin, keys.editor, keys.approver, keys.operator, keys.editor2, keys.approver2]
    for secret in [*every, *(hashlib.sha256(k.encode()).hexdigest() for k in every)]:
        assert secret not in result.stdout and secret[:12] not in result.stdout
    as_json = [json.loads(line) for line in
               run_displayd("keys", "list", "--json", database_url=settings.database_url).stdout.splitlines()]
    assert {k["name"] for k in as_json} >= {"Quản trị", "Thanh tra"}
    assert set(as_json[0]) == {"id", "name", "role", "created_at", "last_used_at", "revoked_at"}


async def test_keys_revoke_stops_the_key_on_a_running_server(settings: Settings, keys: Keys,
                                                             client: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {keys.operator}"}
    assert (await client.get("/api/v1/slogans", headers=auth)).status_code == 200  # now cached by the server
    cookie = await sign_in(client, keys.operator)
    listing = [json.loads(line) for line in
               run_displayd("keys", "list", "--json", database_url=settings.database_url).stdout.splitlines()]
    [operator] = [k for k in listing if k["name"] == "Thanh tra"]

    result = run_displayd("keys", "revoke", str(operator["id"]), database_url=settings.database_url)
    assert f"revoked key {operator['id']}" in result.stdout
    # Another process (this command) revoked it: the server notices within change_poll_seconds.
    start = time.monotonic()
    while (await client.get("/api/v1/slogans", headers=auth)).status_code != 401:
        assert time.monotonic() - start < settings.change_poll_seconds * 10 + 1, "the revoked key still works"
        await asyncio.sleep(0.05)
    session = await client.get("/api/v1/slogans", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert session.status_code == 401
    after = [json.loads(line) for line in
             run_displayd("keys", "list", "--json", database_url=settings.database_url).stdout.splitlines()]
    assert next(k for k in after if k["id"] == operator["id"])["revoked_at"] is not None
    events = (await client.get("/api/v1/audit", params={"entity_type": "api_key", "entity_id": str(operator["id"])},
                               headers=keys.auth("admin"))).json()["items"]
    assert events[0]["action"] == "key.revoke" and events[0]["actor"].startswith("cli:")

    again = run_displayd("keys", "revoke", str(operator["id"]), database_url=settings.database_url, check=False)
    assert again.returncode == 2 and "already revoked" in again.stderr


def test_keys_revoke_of_an_unknown_id_exits_2(settings: Settings) -> None:
    for unknown in ("999999", "0", str(2**40)):
        result = run_displayd("keys", "revoke", unknown, database_url=settings.database_url, check=False)
        assert result.returncode == 2, result.stderr
        assert "does not exist" in result.stderr and result.stdout == ""
    not_a_number = run_displayd("keys", "revoke", "abc", database_url=settings.database_url, check=False)
    assert not_a_number.returncode == 2
