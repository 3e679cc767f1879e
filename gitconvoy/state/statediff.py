"""What changed between two state commits, as events a reviewer reads (pure).

The input is the list of changed files, each parsed on both sides (Store.changed_files): a
model object, the SchemaError of a broken file, or None where the file is absent. Nothing
here touches git, so the wording is tested on plain objects. Timestamps and bookkeeping
fields (updated_at, started_at, dispatch attempts, …) are left out: a reviewer asks what
moved, not when the clock ticked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitconvoy.errors import SchemaError
from gitconvoy.state.model import Config, Rig

# Never reported: the clock and bookkeeping. close_reason is told with the status change.
QUIET = frozenset({
    "id", "created_at", "created_by", "updated_at", "started_at", "closed_at", "launched_at",
    "notified", "conflict_since", "import_key", "strategy_fallback_at",
})
# Told in the note of a status change (`open → closed (landed in …)`), not on lines of their own.
TOLD_WITH_STATUS = frozenset({"close_reason", "merged_as", "conflict_bead", "conflict_files",
                              "reason", "decided_by", "fix_bead"})
LONG_TEXT = frozenset({"description", "acceptance", "check_log", "recovery", "report",
                       "diffstat"})
COMMITS = frozenset({"commit", "base_commit", "merged_as", "tip", "base_tip"})
SENTENCES = frozenset({"findings", "warnings"})  # lists of sentences, joined by "; "
LIST_SHOWN = 20  # set changes longer than this are cut in the text (JSON keeps them whole)
KIND_ORDER = ("config", "rig", "convoy", "bead", "mr")


@dataclass(frozen=True)
class Event:
    """One change to one object. `change` is created, removed, deleted, status, field, set
    (elements added/removed), broken or repaired."""

    kind: str
    id: str
    change: str
    field: str | None = None
    before: Any = None
    after: Any = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    note: str | None = None

    @property
    def subject(self) -> str:
        return f"rig {self.id}" if self.kind == "rig" else self.id

    def text(self) -> str:
        return f"{self.subject}: {self.describe()}"

    def describe(self) -> str:
        """The change in words, without the subject."""
        tail = f" ({self.note})" if self.note else ""
        if self.change == "created":
            return f"created {self.note}" if self.note else "created"
        if self.change in ("broken", "repaired", "removed", "deleted"):
            words = {"removed": "file removed", "deleted": "deleted (tombstone)",
                     "broken": "unreadable", "repaired": "readable again"}
            return f"{words.get(self.change, self.change)}{tail}"
        if self.change == "status":
            if self.field == "parked":
                return str(self.after)
            return f"{self.before} → {self.after}{tail}"
        if self.change == "set":
            sep = "; " if self.field in SENTENCES else " "
            parts = [f"+ {_cut(self.added, sep)}"] if self.added else []
            parts += [f"− {_cut(self.removed, sep)}"] if self.removed else []
            return f"{self.field} {' '.join(parts)}"
        if self.field == "dispatch":
            return f"dispatch failed: {self.after}"
        if self.field in LONG_TEXT:
            verb = "set" if self.before is None else "cleared" if self.after is None \
                else "changed"
            return f"{self.field} {verb}"
        return f"{self.field} {_show(self.field, self.before)} → " \
               f"{_show(self.field, self.after)}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "change": self.change, "field": self.field,
                "before": self.before, "after": self.after, "added": list(self.added),
                "removed": list(self.removed), "note": self.note, "text": self.text()}


def _cut(items: tuple[str, ...], sep: str = " ") -> str:
    shown = sep.join(items[:LIST_SHOWN])
    more = len(items) - LIST_SHOWN
    return f"{shown} … (+{more} more)" if more > 0 else shown


def _show(name: str | None, value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if name in COMMITS and isinstance(value, str):
        return value[:7]
    if name == "priority":
        return f"P{value}"
    if name == "title":
        return f'"{value}"'
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _problem(exc: SchemaError) -> str:
    """The error without the path it starts with (the event already names the file)."""
    text = exc.message
    return text[len(exc.path) + 2:] if text.startswith(f"{exc.path}: ") else text


def _kind_of(path: str) -> str:
    folder = path.partition("/")[0]
    return folder[:-1] if folder.endswith("s") else folder


def _object_id(path: str, *sides: Any) -> str:
    for side in sides:
        if side is not None and not isinstance(side, SchemaError) and hasattr(side, "id"):
            return side.id
    base = path.rsplit("/", 1)[-1]
    return base[: -len(".yaml")] if base.endswith(".yaml") else base


# --- objects: beads, convoys, merge requests and any later kind ------------------------------


def _dep_words(obj: Any) -> set[str]:
    return {f"{d.type} {d.on}" for d in getattr(obj, "deps", [])}


def _created(kind: str, obj: Any) -> Event:
    if kind == "bead":
        bits = [obj.type, f"P{obj.priority}"]
        bits += [obj.status] if obj.status != "open" else []
        bits += [f"parent {obj.parent}"] if obj.parent else []
        bits += [f"@{obj.assignee}"] if obj.assignee else []
        bits += [f"rig {obj.rig}"] if obj.rig else []
        note = f'"{obj.title}" ({", ".join(bits)})'
    elif kind == "convoy":
        note = f'convoy "{obj.title}" ({obj.status}, {len(obj.tracks)} beads)'
    elif kind == "mr":
        note = f"for {obj.bead}: {obj.branch} @ {obj.commit[:7]} → {obj.target} ({obj.status})"
    elif kind == "review" and hasattr(obj, "epic"):
        note = f"review of {obj.epic}: {obj.branch} @ {str(obj.tip)[:7]} ({obj.status})"
    else:
        title = getattr(obj, "title", None)
        status = getattr(obj, "status", None)
        note = " ".join(x for x in (f'"{title}"' if title else "",
                                    f"({status})" if status else "") if x)
    return Event(kind, obj.id, "created", note=note or None)


def _status_note(kind: str, obj: Any) -> str | None:
    if kind == "mr":
        if obj.status == "merged" and obj.merged_as:
            return f"merged as {obj.merged_as[:7]}"
        if obj.status == "conflict":
            files = ", ".join(obj.conflict_files)
            bead = f"conflict bead {obj.conflict_bead}" if obj.conflict_bead else ""
            return "; ".join(x for x in (bead, files) if x) or obj.reason
        return obj.reason
    if kind == "review":
        bits = [getattr(obj, "reason", None)]
        bits += [f"by {obj.decided_by}"] if getattr(obj, "decided_by", None) else []
        bits += [f"fix bead {obj.fix_bead}"] if getattr(obj, "fix_bead", None) else []
        return "; ".join(b for b in bits if b) or None
    if obj.status == "closed":
        return getattr(obj, "close_reason", None)
    return None


def _field_events(kind: str, obj_id: str, before: Any, after: Any) -> list[Event]:
    """Field by field, in the order of the object's file."""
    da, db = before.to_dict(), after.to_dict()
    order = list(getattr(type(after), "ORDER", ())) or list(dict.fromkeys([*da, *db]))
    out: list[Event] = []
    status_changed = da.get("status") != db.get("status")
    for name in order:
        va, vb = da.get(name), db.get(name)
        if va == vb or name in QUIET:
            continue
        if name == "status":
            if vb == "tombstone":
                out.append(Event(kind, obj_id, "deleted", before=va, after=vb))
            else:
                out.append(Event(kind, obj_id, "status", "status", va, vb,
                                 note=_status_note(kind, after)))
        elif name in TOLD_WITH_STATUS and status_changed:
            continue
        elif name == "deps":
            wa, wb = _dep_words(before), _dep_words(after)
            out.append(Event(kind, obj_id, "set", "deps", added=tuple(sorted(wb - wa)),
                             removed=tuple(sorted(wa - wb))))
        elif name == "dispatch":
            error = (vb or {}).get("last_error")
            if error and error != (va or {}).get("last_error"):
                out.append(Event(kind, obj_id, "field", "dispatch", None, error))
        elif isinstance(va, list) or isinstance(vb, list):
            sa, sb = {str(x) for x in va or []}, {str(x) for x in vb or []}
            out.append(Event(kind, obj_id, "set", name, added=tuple(sorted(sb - sa)),
                             removed=tuple(sorted(sa - sb))))
        else:
            out.append(Event(kind, obj_id, "field", name, va, vb))
    return [e for e in out if not (e.change == "set" and not e.added and not e.removed)]


