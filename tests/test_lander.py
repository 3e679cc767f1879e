"""The refinery runs without a person (issue 10, item 4): `done` lands at once when the
local config says so, and `refinery watch` keeps landing until it is stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import git, git_convoy, is_ancestor, make_repo, ok
from test_refinery_helpers import add_rig, bead_json, hand_dispatch, mrs, worker_commit

pytestmark = pytest.mark.slow


def queued_work(repo: Path, title: str) -> tuple[str, str]:
    bead = ok("bead", "create", title)
    branch = hand_dispatch(repo, bead)
    tip = worker_commit(repo, branch, {f"{bead}.txt": f"{title}\n"})
    return bead, tip


def landed_on_main(repo: Path, tip: str) -> bool:
    return is_ancestor(repo, tip, "main")


def test_done_lands_at_once_with_on_done(state_repo: Path):
    add_rig()
    git("config", "convoy.refinery.onDone", "true", cwd=state_repo)
    bead, tip = queued_work(state_repo, "Lands on done")
    out = ok("done", bead)
    assert "landing mr-" in out and "now (convoy.refinery.onDone)" in out, out
    assert "refinery: 1 of 1 landed" in out, out
    assert bead_json(bead)["status"] == "closed"
    assert landed_on_main(state_repo, tip)


def test_done_without_on_done_only_queues(state_repo: Path):
    add_rig()
    bead, tip = queued_work(state_repo, "Queued only")
    out = ok("done", bead)
    assert "land it with 'git convoy refinery run'" in out
    assert not landed_on_main(state_repo, tip)
    assert [m.status for m in mrs().values()] == ["queued"]


def start_watch(repo: Path, *args: str) -> subprocess.Popen[str]:
    """The entry point itself (not through `git`), so its pid is the lander's and signals
    reach it as they would from a terminal or a service manager."""
    return subprocess.Popen(["git-convoy", "refinery", "watch", "--interval", "0.05", *args],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, what: str, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_watch_lands_what_done_queues_until_stopped(state_repo: Path):
    add_rig()
    lock = state_repo / ".git" / "convoy" / "refinery.lock"
    watcher = start_watch(state_repo)
    try:
        wait_for(lambda: lock.exists() and lock.read_text().strip() == str(watcher.pid),
                 "the watcher to take the lock")
        second = subprocess.run(["git", "convoy", "refinery", "watch"], cwd=state_repo,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip() == (
            f"error: another lander (pid {watcher.pid}) is watching this repository ({lock}): "
            "one 'refinery watch' per repository")
        first, tip1 = queued_work(state_repo, "First")
        ok("done", first)
        wait_for(lambda: landed_on_main(state_repo, tip1), "the first MR to land")
        second_bead, tip2 = queued_work(state_repo, "Second")
        ok("done", second_bead)
        wait_for(lambda: landed_on_main(state_repo, tip2), "the second MR to land")
        wait_for(lambda: bead_json(second_bead)["status"] == "closed", "the bead to close")
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "stopping after the landing in progress" in err and "stopped after" in err
    assert out.count("landed") >= 2, out


def test_a_killed_watcher_leaves_no_stuck_lock(state_repo: Path):
    add_rig()
    lock = state_repo / ".git" / "convoy" / "refinery.lock"
    first = start_watch(state_repo)
    wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid), "the lock")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    proc = subprocess.run(["git", "convoy", "refinery", "watch", "--rounds", "1"],
                          cwd=state_repo, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "stopped after 1 round(s)" in proc.stderr, proc


def test_a_bare_remote_with_server_hooks_lands_what_clients_queue(tmp_path: Path,
                                                                   monkeypatch):
    """`hooks install --server` on the bare repository: a client's `done` + `sync` is enough;
    the remote lands the MR (its check run in a temporary worktree of the bare repository)."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    alice = make_repo(tmp_path / "alice")
    git("remote", "add", "origin", str(bare), cwd=alice)
    monkeypatch.chdir(alice)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    git("push", "-q", "-u", "origin", "main", "convoy/state", cwd=alice)
    ran = tmp_path / "check-ran"
    check = tmp_path / "check.sh"
    check.write_text(f'#!/bin/sh\ntest -f "$CONVOY_BEAD.txt" && pwd > {ran}\n')
    check.chmod(0o755)
    git("config", "convoy.rig.app.check", str(check), cwd=bare)
    out = git_convoy("hooks", "install", "--server", cwd=bare).stdout
    assert f"created {bare / 'hooks' / 'post-receive'}" in out
    assert "--server is for the bare" in git_convoy("hooks", "install", "--server", cwd=alice,
                                                     check=False).stderr
    bead, tip = queued_work(alice, "Lands on the remote")
    git("push", "-q", "origin", f"convoy/{bead}", cwd=alice)
    ok("done", bead)
    git_convoy("sync", cwd=alice)  # the push of the state is what the remote reacts to
    wait_for(lambda: is_ancestor(bare, tip, "main"), "the remote to land the MR")
    assert ran.read_text().strip() != str(bare)  # the check ran in a worktree of its own
    assert git("worktree", "list", "--porcelain", cwd=bare).count("worktree ") == 1
    git_convoy("sync", cwd=alice)
    assert bead_json(bead)["status"] == "closed"
    log = (bare / "convoy" / "refinery.log").read_text()
    assert "refinery: 1 of 1 landed" in log, log


