"""Proof under load, small (issue 10): the full scene of bench/bench_load.py at CI size.

A bare remote with the server-side lander, two clones with hooks and a feeder each, four
worker processes (three pushed to by their clone's feeder, one pulling with `claim`), a
16-task convoy with deps and one integration branch, to the end. Asserted: no bead
dispatched twice, every task landed exactly once, the convoy closed exactly once, remote
`main` holds every task's work. No timings are asserted (bench/bench_load.py prints them).

To stay well under a minute on two busy cores, the workers' own git commands wake no hook
(each would start Python: ~0.4 s of CPU); the clones' feeders still run from `sync`, `feed`,
`launch` and the workers' `sync`, and the bench runs the workers' hooks live.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from load_harness import (  # noqa: E402
    LoadConfig,
    broken_invariants,
    collect,
    report_lines,
    run_load,
)

pytestmark = pytest.mark.slow


def test_a_small_convoy_lands_every_task_once_across_clones(tmp_path: Path):
    cfg = LoadConfig(tasks=16, clones=2, workers=4, claimers=1, epics=1, epic_share=0.25,
                     max_deps=1, window=4, seed=10, timeout=600, tick=1.5, feed_every=3,
                     trace=False, worker_hooks=False, say=None)
    scene, timeline = run_load(cfg, tmp_path / "load")
    figures = collect(cfg, scene, timeline)
    print("\n".join(report_lines(cfg, figures)))
    assert broken_invariants(figures) == []
    assert figures.epics_landed == 1
