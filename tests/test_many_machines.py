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
from conftest import git, make_repo, ok

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
    assert pair.bob_log.read_text().split() == [pair.b]
    assert f"✓ {pair.b}" in proc.stderr


def test_a_plain_fetch_of_state_changes_feeds(pair: Pair):
    os.chdir(pair.alice)
    ok("bead", "close", pair.a, "--reason", "done by hand")
    run("push", "-q", "origin", "convoy/state", cwd=pair.alice, quiet=True)
    proc = run("fetch", "-q", cwd=pair.bob)
    assert pair.bead_on(pair.bob, pair.b)["status"] == "hooked", proc.stderr
    assert pair.bob_log.read_text().split() == [pair.b]
