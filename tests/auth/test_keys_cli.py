from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from sqlalchemy import text

from displayd.config import Settings
from displayd.db.session import create_engine
from tests.cli import run_displayd


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
