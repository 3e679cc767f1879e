"""What a picture or a report shows: a convoy's tracked beads, or an epic and its descendants,
with the waves and the progress figures every view of them shares (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitconvoy.errors import ConvoyError
from gitconvoy.plan import graph, staging
from gitconvoy.plan.waves import WavePlan, plan_waves
from gitconvoy.state.snapshot import Snapshot


@dataclass
class Scope:
    """The beads one picture draws, in tree order, and their waves."""

    kind: str  # "convoy" or "epic"
    id: str
    title: str
    status: str
    members: list[str]
    tree: list[tuple[int, str]]
    waves: WavePlan
    progress: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def progress(snap: Snapshot, members: list[str]) -> dict[str, int]:
    """closed/total slingable beads and how many are in flight (hooked or in progress)."""
    work = [snap.beads[m] for m in members
            if m in snap.beads and snap.beads[m].slingable and snap.beads[m].status != "tombstone"]
    return {"closed": sum(b.status == "closed" for b in work), "total": len(work),
            "in_flight": sum(b.status in ("hooked", "in_progress") for b in work)}


def scope_of(snap: Snapshot, name: str, index: graph.Index | None = None) -> Scope:
    """The convoy or epic called `name`; anything else is a one-line error."""
    index = index or graph.Index(snap.beads)
    convoy = snap.convoys.get(name)
    if convoy is not None:
        members = [t for t in convoy.tracks
                   if t in snap.beads and snap.beads[t].status != "tombstone"]
        kind, title, status, warnings = "convoy", convoy.title, convoy.status, convoy.warnings
    else:
        bead = snap.beads.get(name)
        if bead is None or bead.status == "tombstone":
            raise ConvoyError(f"unknown convoy or epic '{name}': see 'git convoy list --all' "
                              "or 'git convoy bead list --type epic'")
        if bead.type != "epic":
            raise ConvoyError(f"{name} is a {bead.type}, not an epic: name a convoy or an "
                              "epic (see 'git convoy list --all')")
        members = [name] + [d for d in index.descendants(name)
                            if snap.beads[d].status != "tombstone"]
        kind, title, status, warnings = "epic", bead.title, bead.status, []
    tree = staging.member_tree(snap, members, index)
    ordered = [b for _, b in tree]
    return Scope(kind, name, title, status, ordered, tree, plan_waves(snap.beads, ordered, index),
                 progress(snap, ordered), list(warnings))
