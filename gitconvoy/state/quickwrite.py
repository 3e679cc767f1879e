"""One state transaction without pygit2: a quick `bead create`.

Importing pygit2 costs about 90 ms here, most of a create (issue 12 asks for 120 ms in
all). A create reads a handful of objects and writes seven, so a transaction whose reads
stay within single files runs here instead: the same `Tx` and the same edits as the store's
(gitconvoy.state.store), over a `Source` that reads objects as files
(gitconvoy.state.objectfiles), then the same tree surgery, a commit of the same shape, and
the compare-and-swap done by `git update-ref <ref> <new> <old>` (git's own locking,
packed refs and reflog; hooks off, as libgit2 runs none).

Everything that would need more raises `Unsure` before anything is written, and the caller
runs the full command instead: a full load (convoys to join), a count this clone has not
kept for the tree, an identity not remembered for the current config, an unusual object
database, a lost race. So this path decides nothing the store would decide otherwise; a
test runs both on the same states and compares the commits.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from gitconvoy.state import identity
from gitconvoy.state.layout import KINDS, kind_of_path
from gitconvoy.state.objectfiles import (
    BLOB,
    COMMIT,
    FILE_MODE,
    TREE,
    TREE_MODE,
    Entry,
    ObjectFiles,
    Tree,
    Unsure,
    tree_bytes,
)
from gitconvoy.state.reffiles import Entry as Remembered
from gitconvoy.state.reffiles import Place
from gitconvoy.state.snapshot import Loaded, Snapshot, Source, refuse_broken_config
from gitconvoy.state.tx import Tx

T = TypeVar("T")
COUNTS_FILE = "counts"


def transact(place: Place, remembered: Remembered, commit: str,
             mutate: Callable[[Tx], T], message: Callable[[T], str]) -> T:
    """Apply `mutate` to the state at `commit` and move the ref there from `commit`; Unsure
    (nothing written but unreferenced objects) whenever the store must do it."""
    if len(commit) != 40 or _shared(place.common_dir):
        raise Unsure("a SHA-256 or shared repository")
    objects = ObjectFiles(os.path.join(place.common_dir, "objects"))
    tree = objects.tree(objects.commit_tree(commit))
    counts_path = os.path.join(place.common_dir, "convoy", COUNTS_FILE)
    counted: dict[str, int] | None = None

    def count_all(_tree: Any) -> dict[str, int]:
        nonlocal counted
        counted = _counts(counts_path, objects, tree)
        if counted is None:
            raise Unsure("no counts kept to follow")
        return counted

    base = Snapshot(commit, tree.id, source=Source(objects, tree,  # type: ignore[arg-type]
                                                    _no_full_load, count_all))
    tx = Tx(base)
    result = mutate(tx)
    if not tx.changes:
        return result
    refuse_broken_config(base.config_problem())
    text = message(result)
    new_tree = write_changes(objects, tree, tx.changes)
    config_get = remembered.ident
    author = identity.resolve("author", config_get)
    committer = identity.resolve("committer", config_get)
    body = b"".join([
        b"tree %s\n" % new_tree.encode("ascii"),
        b"parent %s\n" % commit.encode("ascii"),
        b"author " + signature(author) + b"\n",
        b"committer " + signature(committer) + b"\n",
        b"\n", (text + "\n").encode("utf-8"),
    ])
    new_commit = objects.write(COMMIT, body)
    if not update_ref(place.git_dir, remembered.ref, new_commit, commit,
                      f"git convoy: {text.splitlines()[0]}"):
        raise Unsure("the ref moved, or git could not move it")
    # Written: whatever happens now must not send the caller to the full path (a second
    # create); a count not kept only costs the next create its speed.
    with contextlib.suppress(Exception):
        if counted is not None:
            _carry_counts(counts_path, new_tree, counted, tree, tx.changes)
    return result


def actor(remembered: Remembered) -> str:
    """Who `created_by` names: as Store.identity."""
    return remembered.ident("user.name") or os.environ.get("USER") or "unknown"


def _no_full_load(_tree: Any) -> Loaded:
    raise Unsure("this write reads the whole state")


def _shared(common_dir: str) -> bool:
    """core.sharedRepository changes the modes of new files: left to libgit2."""
    try:
        with open(os.path.join(common_dir, "config"), "rb") as fh:
            return b"sharedrepository" in fh.read().lower()
    except OSError:
        return True


def signature(who: identity.Who) -> bytes:
    """`Name <email> seconds +hhmm`, as pygit2.Signature writes it; Unsure for a name or
    address libgit2 would refuse or trim."""
    for value in (who.name, who.email):
        if not value or value != value.strip() or any(c in value for c in "<>\n\0"):
            raise Unsure("an identity libgit2 would refuse or trim")
    if who.time is None:
        seconds = int(time.time())
        offset = time.localtime(seconds).tm_gmtoff // 60
    else:
        seconds, offset = who.time, who.offset or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return f"{who.name} <{who.email}> {seconds} {sign}{hours:02d}{minutes:02d}".encode()


def write_changes(objects: ObjectFiles, tree: Tree | None,
                  changes: dict[str, bytes | None]) -> str:
    """The store's tree surgery (trees.apply_entries): blobs for the changed files, new trees
    only on their paths, a folder left empty dropped, a non-folder in a folder's place
    replaced."""
    here: dict[str, bytes | None] = {}
    below: dict[str, dict[str, bytes | None]] = {}
    for path, data in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head, {})[rest] = data
        else:
            here[head] = data
    entries = {e.name: e for e in tree} if tree is not None else {}
    for name, data in here.items():
        if data is None:
            entries.pop(name, None)
        else:
            entries[name] = Entry(name, objects.write(BLOB, data), FILE_MODE)
    for name, sub in below.items():
        existing = entries.get(name)
        subtree = objects.tree(existing.id) if existing is not None \
            and existing.filemode == TREE_MODE else None
        new_id = write_changes(objects, subtree, sub)
        if new_id == EMPTY_TREE:
            entries.pop(name, None)
        else:
            entries[name] = Entry(name, new_id, TREE_MODE)
    return objects.write(TREE, tree_bytes(list(entries.values())))


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def update_ref(git_dir: str, ref: str, new: str, old: str, message: str) -> bool:
    """Move `ref` from `old` to `new` with git's own compare-and-swap; False when it did not
    (moved meanwhile, locked, or git missing). No hook runs, as with libgit2's writes."""
    if "\0" in message or "\0" in git_dir:
        return False  # no argument can hold one
    args = ["git", f"--git-dir={git_dir}", "-c", "core.hooksPath=/dev/null", "update-ref",
            "-m", message, ref, new, old]
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        pid = os.posix_spawnp("git", args, os.environ, file_actions=quiet)
        _, status = os.waitpid(pid, 0)
    except OSError:
        return False
    return os.waitstatus_to_exitcode(status) == 0


