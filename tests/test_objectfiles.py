"""Git objects as files (gitconvoy.state.objectfiles): every object of a real repository,
loose and packed with long delta chains, reads as pygit2 reads it, one at a time and in
bulk (several packs, an index too big for a table, a size cap, flipped bytes: the same
object or Unsure, never another); what it writes, git accepts (fsck) and names with the
same ids."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest
from conftest import git, make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitconvoy.state import objectfiles, snapshot
from gitconvoy.state.objectfiles import ObjectFiles, Unsure, parse_tree, tree_bytes, tree_entries
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
        assert files.read_header(oid) == (int(kind), len(data)), oid
        if kind == pygit2.GIT_OBJECT_TREE:
            assert tree_bytes(parse_tree(data)) == data, "a tree written back is the same"
    with pytest.raises(KeyError):
        files.read("0" * 40)


def read_in_bulk_as_pygit2(repo: Path) -> int:
    """Every object, read by `read_bulk`, equals pygit2's; how many there are."""
    odb = pygit2.Repository(str(repo)).odb
    files = ObjectFiles(str(repo / ".git" / "objects"))
    names = every_object(repo)
    for oid in names:
        kind, data = odb.read(oid)
        assert files.read_bulk(bytes.fromhex(oid)) == (int(kind), data), oid
    with pytest.raises(KeyError):
        files.read_bulk(bytes(20))
    with pytest.raises(KeyError):
        files.read_bulk(b"\xff" * 20)  # the first and last fan-out buckets
    return len(names)


@pytest.mark.parametrize("packed", [None, "true", "false"],
                         ids=["loose", "packed, offset deltas", "packed, ref deltas"])
def test_every_object_reads_in_bulk_as_pygit2_reads_it(tmp_path: Path, packed: str | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    repo = a_history(tmp_path / "r")
    if packed:
        git("-c", f"repack.useDeltaBaseOffset={packed}", "repack", "-adf", "--depth=50",
            "--window=50", cwd=repo)
    assert read_in_bulk_as_pygit2(repo) > 100
    monkeypatch.setattr(objectfiles, "DICT_MAX", 0)  # as for a project's pack of millions
    assert read_in_bulk_as_pygit2(repo) > 100


def test_several_packs_and_loose_objects_read_in_bulk_together(tmp_path: Path) -> None:
    repo = a_history(tmp_path / "r")
    git("repack", "-adq", cwd=repo)
    (repo / "later").write_text("later\n")
    git("add", "later", cwd=repo)
    git("commit", "-q", "-m", "later", cwd=repo)
    git("repack", "-dq", cwd=repo)  # a second pack beside the first
    (repo / "loose").write_text("loose\n")
    git("add", "loose", cwd=repo)
    git("commit", "-q", "-m", "loose", cwd=repo)
    assert len(list((repo / ".git" / "objects" / "pack").glob("*.pack"))) == 2
    assert read_in_bulk_as_pygit2(repo) > 100


def test_an_object_over_the_size_asked_is_refused_in_bulk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    for version in range(3):  # the last version a delta of the first, once packed
        (repo / "big.yaml").write_text("x" * 5000 + str(version))
        git("add", "big.yaml", cwd=repo)
        git("commit", "-q", "-m", "big", cwd=repo)
    blob = bytes.fromhex(git("rev-parse", "HEAD:big.yaml", cwd=repo))
    for packed in (False, True):
        if packed:
            git("repack", "-adfq", cwd=repo)
        files = ObjectFiles(str(repo / ".git" / "objects"))
        assert files.read_bulk(blob, 5001)[1] == b"x" * 5000 + b"2"
        with pytest.raises(Unsure):
            files.read_bulk(blob, 5000)


def test_a_damaged_pack_never_reads_as_another_object(tmp_path: Path) -> None:
    """Bytes flipped anywhere in a pack: each object reads in bulk as it was, or Unsure
    (or KeyError), never as other bytes."""
    repo = a_history(tmp_path / "r")
    git("repack", "-adfq", "--depth=20", cwd=repo)
    odb = pygit2.Repository(str(repo)).odb
    want = {oid: odb.read(oid) for oid in every_object(repo)}
    pack = next((repo / ".git" / "objects" / "pack").glob("*.pack"))
    good = pack.read_bytes()
    rng = random.Random(1206)
    for round_ in range(30):
        damaged = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(12, len(damaged) - 20)] ^= rng.randrange(1, 256)
        copy = tmp_path / f"copy{round_}"
        shutil.copytree(repo / ".git" / "objects", copy)
        (copy / "pack" / pack.name).chmod(0o644)
        (copy / "pack" / pack.name).write_bytes(bytes(damaged))
        files = ObjectFiles(str(copy))
        for oid, (kind, data) in want.items():
            try:
                got = files.read_bulk(bytes.fromhex(oid))
            except (Unsure, KeyError):
                continue
            assert got == (int(kind), data), (round_, oid)
        shutil.rmtree(copy)


def test_tree_entries_are_parse_trees_as_written(tmp_path: Path) -> None:
    repo = a_history(tmp_path / "r")
    files = ObjectFiles(str(repo / ".git" / "objects"))
    for oid in every_object(repo):
        kind, data = files.read(oid)
        if kind == objectfiles.TREE:
            assert [(int(m, 8), n.decode(), o.hex()) for m, n, o in tree_entries(data)] == \
                [(e.filemode, e.name, e.id) for e in parse_tree(data)]
            with pytest.raises(Unsure):
                tree_entries(data[:-3])


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


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_a_huge_blob_is_sized_without_being_inflated(tmp_path: Path, packed: bool) -> None:
    """The state is untrusted: a few KB of zlib can stand for a gigabyte, and the size cap of
    a state file is checked on the header, before anything is inflated."""
    import tracemalloc

    repo = make_repo(tmp_path / "r")
    size = 64 << 20
    proc = subprocess.run(["git", "hash-object", "-w", "--stdin"], input=bytes(size),
                          cwd=repo, capture_output=True, check=True)
    oid = proc.stdout.decode().strip()
    if packed:
        subprocess.run(["git", "pack-objects", "-q", str(repo / ".git/objects/pack/pack")],
                       input=f"{oid}\n".encode(), cwd=repo, check=True, capture_output=True)
        git("prune-packed", cwd=repo)
        assert not (repo / ".git" / "objects" / oid[:2] / oid[2:]).exists()
    files = ObjectFiles(str(repo / ".git" / "objects"))
    tracemalloc.start()
    try:
        assert files.read_header(oid) == (objectfiles.BLOB, size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, "only the header was inflated"
