"""The store: a repository and its state ref, the only writer of state objects.

It never touches the working tree, the index or HEAD: every write (a transaction) builds
blobs, trees and a commit in the object database and then moves the state ref only if it
still points where it was read (compare-and-swap); a lost race re-reads and re-applies.
Reads go through gitconvoy.state.snapshot (lazy) and gitconvoy.state.cache (full loads).
The neighbouring modules each have one job: codec (YAML), layout (paths), trees (tree
surgery), snapshot, cache, tx (a transaction's view).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shlex
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pygit2

from gitconvoy import faults
from gitconvoy.errors import ConvoyError, LostRace
from gitconvoy.state import cache, counts, identity, model, packs, reffiles
from gitconvoy.state.codec import dump_yaml
from gitconvoy.state.layout import GITATTRIBUTES, KINDS
from gitconvoy.state.snapshot import (
    Loaded,
    Snapshot,
    Source,
    parse_config,
    parse_file,
    patch,
    refuse_broken_config,
)
from gitconvoy.state.trees import apply_changes, apply_entries, changed_paths, three_way
from gitconvoy.state.tx import Tx

DEFAULT_REF = reffiles.DEFAULT_REF
MAX_ATTEMPTS = 200
# A ref lock older than this was left behind by a crash (writers hold it for microseconds).
STALE_LOCK_SECONDS = 10

T = TypeVar("T")


def _config_parameters() -> dict[str, str]:
    """Keys given as `git -c k=v convoy …` arrive in GIT_CONFIG_PARAMETERS; pygit2 ignores it."""
    raw = os.environ.get("GIT_CONFIG_PARAMETERS", "")
    out: dict[str, str] = {}
    if not raw:
        return out
    try:
        words = shlex.split(raw)
    except ValueError:
        return out
    for word in words:
        key, _, value = word.partition("=")
        section, _, rest = key.partition(".")
        sub, _, name = rest.rpartition(".")
        norm = f"{section.lower()}.{sub + '.' if sub else ''}{name.lower()}"
        out[norm] = value
    return out


class Store:
    """A repository and its state ref: reads through snapshots, writes through transactions."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self._params = _config_parameters()
        self.ref = self.config_get("convoy.ref") or DEFAULT_REF
        if not self.ref.startswith("refs/"):
            self.ref = f"refs/heads/{self.ref}"
        self._snapshot: Snapshot | None = None

    @classmethod
    def open(cls, path: str | None = None) -> Store:
        """Honour GIT_DIR (set in hooks and worktrees), which pygit2's discovery ignores."""
        git_dir = os.environ.get("GIT_DIR")
        if git_dir and path is None:
            found: str | None = git_dir
        else:
            found = pygit2.discover_repository(path or os.getcwd())
        if not found:
            raise ConvoyError(
                "not a git repository (or any parent folder): run git convoy inside a repository"
            )
        try:
            return cls(pygit2.Repository(found))
        except pygit2.GitError as exc:
            raise ConvoyError(f"cannot open the git repository at {found}: {exc}") from None

    @property
    def common_dir(self) -> str:
        """The .git folder shared by all worktrees (for the cache and the plugin's settings)."""
        path = self.repo.path.rstrip("/")
        commondir = os.path.join(path, "commondir")
        if os.path.exists(commondir):
            with open(commondir) as fh:
                rel = fh.read().strip()
            return os.path.normpath(os.path.join(path, rel))
        return path

    def config_get(self, key: str) -> str | None:
        section, _, rest = key.partition(".")
        sub, _, name = rest.rpartition(".")
        norm = f"{section.lower()}.{sub + '.' if sub else ''}{name.lower()}"
        if norm in self._params:
            return self._params[norm]
        try:
            return self.repo.config[key]
        except (KeyError, pygit2.GitError):
            return None

    def identity(self) -> str:
        return self.config_get("user.name") or os.environ.get("USER") or "unknown"

    def clone_id(self) -> str:
        """A random id for this clone (.git/convoy/id), so the feeder repairs only dispatches
        it made itself, never a claim another machine holds. A file that does not hold one
        (empty after a crash, any bytes after a disk error) is replaced by a new id."""
        path = os.path.join(self.common_dir, "convoy", "id")
        found = _read_clone_id(path)
        if found:
            return found
        stale = os.path.exists(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(os.urandom(6).hex() + "\n")
        try:
            if stale:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # complete or absent, never empty; a concurrent one wins
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        found = _read_clone_id(path)
        if not found:
            raise ConvoyError(f"cannot write this clone's id to {path}: check its permissions")
        return found

    def signature(self, role: str = "committer") -> pygit2.Signature:
        """The author or committer, with git's precedence (gitconvoy.state.identity)."""
        who = identity.resolve(role, self.config_get)
        if who.time is None:
            return pygit2.Signature(who.name, who.email)
        return pygit2.Signature(who.name, who.email, who.time, who.offset or 0)

    def head_of(self, refname: str) -> str | None:
        try:
            return str(self.repo.references[refname].resolve().target)
        except (KeyError, pygit2.GitError):
            return None

    def state_commit(self) -> str | None:
        return self.head_of(self.ref)

    def exists(self) -> bool:
        return self.state_commit() is not None

    def snapshot(self, *, fresh: bool = False) -> Snapshot:
        """The state at the ref's current commit; repeated calls within a process are free."""
        commit = self.state_commit()
        if commit is None:
            raise ConvoyError(
                f"no gitconvoy state in this repository ({self.ref} does not exist): "
                "run 'git convoy init'"
            )
        if not fresh and self._snapshot is not None and self._snapshot.commit == commit:
            return self._snapshot
        self._snapshot = self.read_commit(commit)
        return self._snapshot

    def held(self) -> Snapshot | None:
        """The snapshot this process read or wrote last, wherever the ref points now."""
        return self._snapshot

    def use_partial(self, commit: str, loaded: Loaded, outside_targets: frozenset[str],
                    outside_flying: bool) -> Snapshot:
        """Serve a partial snapshot of `commit` (Snapshot.narrowed: a hook's view of the
        beads one feeder step reads, gitconvoy.flow.feedview) while the ref stays there;
        any other commit is read as usual."""
        tree = self._tree_of(commit)
        if loaded.tree != str(tree.id):  # a write on it would drop what the other tree holds
            raise ValueError(f"a view of tree {loaded.tree} offered for {tree.id}")
        self._snapshot = Snapshot.narrowed(commit, loaded, self._source(tree), outside_targets,
                                           outside_flying)
        return self._snapshot

    def read_commit(self, commit_id: str) -> Snapshot:
        tree = self._tree_of(commit_id)
        return Snapshot(commit_id, str(tree.id), source=self._source(tree))

    def _tree_of(self, commit_id: str) -> pygit2.Tree:
        commit = self.repo.get(commit_id)
        if commit is None:
            raise ConvoyError(f"state commit {commit_id} is missing from the object database")
        return commit.peel(pygit2.Tree)

    def _source(self, tree: pygit2.Tree) -> Source:
        return Source(self.repo, tree, lambda t: cache.load_all(self.repo, self.common_dir, t),
                      lambda t: counts.kind_counts(self.repo, self.common_dir, t))

    def transact(
        self,
        mutate: Callable[[Tx], T],
        message: str | Callable[[T], str],
        *,
        attempts: int = MAX_ATTEMPTS,
        repairing_config: bool = False,
    ) -> T:
        """Apply `mutate` to a fresh snapshot and CAS the ref; re-apply on a lost race.
        Nothing is written on a state whose convoy.yaml is unreadable or newer than this
        gitconvoy (only `init --repair` passes `repairing_config`)."""
        deadline = time.monotonic() + 60
        for attempt in range(attempts):
            base = self.snapshot(fresh=attempt > 0)
            tx = Tx(base)
            result = mutate(tx)
            if not tx.changes:
                return result
            if not repairing_config:
                refuse_broken_config(base.config_problem())
            text = message(result) if callable(message) else message
            new_commit = self._write_commit(base, tx.changes, text)
            faults.point("store.after_objects")
            if self._compare_and_swap(base.commit, new_commit, text):
                faults.point("store.after_cas")
                counts.carry(self.repo, self.common_dir, base.tree, self._tree_of(new_commit))
                self._snapshot = self._successor(base, new_commit, tx.changes)
                return result
            if time.monotonic() > deadline:
                break
            time.sleep(random.uniform(0, min(0.002 * (attempt + 1), 0.05)))
        self._refuse_stale_lock(self.ref, older_than=0)  # a crash's lock, not a busy writer
        raise LostRace(
            f"gave up after {attempt + 1} attempts: {self.ref} kept moving under concurrent "
            "writers; nothing was written, run the command again"
        )

    def _successor(self, base: Snapshot, commit: str,
                   changes: dict[str, bytes | None]) -> Snapshot:
        """The snapshot at the commit this process just wrote. When the base had the whole
        state parsed, it is patched with the files this write changed (parsed again from
        the new tree, as the cache patches), so a process that writes several times (the
        feeder, stage, import) loads the state once, not once per write."""
        tree = self._tree_of(commit)
        loaded = base.full_load()
        if loaded is None:
            return Snapshot(commit, str(tree.id), source=self._source(tree))
        patched = patch(self.repo, loaded, tree, sorted(changes))
        if base.partial:  # a feeder step's writes stay within the beads it holds
            return Snapshot.narrowed(commit, patched, self._source(tree), base.outside_targets,
                                     base.outside_flying)
        return Snapshot.of_loaded(commit, patched, self._source(tree))

    def initialise(self, config: model.Config) -> str:
        """Create the state ref from nothing (an orphan commit); CAS against absence."""
        changes = {
            "convoy.yaml": dump_yaml(config.to_dict()),
            ".gitattributes": GITATTRIBUTES.encode(),
        }
        empty = Snapshot(None, None, config, {name: {} for name in KINDS})
        commit = self._write_commit(empty, changes, f"init: prefix {config.prefix}")
        if not self._compare_and_swap(None, commit, "git convoy init"):
            raise LostRace(f"{self.ref} was created by someone else meanwhile; nothing written")
        return commit

    def _write_commit(self, base: Snapshot, changes: dict[str, bytes | None], msg: str) -> str:
        repo = self.repo
        base_tree = repo[base.tree] if base.tree else None
        if len(changes) > packs.PACK_ABOVE and packs.usable(repo):
            objects_dir = os.path.join(self.common_dir, "objects")
            tree_id = packs.apply_changes_packed(repo, base_tree, changes, objects_dir)
        else:
            tree_id = apply_changes(repo, base_tree, changes)
        parents = [pygit2.Oid(hex=base.commit)] if base.commit else []
        oid = repo.create_commit(None, self.signature("author"), self.signature(), msg + "\n",
                                 tree_id, parents)
        return str(oid)

    def _compare_and_swap(self, old: str | None, new: str, message: str) -> bool:
        try:
            with self.repo.transaction() as txn:
                txn.lock_ref(self.ref)
                faults.point("store.in_lock")
                if self.head_of(self.ref) != old:
                    raise _Moved
                txn.set_target(self.ref, new, signature=None,
                               message=f"git convoy: {message.splitlines()[0]}")
        except _Moved:
            return False
        except pygit2.GitError as exc:
            if "lock" in str(exc).lower() or "exists" in str(exc).lower():
                self._refuse_stale_lock(self.ref)
                return False
            raise
        return True

    def _refuse_stale_lock(self, refname: str, older_than: float = STALE_LOCK_SECONDS) -> None:
        """A writer holds a ref's lock for microseconds; one that is seconds old was left by a
        crash, and retrying for a minute would only hide that from the user."""
        path = os.path.join(self.common_dir, *refname.split("/")) + ".lock"
        try:
            age = time.time() - os.stat(path).st_mtime
        except OSError:
            return
        if age > older_than:
            raise LostRace(
                f"{path} is {age:.0f} s old: a git process crashed or is stuck while writing "
                f"{refname}; if no git is running, delete that file and run the command again"
            )

    def cas_ref(self, refname: str, old: str | None, new: str | None, message: str) -> bool:
        """Move any ref (a branch, a target) only if it still points at `old` (None: absent).
        `new` None deletes it. False when someone else moved it first."""
        try:
            with self.repo.transaction() as txn:
                txn.lock_ref(refname)
                faults.point("store.in_ref_lock")
                if self.head_of(refname) != old:
                    raise _Moved
                if new is None:
                    txn.remove(refname)
                else:
                    txn.set_target(refname, new, signature=None,
                                   message=f"git convoy: {message}")
        except _Moved:
            return False
        except pygit2.GitError as exc:
            if "lock" in str(exc).lower() or "exists" in str(exc).lower():
                self._refuse_stale_lock(refname)  # a crash's lock: named, not a lost race
                return False
            raise
        return True

    def merge_state_trees(
        self, base: str | None, ours: str, theirs: str,
        resolve: Callable[[str, bytes | None, bytes | None, bytes | None],
                          dict[str, bytes | None]],
    ) -> str:
        """The tree of a three-way merge of two state commits, written in memory.

        Subtrees with one id on both sides are skipped, so the cost follows the number of
        changed files, not the size of the state; `resolve` decides files both sides changed.
        """
        repo = self.repo
        trees = [repo[c].peel(pygit2.Tree) if c else None for c in (base, ours, theirs)]
        edits: dict[str, tuple[pygit2.Oid, int] | None] = {}
        three_way(repo, trees[0], trees[1], trees[2], "", resolve, edits)
        if not edits:
            return str(trees[1].id)
        return str(apply_entries(repo, trees[1], edits))

    def write_merge_commit(self, tree: str, parents: list[str], message: str) -> str:
        oid = self.repo.create_commit(
            None, self.signature("author"), self.signature(), message + "\n",
            pygit2.Oid(hex=tree),
            [pygit2.Oid(hex=p) for p in parents],
        )
        return str(oid)

    def changed_files(self, old: str | None, new: str) -> list[tuple[str, Any, Any]]:
        """The state files that differ between two commits, each parsed on both sides: an
        object (model.Config for convoy.yaml), the SchemaError naming what is wrong, or None
        where the file is absent or not a state file. `old` None is the empty state. Only
        subtrees whose ids differ are opened, so the cost follows the change, not the size."""
        repo = self.repo
        trees = [repo[c].peel(pygit2.Tree) if c else None for c in (old, new)]
        return self._file_changes(trees[0], trees[1], None) or []

    def tree_changes(self, old_tree: str, new_tree: str,
                     limit: int) -> list[tuple[str, Any, Any]] | None:
        """changed_files between two state trees, or None when more than `limit` files
        differ (counted before any is parsed) or a tree is missing."""
        trees = [self.repo.get(t) for t in (old_tree, new_tree)]
        if not all(isinstance(t, pygit2.Tree) for t in trees):
            return None
        return self._file_changes(trees[0], trees[1], limit)

    def _file_changes(self, old: pygit2.Tree | None, new: pygit2.Tree | None,
                      limit: int | None) -> list[tuple[str, Any, Any]] | None:
        repo = self.repo
        trees = [old, new]
        paths: list[str] = []
        changed_paths(repo, trees[0], trees[1], "", paths)
        if limit is not None and len(paths) > limit:
            return None
        out: list[tuple[str, Any, Any]] = []
        for path in paths:
            sides: list[Any] = []
            for tree in trees:
                try:
                    entry = tree[path] if tree is not None else None
                except (KeyError, ValueError):
                    entry = None
                if entry is None or entry.type_str != "blob":
                    sides.append(None)
                elif path == "convoy.yaml":
                    sides.append(parse_config(repo, tree))  # type: ignore[arg-type]
                else:
                    sides.append(parse_file(repo, path, entry.id))
            out.append((path, sides[0], sides[1]))
        return out

    def last_readable_config(self, limit: int = 1000) -> tuple[str, model.Config] | None:
        """The newest commit on the state's first-parent line whose convoy.yaml reads, and
        that config (for `init --repair`); None within `limit` commits."""
        commit = self.repo.get(self.state_commit() or "")
        for _ in range(limit):
            if not isinstance(commit, pygit2.Commit):
                return None
            got = parse_config(self.repo, commit.peel(pygit2.Tree))
            if isinstance(got, model.Config):
                return str(commit.id), got
            commit = commit.parents[0] if commit.parents else None
        return None

    def is_state_commit(self, commit: str) -> bool:
        """A commit of a state branch has convoy.yaml at its root."""
        return "convoy.yaml" in self.repo[commit].peel(pygit2.Tree)


_CLONE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _read_clone_id(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            found = fh.read(200).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return found if _CLONE_ID.fullmatch(found) else None


class _Moved(Exception):
    """The ref no longer points where we read it: abandon this transaction."""
