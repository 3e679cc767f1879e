"""delete-branch takes only what landed (land/refinery.py): a work branch that gained
commits after `git convoy done` keeps them. bench/mutate.py found only the happy path
(the branch deleted) was tested."""

from __future__ import annotations

from conftest import git, ok
from test_refinery_helpers import add_rig, drop_worktree, hand_dispatch, new_task, worker_commit


def test_delete_branch_keeps_a_branch_with_work_beyond_the_landed_commit(state_repo):
    add_rig()
    git("config", "convoy.rig.app.delete-branch", "true", cwd=state_repo)
    bead = new_task("Tidy")
    branch = hand_dispatch(state_repo, bead)
    landed = worker_commit(state_repo, branch, {"tidy.txt": "one\n"})
    ok("done", bead)
    later = worker_commit(state_repo, branch, {"tidy.txt": "two\n"}, message="more work")
    drop_worktree(state_repo, branch)  # not checked out: only the new commit may keep it

    out = ok("refinery", "run")

    assert f"kept {branch}: it has commits beyond the landed {landed[:10]}" in out
    assert git("rev-parse", branch, cwd=state_repo) == later
    assert git("merge-base", "--is-ancestor", landed, "main", cwd=state_repo) == ""
