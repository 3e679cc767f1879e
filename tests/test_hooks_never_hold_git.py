"""A killed refinery leaves nothing running (issue 16, item 8).

A refinery killed during a check takes the check down with it, and the check's temporary
worktree, left registered by a SIGKILL, is reported by `doctor` and pruned by the next run.

Synchronisation is by files and bounded polls, never by sleeping in the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import git, git_convoy, make_repo, ok

pytestmark = pytest.mark.slow

QUIET = {"CONVOY_IN_HOOK": "1"}
STEP = 0.05


def poll(what: str, predicate: Callable[[], object], timeout: float = 20.0) -> object:
    """Wait (bounded) until `predicate()` is truthy; its value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(STEP)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run(*args: str, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(QUIET if quiet else {})}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


# --- 3. a killed refinery takes its check down; stale check worktrees are pruned ---------


CHECK = """\
sleep 300 &
echo "$!" > "{box}/check-child.pid"
echo "$$" > "{box}/check.pid"
i=0
while [ ! -f "{box}/release" ]; do
  i=$((i+1))
  if [ "$i" -gt 600 ]; then exit 3; fi
  sleep 0.05
done
"""


def queued_mr(repo: Path, box: Path) -> str:
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "1")
    check = script(box / "check.sh", CHECK.format(box=box))
    git("config", "convoy.rig.app.check", str(check), cwd=repo)
    bead = ok("bead", "create", "checked work")
    ok("sling", bead)
    git("switch", "-q", f"convoy/{bead}", cwd=repo)
    (repo / "work.txt").write_text("work\n")
    git("add", "work.txt", cwd=repo)
    git("commit", "-q", "-m", "the work", cwd=repo)
    git("switch", "-q", "main", cwd=repo)
    ok("done", bead)
    return bead


def check_worktrees(repo: Path) -> list[str]:
    listing = git("worktree", "list", "--porcelain", cwd=repo)
    paths = [ln.split(" ", 1)[1] for ln in listing.splitlines() if ln.startswith("worktree ")]
    return [p for p in paths if "/convoy/tmp/" in p]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_a_killed_refinery_takes_its_check_down_and_its_worktree_is_pruned(
        tmp_path, monkeypatch, sig):
    repo = make_repo(tmp_path / "repo")
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.chdir(repo)
    bead = queued_mr(repo, box)
    with open(tmp_path / "refinery.out", "w") as out:
        refinery = subprocess.Popen([sys.executable, "-m", "gitconvoy", "refinery", "run"],
                                    cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
    try:
        pid = int(poll("the check to start", lambda: (box / "check.pid").is_file()
                       and (box / "check.pid").read_text().strip(), timeout=60))
        assert alive(pid)
        os.kill(refinery.pid, sig)
        refinery.wait(timeout=60)
    finally:
        if refinery.poll() is None:
            refinery.kill()
            refinery.wait()
    child = int((box / "check-child.pid").read_text())
    poll("the check to die with its refinery", lambda: not alive(pid), timeout=10)
    poll("what the check started to die too", lambda: not alive(child), timeout=10)
    left = check_worktrees(repo)
    doctor = git_convoy("doctor", cwd=repo, check=False).stdout
    if sig == signal.SIGKILL:  # no chance to clean up: the next run does
        assert len(left) == 1, left
        line = next(ln for ln in doctor.splitlines() if left[0] in ln)
        assert "refinery run" in line, doctor
    else:  # a refinery asked to stop cleans up on its way out
        assert left == [], left
        assert "check worktree" not in doctor
    (box / "release").write_text("")
    out = git_convoy("refinery", "run", cwd=repo).stdout
    assert "refinery: 1 of 1 landed" in out, out
    if left:
        assert f"pruned stale check worktree {left[0]}" in out, out
    assert not alive(int((box / "check-child.pid").read_text()))  # not left behind either
    assert check_worktrees(repo) == []
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
    assert not list((repo / ".git" / "convoy" / "tmp").glob("check-*"))
    assert "check worktree" not in git_convoy("doctor", cwd=repo, check=False).stdout
    assert json.loads(ok("bead", "show", bead, "--json"))["status"] == "closed"


def test_a_check_that_times_out_is_killed_with_everything_it_started(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.chdir(repo)
    queued_mr(repo, box)
    script(box / "check.sh", f'sleep 300 &\necho "$!" > "{box}/check-child.pid"\nsleep 300\n')
    git("config", "convoy.rig.app.timeout", "1s", cwd=repo)
    out = git_convoy("refinery", "run", cwd=repo).stdout
    assert "check timed out after 1s" in out, out
    assert not alive(int((box / "check-child.pid").read_text()))
    assert check_worktrees(repo) == []
