"""`git convoy integration create|status|land <epic>`: parsing and printing only."""

from __future__ import annotations

import click

from gitconvoy import cycle
from gitconvoy.commands.io import json_option, open_store, print_json, say
from gitconvoy.commands.refargs import branch_value
from gitconvoy.land import integration as engine


@click.group("integration")
def integration_group() -> None:
    """Integration branches: an epic's tasks land there, then the epic lands as one."""


@integration_group.command("create")
@click.argument("epic")
@click.option("--base", help="Branch to cut from (default: the epic's target).",
              callback=branch_value)
@click.option("--name", help="Branch name (default: convoy.integration.template, "
                             "integration/{epic}-{slug}).")
@click.option("--all", "every", is_flag=True,
              help="Every sub-epic under EPIC that has children and no branch yet.")
@json_option
def create(epic: str, base: str | None, name: str | None, every: bool, as_json: bool) -> int:
    """Create the epic's integration branch; its tasks are dispatched from it and land on it."""
    if every:
        if base or name:
            raise click.UsageError("--all takes no --base or --name: each sub-epic branches "
                                   "from its own target, named by the template")
        made_all = engine.create_all(open_store(), epic)
        if as_json:
            print_json([{"epic": m.epic, "branch": m.branch, "base": m.base,
                         "commit": m.commit} for m in made_all])
            return 0
        for m in made_all:
            say(f"created {m.branch} from {m.base} @ {m.commit[:10]} for {m.epic}")
        if not made_all:
            say(f"every sub-epic under {epic} already has its branch; nothing to do")
        return 0
    made = engine.create(open_store(), epic, base=base, name=name)
    if as_json:
        print_json({"epic": made.epic, "branch": made.branch, "base": made.base,
                    "commit": made.commit})
    else:
        say(f"created {made.branch} from {made.base} @ {made.commit[:10]} for {epic}")
    return 0


@integration_group.command("status")
@click.argument("epic")
@json_option
def status(epic: str, as_json: bool) -> int:
    """Ahead/behind, children, merged and pending MRs, and whether it is ready to land."""
    store = open_store()
    landed = engine.landed_line(store, epic)
    if landed is not None:
        if as_json:
            print_json({"epic": epic, "landed": True, "detail": landed})
        else:
            say(landed)
        return 0
    st = engine.status(store, epic)
    if as_json:
        print_json(st.to_json())
        return 0
    say(f"{st.branch} → {st.base}: {st.ahead} ahead, {st.behind} behind")
    closed = sum(1 for c in st.children if c["status"] == "closed")
    say(f"children: {closed}/{len(st.children)} closed")
    for child in st.children:
        say(f"  {child['id']:<12} {child['status']:<12} {child['title']}")
    say(f"merged MRs: {', '.join(st.merged) or 'none'}")
    say(f"pending MRs: {', '.join(st.pending) or 'none'}")
    if st.ready:
        say(f"ready to land: git convoy integration land {epic}")
    else:
        for reason in st.reasons:
            say(f"not ready: {reason}")
    return 0


@integration_group.command("land")
@click.argument("epic")
@json_option
def land(epic: str, as_json: bool) -> int:
    """Land the ready integration branch on its base, close the epic, delete the branch."""
    report = cycle.land_epic(open_store(), epic)
    if as_json:
        print_json({"epic": report.epic, "branch": report.branch, "base": report.base,
                    "sha": report.sha, "notes": report.notes, "fed": report.fed})
        return 0
    say(f"landed {report.branch} on {report.base} as {report.sha[:12]}; "
        f"epic {report.epic} closed")
    for note in report.notes:
        say(f"  {note}")
    for line in report.fed:
        say(f"feed: {line}")
    return 0


integration = integration_group