def test_the_server_lander_leaves_dispatch_to_the_clients(tmp_path: Path, monkeypatch):
    """A landing on the bare remote makes a dependent ready; the server has no workers (no
    dispatch command), so it must not hand the dependent out itself — it did, to nobody:
    `branch convoy/<b> ready (no dispatch command configured)`, and no client could claim it.
    The clients' feeders and `claim` hand it out."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    alice = make_repo(tmp_path / "alice")
    git("remote", "add", "origin", str(bare), cwd=alice)
    monkeypatch.chdir(alice)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    first = ok("bead", "create", "First")
    then = ok("bead", "create", "Then")
    ok("dep", "add", then, first)
    ok("create", "Pair", first, then)
    git("push", "-q", "-u", "origin", "main", "convoy/state", cwd=alice)
    git_convoy("hooks", "install", "--server", cwd=bare)
    assert json.loads(ok("claim", "--json", "--as", "alice"))["bead"] == first
    worker_commit(alice, f"convoy/{first}", {f"{first}.txt": "first\n"})
    git("push", "-q", "origin", f"convoy/{first}", cwd=alice)
    ok("done", first)
    git_convoy("sync", cwd=alice)
    log = bare / "convoy" / "refinery.log"
    wait_for(lambda: log.exists() and "refinery: 1 of 1 landed" in log.read_text(),
             "the remote to land the first bead")
    assert "no dispatch command configured" not in log.read_text()
    git_convoy("sync", cwd=alice)
    assert bead_json(first)["status"] == "closed"
    assert bead_json(then)["status"] == "open"
    assert git("branch", "--list", f"convoy/{then}", cwd=bare) == ""
    assert json.loads(ok("claim", "--json", "--as", "alice"))["bead"] == then


def test_the_server_lander_lands_a_ready_epic_through_the_review_gate(tmp_path: Path,
                                                                      monkeypatch):
    """Without dispatching, the server's feed still sees an epic whose tasks are all in its
    integration branch, and the gate (an approving reviewer on the server) lands it."""
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    alice = make_repo(tmp_path / "alice")
    git("remote", "add", "origin", str(bare), cwd=alice)
    monkeypatch.chdir(alice)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    epic = ok("bead", "create", "Epic", "--type", "epic")
    task = ok("bead", "create", "Task", "--parent", epic)
    ok("integration", "create", epic, "--name", "integration/e")
    ok("create", "Epic work", epic, task)
    git("push", "-q", "-u", "origin", "main", "integration/e", "convoy/state", cwd=alice)
    for key, value in (("convoy.review", "true"), ("convoy.review.command", "true")):
        git("config", key, value, cwd=bare)
    git_convoy("hooks", "install", "--server", cwd=bare)
    assert json.loads(ok("claim", "--json", "--as", "alice"))["bead"] == task
    tip = worker_commit(alice, f"convoy/{task}", {"t.txt": "task\n"})
    git("push", "-q", "origin", f"convoy/{task}", cwd=alice)
    ok("done", task)
    git_convoy("sync", cwd=alice)
    wait_for(lambda: is_ancestor(bare, tip, "main"), "the remote to land the epic on main")
    git_convoy("sync", cwd=alice)
    assert bead_json(epic)["status"] == "closed"
