"""The read cache in .git/convoy/cache: a full load of one state tree, keyed by the tree id
and brought up to date by a tree diff. Losing it only costs speed.

The file is untrusted input: another process, a full disk or a bad sector can change or
replace it at any time. So it is plain JSON (loading it cannot run code, unlike a pickle),
its first line is a SHA-256 of the rest (which names the tree it was built from, the
package version and the model's shape), and every row is type-checked as it becomes a
dataclass. A changed byte, a cut-off write or another gitconvoy's file is a cache miss:
rebuilt, never served, never fatal. The digest is no signature: a file forged with a
matching digest can at worst say something the state does not, in fields of the right type
(as anyone who can write .git can by moving the ref); it cannot run code or break a read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pygit2

from gitconvoy.errors import SchemaError
from gitconvoy.state import model
from gitconvoy.state.layout import KINDS, object_path
from gitconvoy.state.snapshot import Loaded, no_cycle_collector, parse_all, parse_file, patch
from gitconvoy.state.trees import changed_paths

CACHE_VERSION = 4  # 4: JSON rows behind a digest (3 was a pickle)
# A cache more than this many changed files behind the ref is rewritten after a read.
CACHE_SAVE_AFTER = 32
MAGIC = b"gitconvoy-cache sha256:"
LEGACY_FILES = ("snapshot.pickle",)  # never read again; removed when a new cache is saved
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
MAX_DEPTH = 32  # deeper free-form values (a bead's dispatch) are re-parsed, not cached

# Fields the model restricts to a fixed set of values (the rest of a row is checked by type).
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("Bead", "type"): frozenset(model.BEAD_TYPES),
    ("Bead", "status"): frozenset(model.BEAD_STATUSES),
    ("Convoy", "status"): frozenset(model.CONVOY_STATUSES),
    ("MergeRequest", "status"): frozenset(model.MR_STATUSES),
    ("Review", "status"): frozenset(model.REVIEW_STATUSES),
}
_DEP_TYPES = frozenset(model.DEP_TYPES)


class CacheMiss(Exception):
    """The file is not a cache this process can serve; the state is parsed instead."""


# --- rows: one JSON list per object, in the dataclass's field order --------------------


def _plain(value: Any, depth: int = 0) -> bool:
    """True for what JSON carries exactly: str, int, bool, None, finite floats, lists and
    str-keyed dicts of those. A date, a tuple or an int key would come back changed."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= MAX_DEPTH:
        return False
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def _miss(what: str) -> CacheMiss:
    return CacheMiss(f"cache: {what}")


def _an_int(value: Any) -> int:
    if type(value) is not int:
        raise _miss("expected an integer")
    return value


def _a_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _miss("expected a boolean")
    return value


def _str_list(value: Any) -> list[str]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise _miss("expected a list of strings")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if type(value) is not dict or (value and not _plain(value)):
        raise _miss("expected a plain mapping")
    return value


# Deps are frozen, so equal ones are shared within one load (cleared at each: it stays small).
_DEP_MEMO: dict[tuple[str, str], model.Dep] = {}


def _deps(value: Any) -> list[model.Dep]:
    if type(value) is not list:
        raise _miss("expected a list of deps")
    out = []
    for pair in value:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str \
                or pair[1] not in _DEP_TYPES:
            raise _miss("expected [on, type]")
        key = (pair[0], pair[1])
        dep = _DEP_MEMO.get(key)
        if dep is None:
            dep = _DEP_MEMO[key] = model.Dep(*key)
        out.append(dep)
    return out


def _rigs(value: Any) -> dict[str, model.Rig]:
    if type(value) is not dict:
        raise _miss("expected a mapping of rigs")
    rigs = {}
    for name, row in value.items():
        rig = _shape(model.Rig).decode(row)
        if rig.name != name:
            raise _miss(f"rig {name!r} holds {rig.name!r}")
        rigs[name] = rig
    return rigs


