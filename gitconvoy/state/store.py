"""The state ref: snapshot reads (lazy, with a tree-keyed cache) and CAS transactions.

This is the only module that writes git objects and moves refs with pygit2. It never touches
the working tree, the index or HEAD: every write builds blobs, trees and a commit in the
object database and then moves the state ref only if it still points where it was read.

Reads are lazy: looking up one bead parses one file (a write that touches one bead costs the
same at 100 or 100,000 beads); iterating a kind loads everything through a pickle cache in
.git/convoy/cache, keyed by the state tree id and brought up to date by a diff that only
descends into subtrees whose ids changed.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
import random
import shlex
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pygit2

from gitconvoy import faults
from gitconvoy.errors import ConvoyError, LostRace, SchemaError
from gitconvoy.state import model

DEFAULT_REF = "refs/heads/convoy/state"
CACHE_VERSION = 3
MAX_ATTEMPTS = 200
# A ref lock older than this was left behind by a crash (writers hold it for microseconds).
STALE_LOCK_SECONDS = 10
# A cache more than this many changed files behind the ref is rewritten after a read.
CACHE_SAVE_AFTER = 32

GITATTRIBUTES = (
    "# gitconvoy: state files merge field by field (git convoy merge-driver)\n"
    "*.yaml merge=convoy\n"
)

T = TypeVar("T")


# --- YAML -------------------------------------------------------------------------------


def _yaml() -> Any:
    """Imported on first use: a read served from the cache never pays for it."""
    import yaml

    return yaml


_DUMPER: list[Any] = []


def _dumper() -> Any:
    """libyaml's safe dumper, writing multi-line text as `|` blocks so diffs read as text."""
    if not _DUMPER:
        yaml = _yaml()

        class StateDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore
            pass

        def represent_str(dumper: Any, data: str) -> Any:
            if "\n" in data:
                return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
            return dumper.represent_str(data)

        StateDumper.add_representer(str, represent_str)
        _DUMPER.append(StateDumper)
    return _DUMPER[0]


def dump_yaml(data: dict[str, Any]) -> bytes:
    text = _yaml().dump(
        data, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=100,
        default_flow_style=False,
    )
    return text.encode("utf-8")


def load_yaml(raw: bytes, path: str) -> Any:
    """safe_load, plus a refusal of anchors and aliases (a billion-laughs file is an error)."""
    yaml = _yaml()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(path, None, "is not valid UTF-8") from None
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    line = event.start_mark.line + 1
                    raise SchemaError(
                        path, None, f"line {line}: YAML anchors and aliases are not allowed"
                    )
        return yaml.load(text, Loader=loader)
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
    "reviews": Kind("reviews", model.Review, False),
}
_KIND_OF_CLASS: dict[type, str] = {k.cls: name for name, k in KINDS.items()}


def register_kind(name: str, cls: Any, fanout: bool = False) -> None:
    """Later capabilities (merge requests, reviews) add their own folders here."""
    KINDS[name] = Kind(name, cls, fanout)
    _KIND_OF_CLASS[cls] = name


def object_path(kind: str, obj_id: str) -> str:
    """Where an object lives. Fanned-out kinds nest three levels of 16 folders by a hash of
    the id (`beads/3/f/a/<id>.yaml`), so a one-bead write rewrites four trees of at most 16
    entries plus one small leaf: ~1.5 KB at 10k beads, ~2.4 KB at 100k (docs/state.md)."""
    spec = KINDS[kind]
    if spec.fanout:
        h = hashlib.sha1(obj_id.encode()).hexdigest()
        return f"{spec.folder}/{h[0]}/{h[1]}/{h[2]}/{obj_id}.yaml"
    return f"{spec.folder}/{obj_id}.yaml"


# --- snapshots --------------------------------------------------------------------------


def _kind_of_path(path: str) -> str | None:
    head = path.partition("/")[0]
    for name, spec in KINDS.items():
        if spec.folder == head:
            return name
    return None


def _parse_file(repo: pygit2.Repository, path: str, blob_id: Any) -> Any:
    """The object in one state file, or the SchemaError that names what is wrong with it."""
    kind = _kind_of_path(path)
    if kind is None:
        return None
    obj_id = os.path.basename(path)[: -len(".yaml")]
    try:
        got = KINDS[kind].cls.from_dict(load_yaml(repo[blob_id].data, path), path)
    except SchemaError as exc:
        return exc
    except ConvoyError as exc:
        return SchemaError(path, None, exc.message)
    if getattr(got, "id", obj_id) != obj_id:
        return SchemaError(path, "id", f"is {got.id!r} but the file is named {obj_id}")
    if object_path(kind, obj_id) != path:
        return SchemaError(path, None, f"is misplaced: it belongs at {object_path(kind, obj_id)}")
    return got


