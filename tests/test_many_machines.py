"""Many clones, one plan (issue 10): every path that moves the state ref feeds.

Two clones of one bare remote, each with the real hooks installed. What one clone changes
reaches the other through ordinary git commands, and the other clone's feeder acts on it
without anyone typing `git convoy feed`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import convoy, eventually, git, make_repo, ok

pytestmark = pytest.mark.slow

QUIET = {"CONVOY_IN_HOOK": "1"}


@dataclass
class Pair:
    remote: Path
    alice: Path
    bob: Path
    a: str
    b: str
    bob_log: Path

    def bead_on(self, clone: Path, bead_id: str) -> dict:
        os.chdir(clone)
        return json.loads(ok("bead", "show", bead_id, "--json"))


def run(*args: str, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(QUIET if quiet else {})}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc


def dispatch_script(tmp_path: Path, name: str) -> tuple[Path, Path]:
    log = tmp_path / f"{name}-dispatched.log"
    script = tmp_path / f"{name}-dispatch.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD" >> {log}\n')
    script.chmod(0o755)
    return script, log


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pair:
    """Alice plans A (dispatched) blocking B; Bob clones with hooks and a worker of his own."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    alice = make_repo(tmp_path / "alice")
    git("remote", "add", "origin", str(remote), cwd=alice)
    git("push", "-q", "-u", "origin", "main", cwd=alice)
    monkeypatch.chdir(alice)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    a = ok("bead", "create", "task A")
    b = ok("bead", "create", "task B")
    ok("dep", "add", b, a, "--type", "blocks")
    ok("create", "Pair", a, b)
    git("switch", "-q", "-c", f"convoy/{a}", cwd=alice)
    git("switch", "-q", "main", cwd=alice)
    ok("bead", "update", a, "--status", "in_progress")
    run("push", "-q", "origin", "convoy/state", cwd=alice, quiet=True)
    bob = tmp_path / "bob"
    git("clone", "-q", str(remote), str(bob))
    script, bob_log = dispatch_script(tmp_path, "bob")
    git("config", "convoy.rig.app.dispatch", str(script), cwd=bob)
    monkeypatch.chdir(bob)
    ok("hooks", "install")
    run("pull", "-q", cwd=bob)  # takes the state; nothing is ready yet
    return Pair(remote, alice, bob, a, b, bob_log)


@pytest.mark.parametrize("pull", [["pull"], ["pull", "--rebase"], ["pull", "--ff-only"]])
def test_a_pull_that_brings_only_state_changes_feeds(pair: Pair, pull: list[str]):
    """Clone 1 closes A and shares the state; clone 2's pull says 'Already up to date' for
    its branch, yet absorbs the state and dispatches B."""
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    run("push", "-q", "origin", "convoy/state", cwd=pair.alice, quiet=True)
    proc = run(*pull, cwd=pair.bob)
    assert "up to date" in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    assert pair.bead_on(pair.bob, pair.a)["status"] == "closed"
    assert pair.bead_on(pair.bob, pair.b)["status"] == "hooked", proc.stderr
    eventually("B's dispatch command (hooks start it detached)",
               lambda: pair.bob_log.exists() and pair.bob_log.read_text().split() == [pair.b])
    assert f"✓ {pair.b}" in proc.stderr


def test_a_plain_fetch_of_state_changes_feeds(pair: Pair):
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    run("push", "-q", "origin", "convoy/state", cwd=pair.alice, quiet=True)
    proc = run("fetch", "-q", cwd=pair.bob)
    assert pair.bead_on(pair.bob, pair.b)["status"] == "hooked", proc.stderr
    eventually("B's dispatch command (hooks start it detached)",
               lambda: pair.bob_log.exists() and pair.bob_log.read_text().split() == [pair.b])


# --- one dispatch per bead across clones ------------------------------------------------


def alice_dispatches(pair: Pair, tmp_path: Path) -> Path:
    script, log = dispatch_script(tmp_path, "alice")
    git("config", "convoy.rig.app.dispatch", str(script), cwd=pair.alice)
    return log


