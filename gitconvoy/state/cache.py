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
import os
import re
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from gitconvoy.errors import SchemaError
from gitconvoy.state import model
from gitconvoy.state.layout import KINDS, object_path
from gitconvoy.state.rows import CacheMiss, forget_deps, miss, shape_of
from gitconvoy.state.snapshot import Loaded, no_cycle_collector, parse_all, parse_file, patch

if TYPE_CHECKING:  # pygit2 loads in the functions that read a tree: a cold read (which reads
    import pygit2  # the object files itself) writes the file without it

CACHE_VERSION = 5  # 5: an inferred dep is [on, type, true]; 4: JSON rows behind a digest
# A cache more than this many changed files behind the ref is rewritten after a read.
CACHE_SAVE_AFTER = 32
MAGIC = b"gitconvoy-cache sha256:"
LEGACY_FILES = ("snapshot.pickle",)  # never read again; removed when a new cache is saved
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
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
        shape = shape_of(KINDS[kind].cls)
        rows = objects[kind] = []
        free = shape.free_values
        for obj_id, obj in loaded.objects.get(kind, {}).items():
            row = shape.encode(obj)
            try:
                # Every object here was parsed, so its fields have the model's types, which
                # JSON carries exactly; only free-form mappings (a dispatch) may hold what
                # it cannot (a date), so only a row with one is rebuilt and compared.
                exact = obj_id == obj.id and (
                    not any(free(row)) or shape.decode(list(row)) == obj)
            except (CacheMiss, RecursionError, TypeError, ValueError):
                exact = False
            if exact:
                rows.append(row)
            else:
                reparse.setdefault(kind, []).append(obj.id)
    payload = {
        "key": cache_key(),
        "tree": loaded.tree,
        "config": shape_of(model.Config).encode(loaded.config),
        "objects": objects,
        "reparse": reparse,
        "errors": [[key, e.path, e.field, e.expected] for key, e in loaded.errors.items()],
    }
    import json  # here: a cold read asks only for the file's name before its child writes

    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("ascii")
    return MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body


def decode(data: bytes, repo: pygit2.Repository) -> Loaded:
    """The load a file holds, or CacheMiss (or any exception from a file gone wrong)."""
    forget_deps()
    head, _, body = data.partition(b"\n")
    if head != MAGIC + hashlib.sha256(body).hexdigest().encode("ascii"):
        raise miss("digest mismatch")
    import json

    payload = json.loads(body)
    if type(payload) is not dict or payload.get("key") != cache_key():
        raise miss("written for another gitconvoy or model")
    tree_id = payload["tree"]
    if type(tree_id) is not str or not _OBJECT_ID.fullmatch(tree_id):
        raise miss("expected a tree id")
    config = shape_of(model.Config).decode(payload["config"])
    objects: dict[str, dict[str, Any]] = {}
    rows = payload["objects"]
    for kind in KINDS:
        shape = shape_of(KINDS[kind].cls)
        decoded = (shape.decode(row) for row in rows[kind])
        objects[kind] = {obj.id: obj for obj in decoded}
    errors = {}
    for key, path, field, expected in payload["errors"]:
        if type(key) is not str or type(path) is not str or type(expected) is not str or \
                (field is not None and type(field) is not str):
            raise miss("expected [file, path, field, problem]")
        errors[key] = SchemaError(path, field, expected)
    _reparse(repo, tree_id, payload["reparse"], objects, errors)
    return Loaded(tree_id, config, objects, errors)


def _reparse(repo: pygit2.Repository, tree_id: str, ids: Any,
             objects: dict[str, dict[str, Any]], errors: dict[str, Any]) -> None:
    """Parse the few objects the cache listed by id from the tree it was built from."""
    if not ids:
        return
    import pygit2

    tree = repo.get(tree_id)
    if not isinstance(tree, pygit2.Tree):
        raise miss("its tree is gone")
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
    import pygit2

    from gitconvoy.state.trees import changed_paths

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
