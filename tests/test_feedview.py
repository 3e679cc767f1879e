"""A landing hook fed from the partial view (gitconvoy.flow.feedview) does what a hook with
the whole state does (issue 12: the landing at 100k).

Two clones of one scene land the same blockers through real `git merge` and real hooks; in
one the view left by the previous hook is served, in the other it is deleted before each
landing. Every bead's status and branch, every convoy and the hooks' runtime files must come
out the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import eventually, make_repo, ok

from gitconvoy.flow import feedview
from gitconvoy.state.store import Store

pytestmark = pytest.mark.slow

QUIET = {**os.environ, "CONVOY_IN_HOOK": "1"}
PAIRS = 3


def run(*args: str, cwd: Path, quiet: bool = False) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env=QUIET if quiet else None)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def scene(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, list[str]]:
    """Unrelated work under one epic (so the view is small), and PAIRS blocker→dependent
    pairs under another epic, each in its own convoy, the blockers in progress."""
    repo = make_repo(root / "repo")
    monkeypatch.chdir(repo)
    log = root / "dispatched.log"
    script = root / "dispatch.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD" >> "{log}"\n')
    script.chmod(0o755)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "10", "--default")
    run("config", "convoy.rig.app.dispatch", str(script), cwd=repo)
    other = ok("bead", "create", "other work", "--type", "epic")
    done = [ok("bead", "create", f"other {n}", "--parent", other) for n in range(30)]
    for bead in done[:10]:
        ok("bead", "close", bead)
    epic = ok("bead", "create", "the pairs", "--type", "epic")
    blockers = []
    for n in range(PAIRS):
        a = ok("bead", "create", f"blocker {n}", "--parent", epic)
        b = ok("bead", "create", f"dependent {n}", "--parent", epic)
        ok("dep", "add", b, a, "--type", "blocks")
        ok("create", f"pair {n}", a, b)
        blockers.append(a)
    ok("feed")
    for a in blockers:
        tip = run("rev-parse", f"convoy/{a}", cwd=repo).strip()
        tree = run("rev-parse", "main^{tree}", cwd=repo).strip()
        made = run("commit-tree", tree, "-p", tip, "-m", f"work on {a}", cwd=repo).strip()
        run("update-ref", f"refs/heads/convoy/{a}", made, cwd=repo, quiet=True)
    ok("feed")
    ok("hooks", "install")
    return repo, log, blockers


def outcome(repo: Path) -> dict[str, object]:
    """What the hooks left, without times and commit ids (the two clones differ there)."""
    snap = Store.open(str(repo)).snapshot(fresh=True)
    beads = {b.id: [b.status, b.branch, b.target, b.rig] for b in snap.beads.values()}
    convoys = {c.id: c.status for c in snap.convoys.values()}
    files = {name: [line.split()[:3] for line in  # no base commit: it is the merge's
                    (repo / ".git" / "convoy" / name).read_text().splitlines()]
             for name in ("watch", "inflight", "work-branches")}
    return {"beads": beads, "convoys": convoys, "files": files}


def test_a_hook_fed_from_the_view_lands_and_dispatches_as_with_the_whole_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, log, blockers = scene(tmp_path / "a", monkeypatch)
    twin = tmp_path / "b" / "repo"
    shutil.copytree(repo, twin, symlinks=True)
    view = Path(feedview.view_file(Store.open(str(repo))))
    served = []
    for n, a in enumerate(blockers):
        for where in (repo, twin):
            if where == twin:
                (twin / ".git" / "convoy" / "cache" / view.name).unlink(missing_ok=True)
            elif n > 0:
                served.append(json.loads(view.read_text())["tree"] ==
                              Store.open(str(repo)).snapshot().tree)
            run("merge", "--no-ff", "-q", "-m", f"land {a}", f"convoy/{a}", cwd=where)
        eventually("the dependent dispatched", lambda n=n: len(
            log.read_text().split()) >= PAIRS + 2 * (n + 1))
        assert outcome(repo) == outcome(twin)
    assert served == [True] * (PAIRS - 1)  # every landing after the first used the view
    snap = Store.open(str(repo)).snapshot()
    assert all(snap.bead(a).status == "closed" for a in blockers)
    assert len(json.loads(view.read_text())["objects"]["beads"]) < len(snap.beads) / 2


def last_feed(repo: Path) -> dict[str, object]:
    """How the last hook was fed (.git/convoy/cache/feed-view.last)."""
    return json.loads((repo / ".git" / "convoy" / "cache" / "feed-view.last").read_text())


def test_a_landing_after_another_write_makes_no_full_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, log, blockers = scene(tmp_path, monkeypatch)
    run("merge", "--no-ff", "-q", "-m", f"land {blockers[0]}", f"convoy/{blockers[0]}", cwd=repo)
    eventually("the first dependent dispatched", lambda: len(log.read_text().split()) >= PAIRS + 1)
    ok("bead", "create", "written between two landings")
    run("merge", "--no-ff", "-q", "-m", f"land {blockers[1]}", f"convoy/{blockers[1]}", cwd=repo)
    eventually("the second dependent dispatched",
               lambda: len(log.read_text().split()) >= PAIRS + 2)
    assert last_feed(repo)["full_loads"] == 0
