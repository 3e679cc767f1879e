"""The three-way field merge of state files, shared by the git merge driver and `sync`.

Pure functions over parsed YAML mappings: any object kind (bead, convoy, merge request,
convoy.yaml) merges field by field, so two clones that edited different fields of one bead
both keep their edit, and set-like lists keep every addition. The result depends only on the
three inputs, never on which side is "ours": two clones that merge the same pair of states
produce the same bytes, which is what lets many clones converge (docs/sync.md).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from gitconvoy.errors import ConvoyError

# Lists that are sets: an addition on either side survives; a removal wins only where the
# other side left that element alone.
SET_FIELDS = frozenset({"deps", "labels", "tracks", "prefixes", "steps_done"})
# Counters and once-set flags only grow: when both sides changed one, the larger value wins.
MAX_FIELDS = frozenset({"retries", "check_failures", "notified", "escalated"})
# Fields that move together: closed_at is set iff status is closed, so they are never mixed.
STATUS_GROUP = ("status", "closed_at", "close_reason")
# Statuses that record a fact (the work landed): they beat a concurrent, older status change.
FINAL_STATUSES = frozenset({"closed", "merged"})

Mapping = dict[str, Any]


@dataclass
class Merged:
    """One object's merge: the value under its id, and maybe a second object renamed away."""

    value: Mapping | None
    renamed: Mapping | None = None
    notes: list[str] = field(default_factory=list)


def canonical(value: Any) -> str:
    """A stable text form, used for set membership and as the last, symmetric tie-break."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _stamp(value: Any) -> str:
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat().replace("+00:00", "Z")
    return "" if value is None else str(value)


def _rank(side: Mapping) -> tuple[str, str]:
    """Later updated_at wins; equal stamps fall back to the text, so the order is total."""
    return (_stamp(side.get("updated_at")), canonical(side))


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def merge_set(base: Any, ours: Any, theirs: Any) -> list[Any]:
    """Keep an element present on both sides, or added (absent from base) on either side."""
    b = {canonical(x) for x in _as_list(base)}
    o = {canonical(x): x for x in _as_list(ours)}
    t = {canonical(x): x for x in _as_list(theirs)}
    keep = {k: v for k, v in {**o, **t}.items() if (k in o and k in t) or k not in b}
    return [keep[k] for k in sorted(keep)]


def _status_winner(base: Mapping, ours: Mapping, theirs: Mapping, prefer: Mapping) -> Mapping:
    """Which side's status/closed_at/close_reason survive (tombstone, then closed, then time)."""

    def group(d: Mapping) -> tuple[Any, ...]:
        return tuple(d.get(k) for k in STATUS_GROUP)

    if group(ours) == group(theirs) or group(theirs) == group(base):
        return ours
    if group(ours) == group(base):
        return theirs
    so, st = ours.get("status"), theirs.get("status")
    if (so == "tombstone") != (st == "tombstone"):
        return ours if so == "tombstone" else theirs
    if (so in FINAL_STATUSES) != (st in FINAL_STATUSES):
        closed, other = (ours, theirs) if so in FINAL_STATUSES else (theirs, ours)
        reopened = base.get("status") in FINAL_STATUSES
        # A close (work landed) beats a stale status change; only a newer reopen beats it.
        return other if reopened and _rank(other) > _rank(closed) else closed
    return prefer


def _merge_value(key: str, base: Any, ours: Any, theirs: Any, prefer_ours: bool) -> Any:
    if ours == theirs:
        return ours
    if key in SET_FIELDS and all(isinstance(v, list | type(None)) for v in (base, ours, theirs)):
        return merge_set(base, ours, theirs)
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return merge_mapping(base if isinstance(base, dict) else {}, ours, theirs, prefer_ours)
    if key in MAX_FIELDS and isinstance(ours, int | bool) and isinstance(theirs, int | bool):
        return max(ours, theirs)
    return ours if prefer_ours else theirs


def _key_order(*sides: Mapping) -> list[str]:
    """Union of keys, each placed at its earliest position on any side (symmetric)."""
    pos: dict[str, int] = {}
    for side in sides:
        for i, k in enumerate(side):
            pos[k] = min(pos.get(k, i), i)
    return sorted(pos, key=lambda k: (pos[k], k))


def merge_mapping(base: Mapping, ours: Mapping, theirs: Mapping, prefer_ours: bool) -> Mapping:
    """Field by field; a field both sides changed differently goes to the preferred side."""
    out: Mapping = {}
    for key in _key_order(base, ours, theirs):
        value = _merge_value(key, base.get(key), ours.get(key), theirs.get(key), prefer_ours)
        if not _empty(value):
            out[key] = value
    return out


def merge_fields(base: Mapping, ours: Mapping, theirs: Mapping) -> Mapping:
    """Merge one object present on both sides (base may be empty: added on both)."""
    prefer_ours = _rank(ours) >= _rank(theirs)
    prefer = ours if prefer_ours else theirs
    out = merge_mapping(base, ours, theirs, prefer_ours)
    if any(k in d for d in (base, ours, theirs) for k in STATUS_GROUP):
        winner = _status_winner(base, ours, theirs, prefer)
        for key in STATUS_GROUP:
            if _empty(winner.get(key)):
                out.pop(key, None)
            else:
                out[key] = winner[key]
        out = {k: out[k] for k in _key_order(base, ours, theirs) if k in out}
    return out  # updated_at: both changed -> the preferred side's, which is the later one


