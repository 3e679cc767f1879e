"""Hooks never hold git, and a killed refinery leaves nothing running (issue 16, items 7 and 8).

The stories, each on a real repository with the real hooks installed and the real `git`:
- a `git merge` / `git commit` that lands work makes the hooks dispatch what it unblocked;
  the rig's dispatch commands block until the test releases them, and git must return
  anyway: hooks start dispatch commands detached, with their output in a log;
- a detached dispatch command that fails shows in `doctor` and `status` (log and exit
  status), and the next feeder step hands the bead back like a failed foreground dispatch;
- a hook stops after its time budget and says how to finish;
- a refinery killed during a check takes the check down with it, and the check's temporary
  worktree, left registered by a SIGKILL, is reported by `doctor` and pruned by the next run.

Synchronisation is by files and bounded polls, never by sleeping in the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import eventually, git, git_convoy, make_repo, ok
from test_refinery_helpers import add_rig, bead_json, set_check, worker_commit

pytestmark = pytest.mark.slow

QUIET = {"CONVOY_IN_HOOK": "1"}


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


@dataclass
class World:
    repo: Path
    box: Path  # where the dispatch and check scripts leave their marks
    convoy: str
    a: str
    b: str
    c: str

    def bead(self, bead_id: str) -> dict:
        return json.loads(git_convoy("bead", "show", bead_id, "--json", cwd=self.repo).stdout)

    def use_dispatch(self, body: str) -> None:
        command = script(self.box / "dispatch.sh", body)
        git("config", "convoy.rig.app.dispatch", str(command), cwd=self.repo)

    def logs(self, bead_id: str) -> list[Path]:
        return sorted((self.repo / ".git" / "convoy" / "logs").glob(f"dispatch-{bead_id}-*"
                                                                   ".log"))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Task A blocks B and C; A is dispatched (branch only), hooks are installed."""
    repo = make_repo(tmp_path / "repo")
    box = tmp_path / "box"
    box.mkdir()
    monkeypatch.chdir(repo)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    a, b, c = (ok("bead", "create", f"task {n}") for n in "ABC")
    ok("dep", "add", b, a, "--type", "blocks")
    ok("dep", "add", c, a, "--type", "blocks")
    out = ok("sling", a, b, c)
    convoy = out.splitlines()[0].split()[1]  # "convoy <id> tracks …"
    ok("hooks", "install")
    # B and C are both dispatched by one hook: not cut short by a loaded test machine (the
    # budget has a test of its own)
    git("config", "convoy.hookBudget", "60", cwd=repo)
    world = World(repo, box, convoy, a, b, c)
    assert world.bead(a)["status"] == "hooked"
    return world


def work_on_a(w: World) -> None:
    run("switch", "-q", f"convoy/{w.a}", cwd=w.repo, quiet=True)
    (w.repo / "feature.txt").write_text("A's work\n")
    run("add", "feature.txt", cwd=w.repo, quiet=True)
    run("commit", "-q", "-m", "A: the work", cwd=w.repo, quiet=True)
    run("switch", "-q", "main", cwd=w.repo, quiet=True)


def land_a(w: World, how: str) -> subprocess.CompletedProcess[str]:
    """A's work reaches main through a real git command, hooks awake."""
    if how == "merge":
        return run("merge", "--no-ff", "-m", "merge A", f"convoy/{w.a}", cwd=w.repo)
    run("merge", "-q", "--squash", f"convoy/{w.a}", cwd=w.repo, quiet=True)
    return run("commit", "-q", "-m", f"Task A\n\nConvoy-Bead: {w.a}", cwd=w.repo)


BLOCKING = """\
echo "$$" > "{box}/$CONVOY_BEAD.pid"
echo "dispatch output for $CONVOY_BEAD"
echo "dispatch stderr for $CONVOY_BEAD" >&2
i=0
while [ ! -f "{box}/release" ]; do
  i=$((i+1))
  if [ "$i" -gt 200 ]; then echo "never released"; exit 3; fi
  sleep 0.05
done
echo "released $CONVOY_BEAD"
"""


# --- 1. hooks hold git hostage ---------------------------------------------------------


@pytest.mark.parametrize("how", ["merge", "commit"])
def test_git_returns_while_the_dispatch_commands_its_hook_started_still_run(world, how):
    world.use_dispatch(BLOCKING.format(box=world.box))
    work_on_a(world)
    proc = land_a(world, how)
    # git is back; the two dispatch commands it started wait for a file nobody made yet
    assert not (world.box / "release").exists()
    for bead in (world.b, world.c):
        pid = int(eventually(f"{bead}'s dispatch to start",
                       lambda b=bead: (world.box / f"{b}.pid").is_file()
                       and (world.box / f"{b}.pid").read_text().strip()))
        assert alive(pid), f"the dispatch of {bead} ended before git returned: {proc.stderr}"
    assert f"{world.a}: landed in" in proc.stderr
    for bead in (world.b, world.c):
        assert world.bead(bead)["status"] == "hooked"
        line = next(ln for ln in proc.stderr.splitlines() if f"✓ {bead}:" in ln)
        assert "started" in line and "log" in line, line
    (world.box / "release").write_text("")
    for bead in (world.b, world.c):
        log = eventually(f"{bead}'s dispatch log", lambda b=bead: world.logs(b))[0]
        text = eventually(f"{bead}'s dispatch to finish",
                    lambda lg=log: "# exit 0" in lg.read_text() and lg.read_text())
        assert f"dispatch output for {bead}" in text
        assert f"dispatch stderr for {bead}" in text
        assert f"released {bead}" in text  # it was still waiting when the file appeared
    doctor = git_convoy("doctor", cwd=world.repo, check=False).stdout
    assert "ok    dispatch:" in doctor, doctor


