"""Git objects read from the files under .git without pygit2 (gitconvoy.state.objfiles) are
the objects pygit2 reads, byte for byte, however git stored them: loose, packed whole,
deltified against an earlier offset or by id, in several packs at once. What it cannot read
exactly (borrowed objects, a missing or damaged one, one over the size asked) is
Unreadable, never another object.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest
from conftest import git

from gitconvoy.state import objfiles
from gitconvoy.state.objfiles import ObjectFiles, Unreadable


def a_history(repo: Path, commits: int = 12) -> None:
    """Files that change a little each commit, so that git deltifies them when it packs."""
    rng = random.Random(12)
    lines = [f"line {n}: {'word ' * rng.randrange(1, 12)}" for n in range(60)]
    for n in range(commits):
        for name in ("a.yaml", "b.yaml", f"dir/{n % 3}.yaml"):
            lines[rng.randrange(len(lines))] = f"changed in {n}"
            path = repo / name
            path.parent.mkdir(exist_ok=True)
            path.write_text("\n".join(lines[rng.randrange(5):]) + "\n")
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", f"change {n}", cwd=repo)


def every_object(repo: Path) -> list[str]:
    return git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)",
               cwd=repo).split()


def assert_reads_as_pygit2(repo: Path) -> int:
    """Every object read here equals pygit2's; how many there are."""
    odb = pygit2.Repository(str(repo)).odb
    objects = ObjectFiles.open(str(repo / ".git"))
    ids = every_object(repo)
    for oid in ids:
        assert objects.read(bytes.fromhex(oid)) == odb.read(oid), oid
    return len(ids)


def deltas(repo: Path) -> int:
    """Objects stored as deltas in the repository's packs (git verify-pack)."""
    count = 0
    for idx in (repo / ".git" / "objects" / "pack").glob("*.idx"):
        for line in git("verify-pack", "-v", str(idx), cwd=repo).splitlines():
            parts = line.split()
            if len(parts) == 7 and len(parts[0]) == 40:  # id type size size offset depth base
                count += 1
    return count


def test_loose_objects_read_as_pygit2_reads_them(repo: Path) -> None:
    a_history(repo, 3)
    assert not list((repo / ".git" / "objects" / "pack").glob("*.pack"))
    assert assert_reads_as_pygit2(repo) > 10


def test_a_pack_of_offset_deltas_reads_as_pygit2_reads_it(repo: Path) -> None:
    a_history(repo)
    git("repack", "-adfq", "--depth=50", "--window=50", cwd=repo)
    assert deltas(repo) > 10
    assert assert_reads_as_pygit2(repo) > 40


def test_a_pack_of_deltas_by_id_reads_as_pygit2_reads_it(repo: Path) -> None:
    """pack-objects without --delta-base-offset names each delta's base by its id."""
    a_history(repo)
    pack_dir = repo / ".git" / "objects" / "pack"
    listing = git("rev-list", "--objects", "--all", cwd=repo) + "\n"
    subprocess.run(["git", "pack-objects", "-q", "--window=50", "--depth=50",
                    str(pack_dir / "pack")], cwd=repo, input=listing, text=True, check=True,
                   capture_output=True)
    git("prune-packed", cwd=repo)
    assert deltas(repo) > 10
    assert assert_reads_as_pygit2(repo) > 40


def test_several_packs_and_loose_objects_read_together(repo: Path) -> None:
    a_history(repo, 6)
    git("repack", "-adq", cwd=repo)
    a_history(repo, 4)
    git("repack", "-dq", cwd=repo)  # a second pack beside the first
    a_history(repo, 2)  # and loose objects
    assert len(list((repo / ".git" / "objects" / "pack").glob("*.pack"))) == 2
    assert assert_reads_as_pygit2(repo) > 40


