"""A beads `issues.jsonl` export -> beads and convoys (pure; mapping rules in docs/import.md).

Ids are kept. Work types import as such, a `convoy` bead becomes a convoy tracking its
`tracks` targets, orchestration records (agents, messages, …) are skipped and counted.
Everything that had to be changed or dropped on the way is counted in the report, so a
migration says exactly what it did.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitconvoy.errors import ConvoyError
from gitconvoy.plan import graph
from gitconvoy.state.model import (
    BEAD_STATUSES,
    BEAD_TYPES,
    MAX_TITLE,
    Bead,
    Convoy,
    Dep,
    validate_id,
)

SKIPPED_TYPES = frozenset({
    "agent", "role", "rig", "slot", "message", "molecule", "gate", "event", "merge-request",
})
KEPT_DEP_TYPES = frozenset({"blocks", "parent-child", "related", "discovered-from", "waits-for"})
KEY_PREFIX = "beads:"
LOCAL_FIELDS = ("rig", "target", "branch", "base_commit", "integration_branch", "dispatch", "mr")


@dataclass
class Report:
    """What a beads import did, in counts; `bad` holds (line, reason) of malformed lines."""

    lines: int = 0
    imported: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    mapped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    bad: list[tuple[int, str]] = field(default_factory=list)
    written: Counter = field(default_factory=Counter)
    cycles: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "imported": dict(sorted(self.imported.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "mapped": dict(sorted(self.mapped.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "bad": [{"line": n, "reason": r} for n, r in self.bad],
            "written": dict(sorted(self.written.items())),
            "cycles": self.cycles,
        }


@dataclass
class _Row:
    line: int
    data: dict[str, Any]


@dataclass
class Export:
    """The parsed file: beads and convoys keyed by id, the line each came from, the report."""

    beads: dict[str, Bead] = field(default_factory=dict)
    convoys: dict[str, Convoy] = field(default_factory=dict)
    line_of: dict[str, int] = field(default_factory=dict)
    report: Report = field(default_factory=Report)


class _Bad(Exception):
    """A malformed line: the reason goes to the report with the line number."""


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _Bad(f"'{key}' is missing or empty")
        return None
    if not isinstance(value, str):
        raise _Bad(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def _read_rows(lines: Iterable[str], report: Report) -> list[_Row]:
    rows: list[_Row] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        report.lines = number
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError as exc:
            report.bad.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(data, dict):
            report.bad.append((number, "expected a JSON object"))
            continue
        try:
            bead_id = _text(data, "id", required=True) or ""
            validate_id(bead_id)
            if bead_id in first_line:
                raise _Bad(f"duplicate id {bead_id!r} (first on line {first_line[bead_id]})")
            title = _text(data, "title", required=True) or ""
            if not title.strip():
                raise _Bad("'title' is empty")
        except _Bad as exc:
            report.bad.append((number, str(exc)))
            continue
        except ConvoyError as exc:
            report.bad.append((number, exc.message))
            continue
        first_line[bead_id] = number
        rows.append(_Row(number, data))
    return rows


def _status(raw: Any, labels: set[str], report: Report) -> str:
    if raw in (None, ""):
        return "open"
    if raw == "pinned":
        labels.add("pinned")
        report.mapped["status pinned → deferred + label pinned"] += 1
        return "deferred"
    if raw in BEAD_STATUSES:
        return str(raw)
    labels.add(f"beads-status:{raw}")
    report.mapped[f"status {raw} → open + label beads-status:{raw}"] += 1
    return "open"


def _description(data: dict[str, Any]) -> str | None:
    parts = [_text(data, "description")]
    for key, heading in (("design", "Design"), ("notes", "Notes")):
        extra = _text(data, key)
        if extra:
            parts.append(f"## {heading}\n\n{extra}")
    text = "\n\n".join(p for p in parts if p)
    return text or None


def _bead(row: _Row, stamp: str, actor: str, report: Report) -> Bead:
    data = row.data
    labels_raw = data.get("labels") or []
    if not isinstance(labels_raw, list) or not all(isinstance(x, str) for x in labels_raw):
        raise _Bad("'labels' must be a list of strings")
    labels = set(labels_raw)
    raw_type = data.get("issue_type") or "task"
    if raw_type in BEAD_TYPES:
        bead_type = raw_type
    else:
        bead_type = "task"
        labels.add(f"beads-type:{raw_type}")
        report.mapped[f"type {raw_type} → task + label beads-type:{raw_type}"] += 1
    priority = 2 if data.get("priority") is None else data["priority"]
    if isinstance(priority, bool) or priority not in (0, 1, 2, 3, 4):
        raise _Bad(f"'priority' must be an integer 0–4, got {priority!r}")
    status = _status(data.get("status"), labels, report)
    title = (_text(data, "title") or "").strip()
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
        report.mapped["title shortened to 500 characters"] += 1
    created_at = _text(data, "created_at") or stamp
    updated_at = _text(data, "updated_at") or created_at
    closed_at = (_text(data, "closed_at") or updated_at) if status == "closed" else None
    return Bead(
        id=data["id"], title=title, type=bead_type, status=status, priority=priority,
        description=_description(data), acceptance=_text(data, "acceptance_criteria"),
        assignee=_text(data, "assignee"), labels=sorted(labels),
        created_at=created_at,
        created_by=_text(data, "created_by") or _text(data, "owner") or actor,
        updated_at=updated_at, closed_at=closed_at,
        close_reason=_text(data, "close_reason") if status == "closed" else None,
        started_at=updated_at if status in ("in_progress", "hooked") else None,
        import_key=f"{KEY_PREFIX}{data['id']}",
    )


def _dep_rows(row: _Row) -> list[tuple[str, str, str]]:
    """(on, type, created_at) of a row's dependencies; a malformed entry is a bad line."""
    deps = row.data.get("dependencies") or []
    if not isinstance(deps, list):
        raise _Bad("'dependencies' must be a list")
    out = []
    for i, dep in enumerate(deps):
        if not isinstance(dep, dict) or not isinstance(dep.get("depends_on_id"), str):
            raise _Bad(f"dependencies[{i}] needs a string depends_on_id")
        dep_type = dep.get("type") or "blocks"
        if not isinstance(dep_type, str):
            raise _Bad(f"dependencies[{i}].type must be a string")
        out.append((dep["depends_on_id"], dep_type, str(dep.get("created_at") or "")))
    return out


