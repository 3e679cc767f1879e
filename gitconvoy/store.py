"""The state ref: snapshot reads (with a blob-keyed cache) and compare-and-swap transactions.

This is the only module that writes git objects and moves refs with pygit2. It never touches
the working tree, the index or HEAD: every write builds blobs, trees and a commit in the
object database and then moves the state ref only if it still points where it was read.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pygit2
import yaml

from . import model
from .errors import ConvoyError, LostRace, SchemaError

DEFAULT_REF = "refs/heads/convoy/state"
CACHE_VERSION = 2
MAX_ATTEMPTS = 200

GITATTRIBUTES = (
    "# gitconvoy: state files merge field by field (git convoy merge-driver)\n"
    "*.yaml merge=convoy\n"
)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

T = TypeVar("T")


# --- YAML -------------------------------------------------------------------------------


def dump_yaml(data: dict[str, Any]) -> bytes:
    text = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
        default_flow_style=False,
    )
    return text.encode("utf-8")


def load_yaml(raw: bytes, path: str) -> Any:
    """safe_load, plus a refusal of anchors and aliases (a billion-laughs file is an error)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(path, None, "is not valid UTF-8") from None
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=_Loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    line = event.start_mark.line + 1
                    raise SchemaError(
                        path, None, f"line {line}: YAML anchors and aliases are not allowed"
                    )
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SchemaError(path, None, f"{where}{problem}") from None


# --- object kinds and their paths -------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One folder of the state tree: which class it holds and whether it fans out."""

    folder: str
    cls: Any
    fanout: bool


KINDS: dict[str, Kind] = {
    "beads": Kind("beads", model.Bead, True),
    "convoys": Kind("convoys", model.Convoy, False),
    "mrs": Kind("mrs", model.MergeRequest, False),
}
_KIND_OF_CLASS: dict[type, str] = {k.cls: name for name, k in KINDS.items()}


def register_kind(name: str, cls: Any, fanout: bool = False) -> None:
    """Later capabilities (merge requests, reviews) add their own folders here."""
    KINDS[name] = Kind(name, cls, fanout)
    _KIND_OF_CLASS[cls] = name


def object_path(kind: str, obj_id: str) -> str:
    """beads fan out into 256 folders by a hash of the id, so one write rewrites small trees."""
    spec = KINDS[kind]
    if spec.fanout:
        bucket = hashlib.sha1(obj_id.encode()).hexdigest()[:2]
        return f"{spec.folder}/{bucket}/{obj_id}.yaml"
    return f"{spec.folder}/{obj_id}.yaml"


# --- snapshots --------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The parsed state at one commit. Objects are shared with the cache: never mutate them."""

    commit: str | None
    tree: str | None
    config: model.Config
    objects: dict[str, dict[str, Any]]
    errors: list[SchemaError] = field(default_factory=list)
    error_ids: dict[str, SchemaError] = field(default_factory=dict)

    @property
    def beads(self) -> dict[str, model.Bead]:
        return self.objects["beads"]

    @property
    def convoys(self) -> dict[str, model.Convoy]:
        return self.objects["convoys"]

    def bead(self, bead_id: str) -> model.Bead:
        found = self.beads.get(bead_id)
        if found is not None:
            return found
        if bead_id in self.error_ids:
            raise self.error_ids[bead_id]
        raise ConvoyError(f"unknown bead '{bead_id}': see 'git convoy bead list'")

    def convoy(self, convoy_id: str) -> model.Convoy:
        found = self.convoys.get(convoy_id)
        if found is not None:
            return found
        if convoy_id in self.error_ids:
            raise self.error_ids[convoy_id]
        raise ConvoyError(f"unknown convoy '{convoy_id}': see 'git convoy list --all'")


