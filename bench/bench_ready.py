"""Time `git convoy ready` (or any read) warm and cold, interleaved, whole process.

Usage: python bench/bench_ready.py DIR [--runs 21] [--entry NAME=FOLDER ...] [-- ARGS]

DIR is a state made by bench/gen_state.py. Each entry is a folder holding a `git-convoy`
to put first on PATH (default: the installed one), so an old checkout can be compared with
this one. Three cache conditions per entry, all runs interleaved round-robin so a change in
machine load hits every variant alike:

  warm      every cache file present (the answer files, if this gitconvoy writes them)
  snapshot  the answer files removed before each run: the snapshot cache only (the full
            path of a warm read on a gitconvoy without answer files)
  cold      .git/convoy/cache removed before each run: a full parse of the state

Prints the median and minimum wall time and CPU time (user + system of the child).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}")
    return wall, usage.ru_utime + usage.ru_stime


def prepare(condition: str, cache: Path) -> None:
    if condition == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    elif condition == "snapshot":
        for answer in cache.glob("*.answer"):
            answer.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--entry", action="append", default=[],
                        help="NAME=FOLDER holding a git-convoy to compare")
    parser.add_argument("--conditions", default="warm,snapshot,cold")
    parser.add_argument("args", nargs="*", default=["ready"])
    opts = parser.parse_args(argv)
    entries = [e.split("=", 1) for e in opts.entry] or [["installed", ""]]
    conditions = opts.conditions.split(",")
    cache = opts.dir / ".git" / "convoy" / "cache"
    variants = []
    for name, folder in entries:
        env = dict(os.environ)
        if folder:
            env["PATH"] = os.pathsep.join([folder, env.get("PATH", "")])
        for condition in conditions:
            variants.append((f"{name} {condition}", condition, env))
    cmd = ["git", "convoy", *opts.args]
    envs = [env for label, _, env in variants if label.endswith(f" {conditions[0]}")]
    for env in envs:  # warm every cache once, untimed
        run_once(cmd, opts.dir, env)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in variants}
    for _ in range(opts.runs):
        for label, condition, env in variants:
            prepare(condition, cache)
            times[label].append(run_once(cmd, opts.dir, env))
            if condition != "warm":  # leave every entry's caches warm for the next variant
                for warm_env in envs:
                    run_once(cmd, opts.dir, warm_env)
    print(f"git convoy {' '.join(opts.args)} in {opts.dir}, {opts.runs} interleaved runs "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'variant':<24} {'wall median':>12} {'wall min':>9} {'cpu median':>11} "
          f"{'cpu min':>8}")
    for label, got in times.items():
        wall = [w * 1000 for w, _ in got]
        cpu = [c * 1000 for _, c in got]
        print(f"{label:<24} {statistics.median(wall):>9.0f} ms {min(wall):>6.0f} ms "
              f"{statistics.median(cpu):>8.0f} ms {min(cpu):>5.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
