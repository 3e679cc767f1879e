"""Outline + current beads -> the beads an import writes (pure: no store, no git).

Every bead made from a document records `import_key = <doc key>#<slug path>`; a later import
of the same document finds its beads by that key and updates them instead of creating
duplicates. Ids: epics get `<prefix>-<hash>` (or the anchor / id the document gives), tasks
`<parent>.<n>`. Validation runs here, before anything is written: duplicate slugs and
anchors, unknown or ambiguous refs, self-deps, cycles (with the path), bad branch names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitconvoy.errors import ConvoyError
from gitconvoy.importers.outline import ImportFailure, Node, Outline, Ref, slugify
from gitconvoy.plan import graph
from gitconvoy.plan.targets import NO_INTEGRATION
from gitconvoy.state import ids
from gitconvoy.state.model import BEAD_TYPES, DEP_TYPES, MAX_TITLE, Bead, Dep, validate_id
from gitconvoy.state.refnames import branch_problem


@dataclass
class Planned:
    """One node of the document and the bead it becomes."""

    node: Node
    depth: int
    bead: Bead
    action: str  # create | update | same | deleted
    parent_key: str | None = None


@dataclass
class BuildResult:
    doc_key: str
    items: list[Planned] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

    @property
    def root(self) -> Planned:
        return self.items[0]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "same": 0, "deleted": 0}
        for item in self.items:
            out[item.action] += 1
        return out

    def changed(self) -> list[Bead]:
        return [p.bead for p in self.items if p.action in ("create", "update")]


def _display(node: Node) -> str:
    return f"{node.key or node.slug} (line {node.line})"


def _assign_keys(outline: Outline) -> list[tuple[Node, int, Node | None]]:
    """Slug paths, checked: siblings need distinct slugs, anchors must be unique."""
    src = outline.source
    flat: list[tuple[Node, int, Node | None]] = []
    anchors: dict[str, Node] = {}

    def visit(node: Node, depth: int, parent: Node | None) -> None:
        if not node.title.strip():
            raise ImportFailure(src, node.line, "empty title")
        if len(node.title) > MAX_TITLE:
            raise ImportFailure(src, node.line, f"title longer than {MAX_TITLE} characters")
        if node.anchor:
            if node.anchor in anchors:
                raise ImportFailure(src, node.line, f"duplicate id {node.anchor!r} (also on "
                                    f"line {anchors[node.anchor].line})")
            anchors[node.anchor] = node
        flat.append((node, depth, parent))
        seen: dict[str, Node] = {}
        for child in node.children:
            if not child.slug:
                child.slug = child.anchor or slugify(child.title) or f"line-{child.line}"
            if child.slug in seen:
                raise ImportFailure(src, child.line, f"duplicate slug {child.slug!r} under "
                                    f"{node.title!r} (also line {seen[child.slug].line}): give "
                                    "one of them a {#custom-id} or another title")
            seen[child.slug] = child
            child.key = f"{node.key}/{child.slug}" if node.key else child.slug
            visit(child, depth + 1, node)

    outline.root.slug = outline.root.slug or outline.root.anchor or slugify(
        outline.root.title) or "root"
    outline.root.key = ""
    visit(outline.root, 0, None)
    return flat


class _Resolver:
    """Refs by anchor, slug path, slug, title (case-insensitive), then existing bead id."""

    def __init__(self, flat: list[tuple[Node, int, Node | None]], ids_of: dict[int, str],
                 existing: Mapping[str, Bead], source: str) -> None:
        self.ids_of = ids_of
        self.existing = existing
        self.source = source
        self.by: list[dict[str, list[Node]]] = [{}, {}, {}, {}]
        for node, _, _ in flat:
            keys = (node.anchor, node.key or None, node.slug, node.title.casefold())
            for table, key in zip(self.by, keys, strict=True):
                if key:
                    table.setdefault(key, []).append(node)

    def resolve(self, ref: Ref, owner: Node) -> str:
        text = ref.text.strip()
        for table, key in zip(self.by, (text, text.strip("/"), text, text.casefold()),
                              strict=True):
            found = table.get(key)
            if not found:
                continue
            if len(found) > 1:
                lines = ", ".join(str(n.line) for n in found)
                raise ImportFailure(self.source, ref.line, f"ambiguous ref {text!r} in "
                                    f"{owner.title!r}: it matches lines {lines}; use the slug "
                                    "path (section/task) or a {#custom-id}")
            return self.ids_of[id(found[0])]
        bead = self.existing.get(text)
        if bead is not None and bead.status != "tombstone":
            return bead.id
        raise ImportFailure(self.source, ref.line, f"unknown ref {text!r} in {owner.title!r}: "
                            "expected a slug, a title or a {#custom-id} of this document, or "
                            "an existing bead id")


def _existing_by_key(existing: Mapping[str, Bead], doc_key: str) -> dict[str, Bead]:
    prefix = f"{doc_key}#"
    found: dict[str, Bead] = {}
    for bead in existing.values():
        key = bead.import_key
        if key and key.startswith(prefix):
            old = found.get(key)
            if old is None or (bead.created_at or "", bead.id) < (old.created_at or "", old.id):
                found[key] = bead
    return found


def _assign_ids(outline: Outline, flat: list[tuple[Node, int, Node | None]],
                matched: dict[int, Bead], existing: Mapping[str, Bead],
                prefix: str) -> dict[int, str]:
    taken: set[str] = set(existing)
    ids_of: dict[int, str] = {}
    for bead in matched.values():
        taken.add(bead.id)
    counters: dict[str, int] = {}
    for node, _, parent in flat:
        if id(node) in matched:
            ids_of[id(node)] = matched[id(node)].id
            continue
        if node.anchor:
            try:
                bead_id = validate_id(node.anchor, "id")
            except ConvoyError as exc:
                raise ImportFailure(outline.source, node.line, exc.message) from None
            if bead_id in taken:
                raise ImportFailure(outline.source, node.line, f"id {bead_id!r} is already used "
                                    "by a bead that this document did not create")
        elif node.kind == "epic" or parent is None:
            # salted by the node's place in the document, not at random: a dry run shows
            # the ids the import will create, and two clones importing one document agree
            bead_id = ids.new_id(prefix, node.title, taken, len(taken) + 1,
                                 salt=f"{outline.doc_key or outline.source}#{node.key}")
        else:
            parent_id = ids_of[id(parent)]
            n = counters.get(parent_id, 0) + 1
            while f"{parent_id}.{n}" in taken:
                n += 1
            counters[parent_id] = n
            bead_id = f"{parent_id}.{n}"
        taken.add(bead_id)
        ids_of[id(node)] = bead_id
    return ids_of


def _comparable(bead: Bead) -> dict[str, Any]:
    data = bead.to_dict()
    data.pop("updated_at", None)
    return data


def build_import(outline: Outline, existing: Mapping[str, Bead], *, prefix: str, actor: str,
                 stamp: str) -> BuildResult:
    """Plan every bead of the document against the current state; raise on the first problem."""
    src = outline.source
    doc_key = outline.doc_key or src
    try:
        validate_id(f"{prefix}-x", "prefix")
    except ConvoyError:
        raise ImportFailure(src, None, f"prefix {prefix!r} is not valid: use letters, digits, "
                            "'-', '.' and '_'") from None
    flat = _assign_keys(outline)
    by_key = _existing_by_key(existing, doc_key)
    matched = {id(n): by_key[f"{doc_key}#{n.key}"] for n, _, _ in flat
               if f"{doc_key}#{n.key}" in by_key}
    ids_of = _assign_ids(outline, flat, matched, existing, prefix)
    resolver = _Resolver(flat, ids_of, existing, src)
    doc_ids = set(ids_of.values())
    result = BuildResult(doc_key=doc_key)
    deleted: set[int] = set()
    inherited: dict[int, dict[str, object]] = {}

    for node, depth, parent in flat:
        bead_id = ids_of[id(node)]
        old = matched.get(id(node))
        base = inherited.get(id(parent), {}) if parent is not None else {}
        mine = {k: getattr(node, k) for k in ("priority", "rig", "target")
                if getattr(node, k) is not None}
        inherited[id(node)] = {**base, **mine}
        settings = {"priority": outline.priority, "rig": outline.rig, "target": outline.target,
                    **inherited[id(node)]}
        if (old is not None and old.status == "tombstone") or id(parent) in deleted:
            deleted.add(id(node))
            gone = old or Bead(id=bead_id, title=node.title, status="tombstone")
            result.items.append(Planned(node, depth, gone, "deleted",
                                        parent.key if parent else None))
            continue
        bead_type = _type_of(node, outline)
        deps = set()
        for ref in node.after:
            if ref.type not in DEP_TYPES or ref.type == "parent-child":
                raise ImportFailure(src, ref.line, f"dep type {ref.type!r} is not one of "
                                    f"{', '.join(t for t in DEP_TYPES if t != 'parent-child')}")
            on = resolver.resolve(ref, node)
            if on == bead_id:
                raise ImportFailure(src, ref.line, f"{node.title!r} cannot depend on itself")
            deps.add(Dep(on, ref.type))
        integration = _integration(node, bead_id, parent, outline)
        labels = sorted(set(outline.labels) | set(node.labels))
        if integration is None and node.kind == "epic" and parent is not None:
            labels = sorted({*labels, NO_INTEGRATION})  # a choice, not an oversight: no warning
        parent_id = ids_of[id(parent)] if parent is not None else None
        if old is None:
            closed = node.closed and bead_type != "epic"
            bead = Bead(
                id=bead_id, title=node.title.strip(), type=bead_type,
                status="closed" if closed else "open", priority=int(settings["priority"]),
                description=node.description, acceptance=node.acceptance,
                assignee=node.assignee, labels=labels, parent=parent_id, deps=sorted(deps),
                rig=settings["rig"], target=settings["target"],
                integration_branch=integration, created_at=stamp, created_by=actor,
                updated_at=stamp, closed_at=stamp if closed else None,
                close_reason=f"checked in {src}" if closed else None,
                import_key=f"{doc_key}#{node.key}",
            )
            action = "create"
        else:
            kept = {d for d in old.deps if d.on not in doc_ids}
            bead = replace(
                old, title=node.title.strip(), type=bead_type,
                priority=int(settings["priority"]), description=node.description,
                acceptance=node.acceptance if node.acceptance is not None else old.acceptance,
                assignee=node.assignee if node.assignee is not None else old.assignee,
                labels=sorted(set(old.labels) | set(labels)), parent=parent_id,
                deps=sorted(kept | deps),
                rig=settings["rig"] if settings["rig"] is not None else old.rig,
                target=settings["target"] if settings["target"] is not None else old.target,
                integration_branch=old.integration_branch or integration,
            )
            action = "same" if _comparable(bead) == _comparable(old) else "update"
            if action == "update":
                bead = replace(bead, updated_at=stamp)
        result.items.append(Planned(node, depth, bead, action, parent.key if parent else None))

    live = {p.bead.id for p in result.items}
    result.stale = sorted(b.id for b in by_key.values()
                          if b.id not in live and b.status != "tombstone")
    _refuse_cycles(result, existing, src)
    return result


def _type_of(node: Node, outline: Outline) -> str:
    if node.kind == "epic":
        if node.type not in (None, "epic"):
            raise ImportFailure(outline.source, node.line, f"{node.title!r} has tasks, so it is "
                                f"an epic; type {node.type!r} applies to tasks only")
        return "epic"
    bead_type = node.type or outline.type
    if bead_type not in BEAD_TYPES:
        raise ImportFailure(outline.source, node.line, f"type must be one of "
                            f"{', '.join(BEAD_TYPES)}, got {bead_type!r}")
    return bead_type


def _integration(node: Node, bead_id: str, parent: Node | None, outline: Outline) -> str | None:
    """Every sub-epic plans one by default (stage warns about a sub-epic without one);
    `integration: false` in the front matter or on the epic opts out, a string names it."""
    if parent is None and (isinstance(node.integration, str) or node.integration is True):
        raise ImportFailure(outline.source, node.line, "the root epic lands on its target: an "
                            "integration branch is for sub-epics")
    if node.kind != "epic" or parent is None:
        return None
    wanted = node.integration
    if wanted is None:
        wanted = outline.integration
    if wanted is False:
        return None
    if isinstance(wanted, str):
        name = wanted
    else:
        try:
            name = outline.integration_template.format(id=bead_id, slug=node.slug)
        except (KeyError, IndexError, ValueError):
            raise ImportFailure(outline.source, None, "integration_template may use only "
                                "{id} and {slug}") from None
    problem = branch_problem(name)
    if problem:
        raise ImportFailure(outline.source, node.line,
                            f"integration branch {name!r} is not a valid branch name: it "
                            f"{problem}")
    return name


def _refuse_cycles(result: BuildResult, existing: Mapping[str, Bead], source: str) -> None:
    merged = dict(existing)
    for item in result.items:
        if item.action != "deleted":
            merged[item.bead.id] = item.bead
    mine = {p.bead.id: p.node for p in result.items}
    index = graph.Index(merged)
    for cycle in graph.find_cycles(merged, index):
        if not any(bead_id in mine for bead_id in cycle):
            continue
        ring = cycle[:-1]  # start at the earliest line, so the message is stable
        start = min(range(len(ring)), key=lambda i: mine[ring[i]].line if ring[i] in mine
                    else 1 << 30)
        ring = ring[start:] + ring[:start] + [ring[start]]
        names = [_display(mine[b]) if b in mine else b for b in ring]
        first = mine[ring[0]]
        raise ImportFailure(source, first.line, f"dependency cycle: {' → '.join(names)}")
