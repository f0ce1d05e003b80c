"""Bulk boards: `displayd boards import` of 1,000 boards, created then updated, against a 5 s budget.

    .venv/bin/python bench/boards_import.py                                  # 1,000 boards, SQLite
    .venv/bin/python bench/boards_import.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python bench/boards_import.py --quick                          # 200 boards

Prints, for the create run and the update run of the same file, the command's whole wall
time (process start, migrations check, parsing, one transaction, the credentials file) and
the import alone as the command's own summary line says, and ends with
`boards import: create x.x s, update x.x s for N boards (budget 5.0 s; ratio x.xx)`.

There is no bare baseline to divide by: the figure is the budget issue 14 sets (1,000 boards
in 5 s or less). The boards are push boards on loopback URLs, so each URL is checked as a
real import checks it. Exit status 0 when both runs are within budget, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.databases import scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.running import Run, parse_args, run_bench

BUDGET_SECONDS = 5.0
QUICK = {"boards": 200}


def write_file(path: Path, boards: int, *, renamed: bool) -> None:
    lines = ["id,name,location,groups,delivery,endpoint_url,max_chars,lines"]
    suffix = " (mới)" if renamed else ""
    lines += [f"bang-{n:05d},Bảng số {n}{suffix},Xã {n % 97},xa-{n % 10};huyen-{n % 3},push,"
              f"http://127.0.0.1:{9000 + n % 50}/show/{n},40,2" for n in range(boards)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def timed_import(displayd: Displayd, source: Path, credentials: Path) -> tuple[float, str]:
    started = time.monotonic()
    out = displayd.cli("boards", "import", str(source), "--credentials", str(credentials))
    return time.monotonic() - started, out.strip().splitlines()[0]


def measure(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    url = run.stack.enter_context(scratch_database(run.workdir, "bulk", server=args.database_url))
    displayd = Displayd(run, url)
    displayd.cli("db", "upgrade")
    source = run.workdir / "bang.csv"
    write_file(source, args.boards, renamed=False)
    created, created_line = timed_import(displayd, source, run.workdir / "created.csv")
    write_file(source, args.boards, renamed=True)
    updated, updated_line = timed_import(displayd, source, run.workdir / "updated.csv")
    print(f"{displayd.kind}: create {created:.2f} s ({created_line}); update {updated:.2f} s ({updated_line})")
    worst = max(created, updated)
    print(f"boards import: create {created:.1f} s, update {updated:.1f} s for {args.boards} boards "
          f"(budget {BUDGET_SECONDS:.1f} s; ratio {worst / BUDGET_SECONDS:.2f})")
    return 0 if worst <= BUDGET_SECONDS else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=1000, help="boards in the file (default 1000)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to make a scratch database on (default: a SQLite file)")
    args = parse_args(parser, argv, QUICK)
    return run_bench("boards_import", lambda run: measure(run, args))


if __name__ == "__main__":
    raise SystemExit(main())
