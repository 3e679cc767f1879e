"""The shape a state tree may have, and its size caps (docs/state.md "Shape and caps").

Many writers share the state branch through a remote, so a commit fetched from it is
untrusted input. Before sync (or a hook, or a fresh clone) merges or adopts one, its tree
must look like the layout: `convoy.yaml` and `.gitattributes` files at the root, one folder
per kind, fan-out folders named by one hex digit at the right depth, `<id>.yaml` files with
valid ids, plain files and folders only (no gitlinks, no symlinks), every file under the
per-file cap and the whole state under the state caps. A tree that breaks a rule is refused
whole, naming the first bad path: a merge that read a gitlink or a file where a folder
belongs as "absent" would delete that folder's beads.

The check follows the change, like the merge: given a tree checked before (and its totals),
subtrees with the same id on both sides are not opened again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pygit2

from gitconvoy.state.layout import KINDS, MAX_FILE_BYTES

# The whole state: twice the 100,000 beads the design is measured at (DESIGN §11); a state
# of a million beads made a fetch hook take 140 s and commands 2 GB (issue 16).
MAX_STATE_FILES = 200_000
# 256 MiB of YAML: about 1.3 KB a file at the file cap, three times a typical bead.
MAX_STATE_BYTES = 256 << 20

ROOT_FILES = ("convoy.yaml", ".gitattributes")
REQUIRED = "convoy.yaml"
FANOUT_DEPTH = 3
_HEX_DIGIT = re.compile(r"[0-9a-f]")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_RECORD_VERSION = "shape-1"

# Plain ints: pygit2 returns modes as enum members, and building 300,000 of them cost more
# than the rest of a 100k-file check.
TREE, BLOB = int(pygit2.GIT_FILEMODE_TREE), int(pygit2.GIT_FILEMODE_BLOB)
_OBJECT_BLOB = int(pygit2.GIT_OBJECT_BLOB)
_MODE_NAMES = {
    BLOB: "a file",
    int(pygit2.GIT_FILEMODE_BLOB_EXECUTABLE): "an executable file",
    TREE: "a folder",
    int(pygit2.GIT_FILEMODE_LINK): "a symlink",
    int(pygit2.GIT_FILEMODE_COMMIT): "a gitlink",
}


@dataclass(frozen=True)
class Limits:
    """The state caps; `git config convoy.maxStateFiles` / `convoy.maxStateBytes` change
    them for one clone (a bigger plan, or a test). The per-file cap is fixed: every clone
    must agree on which files it can read."""

    files: int = MAX_STATE_FILES
    bytes: int = MAX_STATE_BYTES
    file_bytes: int = MAX_FILE_BYTES


@dataclass(frozen=True)
class Checked:
    """A tree that passed the check, with its totals: the next check starts from it."""

    tree: str
    files: int
    bytes: int


class BadShape(Exception):
    """The first path of a tree that breaks the layout or a cap."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def is_valid_id(name: str) -> bool:
    return bool(_ID.fullmatch(name)) and ".." not in name


def bad_name(name: str) -> bool:
    """Names git itself refuses to check out, or that climb out of a folder."""
    return (name in ("", ".", "..") or name.lower() in (".git", "git~1")
            or any(c in name for c in "/\\\0"))


_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.yaml")


def file_name_ok(name: str) -> bool:
    return bool(_FILE.fullmatch(name)) and ".." not in name


def _mode(mode: int) -> str:
    return f"{_MODE_NAMES.get(mode, 'an unknown entry')} (mode {mode:06o})"


