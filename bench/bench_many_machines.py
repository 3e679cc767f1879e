"""Many machines, one plan (issue 10): figures, never a pass/fail.

1. Close on clone 1 → the dependent's dispatch command has run on clone 2 after its
   `git pull` (hooks installed): the pull's wall time with the feeder against the same pull
   with the hooks silenced (CONVOY_IN_HOOK=1); the difference is the latency beyond the pull.
2. `refinery watch`: CPU used while idle (seconds per minute), and the time from starting
   `done` to the target holding the landing (no check configured).

    python bench/bench_many_machines.py [--runs 7] [--idle 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

QUIET = {"CONVOY_IN_HOOK": "1"}


def sh(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


def convoy(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    return sh("git", "convoy", *args, cwd=cwd, env=env)


def setup(root: Path) -> tuple[Path, Path, Path]:
    remote = root / "remote.git"
    sh("git", "init", "-q", "--bare", "-b", "main", str(remote), cwd=root)
    one = root / "one"
    sh("git", "init", "-q", "-b", "main", str(one), cwd=root)
    sh("git", "commit", "-q", "--allow-empty", "-m", "start", cwd=one)
    sh("git", "remote", "add", "origin", str(remote), cwd=one)
    sh("git", "push", "-q", "-u", "origin", "main", cwd=one)
    convoy("init", "--prefix", "b", cwd=one)
    convoy("rig", "add", "app", "--target", "main", "--capacity", "100", cwd=one)
    sh("git", "push", "-q", "origin", "convoy/state", cwd=one, env=QUIET)
    two = root / "two"
    sh("git", "clone", "-q", str(remote), str(two), cwd=root)
    log = root / "dispatched.log"
    script = root / "dispatch.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD" >> {log}\n')
    script.chmod(0o755)
    sh("git", "config", "convoy.rig.app.dispatch", str(script), cwd=two)
    convoy("hooks", "install", cwd=two)
    sh("git", "pull", "-q", cwd=two)
    return remote, one, two


def pull_latency(root: Path, runs: int) -> None:
    _, one, two = setup(root)
    log = root / "dispatched.log"
    fed, silent = [], []
    for n in range(runs * 2):
        blocker = convoy("bead", "create", f"blocker {n}", cwd=one)
        waiting = convoy("bead", "create", f"waits {n}", cwd=one)
        convoy("dep", "add", waiting, blocker, cwd=one)
        convoy("create", f"pair {n}", blocker, waiting, cwd=one)
        convoy("bead", "update", blocker, "--status", "in_progress", cwd=one)
        convoy("sync", "-q", cwd=one, env=QUIET)
        sh("git", "pull", "-q", cwd=two, env=QUIET)  # clone 2 knows the pair, nothing ready
        convoy("sync", "-q", cwd=two, env=QUIET)
        convoy("sync", "-q", cwd=one, env=QUIET)
        convoy("bead", "close", blocker, "--reason", "done", cwd=one)
        convoy("sync", "-q", cwd=one, env=QUIET)
        hooks_on = n % 2 == 0
        start = time.perf_counter()
        sh("git", "pull", "-q", cwd=two, env=None if hooks_on else QUIET)
        took = time.perf_counter() - start
        if hooks_on:
            if waiting not in log.read_text().split():
                raise SystemExit(f"{waiting} was not dispatched on clone 2 by its pull")
            fed.append(took)
        else:
            silent.append(took)
            convoy("feed", cwd=two, env=QUIET)  # catch up by hand, outside the timing
        convoy("sync", "-q", cwd=two, env=QUIET)
    med_fed, med_silent = statistics.median(fed), statistics.median(silent)
    print("close on clone 1 → dependent dispatched on clone 2 by `git pull`:")
    print(f"  pull with the feeder (dispatch ran): median {med_fed * 1000:7.1f} ms "
          f"({runs} runs)")
    print(f"  the same pull, hooks silenced:      median {med_silent * 1000:7.1f} ms")
    print(f"  latency beyond the pull:            {(med_fed - med_silent) * 1000:7.1f} ms "
          "(bar < 1 s)")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_figures(root: Path, runs: int, idle: float) -> None:
    _, one, _ = setup(root)
    watcher = subprocess.Popen(["git-convoy", "refinery", "watch", "--interval", "0.2"],
                               cwd=one, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)  # start-up and the first (empty) round
        before = cpu_seconds(watcher.pid)
        time.sleep(idle)
        per_minute = (cpu_seconds(watcher.pid) - before) * 60 / idle
        print("refinery watch (--interval 0.2):")
        print(f"  idle CPU: {per_minute:.2f} s per minute ({per_minute / 60 * 100:.2f} % of "
              "one core)")
        delays = []
        for n in range(runs):
            bead = convoy("bead", "create", f"lands {n}", cwd=one)
            convoy("sling", bead, cwd=one, env=QUIET)
            sh("git", "switch", "-q", f"convoy/{bead}", cwd=one, env=QUIET)
            (one / f"{bead}.txt").write_text("work\n")
            sh("git", "add", f"{bead}.txt", cwd=one, env=QUIET)
            sh("git", "commit", "-q", "-m", "work", cwd=one, env=QUIET)
            tip = sh("git", "rev-parse", "HEAD", cwd=one)
            sh("git", "switch", "-q", "main", cwd=one, env=QUIET)
            start = time.perf_counter()  # `done` included: the watcher may land before it exits
            convoy("done", bead, cwd=one, env=QUIET)
            while subprocess.run(["git", "merge-base", "--is-ancestor", tip, "main"],
                                 cwd=one).returncode != 0:
                if time.perf_counter() - start > 60:
                    raise SystemExit("the watcher did not land within 60 s")
                time.sleep(0.01)
            delays.append(time.perf_counter() - start)
        print(f"  done started → landed on main: median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {max(delays) * 1000:.0f} ms ({runs} runs; bar < 2 s plus the check)")
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds of idle watching to measure CPU over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("pull", "watch"):
            (Path(tmp) / name).mkdir()
        pull_latency(Path(tmp) / "pull", args.runs)
        watch_figures(Path(tmp) / "watch", args.runs, args.idle)


if __name__ == "__main__":
    main()
