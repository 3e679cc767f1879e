"""Landing work with ordinary git moves the convoy on by itself (issue 4, item 2).

Every git operation of DESIGN §12's table that can land work is run with the real `git` CLI
and the real hooks installed, against a bare remote and clones. The plan in each: task A
(dispatched on convoy/A) blocks task B. When A's work reaches main by that operation, the
hooks must close A ("landed in …") and dispatch B, with no `git convoy feed` typed.

Scene-setting git commands run with CONVOY_IN_HOOK=1 (the re-entrancy guard), so only the
operation under test can wake the feeder. A hook starts the rig's dispatch command detached
(it never holds git), so what the command writes is awaited with a bounded poll.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import eventually, git, is_ancestor, make_repo, ok

pytestmark = pytest.mark.slow

QUIET = {"CONVOY_IN_HOOK": "1"}


@dataclass
class World:
    remote: Path
    alice: Path  # the clone with the plan and the hooks
    bob: Path  # another clone: lands work upstream
    a: str
    b: str
    dispatched: Path

    def bead(self, bead_id: str) -> dict:
        os.chdir(self.alice)
        return json.loads(ok("bead", "show", bead_id, "--json"))


def dispatched_last(w: World, bead: str) -> bool:
    text = w.dispatched.read_text() if w.dispatched.exists() else ""
    return text.split()[-2:] == [bead, f"convoy/{bead}"]


def run(*args: str, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """A git command as a user types it; fails the test with git's stderr if git fails."""
    env = {**os.environ, **(QUIET if quiet else {})}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    alice = make_repo(tmp_path / "alice")
    git("remote", "add", "origin", str(remote), cwd=alice)
    git("push", "-q", "-u", "origin", "main", cwd=alice)
    monkeypatch.chdir(alice)
    dispatched = tmp_path / "dispatched.log"
    script = tmp_path / "dispatch.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD $CONVOY_BRANCH" >> {dispatched}\n')
    script.chmod(0o755)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    git("config", "convoy.rig.app.dispatch", str(script), cwd=alice)
    ok("hooks", "install")
    a = ok("bead", "create", "task A")
    b = ok("bead", "create", "task B")
    ok("dep", "add", b, a, "--type", "blocks")
    ok("sling", a, b)
    run("push", "-q", "origin", "convoy/state", cwd=alice, quiet=True)
    bob = tmp_path / "bob"
    git("clone", "-q", str(remote), str(bob))
    world = World(remote, alice, bob, a, b, dispatched)
    assert world.bead(a)["status"] == "hooked" and world.bead(b)["status"] == "open"
    assert dispatched.read_text().split() == [a, f"convoy/{a}"]
    return world


def work_on_a(w: World, *, push: bool = False) -> str:
    """A worker commits on A's branch (quietly); the commit id."""
    run("switch", "-q", f"convoy/{w.a}", cwd=w.alice, quiet=True)
    (w.alice / "feature.txt").write_text("A's work\n")
    run("add", "feature.txt", cwd=w.alice, quiet=True)
    run("commit", "-q", "-m", "A: the work", cwd=w.alice, quiet=True)
    run("switch", "-q", "main", cwd=w.alice, quiet=True)
    if push:
        run("push", "-q", "origin", f"convoy/{w.a}", cwd=w.alice, quiet=True)
    return git("rev-parse", f"convoy/{w.a}", cwd=w.alice)


def bob_lands_a(w: World, *, squash: bool = False) -> None:
    """Another clone merges A's pushed branch into main and pushes main."""
    run("fetch", "-q", "origin", cwd=w.bob)
    if squash:
        run("merge", "-q", "--squash", f"origin/convoy/{w.a}", cwd=w.bob)
        run("commit", "-q", "-m", f"Task A\n\nConvoy-Bead: {w.a}", cwd=w.bob)
    else:
        run("merge", "-q", "--no-ff", "-m", "merge A", f"origin/convoy/{w.a}", cwd=w.bob)
    run("push", "-q", "origin", "main", cwd=w.bob)


def local_commit_on_main(w: World, n: int) -> None:
    (w.alice / "local.txt").write_text(f"alice's own change {n}\n")
    run("add", "local.txt", cwd=w.alice, quiet=True)
    run("commit", "-q", "-m", "alice: local change", cwd=w.alice, quiet=True)


