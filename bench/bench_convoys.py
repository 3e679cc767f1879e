"""Convoy figures (issue 3): `stage` of a 10k-descendant epic, and a no-change `feed`.

Usage: python bench/bench_convoys.py [--beads 10000] [--runs 10]

Prints whole-process medians measured with hyperfine when it is installed (else repeated
subprocess timing). Bars: stage < 2 s; feed with 50 open convoys and 10k beads, nothing
changed, < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_state import generate  # noqa: E402

from gitconvoy.plan import graph  # noqa: E402
from gitconvoy.state.model import Bead, Rig, now, touched  # noqa: E402
from gitconvoy.state.store import Store  # noqa: E402
from gitconvoy.state.tx import Tx  # noqa: E402


def median_ms(cmd: list[str], cwd: Path, runs: int) -> float:
    if shutil.which("hyperfine"):
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        subprocess.run(
            ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", str(out),
             " ".join(cmd)], cwd=cwd, check=True, capture_output=True,
        )
        return statistics.median(json.loads(out.read_text())["results"][0]["times"]) * 1000
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def prepare(path: Path, count: int) -> tuple[str, list[list[str]]]:
    """One root epic over every generated epic; a rig; 50 groups of beads for convoys."""
    generate(path, count)
    store = Store.open(str(path))

    def mutate(tx: Tx) -> str:
        stamp = now()
        root = Bead(id="bx-root", title="Root epic", type="epic", created_at=stamp,
                    updated_at=stamp, created_by="bench")
        tx.put(root)
        for bead in list(tx.beads.values()):
            if bead.type == "epic" and bead.parent is None and bead.id != root.id:
                tx.put(touched(bead, parent=root.id))
        rigs = {"app": Rig(name="app", target="main", capacity=3)}
        tx.put_config(replace(tx.config, rigs=rigs, default_rig="app"))
        return root.id

    root = store.transact(mutate, "bench: root epic and rig")
    snap = store.snapshot(fresh=True)
    index = graph.Index(snap.beads)
    subs = sorted(b.id for b in snap.beads.values()
                  if b.type == "epic" and b.parent and b.parent != root)
    groups = [[s] + index.descendants(s) for s in subs][:50]
    return root, groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beads", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-convoys-") as tmp:
        repo = Path(tmp) / "repo"
        root, groups = prepare(repo, args.beads)
        subprocess.run(["git", "convoy", "ready"], cwd=repo, check=True, capture_output=True)
        stage_ms = median_ms(["git", "convoy", "stage", root, "--json"], repo, args.runs)
        print(f"stage of an epic with {args.beads} descendants: median {stage_ms:.0f} ms "
              f"(bar < 2000 ms)")
        subprocess.run(["git", "convoy", "close", json.loads(subprocess.run(
            ["git", "convoy", "list", "--json"], cwd=repo, check=True, capture_output=True,
            text=True).stdout)[0]["id"]], cwd=repo, check=True, capture_output=True)
        for n, group in enumerate(groups):
            subprocess.run(["git", "convoy", "create", f"convoy {n}", *group], cwd=repo,
                           check=True, capture_output=True)
        subprocess.run(["git", "convoy", "feed"], cwd=repo, check=True, capture_output=True)
        feed_ms = median_ms(["git", "convoy", "feed"], repo, args.runs)
        print(f"feed with {len(groups)} open convoys and {args.beads} beads, nothing changed: "
              f"median {feed_ms:.0f} ms (bar < 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
