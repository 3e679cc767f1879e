"""YAML plan -> Outline: the same tree as a PRD, written explicitly (docs/plan.schema.json).

Parsed with a loader that remembers the line of every mapping and key, so a bad field or an
unknown ref names the line to fix, as for a Markdown PRD.
"""

from __future__ import annotations

from typing import Any

import yaml

from gitconvoy.importers.outline import ImportFailure, Node, Outline, Ref, read_yaml, split_refs
from gitconvoy.importers.prd import apply_defaults
from gitconvoy.state.model import BEAD_TYPES

TOP_KEYS = {
    "key", "prefix", "rig", "target", "type", "priority", "labels", "integration",
    "integration_template", "epic",
}
COMMON_KEYS = {
    "title", "id", "slug", "description", "priority", "labels", "rig", "target", "assignee",
    "acceptance", "after", "deps",
}
EPIC_KEYS = COMMON_KEYS | {"integration", "epics", "tasks"}
TASK_KEYS = COMMON_KEYS | {"type", "closed"}

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Map(dict):
    """A mapping that knows the line it started on and the line of each key."""

    line: int = 0
    lines: dict[Any, int]


class _LineLoader(_Base):  # type: ignore[misc,valid-type]
    pass


def _construct_map(loader: Any, node: yaml.MappingNode) -> _Map:
    out = _Map()
    out.line = node.start_mark.line + 1
    out.lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, line: int, problem: str) -> ImportFailure:
        return ImportFailure(self.source, line, problem)

    def check_keys(self, data: Any, allowed: set[str], what: str, line: int) -> _Map:
        if not isinstance(data, _Map):
            raise self.fail(line, f"{what} must be a mapping")
        for key in data:
            if key not in allowed:
                raise self.fail(data.lines[key], f"unknown field {key!r} in {what}: expected "
                                f"one of {', '.join(sorted(allowed))}")
        return data

    def text(self, data: _Map, key: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        line = data.lines.get(key, data.line)
        if value is None:
            if required:
                raise self.fail(data.line, f"{key!r} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(line, f"{key} must be a string")
        value = str(value)
        if required and not value.strip():
            raise self.fail(line, f"empty {key}")
        return value

    def refs(self, data: _Map) -> list[Ref]:
        out: list[Ref] = []
        after = data.get("after")
        line = data.lines.get("after", data.line)
        if isinstance(after, str):
            out += [Ref(r, line) for r in split_refs(after)]
        elif isinstance(after, list):
            for item in after:
                if not isinstance(item, str | int) or isinstance(item, bool):
                    raise self.fail(line, "after must be a list of refs (slugs, titles or ids)")
                out.append(Ref(str(item), line))
        elif after is not None:
            raise self.fail(line, "after must be a ref or a list of refs")
        deps = data.get("deps")
        line = data.lines.get("deps", data.line)
        if deps is not None and not isinstance(deps, list):
            raise self.fail(line, "deps must be a list of {on: <ref>, type: <dep type>}")
        for item in deps or []:
            where = getattr(item, "line", line)
            if isinstance(item, _Map) and True in item:  # YAML 1.1 reads a bare `on:` as true
                item["on"] = item.pop(True)
                item.lines["on"] = item.lines.pop(True)
            self.check_keys(item, {"on", "type"}, "a dep", where)
            out.append(Ref(self.text(item, "on", required=True) or "", where,
                           self.text(item, "type") or "blocks"))
        return out

    def node(self, data: Any, kind: str, line: int) -> Node:
        what = "an epic" if kind == "epic" else "a task"
        data = self.check_keys(data, EPIC_KEYS if kind == "epic" else TASK_KEYS, what, line)
        node = Node(kind, self.text(data, "title", required=True) or "", data.line)
        node.anchor = self.text(data, "id")
        node.slug = self.text(data, "slug") or ""
        node.description = self.text(data, "description")
        node.acceptance = self.text(data, "acceptance")
        for name in ("rig", "target", "assignee"):
            setattr(node, name, self.text(data, name))
        if "priority" in data:
            value = data["priority"]
            if isinstance(value, bool) or value not in (0, 1, 2, 3, 4):
                raise self.fail(data.lines["priority"], f"priority must be 0 (highest) to 4, "
                                f"got {value!r}")
            node.priority = value
        labels = data.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise self.fail(data.lines.get("labels", data.line), "labels must be a list of "
                            "strings")
        node.labels = list(labels)
        node.after = self.refs(data)
        if kind == "task":
            node.type = self.text(data, "type")
            if node.type is not None and node.type not in BEAD_TYPES:
                raise self.fail(data.lines["type"], f"type must be one of "
                                f"{', '.join(BEAD_TYPES)}, got {node.type!r}")
            closed = data.get("closed", False)
            if not isinstance(closed, bool):
                raise self.fail(data.lines["closed"], "closed must be true or false")
            node.closed = closed
            return node
        integration = data.get("integration")
        if integration is not None and not isinstance(integration, bool | str):
            raise self.fail(data.lines["integration"], "integration must be true, false or a "
                            "branch name")
        node.integration = integration
        for key, kind_of in (("tasks", "task"), ("epics", "epic")):
            items = data.get(key) or []
            if not isinstance(items, list):
                raise self.fail(data.lines[key], f"{key} must be a list")
            node.children += [self.node(item, kind_of, getattr(item, "line", data.lines[key]))
                              for item in items]
        return node


def parse_plan(text: str, source: str) -> Outline:
    """The whole YAML plan -> Outline; the first problem is raised with its line."""
    data = read_yaml(text, source, _LineLoader)
    reader = _Reader(source)
    data = reader.check_keys(data, TOP_KEYS, "the plan", 1)
    if "epic" not in data:
        raise reader.fail(1, "the plan needs an 'epic:' mapping (the root epic)")
    root = reader.node(data["epic"], "epic", data.lines["epic"])
    outline = Outline(source=source, root=root)
    apply_defaults(outline, {k: v for k, v in data.items() if k != "epic"}, source, 1)
    return outline
