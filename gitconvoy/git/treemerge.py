"""Merge two commits in the object database, with the result `git merge` would record.

The refinery lands a tree nobody looks at before it is pushed, so it must be the tree `git
merge` would have made, and it must stop exactly where git would stop. libgit2's merge (pygit2
`merge_commits`) is not that: its Myers diff aligns hunks differently from git's ort merge
(histogram diff) in files of similar repeated blocks, so a changelog entry can land under the
wrong "Version … / Unreleased" heading without any conflict (docs/decisions.md, item 16;
`bench/merge_corpus.py` replays thousands of recorded merges).

So the merge is git's own when git can do it in memory (≥ 2.38): `git merge-tree
--write-tree` runs ort in the object database, with no index and no work tree, honouring
`merge.*` settings and merge drivers. git 2.39 reads attributes only from a work tree, so the
target tip's `.gitattributes` files are written to an empty temporary folder that git is told
is the work tree: attributes then come from the target, as for a `git merge` run on a
checkout of it, whatever branch the user has checked out. merge-tree never writes there.

Older git falls back to libgit2 with the patience diff, the libgit2 option closest to ort on
the corpus; it cannot run merge drivers (docs/refinery.md says what it guarantees).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.git import gitcli
from gitconvoy.state.store import Store

MERGE_TREE_SINCE = (2, 38, 0)  # `git merge-tree --write-tree`
ATTRIBUTES = b".gitattributes"
_SUBTREE_MODE = b"40000 "
_BLOB_MODES = (b"100644", b"100755")


class Engine(StrEnum):
    ORT = "ort"  # git merge-tree --write-tree: git's own merge
    LIBGIT2 = "libgit2"  # pygit2 merge_commits with the patience diff: the fallback


@dataclass(frozen=True)
class TreeMerge:
    """A merge's outcome: the tree when clean, else git's conflicting files (sorted)."""

    engine: Engine
    tree: str | None
    conflicts: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return self.tree is not None


def default_engine() -> Engine:
    """git's own merge where the installed git can do it in memory, else libgit2."""
    return Engine.ORT if gitcli.git_version() >= MERGE_TREE_SINCE else Engine.LIBGIT2


def merge_commits(store: Store, ours: str, theirs: str,
                  engine: Engine | None = None) -> TreeMerge:
    """Merge commit `theirs` into commit `ours` (the target); nothing but objects is written."""
    if (engine or default_engine()) is Engine.ORT:
        return _merge_with_git(store, ours, theirs)
    return _merge_with_libgit2(store.repo, ours, theirs)


# --- git merge-tree (ort) ---------------------------------------------------------------


def _merge_with_git(store: Store, ours: str, theirs: str) -> TreeMerge:
    # Attributes are read relative to the current folder: it must be the work tree too.
    # Unrelated histories merge as with libgit2 (an empty base) rather than failing here.
    with tempfile.TemporaryDirectory(prefix="convoy-merge-") as attributes_dir:
        write_attributes(store.repo, ours, attributes_dir)
        res = gitcli.run_git(
            ["--work-tree", attributes_dir, "merge-tree", "--write-tree", "--name-only", "-z",
             "--allow-unrelated-histories", ours, theirs],
            git_dir=store.common_dir, cwd=attributes_dir, check=False,
        )
    if res.code not in (0, 1):
        raise ConvoyError(f"git merge-tree cannot merge {theirs[:12]} into {ours[:12]}: "
                          f"{res.first_error}")
    tree, files, message_paths = parse_merge_tree(res.out)
    if res.code == 0:
        return TreeMerge(Engine.ORT, tree)
    return TreeMerge(Engine.ORT, None, tuple(sorted(set(files or message_paths))))


def parse_merge_tree(out: str) -> tuple[str, list[str], list[str]]:
    """Split `merge-tree --write-tree --name-only -z` output: the tree, the conflicting files,
    and the paths its messages name (`<n> NUL <paths> NUL <type> NUL <text> NUL` each)."""
    fields = out.split("\0")
    tree = fields[0].strip()
    files: list[str] = []
    at = 1
    while at < len(fields) and fields[at]:
        files.append(fields[at])
        at += 1
    at += 1
    message_paths: list[str] = []
    while at < len(fields) and fields[at].isdigit():
        count = int(fields[at])
        message_paths.extend(fields[at + 1:at + 1 + count])
        at += count + 3
    return tree, files, message_paths


def write_attributes(repo: pygit2.Repository, commit: str, folder: str) -> int:
    """Write the commit's `.gitattributes` files under `folder` at their paths; how many.
    Reads raw tree objects and skips every tree without a subtree or an attributes file, so
    a 20,000-file tree costs about a millisecond."""
    root = repo[commit].peel(pygit2.Tree).id
    written = 0
    for relative, blob in _attribute_files(repo.odb, root, ""):
        path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(repo[blob].data)
        written += 1
    return written


def _attribute_files(odb: pygit2.Odb, tree: pygit2.Oid,
                     prefix: str) -> list[tuple[str, pygit2.Oid]]:
    _, data = odb.read(tree)
    if _SUBTREE_MODE not in data and b" " + ATTRIBUTES + b"\0" not in data:
        return []
    found: list[tuple[str, pygit2.Oid]] = []
    for mode, name, oid in _tree_entries(data):
        if mode == _SUBTREE_MODE.strip():
            folder = name.decode("utf-8", "surrogateescape")
            found += _attribute_files(odb, oid, f"{prefix}{folder}/")
        elif name == ATTRIBUTES and mode in _BLOB_MODES:  # git ignores a symlinked one
            found.append((prefix + ATTRIBUTES.decode(), oid))
    return found


def _tree_entries(data: bytes) -> list[tuple[bytes, bytes, pygit2.Oid]]:
    """A raw tree object's entries: `<mode> SP <name> NUL <20-byte id>` each."""
    entries = []
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        entries.append((data[at:space], data[space + 1:nul],
                        pygit2.Oid(raw=data[nul + 1:nul + 21])))
        at = nul + 21
    return entries


# --- libgit2 (the fallback for git < 2.38) ----------------------------------------------


def _merge_with_libgit2(repo: pygit2.Repository, ours: str, theirs: str) -> TreeMerge:
    index = repo.merge_commits(ours, theirs,
                               file_flags=pygit2.enums.MergeFileFlag.DIFF_PATIENCE)
    if index.conflicts is None:
        return TreeMerge(Engine.LIBGIT2, str(index.write_tree(repo)))
    return TreeMerge(Engine.LIBGIT2, None, tuple(conflict_paths(index)))


def conflict_paths(index: pygit2.Index) -> list[str]:
    """The paths of libgit2's conflicts (it groups conflict entries by path). Where a side
    moved a file this names the old path too, which git does not (docs/refinery.md)."""
    paths: set[str] = set()
    for entries in index.conflicts or ():
        paths.update(entry.path for entry in entries if entry is not None)
    return sorted(paths)
