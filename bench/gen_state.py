"""Generate a large, realistic state: epics → sub-epics → tasks with ~2 deps per bead.

Usage: python bench/gen_state.py DIR [--beads 10000] [--prefix bx]

The whole state is written in ONE transaction through the bulk path (`edits.create_beads`),
the same code `git convoy bead create --batch` uses. Deps only point backwards in creation
order and never at an ancestor, so the graph is acyclic by construction.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from gitconvoy.plan import edits
from gitconvoy.state import ids
from gitconvoy.state.model import Config, Dep
from gitconvoy.state.store import Store

EPICS_PER_1000 = 5
SUBS_PER_EPIC = 4

def make_repo(path: Path) -> Path:
    """A plain repository with one commit, like a user's project."""
    path.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, env=env, capture_output=True)

    run("init", "-q", "-b", "main")
    run("config", "user.name", "Bench")
    run("config", "user.email", "bench@example.com")
    (path / "README").write_text("bench\n")
    run("add", "README")
    run("commit", "-q", "-m", "initial")
    return path

def plan(count: int, prefix: str, seed: int = 7) -> list[edits.BeadSpec]:
    """Specs for `count` beads: ~0.5% epics, 2% sub-epics, the rest tasks; ~2 deps each."""
    rng = random.Random(seed)
    taken: set[str] = set()

    def fresh(title: str) -> str:
        new = ids.new_id(prefix, title, taken, count)
        taken.add(new)
        return new

    n_epics = max(1, count * EPICS_PER_1000 // 1000)
    n_subs = n_epics * SUBS_PER_EPIC
    n_tasks = count - n_epics - n_subs
    specs: list[edits.BeadSpec] = []
    subs: list[tuple[str, int]] = []  # (sub-epic id, epic index)
    for e in range(n_epics):
        epic = fresh(f"epic {e}")
        specs.append(edits.BeadSpec(title=f"Epic {e}", type="epic", id=epic))
        previous = None
        for s in range(SUBS_PER_EPIC):
            sub = fresh(f"sub {e}.{s}")
            deps = [Dep(previous, "blocks")] if previous and rng.random() < 0.5 else []
            specs.append(edits.BeadSpec(title=f"Sub-epic {e}.{s}", type="epic", id=sub,
                                        parent=epic, deps=deps))
            subs.append((sub, e))
            previous = sub
    per_sub = n_tasks // len(subs)
    done_tasks: list[str] = []
    made = 0
    for n, (sub, e) in enumerate(subs):
        share = per_sub if n < len(subs) - 1 else n_tasks - made
        local: list[str] = []
        for t in range(share):
            task = fresh(f"task {n}.{t}")
            deps: set[Dep] = set()
            for _ in range(2):
                pool = local if local and rng.random() < 0.85 else done_tasks
                if pool:
                    deps.add(Dep(rng.choice(pool[-40:]), rng.choice(("blocks", "blocks",
                                                                      "waits-for", "related"))))
            closed = t < share // 3
            specs.append(edits.BeadSpec(
                title=f"Task {n}.{t}: do part {t} of sub-epic {n}",
                type=rng.choice(("task", "task", "bug", "feature", "chore")),
                priority=rng.randint(0, 4), id=task, parent=sub, deps=sorted(deps),
                labels=[rng.choice(("api", "ui", "db", "auth"))],
                status="closed" if closed else "open",
                description=f"Generated task {t} of sub-epic {sub} in epic {e}.",
            ))
            local.append(task)
            made += 1
        done_tasks.extend(local[: share // 3])
    return specs

def generate(path: Path, count: int, prefix: str = "bx") -> tuple[int, int, float]:
    """Create the repository and its state; (beads, deps, seconds for the transaction)."""
    make_repo(path)
    store = Store.open(str(path))
    store.initialise(Config(prefix=prefix))
    specs = plan(count, prefix)
    started = time.perf_counter()
    store.transact(lambda tx: edits.create_beads(tx, specs, "bench"),
                   f"bench: generate {count} beads")
    elapsed = time.perf_counter() - started
    deps = sum(len(s.deps) + (1 if s.parent else 0) for s in specs)
    return len(specs), deps, elapsed

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--beads", type=int, default=10_000)
    parser.add_argument("--prefix", default="bx")
    args = parser.parse_args(argv)
    beads, deps, elapsed = generate(args.dir, args.beads, args.prefix)
    print(f"{args.dir}: {beads} beads, {deps} deps (incl. parent links) "
          f"written in one transaction in {elapsed:.2f} s")
    return 0

if __name__ == "__main__":
    sys.exit(main())
