"""A parsed state at one commit: lazy single-file lookups, and full loads (through the cache)
that keep every broken file as the SchemaError naming what is wrong with it."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitconvoy import __version__
from gitconvoy.errors import ConvoyError, NewerSchema, SchemaError
from gitconvoy.state import model
from gitconvoy.state.beadtext import read_bead
from gitconvoy.state.codec import load_yaml
from gitconvoy.state.layout import KINDS, MAX_FILE_BYTES, kind_of_path, object_path

if TYPE_CHECKING:  # pygit2 is imported where it is used: a quick create reads without it
    import pygit2

# git's object type numbers (pygit2.GIT_OBJECT_*; a test keeps them equal).
_TREE, _BLOB = 2, 3


def _read_errors() -> tuple[type[BaseException], ...]:
    """What a failed object read raises: pygit2's GitError too once pygit2 is in use (the
    quick create's reader, gitconvoy.state.objectfiles, raises KeyError only)."""
    git = sys.modules.get("pygit2")
    return (KeyError, ValueError) if git is None else (KeyError, ValueError, git.GitError)

_FULL_LOADS = 0  # full loads (every object of a tree) this process made: hooks record it


def full_loads() -> int:
    """How many times this process loaded every object of a state tree (through the cache
    or by parsing): the landing hook's speed rests on making none (gitconvoy.flow.feedview)."""
    return _FULL_LOADS


def read_state_file(repo: pygit2.Repository, path: str, blob_id: Any) -> bytes:
    """A state file's bytes; a SchemaError naming it when it is not a file (a folder or a
    gitlink pushed in its place) or is over the per-file cap, which is checked before the
    object is loaded (a 100 MB blob is never read into memory)."""
    odb = repo.odb
    try:
        kind, size = odb.read_header(blob_id)
    except _read_errors():
        raise SchemaError(path, None, "is not in the object database (a gitlink?)") from None
    if kind != _BLOB:
        what = "a folder" if kind == _TREE else "not a file"
        raise SchemaError(path, None, f"is {what}, not a state file")
    if size > MAX_FILE_BYTES:
        raise SchemaError(path, None, f"is {size} bytes, over the cap of {MAX_FILE_BYTES} "
                          "bytes for one state file")
    try:
        kind, data = odb.read(blob_id)  # one call, no Blob object: a full read does 10,000s
    except _read_errors():
        raise SchemaError(path, None, "is not in the object database") from None
    if kind != _BLOB:
        raise SchemaError(path, None, "is not a file")
    return data


def parse_file(repo: pygit2.Repository, path: str, blob_id: Any) -> Any:
    """The object in one state file, or the SchemaError that names what is wrong with it."""
    kind = kind_of_path(path)
    if kind is None:
        return None
    try:
        raw = read_state_file(repo, path, blob_id)
    except SchemaError as exc:
        return exc
    return parse_object(kind, path, raw)


def parse_object(kind: str, path: str, raw: bytes, obj_id: str | None = None) -> Any:
    """The object the bytes of a file of `kind` at `path` hold, or the SchemaError naming
    what is wrong with it (its id must be its file name, `obj_id`, and its path the one its
    id gives). The full read and the cold read (gitconvoy.state.treeload) both parse here."""
    if obj_id is None:
        obj_id = os.path.basename(path)[: -len(".yaml")]
    try:
        got = read_bead(raw) if kind == "beads" else None  # the store's own layout, fast
        if got is None:
            got = KINDS[kind].cls.from_dict(load_yaml(raw, path), path)
    except SchemaError as exc:
        return exc
    except ConvoyError as exc:
        return SchemaError(path, None, exc.message)
    if getattr(got, "id", obj_id) != obj_id:
        return SchemaError(path, "id", f"is {got.id!r} but the file is named {obj_id}")
    if object_path(kind, obj_id) != path:
        return SchemaError(path, None, f"is misplaced: it belongs at {object_path(kind, obj_id)}")
    return got