def lines_of(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_commit_on_one_clone_and_a_pull_on_another_dispatch_a_bead_once(pair: Pair,
                                                                        tmp_path: Path):
    """The issue's sighting: alice closes A and shares it; an unrelated commit there fires
    her feeder, which dispatches B; bob's pull must not dispatch B again."""
    alice_log = alice_dispatches(pair, tmp_path)
    os.chdir(pair.alice)
    ok("hooks", "install")
    ok("bead", "close", pair.a, "--reason", "done by hand")
    ok("sync")
    commit(pair.alice, "notes.txt", "unrelated work on main")
    eventually("B's dispatch on alice", lambda: lines_of(alice_log) == [pair.b])
    run("pull", "-q", cwd=pair.bob)
    assert pair.bead_on(pair.bob, pair.b)["status"] == "hooked"
    os.chdir(pair.bob)
    ok("feed")
    assert lines_of(pair.bob_log) == [] and lines_of(alice_log) == [pair.b]


def test_a_feeder_with_a_stale_view_concedes_before_its_command_runs(pair: Pair,
                                                                     tmp_path: Path):
    """Both clones know A closed; alice dispatches B and publishes the claim; bob's feeder,
    which has not fetched since, claims B locally, loses on the remote and concedes: his
    command never runs and his state carries no trace of the claim."""
    alice_log = alice_dispatches(pair, tmp_path)
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    ok("sync")
    git("config", "convoy.hookBudget", "0", cwd=pair.bob)  # bob's hooks dispatch nothing
    os.chdir(pair.bob)
    ok("sync")
    assert pair.bead_on(pair.bob, pair.b)["status"] == "open"
    os.chdir(pair.alice)
    assert f"✓ {pair.b}" in ok("feed")
    os.chdir(pair.bob)
    out = ok("feed")
    assert f"✗ {pair.b}: not dispatched: {pair.b} was" in out and "on the remote first" in out
    assert lines_of(pair.bob_log) == [] and lines_of(alice_log) == [pair.b]
    bead = pair.bead_on(pair.bob, pair.b)
    alice_clone = (pair.alice / ".git" / "convoy" / "id").read_text().strip()
    assert (bead["status"], bead["dispatch"]["by"]) == ("hooked", alice_clone)
    assert git("rev-parse", "convoy/state", cwd=pair.bob) == \
        git("rev-parse", "convoy/state", cwd=pair.remote)


def test_a_feeder_and_a_claim_worker_never_share_a_bead(pair: Pair, tmp_path: Path):
    """A worker on bob's clone claims B; alice's feeder, with a view from before the claim,
    must not hand B to her rig as well."""
    alice_log = alice_dispatches(pair, tmp_path)
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    ok("sync")
    os.chdir(pair.bob)
    claimed = json.loads(ok("claim", "--json", "--as", "bob"))
    assert claimed["bead"] == pair.b
    os.chdir(pair.alice)
    out = ok("feed")
    assert f"{pair.b} was claimed by bob on the remote first" in out
    assert lines_of(alice_log) == []
    assert pair.bead_on(pair.alice, pair.b)["assignee"] == "bob"


def test_without_a_reachable_remote_the_dispatch_waits_and_says_how_to_go_alone(
        pair: Pair, tmp_path: Path):
    alice_log = alice_dispatches(pair, tmp_path)
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    git("remote", "set-url", "origin", str(tmp_path / "gone.git"), cwd=pair.alice)
    res = convoy("feed")
    out = res.out
    assert res.code == 1  # nothing dispatched: the ✗ line says how to go on
    assert f"✗ {pair.b}: not dispatched: the claim could not be confirmed on origin" in out
    assert "convoy.confirmDispatch false" in out and lines_of(alice_log) == []
    assert pair.bead_on(pair.alice, pair.b)["status"] == "open"
    git("config", "convoy.confirmDispatch", "false", cwd=pair.alice)  # alone, by choice
    assert f"✓ {pair.b}" in ok("sling", pair.b)
    assert lines_of(alice_log) == [pair.b]


# --- every landing path is seen: the work commit names its bead --------------------------


@pytest.fixture
def slung(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """One repository with hooks, bead A dispatched on its work branch by the default
    dispatch (which only creates the branch)."""
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    ok("hooks", "install")
    a = ok("bead", "create", "task A")
    ok("sling", a)
    assert (repo / ".git" / "convoy" / "work-branches").read_text() == \
        f"refs/heads/convoy/{a} {a}\n"
    return repo, a


def commit(repo: Path, name: str, message: str, *extra: str) -> str:
    (repo / name).write_text(f"{message}\n")
    run("add", name, cwd=repo)
    run("commit", "-q", *extra, "-m", message, cwd=repo)
    return git("log", "-1", "--format=%B", cwd=repo)


def test_a_commit_on_a_work_branch_names_its_bead_once(slung: tuple[Path, str]):
    repo, a = slung
    run("switch", "-q", f"convoy/{a}", cwd=repo)
    assert commit(repo, "a.txt", "A: the work").splitlines()[-1] == f"Convoy-Bead: {a}"
    (repo / "a.txt").write_text("amended\n")
    run("commit", "-q", "-a", "--amend", "--no-edit", cwd=repo)
    assert git("log", "-1", "--format=%B", cwd=repo).count("Convoy-Bead:") == 1
    run("switch", "-q", "main", cwd=repo)
    assert "Convoy-Bead" not in commit(repo, "m.txt", "on main: not a bead's work")


def test_a_cherry_picked_landing_is_seen(slung: tuple[Path, str]):
    """No merge, no shared commit: only the trailer tells the feeder A's work landed."""
    repo, a = slung
    run("switch", "-q", f"convoy/{a}", cwd=repo)
    commit(repo, "a.txt", "A: the work")
    run("switch", "-q", "main", cwd=repo)
    proc = run("cherry-pick", f"convoy/{a}", cwd=repo)
    bead = json.loads(ok("bead", "show", a, "--json"))
    assert bead["status"] == "closed" and bead["close_reason"].startswith("landed in "), \
        proc.stderr
    picked = git("rev-parse", "main", cwd=repo)
    assert bead["close_reason"] == f"landed in {picked[:10]}"


def test_picking_or_rebasing_adds_no_trailer_to_someone_elses_commits(slung: tuple[Path, str]):
    repo, a = slung
    run("switch", "-q", "-c", "theirs", "main", cwd=repo)
    commit(repo, "t.txt", "their commit")
    run("switch", "-q", f"convoy/{a}", cwd=repo)
    commit(repo, "a.txt", "A: the work")
    run("cherry-pick", "theirs", cwd=repo)  # their commit, picked onto A's branch
    assert "Convoy-Bead" not in git("log", "-1", "--format=%B", cwd=repo)
    run("switch", "-q", "main", cwd=repo)
    commit(repo, "m.txt", "main moved on")
    run("switch", "-q", f"convoy/{a}", cwd=repo)
    run("rebase", "-q", "main", cwd=repo)
    messages = git("log", "--format=%B%x00", "main..HEAD", cwd=repo).split("\0")
    assert [m.count("Convoy-Bead:") for m in messages if m.strip()] == [0, 1]


# --- landed means on the target's upstream ------------------------------------------------


def test_a_landing_whose_push_failed_is_not_landed_and_its_convoy_stays_open(tmp_path: Path,
                                                                            monkeypatch):
    """The refinery lands A on the local main but the remote refuses the push: the next feed
    says 'landed locally (not pushed)', A stays open, B is not dispatched, the convoy stays
    open; once main reaches the remote, A closes and B is dispatched."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    repo = make_repo(tmp_path / "repo")
    git("remote", "add", "origin", str(remote), cwd=repo)
    git("push", "-q", "-u", "origin", "main", cwd=repo)
    monkeypatch.chdir(repo)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    a = ok("bead", "create", "A")
    b = ok("bead", "create", "B")
    ok("dep", "add", b, a)
    ok("sling", a, b)
    run("switch", "-q", f"convoy/{a}", cwd=repo)
    commit(repo, "a.txt", "A: the work")
    run("switch", "-q", "main", cwd=repo)
    ok("done", a)
    refuse = remote / "hooks" / "pre-receive"
    refuse.write_text("#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n")
    refuse.chmod(0o755)
    res = convoy("refinery", "run")
    assert res.code == 3 and "push_failed" in res.out, res
    out = ok("feed")
    assert f"{a}: landed locally in" in out and "(not pushed): origin/main lacks it" in out
    assert "landed: every tracked bead is closed" not in out
    assert json.loads(ok("bead", "show", a, "--json"))["status"] != "closed"
    assert json.loads(ok("bead", "show", b, "--json"))["status"] == "open"
    feed = json.loads(ok("feed", "--json"))
    assert [u["id"] for u in feed["unpushed"]] == [a]
    refuse.unlink()
    run("push", "-q", "origin", "main", cwd=repo, quiet=True)
    out = ok("feed")
    assert f"{a}: landed in" in out and f"✓ {b}" in out, out
