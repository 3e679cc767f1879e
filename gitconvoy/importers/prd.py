"""Markdown PRD -> Outline, deterministically (no network, no model). Syntax: docs/import.md.

`#` is the root epic, `##` a sub-epic, `###` and deeper nested sub-epics; list items under a
heading are its tasks; paragraph text is the description. `after:` / `blocked by:` /
`depends on:` markers and a trailing `{#id .type key=value}` block annotate a heading or an
item. Fenced code blocks are text, never structure.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from gitconvoy.importers.outline import ImportFailure, Node, Outline, Ref, read_yaml, split_refs
from gitconvoy.state.model import BEAD_TYPES

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_CHECKBOX = re.compile(r"^\[([ xX])\]\s+")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATTRS = re.compile(r"\{([^{}]*)\}\s*$")
_MARKER = re.compile(r"(?i)(?<![\w-])(after|blocked[ -]by|depends[ -]on)\s*:")
_TRIM = " \t—–-:;,(["

FRONT_MATTER_KEYS = {
    "key", "prefix", "rig", "target", "type", "priority", "labels", "strict", "integration",
    "integration_template",
}


@dataclass
class Label:
    """A heading's or an item's text split into title, anchor, attributes and refs."""

    title: str
    anchor: str | None = None
    classes: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)


def _strip_attrs(text: str, label: Label, source: str, line: int) -> str:
    found = _ATTRS.search(text)
    if not found:
        return text
    for token in found.group(1).split():
        if token.startswith("#") and len(token) > 1:
            label.anchor = token[1:]
        elif token.startswith(".") and len(token) > 1:
            label.classes.append(token[1:])
        elif "=" in token:
            name, _, value = token.partition("=")
            label.attrs[name.strip().lower()] = value.strip()
        else:
            raise ImportFailure(
                source, line,
                f"cannot read {token!r} in {{{found.group(1)}}}: expected #id, .type or key=value",
            )
    return text[: found.start()].rstrip()


def parse_label(text: str, source: str, line: int) -> Label:
    """`Write the CAS (after: parse-config) {#cas .bug priority=1}` -> its parts."""
    label = Label(title="")
    text = _strip_attrs(text.strip(), label, source, line)
    marker = _MARKER.search(text)
    if marker:
        clause = text[marker.start():]
        text = text[: marker.start()]
        pieces = _MARKER.split(clause)
        # split() yields ['', kw, refs, kw, refs, …]
        for raw in pieces[2::2]:
            raw = _strip_attrs(raw.strip(), label, source, line)
            label.refs += [r.strip(" )]`") for r in split_refs(raw) if r.strip(" )]`")]
        if not label.refs:
            raise ImportFailure(source, line, f"'{marker.group(1)}:' names no reference")
    text = _strip_attrs(text.rstrip(_TRIM), label, source, line)
    label.title = text.rstrip(_TRIM).strip()
    return label


def _apply_label(node: Node, label: Label, source: str) -> None:
    """Copy attributes onto the node, rejecting what the schema does not know."""
    node.anchor = label.anchor
    node.after = [Ref(r, node.line) for r in label.refs]
    for cls in label.classes:
        if cls in BEAD_TYPES:
            node.type = cls
        elif cls != "prose":
            raise ImportFailure(source, node.line, f"unknown class .{cls}: expected "
                                f"one of {', '.join('.' + t for t in BEAD_TYPES)} or .prose")
    for name, value in label.attrs.items():
        if name in ("priority", "p"):
            if value not in ("0", "1", "2", "3", "4"):
                raise ImportFailure(source, node.line,
                                    f"priority must be 0 (highest) to 4, got {value!r}")
            node.priority = int(value)
        elif name in ("labels", "label"):
            node.labels += [v for v in value.split(",") if v]
        elif name in ("rig", "target", "assignee"):
            setattr(node, name, value)
        elif name == "integration" and node.kind == "epic":
            node.integration = {"true": True, "false": False, "no": False}.get(value, value)
        else:
            raise ImportFailure(source, node.line, f"unknown attribute {name}=…: expected "
                                "priority, labels, rig, target, assignee or integration")


def _front_matter(lines: list[str], source: str) -> tuple[dict[str, Any], int]:
    """YAML between `---` lines at the very top; returns it and the first body line index."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise ImportFailure(source, 1, "front matter is not closed by a '---' line")
    data = read_yaml("\n".join(lines[1:end]), source, offset=1) or {}
    if not isinstance(data, dict):
        raise ImportFailure(source, 2, "front matter must be a mapping of key: value")
    for key in data:
        if key not in FRONT_MATTER_KEYS:
            at = next((i + 1 for i in range(1, end) if lines[i].startswith(f"{key}:")), 2)
            raise ImportFailure(source, at, f"unknown front matter key {key!r}: expected one "
                                f"of {', '.join(sorted(FRONT_MATTER_KEYS))}")
    return data, end + 1


def apply_defaults(outline: Outline, data: dict[str, Any], source: str, line: int) -> None:
    """Front matter (PRD) or top-level keys (plan): document-wide defaults, checked."""
    for name in ("key", "prefix", "rig", "target", "integration_template"):
        value = data.get(name)
        if value is not None and not isinstance(value, str | int):
            raise ImportFailure(source, line, f"{name} must be a string")
        if value is not None:
            setattr(outline, "doc_key" if name == "key" else name, str(value))
    if "type" in data:
        if data["type"] not in BEAD_TYPES:
            raise ImportFailure(source, line, f"type must be one of {', '.join(BEAD_TYPES)}, "
                                f"got {data['type']!r}")
        outline.type = data["type"]
    if "priority" in data:
        value = data["priority"]
        if isinstance(value, bool) or value not in (0, 1, 2, 3, 4):
            raise ImportFailure(source, line, f"priority must be 0 (highest) to 4, got {value!r}")
        outline.priority = value
    for name in ("strict", "integration"):
        if name in data:
            if not isinstance(data[name], bool):
                raise ImportFailure(source, line, f"{name} must be true or false")
            setattr(outline, name, data[name])
    labels = data.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ImportFailure(source, line, "labels must be a list of strings")
    outline.labels = list(labels)