# --- repository access ------------------------------------------------------------------


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
    """A repository and its state ref."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self._params = _config_parameters()
        self.ref = self.config_get("convoy.ref") or DEFAULT_REF
        if not self.ref.startswith("refs/"):
            self.ref = f"refs/heads/{self.ref}"
        self._snapshot: Snapshot | None = None

    # ---- opening, config ----

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

    def signature(self) -> pygit2.Signature:
        name = self.config_get("user.name") or "git-convoy"
        email = self.config_get("user.email") or "git-convoy@localhost"
        return pygit2.Signature(name, email)

    def head_of(self, refname: str) -> str | None:
        try:
            return str(self.repo.references[refname].resolve().target)
        except (KeyError, pygit2.GitError):
            return None

    # ---- reading ----

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

    def read_commit(self, commit_id: str) -> Snapshot:
        commit = self.repo.get(commit_id)
        if commit is None:
            raise ConvoyError(f"state commit {commit_id} is missing from the object database")
        return self._read_tree(commit.peel(pygit2.Tree), commit_id)

    def _cache_file(self) -> str:
        return os.path.join(self.common_dir, "convoy", "cache", "snapshot.pickle")

    def _load_cache(self) -> dict[str, Any]:
        try:
            with open(self._cache_file(), "rb") as fh:
                data = pickle.load(fh)
            if data.get("version") == CACHE_VERSION:
                return data
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                TypeError, ValueError):
            pass
        return {"version": CACHE_VERSION, "tree": None, "blobs": {}}

    def _save_cache(self, data: dict[str, Any]) -> None:
        path = self._cache_file()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs speed

    def _read_tree(self, tree: pygit2.Tree, commit_id: str | None) -> Snapshot:
        cache = self._load_cache()
        tree_id = str(tree.id)
        if cache.get("tree") == tree_id and "snapshot" in cache:
            snap: Snapshot = cache["snapshot"]
            snap.commit = commit_id
            return snap
        blobs: dict[str, Any] = cache["blobs"]
        used: dict[str, Any] = {}
        errors: list[SchemaError] = []
        error_ids: dict[str, SchemaError] = {}

        def parse(path: str, blob_id: str, build: Callable[[Any, str], Any]) -> Any:
            hit = used.get(blob_id) or blobs.get(blob_id)
            if hit is None:
                try:
                    hit = build(load_yaml(self.repo[blob_id].data, path), path)
                except SchemaError as exc:
                    hit = exc
                except ConvoyError as exc:
                    hit = SchemaError(path, None, exc.message)
            used[blob_id] = hit
            return hit

        config = model.Config()
        if "convoy.yaml" in tree:
            got = parse("convoy.yaml", str(tree["convoy.yaml"].id), model.Config.from_dict)
            if isinstance(got, SchemaError):
                errors.append(got)
            else:
                config = got

        objects: dict[str, dict[str, Any]] = {name: {} for name in KINDS}
        for name, spec in KINDS.items():
            if spec.folder not in tree:
                continue
            for path, blob_id in _walk_yaml(self.repo, tree[spec.folder], spec.folder):
                got = parse(path, blob_id, spec.cls.from_dict)
                obj_id = os.path.basename(path)[: -len(".yaml")]
                if isinstance(got, SchemaError):
                    errors.append(got)
                    error_ids[obj_id] = got
                elif getattr(got, "id", obj_id) != obj_id:
                    exc = SchemaError(path, "id", f"is {got.id!r} but the file is named {obj_id}")
                    errors.append(exc)
                    error_ids[obj_id] = exc
                else:
                    objects[name][obj_id] = got
        snap = Snapshot(commit_id, tree_id, config, objects, errors, error_ids)
        self._save_cache(
            {"version": CACHE_VERSION, "tree": tree_id, "blobs": used, "snapshot": snap}
        )
        return snap

    # ---- writing ----

    def transact(
        self,
        mutate: Callable[[Tx], T],
        message: str | Callable[[T], str],
        *,
        attempts: int = MAX_ATTEMPTS,
    ) -> T:
        """Apply `mutate` to a fresh snapshot and CAS the ref; re-apply on a lost race."""
        deadline = time.monotonic() + 60
        for attempt in range(attempts):
            base = self.snapshot(fresh=attempt > 0)
            tx = Tx(base)
            result = mutate(tx)
            if not tx.changes:
                return result
            text = message(result) if callable(message) else message
            new_commit = self._write_commit(base, tx.changes, text)
            if self._compare_and_swap(base.commit, new_commit, text):
                self._snapshot = None
                return result
            if time.monotonic() > deadline:
                break
            time.sleep(random.uniform(0, min(0.002 * (attempt + 1), 0.05)))
        raise LostRace(
            f"gave up after {attempt + 1} attempts: {self.ref} kept moving under concurrent "
            "writers; nothing was written, run the command again"
        )

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
        tree_id = _apply_changes(repo, base_tree, changes)
        parents = [pygit2.Oid(hex=base.commit)] if base.commit else []
        sig = self.signature()
        oid = repo.create_commit(None, sig, sig, msg + "\n", tree_id, parents)
        return str(oid)

    def _compare_and_swap(self, old: str | None, new: str, message: str) -> bool:
        try:
            with self.repo.transaction() as txn:
                txn.lock_ref(self.ref)
                if self.head_of(self.ref) != old:
                    raise _Moved
                txn.set_target(self.ref, new, signature=None,
                               message=f"git convoy: {message.splitlines()[0]}")
        except _Moved:
            return False
        except pygit2.GitError as exc:
            if "lock" in str(exc).lower() or "exists" in str(exc).lower():
                return False
            raise
        return True


    def cas_ref(self, refname: str, old: str | None, new: str | None, message: str) -> bool:
        """Move any ref (a branch, a target) only if it still points at `old` (None: absent).
        `new` None deletes it. False when someone else moved it first."""
        try:
            with self.repo.transaction() as txn:
                txn.lock_ref(refname)
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
                return False
            raise
        return True

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when `ancestor` is reachable from `descendant` (or equal to it)."""
        if ancestor == descendant:
            return True
        return bool(self.repo.descendant_of(descendant, ancestor))

    # ---- sync: the state ref against a remote (gitconvoy/sync.py) ----

    def default_remote(self) -> str:
        """convoy.remote, else the remote the state branch tracks, else origin."""
        chosen = self.config_get("convoy.remote")
        if not chosen and self.ref.startswith("refs/heads/"):
            chosen = self.config_get(f"branch.{self.ref[len('refs/heads/'):]}.remote")
        return chosen or "origin"

    def remote_tracking_ref(self, remote: str) -> str:
        """Where a plain `git fetch`/`git clone` keeps the remote's state branch."""
        name = self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else self.ref
        return f"refs/remotes/{remote}/{name}"

    def adopt_remote_state(self, remote: str | None = None) -> str | None:
        """A clone without a local state ref takes the remote's (as fetched by git clone)."""
        if self.state_commit() is not None:
            return self.state_commit()
        found = self.head_of(self.remote_tracking_ref(remote or self.default_remote()))
        if found is None:
            return None
        if not self.cas_ref(self.ref, None, found, "adopt the remote's state"):
            return self.state_commit()
        return found

    def merge_base(self, one: str, two: str) -> str | None:
        found = self.repo.merge_base(one, two)
        return str(found) if found else None

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
        _three_way(repo, trees[0], trees[1], trees[2], "", resolve, edits)
        if not edits:
            return str(trees[1].id)
        return str(_apply_entries(repo, trees[1], edits))

    def write_merge_commit(self, tree: str, parents: list[str], message: str) -> str:
        sig = self.signature()
        oid = self.repo.create_commit(
            None, sig, sig, message + "\n", pygit2.Oid(hex=tree),
            [pygit2.Oid(hex=p) for p in parents],
        )
        return str(oid)

    def tree_of(self, commit: str) -> str:
        return str(self.repo[commit].peel(pygit2.Tree).id)