def parse_export(lines: Iterable[str], *, stamp: str, actor: str) -> Export:
    """Read every line, map every bead; malformed lines are reported, never fatal here."""
    export = Export()
    report = export.report
    rows = _read_rows(lines, report)
    kinds: dict[str, str] = {}
    deps_of: dict[str, list[tuple[str, str, str]]] = {}
    kept_rows: list[_Row] = []
    for row in rows:
        bead_type = row.data.get("issue_type") or "task"
        try:
            deps_of[row.data["id"]] = _dep_rows(row)
            if bead_type in SKIPPED_TYPES:
                kinds[row.data["id"]] = "skipped"
                report.skipped[bead_type] += 1
                continue
            if bead_type == "convoy":
                export.convoys[row.data["id"]] = _convoy(row, stamp, actor)
                kinds[row.data["id"]] = "convoy"
            else:
                export.beads[row.data["id"]] = _bead(row, stamp, actor, report)
                kinds[row.data["id"]] = "bead"
        except _Bad as exc:
            report.bad.append((row.line, str(exc)))
            continue
        export.line_of[row.data["id"]] = row.line
        kept_rows.append(row)
    for row in kept_rows:
        bead_id = row.data["id"]
        if kinds[bead_id] == "convoy":
            _link_convoy(export, bead_id, deps_of[bead_id], kinds)
        else:
            _link_bead(export, bead_id, row.data, deps_of[bead_id], kinds)
    for bead in export.beads.values():
        report.imported[bead.type] += 1
    if export.convoys:
        report.imported["convoy"] += len(export.convoys)
    report.bad.sort()
    # A tracker without our cycle check may hold deadlocks: import them, but say so.
    report.cycles = sorted(graph.find_cycles(export.beads))
    return export


def _convoy(row: _Row, stamp: str, actor: str) -> Convoy:
    data = row.data
    closed = data.get("status") == "closed"
    created_at = _text(data, "created_at") or stamp
    updated_at = _text(data, "updated_at") or created_at
    return Convoy(
        id=data["id"], title=(_text(data, "title") or "").strip()[:MAX_TITLE],
        status="closed" if closed else "open", source=f"{KEY_PREFIX}{data['id']}",
        created_at=created_at, created_by=_text(data, "created_by") or _text(data, "owner")
        or actor, updated_at=updated_at,
        closed_at=(_text(data, "closed_at") or updated_at) if closed else None,
        close_reason=_text(data, "close_reason") if closed else None,
    )


def _why_dropped(on: str, kinds: Mapping[str, str], self_id: str) -> str | None:
    """Why an edge to `on` cannot be kept, as a noun phrase, or None when it can."""
    if on == self_id:
        return "itself"
    kind = kinds.get(on)
    if kind is None:
        return "an id not in the file"
    if kind == "skipped":
        return "a skipped bead"
    if kind == "convoy":
        return "a convoy"
    return None