class _Parser:
    """One pass over the lines; headings open epics, items open tasks, the rest is text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.root: Node | None = None
        self.stack: list[tuple[int, Node]] = []
        self.item: Node | None = None
        self.item_indent = 0
        self.text: dict[int, list[str]] = {}
        self.prose: set[int] = set()
        self.fence: str | None = None
        self.outside: list[Node] = []

    def fail(self, line: int, problem: str) -> ImportFailure:
        return ImportFailure(self.source, line, problem)

    def section(self) -> Node | None:
        return self.stack[-1][1] if self.stack else None

    def add_text(self, line: str) -> None:
        target = self.item or self.section()
        if target is not None:
            self.text.setdefault(id(target), []).append(line)

    def heading(self, level: int, raw: str, lineno: int) -> None:
        label = parse_label(raw, self.source, lineno)
        if not label.title:
            raise self.fail(lineno, "empty heading title")
        node = Node("epic", label.title, lineno)
        _apply_label(node, label, self.source)
        self.item = None
        if level == 1:
            if self.root is not None:
                raise self.fail(lineno, f"a second '#' title ({label.title!r}): a PRD has one "
                                f"root title (line {self.root.line}); use '##' for sections")
            self.root = node
            self.stack = [(1, node)]
            if "prose" in label.classes:
                raise self.fail(lineno, "the root title cannot be .prose")
            return
        if self.root is None:
            raise self.fail(lineno, f"section {label.title!r} comes before the '#' title")
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        parent = self.stack[-1][1]
        parent.children.append(node)
        self.stack.append((level, node))
        if "prose" in label.classes or id(parent) in self.prose:
            self.prose.add(id(node))

    def list_item(self, indent: int, raw: str, lineno: int, line: str) -> None:
        section = self.section()
        if section is None:
            raise self.fail(lineno, "a task comes before the '#' title")
        if id(section) in self.prose:
            self.add_text(line)
            return
        if self.item is not None and indent > self.item_indent:
            self.add_text(line)  # a nested bullet belongs to the task's description
            return
        closed = False
        check = _CHECKBOX.match(raw)
        if check:
            closed = check.group(1) != " "
            raw = raw[check.end():]
        label = parse_label(raw, self.source, lineno)
        if not label.title:
            raise self.fail(lineno, "empty task title")
        node = Node("task", label.title, lineno, closed=closed)
        _apply_label(node, label, self.source)
        if "prose" in label.classes:
            raise self.fail(lineno, ".prose applies to headings, not to tasks")
        if section is self.root:
            self.outside.append(node)
        section.children.append(node)
        self.item = node
        self.item_indent = indent

    def feed(self, lines: list[str], first: int) -> None:
        for offset, line in enumerate(lines):
            lineno = first + offset
            if self.fence is not None:
                self.add_text(line)
                if line.strip().startswith(self.fence):
                    self.fence = None
                continue
            fence = _FENCE.match(line)
            if fence:
                if self.item is not None and not line[:1].isspace():
                    self.item = None
                self.fence = fence.group(1)[0] * 3
                self.add_text(line)
                continue
            heading = _HEADING.match(line)
            if heading:
                self.heading(len(heading.group(1)), heading.group(2), lineno)
                continue
            item = _ITEM.match(line)
            if item:
                self.list_item(len(item.group(1).expandtabs(4)), item.group(2), lineno, line)
                continue
            if line.strip() and self.item is not None and not line[:1].isspace():
                self.item = None  # unindented text ends the list
            if self.root is None and line.strip():
                continue  # text above the title (badges, a comment) is not part of the plan
            self.add_text(line)


def _clean(lines: list[str]) -> str | None:
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.rstrip() or None


def _finish(node: Node, parser: _Parser, level: int) -> None:
    """Descriptions from collected text; prose or empty sections fold into their parent."""
    own = parser.text.get(id(node), [])
    if node.kind == "task":
        node.description = _clean(own)
        return
    folded: list[str] = []
    kept: list[Node] = []
    for child in node.children:
        _finish(child, parser, level + 1)
        is_prose = child.kind == "epic" and (
            id(child) in parser.prose
            or (not child.children and child.anchor is None and not child.after)
        )
        if is_prose:
            folded += ["", f"{'#' * (level + 1)} {child.title}", ""]
            folded += (child.description or "").splitlines()
        else:
            kept.append(child)
    node.children = kept
    node.description = _clean(own + folded)


def parse_prd(text: str, source: str) -> Outline:
    """The whole document -> Outline; the first problem is raised with its line."""
    lines = text.splitlines()
    data, first = _front_matter(lines, source)
    parser = _Parser(source)
    parser.feed(lines[first:], first + 1)
    if parser.root is None:
        raise ImportFailure(source, None, "no '#' title: a PRD starts with '# <root epic title>'")
    outline = Outline(source=source, root=parser.root)
    apply_defaults(outline, data, source, 2)
    if outline.strict and parser.outside:
        node = parser.outside[0]
        raise ImportFailure(source, node.line, f"task {node.title!r} is outside any '##' "
                            "section (strict mode)")
    _finish(parser.root, parser, 1)
    return outline
