"""`git convoy refinery run`: strategies, checks, compare-and-swap, the user's checkout."""

from __future__ import annotations

from conftest import convoy, git, ok, workdir_state
from test_refinery_helpers import (
    add_rig,
    bead_json,
    file_at,
    hand_dispatch,
    mrs,
    new_task,
    set_check,
    status_json,
    worker_commit,
)

from gitconvoy.land.refinery import queue_order
from gitconvoy.state.model import MergeRequest


def _queued(repo, title="Feature", files=None, rig="app"):
    bead = new_task(title)
    branch = hand_dispatch(repo, bead, rig=rig)
    tip = worker_commit(repo, branch, files or {f"{bead}.txt": f"{title}\n"})
    ok("done", bead)
    return bead, branch, tip


def _user_busy_elsewhere(repo):
    """The user is on another branch with staged, unstaged and untracked changes."""
    git("checkout", "-q", "-b", "mine", cwd=repo)
    (repo / "README").write_text("edited, not staged\n")
    (repo / "staged.txt").write_text("staged\n")
    git("add", "staged.txt", cwd=repo)
    (repo / "untracked.txt").write_text("u\n")
    return workdir_state(repo)


def test_merge_strategy_lands_in_memory_and_leaves_the_user_alone(state_repo):
    add_rig()
    bead, branch, tip = _queued(state_repo, "Add login")
    before = _user_busy_elsewhere(state_repo)
    old_main = git("rev-parse", "main", cwd=state_repo)
    out = ok("refinery", "run")
    assert "landed" in out and "refinery: 1 of 1 landed" in out
    assert workdir_state(state_repo) == before
    main = git("rev-parse", "main", cwd=state_repo)
    parents = git("rev-list", "--parents", "-n1", main, cwd=state_repo).split()[1:]
    assert parents == [old_main, tip]
    [mr] = mrs().values()
    message = git("log", "-1", "--format=%B", main, cwd=state_repo)
    assert message.splitlines()[0] == f"Merge {branch} into main: Add login"
    assert f"Convoy-Bead: {bead}" in message and f"Convoy-MR: {mr.id}" in message
    assert (mr.status, mr.merged_as) == ("merged", main)
    shown = bead_json(bead)
    assert shown["status"] == "closed"
    assert shown["close_reason"] == f"Merged in {mr.id} as {main[:12]}"
    assert file_at(state_repo, "main", f"{bead}.txt") == "Add login"


def test_squash_strategy_makes_one_commit_with_the_trailer(state_repo):
    add_rig(strategy="squash")
    bead = new_task("Squash me")
    branch = hand_dispatch(state_repo, bead)
    worker_commit(state_repo, branch, {"a.txt": "1\n"}, "first")
    worker_commit(state_repo, branch, {"b.txt": "2\n"}, "second")
    ok("done", bead)
    old_main = git("rev-parse", "main", cwd=state_repo)
    ok("refinery", "run")
    parents = git("rev-list", "--parents", "-n1", "main", cwd=state_repo).split()[1:]
    assert parents == [old_main]
    body = git("log", "-1", "--format=%B", "main", cwd=state_repo)
    assert body.splitlines()[0] == "Squash me"
    assert f"Convoy-Bead: {bead}" in body
    assert git("log", "-1", "--format=%an", "main", cwd=state_repo) == "Test User"
    assert file_at(state_repo, "main", "b.txt") == "2"
    assert bead_json(bead)["status"] == "closed"


