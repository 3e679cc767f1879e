"""`git convoy work` and `git convoy step done|list`: a worker's start and its formula's steps
(docs/workers.md). Parsing and printing only; the work is gitconvoy.flow.work."""

from __future__ import annotations

import click

from gitconvoy.commands.io import (
    json_option,
    open_store,
    pretty_option,
    print_json,
    say,
    say_lines,
)
from gitconvoy.flow import work as engine
from gitconvoy.render.brief import brief_lines, prompt_lines

FORMATS = ("text", "json", "prompt")


@click.command()
@click.argument("bead_id", metavar="BEAD")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="The brief for a person, a program or an agent.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@pretty_option
@click.option("--print-path", is_flag=True,
              help="Print only the worktree's path (for cd \"$(…)\").")
def work(bead_id: str, fmt: str, as_json: bool, print_path: bool) -> int:
    """Prepare a worker for BEAD: its worktree on the bead's branch (made, or the one that
    has it checked out), the start recorded (hooked → in_progress), and the brief: the
    bead's text, the blockers' landed commits, the formula's steps and what is done.

    A dispatch command for a coding agent:
    cd "$(git convoy work "$CONVOY_BEAD" --print-path)" &&
    git convoy work "$CONVOY_BEAD" --format prompt | my-agent"""
    store = open_store()
    brief = engine.prepare(store, bead_id)
    if print_path:
        say(brief.worktree or "")
        return 0
    data = brief.to_json()
    if as_json or fmt == "json":
        print_json(data)
    elif fmt == "prompt":
        say_lines(prompt_lines(data))
    else:
        say_lines(brief_lines(data))
    return 0


@click.group("step")
def step_group() -> None:
    """A bead's formula steps: record each as the work goes ('done' warns about the rest)."""


@step_group.command("done")
@click.argument("bead_id", metavar="BEAD")
@click.argument("step_id", metavar="STEP")
@json_option
def step_done(bead_id: str, step_id: str, as_json: bool) -> int:
    """Record STEP of BEAD's formula as done."""
    recorded = engine.record_step(open_store(), bead_id, step_id)
    if recorded.waiting:
        say(f"warning: {bead_id}: step {step_id} needs {', '.join(recorded.waiting)}, not "
            "recorded as done yet", err=True)
    if as_json:
        print_json({"bead": recorded.bead, "step": recorded.step, "new": recorded.new,
                    "waiting": recorded.waiting, "left": recorded.left})
        return 0
    again = "" if recorded.new else " (already recorded)"
    rest = (f"; left: {', '.join(recorded.left)}" if recorded.left
            else f"; every step is done: 'git convoy done {bead_id}' when it is committed")
    say(f"{bead_id}: step {step_id} done{again}{rest}")
    return 0


@step_group.command("list")
@click.argument("bead_id", metavar="BEAD")
@json_option
def step_list(bead_id: str, as_json: bool) -> int:
    """BEAD's formula steps and which are done (✓ done, ▶ next, · waiting)."""
    store = open_store()
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    formula = engine.bound_formula(store, snap, bead)
    steps = engine.step_states(formula, bead.steps_done) if formula else []
    if as_json:
        print_json({"bead": bead.id, "formula": formula.name if formula else None,
                    "steps": [s.to_json() for s in steps]})
        return 0
    if formula is None:
        say(f"{bead.id} has no formula")
        return 0
    say(f"{bead.id}: formula {formula.name}, {sum(s.done for s in steps)}/{len(steps)} done")
    width = max((len(s.id) for s in steps), default=0)
    for s in steps:
        mark = "✓" if s.done else ("▶" if s.ready else "·")
        say(f"  {mark} {s.id:<{width}}  {s.title}")
    return 0


step = step_group
