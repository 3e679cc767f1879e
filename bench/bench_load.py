"""Proof under load (issue 10): figures, and a non-zero exit if an invariant breaks.

A bare remote, CLONES clones each with the hooks and a feeder, WORKERS worker processes
(some pushed to by their clone's feeder, some pulling with `claim`), a TASKS-task convoy with
deps and two integration branches, one lander, `sync` between clones — to the end. The
harness is bench/load_harness.py (tests/test_load.py runs it small).

    python bench/bench_load.py [--tasks 200] [--clones 3] [--workers 8] [--lander server|watch]
                               [--seed 10] [--timeout 1800] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_harness import (  # noqa: E402
    LoadConfig,
    broken_invariants,
    chain_depth,
    collect,
    make_plan,
    report_lines,
    run_load,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--clones", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--capacity", type=int, default=None,
                        help="the rig's capacity (default: the number of workers)")
    parser.add_argument("--lander", choices=("server", "watch"), default="server")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--no-trace", action="store_true",
                        help="skip GIT_TRACE2 (no push counts)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this (new) folder and keep it for a look afterwards")
    args = parser.parse_args()
    cfg = LoadConfig(tasks=args.tasks, clones=args.clones, workers=args.workers,
                     capacity=args.capacity, lander=args.lander, seed=args.seed,
                     timeout=args.timeout, trace=not args.no_trace,
                     say=lambda text: print(text, flush=True))
    _, tasks, _ = make_plan(cfg)
    print(f"python bench/bench_load.py --tasks {cfg.tasks} --clones {cfg.clones} "
          f"--workers {cfg.workers} --lander {cfg.lander} --seed {cfg.seed} "
          f"(capacity {cfg.capacity or cfg.workers}, longest chain {chain_depth(tasks)})",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="convoy-load-") as tmp:
        root = args.keep or Path(tmp) / "load"
        start = time.monotonic()
        scene, timeline = run_load(cfg, root)
        figures = collect(cfg, scene, timeline)
        for line in report_lines(cfg, figures):
            print(line)
        print(f"(whole bench, setup and checks included: {time.monotonic() - start:.1f} s)")
        broken = broken_invariants(figures)
        for line in broken:
            print(f"INVARIANT BROKEN: {line}")
        return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