def test_ff_only_fast_forwards_or_sends_the_work_back(state_repo):
    add_rig(strategy="ff-only")
    bead, branch, tip = _queued(state_repo, "Fast")
    ok("refinery", "run")
    assert git("rev-parse", "main", cwd=state_repo) == tip
    late = new_task("Late")
    late_branch = hand_dispatch(state_repo, late)
    # main moves after the branch was cut: no longer a fast-forward
    other = new_task("Other")
    hand_dispatch(state_repo, other)
    worker_commit(state_repo, f"convoy/{other}", {"o.txt": "o\n"})
    worker_commit(state_repo, late_branch, {"l.txt": "l\n"})
    git("update-ref", "refs/heads/main", f"convoy/{other}", cwd=state_repo)
    ok("done", late)
    main = git("rev-parse", "main", cwd=state_repo)
    out = ok("refinery", "run")
    assert "rejected" not in out  # the outcome is named by landing: not_ff
    assert "not_ff" in out
    assert git("rev-parse", "main", cwd=state_repo) == main
    [mr] = [m for m in mrs().values() if m.bead == late]
    assert mr.status == "rejected" and "not a fast-forward of main" in mr.reason
    shown = bead_json(late)
    assert shown["status"] == "in_progress"
    assert "not a fast-forward" in shown["dispatch"]["returned"]


def test_checked_out_clean_target_is_brought_along(state_repo):
    add_rig()
    bead, branch, tip = _queued(state_repo, "Visible")
    ok("refinery", "run")
    assert (state_repo / f"{bead}.txt").read_text() == "Visible\n"
    head, index_tree, status, symbolic = workdir_state(state_repo)
    assert head == git("rev-parse", "main", cwd=state_repo)
    assert status == "" and symbolic == "refs/heads/main"
    assert index_tree == git("rev-parse", "main^{tree}", cwd=state_repo)


def test_checked_out_dirty_target_is_left_alone_and_the_user_told(state_repo):
    add_rig()
    bead, branch, tip = _queued(state_repo, "Hidden")
    (state_repo / "README").write_text("my local edit\n")
    out = ok("refinery", "run")
    assert "main is checked out in" in out and "with local changes" in out
    assert "git read-tree -m -u" in out
    assert (state_repo / "README").read_text() == "my local edit\n"
    assert not (state_repo / f"{bead}.txt").exists()
    assert file_at(state_repo, "main", f"{bead}.txt") == "Hidden"


def test_check_runs_on_the_exact_merged_tree(state_repo):
    add_rig()
    seen = state_repo.parent / "seen.txt"
    set_check(state_repo, f'ls > "{seen}"; git rev-parse HEAD >> "{seen}"\n')
    first, _, _ = _queued(state_repo, "One")
    ok("refinery", "run")
    second, _, _ = _queued(state_repo, "Two")
    (state_repo / "dirty-user-file").write_text("not in any tree\n")
    ok("refinery", "run")
    lines = seen.read_text().split()
    assert f"{first}.txt" in lines and f"{second}.txt" in lines
    assert "dirty-user-file" not in lines
    assert lines[-1] == git("rev-parse", "main", cwd=state_repo)
    assert bead_json(second)["status"] == "closed"
    assert git("worktree", "list", "--porcelain", cwd=state_repo).count("worktree ") == 3


def test_failing_check_keeps_the_target_and_sends_the_bead_back(state_repo):
    add_rig()
    set_check(state_repo, 'echo "3 tests failed"; exit 1\n')
    bead, branch, tip = _queued(state_repo, "Broken")
    main = git("rev-parse", "main", cwd=state_repo)
    out = ok("refinery", "run")
    assert "check_failed" in out
    assert git("rev-parse", "main", cwd=state_repo) == main
    [mr] = mrs().values()
    assert mr.status == "rejected" and mr.check_failures == 1 and mr.retries == 1
    with open(mr.check_log) as fh:
        assert "3 tests failed" in fh.read()
    shown = bead_json(bead)
    assert shown["status"] == "in_progress"
    assert shown["dispatch"]["returned"].startswith(f"{mr.id}: check failed (exit 1)")
    assert shown["dispatch"]["returned_log"] == mr.check_log