def parse_config(repo: pygit2.Repository, tree: pygit2.Tree) -> model.Config | SchemaError:
    """convoy.yaml, or why it cannot be read (a read then warns and uses the defaults; a
    write refuses, see Snapshot.config_problem)."""
    if "convoy.yaml" not in tree:
        return missing_config()
    try:
        raw = read_state_file(repo, "convoy.yaml", tree["convoy.yaml"].id)
    except SchemaError as exc:
        return exc
    return parse_config_bytes(raw)


def parse_config_bytes(raw: bytes) -> model.Config | SchemaError:
    """convoy.yaml's bytes as the Config, or why they cannot be read."""
    try:
        return model.Config.from_dict(load_yaml(raw, "convoy.yaml"), "convoy.yaml")
    except SchemaError as exc:
        return exc
    except ConvoyError as exc:
        return SchemaError("convoy.yaml", None, exc.message)


def missing_config() -> SchemaError:
    return SchemaError("convoy.yaml", None, "is missing: this is not a gitconvoy state")


def not_a_folder(name: str) -> SchemaError:
    return SchemaError(KINDS[name].folder, None, f"is not a folder: its {name} cannot be read")


def refuse_broken_config(problem: SchemaError | None) -> None:
    if problem is None:
        return
    if isinstance(problem, NewerSchema):
        raise ConvoyError(f"{problem.upgrade_hint(__version__)} to write to this state; "
                          "nothing was written")
    raise ConvoyError(
        f"{problem.message}; nothing was written: a write needs a readable convoy.yaml (run "
        "'git convoy init --repair' to restore the last readable one)"
    )


@dataclass
class Loaded:
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
        error_ids: dict[str, SchemaError] | None = None, *, source: Source | None = None,
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
        self._error_paths: dict[str, SchemaError] | None = None  # by path, once loaded
        # A partial snapshot (`narrowed`) holds only the objects one feeder step can touch;
        # any other object is still read from its own file, counts come from the tree.
        self.partial = False
        # Targets and integration branches named by the beads a partial snapshot leaves out
        # (the watch list must not take a shared branch for one bead's work branch).
        self.outside_targets: frozenset[str] = frozenset()
        self.outside_flying = False  # and whether any of them is in flight

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
            self._take_errors(loaded.errors)

    def _take_errors(self, errors: dict[str, SchemaError]) -> None:
        self._error_paths = dict(errors)
        self._errors = [errors[p] for p in sorted(errors)]
        self._error_ids = {
            os.path.basename(p)[: -len(".yaml")]: e for p, e in errors.items()
            if p != "convoy.yaml" and p.endswith(".yaml")
        }

    @classmethod
    def of_loaded(cls, commit: str, loaded: Loaded, source: Source) -> Snapshot:
        """A snapshot holding a full load made elsewhere (the store's patch of its last
        write), still able to read its tree (convoy.yaml, counts)."""
        snap = cls(commit, loaded.tree, loaded.config, loaded.objects, source=source)
        snap._take_errors(loaded.errors)
        return snap

    @classmethod
    def narrowed(cls, commit: str, loaded: Loaded, source: Source,
                 outside_targets: frozenset[str], outside_flying: bool) -> Snapshot:
        """A partial snapshot: `loaded` holds some beads of the tree (and all its broken
        files); iterating sees only those, a lookup of any other still reads its file.
        Only gitconvoy.flow.feedview builds one, with every bead a feeder step can read."""
        snap = cls.of_loaded(commit, loaded, source)
        snap.partial = True
        snap.outside_targets = outside_targets
        snap.outside_flying = outside_flying
        return snap

    def full_load(self) -> Loaded | None:
        """What this snapshot has parsed, as a load of its tree with maps of its own (so a
        patch of it leaves this snapshot as it is); None unless everything was loaded."""
        if self._objects is None or self._error_paths is None or self.tree is None \
                or self._errors_from is not None:
            return None
        return Loaded(self.tree, self.config,
                      {kind: dict(objs) for kind, objs in self._objects.items()},
                      dict(self._error_paths))

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

    def config_problem(self) -> SchemaError | None:
        """Why this state's convoy.yaml cannot be written on: unreadable, of a newer schema
        (NewerSchema) or missing. Reads fall back to defaults with a warning; a write on
        those defaults would replace the prefix and drop every rig, so writes refuse."""
        if self._source is None:
            return None
        got = self._source.config()
        return got if isinstance(got, SchemaError) else None

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
            found = self.objects.get(kind, {}).get(obj_id)
            if found is not None or not self.partial or self._source is None:
                return found
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
        if (self._objects is not None and not self.partial) or self._source is None:
            objs = self.objects.get(kind, {})
            counted = getattr(objs, "count", None)  # a transaction's overlay counts lazily
            return counted() if callable(counted) else len(objs)
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