def _parse_config(repo: pygit2.Repository, tree: pygit2.Tree) -> model.Config | SchemaError:
    if "convoy.yaml" not in tree:
        return model.Config()
    try:
        return model.Config.from_dict(
            load_yaml(repo[tree["convoy.yaml"].id].data, "convoy.yaml"), "convoy.yaml"
        )
    except SchemaError as exc:
        return exc
    except ConvoyError as exc:
        return SchemaError("convoy.yaml", None, exc.message)


@dataclass
class _Loaded:
    """Everything in one state tree, parsed; what the cache stores."""

    tree: str
    config: model.Config
    objects: dict[str, dict[str, Any]]
    errors: dict[str, SchemaError]  # by path


class Snapshot:
    """The parsed state at one commit. Objects are shared with the cache: never mutate them.

    Built either from ready objects (`objects` given) or lazily over a tree (`source`):
    `bead(id)` then parses one file, while `beads`, `objects` and `errors` load everything.
    """

    def __init__(
        self, commit: str | None, tree: str | None, config: model.Config | None = None,
        objects: dict[str, Any] | None = None, errors: list[SchemaError] | None = None,
        error_ids: dict[str, SchemaError] | None = None, *, source: _Source | None = None,
        errors_from: Snapshot | None = None,
    ) -> None:
        self.commit = commit
        self.tree = tree
        self._config = config
        self._objects = objects
        self._errors = errors
        self._error_ids = error_ids
        self._source = source
        self._errors_from = errors_from  # a transaction's view: broken files are the base's

    def _load(self) -> None:
        if self._source is None:
            self._objects = self._objects or {name: {} for name in KINDS}
            self._errors, self._error_ids = self._errors or [], self._error_ids or {}
            return
        loaded = self._source.load_all()
        if self._objects is None:
            self._objects = loaded.objects
        if self._config is None:
            self._config = loaded.config
        if self._errors is None:
            self._errors = [loaded.errors[p] for p in sorted(loaded.errors)]
            self._error_ids = {
                os.path.basename(p)[: -len(".yaml")]: e for p, e in loaded.errors.items()
                if p != "convoy.yaml"
            }

    @property
    def config(self) -> model.Config:
        if self._config is None:
            if self._source is None:
                self._config = model.Config()
            else:
                got = self._source.config()
                self._config = got if isinstance(got, model.Config) else model.Config()
        return self._config

    @config.setter
    def config(self, value: model.Config) -> None:
        self._config = value

    @property
    def objects(self) -> dict[str, Any]:
        if self._objects is None:
            self._load()
        assert self._objects is not None
        return self._objects

    @property
    def errors(self) -> list[SchemaError]:
        if self._errors_from is not None:
            return self._errors_from.errors
        if self._errors is None:
            self._load()
        return self._errors or []

    @property
    def error_ids(self) -> dict[str, SchemaError]:
        if self._errors_from is not None:
            return self._errors_from.error_ids
        if self._error_ids is None:
            self._load()
        return self._error_ids or {}

    @property
    def beads(self) -> dict[str, model.Bead]:
        return self.objects["beads"]

    @property
    def convoys(self) -> dict[str, model.Convoy]:
        return self.objects["convoys"]

    def lookup(self, kind: str, obj_id: str) -> Any:
        """One object or None, parsing only its own file when nothing is loaded yet."""
        if self._objects is not None or self._source is None:
            return self.objects.get(kind, {}).get(obj_id)
        got = self._source.load_one(kind, obj_id)
        return None if isinstance(got, SchemaError) else got

    def error_for(self, kind: str, obj_id: str) -> SchemaError | None:
        """Why the file of `obj_id` could not be read, if it exists and is broken."""
        if self._errors_from is not None:
            return self._errors_from.error_for(kind, obj_id)
        if self._error_ids is not None or self._source is None:
            return self.error_ids.get(obj_id)
        got = self._source.load_one(kind, obj_id)
        return got if isinstance(got, SchemaError) else None

    def count(self, kind: str) -> int:
        """How many files of a kind exist (cheap: counts tree entries, parses nothing)."""
        if self._objects is not None or self._source is None:
            objs = self.objects.get(kind, {})
            return objs.count() if isinstance(objs, _Overlay) else len(objs)
        return self._source.count(kind)

    def _get(self, kind: str, obj_id: str, what: str, hint: str) -> Any:
        found = self.lookup(kind, obj_id)
        if found is not None:
            return found
        broken = self.error_for(kind, obj_id)
        if broken is not None:
            raise broken
        raise ConvoyError(f"unknown {what} '{obj_id}': see '{hint}'")

    def bead(self, bead_id: str) -> model.Bead:
        return self._get("beads", bead_id, "bead", "git convoy bead list")

    def convoy(self, convoy_id: str) -> model.Convoy:
        return self._get("convoys", convoy_id, "convoy", "git convoy list --all")


