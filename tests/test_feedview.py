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
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class Scene:
    repo: Path
    log: Path  # one line per dispatch command run (of both clones, when there are two)
    blockers: list[str]
    dependents: list[str]
    epic: str  # the pairs' epic
    others: list[str]  # unrelated work under another epic, the first 10 closed


def scene(root: Path, monkeypatch: pytest.MonkeyPatch) -> Scene:
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
    others = [ok("bead", "create", f"other {n}", "--parent", other) for n in range(30)]
    for bead in others[:10]:
        ok("bead", "close", bead)
    epic = ok("bead", "create", "the pairs", "--type", "epic")
    blockers, dependents = [], []
    for n in range(PAIRS):
        a = ok("bead", "create", f"blocker {n}", "--parent", epic)
        b = ok("bead", "create", f"dependent {n}", "--parent", epic)
        ok("dep", "add", b, a, "--type", "blocks")
        ok("create", f"pair {n}", a, b)
        blockers.append(a)
        dependents.append(b)
    ok("feed")
    for a in blockers:
        tip = run("rev-parse", f"convoy/{a}", cwd=repo).strip()
        tree = run("rev-parse", "main^{tree}", cwd=repo).strip()
        made = run("commit-tree", tree, "-p", tip, "-m", f"work on {a}", cwd=repo).strip()
        run("update-ref", f"refs/heads/convoy/{a}", made, cwd=repo, quiet=True)
    ok("feed")
    ok("hooks", "install")
    return Scene(repo, log, blockers, dependents, epic, others)


def outcome(repo: Path) -> dict[str, object]:
    """What the hooks left, without times and commit ids (the two clones differ there)."""
    snap = Store.open(str(repo)).snapshot(fresh=True)
    beads = {b.id: [b.status, b.branch, b.target, b.rig] for b in snap.beads.values()}
    convoys = {c.id: c.status for c in snap.convoys.values()}
    files = {name: [line.split()[:3] for line in  # no base commit: it is the merge's
                    (repo / ".git" / "convoy" / name).read_text().splitlines()]
             for name in ("watch", "inflight", "work-branches")}
    return {"beads": beads, "convoys": convoys, "files": files}


def land(repo: Path, blocker: str) -> None:
    run("merge", "--no-ff", "-q", "-m", f"land {blocker}", f"convoy/{blocker}", cwd=repo)


def dispatched(s: Scene, count: int) -> None:
    eventually(f"{count} dispatch commands run", lambda: len(s.log.read_text().split()) >= count)


def twin_without_view(s: Scene, root: Path) -> Path:
    """A copy of the scene's clone whose next hook feeds from the whole state."""
    twin = root / "repo"
    shutil.copytree(s.repo, twin, symlinks=True)
    for name in (feedview.VIEW_FILE, feedview.FOREST_FILE):
        (twin / ".git" / "convoy" / "cache" / name).unlink(missing_ok=True)
    return twin


def last_feed(repo: Path) -> dict[str, object]:
    """How the last hook was fed (.git/convoy/cache/feed-view.last)."""
    return json.loads((repo / ".git" / "convoy" / "cache" / feedview.LAST_FILE).read_text())


def test_a_hook_fed_from_the_view_lands_and_dispatches_as_with_the_whole_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = scene(tmp_path / "a", monkeypatch)
    served = []
    for n, a in enumerate(s.blockers):
        twin = twin_without_view(s, tmp_path / f"b{n}")
        for where in (s.repo, twin):
            land(where, a)
        dispatched(s, PAIRS + 2 * (n + 1))
        served.append(last_feed(s.repo)["served"])
        assert outcome(s.repo) == outcome(twin)
        assert last_feed(twin)["served"] == "full"
    assert served == ["full", "view", "view"]  # the first hook had no view yet
    snap = Store.open(str(s.repo)).snapshot()
    assert all(snap.bead(a).status == "closed" for a in s.blockers)
    assert len(feedview.read_view(Store.open(str(s.repo))).beads) < len(snap.beads) / 2


# Writes between two landings, by the commands people and workers run.
WRITES: dict[str, Callable[[Scene], str]] = {
    "a bead nothing reaches": lambda s: ok("bead", "create", "written between landings"),
    "a task under the pairs' epic": lambda s: ok("bead", "create", "one more", "--parent",
                                                 s.epic),
    "a worker's done on the next blocker": lambda s: ok("done", s.blockers[2]),
    "other work closed by hand": lambda s: ok("bead", "close", s.others[15]),
    "a convoy of other work": lambda s: ok("create", "more", s.others[16]),
    "a dependent blocked by other work too": lambda s: ok(
        "dep", "add", s.dependents[2], s.others[12], "--type", "blocks"),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_landing_right_after_another_write_loads_nothing_and_feeds_as_the_whole_state(
        write: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = scene(tmp_path / "a", monkeypatch)
    land(s.repo, s.blockers[0])
    dispatched(s, PAIRS + 1)
    WRITES[write](s)
    twin = twin_without_view(s, tmp_path / "b")
    for where in (s.repo, twin):
        land(where, s.blockers[1])
    dispatched(s, PAIRS + 3)
    fed = last_feed(s.repo)
    assert (fed["served"], fed["full_loads"]) == ("patched", 0), fed
    assert outcome(s.repo) == outcome(twin)