def push_after_landing_locally(w: World, proc: subprocess.CompletedProcess[str]
                               ) -> subprocess.CompletedProcess[str]:
    """main tracks origin/main: a landing only this clone has is 'landed locally (not
    pushed)', A stays open and B waits; the push that puts it on the remote moves them on."""
    assert f"gitconvoy: {w.a}: landed locally in" in proc.stderr, proc.stderr
    assert "(not pushed): origin/main lacks it" in proc.stderr
    assert w.bead(w.a)["status"] != "closed" and w.bead(w.b)["status"] == "open"
    return run("push", "-q", "origin", "main", cwd=w.alice)


def assert_moved_on(w: World, proc: subprocess.CompletedProcess[str]) -> None:
    """A closed as landed, B dispatched — and the user saw it in the git command's output."""
    a = w.bead(w.a)
    assert a["status"] == "closed", proc.stderr
    assert a["close_reason"].startswith("landed in "), a
    b = w.bead(w.b)
    assert b["status"] == "hooked", (b, proc.stderr)
    assert git("rev-parse", "--verify", "-q", f"refs/heads/convoy/{w.b}", cwd=w.alice)
    eventually(f"{w.b}'s dispatch command", lambda: dispatched_last(w, w.b))
    assert f"gitconvoy: {w.a}: landed in" in proc.stderr
    assert f"{w.b}" in proc.stderr.split(f"{w.a}: landed in", 1)[1]


# --- pulls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [
    ["pull", "--ff-only"],
    ["pull", "--no-rebase"],
    ["pull", "--rebase"],
], ids=["ff-only", "merge", "rebase"])
@pytest.mark.parametrize("local_commits", [False, True], ids=["clean", "local-commits"])
def test_a_pull_that_brings_landed_work(world, how, local_commits):
    work_on_a(world, push=True)
    bob_lands_a(world)
    if local_commits:
        for n in range(2):
            local_commit_on_main(world, n)
    if how[1] == "--ff-only" and local_commits:
        refused_fast_forward_lands_nothing(world)
        proc = run("rebase", "origin/main", cwd=world.alice)  # the user's way out
    else:
        proc = run(*how, "-q", cwd=world.alice)
    assert_moved_on(world, proc)
    if local_commits and how[1] in ("--rebase", "--ff-only"):
        assert git("log", "-1", "--format=%s", cwd=world.alice) == "alice: local change"


