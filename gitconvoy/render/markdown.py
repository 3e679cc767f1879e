"""Markdown for pull requests: a convoy's status (table + mermaid DAG) and a state diff.

GitHub and GitLab draw ```mermaid blocks, so a reviewer sees the plan's graph in the PR
itself. Node ids are generated (`n0`, `n1`, …) because bead ids may hold characters mermaid
reads as syntax, and every label goes through one escaper.
"""

from __future__ import annotations

import re

from gitconvoy.plan import graph, staging
from gitconvoy.plan.waves import WavePlan
from gitconvoy.render.text import inert
from gitconvoy.state.model import Convoy
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.statediff import KIND_ORDER, Event, StateDiff

MARKER = "<!-- gitconvoy:diff -->"
FOLD_AFTER = 30  # a group longer than this is folded into <details>
MAX_EVENTS = 500  # lines listed in one markdown diff; the rest are counted
TITLE_IN_NODE = 40
# mermaid's defaults (maxEdges, maxTextSize), which GitHub and GitLab keep: past them the
# forge shows an error box instead of a graph, so the block is left out with a note.
MERMAID_MAX_EDGES = 500
MERMAID_MAX_TEXT = 50_000

# Fill and stroke per bead status: green done, blue running, red blocked, grey parked.
STATUS_STYLE = {
    "open": "fill:#ffffff,stroke:#6e7781,color:#1f2328",
    "hooked": "fill:#ddf4ff,stroke:#0969da,color:#0a3069",
    "in_progress": "fill:#b6e3ff,stroke:#0969da,color:#0a3069",
    "blocked": "fill:#ffebe9,stroke:#cf222e,color:#82071e",
    "deferred": "fill:#eaeef2,stroke:#8c959f,color:#57606a",
    "closed": "fill:#dafbe1,stroke:#1a7f37,color:#116329",
    "tombstone": "fill:#eaeef2,stroke:#8c959f,color:#8c959f,stroke-dasharray:3 3",
}
OUTSIDE_STYLE = "fill:#fff8c5,stroke:#9a6700,color:#4d2d00,stroke-dasharray:5 5"


def md_text(text: str) -> str:
    """Inline text that markdown shows as written (no HTML, links, emphasis or table breaks)
    and a terminal shows inert (control characters as visible escapes, render.text.inert)."""
    out = inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]|#":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def md_code(text: str) -> str:
    """Inline code showing `text` as written: fenced by more backticks than any run inside
    it (CommonMark), so an id or a file name cannot close the span and inject markup."""
    shown = inert(text)
    longest = max((len(run) for run in re.findall("`+", shown)), default=0)
    if not longest:
        return f"`{shown}`"
    fence = "`" * (longest + 1)
    return f"{fence} {shown} {fence}"


def mermaid_label(text: str) -> str:
    """Text for a quoted mermaid label: entity codes for the characters that end or inject."""
    out = inert(text).replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;")
    return " ".join(out.replace(">", "#gt;").replace("`", "'").split())


def _short(title: str) -> str:
    return title if len(title) <= TITLE_IN_NODE else title[: TITLE_IN_NODE - 1] + "…"


def status_class(status: str) -> str:
    return f"st_{status}"


# --- convoy status ---------------------------------------------------------------------------


def _wave_cell(bead_id: str, snap: Snapshot, waves: WavePlan) -> str:
    bead = snap.beads[bead_id]
    number = waves.wave_of(bead_id)
    if number:
        return str(number)
    if bead_id in waves.gated:
        return "gated"
    if bead.slingable and bead.status in ("closed", "tombstone"):
        return "done"
    return "—"


def mermaid_dag(snap: Snapshot, members: list[str]) -> list[str]:
    """`graph TD` of the members: blocker --> dependent for blocking deps, epic -.-> child for
    parent-child; blockers outside the set appear as dashed nodes."""
    node: dict[str, str] = {}
    outside: list[str] = []
    for bead_id in members:
        node[bead_id] = f"n{len(node)}"
    edges: list[str] = []
    for bead_id in members:
        bead = snap.beads[bead_id]
        if bead.parent in node:
            edges.append(f"  {node[bead.parent]} -.-> {node[bead_id]}")
        for dep in bead.blocking_deps():
            if dep.on not in node:
                node[dep.on] = f"n{len(node)}"
                outside.append(dep.on)
            kind = f"{dep.type}, inferred" if dep.inferred else dep.type
            arrow = "-->" if kind == "blocks" else f"-->|{kind}|"
            edges.append(f"  {node[dep.on]} {arrow} {node[bead_id]}")
    lines = ["graph TD"]
    for bead_id in members:
        bead = snap.beads[bead_id]
        lines.append(f'  {node[bead_id]}["{mermaid_label(f"{bead_id}: {_short(bead.title)}")}"]')
    for bead_id in outside:
        other = snap.beads.get(bead_id)
        what = f"{_short(other.title)} (outside, {other.status})" if other else "missing"
        lines.append(f'  {node[bead_id]}["{mermaid_label(f"{bead_id}: {what}")}"]')
    lines += edges
    by_class: dict[str, list[str]] = {}
    for bead_id in members:
        by_class.setdefault(status_class(snap.beads[bead_id].status), []).append(node[bead_id])
    if outside:
        by_class["outside"] = [node[b] for b in outside]
    for status, style in STATUS_STYLE.items():
        if status_class(status) in by_class:
            lines.append(f"  classDef {status_class(status)} {style}")
    if outside:
        lines.append(f"  classDef outside {OUTSIDE_STYLE}")
    for name, nodes in by_class.items():
        lines.append(f"  class {','.join(nodes)} {name}")
    return lines


