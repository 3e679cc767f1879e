"""Tree surgery in the object database: what changed between two trees, writing only the trees
on changed paths, and the three-way walk that sync's merge resolves file by file. Subtrees
with equal ids are never opened, so costs follow the size of a change, not of the state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pygit2

from gitconvoy.state.layout import MAX_DEPTH


def changed_paths(repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None,
                   prefix: str, out: list[str]) -> None:
    """Files that differ between two trees; subtrees with equal ids are never opened."""
    if prefix.count("/") > MAX_DEPTH:
        return
    before = {e.name: e for e in old} if old is not None else {}
    after = {e.name: e for e in new} if new is not None else {}
    for name in sorted(before.keys() | after.keys()):
        was, now_ = before.get(name), after.get(name)
        if was is not None and now_ is not None and was.id == now_.id:
            continue
        path = prefix + name
        sub_old = repo[was.id] if was is not None and was.type_str == "tree" else None
        sub_new = repo[now_.id] if now_ is not None and now_.type_str == "tree" else None
        if sub_old is not None or sub_new is not None:
            changed_paths(repo, sub_old, sub_new, path + "/", out)
        if any(e is not None and e.type_str == "blob" for e in (was, now_)):
            out.append(path)


def walk_yaml(repo: pygit2.Repository, entry: Any, prefix: str,
              depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every `*.yaml` entry below a folder that is not itself a folder (files, and gitlinks
    or symlinks that a read then names as broken)."""
    obj = repo.get(entry.id) if entry.filemode == pygit2.GIT_FILEMODE_TREE else None
    if not isinstance(obj, pygit2.Tree) or depth > MAX_DEPTH:
        return
    for child in obj:
        path = f"{prefix}/{child.name}"
        if child.filemode == pygit2.GIT_FILEMODE_TREE:
            yield from walk_yaml(repo, child, path, depth + 1)
        elif child.name.endswith(".yaml"):
            yield path, str(child.id)


def apply_changes(
    repo: pygit2.Repository, tree: pygit2.Tree | None, changes: dict[str, bytes | None]
) -> pygit2.Oid:
    """Write the changed files as blobs, then rewrite only the trees on their paths."""
    return apply_entries(repo, tree, {
        path: None if data is None else (repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        for path, data in changes.items()
    })


def _entry(tree: pygit2.Tree | None, name: str) -> Any:
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


def _kind(entry: Any) -> str | None:
    """"tree", "blob" (a plain file) or "other" (a gitlink, symlink or executable)."""
    if entry is None:
        return None
    if entry.filemode == pygit2.GIT_FILEMODE_TREE:
        return "tree"
    return "blob" if entry.filemode == pygit2.GIT_FILEMODE_BLOB else "other"


def three_way(
    repo: pygit2.Repository, base: pygit2.Tree | None, ours: pygit2.Tree | None,
    theirs: pygit2.Tree | None, prefix: str,
    resolve: Callable[[str, bytes | None, bytes | None, bytes | None], dict[str, bytes | None]],
    edits: dict[str, tuple[pygit2.Oid, int] | None],
) -> None:
    """Record what must change on top of `ours`: theirs' one-sided changes and resolutions.

    A deletion never follows from a change of type: theirs' gitlink, symlink, or a file where
    ours has a folder (or the other way round) is not taken, and a base entry of another type
    than both sides counts as absent, so nothing is "deleted" that the base never held as
    such. (Sync refuses such trees before merging, docs/state.md; this is the second line.)"""
    names: set[str] = set()
    for tree in (base, ours, theirs):
        if tree is not None:
            names.update(e.name for e in tree)
    for name in sorted(names):
        b, o, t = _entry(base, name), _entry(ours, name), _entry(theirs, name)
        kb, ko, kt = _kind(b), _kind(o), _kind(t)
        if "other" in (ko, kt) or (ko is not None and kt is not None and ko != kt):
            continue  # keep ours
        if kb != (ko or kt):
            b = None
        bid, oid, tid = (e.id if e is not None else None for e in (b, o, t))
        if oid == tid or tid == bid:
            continue
        path = prefix + name
        if oid == bid:
            edits[path] = None if t is None else (t.id, t.filemode)
            continue
        if (ko or kt) == "tree":
            subs = [repo[e.id] if e is not None else None for e in (b, o, t)]
            three_way(repo, subs[0], subs[1], subs[2], path + "/", resolve, edits)
            continue
        datas = [repo[e.id].data if e is not None else None for e in (b, o, t)]
        for out_path, data in resolve(path, datas[0], datas[1], datas[2]).items():
            edits[out_path] = None if data is None else (
                repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)


def apply_entries(
    repo: pygit2.Repository, tree: pygit2.Tree | None,
    edits: dict[str, tuple[pygit2.Oid, int] | None],
) -> pygit2.Oid:
    """Rewrite only the trees on the paths that changed (O(depth) new tree objects); entries
    are ready object ids, so a merge can take whole subtrees from one side."""
    here: dict[str, tuple[pygit2.Oid, int] | None] = {}
    below: dict[str, dict[str, tuple[pygit2.Oid, int] | None]] = {}
    for path, entry in edits.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head, {})[rest] = entry
        else:
            here[head] = entry
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    for name, entry in here.items():
        if entry is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, entry[0], entry[1])
    for name, sub in below.items():
        existing = builder.get(name)
        subtree = repo[existing.id] if existing is not None and existing.type_str == "tree" \
            else None
        new_id = apply_entries(repo, subtree, sub)
        if len(repo[new_id]) == 0:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_id, pygit2.GIT_FILEMODE_TREE)
    return builder.write()
