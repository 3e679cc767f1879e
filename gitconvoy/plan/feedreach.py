"""The beads one feeder step can read (pure): what the hook's partial view must hold.

A step acts only on *roots*: beads in flight (an epic in progress by roll-up alone aside:
`idle_epic`), beads not done with a work or integration branch, and the members of open
convoys. To decide about a root it reads the beads named by its deps and by its ancestors'
deps (readiness, the carry rule), and whole trees: the epic roll-up reads every child of an
epic, the carry rule every descendant of an epic blocker, readiness and targets every
ancestor. So a view holds whole *trees* — the weakly connected components of the parent
links, tombstones included; a parent id that names no bead ends a tree, the way
graph.Index.ancestors stops there — namely the trees of the roots and of the beads their
deps name, plus any tree with an epic whose stored status is not its rolled-up one (the
roll-up would write it). A tree left out then holds nothing a step reads or writes.

`get` and `children` are how a caller reads: from a whole state, or one file at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from gitconvoy.plan import epics, graph
from gitconvoy.state.model import IN_FLIGHT, Bead, Convoy

Get = Callable[[str], Bead | None]
Children = Callable[[str], Iterable[str]]


def idle_epic(bead: Bead) -> bool:
    """An epic in progress by roll-up alone (no rig, branch, target or dispatch): a step reads
    it only as "something is in flight" and through the roll-up of a tree in the view."""
    return bead.type == "epic" and not (bead.rig or bead.branch or bead.target or
                                        bead.base_commit or bead.integration_branch or
                                        bead.dispatch)


def tracked_by_open(convoys: Iterable[Convoy]) -> set[str]:
    """Every id an open convoy tracks (existing or not)."""
    return {t for c in convoys if c.status == "open" for t in c.tracks}


def is_root(bead: Bead, tracked: set[str]) -> bool:
    """Does a step act on this bead by itself (see the module docstring)?"""
    if bead.id in tracked:
        return True
    if bead.done:
        return False
    return (bead.status in IN_FLIGHT and not idle_epic(bead)) or bool(bead.branch) or \
        bool(bead.integration_branch)


def rollup_fields(bead: Bead) -> tuple[str | None, str, str, str | None]:
    """What the epic roll-up reads of a bead: a change elsewhere leaves every epic's rolled-up
    status as it was."""
    return bead.parent, bead.status, bead.type, bead.integration_branch


def ancestry(bead: Bead, get: Get) -> list[Bead]:
    """The bead and each ancestor that exists, nearest first; stops at a parent loop."""
    out = [bead]
    seen = {bead.id}
    parent = bead.parent
    while parent and parent not in seen:
        seen.add(parent)
        found = get(parent)
        if found is None:
            break
        out.append(found)
        parent = found.parent
    return out


def wanted(beads: Iterable[Bead], tracked: set[str], get: Get) -> set[str]:
    """The roots among `beads`, the tracked ids that exist, and every existing bead named by
    a dep of one of them or of one of their ancestors: the trees a view must hold."""
    roots = [b for b in beads if is_root(b, tracked)]
    roots += [found for t in tracked if (found := get(t)) is not None]
    out = {r.id for r in roots}
    for root in roots:
        for holder in ancestry(root, get):
            out.update(d.on for d in holder.deps if d.on not in out and get(d.on) is not None)
    return out


def children_of(beads: Iterable[Bead]) -> dict[str, list[str]]:
    """Each parent id's children (tombstones too: they are links of a tree)."""
    out: dict[str, list[str]] = {}
    for bead in beads:
        if bead.parent:
            out.setdefault(bead.parent, []).append(bead.id)
    return out


def tree_of(start: Bead, get: Get, children: Children) -> dict[str, Bead]:
    """The whole tree holding `start`: up to its top (or into a parent loop), then every
    bead below. A child that `get` cannot read is a KeyError (the caller's map is wrong)."""
    top = ancestry(start, get)[-1]
    found = {top.id: top}
    stack = [top.id]
    while stack:
        for child in children(stack.pop()):
            if child not in found:
                bead = get(child)
                if bead is None:
                    raise KeyError(child)
                found[child] = bead
                stack.append(child)
    return found


def reach(beads: Mapping[str, Bead], convoys: Iterable[Convoy]) -> set[str]:
    """The ids a view of this whole state must hold (see the module docstring)."""
    below = children_of(beads.values())

    def kids(bead_id: str) -> list[str]:
        return below.get(bead_id, [])

    starts = wanted(beads.values(), tracked_by_open(convoys), beads.get)
    starts |= set(epics.epic_changes(beads, graph.Index(beads)))
    out: set[str] = set()
    for bead_id in starts:
        if bead_id not in out:
            out.update(tree_of(beads[bead_id], beads.get, kids))
    return out
