"""Dependency commands: add, remove, list, cycles."""

from __future__ import annotations

import click

from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines, warn_broken
from gitconvoy.plan import edits, graph
from gitconvoy.state.model import DEP_TYPES


@click.group()
def dep() -> None:
    """Add, remove and inspect dependencies between beads."""


@dep.command("add")
@click.argument("bead_id")
@click.argument("depends_on")
@click.option("--type", "-t", "dep_type", default="blocks", show_default=True,
              help=f"One of {', '.join(DEP_TYPES)}.")
def add(bead_id: str, depends_on: str, dep_type: str) -> int:
    """BEAD_ID depends on DEPENDS_ON (with blocks: waits until it closes)."""
    edits.check_choice(dep_type, DEP_TYPES, "dep type")
    store = open_store()
    store.transact(
        lambda tx: edits.add_dep(tx, bead_id, depends_on, dep_type),
        f"dep add {bead_id} {depends_on} ({dep_type})",
    )
    say(f"{bead_id} depends on {depends_on} ({dep_type})")
    return 0


@dep.command("remove")
@click.argument("bead_id")
@click.argument("depends_on")
@click.option("--type", "-t", "dep_type", help="Only this type (default: any).")
def remove(bead_id: str, depends_on: str, dep_type: str | None) -> int:
    """Remove the dependency of BEAD_ID on DEPENDS_ON."""
    if dep_type:
        edits.check_choice(dep_type, DEP_TYPES, "dep type")
    store = open_store()
    store.transact(
        lambda tx: edits.remove_dep(tx, bead_id, depends_on, dep_type),
        f"dep remove {bead_id} {depends_on}",
    )
    say(f"{bead_id} no longer depends on {depends_on}")
    return 0


@dep.command("list")
@click.argument("bead_id")
@json_option
def list_deps(bead_id: str, as_json: bool) -> int:
    """What BEAD_ID depends on, and what depends on it."""
    snap = open_store().snapshot()
    bead = snap.bead(bead_id)
    outgoing = edits.deps_of(bead)
    incoming = sorted(
        (other.id, d.type, d.inferred) for other in snap.beads.values()
        for d in edits.deps_of(other) if d.on == bead_id
    )
    if as_json:
        print_json({
            "id": bead_id,
            "depends_on": [
                {**d.to_dict(),
                 "status": snap.beads[d.on].status if d.on in snap.beads else None}
                for d in outgoing
            ],
            "dependents": [{"id": i, "type": t, **({"inferred": True} if inferred else {})}
                           for i, t, inferred in incoming],
        })
        return 0
    status = {d.on: snap.beads[d.on].status if d.on in snap.beads else "missing"
              for d in outgoing}
    say_lines([*(f"{bead_id} → {d.on}  ({_kind(d.type, d.inferred)}, {status[d.on]})"
                 for d in outgoing),
               *(f"{other} → {bead_id}  ({_kind(dep_type, inferred)})"
                 for other, dep_type, inferred in incoming)])
    return 0


def _kind(dep_type: str, inferred: bool) -> str:
    """An inferred dep (stage --infer-blocks) says so: a re-stage without the flag drops it."""
    return f"{dep_type}, inferred by stage" if inferred else dep_type


@dep.command("cycles")
@json_option
def cycles(as_json: bool) -> int:
    """Find dependency cycles (deadlocks), e.g. after a merge of two plans."""
    snap = open_store().snapshot()
    warn_broken(snap)
    found = graph.find_cycles(snap.beads)
    if as_json:
        print_json([{"cycle": c} for c in found])
        return 0
    say_lines(graph.format_cycle(c) for c in found)
    if not found:
        say("no cycles")
    return 1 if found else 0
