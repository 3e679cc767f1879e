"""Text view of a staged plan and of a convoy: tree, wave table, gated beads, warnings."""

from __future__ import annotations

from gitconvoy.plan.staging import StagePlan
from gitconvoy.plan.waves import WavePlan
from gitconvoy.state.model import Bead
from gitconvoy.state.snapshot import Snapshot

MARK = {"closed": "✓", "in_progress": "▶", "hooked": "▶", "tombstone": "✗"}


def _label(bead: Bead, waves: WavePlan) -> str:
    wave = waves.wave_of(bead.id)
    where = f"wave {wave}" if wave else ("gated" if bead.id in waves.gated else "")
    tail = f"  [{where}]" if where else ""
    return f"{MARK.get(bead.status, '○')} {bead.id}  {bead.type}  P{bead.priority}  " \
           f"{bead.title}  ({bead.status}){tail}"


def tree_lines(snap: Snapshot, tree: list[tuple[int, str]], waves: WavePlan) -> list[str]:
    return [f"{'  ' * depth}{_label(snap.beads[b], waves)}" for depth, b in tree]


def wave_lines(snap: Snapshot, waves: WavePlan, rigs: dict[str, str]) -> list[str]:
    out = []
    for number, wave in enumerate(waves.waves, 1):
        out.append(f"  wave {number} ({len(wave)}):")
        for b in wave:
            bead = snap.beads[b]
            rig = f"  → {rigs[b]}" if b in rigs else ""
            out.append(f"    {b}  P{bead.priority}  {bead.title}{rig}")
    return out


def gated_lines(waves: WavePlan) -> list[str]:
    return [f"  {b}: waits for " + ", ".join(x.describe() for x in blockers)
            for b, blockers in sorted(waves.gated.items())]


def plan_lines(snap: Snapshot, plan: StagePlan) -> list[str]:
    out = ["Tree"] + [f"  {line}" for line in tree_lines(snap, plan.tree, plan.waves)]
    out += ["", "Waves"] + (wave_lines(snap, plan.waves, plan.rigs) or ["  (none)"])
    if plan.waves.gated:
        out += ["", "Gated (blocked by work outside the convoy)"] + gated_lines(plan.waves)
    if plan.waves.done:
        out += ["", f"Done: {', '.join(plan.waves.done)}"]
    edits = plan.edits
    if edits.inferred or edits.dropped:
        out += ["", "Inferred deps (--infer-blocks; a re-stage without it removes them)"]
        out += [f"  {b} waits for {on}  (blocks, inferred)" for b, on in edits.inferred]
        out += [f"  {b} no longer waits for {on}  (inferred, removed)" for b, on in edits.dropped]
    if edits.capstone:
        cap = snap.beads.get(edits.capstone)
        how = "adds" if edits.capstone_new else "keeps"
        deps = len(cap.blocking_deps()) if cap else 0
        out += ["", f"Validation (--validate): {how} {edits.capstone}, blocked by {deps} "
                f"task(s); {plan.root or (cap.parent if cap else '')} closes after it"]
    if plan.planned_branches:
        out += ["", "Integration branches launch creates"]
        out += [f"  {branch} (epic {epic})" for epic, branch in plan.planned_branches]
    if plan.warnings:
        out += ["", "Warnings"] + [f"  {f.code}: {f.message}" for f in plan.warnings]
    if plan.errors:
        out += ["", "Errors"] + [f"  {f.code}: {f.message}" for f in plan.errors]
    return out
