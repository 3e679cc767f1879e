"""The house rules, checked on the source: layers import only downwards, and no module takes
part in an import cycle (docs/architecture.md). Imports inside functions count too: a lazy
import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gitconvoy"

# Lowest first. A module may import from a lower layer, and from its own folder; two folders
# on one layer never import each other.
LAYERS: list[tuple[str, ...]] = [
    ("gitconvoy", "errors", "faults", "procs", "progress"),
    ("state",),
    ("plan", "git"),
    ("flow", "land", "importers", "render"),
    ("cycle",),
    ("hookrun", "lander"),
    ("commands", "demo"),
    ("cli",),
    ("manpage", "__main__"),
]
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def room(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            a, b = room(src), room(dst)
            if a == b:
                continue
            if a not in RANK or b not in RANK:
                bad.append(f"{src} -> {dst}: {a if a not in RANK else b} is in no layer")
            elif RANK[b] >= RANK[a]:
                bad.append(f"{src} -> {dst}: {a} (layer {RANK[a]}) may not import "
                           f"{b} (layer {RANK[b]})")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_higher_layer():
    assert upward_imports(graph()) == []


def test_no_import_cycle_anywhere_in_the_package():
    assert cycles(graph()) == []


def test_every_layer_folder_says_what_lives_there_and_what_it_may_import():
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "import" in doc and len(doc) > 120, f"{folder.name}/__init__.py"


@pytest.mark.parametrize("edges, expected", [
    ({"gitconvoy.state.store": {"gitconvoy.flow.feeder"}, "gitconvoy.flow.feeder": set()},
     ["gitconvoy.state.store -> gitconvoy.flow.feeder: state (layer 1) may not import "
      "flow (layer 3)"]),
    ({"gitconvoy.flow.feeder": {"gitconvoy.land.review"}, "gitconvoy.land.review": set()},
     ["gitconvoy.flow.feeder -> gitconvoy.land.review: flow (layer 3) may not import "
      "land (layer 3)"]),
])
def test_the_checker_names_an_upward_import(edges, expected):
    assert upward_imports(edges) == expected


def test_the_checker_finds_a_loop_of_four():
    loop = ["flow.feeder", "land.review", "land.integration", "land.refinery"]
    pairs = zip(loop, loop[1:] + loop[:1], strict=True)
    edges = {f"gitconvoy.{a}": {f"gitconvoy.{b}"} for a, b in pairs}
    assert cycles(edges) == [sorted(edges)]
