"""Run the real `displayd` console script, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DISPLAYD = str(Path(sys.executable).parent / "displayd")
ROOT = Path(__file__).resolve().parent.parent


def run_displayd(*args: str, database_url: str, cwd: Path | None = None, check: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DISPLAYD_")}
    environment["DISPLAYD_DATABASE_URL"] = database_url
    environment.update(env or {})
    result = subprocess.run([DISPLAYD, *args], cwd=cwd or ROOT, env=environment, capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"displayd {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result