def _link_convoy(export: Export, convoy_id: str, deps: list[tuple[str, str, str]],
                 kinds: Mapping[str, str]) -> None:
    report = export.report
    tracks = set()
    for on, dep_type, _ in deps:
        if dep_type != "tracks":
            report.dropped[f"convoy dep of type {dep_type}"] += 1
            continue
        why = _why_dropped(on, kinds, convoy_id)
        if why:
            report.dropped[f"convoy tracks {why}"] += 1
        else:
            tracks.add(on)
    convoy = export.convoys[convoy_id]
    export.convoys[convoy_id] = replace(convoy, tracks=sorted(tracks))


def _link_bead(export: Export, bead_id: str, data: dict[str, Any],
               deps: list[tuple[str, str, str]], kinds: Mapping[str, str]) -> None:
    report = export.report
    parents: list[tuple[str, int, str]] = []
    out: set[Dep] = set()
    has_parent_dep = any(dep_type == "parent-child" for _, dep_type, _ in deps)
    for position, (on, raw_type, created) in enumerate(deps):
        why = _why_dropped(on, kinds, bead_id)
        if why:
            report.dropped[f"dep on {why}"] += 1
            continue
        if raw_type == "parent-child":
            parents.append((created, position, on))
            continue
        if raw_type in KEPT_DEP_TYPES:
            dep_type = raw_type
        elif raw_type == "conditional-blocks":
            dep_type = "blocks"
            report.mapped["dep conditional-blocks → blocks"] += 1
        else:
            dep_type = "related"
            report.mapped[f"dep {raw_type} → related"] += 1
        out.add(Dep(on, dep_type))
    if not has_parent_dep:
        field_parent = data.get("parent")
        if isinstance(field_parent, str) and field_parent:
            why = _why_dropped(field_parent, kinds, bead_id)
            if why:
                report.dropped[f"parent is {why}"] += 1
            else:
                parents.append(("", 0, field_parent))
    parents.sort()
    parent = parents[0][2] if parents else None
    for _, _, other in parents[1:]:
        if other != parent:
            out.add(Dep(other, "related"))
            report.mapped["second parent → related"] += 1
    bead = export.beads[bead_id]
    export.beads[bead_id] = replace(bead, parent=parent, deps=sorted(out))


def merge_into(export: Export, beads: Mapping[str, Bead], convoys: Mapping[str, Convoy],
               ) -> tuple[list[Bead | Convoy], list[tuple[int, str]]]:
    """What to write against the current state, and conflicts (line, reason).

    A bead already imported from beads is updated from the file unless it changed here
    after the export (its updated_at is newer): then it is kept. Fields that only gitconvoy
    knows (rig, branch, dispatch, …) are never overwritten. An id that exists here but was
    not imported from beads is a conflict.
    """
    report = export.report
    writes: list[Bead | Convoy] = []
    conflicts: list[tuple[int, str]] = []
    if len(export.beads) > 200:
        beads = dict(beads)  # one bulk (cached) read beats thousands of single-file reads
    for bead_id, bead in export.beads.items():
        old = beads.get(bead_id)
        if old is None:
            writes.append(bead)
            report.written["created"] += 1
            continue
        if old.import_key != bead.import_key:
            conflicts.append((export.line_of[bead_id], f"bead id {bead_id!r} is already used "
                              "by a bead that was not imported from beads"))
            continue
        if (old.updated_at or "") > (bead.updated_at or ""):
            report.written["kept (changed here since the export)"] += 1
            continue
        new = replace(bead, **{name: getattr(old, name) for name in LOCAL_FIELDS})
        if new.to_dict() == old.to_dict():
            report.written["unchanged"] += 1
        else:
            writes.append(new)
            report.written["updated"] += 1
    for convoy_id, convoy in export.convoys.items():
        old_convoy = convoys.get(convoy_id)
        if old_convoy is None:
            writes.append(convoy)
            report.written["created"] += 1
        elif old_convoy.source != convoy.source:
            conflicts.append((export.line_of[convoy_id], f"convoy id {convoy_id!r} is already "
                              "used by a convoy that was not imported from beads"))
        elif (old_convoy.updated_at or "") > (convoy.updated_at or ""):
            report.written["kept (changed here since the export)"] += 1
        elif old_convoy.to_dict() == convoy.to_dict():
            report.written["unchanged"] += 1
        else:
            writes.append(convoy)
            report.written["updated"] += 1
    return writes, conflicts
