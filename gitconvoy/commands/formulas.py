"""`git convoy formula list|show|check`: which formulas are visible, where from, and whether
they can be used."""

from __future__ import annotations

import click

from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines
from gitconvoy.errors import ConvoyError
from gitconvoy.git import formulas as engine
from gitconvoy.git import localconfig
from gitconvoy.state.store import Store


def _branch(store: Store, branch: str | None) -> str | None:
    """Project formulas are read from this branch: --branch, else the trusted branch
    (convoy.configRef), the one the review gate and dispatch read them from."""
    return branch or localconfig.config_ref(store).branch


branch_option = click.option("--branch", help="Read .convoy/formulas/ from this branch "
                                              "(default: convoy.configRef, the branch the "
                                              "review gate and dispatch trust).")


@click.group("formula")
def formula_group() -> None:
    """Formulas (*.formula.toml): project, then user (~/.config/gitconvoy/formulas), then
    built-in."""


@formula_group.command("list")
@branch_option
@json_option
def list_formulas(branch: str | None, as_json: bool) -> int:
    """Every visible formula and the place that wins for its name; invalid ones marked."""
    store = open_store()
    found = engine.visible(store, _branch(store, branch))
    problems = {name: v.problem() for name, v in found.items()}
    if as_json:
        print_json([{"formula": v.name, "origin": v.origin, "source": v.source,
                     "valid": problems[v.name] is None, "error": problems[v.name]}
                    for v in found.values()])
        return 0
    for v in found.values():
        mark = f"  INVALID: {problems[v.name]}" if problems[v.name] else ""
        say(f"{v.name:<32} {v.origin:<8} {v.source}{mark}")
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


@formula_group.command("check")
@click.argument("names", nargs=-1)
@branch_option
@json_option
def check(names: tuple[str, ...], branch: str | None, as_json: bool) -> int:
    """Validate formulas: the NAMES given, else every visible file and each rig's default
    formula (convoy.rig.<rig>.formula). Exit 1 when any is invalid."""
    store = open_store()
    found = engine.visible(store, _branch(store, branch))
    rows: list[dict[str, str | None]] = []
    for name in names or list(found):
        v = found.get(name)
        problem = v.problem() if v else _not_found(store, name, branch)
        rows.append({"formula": name, "used_by": None, "source": v.source if v else None,
                     "error": problem})
    if not names:
        rows += _rig_defaults(store)
    if as_json:
        print_json([{**r, "valid": r["error"] is None} for r in rows])
    else:
        for r in rows:
            who = f" (rig {r['used_by']}'s default)" if r["used_by"] else ""
            say(f"{'ok ' if r['error'] is None else 'BAD'} {r['formula']}{who}: "
                f"{r['error'] or r['source']}")
    return 1 if any(r["error"] for r in rows) else 0


def _not_found(store: Store, name: str, branch: str | None) -> str:
    try:
        engine.load(name, store, _branch(store, branch))
    except ConvoyError as exc:
        return exc.message
    return f"formula '{name}' not found"


def _rig_defaults(store: Store) -> list[dict[str, str | None]]:
    """Each rig's default formula, checked as dispatch will use it (a workflow formula)."""
    rows: list[dict[str, str | None]] = []
    for rig in sorted(store.snapshot().config.rigs):
        setting = localconfig.rig_found(store, rig, "formula")
        if not setting.value:
            continue
        try:
            source: str | None = engine.for_worker(store, setting.value, {}).source
            problem = None
        except ConvoyError as exc:
            source, problem = None, exc.message
        rows.append({"formula": setting.value, "used_by": rig, "source": source,
                     "error": problem})
    return rows


formula = formula_group