def _counts(path: str, objects: ObjectFiles, tree: Tree) -> dict[str, int] | None:
    """The kind totals of this tree: those kept for it (gitconvoy.state.counts), or followed
    from the tree they were kept for through the folders that differ (after another
    command's write); None when none are kept."""
    from gitconvoy.state.counts import follow, read_counts

    known = read_counts(path)
    if known is None or known[0] == tree.id:
        return known[1] if known is not None else None

    def open_tree(tree_id: Any) -> Tree | None:
        try:
            return objects.tree(tree_id)
        except KeyError:
            return None

    old = open_tree(known[0])
    return follow(open_tree, old, known[1], tree) if old is not None else None


def _carry_counts(path: str, new_tree: str, counted: dict[str, int], base: Tree,
                  changes: dict[str, bytes | None]) -> None:
    """Keep the totals for the tree just written: files added minus files removed."""
    from gitconvoy.state.counts import write_counts

    totals = dict(counted)
    for changed, data in changes.items():
        kind = kind_of_path(changed)
        if kind is None or kind not in KINDS or not changed.endswith(".yaml"):
            continue
        existed = changed in base
        totals[kind] = totals.get(kind, 0) + (data is not None and not existed) \
            - (data is None and existed)
    write_counts(path, new_tree, totals)
