"""Bench: `git convoy sync` of two diverged 10,000-bead states with 100 changes on each side.

Usage: python bench/bench_sync.py [--beads 10000] [--changes 100] [--overlap 50] [--runs 3]

A bare remote and two clones share a generated state (bench/gen_state.py). Clone A makes
`changes` transactions and syncs (a plain push); clone B makes `changes` of its own, of which
`overlap` touch the same beads as A on other fields (so they need the field merge), and then
the timed `git convoy sync` in B fetches, merges and pushes — the whole process, as a user
runs it. The run is repeated from the same starting refs. Bar: < 2 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitconvoy.git import revs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_state import generate  # noqa: E402

from gitconvoy.git.sync import resolver  # noqa: E402
from gitconvoy.plan import edits  # noqa: E402
from gitconvoy.state.store import Store  # noqa: E402

REF = "refs/heads/convoy/state"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def change(path: Path, bead_ids: list[str], field: str, tag: str) -> None:
    """One transaction per change, as separate commands would make them."""
    store = Store.open(str(path))
    for n, bead_id in enumerate(bead_ids):
        if field == "label":
            fields = {"add_labels": [f"{tag}-{n}"]}
        elif field == "assignee":
            fields = {"assignee": f"{tag}-{n}"}
        else:
            fields = {"priority": str(n % 5)}
        store.transact(lambda tx, b=bead_id, f=fields: edits.update_bead(tx, b, **dict(f)),
                       f"bench: {tag} {bead_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beads", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--overlap", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Build in this folder and keep it.")
    args = parser.parse_args(argv)
    env_keep = {k: os.environ.get(k) for k in ("GIT_CONFIG_NOSYSTEM",)}
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = args.keep or Path(tmp)
        seed = root / "seed"
        beads, _, gen_s = generate(seed, args.beads)
        git("repack", "-adq", cwd=seed)
        git("clone", "-q", "--bare", str(seed), str(root / "remote.git"), cwd=root)
        a, b = root / "a", root / "b"
        for clone in (a, b):
            git("clone", "-q", str(root / "remote.git"), str(clone), cwd=root)
            git("config", "user.name", clone.name, cwd=clone)
            git("config", "user.email", f"{clone.name}@example.com", cwd=clone)
            subprocess.run(["git", "convoy", "init"], cwd=clone, check=True,
                           capture_output=True)
        ids = sorted(Store.open(str(a)).snapshot().beads)
        rng = random.Random(3)
        chosen = rng.sample(ids, 2 * args.changes - args.overlap)
        a_ids = chosen[: args.changes]
        b_ids = a_ids[: args.overlap] + chosen[args.changes:]

        started = time.perf_counter()
        change(a, a_ids, "label", "a")
        change(a, a_ids[: args.overlap], "assignee", "a")
        a_change_s = time.perf_counter() - started
        a_sync = subprocess.run(["git", "convoy", "sync"], cwd=a, capture_output=True,
                                text=True, check=True).stdout.strip()
        change(b, b_ids, "label", "b")
        change(b, b_ids[: args.overlap], "priority", "b")

        start_b = git("rev-parse", REF, cwd=b)
        start_remote = git("rev-parse", REF, cwd=root / "remote.git")
        times, out = [], ""
        for _ in range(args.runs):
            git("update-ref", REF, start_b, cwd=b)
            git("update-ref", REF, start_remote, cwd=root / "remote.git")
            t0 = time.perf_counter()
            proc = subprocess.run(["git", "convoy", "sync"], cwd=b, capture_output=True,
                                  text=True, check=True)
            times.append(time.perf_counter() - t0)
            out = proc.stdout.strip()

        store = Store.open(str(b))
        merged = store.snapshot(fresh=True).beads
        lost = [i for n, i in enumerate(a_ids) if f"a-{n}" not in merged[i].labels]
        lost += [i for n, i in enumerate(b_ids) if f"b-{n}" not in merged[i].labels]
        lost += [i for n, i in enumerate(a_ids[: args.overlap])
                 if merged[i].assignee != f"a-{n}" or merged[i].priority != n % 5]

        # The merge step alone: our tree walk vs pygit2's merge_trees on the same commits.
        remote_tip = git("rev-parse", REF, cwd=root / "remote.git")
        base = revs.merge_base(store, start_b, start_remote)
        t0 = time.perf_counter()
        notes: list[str] = []
        counter = [0]
        store.merge_state_trees(base, start_b, start_remote, resolver(notes, counter))
        walk_ms = (time.perf_counter() - t0) * 1000
        repo = store.repo
        t0 = time.perf_counter()
        index = repo.merge_trees(repo[base].tree, repo[start_b].tree, repo[start_remote].tree)
        conflicts = len(list(index.conflicts or []))
        lib_ms = (time.perf_counter() - t0) * 1000

    for key, value in env_keep.items():
        if value is None:
            os.environ.pop(key, None)
    print(f"state: {beads} beads generated in {gen_s:.2f} s; A made {len(a_ids) + args.overlap}"
          f" commits in {a_change_s:.2f} s; A: {a_sync}")
    print(f"B: {len(b_ids) + args.overlap} commits, {args.overlap} beads changed on both sides")
    print(f"B: {out}")
    print(f"git convoy sync (whole process, fetch + merge + push), {args.runs} runs: "
          f"min {min(times):.3f} s, median {statistics.median(times):.3f} s "
          f"(bar < 2 s) -> {'PASS' if min(times) < 2 else 'FAIL'}")
    print(f"merge step alone: tree walk + field merge {walk_ms:.1f} ms "
          f"({counter[0]} files merged); pygit2 merge_trees {lib_ms:.1f} ms "
          f"({conflicts} text conflicts left to resolve)")
    print(f"remote tip {remote_tip[:10]}; changes lost: {len(lost)}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
