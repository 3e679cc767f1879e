"""The read cache in .git/convoy/cache: a full load of one state tree, keyed by the tree id
and brought up to date by a tree diff. Losing it only costs speed."""

from __future__ import annotations

import os
import pickle
from typing import Any

import pygit2

from gitconvoy.state import model
from gitconvoy.state.layout import KINDS
from gitconvoy.state.snapshot import Loaded, no_cycle_collector, parse_all, patch
from gitconvoy.state.trees import changed_paths

CACHE_VERSION = 3
# A cache more than this many changed files behind the ref is rewritten after a read.
CACHE_SAVE_AFTER = 32


def cache_key() -> tuple[Any, ...]:
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


def cache_file(common_dir: str) -> str:
    return os.path.join(common_dir, "convoy", "cache", "snapshot.pickle")


def load(common_dir: str) -> Loaded | None:
    with no_cycle_collector():
        try:
            with open(cache_file(common_dir), "rb") as fh:
                data = pickle.load(fh)
            if data.get("key") == cache_key():
                return data["loaded"]
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
                TypeError, ValueError, KeyError, IndexError):
            pass
    return None


def save(common_dir: str, loaded: Loaded) -> None:
    path = cache_file(common_dir)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump({"key": cache_key(), "loaded": loaded},
                        fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass  # a cache that cannot be written only costs speed


def load_all(repo: pygit2.Repository, common_dir: str, tree: pygit2.Tree) -> Loaded:
    """Every object of a tree: from the cache, patched by a tree diff, or parsed afresh."""
    tree_id = str(tree.id)
    cached = load(common_dir)
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
