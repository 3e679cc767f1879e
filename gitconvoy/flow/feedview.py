"""A hook's feeder step without a full load: the beads one step can read, kept beside the cache.

At 100k beads a full load of the state (the cache's 100k rows) is most of a landing hook's
time, yet a feeder step only ever looks at a small part of the state: the beads in flight,
the live work and integration branches, the members of open convoys, their blockers, and the
epics above all of those (the roll-up needs each such epic's whole subtree). This module
keeps exactly that part — the *view* — in `.git/convoy/cache/feed-view.json`, written at the
end of a hook's feed for the state commit that feed left, and serves it as a partial
snapshot (Snapshot.narrowed) to the next hook when the state tree is still the same.

Why the step gives the same result on the view as on the full state:
- every loop of a step over all beads only acts on beads in flight, with a live branch, or
  tracked by an open convoy: all are roots of the view;
- readiness reads a member's blockers and its ancestors' blockers: in the view, with their
  ancestors and (for an epic blocker whose landings are carried) its subtree;
- the roll-up reads each epic's children: the view holds the whole subtree of the topmost
  ancestor of everything in it; epics outside the view were checked consistent when it was
  written, and nothing under them can change without the tree changing;
- a lookup of any other bead still reads its file (Snapshot.lookup), counts come from the
  tree, broken files are all kept, the watch list gets the targets named outside the view.
Only the `blocks` strategy is served (others may read more of the graph); a different tree
(any other writer), another gitconvoy, or anything unexpected means a full load, as before.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gitconvoy.errors import SchemaError
from gitconvoy.plan import epics, graph
from gitconvoy.plan import strategies as plan_strategies
from gitconvoy.state import model
from gitconvoy.state.cache import cache_key
from gitconvoy.state.layout import KINDS
from gitconvoy.state.rows import CacheMiss, forget_deps, shape_of
from gitconvoy.state.snapshot import Loaded, Snapshot, full_loads
from gitconvoy.state.store import Store

VIEW_FILE = "feed-view.json"
LAST_FILE = "feed-view.last"  # how the last hook was fed: the view, or how many full loads
VIEW_VERSION = 1
MAX_SHARE = 0.5  # a view of more than half the beads saves little: not written


def view_file(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", "cache", VIEW_FILE)


def view_ids(beads: dict[str, model.Bead], convoys: dict[str, model.Convoy]) -> set[str]:
    """The beads a feeder step can read (pure; see the module docstring)."""
    index = graph.Index(beads)
    roots = {b.id for b in beads.values() if not b.done and (
        (b.status in model.IN_FLIGHT and not _idle_epic(b)) or b.branch
        or b.integration_branch)}
    for convoy in convoys.values():
        if convoy.status == "open":
            roots.update(t for t in convoy.tracks if t in beads)
    seeds = set(roots)
    for bead_id in roots:
        for holder in (bead_id, *index.ancestors(bead_id)):
            if holder in beads:
                seeds.update(d.on for d in beads[holder].deps if d.on in beads)
    tops = set()
    for bead_id in seeds:
        chain = index.ancestors(bead_id)
        tops.add(chain[-1] if chain and chain[-1] in beads else bead_id)
    out = set(tops)
    for top in tops:
        out.update(index.descendants(top))
    return out | seeds


def _idle_epic(bead: model.Bead) -> bool:
    """An epic in progress by roll-up alone (no rig, branch, target or dispatch): a step
    reads it only as "something is in flight" (Snapshot.outside_flying), and through the
    roll-up, which needs it only when a bead below it is in the view."""
    return bead.type == "epic" and not (bead.rig or bead.branch or bead.target or
                                        bead.base_commit or bead.integration_branch or
                                        bead.dispatch)


def _served(snap: Snapshot) -> bool:
    """Only `blocks` convoys: another strategy may read beads beyond the view."""
    return all(c.strategy == plan_strategies.BLOCKS for c in snap.convoys.values()
               if c.status == "open")


def save(store: Store) -> None:
    """Write the view for the state the hook's feed left (best effort; a view that cannot be
    shown right is removed instead)."""
    path = view_file(store)
    try:
        payload = _payload(store.snapshot())
        if payload is None:
            if os.path.exists(path):
                os.remove(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            json.dump(payload, fh, separators=(",", ":"), allow_nan=False)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - a view that cannot be written only costs speed
        pass


def _payload(snap: Snapshot) -> dict[str, Any] | None:
    if snap.tree is None or not _served(snap):
        return None
    beads, convoys = snap.beads, snap.convoys
    if snap.partial:  # the view it was served from, with this step's writes
        ids, outside, flying = set(beads), set(snap.outside_targets), snap.outside_flying
    else:
        ids = view_ids(beads, convoys)
        if len(ids) > MAX_SHARE * max(len(beads), 1):
            return None
        outside = {t for b in beads.values() if b.id not in ids
                   for t in (b.target, b.integration_branch) if t}
        flying = any(b.status in model.IN_FLIGHT for b in beads.values() if b.id not in ids)
    kept = {b: beads[b] for b in ids}
    if epics.epic_changes(kept, graph.Index(kept)):
        return None  # an epic left to roll up (a concurrent writer): no promise to make
    if not snap.partial and epics.epic_changes(beads, graph.Index(beads)):
        return None
    objects: dict[str, list[Any]] = {}
    for kind in KINDS:
        shape = shape_of(KINDS[kind].cls)
        chosen = kept if kind == "beads" else snap.objects.get(kind, {})
        rows = objects[kind] = []
        for obj in chosen.values():
            row = shape.encode(obj)
            try:
                if shape.decode(list(row)) != obj:
                    return None
            except (CacheMiss, RecursionError, TypeError, ValueError):
                return None  # a value JSON cannot carry: the full load serves it
            rows.append(row)
    return {
        "key": [VIEW_VERSION, cache_key()], "tree": snap.tree, "objects": objects,
        "outside": sorted(outside), "flying": flying,
        "errors": [[e.path, e.field, e.expected] for e in snap.errors],
    }


def serve(store: Store) -> bool:
    """Make the store serve the view as its snapshot when it was written for the state
    tree the ref points at now; False (nothing changed) otherwise."""
    commit = store.state_commit()
    if commit is None:
        return False
    try:
        with open(view_file(store), "rb") as fh:
            payload = json.loads(fh.read())
        lazy = store.read_commit(commit)
        if type(payload) is not dict or payload.get("key") != [VIEW_VERSION, cache_key()] \
                or payload.get("tree") != lazy.tree:
            return False
        forget_deps()
        objects = {kind: {} for kind in KINDS}
        for kind, rows in payload["objects"].items():
            shape = shape_of(KINDS[kind].cls)
            for row in rows:
                obj = shape.decode(row)
                objects[kind][obj.id] = obj
        errors = {}
        for path, field, expected in payload["errors"]:
            errors[str(path)] = SchemaError(str(path), field, str(expected))
        outside = frozenset(str(t) for t in payload["outside"])
        flying = payload["flying"] is True
    except (OSError, ValueError, TypeError, KeyError, CacheMiss):
        return False
    loaded = Loaded(str(lazy.tree), lazy.config, objects, errors)
    if not all(c.strategy == plan_strategies.BLOCKS for c in objects["convoys"].values()
               if c.status == "open"):
        return False
    store.use_partial(commit, loaded, outside, flying)
    return True


def record(store: Store, served: bool) -> None:
    """Say how this hook was fed (`.git/convoy/cache/feed-view.last`): from the view or not,
    and how many full loads it made (best effort; for doctor-style questions and tests)."""
    path = os.path.join(os.path.dirname(view_file(store)), LAST_FILE)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="ascii") as fh:
            json.dump({"served": served, "full_loads": full_loads()}, fh)
    except OSError:
        pass
