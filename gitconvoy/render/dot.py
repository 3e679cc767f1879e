"""A convoy or an epic as Graphviz dot: `git convoy graph X --format dot | dot -Tpng`.

Epics are clusters holding their descendants (with a node of their own that their deps
attach to); blocking deps are edges from the blocker to the bead that waits. Node names are
generated (`n0`, `n1`, …) and every label is a quoted, escaped string, so no title can
inject dot syntax; titles are cut at 40 characters and control characters shown as escapes.
"""

from __future__ import annotations

from gitconvoy.plan import graph
from gitconvoy.plan.scope import Scope
from gitconvoy.render.svg import EDGE_STYLE, OUTSIDE_COLOURS, STATUS_COLOURS, headline, visible
from gitconvoy.state.snapshot import Snapshot

TITLE_IN_NODE = 40


def quote(text: str) -> str:
    """A dot double-quoted string; backslashes are doubled so dot's own escapes (\\N, \\G,
    \\l) cannot fire, and line breaks become the escape `\\n`."""
    out = visible(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{out}"'


def _label(*lines: str) -> str:
    return "\\n".join(quote(line)[1:-1] for line in lines)


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_IN_NODE else title[: TITLE_IN_NODE - 1] + "…"


def render_dot(snap: Snapshot, scope: Scope, index: graph.Index | None = None) -> str:
    index = index or graph.Index(snap.beads)
    members = set(scope.members)
    name = {b: f"n{n}" for n, b in enumerate(scope.members)}
    wave_no = {b: n for n, wave in enumerate(scope.waves.waves, 1) for b in wave}
    kids: dict[str | None, list[str]] = {}
    for bead_id in scope.members:
        parent = snap.beads[bead_id].parent
        kids.setdefault(parent if parent in members else None, []).append(bead_id)
    out = [
        "digraph convoy {",
        f'  graph [rankdir=LR, fontname="Helvetica", labelloc=t, fontsize=16, '
        f'label="{_label(f"{scope.kind} {scope.id}: {scope.title}", headline(scope))}"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#57606a"];',
    ]

    def node(bead_id: str, indent: str) -> str:
        bead = snap.beads[bead_id]
        colour = STATUS_COLOURS.get(bead.status, STATUS_COLOURS["open"])
        where = (f"wave {wave_no[bead_id]}" if bead_id in wave_no
                 else "gated" if bead_id in scope.waves.gated else bead.status)
        shape = ', shape=tab' if bead.type == "epic" else ""
        return (f'{indent}{name[bead_id]} [label="{_label(bead_id, _short(bead.title), where)}", '
                f'fillcolor="{colour["fill"]}", color="{colour["stroke"]}", '
                f'fontcolor="{colour.get("color", "#1f2328")}"{shape}];')

    clusters = [0]

    def emit(parent: str | None, indent: str) -> None:
        for bead_id in kids.get(parent, []):
            bead = snap.beads[bead_id]
            if bead.type == "epic":
                colour = STATUS_COLOURS.get(bead.status, STATUS_COLOURS["open"])
                out.append(f"{indent}subgraph cluster_{clusters[0]} {{")
                clusters[0] += 1
                out.append(f'{indent}  label="{_label(f"{bead_id}: {_short(bead.title)}")}"; '
                           f'style="rounded"; color="{colour["stroke"]}";')
                out.append(node(bead_id, indent + "  "))
                emit(bead_id, indent + "  ")
                out.append(f"{indent}}}")
            else:
                out.append(node(bead_id, indent))

    emit(None, "  ")
    outside: dict[str, str] = {}
    for bead_id in scope.members:
        for dep in snap.beads[bead_id].blocking_deps():
            if dep.on not in name and dep.on not in outside:
                outside[dep.on] = f"x{len(outside)}"
                other = snap.beads.get(dep.on)
                what = f"{_short(other.title)}" if other else "missing"
                status = other.status if other else "missing"
                label = _label(dep.on, what, "outside, " + status)
                out.append(f'  {outside[dep.on]} [label="{label}", '
                           f'fillcolor="{OUTSIDE_COLOURS["fill"]}", '
                           f'color="{OUTSIDE_COLOURS["stroke"]}", style="rounded,filled,dashed"];')
            stroke, dash = EDGE_STYLE.get(dep.type, EDGE_STYLE["blocks"])
            style = ', style=dotted' if dep.inferred else ', style=dashed' if dash else ""
            kind = f"{dep.type}, inferred" if dep.inferred else dep.type
            label = "" if kind == "blocks" else f', label="{kind}"'
            out.append(f'  {name.get(dep.on) or outside[dep.on]} -> {name[bead_id]} '
                       f'[color="{stroke}"{style}{label}];')
    out.append("}")
    return "\n".join(out) + "\n"