class _Source:
    """One state tree: single files parsed on demand, everything through the store's cache."""

    def __init__(self, store: Store, tree: pygit2.Tree) -> None:
        self.store = store
        self.tree = tree
        self._one: dict[tuple[str, str], Any] = {}

    def config(self) -> model.Config | SchemaError:
        return _parse_config(self.store.repo, self.tree)

    def load_one(self, kind: str, obj_id: str) -> Any:
        key = (kind, obj_id)
        if key not in self._one:
            found = None
            if obj_id and "/" not in obj_id and ".." not in obj_id and kind in KINDS:
                path = object_path(kind, obj_id)
                try:
                    entry = self.tree[path]
                except (KeyError, ValueError, pygit2.GitError):
                    entry = None
                if entry is not None and entry.type_str == "blob":
                    found = _parse_file(self.store.repo, path, entry.id)
            self._one[key] = found
        return self._one[key]

    def count(self, kind: str) -> int:
        spec = KINDS[kind]
        if spec.folder not in self.tree:
            return 0
        return sum(1 for _ in _walk_yaml(self.store.repo, self.tree[spec.folder], spec.folder))

    def load_all(self) -> _Loaded:
        return self.store._load_all(self.tree)


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

    def clone_id(self) -> str:
        """A random id for this clone (.git/convoy/id), so the feeder repairs only dispatches
        it made itself, never a claim another machine holds."""
        path = os.path.join(self.common_dir, "convoy", "id")
        try:
            with open(path) as fh:
                found = fh.read().strip()
            if found:
                return found
            empty = True  # a crash between creating and writing it (before the link below)
        except OSError:
            empty = False
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(os.urandom(6).hex() + "\n")
        try:
            if empty:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # complete or absent, never empty; a concurrent one wins
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        with open(path) as fh:
            return fh.read().strip()

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
        commit = self.state_commit() or self.adopt_remote_state()
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
        tree = commit.peel(pygit2.Tree)
        return Snapshot(commit_id, str(tree.id), source=_Source(self, tree))

    def _cache_file(self) -> str:
        return os.path.join(self.common_dir, "convoy", "cache", "snapshot.pickle")

    def _load_cache(self) -> _Loaded | None:
        with _no_cycle_collector():
            try:
                with open(self._cache_file(), "rb") as fh:
                    data = pickle.load(fh)
                if data.get("key") == _cache_key():
                    return data["loaded"]
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                    TypeError, ValueError, KeyError, IndexError):
                pass
        return None

    def _save_cache(self, loaded: _Loaded) -> None:
        path = self._cache_file()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump({"key": _cache_key(), "loaded": loaded},
                            fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            pass  # a cache that cannot be written only costs speed

    def _load_all(self, tree: pygit2.Tree) -> _Loaded:
        """Every object of a tree: from the cache, patched by a tree diff, or parsed afresh."""
        tree_id = str(tree.id)
        cached = self._load_cache()
        if cached is not None and cached.tree == tree_id:
            return cached
        old = self.repo.get(cached.tree) if cached is not None else None
        if cached is not None and isinstance(old, pygit2.Tree):
            changed: list[str] = []
            _changed_paths(self.repo, old, tree, "", changed)
            loaded = self._patch(cached, tree, changed)
            if len(changed) > CACHE_SAVE_AFTER:
                self._save_cache(loaded)
            return loaded
        loaded = self._parse_all(tree)
        self._save_cache(loaded)
        return loaded

    def _parse_all(self, tree: pygit2.Tree) -> _Loaded:
        config = _parse_config(self.repo, tree)
        errors: dict[str, SchemaError] = {}
        if isinstance(config, SchemaError):
            errors["convoy.yaml"] = config
            config = model.Config()
        objects: dict[str, dict[str, Any]] = {name: {} for name in KINDS}
        with _no_cycle_collector():
            for name, spec in KINDS.items():
                if spec.folder not in tree:
                    continue
                for path, blob_id in _walk_yaml(self.repo, tree[spec.folder], spec.folder):
                    got = _parse_file(self.repo, path, blob_id)
                    if isinstance(got, SchemaError):
                        errors[path] = got
                    elif got is not None:
                        objects[name][got.id] = got
        return _Loaded(str(tree.id), config, objects, errors)

    def _patch(self, loaded: _Loaded, tree: pygit2.Tree, changed: list[str]) -> _Loaded:
        """Bring a cached load up to `tree`, re-reading only the files that changed."""
        for path in changed:
            if path == "convoy.yaml":
                config = _parse_config(self.repo, tree)
                loaded.errors.pop(path, None)
                if isinstance(config, SchemaError):
                    loaded.errors[path] = config
                    config = model.Config()
                loaded.config = config
                continue
            kind = _kind_of_path(path)
            if kind is None or not path.endswith(".yaml"):
                continue
            obj_id = os.path.basename(path)[: -len(".yaml")]
            objs = loaded.objects.setdefault(kind, {})
            loaded.errors.pop(path, None)
            if object_path(kind, obj_id) == path:
                objs.pop(obj_id, None)
            try:
                entry = tree[path]
            except KeyError:
                continue
            got = _parse_file(self.repo, path, entry.id)
            if isinstance(got, SchemaError):
                loaded.errors[path] = got
            elif got is not None:
                objs[got.id] = got
        loaded.tree = str(tree.id)
        return loaded

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
            faults.point("store.after_objects")
            if self._compare_and_swap(base.commit, new_commit, text):
                faults.point("store.after_cas")
                self._snapshot = None
                return result
            if time.monotonic() > deadline:
                break
            time.sleep(random.uniform(0, min(0.002 * (attempt + 1), 0.05)))
        self._refuse_stale_lock(self.ref, older_than=0)  # a crash's lock, not a busy writer
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

    # ---- reviewing: two state commits side by side (git convoy diff) ----

    def resolve_commit(self, rev: str) -> str | None:
        """The commit a revision names (`convoy/state~3`, `origin/convoy/state`, a sha), or
        None when it names nothing or something that is not a commit."""
        try:
            obj = self.repo.revparse_single(rev)
            return str(obj.peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            return None

    def first_parent(self, commit: str) -> str | None:
        parents = self.repo[commit].parent_ids
        return str(parents[0]) if parents else None

    def changed_files(self, old: str | None, new: str) -> list[tuple[str, Any, Any]]:
        """The state files that differ between two commits, each parsed on both sides: an
        object (model.Config for convoy.yaml), the SchemaError naming what is wrong, or None
        where the file is absent or not a state file. `old` None is the empty state. Only
        subtrees whose ids differ are opened, so the cost follows the change, not the size."""
        repo = self.repo
        trees = [repo[c].peel(pygit2.Tree) if c else None for c in (old, new)]
        paths: list[str] = []
        _changed_paths(repo, trees[0], trees[1], "", paths)
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
                    sides.append(_parse_config(repo, tree))  # type: ignore[arg-type]
                else:
                    sides.append(_parse_file(repo, path, entry.id))
            out.append((path, sides[0], sides[1]))
        return out

    def is_state_commit(self, commit: str) -> bool:
        """A commit of a state branch has convoy.yaml at its root."""
        return "convoy.yaml" in self.repo[commit].peel(pygit2.Tree)


@contextlib.contextmanager
def _no_cycle_collector() -> Iterator[None]:
    """Load many small objects without the cycle collector, then freeze what was made.

    A snapshot holds no reference cycles; without this, building 10k beads triggers repeated
    collections that scan every object made so far (about half of the load time), and the
    first allocation after re-enabling scans them all once more. Freezing (only after a big
    load) moves them out of the collector's sight for the rest of this short-lived process.
    """
    enabled = gc.isenabled()
    before = gc.get_count()[0]
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_count()[0] - before > 20_000:
                gc.freeze()
            gc.enable()


def _cache_key() -> tuple[Any, ...]:
    """Pickled objects are only valid for the classes that wrote them: an upgrade that adds a
    field to a model class must not read objects that lack it."""
    from dataclasses import fields as dc_fields

    from gitconvoy import __version__

    shapes = tuple(
        (name, tuple(f.name for f in dc_fields(kind.cls)))
        for name, kind in sorted(KINDS.items())
    )
    config = tuple(f.name for f in dc_fields(model.Config))
    rig = tuple(f.name for f in dc_fields(model.Rig))
    return (CACHE_VERSION, __version__, shapes, config, rig)


class _Moved(Exception):
    """The ref no longer points where we read it: abandon this transaction."""


def _changed_paths(repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None,
                   prefix: str, out: list[str]) -> None:
    """Files that differ between two trees; subtrees with equal ids are never opened."""
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
            _changed_paths(repo, sub_old, sub_new, path + "/", out)
        if any(e is not None and e.type_str == "blob" for e in (was, now_)):
            out.append(path)


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
    """Write the changed files as blobs, then rewrite only the trees on their paths."""
    return _apply_entries(repo, tree, {
        path: None if data is None else (repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
        for path, data in changes.items()
    })


class _Overlay(MutableMapping[str, Any]):
    """One kind's objects as a transaction sees them: the base snapshot plus its own writes.

    Single lookups stay lazy (one file each); iterating merges everything once.
    """

    def __init__(self, base: Snapshot, kind: str) -> None:
        self._base = base
        self._kind = kind
        self._local: dict[str, Any] = {}
        self._gone: set[str] = set()
        self._merged: dict[str, Any] | None = None

    def _full(self) -> dict[str, Any]:
        if self._merged is None:
            merged = dict(self._base.objects.get(self._kind, {}))
            for key in self._gone:
                merged.pop(key, None)
            merged.update(self._local)
            self._merged = merged
        return self._merged

    def __getitem__(self, key: str) -> Any:
        if self._merged is not None:
            return self._merged[key]
        if key in self._local:
            return self._local[key]
        found = None if key in self._gone else self._base.lookup(self._kind, key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        self._local[key] = value
        self._gone.discard(key)
        if self._merged is not None:
            self._merged[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._local.pop(key, None)
        self._gone.add(key)
        if self._merged is not None:
            self._merged.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())

    def keys(self) -> Any:  # type: ignore[override]
        return self._full().keys()

    def values(self) -> Any:  # type: ignore[override]
        return self._full().values()

    def items(self) -> Any:  # type: ignore[override]
        return self._full().items()

    def count(self) -> int:
        """The number of objects, without loading them when nothing was iterated yet."""
        if self._merged is not None:
            return len(self._merged)
        return self._base.count(self._kind) + len(self._local) - len(self._gone)


class Tx:
    """A mutable view over a snapshot; records file writes for one commit."""

    def __init__(self, base: Snapshot) -> None:
        self.base = base
        self.config = base.config
        self.objects: dict[str, _Overlay] = {name: _Overlay(base, name) for name in KINDS}
        self.changes: dict[str, bytes | None] = {}
        self.notes: list[str] = []

    @property
    def beads(self) -> _Overlay:
        return self.objects["beads"]

    @property
    def convoys(self) -> _Overlay:
        return self.objects["convoys"]

    def view(self) -> Snapshot:
        """A snapshot-shaped view including this transaction's writes (for graph checks)."""
        return Snapshot(self.base.commit, self.base.tree, self.config, dict(self.objects),
                        errors_from=self.base)

    def bead(self, bead_id: str) -> model.Bead:
        return self.view().bead(bead_id)

    def convoy(self, convoy_id: str) -> model.Convoy:
        return self.view().convoy(convoy_id)

    def put(self, obj: Any) -> None:
        """Record an object; it is read back through the schema first, so a transaction can
        never write a file that every later read would reject."""
        kind = _KIND_OF_CLASS[type(obj)]
        path = object_path(kind, obj.id)
        data = obj.to_dict()
        KINDS[kind].cls.from_dict(data, path)
        self.objects[kind][obj.id] = obj
        self.changes[path] = dump_yaml(data)

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
        new_id = _apply_entries(repo, subtree, sub)
        if len(repo[new_id]) == 0:
            if existing is not None:
                builder.remove(name)
        else:
            builder.insert(name, new_id, pygit2.GIT_FILEMODE_TREE)
    return builder.write()