class _Moved(Exception):
    """The ref no longer points where we read it: abandon this transaction."""


def _walk_yaml(repo: pygit2.Repository, entry: Any, prefix: str) -> Iterator[tuple[str, str]]:
    obj = repo[entry.id]
    if not isinstance(obj, pygit2.Tree):
        return
    for child in obj:
        path = f"{prefix}/{child.name}"
        if child.type_str == "tree":
            yield from _walk_yaml(repo, child, path)
        elif child.name.endswith(".yaml"):
            yield path, str(child.id)


def _apply_changes(
    repo: pygit2.Repository, tree: pygit2.Tree | None, changes: dict[str, bytes | None]
) -> pygit2.Oid:
    """Rewrite only the trees on the paths that changed (O(depth) new tree objects)."""
    here: dict[str, bytes | None] = {}
    below: dict[str, dict[str, bytes | None]] = {}
    for path, data in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head, {})[rest] = data
        else:
            here[head] = data
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    for name, data in here.items():
        if data is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    for name, sub in below.items():
        existing = builder.get(name)
        subtree = repo[existing.id] if existing is not None and existing.type_str == "tree" \
            else None
        new_id = _apply_changes(repo, subtree, sub)
        if len(repo[new_id]) == 0:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_id, pygit2.GIT_FILEMODE_TREE)
    return builder.write()


