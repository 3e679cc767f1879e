"""`bead create` without click or pygit2: the quick create.

`answer(argv)` writes the bead and returns the texts to print (stderr, stdout, stderr), or
None, and None always means "run the full CLI" with nothing written. It takes the plain
forms of `bead create TITLE` (the options below, spelled as click accepts them) when the
state ref's name and the identity config are remembered for this worktree
(gitconvoy.state.reffiles), and runs the very transaction the full command runs
(gitconvoy.plan.creating) through gitconvoy.state.quickwrite, which gives up (Unsure)
before writing whenever the store would have to read more than single files. A user
mistake (a bad type, an unknown parent) also goes to the full CLI, whose messages stay the
only ones.
"""

from __future__ import annotations

from gitconvoy.commands.argwords import FLAG, MANY, TEXT, read_options
from gitconvoy.state import reffiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OPTIONS: dict[str, tuple[str, str]] = {
    "--type": ("type", TEXT), "-t": ("type", TEXT),
    "--priority": ("priority", TEXT), "-p": ("priority", TEXT),
    "--description": ("description", TEXT), "-d": ("description", TEXT),
    "--acceptance": ("acceptance", TEXT),
    "--assignee": ("assignee", TEXT), "-a": ("assignee", TEXT),
    "--label": ("labels", MANY), "-l": ("labels", MANY),
    "--parent": ("parent", TEXT), "--dep": ("deps", MANY), "--id": ("id", TEXT),
    "--rig": ("rig", TEXT), "--convoy": ("into", TEXT), "--json": ("as_json", FLAG),
}


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The options and title of a plain `bead create TITLE …`, else None."""
    if argv[:2] != ["bead", "create"]:
        return None
    titles: list[str] = []
    options = read_options(argv[2:], OPTIONS, titles)
    if options is None:
        return None  # --batch, --target, --help, a typo: click says or does it
    if len(titles) != 1:
        return None
    options["title"] = titles[0]
    return options


def answer(argv: list[str], start: str | None = None) -> tuple[str, str, str] | None:
    """Create the bead and return what to print, or None (nothing written): the full CLI."""
    import os

    if os.environ.get("CONVOY_FAULT"):
        return None  # crash tests aim at the store's own fault points
    options = parse(list(argv))
    if options is None:
        return None
    found = reffiles.state_entry(start)
    if found is None:
        return None
    place, remembered, commit = found

    from gitconvoy.errors import ConvoyError
    from gitconvoy.plan import creating, edits
    from gitconvoy.state import quickwrite
    from gitconvoy.state.objectfiles import Unsure

    as_json = options.pop("as_json", False)
    into = options.pop("into", None)
    try:
        spec = edits.BeadSpec(
            title=edits.check_title(options.pop("title")),
            type=options.pop("type", "task"), priority=options.pop("priority", "2"),
            labels=list(options.pop("labels", ())),
            deps=[edits.parse_dep(d) for d in options.pop("deps", ())], **options)
        made, joined = quickwrite.transact(
            place, remembered, commit,
            creating.mutation([spec], quickwrite.actor(remembered), into), creating.message)
    except (ConvoyError, Unsure, KeyError):
        return None
    try:
        return "", *_texts(made, joined, as_json)
    except Exception:  # written: the full CLI now would create a second bead
        return "", "".join(f"{b.id}\n" for b in made), ""


def _texts(made: list[Any], joined: list[tuple[str, str]], as_json: bool) -> tuple[str, str]:
    """stdout and stderr as the full command prints them (commands.beads.create)."""
    from gitconvoy.plan import creating
    from gitconvoy.render.text import inert

    if as_json:
        from gitconvoy.render.shapes import bead_json, json_text

        out = json_text(bead_json(made[0]), pretty=False) + "\n"
    else:
        out = "".join(inert(b.id) + "\n" for b in made)
    return out, "".join(inert(line) + "\n" for line in creating.joined_lines(joined))
