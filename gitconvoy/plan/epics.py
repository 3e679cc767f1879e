"""Epic status roll-up (pure): open → in_progress → closed, from the children.

An epic is in progress once any descendant is hooked, in progress or closed, and closed once
all its children are closed — unless it has an integration branch, which must land first
(`integration land` closes it).
"""

from __future__ import annotations

from collections.abc import Iterable

from gitconvoy.plan.graph import Beads, Index
from gitconvoy.state.model import DONE_STATUSES, Bead

STARTED = frozenset({"hooked", "in_progress", "closed"})


def rolled_up_status(beads: Beads, index: Index, epic_id: str,
                     memo: dict[str, str] | None = None) -> str:
    """The status an epic should have given its children (children epics rolled up first)."""
    memo = {} if memo is None else memo
    if epic_id in memo:
        return memo[epic_id]
    epic = beads[epic_id]
    memo[epic_id] = epic.status  # guards a parent loop
    children = [beads[c] for c in index.children.get(epic_id, ()) if c in beads]
    children = [c for c in children if c.status != "tombstone"]
    statuses = [
        rolled_up_status(beads, index, c.id, memo) if c.type == "epic" else c.status
        for c in children
    ]
    current = epic.status
    if current in ("deferred", "blocked", "tombstone") or not statuses:
        result = current
    elif all(s in DONE_STATUSES for s in statuses):
        result = "in_progress" if epic.integration_branch else "closed"
    elif any(s in STARTED for s in statuses):
        result = "in_progress"
    else:
        result = "open" if current in ("open", "in_progress") else current
    if current == "closed":
        result = "closed"  # a closed epic is reopened by hand, not by the roll-up
    memo[epic_id] = result
    return result


def epic_changes(beads: Beads, index: Index | None = None,
                 below: Iterable[str] | None = None) -> dict[str, str]:
    """Epics whose stored status differs from the rolled-up one: {epic id: new status}.
    Every epic, or only the epics above the beads `below` (those whose children changed)."""
    index = index or Index(beads)
    beads = index.beads  # a plain dict: the lookups below stay C-level
    if below is None:
        candidates: Iterable[Bead] = beads.values()
    else:
        ids = {a for b in below for a in [b, *index.ancestors(b)]}
        candidates = [beads[i] for i in sorted(ids) if i in beads]
    memo: dict[str, str] = {}
    changes = {}
    for bead in candidates:
        if bead.type != "epic" or bead.status == "tombstone":
            continue
        new = rolled_up_status(beads, index, bead.id, memo)
        if new != bead.status:
            changes[bead.id] = new
    return changes
