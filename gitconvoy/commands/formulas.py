"""`git convoy formula list|show`: which formulas are visible, and where from."""

from __future__ import annotations

import click

from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines
from gitconvoy.git import formulas as engine
from gitconvoy.git import localconfig
from gitconvoy.state.store import Store


def _branch(store: Store, branch: str | None) -> str | None:
    """Project formulas are read from this branch: --branch, else the trusted branch
    (convoy.configRef), the one the review gate reads them from."""
    return branch or localconfig.config_ref(store).branch


branch_option = click.option("--branch", help="Read .convoy/formulas/ from this branch "
                                              "(default: convoy.configRef, the branch the "
                                              "review gate trusts).")


@click.group("formula")
def formula_group() -> None:
    """Formulas (*.formula.toml): project, then user (~/.config/gitconvoy/formulas), then
    built-in."""


@formula_group.command("list")
@branch_option
@json_option
def list_formulas(branch: str | None, as_json: bool) -> int:
    """Every visible formula and the place that wins for its name."""
    store = open_store()
    found = engine.available(store, _branch(store, branch))
    if as_json:
        print_json([{"formula": n, "origin": o, "source": s} for n, o, s in found])
        return 0
    for name, origin, source in found:
        say(f"{name:<32} {origin:<8} {source}")
    return 0


@formula_group.command("show")
@click.argument("name")
@branch_option
@json_option
def show(name: str, branch: str | None, as_json: bool) -> int:
    """A formula's vars and steps, as resolved."""
    store = open_store()
    formula = engine.load(name, store, _branch(store, branch))
    if as_json:
        print_json(formula.to_json())
        return 0
    say(f"{formula.name} v{formula.version} ({formula.type}) from {formula.origin}: "
        f"{formula.source}")
    if formula.description:
        say_lines(f"  {line}" for line in formula.description.rstrip("\n").split("\n"))
    for var in formula.vars.values():
        flag = "required" if var.required else f"default {var.default!r}"
        say(f"  var {var.name} ({flag}): {var.description}")
    for step in formula.steps:
        needs = f" (needs {', '.join(step.needs)})" if step.needs else ""
        say(f"  step {step.id}: {step.title}{needs}")
        if step.run:
            say(f"    run: {step.run}")
    return 0


formula = formula_group
