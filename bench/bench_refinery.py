"""Refinery figures (issue 5).

1. Landing one MR on a repository of 20,000 files: `refinery run` (merge in memory, CAS,
   state writes; no check command) against what a worktree-based merge queue does: `git
   worktree add` of the target in a fresh folder, then `git merge --no-ff` there and moving
   the target ref. Bar: the refinery at least 10× faster (check excluded on both sides).
2. Throughput: 200 queued, non-conflicting MRs landed by one `refinery run` with a no-op
   check command (`true`, which still gets its own temporary worktree per landing).
   Bar: < 60 s.

Usage: python bench/bench_refinery.py [--files 20000] [--runs 5] [--mrs 200]
Prints medians; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pygit2

from gitconvoy.land import refinery
from gitconvoy.state.model import Bead, Rig, now, touched
from gitconvoy.state.store import Store

ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Bench",
       "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "Bench",
       "GIT_COMMITTER_EMAIL": "b@example.com"}


def git(*args: str, cwd: Path, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                          env=ENV, check=True)
    return proc.stdout.decode().strip()


def big_repo(path: Path, files: int, branches: int) -> None:
    """main with `files` files in 200 folders, one more commit on main, and `branches` work
    branches cut from the first commit, each changing one existing file and adding one
    (so every landing is a real merge, never a fast-forward, and none conflict)."""
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.name", "Bench", cwd=path)
    git("config", "user.email", "b@example.com", cwd=path)
    out: list[bytes] = []
    stamp = "1700000000 +0000"

    def commit(ref: str, mark: int, msg: str, parent: int | None,
               changes: list[tuple[str, str]]) -> None:
        out.append(f"commit {ref}\nmark :{mark}\ncommitter Bench <b@example.com> {stamp}\n"
                   f"data {len(msg)}\n{msg}\n".encode())
        if parent:
            out.append(f"from :{parent}\n".encode())
        for name, text in changes:
            data = text.encode()
            out.append(f"M 100644 inline {name}\ndata {len(data)}\n".encode() + data + b"\n")
        out.append(b"\n")

    everything = [(f"d{n % 200:03d}/f{n:05d}.txt", f"line {n}\n" * 8) for n in range(files)]
    commit("refs/heads/main", 1, "base", None, everything)
    commit("refs/heads/main", 2, "main moves on", 1, [("main-only.txt", "main\n")])
    for b in range(branches):
        n = (b * 97 + 1) % files  # distinct for every branch: no two of them conflict
        changes = [(f"d{n % 200:03d}/f{n:05d}.txt", f"work {b}\n"),
                   (f"work/w{b:04d}.txt", f"new file {b}\n")]
        commit(f"refs/heads/convoy/w{b}", 100 + b, f"work {b}", 1, changes)
    git("fast-import", "--quiet", cwd=path, stdin=b"".join(out))
    git("symbolic-ref", "HEAD", "refs/heads/elsewhere", cwd=path)  # nothing checked out


def queue(store: Store, count: int, check: str | None) -> list[str]:
    """A rig, `count` beads hand-dispatched on convoy/w<n> (as dispatch would), all queued."""
    repo = store.repo
    base = str(repo.revparse_single("main~1").id)  # where big_repo cut the work branches

    def setup(tx):  # type: ignore[no-untyped-def]
        tx.put_config(touched(tx.config, rigs={"app": Rig("app", target="main",
                                                          capacity=100_000)}))
        for n in range(count):
            tx.put(Bead(id=f"b-{n:04d}", title=f"work {n}", status="in_progress", rig="app",
                        branch=f"convoy/w{n}", target="main", base_commit=base,
                        assignee="bench", created_at=now(), updated_at=now()))

    store.transact(setup, "bench setup")
    if check:
        repo.config["convoy.rig.app.check"] = check
    return [refinery.queue_mr(store, f"b-{n:04d}").mr.id for n in range(count)]


def landing_one(files: int, runs: int) -> tuple[float, float, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-refinery-"))
    try:
        repo_dir = root / "repo"
        big_repo(repo_dir, files, runs)
        subprocess.run(["git", "convoy", "init", "--prefix", "b"], cwd=repo_dir, env=ENV,
                       check=True, capture_output=True)
        store = Store(pygit2.Repository(str(repo_dir)))
        start_main = git("rev-parse", "main", cwd=repo_dir)
        queue(store, runs, None)
        ours, theirs, merge_only = [], [], []
        for n in range(runs):
            git("update-ref", "refs/heads/main", start_main, cwd=repo_dir)
            started = time.perf_counter()
            report = refinery.run(store, once=True)
            ours.append(time.perf_counter() - started)
            assert [s.outcome for s in report.steps] == ["landed"], report.steps
            started = time.perf_counter()
            refinery.landing.merge_in_memory(store, start_main,
                                             git("rev-parse", f"convoy/w{n}", cwd=repo_dir),
                                             "merge", "probe\n")
            merge_only.append(time.perf_counter() - started)
            git("update-ref", "refs/heads/main", start_main, cwd=repo_dir)
            wt = root / f"wt{n}"
            started = time.perf_counter()
            git("worktree", "add", "-q", "--detach", str(wt), "main", cwd=repo_dir)
            git("merge", "-q", "--no-ff", "--no-edit", f"convoy/w{n}", cwd=wt)
            git("update-ref", "refs/heads/main", git("rev-parse", "HEAD", cwd=wt),
                start_main, cwd=repo_dir)
            theirs.append(time.perf_counter() - started)
            shutil.rmtree(wt)
            git("worktree", "prune", cwd=repo_dir)
        return statistics.median(ours), statistics.median(theirs), statistics.median(merge_only)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def throughput(count: int) -> tuple[float, int]:
    root = Path(tempfile.mkdtemp(prefix="bench-refinery-queue-"))
    try:
        repo_dir = root / "repo"
        big_repo(repo_dir, 200, count)
        subprocess.run(["git", "convoy", "init", "--prefix", "b"], cwd=repo_dir, env=ENV,
                       check=True, capture_output=True)
        store = Store(pygit2.Repository(str(repo_dir)))
        queue(store, count, "true")
        started = time.perf_counter()
        report = refinery.run(store)
        seconds = time.perf_counter() - started
        landed = sum(1 for s in report.steps if s.outcome == "landed")
        return seconds, landed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mrs", type=int, default=200)
    args = parser.parse_args()
    ours, theirs, merge_only = landing_one(args.files, args.runs)
    print(f"landing one MR on {args.files} files (median of {args.runs}):")
    print(f"  refinery run (in memory, CAS, state writes): {ours * 1000:8.1f} ms")
    print(f"    of which the in-memory merge itself:       {merge_only * 1000:8.1f} ms")
    print(f"  git worktree add + git merge --no-ff:        {theirs * 1000:8.1f} ms")
    print(f"  ratio: {theirs / ours:.1f}x faster (bar: >= 10x)")
    seconds, landed = throughput(args.mrs)
    print(f"throughput: {landed} of {args.mrs} MRs landed with a no-op check in {seconds:.1f} s "
          f"({seconds / max(landed, 1) * 1000:.0f} ms each; bar: < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
