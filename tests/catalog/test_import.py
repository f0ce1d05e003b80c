from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from displayd.config import Settings
from tests.cli import ROOT, run_displayd
from tests.conftest import Keys, count_rows

DOCUMENT = ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"


async def test_import_approves_with_the_document_code_and_is_idempotent(
    settings: Settings, client: httpx.AsyncClient, keys: Keys, tmp_path: Path
) -> None:
    expected = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["slogans"]
    first = run_displayd("slogans", "import", str(DOCUMENT), database_url=settings.database_url, cwd=tmp_path)
    assert f"imported {len(expected)} slogans, 0 unchanged" in first.stdout
    second = run_displayd("slogans", "import", str(DOCUMENT), database_url=settings.database_url, cwd=tmp_path)
    assert "nothing to import" in second.stdout and str(len(expected)) in second.stdout
    assert await count_rows(settings, "slogan") == len(expected)

    items = (await client.get("/api/v1/slogans", headers=keys.auth("operator"))).json()["items"]
    assert [s["text"] for s in items] == [e["text"] for e in expected]
    assert [s["number"] for s in items] == [e["number"] for e in expected]
    assert {s["status"] for s in items} == {"approved"}
    assert {s["approval_reference"] for s in items} == {"101-HD/BTGTU"}
    assert {s["source"] for s in items} == {"101-HD/BTGTU mục IV"}
    audit = (await client.get("/api/v1/audit", params={"limit": 1000}, headers=keys.auth("admin"))).json()["items"]
    imports = [e for e in audit if e["action"] == "slogan.import"]
    assert len(imports) == len(expected)
    assert all(e["actor"].startswith("cli:") for e in imports)


async def test_a_bad_file_imports_nothing(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "document: {code: X-1}\nslogans:\n  - {number: 1, text: 'Tốt'}\n  - {number: 2, text: 'Xấu\u200b'}\n",
        encoding="utf-8",
    )
    result = run_displayd("slogans", "import", str(bad), database_url=settings.database_url, check=False)
    assert result.returncode != 0
    assert "slogan #2" in result.stderr and "zero-width" in result.stderr
    assert await count_rows(settings, "slogan") == 0