def test_a_pack_index_too_big_for_a_table_is_searched(repo: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    a_history(repo)
    git("repack", "-adq", cwd=repo)
    monkeypatch.setattr(objfiles, "DICT_MAX", 0)
    assert assert_reads_as_pygit2(repo) > 40
    objects = ObjectFiles.open(str(repo / ".git"))
    for missing in (bytes(20), b"\xff" * 20):  # the first and last fan-out buckets
        with pytest.raises(Unreadable):
            objects.read(missing)


def test_what_is_not_there_is_unreadable(repo: Path) -> None:
    a_history(repo, 2)
    objects = ObjectFiles.open(str(repo / ".git"))
    with pytest.raises(Unreadable):
        objects.read(bytes(20))
    git("repack", "-adq", cwd=repo)
    with pytest.raises(Unreadable):
        ObjectFiles.open(str(repo / ".git")).read(b"\xff" * 20)


def test_an_object_over_the_size_asked_is_refused_before_it_is_inflated(repo: Path) -> None:
    (repo / "big.yaml").write_text("x" * 5000)
    git("add", "big.yaml", cwd=repo)
    git("commit", "-q", "-m", "big", cwd=repo)
    blob = bytes.fromhex(git("rev-parse", "HEAD:big.yaml", cwd=repo))
    for packed in (False, True):
        if packed:
            git("repack", "-adq", cwd=repo)
        objects = ObjectFiles.open(str(repo / ".git"))
        assert objects.read(blob, 5000)[1] == b"x" * 5000
        with pytest.raises(Unreadable):
            objects.read(blob, 4999)


def test_borrowed_objects_are_left_to_pygit2(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "shared"
    git("clone", "-q", "--shared", str(repo), str(clone))
    assert (clone / ".git" / "objects" / "info" / "alternates").exists()
    with pytest.raises(Unreadable):
        ObjectFiles.open(str(clone / ".git"))


def test_a_damaged_pack_never_reads_as_another_object(repo: Path, tmp_path: Path) -> None:
    """Bytes flipped anywhere in a pack: each object reads as it was, or is Unreadable."""
    a_history(repo)
    git("repack", "-adfq", "--depth=20", cwd=repo)
    odb = pygit2.Repository(str(repo)).odb
    want = {oid: odb.read(oid) for oid in every_object(repo)}
    pack = next((repo / ".git" / "objects" / "pack").glob("*.pack"))
    good = pack.read_bytes()
    rng = random.Random(1206)
    for round_ in range(40):
        damaged = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(12, len(damaged) - 20)  # past the header, before the checksum
            damaged[at] ^= rng.randrange(1, 256)
        copy = tmp_path / f"copy{round_}"
        shutil.copytree(repo / ".git", copy)
        (copy / "objects" / "pack" / pack.name).chmod(0o644)
        (copy / "objects" / "pack" / pack.name).write_bytes(bytes(damaged))
        objects = ObjectFiles.open(str(copy))
        for oid, (kind, data) in want.items():
            try:
                got = objects.read(bytes.fromhex(oid))
            except Unreadable:
                continue
            assert got == (kind, data), (round_, oid)
        shutil.rmtree(copy)


def test_trees_and_commits_read_as_git_writes_them(repo: Path) -> None:
    a_history(repo, 2)
    objects = ObjectFiles.open(str(repo / ".git"))
    head = git("rev-parse", "HEAD", cwd=repo)
    kind, data = objects.read(bytes.fromhex(head))
    assert kind == objfiles.COMMIT
    tree = objfiles.commit_tree(data)
    assert tree.hex() == git("rev-parse", "HEAD^{tree}", cwd=repo)
    kind, data = objects.read(tree)
    assert kind == objfiles.TREE
    listed = [line.split(None, 3) for line in git("ls-tree", "HEAD", cwd=repo).splitlines()]
    assert [(m.decode(), n.decode(), o.hex()) for m, n, o in objfiles.tree_entries(data)] == \
        [(mode.lstrip("0"), name, oid) for mode, _, oid, name in listed]
    with pytest.raises(Unreadable):
        objfiles.tree_entries(data[:-3])
