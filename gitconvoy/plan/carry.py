"""What a bead's base must contain before it is dispatched (pure).

Ordering in time is not enough: a task that waited for a blocker must also start from code
that has the blocker's work. A closed blocker records the commit its work landed as
(`dispatch.landed_as`, written by whoever closed it on a landing; for older states the
merged MR's `merged_as`). The bead's requirements are the landings of its own closed
blockers and of every ancestor's; a closed epic that recorded no landing of its own (no
integration branch) stands for the landings of its descendants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gitconvoy.plan.graph import Index
from gitconvoy.state.model import Bead, MergeRequest

_SHA = re.compile(r"^[0-9a-f]{40}$")


def landing_of(bead: Bead, mrs: Mapping[str, MergeRequest]) -> str | None:
    """The commit the bead's work landed as, if one is known."""
    sha = bead.dispatch.get("landed_as")
    if isinstance(sha, str) and _SHA.match(sha):
        return sha
    merged = [m for m in mrs.values() if m.bead == bead.id and m.status == "merged"
              and m.merged_as and _SHA.match(m.merged_as)]
    if not merged:
        return None
    return max(merged, key=lambda m: (m.closed_at or "", m.id)).merged_as


def required(index: Index, bead: Bead, mrs: Mapping[str, MergeRequest]
             ) -> list[tuple[str, str]]:
    """(blocker, commit) pairs the bead's base must contain, in a stable order."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    holders = [bead, *(index.beads[a] for a in index.ancestors(bead.id) if a in index.beads)]
    for holder in holders:
        for dep in holder.deps:
            if not dep.blocking:
                continue
            blocker = index.beads.get(dep.on)
            if blocker is None or blocker.status != "closed":
                continue
            for landed in _landed_under(index, blocker, mrs):
                if landed not in seen:
                    seen.add(landed)
                    out.append(landed)
    return out


def _landed_under(index: Index, blocker: Bead, mrs: Mapping[str, MergeRequest]
                  ) -> list[tuple[str, str]]:
    own = landing_of(blocker, mrs)
    if own is not None or blocker.type != "epic":
        return [(blocker.id, own)] if own else []
    out = []
    for child_id in sorted(index.descendants(blocker.id)):
        child = index.beads.get(child_id)
        sha = landing_of(child, mrs) if child is not None and child.status == "closed" else None
        if sha:
            out.append((child_id, sha))
    return out