def object_events(path: str, before: Any, after: Any) -> list[Event]:
    """The events of one changed file of an object folder (beads/, convoys/, mrs/, …)."""
    kind = _kind_of(path)
    obj_id = _object_id(path, after, before)
    if isinstance(after, SchemaError):
        return [Event("file", path, "broken", note=_problem(after))]
    if after is None:
        if before is None:
            return []
        return [Event(kind, obj_id, "removed")]
    if before is None or isinstance(before, SchemaError):
        first = _created(kind, after) if before is None else Event(kind, obj_id, "repaired")
        empty = type(after)(id=after.id, title=after.title) \
            if kind == "bead" and before is None else None
        extra = _field_events(kind, obj_id, empty, after) if empty is not None else []
        extra = [e for e in extra if e.change == "set"]
        if kind == "convoy":
            extra = [Event(kind, obj_id, "set", "tracks", added=tuple(after.tracks))] \
                if after.tracks and before is None else []
        return [first, *extra]
    return _field_events(kind, obj_id, before, after)


# --- convoy.yaml: the prefix, rigs -----------------------------------------------------------


def _rig_events(name: str, before: Rig | None, after: Rig | None) -> list[Event]:
    if after is None:
        return [Event("rig", name, "removed")]
    if before is None:
        return [Event("rig", name, "created",
                      note=f"(target {after.target}, capacity {after.capacity}"
                      + (", parked)" if after.parked else ")"))]
    out = []
    if before.parked != after.parked:
        out.append(Event("rig", name, "status", "parked",
                         "parked" if before.parked else "unparked",
                         "parked" if after.parked else "unparked"))
    for key in Rig.ORDER:
        if key == "parked":
            continue
        va, vb = getattr(before, key), getattr(after, key)
        if va == vb:
            continue
        if isinstance(va, list):
            out.append(Event("rig", name, "set", key, added=tuple(sorted(set(vb) - set(va))),
                             removed=tuple(sorted(set(va) - set(vb)))))
        else:
            out.append(Event("rig", name, "field", key, va, vb))
    return out


