"""The neutral shape every design importer produces: a tree of epics and tasks with refs.

The Markdown PRD parser and the YAML plan parser both emit an `Outline`; one pure builder
(`build.py`) turns it into beads. Every node keeps the line it came from, so a problem found
late (an unknown ref, a cycle) still names the line the user has to fix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitconvoy.errors import ConvoyError

SLUG_MAX = 48
DEFAULT_INTEGRATION_TEMPLATE = "integration/{id}-{slug}"


class ImportFailure(ConvoyError):
    """A design document that cannot be imported: names the file, the line and the problem."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by '-': stable, readable, usable in a branch name."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0] or slug[:SLUG_MAX]
    return slug


@dataclass(frozen=True)
class Ref:
    """`after: <text>` written at `line`: a slug, a title, an anchor or an existing bead id."""

    text: str
    line: int
    type: str = "blocks"


@dataclass
class Node:
    """An epic (a heading or an `epics:` entry) or a task (a list item or a `tasks:` entry)."""

    kind: str  # "epic" | "task"
    title: str
    line: int
    slug: str = ""
    anchor: str | None = None
    description: str | None = None
    type: str | None = None
    priority: int | None = None
    labels: list[str] = field(default_factory=list)
    rig: str | None = None
    target: str | None = None
    assignee: str | None = None
    acceptance: str | None = None
    closed: bool = False
    after: list[Ref] = field(default_factory=list)
    integration: bool | str | None = None
    children: list[Node] = field(default_factory=list)
    key: str = ""

    def walk(self, depth: int = 0) -> Iterator[tuple[Node, int]]:
        yield self, depth
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass
class Outline:
    """A parsed design: the root epic plus the document-wide defaults."""

    source: str
    root: Node
    doc_key: str | None = None
    prefix: str | None = None
    rig: str | None = None
    target: str | None = None
    type: str = "task"
    priority: int = 2
    labels: list[str] = field(default_factory=list)
    strict: bool = False
    integration: bool = True
    integration_template: str = DEFAULT_INTEGRATION_TEMPLATE

    def nodes(self) -> Iterator[tuple[Node, int]]:
        return self.root.walk()


def read_yaml(text: str, source: str, loader: Any = None, offset: int = 0) -> Any:
    """safe YAML with anchors and aliases refused; problems as `source:line: what`.

    `offset` is the line the text starts after (front matter sits below a `---` line).
    """
    loader = loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        if "&" in text or "*" in text:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    raise ImportFailure(source, event.start_mark.line + 1 + offset,
                                        "YAML anchors and aliases are not allowed")
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ImportFailure(source, mark.line + 1 + offset if mark else None,
                            f"not valid YAML ({problem})") from None


def split_refs(text: str) -> list[str]:
    """`a, b; c` -> [a, b, c]: commas and semicolons separate refs (titles may hold 'and')."""
    return [part.strip() for part in re.split(r"[,;]", text) if part.strip()]