class Source:
    """One state tree: single files parsed on demand, everything through `load_all` (the
    store passes the cache)."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree,
                 load_all: Callable[[pygit2.Tree], Loaded],
                 count_all: Callable[[pygit2.Tree], dict[str, int]] | None = None) -> None:
        self.repo = repo
        self._load_all = load_all
        self._count_all = count_all
        self._counts: dict[str, int] | None = None
        self.tree = tree
        self._one: dict[tuple[str, str], Any] = {}

    def config(self) -> model.Config | SchemaError:
        return parse_config(self.repo, self.tree)

    def load_one(self, kind: str, obj_id: str) -> Any:
        key = (kind, obj_id)
        if key not in self._one:
            found = None
            if obj_id and "/" not in obj_id and ".." not in obj_id and kind in KINDS:
                path = object_path(kind, obj_id)
                try:
                    entry = self.tree[path]
                except _read_errors():
                    entry = None
                if entry is not None:  # a folder or gitlink there is named as broken
                    found = parse_file(self.repo, path, entry.id)
            self._one[key] = found
        return self._one[key]

    def count(self, kind: str) -> int:
        """Files of a kind, counted once per tree (the store's `count_all` follows the change
        from the last tree counted; without it, a walk of the kind's folder)."""
        if self._counts is None:
            self._counts = (self._count_all(self.tree) if self._count_all is not None
                            else {name: self._walk_count(name) for name in KINDS})
        return self._counts.get(kind, 0)

    def _walk_count(self, kind: str) -> int:
        spec = KINDS[kind]
        if spec.folder not in self.tree:
            return 0
        from gitconvoy.state.trees import walk_yaml

        return sum(1 for _ in walk_yaml(self.repo, self.tree[spec.folder], spec.folder))

    def load_all(self) -> Loaded:
        global _FULL_LOADS
        _FULL_LOADS += 1
        return self._load_all(self.tree)


@contextlib.contextmanager
def no_cycle_collector() -> Iterator[None]:
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


def parse_all(repo: pygit2.Repository, tree: pygit2.Tree) -> Loaded:
    """Every object of a tree, parsed afresh."""
    from gitconvoy.state.trees import walk_yaml

    config = parse_config(repo, tree)
    errors: dict[str, SchemaError] = {}
    if isinstance(config, SchemaError):
        errors["convoy.yaml"] = config
        config = model.Config()
    objects: dict[str, dict[str, Any]] = {name: {} for name in KINDS}
    with no_cycle_collector():
        for name, spec in KINDS.items():
            if spec.folder not in tree:
                continue
            if tree[spec.folder].filemode != 0o40000:  # not a folder
                errors[spec.folder] = not_a_folder(name)
                continue
            for path, blob_id in walk_yaml(repo, tree[spec.folder], spec.folder):
                got = parse_file(repo, path, blob_id)
                if isinstance(got, SchemaError):
                    errors[path] = got
                elif got is not None:
                    objects[name][got.id] = got
    return Loaded(str(tree.id), config, objects, errors)


def patch(repo: pygit2.Repository, loaded: Loaded, tree: pygit2.Tree,
          changed: list[str]) -> Loaded:
    """Bring a cached load up to `tree`, re-reading only the files that changed."""
    for path in changed:
        if path == "convoy.yaml":
            config = parse_config(repo, tree)
            loaded.errors.pop(path, None)
            if isinstance(config, SchemaError):
                loaded.errors[path] = config
                config = model.Config()
            loaded.config = config
            continue
        kind = kind_of_path(path)
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
        got = parse_file(repo, path, entry.id)
        if isinstance(got, SchemaError):
            loaded.errors[path] = got
        elif got is not None:
            objs[got.id] = got
    loaded.tree = str(tree.id)
    return loaded