def test_repeated_check_failures_escalate_once(state_repo):
    add_rig()
    git("config", "convoy.refinery.maxCheckFailures", "2", cwd=state_repo)
    set_check(state_repo, "exit 1\n")
    bead, branch, _ = _queued(state_repo, "Flaky")
    ok("refinery", "run")
    worker_commit(state_repo, branch, {"fix.txt": "try 2\n"}, "fix")
    ok("done", bead)
    out = ok("refinery", "run")
    assert out.count("escalated:") == 1
    assert "escalated" in bead_json(bead)["labels"]
    kinds = {a["kind"] for a in status_json()["anomalies"]}
    assert "repeated_check_failures" in kinds
    worker_commit(state_repo, branch, {"fix.txt": "try 3\n"}, "fix again")
    ok("done", bead)
    out = ok("refinery", "run")
    assert "escalated:" not in out


def test_check_timeout(state_repo):
    add_rig()
    set_check(state_repo, "exec sleep 30\n")
    git("config", "convoy.rig.app.timeout", "0.5", cwd=state_repo)
    _queued(state_repo, "Slow")
    out = ok("refinery", "run")
    assert "check timed out after 0.5s" in out
    [mr] = mrs().values()
    assert mr.status == "rejected"


def test_target_moved_during_the_check_is_merged_again(state_repo):
    """The CAS fails because main moved while the check ran: merge again, check again."""
    add_rig()
    flag = state_repo.parent / "moved"
    repo_dir = str(state_repo)
    set_check(state_repo, f"""
if [ ! -e "{flag}" ]; then
  touch "{flag}"
  tree=$(git -C "{repo_dir}" rev-parse main^{{tree}})
  c=$(echo concurrent | git -C "{repo_dir}" commit-tree "$tree" -p main)
  git -C "{repo_dir}" update-ref refs/heads/main "$c"
fi
""")
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    bead, branch, tip = _queued(state_repo, "Racy")
    ok("refinery", "run")
    main = git("rev-parse", "main", cwd=state_repo)
    log = git("log", "--format=%s", "main", cwd=state_repo).splitlines()
    assert log[0].startswith(f"Merge {branch} into main") and "concurrent" in log
    assert git("merge-base", "--is-ancestor", tip, main, cwd=state_repo) == ""  # raises if not
    assert bead_json(bead)["status"] == "closed"


def test_orphaned_mr_closes_and_the_bead_is_ready_again(state_repo):
    add_rig()
    bead, branch, _ = _queued(state_repo, "Gone")
    git("worktree", "remove", "--force", str(state_repo.parent / f"wt-{branch.replace('/', '-')}"),
        cwd=state_repo)
    git("branch", "-D", branch, cwd=state_repo)
    kinds = [a["kind"] for a in status_json()["anomalies"]]
    assert kinds == ["orphaned"]
    out = ok("refinery", "run")
    assert "orphaned" in out
    [mr] = mrs().values()
    assert mr.status == "orphaned" and mr.reason == f"source branch {branch} is gone"
    shown = bead_json(bead)
    assert shown["status"] == "open" and shown["branch"] is None and shown["mr"] is None
    assert bead in ok("ready")


def test_delete_branch_when_configured(state_repo):
    add_rig()
    git("config", "convoy.rig.app.delete-branch", "true", cwd=state_repo)
    bead, branch, _ = _queued(state_repo, "Tidy")
    git("worktree", "remove", "--force", str(state_repo.parent / f"wt-{branch.replace('/', '-')}"),
        cwd=state_repo)
    out = ok("refinery", "run")
    assert f"deleted {branch}" in out
    assert git("branch", "--list", branch, cwd=state_repo) == ""


def test_queue_order_priority_then_retries_then_age():
    from gitconvoy.state.model import Bead

    beads = {"a": Bead("a", "a", priority=2), "b": Bead("b", "b", priority=0),
             "c": Bead("c", "c", priority=2)}

    def mr(i, bead, created, retries=0, status="queued"):
        return MergeRequest(i, bead, "x", "0" * 40, "main", status=status, retries=retries,
                            created_at=created)

    queue = [mr("m1", "a", "2026-01-01", retries=1), mr("m2", "c", "2026-01-03"),
             mr("m3", "b", "2026-01-05"), mr("m4", "a", "2026-01-02"),
             mr("m5", "a", "2026-01-01", status="conflict")]
    assert [m.id for m in queue_order(queue, beads)] == ["m3", "m4", "m2", "m1"]


