"""`stage` analysis (pure): from an epic, a list of beads or a convoy to a validated plan.

Errors (fatal, nothing written): cycle, unknown-id, no-target, mixed-input, overlap,
never-starts, max-depth, validate. Warnings (the convoy is staged_warnings): orphan,
parked-rig, cross-rig, capacity, missing-branch, inferred-order.

The options' edits (inferred deps, the capstone: gitconvoy.plan.stage_options) are applied
to a view of the snapshot before the graph is analysed, so the waves shown are the waves of
the plan as it will be written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitconvoy.plan import carry, graph
from gitconvoy.plan.stage_options import (
    Edits,
    StageOptions,
    capstone_problem,
    deepest_path,
    plan_edits,
)
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
    edits: Edits = field(default_factory=Edits)  # beads the options write (stage_options)
    state: Snapshot | None = None  # the snapshot as the plan leaves it (with its edits)

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


def _with_beads(snap: Snapshot, changed: dict[str, Any]) -> Snapshot:
    """A view of `snap` with some beads replaced (nothing is written)."""
    objects = {**snap.objects, "beads": {**snap.beads, **changed}}
    return Snapshot(snap.commit, snap.tree, snap.config, objects, errors_from=snap)


def _source_epic(snap: Snapshot, plan: StagePlan, members: list[str]) -> str | None:
    """The root epic of the plan: the epic staged, or the epic a staged convoy came from."""
    if plan.root or plan.convoy is None:
        return plan.root
    source = snap.convoys[plan.convoy].source
    if source in members and snap.beads[source].type == "epic":
        return source
    return None


def _options(snap: Snapshot, plan: StagePlan, index: graph.Index,
             opts: StageOptions) -> tuple[Snapshot, graph.Index]:
    """Check --max-depth and --validate, and apply the options' edits to a view."""
    if opts.max_depth is not None:
        path = deepest_path(snap.beads, plan.tree)
        if len(path) - 1 > opts.max_depth:
            plan.errors.append(Finding("max-depth", (
                f"{' → '.join(path)} is {len(path) - 1} levels deep, deeper than --max-depth "
                f"{opts.max_depth}: flatten it or raise the limit")))
            plan.tree = []  # refused before any analysis: the one line says it all
            return snap, index
    root = _source_epic(snap, plan, plan.members)
    if opts.validate:
        problem = capstone_problem(snap.beads, root) if root else (
            "--validate needs an epic to validate: git convoy stage EPIC --validate")
        if problem:
            plan.errors.append(Finding("validate", problem))
            plan.tree = []
            return snap, index
    plan.edits = plan_edits(snap.beads, plan.members, index, root, opts)
    if not plan.edits.changed:
        return snap, index
    snap = _with_beads(snap, plan.edits.changed)
    index = graph.Index(snap.beads)
    cap = plan.edits.capstone
    if cap is not None and cap not in plan.members:
        plan.members = [*plan.members, cap]
        plan.tree = member_tree(snap, plan.members, index)
    return snap, index


def _cycle_finding(cycle: list[str], plan: StagePlan) -> Finding:
    message = f"dependency cycle {graph.format_cycle(cycle)}"
    if any(a in cycle and b in cycle for a, b in plan.edits.inferred):
        message += (" with the deps --infer-blocks would add: order these sub-epics by hand "
                    "(git convoy dep add) or stage without it")
    return Finding("cycle", message)


def analyse(snap: Snapshot, inputs: list[str], branch_exists: Callable[[str], bool],
            opts: StageOptions | None = None) -> StagePlan:
    """The whole plan from ONE graph index of the snapshot: classifying the input, the
    tree, cycles, waves and warnings all ask it (each used to build its own). The options'
    edits, when they change a bead, make one more index of the edited view."""
    opts = opts or StageOptions()
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
    found = len(plan.errors)
    if not found:  # an overlap is reported with the cycles below, as before the options
        snap, index = _options(snap, plan, index, opts)
        if len(plan.errors) > found:
            return plan
    plan.state = snap
    beads = snap.beads
    members = plan.members
    for cycle in graph.find_cycles({m: beads[m] for m in members}, index):
        plan.errors.append(_cycle_finding(cycle, plan))
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
    for later, earlier in plan.edits.ties:
        plan.warnings.append(Finding("inferred-order", (
            f"{later} waits for {earlier} by id only: both were created at the same time "
            f"(an import?); if the order matters, state it: git convoy dep add {later} "
            f"{earlier}")))
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
        "inferred": [{"bead": b, "on": o} for b, o in plan.edits.inferred],
        "inferred_removed": [{"bead": b, "on": o} for b, o in plan.edits.dropped],
        "capstone": plan.edits.capstone,
    }
