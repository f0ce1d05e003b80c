from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from displayd.config import Settings


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
    with pytest.raises(ValidationError):
        Settings(allowed_board_networks=["not-a-network"])
    with pytest.raises(ValidationError):
        Settings(secret_key="changeme-changeme-changeme-changeme")
    with pytest.raises(ValidationError):
        Settings(unknown_setting=1)  # type: ignore[call-arg]


def test_importing_displayd_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    # A broken value in the environment must not break imports, only Settings.load().
    code = "import displayd.app, displayd.cli, displayd.db.models; print('ok')"
    env = {"DISPLAYD_PORT": "not-a-port", "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
