"""A relative dispatch or check command means the same file from every worktree (issue 11).

The README's rig runs `./start-worker.sh`: a script at the top of the user's checkout (here an
untracked one, as a local script is). A hook fires in whichever worktree git ran in, and a
user types `git convoy …` in any of them; the dispatch command must still be the one at the
main worktree's top level, not "not found" because a linked worktree lacks it — nor a file of
that name on a branch the state chose. A check runs in a throw-away worktree of the commit it
checks, so a relative check is the file in the checked tree, whichever worktree asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import eventually, git, git_convoy, ok
from test_refinery_helpers import add_rig, hand_dispatch, new_task, worker_commit

from gitconvoy.git import localconfig
from gitconvoy.state.store import Store

QUIET = {"CONVOY_IN_HOOK": "1"}


def start_worker_script(top: Path, seen: Path, says: str = "trusted") -> None:
    """The user's own `./start-worker.sh`: records which bead it started, where, and which
    copy of the script ran."""
    script = top / "start-worker.sh"
    script.write_text(f'#!/bin/sh\necho "$CONVOY_BEAD $(pwd -P) {says}" >> "{seen}"\n')
    script.chmod(0o755)


def started(seen: Path) -> list[list[str]]:
    return [line.split() for line in seen.read_text().splitlines()] if seen.exists() else []


def bead(bead_id: str, cwd: Path) -> dict:
    return json.loads(git_convoy("bead", "show", bead_id, "--json", cwd=cwd).stdout)


@pytest.fixture
def alice(state_repo: Path, tmp_path: Path) -> Path:
    """A repository whose rig runs `./start-worker.sh`, as the README sets it up."""
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    git("config", "convoy.rig.app.dispatch", "./start-worker.sh", cwd=state_repo)
    start_worker_script(state_repo, tmp_path / "started.log")
    return state_repo


def linked_worktree(repo: Path, name: str, *args: str) -> Path:
    path = repo.parent / name
    git("worktree", "add", "-q", str(path), *args, cwd=repo, env=QUIET)
    return path


def test_sling_in_a_linked_worktree_runs_the_main_worktrees_script(alice, tmp_path):
    wt = linked_worktree(alice, "side", "-b", "side")
    t1 = ok("bead", "create", "one")

    proc = git_convoy("sling", t1, cwd=wt, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert started(tmp_path / "started.log") == [[t1, str(alice.resolve()), "trusted"]]
    assert bead(t1, wt)["status"] == "hooked"


@pytest.mark.slow
def test_a_hook_in_a_linked_worktree_dispatches_with_the_relative_command(alice, tmp_path):
    """The user works on `dev` in the main worktree and merges on `main` in a linked one:
    the post-merge hook there closes A and starts B's dispatch, detached."""
    a = ok("bead", "create", "task A")
    b = ok("bead", "create", "task B")
    ok("dep", "add", b, a, "--type", "blocks")
    ok("sling", a, b)
    ok("hooks", "install")
    git("switch", "-q", "-c", "dev", cwd=alice, env=QUIET)
    worker_commit(alice, f"convoy/{a}", {"a.txt": "A's work\n"})
    release = linked_worktree(alice, "release", "main")

    git("merge", "-q", "--no-ff", "-m", "merge A", f"convoy/{a}", cwd=release)

    assert bead(a, release)["status"] == "closed"
    eventually(f"{b}'s dispatch command", lambda: len(started(tmp_path / "started.log")) == 2)
    assert started(tmp_path / "started.log")[-1] == [b, str(alice.resolve()), "trusted"]
    git_convoy("feed", cwd=release)  # reads the detached run's exit status: it succeeded
    assert bead(b, release)["status"] == "hooked"
    assert "last_error" not in bead(b, release)["dispatch"]


def test_a_rig_worktree_runs_in_it_the_script_of_the_main_worktree(alice, tmp_path):
    """`worktree = true` keeps running the command in the bead's own worktree, but the
    relative program is the user's, never a file of that name on the branch the state aimed
    the bead at (a state writer names any branch as a target)."""
    git("switch", "-q", "-c", "elsewhere", cwd=alice, env=QUIET)
    start_worker_script(alice, tmp_path / "started.log", says="hostile")
    git("add", "start-worker.sh", cwd=alice)
    git("commit", "-q", "-m", "a script of the state's choosing", cwd=alice, env=QUIET)
    git("switch", "-q", "main", cwd=alice, env=QUIET)
    start_worker_script(alice, tmp_path / "started.log")  # untracked on main: the user's
    ok("rig", "update", "app", "--target", "elsewhere")
    git("config", "convoy.rig.app.worktree", "true", cwd=alice)
    wt = linked_worktree(alice, "side", "-b", "side")
    t1 = ok("bead", "create", "one")

    git_convoy("sling", t1, cwd=wt)

    own = alice / ".git" / "convoy" / "worktrees" / t1
    assert started(tmp_path / "started.log") == [[t1, str(own.resolve()), "trusted"]]


def commit_work_with_its_ci(repo: Path, task: str) -> Path:
    """A worker's commit that carries the tree's own `ci.sh`; the worker's worktree."""
    branch = hand_dispatch(repo, task)
    worker_commit(repo, branch, {"ci.sh": "#!/bin/sh\ntest -f ci.sh\n", f"{task}.txt": "work\n"})
    wt = repo.parent / ("wt-" + branch.replace("/", "-"))
    (wt / "ci.sh").chmod(0o755)
    git("commit", "-q", "-a", "-m", "ci.sh is executable", cwd=wt)
    return wt


def test_a_relative_check_is_the_checked_trees_own_from_any_worktree(state_repo):
    """`./ci.sh` is the file in the commit being checked, for `done` with onDone in a
    worker's linked worktree exactly as for `refinery run` in the main worktree."""
    add_rig()
    git("config", "convoy.rig.app.check", "./ci.sh", cwd=state_repo)
    by_worker, by_lander = new_task("landed by its worker"), new_task("landed by the lander")
    worker_wt = commit_work_with_its_ci(state_repo, by_worker)
    commit_work_with_its_ci(state_repo, by_lander)

    git("config", "convoy.refinery.onDone", "true", cwd=state_repo)
    git_convoy("done", by_worker, cwd=worker_wt)  # lands at once, checked from here
    assert bead(by_worker, worker_wt)["status"] == "closed"
    git("config", "convoy.refinery.onDone", "false", cwd=state_repo)
    git_convoy("done", by_lander, cwd=state_repo)
    git_convoy("refinery", "run", cwd=state_repo)

    assert bead(by_lander, state_repo)["status"] == "closed"


def test_a_bare_repository_runs_its_commands_in_its_own_folder(tmp_path):
    """Server-side hooks: no worktree at all, so the repository's folder, as before."""
    bare = tmp_path / "server.git"
    git("init", "-q", "--bare", str(bare))
    assert localconfig.command_dir(Store.open(str(bare))) == str(bare)
