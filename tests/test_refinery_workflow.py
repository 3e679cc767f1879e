"""Workflow A end to end through the installed `git convoy`: three tasks, task 2 blocked by
task 1, slung at once; workers commit and run `done`; the refinery lands them in dependency
order on trees that passed the check; the convoy closes. Then the same with a conflict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, git_convoy, workdir_state

from gitconvoy.render.shapes import bead_json
from gitconvoy.state.store import Store

pytestmark = pytest.mark.slow


def gc(repo: Path, *args: str, code: int = 0) -> str:
    proc = git_convoy(*args, cwd=repo, check=False)
    assert proc.returncode == code, f"git convoy {' '.join(args)} -> {proc.returncode}: {proc}"
    return proc.stdout.strip()


def show(repo: Path, bead: str) -> dict:
    """Read back in-process (the commands under test run through `git convoy`)."""
    return bead_json(Store.open(str(repo)).snapshot().bead(bead))


def work(repo: Path, bead: str, files: dict[str, str]) -> Path:
    """A worker: its own worktree on the bead's branch, a commit, then `git convoy done`."""
    branch = show(repo, bead)["branch"]
    wt = repo.parent / f"worker-{bead}"
    if not wt.exists():
        git("worktree", "add", "-q", str(wt), branch, cwd=repo)
    for name, text in files.items():
        (wt / name).write_text(text)
        git("add", name, cwd=wt)
    git("commit", "-q", "-m", f"{bead}: work", cwd=wt)
    assert "queued mr-" in gc(wt, "done")
    return wt


def setup(repo: Path) -> tuple[str, str, str, Path]:
    gc(repo, "init", "--prefix", "wa")
    gc(repo, "rig", "add", "app", "--target", "main", "--capacity", "3")
    trees = repo.parent / "checked-trees"
    check = repo.parent / "check.sh"
    check.write_text(f"#!/bin/sh\ngit rev-parse HEAD^{{tree}} >> '{trees}'\n"
                     "! grep -q BROKEN *.txt 2>/dev/null\n")
    check.chmod(0o755)
    git("config", "convoy.rig.app.check", str(check), cwd=repo)
    t1 = gc(repo, "bead", "create", "Task one")
    t2 = gc(repo, "bead", "create", "Task two")
    t3 = gc(repo, "bead", "create", "Task three")
    gc(repo, "dep", "add", t2, t1, "--type", "blocks")
    return t1, t2, t3, trees


def landed_trees(repo: Path, since: str) -> set[str]:
    commits = git("rev-list", "--first-parent", f"{since}..main", cwd=repo).split()
    return {git("rev-parse", f"{c}^{{tree}}", cwd=repo) for c in commits}


@pytest.mark.parametrize("hooks", [False, True], ids=["no-hooks", "hooks-installed"])
def test_workflow_a_lands_in_dependency_order(repo, hooks):
    t1, t2, t3, trees = setup(repo)
    if hooks:  # the feeder also wakes from git's hooks while workers commit
        gc(repo, "hooks", "install")
    start = git("rev-parse", "main", cwd=repo)
    git("checkout", "-q", "-b", "user-branch", cwd=repo)
    (repo / "scratch.txt").write_text("the user's own work in progress\n")
    user = workdir_state(repo)
    out = gc(repo, "sling", t1, t2, t3)
    assert f"{t2}: waits" in out
    assert show(repo, t1)["status"] == "hooked" and show(repo, t3)["status"] == "hooked"
    assert show(repo, t2)["status"] == "open"
    work(repo, t1, {"one.txt": "one\n"})
    work(repo, t3, {"three.txt": "three\n"})
    out = gc(repo, "refinery", "run")
    assert "refinery: 2 of 2 landed" in out
    after_first = git("rev-parse", "main", cwd=repo)
    b2 = show(repo, t2)
    assert b2["status"] == "hooked"
    # the dependent task starts from a main that contains its blocker's landing
    t1_work = git("rev-parse", show(repo, t1)["branch"], cwd=repo)
    git("merge-base", "--is-ancestor", t1_work, b2["base_commit"], cwd=repo)
    git("merge-base", "--is-ancestor", b2["base_commit"], after_first, cwd=repo)
    assert git("show", f"{b2['base_commit']}:one.txt", cwd=repo) == "one"
    work(repo, t2, {"two.txt": "two\n"})
    gc(repo, "refinery", "run")
    for bead in (t1, t2, t3):
        shown = show(repo, bead)
        assert shown["status"] == "closed" and shown["close_reason"].startswith("Merged in mr-")
    order = git("log", "--first-parent", "--format=%s", f"{start}..main", cwd=repo).splitlines()
    position = {b: next(i for i, s in enumerate(order) if f"convoy/{b}" in s)
                for b in (t1, t2, t3)}
    assert position[t1] > position[t2]  # newest first: t1 landed before t2
    assert landed_trees(repo, start) <= set(trees.read_text().split())
    convoys = json.loads(gc(repo, "list", "--all", "--json"))
    assert [c["status"] for c in convoys] == ["closed"]
    assert workdir_state(repo) == user
    assert (repo / "scratch.txt").read_text() == "the user's own work in progress\n"


def test_workflow_a_with_a_conflict_that_is_resolved(repo):
    t1, t2, t3, trees = setup(repo)
    start = git("rev-parse", "main", cwd=repo)
    git("checkout", "-q", "-b", "user-branch", cwd=repo)
    gc(repo, "sling", t1, t2, t3)
    work(repo, t1, {"shared.txt": "from one\n"})
    wt3 = work(repo, t3, {"shared.txt": "from three\n"})
    out = gc(repo, "refinery", "run", code=3)
    assert "conflict" in out
    status = json.loads(gc(repo, "refinery", "status", "--json"))
    [row] = status["conflicts"]
    assert row["bead"] == t3 and row["conflict_files"] == ["shared.txt"]
    blocker = show(repo, row["conflict_bead"])
    assert blocker["title"] == "Resolve merge conflicts: Task three"
    # the worker resolves on its branch and closes the conflict bead
    git("merge", "-q", "main", cwd=wt3, check=False)
    (wt3 / "shared.txt").write_text("from one and three\n")
    git("add", "shared.txt", cwd=wt3)
    git("commit", "-q", "--no-edit", cwd=wt3)
    gc(repo, "bead", "close", blocker["id"], "--reason", "resolved")
    work(repo, t2, {"two.txt": "two\n"})
    out = gc(repo, "refinery", "run")
    assert "requeued" in out
    for bead in (t1, t2, t3):
        assert show(repo, bead)["status"] == "closed"
    assert git("show", "main:shared.txt", cwd=repo) == "from one and three"
    assert landed_trees(repo, start) <= set(trees.read_text().split())
    convoys = json.loads(gc(repo, "list", "--all", "--json"))
    assert [c["status"] for c in convoys] == ["closed"]
