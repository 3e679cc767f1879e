"""Write figures (issue 12, item 3): writes that cost the same at 1k and 100k beads.

Usage: python bench/bench_writes.py [--sizes 1000,10000] [--big] [--work DIR] [--runs 5]
                                   [--only create,batch,stage,hook]

For each size, a state from bench/gen_state.py (plus a root epic over every epic, a rig
`app` on `main` whose dispatch command is `true`, and a two-bead convoy in flight whose
blocker has just landed on `main` by a fast-forward, as a plain `git merge` does) and, each
timed as a whole process (`python -m gitconvoy …`, medians of `--runs`, wall and CPU):

1. one `bead create` (bar <= 120 ms at any size);
2. `bead create --batch` of 1,000 beads without ids (bar <= 0.5 s);
3. `stage` of the root epic, whose descendants are every bead (bar <= 0.6 s at 10k; at 100k
   its convoy would be over the 1 MiB cap of a state file, so one top-level epic there);
4. the post-merge hook's feed step after the landing: the blocker closes and its dependent
   is dispatched (bar <= 0.5 s);
and the loose objects and packs the build left (`git count-objects -v`).

Times include the interpreter's start and imports (the package's bytecode is compiled
first, as an installed wheel has it). Every run starts from the same refs (reset untimed,
with the read cache warmed at that tree), so runs do not see each other's writes. `--work
DIR` keeps the generated states (a 100k build takes minutes) for the next run; `--big` adds
100,000 beads. Benchmarks print, they never fail on time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
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

import gitconvoy  # noqa: E402
from gitconvoy.plan import graph  # noqa: E402
from gitconvoy.state.model import Bead, Rig, now, touched  # noqa: E402
from gitconvoy.state.store import Store  # noqa: E402
from gitconvoy.state.tx import Tx  # noqa: E402

PY = sys.executable
ROOT = "bx-root"
CHECKPOINT = "bench-checkpoint.json"


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "CONVOY_IN_HOOK": "1"}  # no hook of ours reacts to the setup
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


def convoy(*args: str, cwd: Path) -> str:
    proc = subprocess.run([PY, "-m", "gitconvoy", *args], cwd=cwd, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"git convoy {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


def objects(cwd: Path) -> dict[str, int]:
    rows = git("count-objects", "-v", cwd=cwd).splitlines()
    return {k: int(v) for k, _, v in (r.partition(": ") for r in rows) if v.isdigit()}


def refs(cwd: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", cwd=cwd)
    return dict(line.split(" ", 1) for line in out.splitlines())


def build(path: Path, count: int) -> dict[str, object]:
    """Generate, prepare and land; the checkpoint every measurement resets to."""
    started = time.perf_counter()
    generate(path, count)
    built = {"build_s": time.perf_counter() - started, "objects": objects(path)}
    git("config", "convoy.rig.app.dispatch", "true", cwd=path)
    Store.open(str(path)).transact(root_and_rig, "bench: root epic and rig")
    blocker = convoy("bead", "create", "Bench blocker", cwd=path)
    waiting = convoy("bead", "create", "Bench dependent", "--dep", blocker, cwd=path)
    convoy("create", "Bench flight", blocker, waiting, cwd=path)
    convoy("feed", cwd=path)  # dispatches the blocker: hooked, branch convoy/<id>
    branch = f"refs/heads/convoy/{blocker}"
    tip = git("rev-parse", branch, cwd=path)
    work = git("commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", f"work of {blocker}",
               cwd=path)
    git("update-ref", branch, work, cwd=path)
    git("update-ref", "refs/heads/main", work, cwd=path)  # landed: a fast-forward merge
    built.update(refs=refs(path), blocker=blocker, waiting=waiting)
    (path / CHECKPOINT).write_text(json.dumps(built))
    return built


def root_and_rig(tx: Tx) -> None:
    """Rig `app` on main (the default), and epic ROOT over every top-level epic."""
    stamp = now()
    tx.put_config(replace(tx.config, rigs={"app": Rig(name="app", target="main", capacity=3)},
                          default_rig="app"))
    tx.put(Bead(id=ROOT, title="Root epic", type="epic", created_at=stamp, updated_at=stamp,
                created_by="bench"))
    for bead in list(tx.beads.values()):
        if bead.type == "epic" and bead.parent is None and bead.id != ROOT:
            tx.put(touched(bead, parent=ROOT))


def reset(path: Path, saved: dict[str, str]) -> None:
    """Back to the checkpoint's refs (branches made by a run are deleted), cache warmed."""
    for name, sha in refs(path).items():
        if name not in saved:
            git("update-ref", "-d", name, sha, cwd=path)
    for name, sha in saved.items():
        git("update-ref", name, sha, cwd=path)
    convoy("ready", cwd=path)


