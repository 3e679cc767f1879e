"""`stage` analysis (pure): from an epic, a list of beads or a convoy to a validated plan.

Errors (fatal, nothing written): cycle, unknown-id, no-target, mixed-input, overlap.
Warnings (the convoy is staged_warnings): orphan, parked-rig, cross-rig, capacity,
missing-branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitconvoy.plan import carry, graph
from gitconvoy.plan.targets import NO_INTEGRATION, rig_for, target_for
from gitconvoy.plan.waves import WavePlan, plan_waves
from gitconvoy.state.model import Convoy
from gitconvoy.state.snapshot import Snapshot


@dataclass(frozen=True)
class Finding:
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class StagePlan:
    kind: str = "bead"
    root: str | None = None
    convoy: str | None = None
    members: list[str] = field(default_factory=list)
    tree: list[tuple[int, str]] = field(default_factory=list)
    waves: WavePlan = field(default_factory=WavePlan)
    rigs: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    # (epic, branch) planned by an import and not cut yet: `launch` cuts them (docs/import.md)
    planned_branches: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "staged_warnings" if self.warnings else "staged_ready"


def _classify(snap: Snapshot, inputs: list[str], plan: StagePlan,
              index: graph.Index) -> list[str]:
    kinds: dict[str, list[str]] = {"epic": [], "bead": [], "convoy": []}
    for item in inputs:
        if item in snap.beads and snap.beads[item].status != "tombstone":
            kinds["epic" if snap.beads[item].type == "epic" else "bead"].append(item)
        elif item in snap.convoys:
            kinds["convoy"].append(item)
        else:
            plan.errors.append(Finding("unknown-id", f"unknown bead or convoy '{item}'"))
    used = [k for k, v in kinds.items() if v]
    if len(used) > 1 or len(kinds["epic"]) > 1 or len(kinds["convoy"]) > 1:
        plan.errors.append(Finding(
            "mixed-input", "stage takes one epic, or beads that are not epics, or one convoy: "
            f"got {', '.join(f'{len(kinds[k])} {k}(s)' for k in used)}",
        ))
        return []
    if plan.errors or not used:
        return []
    plan.kind = used[0]
    if plan.kind == "epic":
        plan.root = kinds["epic"][0]
        return [plan.root] + index.descendants(plan.root)
    if plan.kind == "convoy":
        plan.convoy = kinds["convoy"][0]
        return list(snap.convoys[plan.convoy].tracks)
    return list(dict.fromkeys(kinds["bead"]))


def member_tree(snap: Snapshot, members: list[str], index: graph.Index) -> list[tuple[int, str]]:
    member_set = set(members)
    beads = snap.beads
    roots = [m for m in members if beads[m].parent not in member_set]
    roots.sort(key=lambda b: graph.sort_key(beads[b]))
    out: list[tuple[int, str]] = []
    stack = [(0, r) for r in reversed(roots)]
    seen: set[str] = set()
    while stack:
        depth, bead_id = stack.pop()
        if bead_id in seen:
            continue
        seen.add(bead_id)
        out.append((depth, bead_id))
        kids = [c for c in index.children.get(bead_id, ()) if c in member_set]
        kids.sort(key=lambda b: graph.sort_key(beads[b]), reverse=True)
        stack.extend((depth + 1, k) for k in kids)
    return out


def analyse(snap: Snapshot, inputs: list[str],
            branch_exists: Callable[[str], bool]) -> StagePlan:
    """The whole plan from ONE graph index of the snapshot: classifying the input, the
    tree, cycles, waves and warnings all ask it (each used to build its own)."""
    plan = StagePlan()
    beads = snap.beads
    index = graph.Index(beads)
    members = [m for m in _classify(snap, inputs, plan, index) if m in beads]
    members = [m for m in members if beads[m].status != "tombstone"]
    if plan.errors:
        return plan
    plan.members = members
    plan.tree = member_tree(snap, members, index)
    convoy = snap.convoys.get(plan.convoy) if plan.convoy else None
    if convoy is not None and convoy.status == "open":
        plan.errors.append(Finding(
            "mixed-input", f"convoy {convoy.id} is open: an open convoy cannot be staged again"
        ))
        return plan
    for other in snap.convoys.values():
        if other.status == "open" and other.id != plan.convoy:
            shared = sorted(set(other.tracks) & set(members))
            if shared:
                plan.errors.append(Finding(
                    "overlap", f"open convoy {other.id} already tracks {', '.join(shared[:5])}"
                ))
    for cycle in graph.find_cycles({m: beads[m] for m in members}, index):
        plan.errors.append(Finding("cycle", f"dependency cycle {graph.format_cycle(cycle)}"))
    slingable = [m for m in members if beads[m].slingable]
    for bead_id in slingable:
        bead = beads[bead_id]
        rig = rig_for(snap.config, bead, convoy)
        target = target_for(beads, snap.config, bead, convoy)
        if rig is None or not target:
            plan.errors.append(Finding(
                "no-target", f"{bead_id} has no rig or target branch: add a rig "
                "('git convoy rig add NAME --target main') or set --rig/--target on the bead",
            ))
            continue
        plan.rigs[bead_id] = rig.name
        plan.targets[bead_id] = target
    if plan.errors:
        return plan
    plan.waves = plan_waves(beads, members, index)
    if plan.waves.cycle:
        plan.errors.append(Finding(
            "cycle", f"dependency cycle among {', '.join(plan.waves.cycle[:6])}"
        ))
        return plan
    stuck = carry.never_start(index, members)
    for found in stuck[:5]:
        plan.errors.append(Finding("never-starts", (
            f"{found.bead} can never start: it needs the work of {found.blocker}, which "
            f"reaches its base only when epic {found.epic} lands, and {found.epic} cannot "
            "land first (epics that wait on each other's work): drop one of these deps, or "
            "move the task into the other epic") + (
            f" ({len(stuck) - 5} more tasks are stuck the same way)" if len(stuck) > 5
            and found is stuck[4] else "")))
    if plan.errors:
        return plan
    _warn(snap, plan, index, branch_exists)
    return plan


def _warn(snap: Snapshot, plan: StagePlan, index: graph.Index,
          branch_exists: Callable[[str], bool]) -> None:
    member_set = set(plan.members)
    rigs_used = sorted(set(plan.rigs.values()))
    for name in rigs_used:
        rig = snap.config.rigs[name]
        if rig.parked:
            plan.warnings.append(Finding("parked-rig", f"rig {name} is parked"))
    if len(rigs_used) > 1:
        plan.warnings.append(Finding("cross-rig", f"beads run on rigs {', '.join(rigs_used)}"))
    for number, wave in enumerate(plan.waves.waves, 1):
        per_rig: dict[str, int] = {}
        for bead_id in wave:
            per_rig[plan.rigs[bead_id]] = per_rig.get(plan.rigs[bead_id], 0) + 1
        for name, width in sorted(per_rig.items()):
            capacity = snap.config.rigs[name].capacity
            if width > capacity:
                plan.warnings.append(Finding(
                    "capacity", f"wave {number} has {width} beads for rig {name} "
                    f"(capacity {capacity}): they will run in batches",
                ))
    beads = snap.beads
    for bead_id in plan.members:
        bead = beads[bead_id]
        if plan.kind == "bead" and len(plan.members) > 1:
            linked = bead.parent in member_set or any(
                d.on in member_set for d in bead.deps
            ) or any(w in member_set for w in index.waiters.get(bead_id, ()))
            if not linked:
                plan.warnings.append(Finding(
                    "orphan", f"{bead_id} has no parent or dependency inside this convoy"
                ))
        if bead.type != "epic" or bead_id == plan.root or bead.done:
            continue
        children = [c for c in index.children.get(bead_id, ()) if c in member_set]
        if not children:
            continue
        if not bead.integration_branch:
            if NO_INTEGRATION in bead.labels:
                continue
            plan.warnings.append(Finding(
                "missing-branch", f"sub-epic {bead_id} has {len(children)} children and no "
                f"integration branch (git convoy integration create {bead_id})",
            ))
        elif not branch_exists(bead.integration_branch) and bead.base_commit:
            plan.warnings.append(Finding(  # it was cut once and is gone: launch cannot help
                "missing-branch", f"integration branch {bead.integration_branch} of "
                f"{bead_id} does not exist (it was cut from {bead.base_commit[:10]}; "
                f"'git branch {bead.integration_branch} {bead.base_commit[:10]}' restores it)",
            ))
        elif not branch_exists(bead.integration_branch):
            plan.planned_branches.append((bead_id, bead.integration_branch))


def plan_json(snap: Snapshot, plan: StagePlan, convoy: Convoy | None) -> dict[str, Any]:
    def node(bead_id: str, depth: int) -> dict[str, Any]:
        bead = snap.beads[bead_id]
        return {"id": bead_id, "depth": depth, "title": bead.title, "type": bead.type,
                "status": bead.status, "priority": bead.priority,
                "wave": plan.waves.wave_of(bead_id), "rig": plan.rigs.get(bead_id)}

    return {
        "convoy": convoy.id if convoy else None,
        "status": convoy.status if convoy else None,
        "input": plan.kind,
        "root": plan.root,
        "tree": [node(b, d) for d, b in plan.tree],
        "waves": [list(w) for w in plan.waves.waves],
        "gated": [{"id": b, "blocked_by": [x.to_json() for x in blockers]}
                  for b, blockers in sorted(plan.waves.gated.items())],
        "done": list(plan.waves.done),
        "errors": [f.to_json() for f in plan.errors],
        "warnings": [f.to_json() for f in plan.warnings],
        "planned_branches": [{"epic": e, "branch": b} for e, b in plan.planned_branches],
    }