# --- 2. doctor and status show a detached dispatch that failed --------------------------


def dispatch_check(repo: Path) -> dict:
    checks = json.loads(git_convoy("doctor", "--json", cwd=repo, check=False).stdout)["checks"]
    return next((c for c in checks if c["name"] == "dispatch"), {})


def test_a_failed_detached_dispatch_shows_in_doctor_and_status_and_is_handed_back(world):
    world.use_dispatch('echo "boom for $CONVOY_BEAD" >&2\n'
                       '[ "$CONVOY_BEAD" = "{b}" ] && exit 3\nexit 0\n'.replace("{b}", world.b))
    work_on_a(world)
    land_a(world, "merge")
    found = eventually("doctor to report the failed dispatch",
                 lambda: (c := dispatch_check(world.repo)).get("level") == "warn" and c)
    message = found["message"]
    [log] = world.logs(world.b)
    assert world.b in message and "exited 3" in message and str(log) in message, message
    assert world.c not in message  # C's command exited 0
    assert f"boom for {world.b}" in log.read_text()
    # still hooked until a feeder step runs: status says why and where to look
    status = git_convoy("status", world.convoy, cwd=world.repo).stdout
    row = next(ln for ln in status.splitlines() if "task B" in ln)
    assert "exited 3" in row and str(log) in row, status
    # the next feeder step hands the bead back, as for a failed foreground dispatch
    git_convoy("feed", cwd=world.repo)
    bead = world.bead(world.b)
    assert bead["status"] == "open", bead
    assert "exited 3" in bead["dispatch"]["last_error"]
    assert str(log) in bead["dispatch"]["last_error"]
    assert git("rev-parse", "--verify", "-q", f"refs/heads/convoy/{world.b}", cwd=world.repo,
               check=False) == ""  # the fresh branch nobody committed to went away
    assert world.bead(world.c)["status"] == "hooked"
    status = git_convoy("status", world.convoy, cwd=world.repo).stdout
    row = next(ln for ln in status.splitlines() if "task B" in ln)
    assert "last dispatch failed" in row and "exited 3" in row, status
    git_convoy("doctor", "--clear-errors", cwd=world.repo, check=False)
    assert dispatch_check(world.repo)["level"] == "ok"


def test_dispatch_by_hand_still_runs_in_the_foreground(world):
    """`feed`, `sling` and `launch` wait for the command and report its failure at once."""
    world.use_dispatch('echo "no capacity upstream" >&2\nexit 4\n')
    d = ok("bead", "create", "task D")
    proc = git_convoy("sling", d, cwd=world.repo, env=QUIET, check=False)
    assert proc.returncode == 1
    assert f"✗ {d}: dispatch command exited 4: no capacity upstream" in proc.stdout
    assert world.bead(d)["status"] == "open"
    assert world.logs(d) == []


# --- the time budget ---------------------------------------------------------------------


def test_a_hook_stops_after_its_time_budget_and_says_how_to_finish(world):
    git("config", "convoy.hookBudget", "0", cwd=world.repo)
    work_on_a(world)
    proc = land_a(world, "merge")
    assert world.bead(world.a)["status"] == "closed"  # landing is always recorded
    assert {world.bead(b)["status"] for b in (world.b, world.c)} == {"open"}
    notes = [ln for ln in proc.stderr.splitlines() if "git convoy feed" in ln]
    assert len(notes) == 1 and "budget" in notes[0], proc.stderr
    assert (world.repo / ".git" / "convoy" / "feed-due").exists()
    git("config", "--unset", "convoy.hookBudget", cwd=world.repo)
    proc = run("checkout", "-q", "-b", "elsewhere", cwd=world.repo)  # the next hook continues
    assert {world.bead(b)["status"] for b in (world.b, world.c)} == {"hooked"}, proc.stderr
    assert not (world.repo / ".git" / "convoy" / "feed-due").exists()


# --- reviews ---------------------------------------------------------------------------


def test_a_hook_leaves_the_review_gate_and_its_commands_to_feed(state_repo, tmp_path):
    """The review of an integration branch runs the check command: not inside a hook."""
    repo = state_repo
    add_rig()
    git("config", "convoy.review", "true", cwd=repo)
    ran = tmp_path / "check-ran"
    set_check(repo, f'echo ran >> "{ran}"\n')
    epic = ok("bead", "create", "--type", "epic", "Auth overhaul")
    ok("integration", "create", epic)
    branch = bead_json(epic)["integration_branch"]
    task = ok("bead", "create", "Part A", "--parent", epic)
    ok("create", "Auth", epic, task)
    ok("feed")
    worker_commit(repo, bead_json(task)["branch"], {"a.txt": "a\n"})
    ok("hooks", "install")
    run("switch", "-q", branch, cwd=repo, quiet=True)
    proc = run("merge", "--no-ff", "-m", "land A", f"convoy/{task}", cwd=repo)
    assert bead_json(task)["status"] == "closed", proc.stderr
    assert f"epic {epic}: its review runs commands, which a hook does not wait for: run " \
           "'git convoy feed'" in proc.stderr
    assert not ran.exists()  # no check ran inside git merge
    out = ok("feed")
    assert f"review rv-{epic}-" in out and ran.exists(), out


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
        pid = int(eventually("the check to start", lambda: (box / "check.pid").is_file()
                       and (box / "check.pid").read_text().strip(), timeout=60))
        assert alive(pid)
        os.kill(refinery.pid, sig)
        refinery.wait(timeout=60)
    finally:
        if refinery.poll() is None:
            refinery.kill()
            refinery.wait()
    child = int((box / "check-child.pid").read_text())
    eventually("the check to die with its refinery", lambda: not alive(pid), timeout=10)
    eventually("what the check started to die too", lambda: not alive(child), timeout=10)
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