class Tx:
    """A mutable view over a snapshot; records file writes for one commit."""

    def __init__(self, base: Snapshot) -> None:
        self.base = base
        self.config = base.config
        self.objects = {name: dict(objs) for name, objs in base.objects.items()}
        self.changes: dict[str, bytes | None] = {}
        self.notes: list[str] = []

    @property
    def beads(self) -> dict[str, model.Bead]:
        return self.objects["beads"]

    @property
    def convoys(self) -> dict[str, model.Convoy]:
        return self.objects["convoys"]

    def view(self) -> Snapshot:
        """A snapshot-shaped view including this transaction's writes (for graph checks)."""
        return Snapshot(
            self.base.commit, self.base.tree, self.config, self.objects,
            self.base.errors, self.base.error_ids,
        )

    def bead(self, bead_id: str) -> model.Bead:
        return self.view().bead(bead_id)

    def convoy(self, convoy_id: str) -> model.Convoy:
        return self.view().convoy(convoy_id)

    def put(self, obj: Any) -> None:
        kind = _KIND_OF_CLASS[type(obj)]
        self.objects[kind][obj.id] = obj
        self.changes[object_path(kind, obj.id)] = dump_yaml(obj.to_dict())

    def remove(self, kind: str, obj_id: str) -> None:
        self.objects[kind].pop(obj_id, None)
        self.changes[object_path(kind, obj_id)] = None

    def put_config(self, config: model.Config) -> None:
        self.config = config
        self.changes["convoy.yaml"] = dump_yaml(config.to_dict())


# --- three-way tree merge (Store.merge_state_trees) ---------------------------------------


def _entry(tree: pygit2.Tree | None, name: str) -> Any:
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


def _three_way(
    repo: pygit2.Repository, base: pygit2.Tree | None, ours: pygit2.Tree | None,
    theirs: pygit2.Tree | None, prefix: str,
    resolve: Callable[[str, bytes | None, bytes | None, bytes | None], dict[str, bytes | None]],
    edits: dict[str, tuple[pygit2.Oid, int] | None],
) -> None:
    """Record what must change on top of `ours`: theirs' one-sided changes and resolutions."""
    names: set[str] = set()
    for tree in (base, ours, theirs):
        if tree is not None:
            names.update(e.name for e in tree)
    for name in sorted(names):
        b, o, t = _entry(base, name), _entry(ours, name), _entry(theirs, name)
        bid, oid, tid = (e.id if e is not None else None for e in (b, o, t))
        if oid == tid or tid == bid:
            continue
        path = prefix + name
        if oid == bid:
            edits[path] = None if t is None else (t.id, t.filemode)
            continue
        present = [e for e in (b, o, t) if e is not None]
        if all(e.type_str == "tree" for e in present):
            subs = [repo[e.id] if e is not None else None for e in (b, o, t)]
            _three_way(repo, subs[0], subs[1], subs[2], path + "/", resolve, edits)
            continue
        datas = [repo[e.id].data if e is not None and e.type_str == "blob" else None
                 for e in (b, o, t)]
        for out_path, data in resolve(path, datas[0], datas[1], datas[2]).items():
            edits[out_path] = None if data is None else (
                repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)


def _apply_entries(
    repo: pygit2.Repository, tree: pygit2.Tree | None,
    edits: dict[str, tuple[pygit2.Oid, int] | None],
) -> pygit2.Oid:
    """Like _apply_changes, but with ready object ids (whole subtrees taken from one side)."""
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
        new_id = _apply_entries(repo, subtree, sub)
        if len(repo[new_id]) == 0:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_id, pygit2.GIT_FILEMODE_TREE)
    return builder.write()
