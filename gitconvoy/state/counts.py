"""How many files of each kind a state tree holds, without walking the whole tree each time.

A new id's length follows the population (gitconvoy.state.ids), so every create asks for
the bead count; walking every fan-out folder for it cost 7 ms at 10,000 beads and 48 ms at
100,000, once per new bead: a batch of 1,000 creates was quadratic. The totals of the last
tree counted are kept in `.git/convoy/counts` (one line), and another tree's totals follow
from its difference to that one, opening only subtrees whose ids differ, so the cost
follows the change. Within a process a tree is counted once.

The file is untrusted, like every runtime file: anything unexpected in it is a miss (the
tree is walked), and a count only sets the length of a new id, never whether an id is free,
so even a forged count costs at most a longer or shorter id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitconvoy.state.layout import KINDS, MAX_DEPTH

if TYPE_CHECKING:  # the counts file is read by a quick create, which has no pygit2
    import pygit2

_FOLDER = 0o40000  # pygit2.GIT_FILEMODE_TREE
TreeOpener = Callable[[Any], Any]  # a tree id -> its tree (iterable entries), or None

COUNTS_FILE = "counts"
_VERSION = "1"
_TREE_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_NUMBER = re.compile(r"[0-9]{1,9}")
# Totals of trees counted by this process (a batch of creates asks once per new bead).
_MEMO: dict[str, dict[str, int]] = {}


def kind_counts(repo: pygit2.Repository, common_dir: str, tree: pygit2.Tree) -> dict[str, int]:
    """{kind: number of `*.yaml` files below its folder} for `tree` (the same files a full
    read visits, broken ones included)."""
    tree_id = str(tree.id)
    found = _MEMO.get(tree_id)
    if found is not None:
        return found
    path = os.path.join(common_dir, "convoy", COUNTS_FILE)
    known = read_counts(path)
    open_tree = pygit2_trees(repo)
    old = open_tree(known[0]) if known is not None else None
    if known is not None and known[0] == tree_id:
        found = known[1]
    elif known is not None and old is not None:
        found = follow(open_tree, old, known[1], tree)
    else:
        found = walk(open_tree, tree)
    _MEMO[tree_id] = found
    if known is None or known[0] != tree_id:
        write_counts(path, tree_id, found)
    return found


def carry(repo: pygit2.Repository, common_dir: str, old_tree_id: str | None,
          new_tree: pygit2.Tree) -> None:
    """Keep the totals of a tree this process just wrote, when it counted the tree it wrote
    on (followed through the changed folders only), so the next create finds them without
    a diff of its own."""
    known = _MEMO.get(old_tree_id or "")
    open_tree = pygit2_trees(repo)
    old = open_tree(old_tree_id) if known is not None and old_tree_id else None
    if known is None or old is None:
        return
    found = follow(open_tree, old, known, new_tree)
    _MEMO[str(new_tree.id)] = found
    write_counts(os.path.join(common_dir, "convoy", COUNTS_FILE), str(new_tree.id), found)


def pygit2_trees(repo: pygit2.Repository) -> TreeOpener:
    """Open trees through pygit2 (the store's reads); None for anything that is not one."""
    import pygit2

    def open_tree(tree_id: Any) -> Any:
        try:
            found = repo.get(tree_id)
        except (ValueError, pygit2.GitError):
            return None
        return found if isinstance(found, pygit2.Tree) else None

    return open_tree


def walk(open_tree: TreeOpener, tree: Any) -> dict[str, int]:
    """The totals of a tree, counted file by file."""
    return {kind: _entry_count(open_tree, _entry(tree, spec.folder), -1)
            for kind, spec in KINDS.items()}


def follow(open_tree: TreeOpener, old: Any, totals: dict[str, int],
           tree: Any) -> dict[str, int]:
    """The totals of `tree` from those of `old`, opening only the folders that differ.
    Trees are pygit2's or gitconvoy.state.objectfiles' (the quick create's)."""
    return {kind: max(0, totals[kind] + _delta(open_tree, _entry(old, spec.folder),
                                               _entry(tree, spec.folder), -1))
            for kind, spec in KINDS.items()}


def _entry(tree: Any, name: str) -> Any:
    try:
        return tree[name]
    except (KeyError, ValueError):
        return None


def _entry_count(open_tree: TreeOpener, entry: Any, depth: int) -> int:
    """What one entry of a folder at `depth` adds: a folder its files (down to MAX_DEPTH, as
    a read walks), any other entry named `*.yaml` one (a gitlink there is a broken file)."""
    if entry is None:
        return 0
    if entry.filemode != _FOLDER:
        return 1 if depth >= 0 and entry.name.endswith(".yaml") else 0
    folder = open_tree(entry.id)
    if folder is None or depth + 1 > MAX_DEPTH:
        return 0
    return sum(_entry_count(open_tree, child, depth + 1) for child in folder)


def _delta(open_tree: TreeOpener, was: Any, now_: Any, depth: int) -> int:
    """new count − old count of one entry, opening only folders whose ids differ."""
    if was is not None and now_ is not None and was.id == now_.id \
            and was.filemode == now_.filemode:
        return 0
    both_folders = all(e is not None and e.filemode == _FOLDER
                       for e in (was, now_))
    if not both_folders or depth + 1 > MAX_DEPTH:
        return _entry_count(open_tree, now_, depth) - _entry_count(open_tree, was, depth)
    before, after = open_tree(was.id), open_tree(now_.id)
    if before is None or after is None:
        return _entry_count(open_tree, now_, depth) - _entry_count(open_tree, was, depth)
    old_children = {e.name: e for e in before}
    new_children = {e.name: e for e in after}
    return sum(_delta(open_tree, old_children.get(name), new_children.get(name), depth + 1)
               for name in old_children.keys() | new_children.keys())


def read_counts(path: str) -> tuple[str, dict[str, int]] | None:
    """The tree and totals in the file; None for anything else (absent, any bytes)."""
    try:
        with open(path, "rb") as fh:
            words = fh.read(1024).decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    kinds = sorted(KINDS)
    if len(words) != 2 + len(kinds) or words[0] != _VERSION \
            or not _TREE_ID.fullmatch(words[1]) \
            or not all(_NUMBER.fullmatch(w) for w in words[2:]):
        return None
    return words[1], {kind: int(w) for kind, w in zip(kinds, words[2:], strict=True)}


def write_counts(path: str, tree_id: str, counts: dict[str, int]) -> None:
    """Best effort: a file that cannot be written only costs the next process a walk."""
    line = " ".join([_VERSION, tree_id, *(str(counts[k]) for k in sorted(KINDS))]) + "\n"
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(line)
        os.replace(tmp, path)
    except OSError:
        pass
