"""Git objects as files (gitconvoy.state.objectfiles): every object of a real repository,
loose and packed with long delta chains, reads as pygit2 reads it; what it writes, git
accepts (fsck) and names with the same ids."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pygit2
import pytest
from conftest import git, make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitconvoy.state import objectfiles, snapshot
from gitconvoy.state.objectfiles import ObjectFiles, Unsure, parse_tree, tree_bytes
from gitconvoy.state.quickwrite import write_changes
from gitconvoy.state.trees import apply_changes


def a_history(path: Path) -> Path:
    """A repository whose files change a little in each of many commits (so `git repack`
    stores most versions as deltas), with folders, a binary file and an empty file."""
    repo = make_repo(path)
    (repo / "d" / "e").mkdir(parents=True)
    for round_ in range(25):
        for n in range(6):
            lines = [f"line {i} of file {n}" for i in range(60)]
            lines[round_ % 60] = f"changed in round {round_}"
            (repo / "d" / f"f{n}.txt").write_text("\n".join(lines) + "\n")
        (repo / "d" / "e" / "bin").write_bytes(bytes(range(256)) * (round_ + 1))
        (repo / "empty").write_text("")
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", f"round {round_}", cwd=repo)
    return repo


def every_object(repo: Path) -> list[str]:
    out = git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)", cwd=repo)
    return out.split()


@pytest.mark.parametrize("packed", [None, "true", "false"],
                         ids=["loose", "packed, offset deltas", "packed, ref deltas"])
def test_every_object_reads_as_pygit2_reads_it(tmp_path: Path, packed: str | None) -> None:
    repo = a_history(tmp_path / "r")
    if packed:
        git("-c", f"repack.useDeltaBaseOffset={packed}", "repack", "-adf", "--depth=50",
            "--window=50", cwd=repo)
        assert "d" not in {p.name for p in (repo / ".git" / "objects").iterdir()
                           if len(p.name) == 2}, "everything is in the pack"
    odb = pygit2.Repository(str(repo)).odb
    files = ObjectFiles(str(repo / ".git" / "objects"))
    names = every_object(repo)
    assert len(names) > 100
    for oid in names:
        kind, data = odb.read(oid)
        assert files.read(oid) == (int(kind), data), oid
        if kind == pygit2.GIT_OBJECT_TREE:
            assert tree_bytes(parse_tree(data)) == data, "a tree written back is the same"
    with pytest.raises(KeyError):
        files.read("0" * 40)


def test_what_it_writes_git_accepts_with_the_same_ids(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    files = ObjectFiles(str(repo / ".git" / "objects"))
    blob = files.write(objectfiles.BLOB, b"hello\n")
    proc = subprocess.run(["git", "hash-object", "--stdin"], input=b"hello\n", cwd=repo,
                          capture_output=True, check=True)
    assert blob == proc.stdout.decode().strip()
    head_tree = git("rev-parse", "HEAD^{tree}", cwd=repo)
    entries = [*files.tree(head_tree), objectfiles.Entry("a.yaml", blob, 0o100644)]
    tree = files.write(objectfiles.TREE, tree_bytes(entries))
    assert git("ls-tree", "--name-only", tree, cwd=repo).split() == ["README", "a.yaml"]
    assert git("fsck", "--strict", "--no-dangling", cwd=repo) == ""
    assert files.write(objectfiles.BLOB, b"hello\n") == blob, "writing it again is a no-op"


def test_tree_order_is_gits_a_folder_sorts_as_if_it_ended_in_a_slash(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "a-b").write_text("x")
    (repo / "a").mkdir()
    (repo / "a" / "x").write_text("y")
    (repo / "a.c").write_text("z")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "names", cwd=repo)
    files = ObjectFiles(str(repo / ".git" / "objects"))
    tree = git("rev-parse", "HEAD^{tree}", cwd=repo)
    entries = list(files.tree(tree))
    assert files.write(objectfiles.TREE, tree_bytes(list(reversed(entries)))) == tree


def test_alternates_are_left_to_pygit2(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    subprocess.run(["git", "clone", "-q", "--shared", str(origin), str(tmp_path / "c")],
                   check=True)
    with pytest.raises(Unsure):
        ObjectFiles(str(tmp_path / "c" / ".git" / "objects"))


def test_the_type_numbers_are_gits() -> None:
    assert (objectfiles.COMMIT, objectfiles.TREE, objectfiles.BLOB, objectfiles.TAG) == (
        pygit2.GIT_OBJECT_COMMIT, pygit2.GIT_OBJECT_TREE, pygit2.GIT_OBJECT_BLOB,
        pygit2.GIT_OBJECT_TAG)
    assert (snapshot._TREE, snapshot._BLOB) == (pygit2.GIT_OBJECT_TREE,
                                                pygit2.GIT_OBJECT_BLOB)
    assert (objectfiles.TREE_MODE, objectfiles.FILE_MODE) == (
        pygit2.GIT_FILEMODE_TREE, pygit2.GIT_FILEMODE_BLOB)


PATHS = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y"]),
                           st.sampled_from(["1.yaml", "2.yaml", "x"])), max_size=8)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=PATHS, changes=st.lists(st.tuples(
    st.sampled_from(["a", "b", "c", "a/x", "b/y", "a/x/1.yaml", "b/y/2.yaml", "c/x/x", "d"]),
    st.none() | st.binary(max_size=8)), max_size=6))
def test_the_quick_tree_surgery_writes_the_trees_the_store_writes(
        tmp_path_factory: pytest.TempPathFactory, start: list[tuple[str, str, str]],
        changes: list[tuple[str, bytes | None]]) -> None:
    """quickwrite.write_changes against trees.apply_changes (pygit2): additions, changes,
    deletions that empty a folder, a file where a folder was and the other way round."""
    path = tmp_path_factory.mktemp("surgery")
    repo = pygit2.init_repository(str(path), bare=True)
    first = {"/".join(parts): b"seed" for parts in start}
    base = repo[apply_changes(repo, None, {p: d for p, d in first.items()
                                           if not any(q.startswith(p + "/") for q in first)})]
    wanted = dict(changes)
    files = ObjectFiles(str(path / "objects"))
    mine = write_changes(files, files.tree(str(base.id)), wanted)
    assert mine == str(apply_changes(repo, base, wanted))