def _identity(obj: Mapping) -> tuple[str, str]:
    return (_stamp(obj.get("created_at")), str(obj.get("created_by") or ""))


def renamed_id(obj_id: str, obj: Mapping) -> str:
    """A new id for the loser of an id collision; derived from content, so every clone agrees."""
    return f"{obj_id}-{hashlib.sha256(canonical(obj).encode()).hexdigest()[:5]}"


def merge_object(base: Mapping | None, ours: Mapping | None, theirs: Mapping | None) -> Merged:
    """Three-way merge of one object; None means the file is absent on that side."""
    if ours is None or theirs is None:
        present = theirs if ours is None else ours
        if present is None:
            return Merged(None)
        if base is not None and present == base:
            return Merged(None)  # deleted on one side, untouched on the other
        return Merged(present)  # added on one side, or edited (an edit beats a deletion)
    if ours == theirs:
        return Merged(ours)
    if base is not None:
        return Merged(merge_fields(base, ours, theirs))
    if _identity(ours) == _identity(theirs):
        return Merged(merge_fields({}, ours, theirs))
    keep, move = sorted((ours, theirs), key=lambda d: (_identity(d), canonical(d)))
    obj_id = str(keep.get("id") or "")
    if not obj_id:
        return Merged(merge_fields({}, ours, theirs))
    new_id = renamed_id(obj_id, move)
    moved = {**move, "id": new_id}
    note = (f"two different objects met under id {obj_id} "
            f"(created {move.get('created_at')} by {move.get('created_by')}): "
            f"that one is now {new_id}")
    return Merged(keep, moved, [note])


# --- files ------------------------------------------------------------------------------


@dataclass
class FileMerge:
    """What one path becomes (None: removed), plus files for renamed objects and notes."""

    data: bytes | None
    extra: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Unmergeable(ConvoyError):
    """A side does not parse: the driver leaves git's conflict, sync keeps a whole side."""


def _class_for(path: str) -> Any:
    from gitconvoy.state import model
    from gitconvoy.state.layout import KINDS

    if path == "convoy.yaml":
        return model.Config
    folder = path.split("/", 1)[0]
    kind = KINDS.get(folder)
    return kind.cls if kind else None


def _parse(raw: bytes | None, path: str) -> Mapping | None:
    from gitconvoy.state.codec import load_yaml

    if raw is None or not raw.strip():
        return None
    data = load_yaml(raw, path)
    if not isinstance(data, dict):
        raise Unmergeable(f"{path}: expected a mapping at the top level")
    return data


def _serialise(path: str, data: Mapping) -> bytes:
    """Through the model class when the kind is known: validated, and in the exact layout a
    command would write, so the next edit of the object does not reorder its lines."""
    from gitconvoy.state.codec import dump_yaml

    cls = _class_for(path)
    if cls is None:
        return dump_yaml(data)
    try:
        return dump_yaml(cls.from_dict(data, path).to_dict())
    except ConvoyError as exc:
        raise Unmergeable(f"the merged {path} would be invalid: {exc.message}") from None


def merge_file(path: str, base: bytes | None, ours: bytes | None,
               theirs: bytes | None) -> FileMerge:
    """Merge one state file's three versions; raises Unmergeable when a side is not YAML."""
    from gitconvoy.state.layout import KINDS, object_path

    if ours == theirs:
        return FileMerge(ours)
    if ours == base:
        return FileMerge(theirs)
    if theirs == base:
        return FileMerge(ours)
    if not path.endswith(".yaml"):
        raise Unmergeable(f"{path}: not a state file, cannot merge field by field")
    try:
        sides = [_parse(raw, path) for raw in (base, ours, theirs)]
    except ConvoyError as exc:
        raise Unmergeable(exc.message) from None
    merged = merge_object(*sides)
    data = None if merged.value is None else _serialise(path, merged.value)
    out = FileMerge(data, notes=merged.notes)
    if merged.renamed is not None:
        folder = path.split("/", 1)[0]
        new_id = str(merged.renamed["id"])
        if folder in KINDS:
            new_path = object_path(folder, new_id)
        else:
            new_path = os.path.join(os.path.dirname(path), f"{new_id}.yaml")
        out.extra[new_path] = _serialise(new_path, merged.renamed)
    return out


def merge_file_or_pick(path: str, base: bytes | None, ours: bytes | None,
                       theirs: bytes | None) -> FileMerge:
    """For sync, which cannot leave conflict markers: an unmergeable file keeps one whole side.

    The side is chosen by content (the larger text), so both clones pick the same one.
    """
    try:
        return merge_file(path, base, ours, theirs)
    except Unmergeable as exc:
        sides = [s for s in (ours, theirs) if s is not None]
        pick = max(sides) if sides else None
        return FileMerge(pick, notes=[f"{exc.message}: kept one side whole"])
