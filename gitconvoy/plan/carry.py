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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


# --- plans that can never finish ------------------------------------------------------------


@dataclass
class Stuck:
    """A task that can never start: `blocker`'s work reaches the task's base only when
    `epic` lands, and that epic cannot land first."""

    bead: str
    blocker: str
    epic: str


def never_start(index: Index, members: Iterable[str]) -> list[Stuck]:
    """Tasks of the plan that can never be dispatched under the carry rule, found by playing
    the plan to its end (pure): a task starts once every blocker's work is on its base — its
    integration branch or a branch that branch is brought up to date from — and an epic with
    an integration branch lands (its work moving up to its own base) once all its
    descendants are done. Work that sits on a sibling epic's branch arrives only when that
    epic lands; two epics that each wait for the other's work never finish (a cycle no
    dependency list shows: every dep points at an earlier task)."""
    beads = index.beads
    if not any(b.type == "epic" and b.integration_branch and not b.done
               for b in beads.values()):
        return []  # without integration branches all work lands on the targets at once
    plan = [b for b in members if b in beads]
    home: dict[str, str | None] = {}

    def home_of(bead_id: str) -> str | None:
        if bead_id not in home:
            home[bead_id] = next((a for a in index.ancestors(bead_id) if a in beads
                                  and beads[a].type == "epic"
                                  and beads[a].integration_branch), None)
        return home[bead_id]

    landed = {b for b, bead in beads.items() if bead.done}  # epics: landed; tasks: done

    def where(bead_id: str) -> str | None:
        """Where the bead's work sits now: the first branch up its chain not yet landed."""
        at = home_of(bead_id)
        while at is not None and at in landed:
            at = home_of(at)
        return at

    def chain(bead_id: str) -> set[str | None]:
        out: set[str | None] = {None}
        at = home_of(bead_id)
        while at is not None:
            out.add(at)
            at = home_of(at)
        return out

    known: dict[str, list[str]] = {}

    def blockers(bead_id: str) -> list[str]:
        if bead_id not in known:
            holders = [bead_id, *(a for a in index.ancestors(bead_id) if a in beads)]
            known[bead_id] = [d.on for h in holders for d in beads[h].deps
                              if d.blocking and d.on in beads]
        return known[bead_id]

    def waiting_on(bead_id: str) -> tuple[str, str | None] | None:
        """The first blocker whose work is not on this bead's base yet, and where it sits."""
        reach = chain(bead_id)
        for blocker in blockers(bead_id):
            if blocker not in landed:
                return blocker, None
            at = where(blocker)
            if at not in reach:
                return blocker, at
        return None

    tasks = [b for b in plan if beads[b].slingable and b not in landed]
    epics = [b for b in plan if beads[b].type == "epic" and b not in landed]
    below = {e: [d for d in index.descendants(e) if d in beads] for e in epics}
    moved = True
    left = list(tasks)
    while moved:
        moved = False
        still = []
        for task in left:
            if waiting_on(task) is None:
                landed.add(task)
                moved = True
            else:
                still.append(task)
        left = still
        for epic in epics:
            if epic not in landed and all(d in landed for d in below[epic]) and \
                    waiting_on(epic) is None:
                landed.add(epic)
                moved = True
    out = []
    for task in tasks:
        if task in landed:
            continue
        found = waiting_on(task)
        if found is not None and found[1] is not None:
            out.append(Stuck(task, found[0], found[1]))
    return out