class _Walk:
    """One check: the new side's totals (validated), the old side's (already trusted)."""

    def __init__(self, repo: pygit2.Repository, limits: Limits) -> None:
        self.repo = repo
        self.limits = limits
        self.files = self.bytes = 0  # added: files of the new tree in the parts walked
        self.gone_files = self.gone_bytes = 0  # removed: the old tree's parts replaced

    def tree(self, oid: Any, path: str) -> pygit2.Tree:
        try:
            obj = self.repo[oid]
        except (KeyError, ValueError, pygit2.GitError):
            raise BadShape(path, "is missing from the object database") from None
        if not isinstance(obj, pygit2.Tree):
            raise BadShape(path, f"is a {obj.type_str} object where a folder belongs")
        return obj

    def entries(self, tree: pygit2.Tree, prefix: str) -> dict[str, tuple[Any, int]]:
        """Name -> (entry, mode); a name that is not UTF-8 or appears twice, or entries out
        of git's order, refuse the tree."""
        out: dict[str, tuple[Any, int]] = {}
        previous = b""
        for entry in tree:
            raw = entry.raw_name
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadShape(f"{prefix}{raw!r}", "is not a valid name (not UTF-8)") from None
            mode = int(entry.filemode)
            key = raw + (b"/" if mode == TREE else b"")
            if name in out or key <= previous:
                raise BadShape(prefix + name, "appears twice or out of order (a hand-made "
                               "tree)")
            previous = key
            out[name] = (entry, mode)
        return out

    @staticmethod
    def expect(name: str, path: str, depth: int, kind: str | None) -> str:
        """Whether `name` must be a "folder" or a "file" here; raises BadShape if it has no
        place in the layout."""
        if depth > FANOUT_DEPTH or (depth and not KINDS[kind or ""].fanout):
            if file_name_ok(name):  # the common case first: one regex per file
                return "file"
            raise BadShape(path, "is not a valid name" if bad_name(name) else
                           "is not a valid name (<id>.yaml)")
        if bad_name(name):
            raise BadShape(path, "is not a valid name")
        if depth == 0:
            if name in ROOT_FILES:
                return "file"
            if name in KINDS:
                return "folder"
            raise BadShape(path, "is not part of the state layout")
        if not _HEX_DIGIT.fullmatch(name):
            raise BadShape(path, "is not a valid name (a fan-out folder is one hex digit)")
        return "folder"

    def new(self, entry: Any, mode: int, name: str, prefix: str, depth: int,
            kind: str | None, old: Any = None) -> None:
        """Validate one entry of the new tree (and what lies below it) and count it."""
        path = prefix + name
        want = self.expect(name, path, depth, kind)
        if want == "folder":
            if mode != TREE:
                raise BadShape(path, f"is {_mode(mode)}; a folder belongs here")
            sub_kind = name if depth == 0 else kind
            old_tree = None
            if old is not None and old.filemode == TREE:
                old_tree = self.tree(old.id, path)
            elif old is not None:
                self.gone(old, path)
            self.diff(self.tree(entry.id, path), old_tree, path + "/", depth + 1, sub_kind)
            return
        if mode != BLOB:
            raise BadShape(path, f"is {_mode(mode)}; a file belongs here")
        if old is not None:
            self.gone(old, path)
        try:
            kind_code, size = self.repo.odb.read_header(entry.id)
        except (KeyError, ValueError, pygit2.GitError):
            raise BadShape(path, "is missing from the object database") from None
        if kind_code != _OBJECT_BLOB:
            raise BadShape(path, "is not a file object")
        if size > self.limits.file_bytes:
            raise BadShape(path, f"is {size} bytes, over the cap of {self.limits.file_bytes} "
                           "bytes for one state file")
        self.files += 1
        self.bytes += size
        if self.files > self.limits.files or self.bytes > self.limits.bytes:
            raise _over_caps(self.files, self.bytes, self.limits)  # stop reading early

    def gone(self, entry: Any, path: str) -> None:
        """Count an entry of the old (checked) tree that the new tree replaced or removed."""
        mode = int(entry.filemode)
        if mode == TREE:
            for child in self.tree(entry.id, path):
                self.gone(child, f"{path}/{child.name}")
        elif mode == BLOB:
            self.gone_files += 1
            self.gone_bytes += self.repo.odb.read_header(entry.id)[1]

    def diff(self, tree: pygit2.Tree, old: pygit2.Tree | None, prefix: str, depth: int,
             kind: str | None) -> None:
        now = self.entries(tree, prefix)
        before = {e.name: e for e in old} if old is not None else {}
        for name, (entry, mode) in now.items():
            was = before.get(name)
            if was is not None and was.id == entry.id and was.filemode == mode:
                continue  # the same subtree or file as in the checked tree
            self.new(entry, mode, name, prefix, depth, kind, was)
        for name, was in before.items():
            if name not in now:
                self.gone(was, prefix + name)


def path_problem(path: str) -> str | None:
    """Why a state file's path has no place in the layout (None: it has one). For the merge
    driver, which sees one file and never the tree."""
    parts = path.split("/")
    kind: str | None = None
    try:
        for depth, name in enumerate(parts):
            want = _Walk.expect(name, "/".join(parts[: depth + 1]), depth, kind)
            if (want == "file") != (depth == len(parts) - 1):
                where = "/".join(parts[: depth + 1])
                return f"{where}: a {want} belongs here in the state's layout"
            kind = name if depth == 0 else kind
    except BadShape as exc:
        return str(exc)
    return None


def check_tree(repo: pygit2.Repository, tree: pygit2.Tree, limits: Limits,
               known: Checked | None = None) -> Checked:
    """The totals of a tree that has the state's shape; raises BadShape naming the first
    path that breaks it. `known`, a tree checked before, makes the cost follow the change."""
    base = None
    if known is not None:
        found = repo.get(known.tree)
        base = found if isinstance(found, pygit2.Tree) else None
    walk = _Walk(repo, limits)
    if base is not None and base.id == tree.id:
        assert known is not None
        files, size = known.files, known.bytes
    else:
        walk.diff(tree, base, "", 0, None)
        files, size = walk.files, walk.bytes
        if base is not None and known is not None:
            files += known.files - walk.gone_files
            size += known.bytes - walk.gone_bytes
    if REQUIRED not in tree:
        raise BadShape(REQUIRED, "is missing: this is not a gitconvoy state")
    if files > limits.files or size > limits.bytes:
        raise _over_caps(files, size, limits)
    return Checked(str(tree.id), files, size)


def _over_caps(files: int, size: int, limits: Limits) -> BadShape:
    if files > limits.files:
        return BadShape("the whole state", f"holds more than {limits.files} files (the cap; "
                        "git config convoy.maxStateFiles)")
    return BadShape("the whole state", f"holds more than {limits.bytes} bytes (the cap; git "
                    "config convoy.maxStateBytes)")


def read_checked(path: str) -> Checked | None:
    """The last tree that passed, from a runtime file; any bytes that do not read as one
    line `shape-1 <tree> <files> <bytes>` mean "none" (the next check walks everything)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(200)
        words = raw.decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(words) != 4 or words[0] != _RECORD_VERSION:
        return None
    tree, files, size = words[1:]
    if not re.fullmatch(r"[0-9a-f]{40}", tree) or not files.isdigit() or not size.isdigit():
        return None
    return Checked(tree, int(files), int(size))


def write_checked(path: str, checked: Checked) -> None:
    """Best effort: losing the record only costs one full walk."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(f"{_RECORD_VERSION} {checked.tree} {checked.files} {checked.bytes}\n")
        os.replace(tmp, path)
    except OSError:
        pass
