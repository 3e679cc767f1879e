"""Reads and writes of the state never touch the working tree, the index or HEAD."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import STATE_REF, git, git_convoy, ok, workdir_state


def messy(repo: Path) -> dict[str, bytes]:
    """A detached HEAD, a staged file, an unstaged edit and an untracked file."""
    (repo / "src.txt").write_text("v1\n")
    git("add", "src.txt", cwd=repo)
    git("commit", "-q", "-m", "second", cwd=repo)
    git("checkout", "-q", "--detach", "HEAD", cwd=repo)
    (repo / "staged.txt").write_text("staged\n")
    git("add", "staged.txt", cwd=repo)
    (repo / "src.txt").write_text("v2, not staged\n")
    (repo / "README").write_text("edited and staged\n")
    git("add", "README", cwd=repo)
    (repo / "README").write_text("edited again, not staged\n")
    (repo / "untracked.txt").write_text("untracked\n")
    return files(repo)


def files(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts}


def every_command(batch: Path) -> list[list[str]]:
    """Each foundation command once, in an order where each one succeeds."""
    return [
        ["init", "--prefix", "u"],
        ["bead", "create", "--id", "u-a", "A", "-l", "x"],
        ["bead", "create", "--id", "u-e", "--type", "epic", "E"],
        ["bead", "create", "--id", "u-b", "B", "--parent", "u-e", "--dep", "u-a"],
        ["bead", "create", "--batch", str(batch)],
        ["bead", "show", "u-a", "--json"],
        ["bead", "list", "--json"],
        ["bead", "update", "u-a", "--status", "in_progress", "-a", "alice"],
        ["dep", "add", "u-e", "u-c"],
        ["dep", "list", "u-b", "--json"],
        ["dep", "remove", "u-e", "u-c"],
        ["dep", "cycles", "--json"],
        ["ready", "--json"],
        ["blocked", "--json"],
        ["bead", "close", "u-a", "--reason", "done"],
        ["bead", "reopen", "u-a"],
        ["bead", "delete", "u-c"],
        ["--version"],
        ["-h"],
    ]


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    path = tmp_path / "batch.yaml"
    path.write_text("- {id: u-c, title: C}\n- {id: u-d, title: D, deps: [u-c]}\n")
    return path


def test_every_command_in_process_leaves_head_index_and_tree_alone(repo, batch):
    content = messy(repo)
    before = workdir_state(repo)
    assert before[3] == ""  # detached
    for args in every_command(batch):
        ok(*args)
        assert workdir_state(repo) == before, args
    assert files(repo) == content
    assert len(git("rev-list", STATE_REF, cwd=repo).splitlines()) == 11
    assert git("stash", "list", cwd=repo) == ""


def test_every_command_through_git_leaves_head_index_and_tree_alone(repo, batch):
    """The same through the installed entry point, as a user (or a hook) runs it."""
    content = messy(repo)
    before = workdir_state(repo)
    index_file = (repo / ".git" / "index").read_bytes()
    for args in every_command(batch):
        git_convoy(*args, cwd=repo)
    assert workdir_state(repo) == before
    assert files(repo) == content
    assert (repo / ".git" / "index").read_bytes() == index_file


def test_on_a_branch_head_stays_symbolic(repo):
    messy(repo)
    git("checkout", "-q", "main", cwd=repo)
    (repo / "dirty.txt").write_text("dirty\n")
    before = workdir_state(repo)
    assert before[3] == "refs/heads/main"
    ok("init")
    ok("bead", "create", "x")
    assert workdir_state(repo) == before
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo) == "main"
