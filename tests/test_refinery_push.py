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


def test_a_push_failed_mr_is_pushed_again_by_the_next_run_after_its_back_off(state_repo):
    """Issue 10: nothing re-pushed by itself. Now the next `refinery run` past the back-off
    pushes again and lands; before it, the run says when."""
    add_rig()
    bare, counter = _remote(state_repo, rejects=100)
    git("config", "convoy.refinery.pushAttempts", "1", cwd=state_repo)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Pushed later")
    assert git_convoy("refinery", "run", cwd=state_repo, check=False).returncode == 3
    [mr] = mrs().values()
    out = ok("refinery", "run")  # the default back-off (30 s) has not passed
    assert f"waiting: {mr.id} ({bead}): push_failed, pushed again in " in out
    assert "(try 1 of 8)" in out and mrs()[mr.id].status == "push_failed"
    counter.write_text("0")  # the remote takes pushes again
    git("config", "convoy.refinery.repushBackoff", "0", cwd=state_repo)
    out = ok("refinery", "run")
    assert f"notice: {mr.id} ({bead}): push_failed, pushing again (try 1 of 8)" in out
    assert f"{mr.id} ({bead}): already" in out and "refinery: 1 of 1 landed" in out
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "main", cwd=state_repo)
    assert bead_json(bead)["status"] == "closed"


def test_automatic_re_pushes_are_bounded_and_the_give_up_is_said_once(state_repo):
    add_rig()
    bare, counter = _remote(state_repo, rejects=100)
    for key, value in (("pushAttempts", "1"), ("repushBackoff", "0"), ("maxRepush", "2")):
        git("config", f"convoy.refinery.{key}", value, cwd=state_repo)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    _queued(state_repo, "Never pushed")
    outs = [git_convoy("refinery", "run", cwd=state_repo, check=False) for _ in range(5)]
    assert [p.returncode for p in outs] == [3, 3, 3, 0, 0]
    assert ["pushing again" in p.stdout for p in outs] == [False, True, True, False, False]
    given_up = [p.stdout.count("escalated:") for p in outs]
    assert given_up == [0, 0, 0, 1, 0], [p.stdout for p in outs]
    [mr] = mrs().values()
    assert mr.status == "push_failed" and "automatic tries spent" in outs[4].stdout
    counter.write_text("0")
    ok("refinery", "retry", mr.id)  # by hand it always goes
    assert mrs()[mr.id].status == "merged"


def test_feed_by_hand_pushes_a_landing_again_once_its_back_off_is_over(state_repo):
    add_rig()
    bare, counter = _remote(state_repo, rejects=100)
    git("config", "convoy.refinery.pushAttempts", "1", cwd=state_repo)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead = _queued(state_repo, "Fed later")
    assert git_convoy("refinery", "run", cwd=state_repo, check=False).returncode == 3
    out = ok("feed")
    assert "pushed again" not in out and "(not pushed)" in out  # still backing off
    counter.write_text("0")
    git("config", "convoy.refinery.repushBackoff", "0", cwd=state_repo)
    out = ok("feed")
    [mr] = mrs().values()
    assert f"refinery: pushed again: {mr.id} ({bead}): already" in out, out
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "main", cwd=state_repo)
    assert bead_json(bead)["status"] == "closed"
