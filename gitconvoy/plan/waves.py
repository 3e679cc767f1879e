"""Waves of a convoy: Kahn layering of its slingable beads over blocking deps (pure).

A blocking dep on an epic of the set stands for a dep on each of that epic's open slingable
descendants in the set, so sub-epic B's tasks come after all of A's. A bead whose blocker lies
outside the set (or is an undecided decision) is *gated*: it cannot be placed in a wave, and
neither can anything that waits for it. Closed beads are reported as done.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gitconvoy.plan.graph import Beads, Blocker, Index
from gitconvoy.state.model import DONE_STATUSES


@dataclass
class WavePlan:
    waves: list[list[str]] = field(default_factory=list)
    gated: dict[str, list[Blocker]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    cycle: list[str] = field(default_factory=list)
    # (number of waves it was made from, bead -> wave number)
    _numbers: tuple[int, dict[str, int]] | None = field(default=None, repr=False,
                                                        compare=False)

    def wave_of(self, bead_id: str) -> int | None:
        """The wave a bead is in (from 1), looked up in a map made once per plan: views ask
        for every member, and scanning every wave for each was quadratic (384 ms at 10k)."""
        if self._numbers is None or self._numbers[0] != len(self.waves):
            self._numbers = (len(self.waves),
                             {b: n for n, wave in enumerate(self.waves, 1) for b in wave})
        return self._numbers[1].get(bead_id)


# (what, bead id, why): "bead" waits for an open bead of the set, "epic" for all the open work
# of an epic of the set, "gate" for something outside it (the Blocker says what)
Effect = tuple[str, str, Blocker | None]


def plan_waves(beads: Beads, members: Iterable[str], index: Index | None = None) -> WavePlan:
    index = index or Index(beads)
    member_set = {m for m in members if m in beads and beads[m].status != "tombstone"}
    plan = WavePlan()
    open_work: list[str] = []
    for bead_id in member_set:
        bead = beads[bead_id]
        if not bead.slingable:
            continue
        if bead.status in DONE_STATUSES:
            plan.done.append(bead_id)
        else:
            open_work.append(bead_id)
    open_set = set(open_work)
    descendants_memo: dict[str, tuple[list[str], set[str]]] = {}

    def work_under(epic_id: str) -> tuple[list[str], set[str]]:
        if epic_id not in descendants_memo:
            work = [d for d in index.descendants(epic_id) if d in open_set]
            descendants_memo[epic_id] = (work, set(work))
        return descendants_memo[epic_id]

    def effects(holder_id: str, via: str | None) -> list[Effect]:
        """What the blocking deps of one bead (the waiting one or an ancestor) mean here."""
        out: list[Effect] = []
        for dep in beads[holder_id].blocking_deps():
            target = beads.get(dep.on)
            if target is not None and target.status in DONE_STATUSES:
                continue
            if dep.on in open_set:
                out.append(("bead", dep.on, None))
            elif target is not None and target.type == "epic" and dep.on in member_set:
                out.append(("epic", dep.on, None))
            else:
                status = target.status if target is not None else None
                out.append(("gate", dep.on, Blocker(dep.on, dep.type, status, via)))
        return out

    above: dict[str, tuple[list[Effect], set[str]]] = {}

    def inherited(bead_id: str, parent: str | None) -> list[Effect]:
        """The effects of every ancestor's deps, worked out once per parent (siblings share
        them); a parent loop through the bead itself is walked from the bead."""
        if not parent:
            return []
        if parent not in above:
            chain = [parent, *index.ancestors(parent)]
            above[parent] = ([e for a in chain if a in beads for e in effects(a, a)], set(chain))
        found, chain_set = above[parent]
        if bead_id not in chain_set:
            return found
        return [e for a in index.ancestors(bead_id) if a in beads for e in effects(a, a)]

    waits: dict[str, set[str]] = {b: set() for b in open_work}
    for bead_id in open_work:
        mine = waits[bead_id]
        for kind, on, blocker in [*effects(bead_id, None),
                                  *inherited(bead_id, beads[bead_id].parent)]:
            if kind == "bead":
                mine.add(on)
            elif kind == "epic":
                work, inside = work_under(on)
                if bead_id in inside:  # it waits for the rest of its own epic's work
                    mine.update(w for w in work if w != bead_id)
                elif work:
                    key = _all_of(on)
                    waits.setdefault(key, set(work))
                    mine.add(key)
            else:
                plan.gated.setdefault(bead_id, []).append(blocker)  # type: ignore[arg-type]
    held = _propagate_gating(plan, waits, beads)
    edges = {b: w for b, w in waits.items() if b not in plan.gated and b not in held}
    plan.waves, plan.cycle = _layers(edges, beads)
    plan.done.sort(key=lambda b: (beads[b].priority, b))
    return plan


def _all_of(epic_id: str) -> str:
    """The node "all open work of this epic is placed": a dep on an epic of the set stands
    for one edge to it, not one to each of its tasks (a 10k-bead plan had 100k edges).
    No bead id holds a `/`, so it never names a bead."""
    return f"{epic_id}/"


def _layers(edges: dict[str, set[str]], beads: Beads) -> tuple[list[list[str]], list[str]]:
    """Kahn layering, linear in the edges: a bead's wave is one after its last blocker's;
    an epic's all-of node takes no wave (its waiters go in the wave after its last task).
    What can never be placed (a cycle, and whatever waits for it) is returned sorted."""
    unmet = {b: len(w) for b, w in edges.items()}
    waiters: dict[str, list[str]] = {}
    for bead_id, blockers in edges.items():
        for blocker in blockers:
            waiters.setdefault(blocker, []).append(bead_id)
    waves: list[list[str]] = []
    wave = [b for b, n in unmet.items() if n == 0]  # an all-of node always has work
    while wave:
        wave.sort(key=lambda b: (beads[b].priority, b))
        waves.append(wave)
        following: list[str] = []
        released = list(wave)
        while released:
            for waiter in waiters.get(released.pop(), ()):
                unmet[waiter] -= 1
                if unmet[waiter] == 0:
                    (released if waiter.endswith("/") else following).append(waiter)
        wave = following
    placed = {b for w in waves for b in w}
    beads_left = [b for b in edges if b not in placed and not b.endswith("/")]
    return waves, sorted(beads_left)


def _propagate_gating(plan: WavePlan, waits: dict[str, set[str]], beads: Beads
                      ) -> dict[str, str]:
    """Whatever waits for a gated bead is gated too (it can never be placed before it),
    named by that bead; an epic's all-of node is held by a gated task of the epic and passes
    it on. The held all-of nodes, each with the gated bead that holds it."""
    waiters: dict[str, list[str]] = {}
    for bead_id, blockers in waits.items():
        for blocker in blockers:
            waiters.setdefault(blocker, []).append(bead_id)
    held: dict[str, str] = {}
    queue = [(gated, gated) for gated in plan.gated]
    while queue:
        node, cause = queue.pop()
        for waiter in waiters.get(node, ()):
            if waiter in plan.gated or waiter in held:
                continue
            if waiter.endswith("/"):
                held[waiter] = cause
                queue.append((waiter, cause))
            else:
                plan.gated[waiter] = [Blocker(cause, "gated", beads[cause].status)]
                queue.append((waiter, waiter))
    return held