def status_markdown(snap: Snapshot, convoy: Convoy, waves: WavePlan,
                    progress: dict[str, int]) -> str:
    """A convoy for a PR comment or an issue: progress, a bead table, the DAG."""
    present = [t for t in convoy.tracks if t in snap.beads]
    members = [b for _, b in staging.member_tree(snap, present, graph.Index(snap.beads))]
    done, total = progress["closed"], progress["total"]
    filled = round(10 * done / total) if total else 0
    bar = "█" * filled + "░" * (10 - filled)
    out = [
        f"### Convoy {md_code(convoy.id)}: {md_text(convoy.title)}",
        "",
        f"**{done}/{total} closed** `{bar}` · {progress['in_flight']} in flight · "
        f"status `{convoy.status}` · {len(waves.waves)} wave(s) left"
        + (f" · {len(waves.gated)} gated" if waves.gated else "")
        + (f" · strategy {md_code(convoy.strategy)}" if convoy.strategy != "blocks" else ""),
        "",
        "| id | title | type | status | assignee | wave |",
        "|---|---|---|---|---|---|",
    ]
    for bead_id in members:
        bead = snap.beads[bead_id]
        out.append(f"| {md_code(bead_id)} | {md_text(bead.title)} | {bead.type} | {bead.status} | "
                   f"{md_text(bead.assignee) if bead.assignee else ''} | "
                   f"{_wave_cell(bead_id, snap, waves)} |")
    dag = mermaid_dag(snap, members)
    edges = sum(1 for line in dag if "-->" in line or "-.->" in line)
    size = sum(len(line) + 1 for line in dag)
    if edges > MERMAID_MAX_EDGES or size > MERMAID_MAX_TEXT:
        out += ["", f"_Graph left out: {len(members)} beads and {edges} edges are more than "
                    f"mermaid draws ({MERMAID_MAX_EDGES} edges, {MERMAID_MAX_TEXT:,} characters); "
                    "stage a sub-epic to see its part._"]
    else:
        out += ["", "```mermaid", *dag, "```"]
    if convoy.warnings:
        out += ["", *[f"- warning: {md_text(w)}" for w in convoy.warnings]]
    return "\n".join(out) + "\n"


# --- state diff ------------------------------------------------------------------------------

HEADINGS = {"config": "Configuration", "rig": "Rigs", "convoy": "Convoys", "bead": "Beads",
            "mr": "Merge requests", "file": "Unreadable files"}


def _summary(diff: StateDiff) -> str:
    counts = diff.counts()
    names = {"bead": "bead", "convoy": "convoy", "mr": "merge request", "rig": "rig",
             "file": "unreadable file", "config": "config file"}
    parts = []
    for kind in (*KIND_ORDER, *sorted(set(counts) - set(KIND_ORDER))):
        if counts.get(kind):
            n = counts[kind]
            name = names.get(kind, kind)
            parts.append(f"{n} {name}{'' if n == 1 else 's'}")
    return ", ".join(parts) + " changed"


def diff_markdown(diff: StateDiff, label: str, limit: int = MAX_EVENTS) -> str:
    """The events grouped by kind under a marker a CI job can find to update its comment.
    A long group folds into <details>; past `limit` lines the rest is counted, not listed,
    so a big import still fits in one PR comment (GitHub takes 65,536 characters)."""
    out = [MARKER, f"### gitconvoy state changes {md_code(label)}", ""]
    if not diff.events:
        out.append("No changes to beads, convoys, rigs or merge requests.")
        return "\n".join(out) + "\n"
    out += [_summary(diff), ""]
    groups: dict[str, list[Event]] = {}
    for event in diff.events:
        groups.setdefault(event.kind, []).append(event)
    left = limit
    for kind, events in groups.items():
        heading = HEADINGS.get(kind, kind.capitalize() + "s")
        shown = events[:max(left, 0)]
        left -= len(shown)
        fold = len(events) > FOLD_AFTER
        out.append(f"<details><summary>{heading} ({len(events)} changes)</summary>\n"
                   if fold else f"**{heading}**")
        out += [f"- {md_code(e.subject)}: {md_text(e.describe())}" for e in shown]
        if len(shown) < len(events):
            out.append(f"- … {len(events) - len(shown)} more: run "
                       f"`git convoy diff {label.split(' ')[0]}` to see them all")
        out += ["\n</details>", ""] if fold else [""]
    return "\n".join(out)