def timed(args: list[str], path: Path, saved: dict[str, str], runs: int
          ) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system of the process), in ms: on a
    shared machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(runs):
        reset(path, saved)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run([PY, "-m", "gitconvoy", *args], cwd=path, capture_output=True,
                              text=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"git convoy {' '.join(args)} failed: {proc.stderr}")
    reset(path, saved)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def stage_target(path: Path, count: int) -> tuple[str, str]:
    """The root epic, whose descendants are every bead, while its convoy file fits the 1 MiB
    cap of a state file (a convoy of ~65,000 tracks does not); beyond, one top-level epic."""
    if count <= 50_000:
        return ROOT, "stage of the root epic"
    snap = Store.open(str(path)).snapshot()
    epic = min(b.id for b in snap.beads.values() if b.parent == ROOT)
    size = 1 + len(graph.Index(snap.beads).descendants(epic))
    return epic, f"stage of an epic of {size:,}"


def measure(path: Path, count: int, runs: int, only: set[str]) -> None:
    marker = path / CHECKPOINT
    if path.exists() and not marker.exists():
        shutil.rmtree(path)  # a build that was interrupted
    built = json.loads(marker.read_text()) if marker.exists() else build(path, count)
    saved = built["refs"]
    batch = path.parent / "batch-1000.json"
    batch.write_text(json.dumps([{"title": f"Batch bead {n}"} for n in range(1000)]))
    epic, stage_name = stage_target(path, count)
    steps = [
        ("create", "one bead create", ["bead", "create", "Bench one"], runs, "<= 120 ms"),
        ("batch", "batch of 1,000 beads", ["bead", "create", "--batch", str(batch)],
         max(1, runs // 2), "<= 500 ms"),
        ("stage", stage_name, ["stage", epic], max(1, runs // 2), "<= 600 ms (10k)"),
        ("hook", "hook feed after a landing", ["hook", "post-merge", "0"], runs, "<= 500 ms"),
    ]
    objs = built["objects"]
    print(f"{count:,} beads (build {built['build_s']:.1f} s; left "
          f"{objs.get('count', 0):,} loose objects, {objs.get('size', 0) / 1024:.1f} MB, "
          f"and {objs.get('packs', 0)} pack(s), {objs.get('size-pack', 0) / 1024:.1f} MB)")
    for key, name, args, n, bar in steps:
        if key in only:
            wall, cpu = timed(args, path, saved, n)
            print(f"  {name:28s} wall {wall:8.1f} ms   cpu {cpu:8.1f} ms   bar {bar}")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--big", action="store_true", help="also 100,000 beads")
    parser.add_argument("--work", type=Path, help="keep (and reuse) the states here")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="create,batch,stage,hook",
                        help="which figures (comma-separated)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([100_000] if args.big else [])
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-writes-"))
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    # as an installed wheel has it: no process pays for compiling (PYTHONDONTWRITEBYTECODE)
    compileall.compile_dir(str(Path(gitconvoy.__file__).parent), quiet=1)
    for count in sizes:
        measure(work / f"s{count}", count, args.runs, set(args.only.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
