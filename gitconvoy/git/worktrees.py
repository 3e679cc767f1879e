"""Worktrees of work branches: which worktree has a branch checked out, and a worktree for a
bead's branch under `.git/convoy/worktrees/<bead>` (where the rig `worktree` setting and
`git convoy work` put them; the common dir, so every linked worktree agrees)."""

from __future__ import annotations

import os

from gitconvoy.errors import ConvoyError
from gitconvoy.git import gitcli
from gitconvoy.state.store import Store


def bead_worktree(store: Store, bead_id: str) -> str:
    """Where a bead's worktree goes when its branch is checked out nowhere."""
    return os.path.join(store.common_dir, "convoy", "worktrees", bead_id)


def checked_out_in(store: Store, branch: str) -> list[str]:
    """Worktrees (paths) whose HEAD is `branch`, the main one included."""
    res = gitcli.run_git(["worktree", "list", "--porcelain"], git_dir=store.common_dir,
                         check=False)
    paths: list[str] = []
    current = None
    for line in res.out.splitlines():
        if line.startswith("worktree "):
            current = line[len("worktree "):]
        elif line == f"branch refs/heads/{branch}" and current:
            paths.append(current)
    return paths


def ensure(store: Store, branch: str, path: str) -> str:
    """The worktree that has `branch` checked out (reused as it is), else a new one at
    `path`. A folder at `path` that is not such a worktree is left alone: an error says
    how to clear it."""
    found = [p for p in checked_out_in(store, branch) if os.path.isdir(p)]
    if found:
        return found[0]
    if os.path.exists(path):
        raise ConvoyError(f"{path} exists but does not have {branch} checked out: remove it "
                          f"('git worktree remove --force {path}') and run again")
    gitcli.run_git(["worktree", "prune"], git_dir=store.common_dir, check=False,
                   other_repo=True)
    made = gitcli.run_git(["worktree", "add", "-q", path, branch], git_dir=store.common_dir,
                          check=False, other_repo=True)
    if made.code != 0:
        raise ConvoyError(f"git worktree add {path} {branch} failed: {made.first_error}")
    return path
