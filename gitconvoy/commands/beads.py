"""Bead commands: create, show, list, update, close, reopen, delete; ready; blocked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from gitconvoy.commands import readout
from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines
from gitconvoy.commands.refargs import branch_value
from gitconvoy.errors import ConvoyError
from gitconvoy.plan import convoys, creating, edits, graph
from gitconvoy.plan.edits import parse_dep
from gitconvoy.render.shapes import bead_json
from gitconvoy.render.text import bead_detail
from gitconvoy.state import answers
from gitconvoy.state.codec import load_yaml
from gitconvoy.state.model import BEAD_STATUSES, BEAD_TYPES, Bead
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.tx import Tx

if TYPE_CHECKING:
    from gitconvoy.state.snapshot import Snapshot
    from gitconvoy.state.store import Store


@click.group()
def bead() -> None:
    """Create, show, list and change beads (work items)."""


_BATCH_TEXT = ("title", "type", "description", "acceptance", "assignee", "parent", "rig",
               "target", "id", "status", "import_key")


def _read_batch(path: str) -> list[edits.BeadSpec]:
    """A YAML or JSON list of beads (`-` reads stdin); every item checked before any write."""
    try:
        if path == "-":
            raw = click.get_binary_stream("stdin").read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise ConvoyError(f"cannot read {path}: {exc.strerror}") from None
    if path.endswith(".json"):
        try:
            items = json.loads(raw)
        except ValueError as exc:
            raise ConvoyError(f"{path}: not valid JSON: {exc}") from None
    else:
        items = load_yaml(raw, path)
    if not isinstance(items, list):
        raise ConvoyError(f"{path}: expected a list of beads")
    specs = []
    allowed = set(edits.BeadSpec.__dataclass_fields__)
    for n, item in enumerate(items, 1):
        where = f"{path}: item {n}"
        if not isinstance(item, dict):
            raise ConvoyError(f"{where}: expected a mapping with at least a title")
        unknown = set(item) - allowed
        if unknown:
            raise ConvoyError(f"{where}: unknown field '{sorted(unknown)[0]}'")
        for key in _BATCH_TEXT:
            if item.get(key) is not None and not isinstance(item[key], str):
                raise ConvoyError(
                    f"{where}: field '{key}' must be text, got {type(item[key]).__name__}")
        for key in ("labels", "deps"):
            value = item.get(key)
            if value is not None and (not isinstance(value, list)
                                      or not all(isinstance(v, str) for v in value)):
                raise ConvoyError(f"{where}: field '{key}' must be a list of text")
        item = dict(item)
        item["deps"] = [parse_dep(d) for d in item.get("deps") or []]
        item["labels"] = list(item.get("labels") or [])
        specs.append(edits.BeadSpec(**item))
    return specs


@bead.command("create")
@click.argument("title", required=False)
@click.option("--type", "-t", "bead_type", default="task", show_default=True,
              help=f"One of {', '.join(BEAD_TYPES)}.")
@click.option("--priority", "-p", default="2", show_default=True, help="0 (highest) to 4.")
@click.option("--description", "-d", help="Longer text.")
@click.option("--acceptance", help="Acceptance criteria.")
@click.option("--assignee", "-a", help="Who has it.")
@click.option("--label", "-l", "labels", multiple=True, help="A label (repeatable).")
@click.option("--parent", help="The epic this bead belongs to.")
@click.option("--dep", "deps", multiple=True, help="ID or TYPE:ID this bead depends on.")
@click.option("--id", "bead_id", help="An explicit id (letters, digits, '-', '.', '_').")
@click.option("--rig", help="The rig that should run it.")
@click.option("--target", help="The branch its work lands on.", callback=branch_value)
@click.option("--convoy", "into", help="Track it in this convoy too (a bead under an epic an "
              "open convoy tracks joins that convoy by itself).")
@click.option("--batch", type=click.Path(),
              help="Create every bead of a YAML/JSON list (- for stdin) in one commit.")
@json_option
def create(title: str | None, bead_type: str, priority: str, description: str | None,
           acceptance: str | None, assignee: str | None, labels: tuple[str, ...],
           parent: str | None, deps: tuple[str, ...], bead_id: str | None, rig: str | None,
           target: str | None, into: str | None, batch: str | None, as_json: bool) -> int:
    """Create a bead and print its id."""
    store = open_store()
    if batch:
        if title:
            raise ConvoyError("give either a TITLE or --batch FILE, not both")
        specs = _read_batch(batch)
    else:
        specs = [edits.BeadSpec(
            title=edits.check_title(title), type=bead_type, priority=priority,
            description=description, acceptance=acceptance, assignee=assignee,
            labels=list(labels), parent=parent, deps=[parse_dep(d) for d in deps],
            id=bead_id, rig=rig, target=target,
        )]
    actor = store.identity()
    made, joined = store.transact(creating.mutation(specs, actor, into), creating.message)
    answers.remember_ref(store)  # the next create may take the quick path (__main__)
    if as_json:
        print_json([bead_json(b) for b in made] if batch else bead_json(made[0]))
    else:
        say_lines(b.id for b in made)
    say_lines(creating.joined_lines(joined), err=True)  # stdout stays the ids: scripts read them
    return 0


@bead.command("show")
@click.argument("ids", nargs=-1, required=True)
@json_option
def show(ids: tuple[str, ...], as_json: bool) -> int:
    """Show beads in full."""
    store = open_store()
    snap = store.snapshot()
    beads = [snap.bead(i) for i in ids]
    if as_json:
        print_json(bead_json(beads[0]) if len(beads) == 1 else [bead_json(b) for b in beads])
        return 0
    for b in beads:
        say_lines(bead_detail(b, _steps(store, snap, b)))
    return 0


def _steps(store: Store, snap: Snapshot, bead: Bead) -> list[tuple[str, str, bool]] | None:
    """The bead's formula steps with what is done; None when it names no formula or the
    formula cannot be read here (the recorded steps are shown instead)."""
    if not bead.formula:
        return None
    from gitconvoy.flow import work

    try:
        formula = work.bound_formula(store, snap, bead)
    except ConvoyError:
        return None
    if formula is None:
        return None
    return [(s.id, s.title, s.done) for s in work.step_states(formula, bead.steps_done)]


@bead.command("list")
@click.option("--status", "-s", "statuses", multiple=True, help="Only these statuses.")
@click.option("--type", "-t", "types", multiple=True, help="Only these types.")
@click.option("--assignee", help="Only beads of this assignee.")
@click.option("--label", "-l", "labels", multiple=True, help="Only beads with every label.")
@click.option("--parent", help="Only children of this epic.")
@click.option("--all", "show_all", is_flag=True, help="Include deleted (tombstone) beads.")
@json_option
def list_beads(statuses: tuple[str, ...], types: tuple[str, ...], assignee: str | None,
               labels: tuple[str, ...], parent: str | None, show_all: bool,
               as_json: bool) -> int:
    """List beads, filtered."""
    for s in statuses:
        edits.check_choice(s, BEAD_STATUSES, "status")
    for t in types:
        edits.check_choice(t, BEAD_TYPES, "bead type")
    store = open_store()
    snap = store.snapshot()
    warnings = _warnings(snap)
    ordered = sorted(snap.beads.values(), key=graph.sort_key)
    query = readout.ListQuery(statuses, types, assignee, labels, parent, show_all)
    output = readout.list_output(warnings, ordered, query, as_json)
    plain = output if query == readout.ListQuery() and not as_json else None
    answers.remember(store, "beads", snap, ordered, lambda: (plain or readout.list_output(
        warnings, ordered, readout.ListQuery(), False)).texts())
    print_read(output)
    return 0


@bead.command("update")
@click.argument("bead_id")
@click.option("--title")
@click.option("--type", "-t", "bead_type")
@click.option("--status", "-s", help=f"One of {', '.join(BEAD_STATUSES)}.")
@click.option("--priority", "-p")
@click.option("--description", "-d")
@click.option("--acceptance")
@click.option("--assignee", "-a")
@click.option("--label", "-l", "add_labels", multiple=True, help="Add a label (repeatable).")
@click.option("--remove-label", "remove_labels", multiple=True, help="Remove a label.")
@click.option("--parent", help="Move under this epic ('' to detach).")
@click.option("--rig")
@click.option("--target", callback=branch_value)
@click.option("--reason", help="Close reason, with --status closed.")
@json_option
def update(bead_id: str, as_json: bool, **options: Any) -> int:
    """Change fields of a bead."""
    fields = {k: v for k, v in options.items() if v not in (None, ())}
    fields = {("type" if k == "bead_type" else k): v for k, v in fields.items()}
    if not fields:
        raise ConvoyError("nothing to update: give at least one option (see --help)")
    store = open_store()
    summary = ", ".join(f"{k} {v if not isinstance(v, tuple) else ','.join(v)}"
                        for k, v in fields.items())
    joined: list[tuple[str, str]] = []

    def mutate(tx: Tx) -> Any:
        moved = edits.update_bead(tx, bead_id, **dict(fields))
        if fields.get("parent"):  # moved under a tracked epic: the convoy takes it in
            joined[:] = convoys.track_grown(tx, [moved])
        return moved

    updated = store.transact(mutate, f"bead update {bead_id}: {summary}")
    if as_json:
        print_json(bead_json(updated))
    else:
        say(f"updated {bead_id}")
    for convoy_id, joiner in joined:
        say(f"{joiner} joins convoy {convoy_id}: the next feed hands it out", err=True)
    return 0


def _each(ids: tuple[str, ...], verb: str, apply: Any, past: str) -> int:
    store = open_store()
    done = store.transact(
        lambda tx: [apply(tx, i) for i in ids],
        f"bead {verb} {' '.join(ids)}",
    )
    say_lines(f"{past} {b.id}" for b in done)
    return 0


@bead.command("close")
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason", "-r", help="Why it is closed.")
def close(ids: tuple[str, ...], reason: str | None) -> int:
    """Close beads (sets closed_at and the reason)."""
    return _each(ids, "close", lambda tx, i: edits.close_bead(tx, i, reason), "closed")


@bead.command("reopen")
@click.argument("ids", nargs=-1, required=True)
def reopen(ids: tuple[str, ...]) -> int:
    """Reopen closed beads."""
    return _each(ids, "reopen", edits.reopen_bead, "reopened")


@bead.command("delete")
@click.argument("ids", nargs=-1, required=True)
def delete(ids: tuple[str, ...]) -> int:
    """Delete beads (a tombstone keeps the id from coming back through a merge)."""
    return _each(ids, "delete", edits.delete_bead, "deleted")


@click.command()
@json_option
@click.option("--limit", "-n", type=int, default=0, help="At most this many.")
def ready(as_json: bool, limit: int) -> int:
    """Beads that can be started now: open, slingable, nothing open blocks them."""
    store = open_store()
    snap = store.snapshot()
    warnings = _warnings(snap)
    found = graph.ready_beads(snap.beads)
    plain = readout.ready_output(warnings, found, False)
    answers.remember(store, "ready", snap, found, plain.texts)
    print_read(plain if not (as_json or limit) else
               readout.ready_output(warnings, found[:limit] if limit else found, as_json))
    return 0


@click.command()
@json_option
def blocked(as_json: bool) -> int:
    """Beads that cannot start, and what blocks each."""
    store = open_store()
    snap = store.snapshot()
    warnings = _warnings(snap)
    found = graph.blocked_beads(snap.beads)
    plain = readout.blocked_output(warnings, found, False)
    answers.remember(store, "blocked", snap, [b for b, _ in found], plain.texts,
                     readout.blocker_rows(found))
    print_read(plain if not as_json else readout.blocked_output(warnings, found, as_json))
    return 0


def _warnings(snap: Snapshot) -> list[str]:
    return readout.warning_lines([exc.message for exc in snap.errors])


def print_read(output: readout.Output) -> None:
    """Print what a read found (gitconvoy.__main__ writes the same text on the warm path)."""
    say_lines(output.warnings, err=True)
    if output.data is not None:
        print_json(output.data)
    else:
        say_lines(output.lines)
    say_lines(output.after, err=True)
