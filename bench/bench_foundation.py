"""Foundation benchmarks (issue 2): prints figures, never fails on time.

Usage: python bench/bench_foundation.py [--runs 15] [--no-100k] [--keep DIR]

1. a 10,000-bead state with ~20,000 deps, generated in one transaction (bench/gen_state.py);
2. whole-process median wall time of `git convoy ready` (bar < 300 ms) and of one
   `git convoy bead update` (bar < 250 ms), with hyperfine when installed;
3. bytes of new git objects written by one `bead update` at 10,000 and 100,000 beads
   (bar: grows far slower than the bead count);
4. wall time of `git convoy bead create --batch FILE` with 1,000 beads in one transaction,
   on an empty state and on the 10k state (bar < 3 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_state import generate, make_repo  # noqa: E402

ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}


def entry_points() -> list[tuple[str, list[str]]]:
    """`git convoy` as users type it, and the installed script itself when it differs.

    A pyenv shim in front of the script adds ~50 ms of bash; a venv or pipx install has none.
    """
    found = [("git convoy", ["git", "convoy"])]
    direct = Path(sysconfig.get_path("scripts")) / "git-convoy"
    if direct.exists():
        found.append((str(direct), [str(direct)]))
    return found


def median_ms(cmd: list[str], cwd: Path, runs: int) -> float:
    """Median wall time of a whole process; hyperfine when installed, else plain timing.

    The mean CPU time (user + system) is printed too: on a busy machine it shows what the
    command itself costs when the wall time is inflated by other processes.
    """
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                ["hyperfine", "-N", "-w", "2", "-r", str(runs), "--export-json", out.name,
                 " ".join(cmd)], cwd=cwd, env=ENV, check=True, capture_output=True,
            )
            data = json.loads(Path(out.name).read_text())
        result = data["results"][0]
        print(f"    [{' '.join(cmd[-4:])}: cpu {1000 * (result['user'] + result['system']):.0f}"
              f" ms mean, wall min {1000 * result['min']:.0f} ms]")
        return result["median"] * 1000
    times = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:]) * 1000


def loose_objects(repo: Path) -> set[Path]:
    root = repo / ".git" / "objects"
    return {p for d in root.glob("[0-9a-f][0-9a-f]") for p in d.iterdir()}


def update_bytes(repo: Path, bead: str) -> tuple[int, int, int]:
    """(objects, compressed bytes on disk, raw bytes) of what one `bead update` writes."""
    before = loose_objects(repo)
    run(["git", "convoy", "bead", "update", bead, "--assignee", "bytes-probe"], repo)
    new = loose_objects(repo) - before
    raw = sum(len(zlib.decompress(p.read_bytes())) for p in new)
    return len(new), sum(p.stat().st_size for p in new), raw


def run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, env=ENV, check=True, capture_output=True,
                          text=True).stdout


def first_ready(repo: Path) -> str:
    return run(["git", "convoy", "ready", "--limit", "1"], repo).split()[0]


def batch_file(path: Path, count: int, prefix: str) -> Path:
    """1,000 beads: 20 epics with 49 tasks each, every task blocked by its predecessor."""
    lines = []
    per_epic = 50
    for n in range(count):
        epic = f"{prefix}-e{n // per_epic}"
        if n % per_epic == 0:
            lines.append(f"- {{id: {epic}, title: 'Epic {n // per_epic}', type: epic}}")
            continue
        deps = f", deps: ['{prefix}-t{n - 1}']" if n % per_epic > 1 else ""
        lines.append(f"- {{id: {prefix}-t{n}, title: 'Task {n}', parent: {epic}, "
                     f"priority: {n % 5}, labels: [bulk]{deps}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def time_batch(repo: Path, file: Path) -> float:
    start = time.perf_counter()
    run(["git", "convoy", "bead", "create", "--batch", str(file)], repo)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-100k", dest="big", action="store_false")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="convoy-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"gitconvoy foundation benchmarks in {work} ({os.cpu_count()} cpus)")
        repo10 = work / "state-10k"
        beads, deps, secs = generate(repo10, 10_000)
        print(f"generate: {beads} beads, {deps} deps (incl. parent links), "
              f"one transaction {secs:.2f} s")
        run(["git", "convoy", "ready"], repo10)  # builds the read cache once
        ready_count = len(run(["git", "convoy", "ready"], repo10).splitlines())
        bead = first_ready(repo10)
        for label, cmd in entry_points():
            ms = median_ms([*cmd, "ready"], repo10, args.runs)
            print(f"ready      @10k ({ready_count} ready) via {label}: median {ms:.0f} ms"
                  "  (bar < 300 ms)")
            ms = median_ms([*cmd, "bead", "update", bead, "--assignee", "bench"], repo10,
                           args.runs)
            print(f"bead update @10k via {label}: median {ms:.0f} ms  (bar < 250 ms)")
        ms = median_ms(["git", "convoy", "ready"], repo10, args.runs)
        print(f"ready      @10k right after those updates (cache patched): median {ms:.0f} ms")
        n, disk, raw = update_bytes(repo10, bead)
        print(f"bytes of one bead update @10k: {n} objects, {disk} B on disk "
              f"(zlib), {raw} B raw")
        if args.big:
            repo100 = work / "state-100k"
            beads, deps, secs = generate(repo100, 100_000)
            print(f"generate: {beads} beads, {deps} deps, one transaction {secs:.2f} s")
            big_bead = first_ready(repo100)
            n, disk, raw = update_bytes(repo100, big_bead)
            print(f"bytes of one bead update @100k: {n} objects, {disk} B on disk "
                  f"(zlib), {raw} B raw")
            ms = median_ms(["git", "convoy", "bead", "update", big_bead, "--assignee", "b"],
                           repo100, max(5, args.runs // 3))
            print(f"bead update @100k via git convoy: median {ms:.0f} ms")
            ms = median_ms(["git", "convoy", "ready"], repo100, max(5, args.runs // 3))
            print(f"ready      @100k via git convoy: median {ms:.0f} ms")
        empty = make_repo(work / "empty")
        run(["git", "convoy", "init", "--prefix", "bk"], empty)
        secs = time_batch(empty, batch_file(work / "batch-empty.yaml", 1000, "bk"))
        print(f"bead create --batch: 1000 beads on an empty state: {secs:.2f} s (bar < 3 s)")
        secs = time_batch(repo10, batch_file(work / "batch-10k.yaml", 1000, "bk"))
        print(f"bead create --batch: 1000 beads on the 10k state: {secs:.2f} s (bar < 3 s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
