"""Landing on a target with an upstream: push through git, retry on rejection, keep
everything locally and report push_failed with the recovery command."""

from __future__ import annotations

import json

from conftest import dulwich_remote, git, git_convoy, ok, stuck
from test_refinery_helpers import (
    add_rig,
    bead_json,
    hand_dispatch,
    mrs,
    new_task,
    set_check,
    status_json,
    worker_commit,
)


def _remote(repo, rejects: int = 0):
    """A bare remote whose pre-receive hook rejects the next `rejects` pushes."""
    bare = repo.parent / "remote.git"
    git("init", "-q", "--bare", str(bare))
    counter = repo.parent / "rejects"
    counter.write_text(str(rejects))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"""#!/bin/sh
n=$(cat "{counter}")
if [ "$n" -gt 0 ]; then
  echo $((n - 1)) > "{counter}"
  echo "policy: not now" >&2
  exit 1
fi
""")
    hook.chmod(0o755)
    git("remote", "add", "origin", str(bare), cwd=repo)
    counter.write_text("0")
    git("push", "-q", "-u", "origin", "main", cwd=repo)
    counter.write_text(str(rejects))
    return bare, counter


def _queued(repo, title):
    bead = new_task(title)
    branch = hand_dispatch(repo, bead)
    worker_commit(repo, branch, {f"{bead}.txt": title + "\n"})
    ok("done", bead)
    return bead


def test_rejected_push_is_retried_and_lands(state_repo):
    add_rig()
    bare, counter = _remote(state_repo, rejects=1)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Pushed")
    out = ok("refinery", "run")
    assert "landed" in out
    assert counter.read_text().strip() == "0"
    main = git("rev-parse", "main", cwd=state_repo)
    assert git("rev-parse", "main", cwd=bare) == main
    assert bead_json(bead)["status"] == "closed"


def test_push_failed_keeps_everything_and_the_recovery_command_lands_it(state_repo):
    add_rig()
    bare, counter = _remote(state_repo, rejects=100)
    git("config", "convoy.refinery.pushAttempts", "2", cwd=state_repo)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Stuck")
    remote_before = git("rev-parse", "main", cwd=bare)
    proc = git_convoy("refinery", "run", cwd=state_repo, check=False)
    assert proc.returncode == 3 and "push_failed" in proc.stdout, proc
    [mr] = mrs().values()
    assert mr.status == "push_failed"
    assert mr.recovery == f"git convoy refinery retry {mr.id} (or by hand: git push origin " \
        "main:main)"
    assert mr.reason.startswith("push to origin main rejected: ")
    assert git("rev-parse", "main", cwd=bare) == remote_before
    kept = git("rev-parse", "main", cwd=state_repo)
    assert git("log", "-1", "--format=%s", kept, cwd=state_repo).startswith("Merge convoy/")
    assert bead_json(bead)["status"] == "in_progress"
    anomalies = status_json()["anomalies"]
    assert [(a["kind"], a["command"]) for a in anomalies] == [("push_failed", mr.recovery)]
    counter.write_text("0")
    proc = git_convoy("refinery", "retry", mr.id, "--json", cwd=state_repo)
    steps = json.loads(proc.stdout)["steps"]
    assert [s["outcome"] for s in steps] == ["already"]
    assert git("rev-parse", "main", cwd=bare) == kept == git("rev-parse", "main",
                                                              cwd=state_repo)
    assert bead_json(bead)["status"] == "closed"
    assert [m.status for m in mrs().values()] == ["merged"]


def test_remote_ahead_lands_on_the_remote_tip(state_repo, tmp_path):
    add_rig()
    bare, _ = _remote(state_repo)
    other = tmp_path / "other"
    git("clone", "-q", str(bare), str(other))
    (other / "theirs.txt").write_text("from another clone\n")
    git("add", "theirs.txt", cwd=other)
    git("commit", "-q", "-m", "theirs", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Ours")
    ok("refinery", "run")
    main = git("rev-parse", "main", cwd=state_repo)
    assert git("rev-parse", "main", cwd=bare) == main
    assert git("show", "main:theirs.txt", cwd=state_repo) == "from another clone"
    assert git("show", f"main:{bead}.txt", cwd=state_repo) == "Ours"


def test_remote_moving_during_the_check_is_merged_again(state_repo, tmp_path):
    """The push loses the race (non-fast-forward): fetch, merge on the new tip, check, push."""
    add_rig()
    bare, _ = _remote(state_repo)
    other = tmp_path / "other"
    git("clone", "-q", str(bare), str(other))
    flag = tmp_path / "raced"
    runs = tmp_path / "runs"
    set_check(state_repo, f"""
echo run >> "{runs}"
if [ ! -e "{flag}" ]; then
  touch "{flag}"
  cd "{other}" && echo race > race.txt && git add race.txt && git commit -q -m race \
    && git push -q origin main
fi
""")
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Contended")
    out = ok("refinery", "run")
    assert "landed" in out
    assert runs.read_text().count("run") == 2
    main = git("rev-parse", "main", cwd=state_repo)
    assert git("rev-parse", "main", cwd=bare) == main
    assert git("show", "main:race.txt", cwd=state_repo) == "race"
    assert bead_json(bead)["status"] == "closed"


def test_landing_through_an_in_process_dulwich_remote(state_repo, tmp_path):
    add_rig()
    bare = tmp_path / "served.git"
    git("init", "-q", "--bare", str(bare))
    with dulwich_remote(bare) as url:
        git("remote", "add", "origin", url, cwd=state_repo)
        git("push", "-q", "-u", "origin", "main", cwd=state_repo)
        other = tmp_path / "other"
        git("clone", "-q", url, str(other))
        (other / "ahead.txt").write_text("remote moved first\n")
        git("add", "ahead.txt", cwd=other)
        git("commit", "-q", "-m", "ahead", cwd=other)
        git("push", "-q", "origin", "main", cwd=other)
        git("checkout", "-q", "-b", "mine", cwd=state_repo)
        bead = _queued(state_repo, "Served")
        out = ok("refinery", "run")
        assert "landed" in out
        main = git("rev-parse", "main", cwd=state_repo)
        assert git("rev-parse", "main", cwd=bare) == main
        assert git("show", "main:ahead.txt", cwd=state_repo) == "remote moved first"
        assert bead_json(bead)["status"] == "closed"


def test_diverged_target_is_reported_with_the_steps_that_recover_it(state_repo, tmp_path):
    add_rig()
    bare, _ = _remote(state_repo)
    other = tmp_path / "other"
    git("clone", "-q", str(bare), str(other))
    (other / "theirs.txt").write_text("t\n")
    git("add", "theirs.txt", cwd=other)
    git("commit", "-q", "-m", "theirs", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    (state_repo / "mine.txt").write_text("m\n")
    git("add", "mine.txt", cwd=state_repo)
    git("commit", "-q", "-m", "local only", cwd=state_repo)
    bead = _queued(state_repo, "Between")
    main = git("rev-parse", "main", cwd=state_repo)
    stuck("refinery", "run")
    [mr] = mrs().values()
    assert mr.status == "push_failed" and "have diverged" in mr.reason
    assert mr.recovery == (f"git pull --no-rebase origin main (on main), then git convoy "
                           f"refinery retry {mr.id}")
    assert git("rev-parse", "main", cwd=state_repo) == main
    git("pull", "-q", "--no-rebase", "--no-edit", "origin", "main", cwd=state_repo)
    ok("refinery", "retry", mr.id)
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "main", cwd=state_repo)
    assert bead_json(bead)["status"] == "closed"
