"""Rig commands: pools of workers with a target branch and a capacity."""

from __future__ import annotations

import re
from dataclasses import replace

import click

from gitconvoy.commands.io import json_option, open_store, print_json, say
from gitconvoy.commands.refargs import branch_value
from gitconvoy.errors import ConvoyError
from gitconvoy.state.model import Rig
from gitconvoy.state.tx import Tx

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


@click.group()
def rig() -> None:
    """Add, change, park and list rigs (pools of workers)."""


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConvoyError(
            f"rig name {name!r} is not valid: letters, digits, '-' and '_', starting with a letter"
        )
    return name


def _edit(name: str, message: str, change: object) -> Rig:
    store = open_store()

    def mutate(tx: Tx) -> Rig:
        config = tx.config
        if name not in config.rigs:
            raise ConvoyError(f"unknown rig '{name}': see 'git convoy rig list'")
        updated = change(config.rigs[name])  # type: ignore[operator]
        tx.put_config(replace(config, rigs={**config.rigs, name: updated}))
        return updated

    return store.transact(mutate, message)


@rig.command("add")
@click.argument("name")
@click.option("--target", default="main", show_default=True, help="Branch its work lands on.",
              callback=branch_value)
@click.option("--capacity", type=click.IntRange(1, 10_000), default=3, show_default=True,
              help="Beads it runs at once.")
@click.option("--strategy", type=click.Choice(["merge", "squash", "ff-only"]), default="merge",
              show_default=True, help="How the refinery lands its work.")
@click.option("--prefix", "prefixes", multiple=True, help="Bead id prefix it owns.")
@click.option("--default", "make_default", is_flag=True, help="Use it when nothing else says.")
@click.option("--dispatch", help="Name of the dispatch command (the command itself lives in "
              "git config convoy.rig.NAME.dispatch or .convoy/config.toml on "
              "convoy.configRef).")
def add(name: str, target: str, capacity: int, strategy: str, prefixes: tuple[str, ...],
        make_default: bool, dispatch: str | None) -> int:
    """Add a rig."""
    _check_name(name)
    store = open_store()

    def mutate(tx: Tx) -> Rig:
        config = tx.config
        if name in config.rigs:
            raise ConvoyError(f"rig '{name}' already exists: use 'git convoy rig update'")
        new = Rig(name=name, target=target, capacity=capacity, strategy=strategy,
                  prefixes=sorted(set(prefixes)), dispatch=dispatch)
        default = name if make_default else config.default_rig
        tx.put_config(replace(config, rigs={**config.rigs, name: new}, default_rig=default))
        return new

    store.transact(mutate, f"rig add {name}: target {target}, capacity {capacity}")
    say(f"rig {name}: target {target}, capacity {capacity}, strategy {strategy}")
    return 0


@rig.command("update")
@click.argument("name")
@click.option("--target", callback=branch_value)
@click.option("--capacity", type=click.IntRange(1, 10_000))
@click.option("--strategy", type=click.Choice(["merge", "squash", "ff-only"]))
@click.option("--prefix", "prefixes", multiple=True, help="Replace the owned prefixes.")
def update(name: str, target: str | None, capacity: int | None, strategy: str | None,
           prefixes: tuple[str, ...]) -> int:
    """Change a rig."""
    changes = {k: v for k, v in (("target", target), ("capacity", capacity),
                                 ("strategy", strategy)) if v is not None}
    if prefixes:
        changes["prefixes"] = sorted(set(prefixes))
    if not changes:
        raise ConvoyError("nothing to update: give --target, --capacity, --strategy or --prefix")
    _edit(name, f"rig update {name}", lambda r: replace(r, **changes))
    say(f"updated rig {name}")
    return 0


@rig.command("park")
@click.argument("name")
def park(name: str) -> int:
    """Stop dispatching to a rig (work in flight goes on)."""
    _edit(name, f"rig park {name}", lambda r: replace(r, parked=True))
    say(f"rig {name} parked")
    return 0


@rig.command("unpark")
@click.argument("name")
def unpark(name: str) -> int:
    """Dispatch to a parked rig again."""
    _edit(name, f"rig unpark {name}", lambda r: replace(r, parked=False))
    say(f"rig {name} unparked")
    return 0


@rig.command("list")
@json_option
def list_rigs(as_json: bool) -> int:
    """List rigs with their load."""
    from gitconvoy.state.model import in_flight

    snap = open_store().snapshot()
    rows = []
    for name in sorted(snap.config.rigs):
        r = snap.config.rigs[name]
        rows.append({"name": name, **r.to_dict(), "prefixes": list(r.prefixes),
                     "in_flight": in_flight(snap.beads, name),
                     "default": snap.config.default_rig == name})
    if as_json:
        print_json(rows)
        return 0
    for row in rows:
        flags = " parked" if row["parked"] else ""
        flags += " default" if row["default"] else ""
        say(f"{row['name']:<12} → {row['target']:<16} {row['in_flight']}/"
            f"{row['capacity']} in flight  {row['strategy']}{flags}")
    return 0
