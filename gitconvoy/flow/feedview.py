"""A hook's feeder step without a full load: the beads one step reads, kept beside the cache
and carried across other writes by a tree diff.

At 100k beads a full load (the cache's 100k rows) is most of a landing hook's time, yet a
step reads only a small part of the state: the beads of gitconvoy.plan.feedreach (roots,
what their deps name, whole trees around them). The *view* holds exactly what a step needs
for one state tree: those beads, every convoy, MR and review, every broken file's error,
and a summary of the beads it leaves out (how many are in flight, the branches they name,
parent ids they name that are no bead). It is written at the end of each hook
(`.git/convoy/cache/feed-view.json`) for the tree the hook's feed left.

The next hook serves it as a partial snapshot (Snapshot.narrowed). When other writers moved
the state meanwhile (a worker's `done`, a `bead create`, a sync), the view is first patched
from its tree to the current one: the files that differ (a tree diff, gitconvoy.state.trees:
the cost follows the change) are parsed on both sides, and each changed bead's place is
decided again — kept, brought in with its whole tree (read one file at a time), or left out
with the summary updated from its old and new versions — until every root's deps are in
(a fixpoint). Finding a tree needs the parent links of the beads left out: they are kept in
a second file (`feed-view-forest.json`, ~1 MB at 100k beads), read only when a tree must
come in and rewritten only when the set left out changes.

Anything the patch cannot decide exactly is a full load, as before: a changed convoy.yaml,
a removed or unreadable file, more than MAX_CHANGES changed files or MAX_PULL beads to
bring in, an open convoy of another strategy than `blocks` (others may read more of the
graph), a view or forest file that is missing, stale or of another gitconvoy. Both files
are untrusted input like the read cache (gitconvoy.state.cache): a digest line first, then
JSON, every row type-checked as it becomes a dataclass. A view is a statement about one
tree, so an old one is never wrong, only further behind; a bug in this module costs speed,
never the feed (its errors fall back to the full load).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitconvoy.errors import SchemaError
from gitconvoy.plan import feedreach
from gitconvoy.plan import strategies as plan_strategies
from gitconvoy.state.cache import cache_key
from gitconvoy.state.layout import KINDS, kind_of_path
from gitconvoy.state.model import IN_FLIGHT, Bead
from gitconvoy.state.rows import CacheMiss, forget_deps, shape_of
from gitconvoy.state.snapshot import Loaded, Snapshot, full_loads
from gitconvoy.state.store import Store

VIEW_FILE = "feed-view.json"
FOREST_FILE = "feed-view-forest.json"
LAST_FILE = "feed-view.last"  # how the last hook was fed, and how many full loads it made
VIEW_VERSION = 2
MAGIC = b"gitconvoy-feed-view sha256:"
MAX_SHARE = 0.5  # a view of more than half the beads of a big state saves little: not kept
SMALL_STATE = 1000  # below this many beads a view is kept whatever its share
MAX_CHANGES = 500  # changed files a patch parses; beyond, the full load
MAX_PULL = 5000  # beads a patch reads one by one to bring trees in; beyond, the full load
SHRINK_ABOVE = 500  # beads no longer needed that are dropped even when the forest is unread


class Fallback(Exception):
    """The view cannot feed exactly as the whole state would; the message says why."""


@dataclass
class Outside:
    """What a step needs of the beads the view leaves out: how many are in flight (the
    feeder's early exit, the watch list), the branches they name as target or integration
    branch (the watch list must not take one for a work branch), the parent ids they name
    that are no bead (a bead created with such an id joins their tree), and the token of the
    forest file holding their parent links."""

    flying: int = 0
    targets: dict[str, int] = field(default_factory=dict)
    dangling: set[str] = field(default_factory=set)
    forest: str = ""

    def count(self, bead: Bead, sign: int) -> None:
        """Count a bead in (+1) or out (-1) of the summary."""
        if bead.status in IN_FLIGHT:
            self.flying += sign
        for name in (bead.target, bead.integration_branch):
            if name:
                left = self.targets.get(name, 0) + sign
                if left < 0:
                    raise Fallback(f"the view's summary does not count {name}")
                if left:
                    self.targets[name] = left
                else:
                    del self.targets[name]
        if self.flying < 0:
            raise Fallback("the view's summary counts fewer beads in flight than it had")


@dataclass
class View:
    """What one feeder step reads of the state at `tree` (see the module docstring)."""

    tree: str
    beads: dict[str, Bead]
    others: dict[str, dict[str, Any]]  # every convoy, MR and review, by kind
    errors: dict[str, SchemaError]  # every broken file, by path (as a full load keys them)
    outside: Outside
    forest: dict[str, list[str]] | None = None  # the left-out beads' children, when read
    forest_changed: bool = False

    def loaded(self, config: Any) -> Loaded:
        return Loaded(self.tree, config, {"beads": dict(self.beads), **{
            kind: dict(self.others.get(kind, {})) for kind in KINDS if kind != "beads"}},
            dict(self.errors))


@dataclass
class Served:
    """How a hook was fed: `view` (as the last hook left it), `patched` (carried across
    `changed` files, `pulled` beads brought in) or `full` (why)."""

    how: str
    why: str = ""
    changed: int = 0
    pulled: int = 0
    view: View | None = None


def view_file(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", "cache", VIEW_FILE)


def _forest_file(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", "cache", FOREST_FILE)


# --- serving ------------------------------------------------------------------------------


def serve(store: Store) -> Served:
    """Make the store serve the view, patched up to the state ref, as its snapshot; a
    `full` answer (nothing changed in the store) when it cannot be done exactly."""
    commit = store.state_commit()
    if commit is None:
        return Served("full", "no state")
    try:
        view = read_view(store)
        snap = store.read_commit(commit)  # lazy: single files only
        changed = grow = None
        if view.tree != snap.tree:
            changed, grow = _patch(store, view, snap)
        _check_strategies(view)
        store.use_partial(commit, view.loaded(snap.config), frozenset(view.outside.targets),
                          view.outside.flying > 0)
    except Fallback as exc:
        return Served("full", str(exc))
    except Exception as exc:  # noqa: BLE001 - a view gone wrong costs speed, never the feed
        return Served("full", f"{type(exc).__name__}: {exc}")
    if changed is None:
        return Served("view", view=view)
    return Served("patched", changed=changed, pulled=grow.pulled if grow else 0, view=view)


def _check_strategies(view: View) -> None:
    for convoy in view.others.get("convoys", {}).values():
        if convoy.status == "open" and convoy.strategy != plan_strategies.BLOCKS:
            raise Fallback(f"convoy {convoy.id} uses strategy {convoy.strategy}")


def _patch(store: Store, view: View, snap: Snapshot) -> tuple[int, _Grow]:
    """Carry the view from its tree to the snapshot's (see the module docstring)."""
    assert snap.tree is not None
    changes = store.tree_changes(view.tree, snap.tree, MAX_CHANGES)
    if changes is None:
        raise Fallback(f"more than {MAX_CHANGES} files changed, or the view's tree is gone")
    beads: list[tuple[Bead | None, Bead]] = []
    for path, old, new in changes:
        kind = kind_of_path(path)
        if path == "convoy.yaml" or (kind is not None and "/" not in path):
            raise Fallback(f"{path} changed")
        if kind is None or not path.endswith(".yaml"):
            continue  # not read by a load either
        if new is None or isinstance(new, SchemaError):
            raise Fallback(f"{path} was removed or is unreadable")
        if view.errors.pop(path, None) is not None:
            old = None  # no object of a full load before
        elif isinstance(old, SchemaError):
            raise Fallback(f"the view did not know {path} was broken")
        if kind == "beads":
            beads.append((old, new))
            continue
        objs = view.others.setdefault(kind, {})
        if old is not None:
            objs.pop(old.id, None)
        objs[new.id] = new
    _check_strategies(view)
    grow = _Grow(store, view, snap.lookup)
    grow.change(beads, feedreach.tracked_by_open(view.others.get("convoys", {}).values()))
    grow.settle()
    view.tree = snap.tree
    return len(changes), grow


class _Grow:
    """Brings whole trees into a view, reading beads one file at a time at the view's new
    tree (`lookup`), and keeps the summary and the forest true to the beads left out."""

    def __init__(self, store: Store, view: View, lookup: Callable[[str, str], Any]) -> None:
        self.store = store
        self.view = view
        self.lookup = lookup
        self.before = set(view.beads)  # in the view at its old tree: whole trees
        self.fresh: set[str] = set()  # no bead at the old tree
        self.pending: dict[str, Bead] = {}  # changed or new, not in the view (yet)
        self.moved: dict[str, str] = {}  # left out, parent changed: id -> the old parent
        self.extra: dict[str, set[str]] = {}  # parent -> beads that came under it
        self.starts: set[str] = set()
        self.pulled = 0
        self.kids = feedreach.children_of(view.beads.values())
        self.tracked: set[str] = set()

    def get(self, bead_id: str) -> Bead | None:
        found = self.view.beads.get(bead_id) or self.pending.get(bead_id)
        return found if found is not None else self.lookup("beads", bead_id)

    def forest(self) -> dict[str, list[str]]:
        """The left-out beads' children at the old tree (read once, on first need)."""
        if self.view.forest is None:
            self.view.forest = _read_forest(self.store, self.view.outside.forest)
        return self.view.forest

    def change(self, beads: list[tuple[Bead | None, Bead]], tracked: set[str]) -> None:
        """Take the changed beads (old version, or None for a new bead) and decide which
        trees must come in."""
        self.tracked = tracked
        for old, new in beads:
            if new.id in self.before:
                prev = self.view.beads[new.id]
                self.view.beads[new.id] = new
                if prev.parent != new.parent:
                    self._rekid(new.id, prev.parent, new.parent)
                    self.starts.add(new.id)  # its new parent's tree joins
                continue
            if old is None:
                self.fresh.add(new.id)
            else:
                self.view.outside.count(old, -1)
                if old.parent != new.parent and old.parent:
                    self.moved[new.id] = old.parent
            self.pending[new.id] = new
            if new.parent and (old is None or old.parent != new.parent):
                self.extra.setdefault(new.parent, set()).add(new.id)
        for old, new in beads:
            if new.id not in self.before and self._reaches(old, new):
                self.starts.add(new.id)
                if old is not None and old.parent and old.parent != new.parent:
                    self.starts.add(old.parent)  # its old tree rolls up without it

    def _reaches(self, old: Bead | None, new: Bead) -> bool:
        """Must a changed bead left out come in with its tree? When a step acts on it, or
        when the roll-up of an epic may change with it: a bead below an epic, or an epic
        with children, whose parent, status, type or integration branch changed."""
        if feedreach.is_root(new, self.tracked):
            return True
        if old is not None and feedreach.rollup_fields(old) == feedreach.rollup_fields(new):
            return False
        if new.parent or (old is not None and old.parent):
            return True
        epic = new.type == "epic" or (old is not None and old.type == "epic")
        return epic and bool(self.children(new.id))

    def _rekid(self, bead_id: str, was: str | None, now: str | None) -> None:
        if was and bead_id in self.kids.get(was, ()):
            self.kids[was].remove(bead_id)
        if now:
            self.kids.setdefault(now, []).append(bead_id)

    def children(self, bead_id: str) -> list[str]:
        """A bead's children at the new tree: those in the view, those left out at the old
        tree still under it, and those that came under it since."""
        out = list(self.kids.get(bead_id, ()))
        if bead_id not in self.before and (bead_id not in self.fresh or
                                           bead_id in self.view.outside.dangling):
            out += [c for c in self.forest().get(bead_id, ()) if c not in self.moved]
        out += sorted(self.extra.get(bead_id, ()))
        return out

    def pull(self, bead_id: str) -> None:
        """Bring the whole tree holding `bead_id` into the view (nothing if it is no bead)."""
        start = self.get(bead_id)
        if start is None:
            return
        try:
            tree = feedreach.tree_of(start, self.get, self.children)
        except KeyError as exc:
            raise Fallback(f"the forest names {exc.args[0]}, which is no bead") from None
        for found_id, bead in tree.items():
            if found_id in self.view.beads:
                continue
            self.pulled += 1
            if self.pulled > MAX_PULL:
                raise Fallback(f"more than {MAX_PULL} beads to bring into the view")
            self.view.beads[found_id] = bead
            if bead.parent:
                self.kids.setdefault(bead.parent, []).append(found_id)
            if found_id not in self.pending and found_id not in self.before:
                self.view.outside.count(bead, -1)  # unchanged: counted as it is
                self._unlink(found_id, bead.parent)
            elif found_id in self.moved:
                self._unlink(found_id, self.moved[found_id])
            elif found_id in self.pending and found_id not in self.fresh:
                self._unlink(found_id, bead.parent)
            if found_id in self.view.outside.dangling or (
                    self.view.forest is not None and found_id in self.view.forest):
                self._unlink_children(found_id)

    def _unlink(self, bead_id: str, parent: str | None) -> None:
        """A bead left the forest: out of its old parent's list."""
        if not parent:
            return
        forest = self.forest()
        siblings = forest.get(parent)
        if siblings is not None and bead_id in siblings:
            siblings.remove(bead_id)
            self.view.forest_changed = True
            if not siblings:
                del forest[parent]
                self.view.outside.dangling.discard(parent)

    def _unlink_children(self, bead_id: str) -> None:
        forest = self.forest()
        if forest.pop(bead_id, None) is not None:
            self.view.forest_changed = True
        self.view.outside.dangling.discard(bead_id)

    def settle(self) -> None:
        """Bring in the trees the changes reach, then every tree a root's deps name, until
        nothing more is wanted; count the changed beads left out into the summary."""
        for bead_id in sorted(self.starts):
            self.pull(bead_id)
        while True:
            want = feedreach.wanted(self.view.beads.values(), self.tracked, self.get)
            missing = sorted(want - set(self.view.beads))
            if not missing:
                break
            for bead_id in missing:
                self.pull(bead_id)
            if not want <= set(self.view.beads):  # each round must bring its beads in
                raise Fallback(f"{missing[0]} cannot be brought into the view")
        for bead_id, bead in self.pending.items():
            if bead_id not in self.view.beads:
                self.view.outside.count(bead, +1)
                self.view.outside.dangling.discard(bead_id)  # a bead now, whatever it holds
        self.pending = {}


# --- saving -------------------------------------------------------------------------------


def save(store: Store, served: Served | None, loads_before: int = 0) -> None:
    """Write the view for the snapshot this hook holds (the tree its feed left), and say how
    the hook was fed (`feed-view.last`, with the full loads made since `loads_before`). Best
    effort: a view that cannot be made is removed; one that is merely behind (the snapshot
    was never loaded) is left for the next patch."""
    snap = store.held()
    try:
        if snap is None:
            return _record(store, served, loads_before)
        if snap.partial:
            view = _carry(store, served.view, snap) if served and served.view else None
        else:
            loaded = snap.full_load()
            if loaded is None:
                return _record(store, served, loads_before)
            view = _from_full(loaded, snap)
        if view is None:
            _remove(view_file(store))
        else:
            _write(store, view)
    except Fallback as exc:  # this state is one to feed from whole (for now)
        _remove(view_file(store))
        served = _noted(served, f"not kept: {exc}")
    except Exception as exc:  # noqa: BLE001 - a view that cannot be written only costs speed
        _remove(view_file(store))
        served = _noted(served, f"not saved: {type(exc).__name__}: {exc}")
    _record(store, served, loads_before)


def _noted(served: Served | None, note: str) -> Served:
    served = served or Served("full", "not served")
    served.why = f"{served.why}; {note}".lstrip("; ")
    return served


def _carry(store: Store, view: View, snap: Snapshot) -> View | None:
    """The served view after the feed's own writes: those stay within its beads, but a bead
    the feed moved (an epic rolled up) may now be a root whose deps name more trees."""
    loaded = snap.full_load()
    if loaded is None or set(loaded.objects["beads"]) != set(view.beads):
        return None
    view.tree = loaded.tree
    view.beads = loaded.objects["beads"]
    view.others = {k: v for k, v in loaded.objects.items() if k != "beads"}
    view.errors = loaded.errors
    grow = _Grow(store, view, snap.lookup)
    grow.tracked = feedreach.tracked_by_open(view.others.get("convoys", {}).values())
    grow.settle()
    _check_strategies(view)
    _shrink(view, grow)
    return None if _too_big(view, snap) else view


def _shrink(view: View, grow: _Grow) -> None:
    """Leave out the trees no step needs any more (a closed convoy's, say) when the forest
    is being rewritten anyway or they are many. They are whole trees whose epics are rolled
    up (`reach` keeps any tree with an epic to roll up), as the summary promises."""
    if view.forest is None and len(view.beads) <= SHRINK_ABOVE:
        return  # too few to be worth reading the forest for
    keep = feedreach.reach(view.beads, view.others.get("convoys", {}).values())
    drop = {b for b in view.beads if b not in keep}
    if not drop or (view.forest is None and len(drop) <= SHRINK_ABOVE):
        return
    forest = grow.forest()
    for bead_id in sorted(drop):
        bead = view.beads.pop(bead_id)
        view.outside.count(bead, +1)
        if bead.parent:
            forest.setdefault(bead.parent, []).append(bead_id)
            if bead.parent not in drop:  # a whole tree: its top's parent is no bead
                view.outside.dangling.add(bead.parent)
    view.forest_changed = True


def _too_big(view: View, snap: Snapshot) -> bool:
    total = snap.count("beads")
    return total > SMALL_STATE and len(view.beads) > MAX_SHARE * total


def _from_full(loaded: Loaded, snap: Snapshot) -> View | None:
    """The view of a whole state, its forest included."""
    beads = loaded.objects["beads"]
    others = {k: v for k, v in loaded.objects.items() if k != "beads"}
    view = View(loaded.tree, {}, others, loaded.errors, Outside(), {}, True)
    _check_strategies(view)
    ids = feedreach.reach(beads, others.get("convoys", {}).values())
    assert view.forest is not None
    for bead_id, bead in beads.items():
        if bead_id in ids:
            view.beads[bead_id] = bead
            continue
        view.outside.count(bead, +1)
        if bead.parent:
            view.forest.setdefault(bead.parent, []).append(bead_id)
    view.outside.dangling = {p for p in view.forest if p not in beads}
    return None if _too_big(view, snap) else view


# --- the files ----------------------------------------------------------------------------


def _key() -> list[Any]:
    return [VIEW_VERSION, cache_key()]


def _rows(kind: str, objects: dict[str, Any]) -> list[Any]:
    """Each object as a cache row, proved to rebuild to an equal object."""
    shape = shape_of(KINDS[kind].cls)
    rows = []
    for obj in objects.values():
        row = shape.encode(obj)
        try:
            exact = shape.decode(list(row)) == obj
        except (CacheMiss, RecursionError, TypeError, ValueError):
            exact = False
        if not exact:
            raise Fallback(f"{kind} {obj.id} holds a value a view cannot carry")
        rows.append(row)
    return rows


def _write(store: Store, view: View) -> None:
    if view.forest_changed or not view.outside.forest:
        view.outside.forest = os.urandom(8).hex()
        _write_json(_forest_file(store), {"key": _key(), "token": view.outside.forest,
                                          "children": view.forest or {}})
    objects = {"beads": _rows("beads", view.beads)}
    for kind in KINDS:
        if kind != "beads":
            objects[kind] = _rows(kind, view.others.get(kind, {}))
    outside = view.outside
    _write_json(view_file(store), {
        "key": _key(), "tree": view.tree, "objects": objects,
        "errors": [[key, e.path, e.field, e.expected] for key, e in view.errors.items()],
        "outside": {"flying": outside.flying, "targets": outside.targets,
                    "dangling": sorted(outside.dangling), "forest": outside.forest},
    })


def _write_json(path: str, payload: Any) -> None:
    """A digest line, then the JSON (as the read cache frames its file: a cut-off write or a
    changed byte reads as no file at all)."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("ascii")
    _replace(path, MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)


def _replace(path: str, data: bytes) -> None:
    """Whole or not at all: readers never see half a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _read_json(path: str, what: str) -> Any:
    """The payload of a file _write_json wrote; Fallback naming `what` otherwise."""
    try:
        with open(path, "rb") as fh:
            head, _, body = fh.read().partition(b"\n")
        if head != MAGIC + hashlib.sha256(body).hexdigest().encode("ascii"):
            raise ValueError("digest mismatch")
        return json.loads(body)
    except FileNotFoundError:
        raise Fallback(f"no {what}") from None
    except (OSError, ValueError):
        raise Fallback(f"the {what} is damaged") from None


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def read_view(store: Store) -> View:
    """The view file, checked; Fallback when there is none this gitconvoy can trust."""
    payload = _read_json(view_file(store), "view")
    if type(payload) is not dict or payload.get("key") != _key():
        raise Fallback("the view was written by another gitconvoy")
    try:
        forget_deps()
        objects: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        for kind, rows in payload["objects"].items():
            shape = shape_of(KINDS[kind].cls)
            for row in rows:
                obj = shape.decode(row)
                objects[kind][obj.id] = obj
        errors = {}
        for key, path, fld, expected in payload["errors"]:
            if not all(type(x) is str for x in (key, path, expected)) or \
                    not (fld is None or type(fld) is str):
                raise Fallback("the view's errors are not [file, path, field, problem]")
            errors[key] = SchemaError(path, fld, expected)
        raw = payload["outside"]
        outside = Outside(raw["flying"], dict(raw["targets"]), set(raw["dangling"]),
                          raw["forest"])
        tree = payload["tree"]
    except (KeyError, TypeError, ValueError, AttributeError, CacheMiss):
        raise Fallback("the view file is damaged") from None
    if type(tree) is not str or type(outside.flying) is not int or outside.flying < 0 or \
            type(outside.forest) is not str or \
            not all(type(k) is str and type(v) is int and v > 0
                    for k, v in outside.targets.items()) or \
            not all(type(p) is str for p in outside.dangling):
        raise Fallback("the view file is damaged")
    beads = objects.pop("beads")
    return View(tree, beads, objects, errors, outside)


def _read_forest(store: Store, token: str) -> dict[str, list[str]]:
    payload = _read_json(_forest_file(store), "forest file")
    if type(payload) is not dict or payload.get("key") != _key() or \
            payload.get("token") != token or not token:
        raise Fallback("the forest file belongs to another view")
    children = payload.get("children")
    if type(children) is not dict or not all(
            type(k) is str and type(v) is list and all(type(c) is str for c in v)
            for k, v in children.items()):
        raise Fallback("the forest file is damaged")
    return children


def _record(store: Store, served: Served | None, loads_before: int) -> None:
    """How this hook was fed, for doctor-style questions and tests (best effort)."""
    how = served or Served("full", "not served")
    path = os.path.join(store.common_dir, "convoy", "cache", LAST_FILE)
    record = {"served": how.how, "why": how.why, "changed": how.changed,
              "pulled": how.pulled, "full_loads": full_loads() - loads_before}
    with contextlib.suppress(OSError):
        _replace(path, json.dumps(record).encode("ascii") + b"\n")