def refused_fast_forward_lands_nothing(w: World) -> None:
    """`pull --ff-only` over local commits fetches (origin/main now holds A's work), then
    refuses. This clone's main has diverged and lacks A's work, so A has not landed here —
    not in the pull, nor in a feed run now: B must not start from a main without A's work."""
    proc = subprocess.run(["git", "pull", "--ff-only", "-q"], cwd=w.alice, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "fast-forward" in proc.stderr, proc.stderr
    assert is_ancestor(w.alice, f"convoy/{w.a}", "origin/main")
    assert not is_ancestor(w.alice, f"convoy/{w.a}", "main")
    assert "landed" not in proc.stderr and "✓" not in proc.stderr, proc.stderr
    os.chdir(w.alice)
    assert "landed" not in ok("feed")
    # its branch has work of its own (started), which is not in this clone's main
    assert (w.bead(w.a)["status"], w.bead(w.b)["status"]) == ("in_progress", "open")
    assert w.dispatched.read_text().split() == [w.a, f"convoy/{w.a}"]


# --- local merges --------------------------------------------------------------------------


def test_merging_a_work_branch(world):
    work_on_a(world)
    proc = run("merge", "--no-ff", "-m", "merge A", f"convoy/{world.a}", cwd=world.alice)
    assert_moved_on(world, push_after_landing_locally(world, proc))


def test_a_fast_forward_merge_of_a_work_branch(world):
    work_on_a(world)
    proc = run("merge", "--ff-only", f"convoy/{world.a}", cwd=world.alice)
    assert_moved_on(world, push_after_landing_locally(world, proc))


def test_a_local_landing_on_a_target_without_upstream_lands_at_once(world):
    run("branch", "--unset-upstream", "main", cwd=world.alice, quiet=True)
    work_on_a(world)
    proc = run("merge", "--no-ff", "-m", "merge A", f"convoy/{world.a}", cwd=world.alice)
    assert_moved_on(world, proc)


def test_a_squash_merge_with_a_trailer(world):
    work_on_a(world)
    run("merge", "-q", "--squash", f"convoy/{world.a}", cwd=world.alice)
    assert world.bead(world.a)["status"] != "closed"  # nothing committed on main yet
    proc = run("commit", "-q", "-m", f"Task A\n\nConvoy-Bead: {world.a}", cwd=world.alice)
    assert_moved_on(world, push_after_landing_locally(world, proc))


def test_a_forge_squash_merge_fetched_back(world):
    work_on_a(world, push=True)
    bob_lands_a(world, squash=True)
    proc = run("pull", "--ff-only", "-q", cwd=world.alice)
    assert_moved_on(world, proc)


# --- fetch and reset -------------------------------------------------------------------------


def test_a_fetch_that_moves_the_target(world):
    work_on_a(world, push=True)
    bob_lands_a(world)
    proc = run("fetch", "-q", "origin", cwd=world.alice)
    assert_moved_on(world, proc)


def test_a_fetch_that_moves_the_state_ref(world):
    """Another clone closes A and publishes the state; a plain fetch here feeds B."""
    os.chdir(world.bob)
    assert ok("init").startswith("took origin's state")
    ok("bead", "close", world.a, "--reason", "done elsewhere")
    run("push", "-q", "origin", "convoy/state", cwd=world.bob, quiet=True)
    published = git("rev-parse", "convoy/state", cwd=world.bob)
    proc = run("fetch", "-q", "origin", cwd=world.alice)
    assert world.bead(world.a)["status"] == "closed"
    assert world.bead(world.b)["status"] == "hooked", proc.stderr
    eventually(f"{world.b}'s dispatch command", lambda: dispatched_last(world, world.b))
    # alice's state is what bob started from: a fast-forward, no merge, naming the NEW commit
    assert f"gitconvoy: sync: fast-forwarded to origin's state ({published[:10]})" in \
        proc.stderr, proc.stderr


def test_reset_hard_to_a_target_that_contains_the_work(world):
    work_on_a(world, push=True)
    bob_lands_a(world)
    run("fetch", "-q", "origin", cwd=world.alice, quiet=True)  # fetched with hooks silent
    assert world.bead(world.a)["status"] == "hooked"
    proc = run("reset", "-q", "--hard", "origin/main", cwd=world.alice)
    assert_moved_on(world, proc)


# --- what must not happen ---------------------------------------------------------------------


def test_a_fresh_work_branch_merged_without_commits_has_not_landed(world):
    proc = run("merge", "-q", "--no-ff", "-m", "empty", f"convoy/{world.a}", cwd=world.alice)
    assert world.bead(world.a)["status"] == "hooked", proc.stderr
    assert world.bead(world.b)["status"] == "open"


def test_the_feeders_own_git_calls_do_not_re_trigger_it(world, tmp_path, monkeypatch):
    """Dispatching B from inside the hook moves watched refs with the git CLI (the dispatch
    command below creates one more work-branch ref): its git calls wake no hook, although
    the hook starts it detached and it runs after the hook ended."""
    spy_log = tmp_path / "python-calls.log"
    spy = tmp_path / "spy-python"
    spy.write_text(f'#!/bin/sh\necho "$*" >> {spy_log}\nexec {sys.executable} "$@"\n')
    spy.chmod(0o755)
    script = tmp_path / "dispatch-with-git.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD $CONVOY_BRANCH" >> {world.dispatched}\n'
                      'git update-ref "refs/heads/$CONVOY_BRANCH-notes" "$CONVOY_BRANCH"\n')
    script.chmod(0o755)
    git("config", "convoy.rig.app.dispatch", str(script), cwd=world.alice)
    monkeypatch.setattr(sys, "executable", str(spy))
    assert "updated the block" in ok("hooks", "install")
    work_on_a(world)
    proc = run("merge", "--no-ff", "-m", "merge A", f"convoy/{world.a}", cwd=world.alice)
    proc = push_after_landing_locally(world, proc)
    assert_moved_on(world, proc)
    eventually("the dispatch command's ref", lambda: git(
        "rev-parse", "--verify", "-q", f"convoy/{world.b}-notes", cwd=world.alice, check=False))
    # once for the merge, once for the push; never for the feeder's own git calls, nor for
    # the detached dispatch command's
    assert spy_log.read_text().splitlines() == [
        "-P -m gitconvoy hook reference-transaction committed"] * 2
    assert proc.stderr.count(f"{world.a}: landed in") == 1
    log = world.alice / ".git" / "convoy" / "hook-errors.log"
    assert not log.exists(), log.read_text()


