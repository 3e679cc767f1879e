"""Text views for people: one line per bead, aligned and short."""

from __future__ import annotations

from gitconvoy.state.model import Bead


def bead_line(bead: Bead) -> str:
    extra = []
    if bead.assignee:
        extra.append(f"@{bead.assignee}")
    if bead.labels:
        extra.append(" ".join(f"#{label}" for label in bead.labels))
    tail = f"  {' '.join(extra)}" if extra else ""
    return f"{bead.id:<12} P{bead.priority} {bead.type:<8} {bead.status:<11} {bead.title}{tail}"


def bead_detail(bead: Bead) -> list[str]:
    lines = [f"{bead.id}: {bead.title}"]
    rows = [
        ("type", bead.type), ("status", bead.status), ("priority", f"P{bead.priority}"),
        ("assignee", bead.assignee), ("labels", ", ".join(bead.labels) or None),
        ("parent", bead.parent), ("rig", bead.rig), ("branch", bead.branch),
        ("target", bead.target), ("created", f"{bead.created_at} by {bead.created_by}"),
        ("updated", bead.updated_at), ("started", bead.started_at), ("closed", bead.closed_at),
        ("reason", bead.close_reason),
    ]
    lines += [f"  {name:<9} {value}" for name, value in rows if value]
    for dep in bead.deps:
        lines.append(f"  depends   {dep.on} ({dep.type})")
    for name, text in (("description", bead.description), ("acceptance", bead.acceptance)):
        if text:
            lines.append(f"  {name}:")
            lines += [f"    {line}" for line in text.splitlines()]
    return lines
