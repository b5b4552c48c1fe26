"""The demo load (`haochaping demo`): wall and CPU time of the whole command on a fresh SQLite
file, or of each of its phases.

    .venv/bin/python bench/demo.py [--cases 200000] [--runs 1]          # the CLI, as a user runs it
    .venv/bin/python bench/demo.py --cases 2000 --runs 3 --baseline 2b22c29   # and a baseline
    .venv/bin/python bench/demo.py --phases [--profile FILE]            # in process, per phase

The first form runs `haochaping demo --quiet` in a subprocess on a new database file (the
command migrates it first, as on a fresh install) and reports its wall time, its CPU time
(user + system, every thread: aiosqlite runs SQLite in a thread of its own) and the load
average before and after, since the machine may be shared. `--phases` loads in this process
and times each phase the progress bars show (wall and process CPU), `--profile` writes a
cProfile of the load. `--url` loads into another database (PostgreSQL: a fresh one is
expected). `--baseline REF` also runs the command of that commit's `src/` (from `git archive`,
first on PYTHONPATH), alternating with the working tree's run by run, and prints the ratio of
the medians. Goal: the whole command under 2 minutes wall (aim: 90 s) at the default size.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_cli(args: argparse.Namespace) -> None:
    if not args.baseline:
        for run in range(args.runs):
            one_cli(args, run, None)
        return
    with tempfile.TemporaryDirectory(prefix="hcp-demo-base-") as base:
        archive = subprocess.run(
            ["git", "archive", args.baseline, "src"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", base], input=archive.stdout, check=True)
        times: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
        for run in range(args.runs):
            times["baseline"].append(one_cli(args, run, f"{base}/src"))
            times["current"].append(one_cli(args, run, None))
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in times.items()
    }
    print(
        f"median wall: baseline {med['baseline'][0]:.1f} s, current {med['current'][0]:.1f} s "
        f"(x{med['current'][0] / med['baseline'][0]:.2f}); median CPU: baseline "
        f"{med['baseline'][1]:.1f} s, current {med['current'][1]:.1f} s "
        f"(x{med['current'][1] / med['baseline'][1]:.2f})"
    )


def one_cli(args: argparse.Namespace, run: int, src: str | None) -> tuple[float, float]:
    """One `haochaping demo --quiet` on a fresh database: (wall, CPU) seconds. `src`: the
    package directory to run instead of the installed one (a baseline)."""
    label = "baseline" if src else "current"
    with tempfile.TemporaryDirectory(prefix="hcp-demo-bench-") as tmp:
        url = args.url or f"sqlite+aiosqlite:///{tmp}/demo.db"
        env = {**os.environ, "HAOCHAPING_DATABASE_URL": url}
        if src:
            env["PYTHONPATH"] = src
        before_load = loadavg()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from haochaping.cli import app; app()",
                "demo",
                "--quiet",
                "--cases",
                str(args.cases),
            ],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(done.returncode)
        cpu_user = after.ru_utime - usage.ru_utime
        cpu_sys = after.ru_stime - usage.ru_stime
        print(
            f"{label} run {run + 1}: {args.cases:,} cases  wall {wall:6.1f} s  "
            f"cpu {cpu_user + cpu_sys:6.1f} s (user {cpu_user:.1f}, sys {cpu_sys:.1f})  "
            f"load average {before_load} -> {loadavg()}"
        )
        print("  " + done.stdout.splitlines()[0])
        return wall, cpu_user + cpu_sys


def run_phases(args: argparse.Namespace) -> None:
    from haochaping.config import Settings
    from haochaping.db import migrate
    from haochaping.demo import loader

    tmp = tempfile.mkdtemp(prefix="hcp-demo-bench-")
    url = args.url or f"sqlite+aiosqlite:///{tmp}/demo.db"
    settings = Settings(database_url=url, upload_dir=tmp, sms_log_path=f"{tmp}/sms.log")
    marks: list[tuple[str, float, float]] = []  # (phase, wall, cpu) at its last report
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(phase: str, done: int, total: int) -> None:
        now = (phase, time.perf_counter() - t0, time.process_time() - c0)
        if marks and marks[-1][0] == phase:
            marks[-1] = now
        else:
            marks.append(now)

    print(f"load average {loadavg()}")
    migrate.upgrade(settings)
    progress("数据库迁移", 1, 1)
    # CPU time, not wall: on a shared machine waits would drown the work.
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    if profiler:
        profiler.enable()
    asyncio.run(loader.load(settings, cases=args.cases, progress=progress))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    progress("结束", 1, 1)
    last_wall = last_cpu = 0.0
    for phase, wall, cpu in marks:
        # A phase's time runs from the previous phase's last report to its own last one
        # (the work between two phases with no bar of their own is counted in the later one).
        print(f"  {phase:<10} wall {wall - last_wall:6.1f} s  cpu {cpu - last_cpu:6.1f} s")
        last_wall, last_cpu = wall, cpu
    print(f"  total      wall {last_wall:6.1f} s  cpu {last_cpu:6.1f} s; load {loadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--url", help="database URL (default: a new SQLite file)")
    parser.add_argument("--phases", action="store_true", help="time each phase in process")
    parser.add_argument(
        "--baseline", help="with the CLI: also run this git ref's src/, alternating"
    )
    parser.add_argument("--profile", help="with --phases: write a cProfile of the load here")
    args = parser.parse_args()
    if args.phases:
        run_phases(args)
    else:
        run_cli(args)


if __name__ == "__main__":
    main()
