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
    edges: dict[str, set[str]] = field(default_factory=dict)

    def wave_of(self, bead_id: str) -> int | None:
        for number, wave in enumerate(self.waves, 1):
            if bead_id in wave:
                return number
        return None


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
    descendants_memo: dict[str, list[str]] = {}

    def work_under(epic_id: str) -> list[str]:
        if epic_id not in descendants_memo:
            descendants_memo[epic_id] = [d for d in index.descendants(epic_id) if d in open_set]
        return descendants_memo[epic_id]

    waits: dict[str, set[str]] = {b: set() for b in open_work}
    for bead_id in open_work:
        bead = beads[bead_id]
        sources = [(bead, None)] + [(beads[a], a) for a in index.ancestors(bead_id) if a in beads]
        for holder, via in sources:
            for dep in holder.blocking_deps():
                target = beads.get(dep.on)
                if target is not None and target.status in DONE_STATUSES:
                    continue
                if dep.on in open_set:
                    waits[bead_id].add(dep.on)
                elif target is not None and target.type == "epic" and dep.on in member_set:
                    waits[bead_id].update(w for w in work_under(dep.on) if w != bead_id)
                else:
                    status = target.status if target is not None else None
                    plan.gated.setdefault(bead_id, []).append(
                        Blocker(dep.on, dep.type, status, via)
                    )
    _propagate_gating(plan, waits, beads)
    remaining = {b: set(w) for b, w in waits.items() if b not in plan.gated}
    plan.edges = {b: set(w) for b, w in remaining.items()}
    while remaining:
        wave = [b for b, w in remaining.items() if not w]
        if not wave:
            plan.cycle = sorted(remaining)
            break
        wave.sort(key=lambda b: (beads[b].priority, b))
        plan.waves.append(wave)
        for b in wave:
            del remaining[b]
        placed = set(wave)
        for w in remaining.values():
            w -= placed
    plan.done.sort(key=lambda b: (beads[b].priority, b))
    return plan


def _propagate_gating(plan: WavePlan, waits: dict[str, set[str]], beads: Beads) -> None:
    """Whatever waits for a gated bead is gated too (it can never be placed before it)."""
    waiters: dict[str, list[str]] = {}
    for bead_id, blockers in waits.items():
        for blocker in blockers:
            waiters.setdefault(blocker, []).append(bead_id)
    queue = list(plan.gated)
    while queue:
        gated_id = queue.pop()
        for waiter in waiters.get(gated_id, ()):
            if waiter not in plan.gated:
                plan.gated[waiter] = [Blocker(gated_id, "gated", beads[gated_id].status)]
                queue.append(waiter)