def config_events(before: Any, after: Any) -> list[Event]:
    """Changes to convoy.yaml: prefix, default rig, schema, and each rig."""
    if isinstance(after, SchemaError):
        return [Event("file", "convoy.yaml", "broken", note=_problem(after))]
    if after is None:
        return [Event("config", "convoy.yaml", "removed")] if before is not None else []
    out: list[Event] = []
    if isinstance(before, SchemaError):
        out.append(Event("config", "convoy.yaml", "repaired"))
    base = before if isinstance(before, Config) else Config(prefix=after.prefix)
    for key in ("prefix", "schema", "default_rig"):
        if getattr(base, key) != getattr(after, key):
            out.append(Event("config", "convoy.yaml", "field", key, getattr(base, key),
                             getattr(after, key)))
    for name in sorted(base.rigs.keys() | after.rigs.keys()):
        out += _rig_events(name, base.rigs.get(name), after.rigs.get(name))
    return out


# --- the whole change -------------------------------------------------------------------------


@dataclass
class StateDiff:
    """The events between two state commits, ordered config, rigs, convoys, beads, MRs, then
    any other kind, then broken files; by id within a kind."""

    before: str | None
    after: str
    events: list[Event] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many objects of each kind changed (for a one-line summary)."""
        seen: dict[str, set[str]] = {}
        for e in self.events:
            seen.setdefault(e.kind, set()).add(e.id)
        return {k: len(v) for k, v in seen.items()}

    def to_json(self) -> dict[str, Any]:
        return {"from": self.before, "to": self.after, "counts": self.counts(),
                "events": [e.to_json() for e in self.events]}


def _rank(event: Event) -> tuple[int, str]:
    kind = event.kind
    if kind == "file":
        return (len(KIND_ORDER) + 1, kind)
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), kind)


def diff_files(before: str | None, after: str,
               changes: list[tuple[str, Any, Any]]) -> StateDiff:
    """All events of a list of changed files (path, before, after)."""
    events: list[Event] = []
    for path, old, new in changes:
        if path == "convoy.yaml":
            events += config_events(old, new)
        elif "/" in path and path.endswith(".yaml"):
            events += object_events(path, old, new)
    # stable sort: within one object the file's own field order is kept
    events.sort(key=lambda e: (*_rank(e), e.id))
    return StateDiff(before, after, events)
