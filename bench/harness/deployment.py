"""One displayd under test: its settings, its database, its command line and its `serve` process.

    with scratch_database(run.workdir, "poll", server=args.database_url) as url:
        displayd = Displayd(run, url, log_level="WARNING", overrides={"push_timeout_seconds": "2"})
        admin_key = displayd.prepare()                 # db upgrade, an admin key, the section IV slogans
        base = displayd.serve(cpus={0})                # `displayd serve` on a free port, /readyz answered
        ...
        displayd.stop()

Several on one database (replicas of a site) each need a `name` of their own, which names their
log and their process; `kill()` ends one with `kill -9`, and `wait_until(t, a, b)` watches them all.

The process gets only the settings given here (the caller's DISPLAYD_* variables and the
repository's config file are left out), boards on loopback allowed, and this checkout's code.
`settings()` is the same configuration for work done in this process (creating boards fast,
reading the rotation log), which `isolate_environment()` keeps from reading anything else.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.harness.processes import LOOPBACK, LOOPBACK_NETWORKS, BenchError, Child, free_port, python_env, wait_ready
from bench.harness.running import Run
from displayd.config import Settings

SLOGANS = Path(__file__).resolve().parents[2] / "slogans" / "huong-dan-101-muc-IV.yaml"  # the section IV slogans
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789abcdef"
# `displayd` as the console script runs it, but importing this checkout's package (python_env).
CLI = "import sys; from displayd.cli import main; sys.argv[0] = 'displayd'; sys.exit(main())"


def isolate_environment() -> None:
    """Settings built in this process read no DISPLAYD_* variable of the caller's shell and no config file."""
    for key in [k for k in os.environ if k.startswith("DISPLAYD_")]:
        del os.environ[key]
    os.environ["DISPLAYD_CONFIG"] = os.devnull


class Displayd:
    """displayd on `database_url`: the command line, and at most one `serve` process at a time."""

    def __init__(self, run: Run, database_url: str, *, name: str = "displayd", log_level: str = "WARNING",
                 overrides: Mapping[str, str] | None = None) -> None:
        """`name`: the process' and its log's (`<name>.log`); `overrides`: more settings of the served process
        and the CLI, by field name (`{"push_timeout_seconds": "2"}`); `settings()` carries only the database,
        key and networks."""
        self.run = run
        self.name = name
        self.database_url = database_url
        self.log_path = run.workdir / f"{name}.log"
        self.child: Child | None = None
        inherited = {k: v for k, v in python_env().items() if not k.startswith("DISPLAYD_")}
        self.env = inherited | {
            "DISPLAYD_DATABASE_URL": database_url,
            "DISPLAYD_SECRET_KEY": SECRET_KEY,
            "DISPLAYD_ALLOWED_BOARD_NETWORKS": json.dumps(LOOPBACK_NETWORKS),
            "DISPLAYD_CONFIG": os.devnull,  # not the repository's config file
            "DISPLAYD_LOG_LEVEL": log_level,  # at INFO, a line per push: 1,000 lines a slot
        } | {f"DISPLAYD_{name.upper()}": value for name, value in (overrides or {}).items()}

    @property
    def kind(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    def settings(self) -> Settings:
        """The served process' settings, for work done in this process."""
        return Settings(database_url=self.database_url, secret_key=SECRET_KEY, allowed_board_networks=LOOPBACK_NETWORKS)

    def cli(self, *args: str) -> str:
        """Run one `displayd` command to completion; its stdout, or BenchError with its output."""
        done = subprocess.run([sys.executable, "-c", CLI, *args], env=self.env, cwd=self.run.workdir,
                              capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise BenchError(f"displayd {' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
        return done.stdout

    def prepare(self, slogans: Path = SLOGANS) -> str:
        """Migrate, make an admin key and import `slogans` (printing the import's line); the admin key."""
        self.cli("db", "upgrade")
        admin_key = self.cli("keys", "create", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        print(self.cli("slogans", "import", str(slogans)).strip(), flush=True)
        return admin_key

    def serve(self, *, name: str | None = None, cpus: set[int] | None = None, timeout: float = 120.0) -> str:
        """Start `displayd serve` on a free loopback port and wait for /readyz; its base URL."""
        if self.child is not None:
            raise BenchError("displayd is already serving")
        port = free_port()
        self.child = self.run.procs.start(name or self.name, [sys.executable, "-c", CLI, "serve", "--host", LOOPBACK,
                                                 "--port", str(port)],
                                          env=self.env, cwd=self.run.workdir, log_path=self.log_path, cpus=cpus)
        base = f"http://{LOOPBACK}:{port}"
        wait_ready(self.child, f"{base}/readyz", timeout=timeout)
        return base

    @property
    def serving(self) -> Child:
        if self.child is None:
            raise BenchError("displayd is not serving")
        return self.child

    def stop(self) -> None:
        if self.child is not None:
            self.run.procs.finish(self.child)
            self.child = None

    def kill(self) -> None:
        """`kill -9` the served process: no shutdown, no goodbye to the database (a replica that dies)."""
        if self.child is not None:
            self.run.procs.kill(self.child)
            self.child = None

    def wait_until(self, t: datetime) -> None:
        """Sleep until wall-clock time `t`; BenchError as soon as the served process exits."""
        wait_until(t, self)

    def logged_problems(self, levels: Sequence[str] = ("WARNING", "ERROR", "CRITICAL")) -> list[str]:
        """Entries of the log at `levels`, each with its traceback lines."""
        if not self.log_path.exists():
            return []
        entries: list[str] = []
        keep = False
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line[:4].isdigit() and line[4:5] == "-":  # "2026-11-27 18:31:26,432 LEVEL name: ..."
                keep = any(f" {level} " in line for level in levels)
            elif not keep and ("Traceback" in line or "Error" in line):
                keep = True  # uvicorn and the interpreter print some without our format
            if keep:
                entries.append(line)
        return entries

    def rotation_log(self, starts: Sequence[datetime]) -> list[tuple[str, datetime, datetime | None]]:
        """(push_status, starts_at, delivered_at) of every rotation row of the slots starting at `starts`."""
        from sqlalchemy import select

        from displayd.db.models import Rotation
        from displayd.db.session import create_engine

        async def read() -> list[tuple[str, datetime, datetime | None]]:
            engine = create_engine(self.settings())
            try:
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(Rotation.push_status, Rotation.starts_at, Rotation.delivered_at)
                        .where(Rotation.starts_at.in_(starts)))
                    return [(status, starts_at, delivered_at) for status, starts_at, delivered_at in rows]
            finally:
                await engine.dispose()

        return asyncio.run(read())


def wait_until(t: datetime, *serving: Displayd) -> None:
    """Sleep until wall-clock time `t`; BenchError as soon as one of the `serving` processes exits."""
    while (left := (t - datetime.now(UTC)).total_seconds()) > 0:
        for displayd in serving:
            displayd.serving.check_alive()
        time.sleep(min(left, 1.0))