def test_run_once_lands_one(state_repo):
    add_rig()
    _queued(state_repo, "A")
    _queued(state_repo, "B")
    out = ok("refinery", "run", "--once")
    assert "refinery: 1 of 1 landed" in out
    assert [m.status for m in mrs().values()].count("queued") == 1


def test_unknown_mr_retry_is_a_one_line_error(state_repo):
    res = convoy("refinery", "retry", "mr-nope")
    assert res.code == 1
    assert res.err.strip() == (
        "error: unknown merge request 'mr-nope': see 'git convoy refinery status'"
    )


def test_a_crash_after_the_ref_moved_is_finished_by_the_next_run(state_repo):
    """The target already holds the MR's work (the refinery died before recording it)."""
    add_rig()
    bead, branch, tip = _queued(state_repo, "Half done")
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    git("update-ref", "refs/heads/main", tip, cwd=state_repo)
    out = ok("refinery", "run")
    assert "already" in out
    [mr] = mrs().values()
    assert (mr.status, mr.merged_as) == ("merged", tip)
    assert bead_json(bead)["status"] == "closed"


def test_two_refineries_at_once_land_each_mr_exactly_once(state_repo):
    import subprocess

    add_rig()
    beads = [_queued(state_repo, f"Parallel {n}")[0] for n in range(6)]
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    start = git("rev-parse", "main", cwd=state_repo)
    procs = [subprocess.Popen(["git", "convoy", "refinery", "run"], cwd=state_repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert all(m.status == "merged" for m in mrs().values())
    subjects = git("log", "--first-parent", "--format=%s", f"{start}..main",
                   cwd=state_repo).splitlines()
    for bead in beads:
        assert sum(f"convoy/{bead} " in s for s in subjects) == 1
        assert bead_json(bead)["status"] == "closed"


def test_pure_helpers():
    import pytest

    from gitconvoy.errors import ConvoyError, SchemaError
    from gitconvoy.land.landing import Landed
    from gitconvoy.land.refinery import format_age, parse_duration, recovery_command

    assert [parse_duration(t) for t in ("90", "90s", "30m", "4h", "2d")] == \
        [90, 90, 1800, 14400, 172800]
    with pytest.raises(ConvoyError, match="'soon' is not a duration"):
        parse_duration("soon")
    assert [format_age(s) for s in (5, 600, 7200, 259200)] == ["5s", "10m", "2.0h", "3.0d"]
    assert recovery_command("mr-1", None) == "git convoy refinery retry mr-1"
    kept = Landed("push_failed", sha="a" * 40, recovery="git push origin main:main")
    assert recovery_command("mr-1", kept) == \
        "git convoy refinery retry mr-1 (or by hand: git push origin main:main)"
    diverged = Landed("push_failed", recovery="git pull --no-rebase origin main (on main)")
    assert recovery_command("mr-1", diverged) == \
        "git pull --no-rebase origin main (on main), then git convoy refinery retry mr-1"
    good = {"id": "mr-1", "bead": "t-1", "branch": "b", "commit": "a" * 40, "target": "main"}
    assert MergeRequest.from_dict(good, "mrs/mr-1.yaml").to_dict() == {
        **good, "status": "queued", "retries": 0, "check_failures": 0}
    with pytest.raises(SchemaError, match=r"mrs/mr-1.yaml: field 'commit': expected a full"):
        MergeRequest.from_dict({**good, "commit": "abc"}, "mrs/mr-1.yaml")
    with pytest.raises(SchemaError, match=r"field 'status': expected one of queued"):
        MergeRequest.from_dict({**good, "status": "lost"}, "mrs/mr-1.yaml")
