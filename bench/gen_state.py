"""Generate a large, realistic state: epics → sub-epics → tasks with ~2 deps per bead.

Usage: python bench/gen_state.py DIR [--beads 10000] [--prefix bx] [--shape tree|blockers]

The whole state is written in ONE transaction through the bulk path (`edits.create_beads`),
the same code `git convoy bead create --batch` uses. Deps only point backwards in creation
order and never at an ancestor, so the graph is acyclic by construction.

Two shapes: `tree` (the default: epics → sub-epics → tasks, deps mostly within a sub-epic)
and `blockers` (issue 12's graph, `plan_random_blockers`: one epic per 100 beads, each task
blocked by 2 random earlier tasks, 30 % closed, ids fixed by the seed so another tracker can
be given the very same graph).
"""

from __future__ import annotations

import argparse
import hashlib
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

def fixed_id(prefix: str, seed: int, n: int, length: int, taken: set[str]) -> str:
    """The n-th bead's id for a seed: shaped like `ids.new_id`'s (prefix, base36 hash, the
    same length for the population) but reproducible, unlike theirs (a random salt)."""
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{seed}:{n}:{attempt}".encode()).digest()
        number = int.from_bytes(digest[:16], "big")
        chars = []
        for _ in range(length):
            number, rem = divmod(number, 36)
            chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[rem])
        candidate = f"{prefix}-{''.join(chars)}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        attempt += 1

def plan_random_blockers(count: int, prefix: str, seed: int = 12) -> list[edits.BeadSpec]:
    """Issue 12's synthetic graph: bead 0 of every 100 is an epic, the other 99 its tasks;
    each task is blocked by 2 tasks drawn at random from all earlier ones (the first tasks by
    fewer), and 30 % of tasks are closed, drawn at random. Same seed, same beads and ids."""
    rng = random.Random(seed)
    length = ids.id_length(count)
    taken: set[str] = set()
    specs: list[edits.BeadSpec] = []
    tasks: list[str] = []
    epic = ""
    for n in range(count):
        bead_id = fixed_id(prefix, seed, n, length, taken)
        if n % 100 == 0:
            epic = bead_id
            specs.append(edits.BeadSpec(title=f"Epic {n // 100}", type="epic", id=bead_id))
            continue
        blockers = rng.sample(tasks, min(2, len(tasks)))
        specs.append(edits.BeadSpec(
            title=f"Task {n}: part {n % 100} of epic {n // 100}",
            type=rng.choice(("task", "task", "bug", "feature", "chore")),
            priority=rng.randint(0, 4), id=bead_id, parent=epic,
            deps=sorted(Dep(on, "blocks") for on in blockers),
            labels=[rng.choice(("api", "ui", "db", "auth"))],
            status="closed" if rng.random() < 0.3 else "open",
            description=f"Generated task {n} of epic {epic}.",
        ))
        tasks.append(bead_id)
    return specs

def generate(path: Path, count: int, prefix: str = "bx",
             specs: list[edits.BeadSpec] | None = None) -> tuple[int, int, float]:
    """Create the repository and its state; (beads, deps, seconds for the transaction).
    Without `specs`, the `tree` shape of `count` beads."""
    make_repo(path)
    store = Store.open(str(path))
    store.initialise(Config(prefix=prefix))
    specs = plan(count, prefix) if specs is None else specs
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
    parser.add_argument("--shape", choices=("tree", "blockers"), default="tree")
    parser.add_argument("--seed", type=int, default=12, help="For --shape blockers.")
    args = parser.parse_args(argv)
    specs = (plan_random_blockers(args.beads, args.prefix, args.seed)
             if args.shape == "blockers" else None)
    beads, deps, elapsed = generate(args.dir, args.beads, args.prefix, specs)
    print(f"{args.dir}: {beads} beads, {deps} deps (incl. parent links) "
          f"written in one transaction in {elapsed:.2f} s")
    return 0

if __name__ == "__main__":
    sys.exit(main())