# What each field annotation of the model means in a row: (decode, encode or None).
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any] | None]] = {
    "int": (_an_int, None),
    "bool": (_a_bool, None),
    "list[str]": (_str_list, None),
    "dict[str, Any]": (_mapping, None),
    "list[Dep]": (_deps, lambda deps: [[d.on, d.type] for d in deps]),
    "dict[str, Rig]": (_rigs, lambda rigs: {n: _shape(model.Rig).encode(r)
                                            for n, r in rigs.items()}),
}


def _one_of(allowed: frozenset[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed or type(value) is not str:
            raise _miss("unexpected value")
        return value
    return check


@dataclass(frozen=True)
class Shape:
    """How one model class becomes a row and back. Strings, the bulk of every row, are
    checked in two tight loops; everything else goes through its field's codec."""

    cls: type
    names: tuple[str, ...]
    strings: tuple[int, ...]  # `str`: must be a string
    optional: tuple[int, ...]  # `str | None`
    special: tuple[tuple[int, Callable[[Any], Any]], ...]
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, model_cls: type) -> Shape:
        strings, optional, special, encoders = [], [], [], []
        for i, f in enumerate(fields(model_cls)):
            annotation = str(f.type)
            enum = ENUMS.get((model_cls.__name__, f.name))
            if enum is not None:
                special.append((i, _one_of(enum)))
            elif annotation == "str":
                strings.append(i)
            elif annotation == "str | None":
                optional.append(i)
            elif annotation in _CODECS:
                decode, encode = _CODECS[annotation]
                special.append((i, decode))
                if encode is not None:
                    encoders.append((i, encode))
            else:  # a new kind of field: teach the cache its row form (tests catch this)
                raise TypeError(f"the cache cannot store {model_cls.__name__}.{f.name}: "
                                f"{annotation}")
        return cls(model_cls, tuple(f.name for f in fields(model_cls)), tuple(strings),
                   tuple(optional), tuple(special), tuple(encoders))

    def encode(self, obj: Any) -> list[Any]:
        row = [getattr(obj, name) for name in self.names]
        for i, encode in self.encoders:
            row[i] = encode(row[i])
        return row

    def decode(self, row: Any) -> Any:
        """The object of a row read from the file (which it may change): checked first."""
        if type(row) is not list or len(row) != len(self.names):
            raise _miss(f"expected a row of {len(self.names)} {self.cls.__name__} fields")
        for i in self.strings:
            if type(row[i]) is not str:
                raise _miss(f"{self.names[i]}: expected a string")
        for i in self.optional:
            value = row[i]
            if value is not None and type(value) is not str:
                raise _miss(f"{self.names[i]}: expected a string or null")
        for i, decode in self.special:
            row[i] = decode(row[i])
        return self.cls(*row)


_SHAPES: dict[type, Shape] = {}


def _shape(model_cls: type) -> Shape:
    if model_cls not in _SHAPES:
        _SHAPES[model_cls] = Shape.of(model_cls)
    return _SHAPES[model_cls]


def cache_key() -> list[Any]:
    """What a file must have been written for: this cache format, this gitconvoy and these
    model classes (field names and types), so an upgrade never reads rows of another shape."""
    from gitconvoy import __version__

    classes = [kind.cls for _, kind in sorted(KINDS.items())] + [model.Config, model.Rig]
    shapes = [[c.__name__, [[f.name, str(f.type)] for f in fields(c)]] for c in classes]
    return [CACHE_VERSION, __version__, sorted(KINDS), shapes]


def cache_file(common_dir: str) -> str:
    return os.path.join(common_dir, "convoy", "cache", "snapshot.json")


# --- the file ------------------------------------------------------------------------------


def encode(loaded: Loaded) -> bytes:
    """The whole file: the digest line, then the JSON payload. An object whose row would not
    rebuild to an equal object (a date in its dispatch, say) is listed by id instead, and
    re-parsed from the tree when the cache is read."""
    objects: dict[str, list[Any]] = {}
    reparse: dict[str, list[str]] = {}
    for kind in KINDS:
        shape = _shape(KINDS[kind].cls)
        rows = objects[kind] = []
        for obj_id, obj in loaded.objects.get(kind, {}).items():
            row = shape.encode(obj)
            try:
                exact = obj_id == obj.id and shape.decode(list(row)) == obj
            except (CacheMiss, RecursionError, TypeError, ValueError):
                exact = False
            if exact:
                rows.append(row)
            else:
                reparse.setdefault(kind, []).append(obj.id)
    payload = {
        "key": cache_key(),
        "tree": loaded.tree,
        "config": _shape(model.Config).encode(loaded.config),
        "objects": objects,
        "reparse": reparse,
        "errors": [[key, e.path, e.field, e.expected] for key, e in loaded.errors.items()],
    }
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("ascii")
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def decode(data: bytes, repo: pygit2.Repository) -> Loaded:
    """The load a file holds, or CacheMiss (or any exception from a file gone wrong)."""
    _DEP_MEMO.clear()
    head, _, body = data.partition(b"\n")
    if head != MAGIC + hashlib.sha256(body).hexdigest().encode("ascii"):
        raise _miss("digest mismatch")
    payload = json.loads(body)
    if type(payload) is not dict or payload.get("key") != cache_key():
        raise _miss("written for another gitconvoy or model")
    tree_id = payload["tree"]
    if type(tree_id) is not str or not _OBJECT_ID.fullmatch(tree_id):
        raise _miss("expected a tree id")
    config = _shape(model.Config).decode(payload["config"])
    objects: dict[str, dict[str, Any]] = {}
    rows = payload["objects"]
    for kind in KINDS:
        shape = _shape(KINDS[kind].cls)
        decoded = (shape.decode(row) for row in rows[kind])
        objects[kind] = {obj.id: obj for obj in decoded}
    errors = {}
    for key, path, field, expected in payload["errors"]:
        if type(key) is not str or type(path) is not str or type(expected) is not str or \
                (field is not None and type(field) is not str):
            raise _miss("expected [file, path, field, problem]")
        errors[key] = SchemaError(path, field, expected)
    _reparse(repo, tree_id, payload["reparse"], objects, errors)
    return Loaded(tree_id, config, objects, errors)


def _reparse(repo: pygit2.Repository, tree_id: str, ids: Any,
             objects: dict[str, dict[str, Any]], errors: dict[str, Any]) -> None:
    """Parse the few objects the cache listed by id from the tree it was built from."""
    if not ids:
        return
    tree = repo.get(tree_id)
    if not isinstance(tree, pygit2.Tree):
        raise _miss("its tree is gone")
    for kind, kind_ids in ids.items():
        for obj_id in kind_ids:
            path = object_path(kind, model.validate_id(obj_id))
            got = parse_file(repo, path, tree[path].id)
            if isinstance(got, SchemaError):
                errors[path] = got
            elif got is not None:
                objects[kind][got.id] = got


def load(common_dir: str, repo: pygit2.Repository) -> Loaded | None:
    """The cached load, or None when there is none this process can trust."""
    try:
        with open(cache_file(common_dir), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    with no_cycle_collector():
        try:
            return decode(data, repo)
        except Exception:  # noqa: BLE001 - whatever is wrong with the file, it is a miss
            return None


def save(common_dir: str, loaded: Loaded) -> None:
    path = cache_file(common_dir)
    folder = os.path.dirname(path)
    try:
        data = encode(loaded)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        for name in LEGACY_FILES:
            if os.path.exists(os.path.join(folder, name)):
                os.remove(os.path.join(folder, name))
    except (OSError, ValueError, TypeError):
        pass  # a cache that cannot be written only costs speed


def load_all(repo: pygit2.Repository, common_dir: str, tree: pygit2.Tree) -> Loaded:
    """Every object of a tree: from the cache, patched by a tree diff, or parsed afresh."""
    tree_id = str(tree.id)
    cached = load(common_dir, repo)
    if cached is not None and cached.tree == tree_id:
        return cached
    old = repo.get(cached.tree) if cached is not None else None
    if cached is not None and isinstance(old, pygit2.Tree):
        changed: list[str] = []
        changed_paths(repo, old, tree, "", changed)
        loaded = patch(repo, cached, tree, changed)
        if len(changed) > CACHE_SAVE_AFTER:
            save(common_dir, loaded)
        return loaded
    loaded = parse_all(repo, tree)
    save(common_dir, loaded)
    return loaded