def test_hooks_fire_in_a_linked_worktree(world, tmp_path):
    wt = tmp_path / "worker"
    run("worktree", "add", "-q", str(wt), f"convoy/{world.a}", cwd=world.alice, quiet=True)
    (wt / "feature.txt").write_text("A's work\n")
    run("add", "feature.txt", cwd=wt)
    proc = run("commit", "-q", "-m", "A: the work", cwd=wt)
    assert world.bead(world.a)["status"] == "in_progress", proc.stderr
    proc = run("merge", "--no-ff", "-m", "merge A", f"convoy/{world.a}", cwd=world.alice)
    assert_moved_on(world, push_after_landing_locally(world, proc))


def test_a_clone_without_state_adopts_the_fetched_one(world):
    os.chdir(world.bob)
    assert "created" in ok("hooks", "install")  # no local state yet: install still works
    assert git("rev-parse", "--verify", "-q", "refs/heads/convoy/state", cwd=world.bob,
               check=False) == ""
    os.chdir(world.alice)
    c = ok("bead", "create", "made on alice")
    run("push", "-q", "origin", "convoy/state", cwd=world.alice, quiet=True)
    proc = run("fetch", "-q", "origin", cwd=world.bob)
    assert "took origin's state" in proc.stderr
    os.chdir(world.bob)
    assert json.loads(ok("bead", "show", c, "--json"))["title"] == "made on alice"


def test_a_failing_feed_warns_once_and_is_recorded(world):
    git("config", "convoy.branchTemplate", "bad name/{id}", cwd=world.alice)
    run("branch", "--unset-upstream", "main", cwd=world.alice, quiet=True)  # lands at once
    work_on_a(world)
    proc = run("merge", "--no-ff", "-m", "merge A", f"convoy/{world.a}", cwd=world.alice)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: gitconvoy")]
    assert len(warnings) == 1 and "branchTemplate" in warnings[0], proc.stderr
    assert world.bead(world.a)["status"] == "closed"  # the landing itself was recorded
    proc = run("checkout", "-q", "-b", "elsewhere", cwd=world.alice)
    assert "warning" not in proc.stderr  # not repeated on every later git command
    log = (world.alice / ".git" / "convoy" / "hook-errors.log").read_text().splitlines()
    assert len(log) == 1 and "branchTemplate" in log[0]
    git("config", "--unset", "convoy.branchTemplate", cwd=world.alice)
    os.chdir(world.alice)
    ok("feed")
    assert world.bead(world.b)["status"] == "hooked"


# --- the gate: a target moving without landing anything loads no state ------------------------


def gate(w: World) -> bool:
    from gitconvoy.git import hookgate

    folder = w.alice / ".git" / "convoy"
    needed, listing = hookgate.feed_needed(str(folder), str(w.alice / ".git"))
    assert needed or listing is not None
    return needed


def bob_pushes_unrelated_work(w: World) -> None:
    run("pull", "-q", "--ff-only", cwd=w.bob)
    (w.bob / "other.txt").write_text("unrelated\n")
    run("add", "other.txt", cwd=w.bob)
    run("commit", "-q", "-m", "unrelated work", cwd=w.bob)
    run("push", "-q", "origin", "main", cwd=w.bob)


def test_the_gate_lets_unrelated_target_moves_through_without_a_feed(world):
    run("checkout", "-q", "main", cwd=world.alice)  # a hook feeds what sling changed
    assert gate(world) is False
    bob_pushes_unrelated_work(world)
    run("fetch", "-q", "origin", cwd=world.alice, quiet=True)
    assert gate(world) is False
    state_before = git("rev-parse", "convoy/state", cwd=world.alice)
    proc = run("pull", "-q", "--rebase", cwd=world.alice)
    assert "gitconvoy" not in proc.stderr
    assert git("rev-parse", "convoy/state", cwd=world.alice) == state_before
    assert gate(world) is False  # recorded as seen


@pytest.mark.parametrize("squash", [False, True])
def test_the_gate_feeds_when_the_new_target_commits_land_work(world, squash):
    work_on_a(world, push=True)
    bob_lands_a(world, squash=squash)
    run("fetch", "-q", "origin", cwd=world.alice, quiet=True)
    assert gate(world) is True


def test_the_gate_feeds_when_the_state_or_a_work_branch_moved(world):
    work_on_a(world)  # moves convoy/A (quietly)
    assert gate(world) is True
    run("checkout", "-q", "main", cwd=world.alice)  # the hook feeds: A started
    assert world.bead(world.a)["status"] == "in_progress"
    assert gate(world) is False
    os.chdir(world.alice)
    ok("bead", "create", "moves the state ref")
    assert gate(world) is True

