"""What every command needs at its edge: the store, JSON output, warnings about bad files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from gitconvoy.commands import activity, colour
from gitconvoy.commands.options import PRETTY
from gitconvoy.commands.options import json_option as json_option  # commands take it from here
from gitconvoy.commands.options import pretty_option as pretty_option
from gitconvoy.render.paint import paint
from gitconvoy.render.shapes import json_text
from gitconvoy.render.text import inert, inert_document

if TYPE_CHECKING:  # the store (pygit2) loads only when a command opens it: completion is fast
    from gitconvoy.state.snapshot import Snapshot
    from gitconvoy.state.store import Store


def open_store(*, adopt: bool = True) -> Store:
    """The repository's store; a fresh clone first takes the state its remote has (an
    explicit write at the command's edge, so reads below never write). Commands that only
    diagnose or set up (doctor, hooks) pass adopt=False."""
    from gitconvoy.state.store import Store

    store = Store.open()
    if adopt and not store.exists():
        from gitconvoy.git import sync

        sync.adopt_remote_state(store)
    return store


def print_json(data: Any) -> None:
    """One JSON document in one write: compact unless the command was given --pretty (a
    script reads it as fast as it is written; people ask for indentation)."""
    ctx = click.get_current_context(silent=True)
    pretty = bool(ctx and ctx.meta.get(PRETTY))
    text = json_text(data, pretty=pretty)
    activity.wipe()
    click.echo(text)


def say(line: str = "", *, err: bool = False) -> None:
    """Print one line for people. Whatever the state put into it is made inert: a control
    character (a newline too) shows as a visible escape, so no title, name or branch can
    move the cursor, retitle the terminal or forge a line of its own (docs/views.md). On a
    terminal the line is then coloured (commands/colour.py), by us alone."""
    say_lines([line], err=err)


def say_lines(lines: Iterable[str], *, err: bool = False, coloured: bool = True) -> None:
    """Print lines for people as `say` does, in one write: a list of 100,000 beads is one
    call into the stream, not one per line."""
    shown = [inert(line) for line in lines]
    if not shown:
        return
    activity.wipe()
    if coloured and colour.enabled(err=err):  # click would strip the codes from a pipe
        click.echo("\n".join(paint(line) for line in shown), err=err, color=True)
    else:
        click.echo("\n".join(shown), err=err)


def say_text(text: str) -> None:
    """Print a text built as a whole (markdown) whose fields were escaped where they were
    placed: its own line breaks stand, anything else is made inert."""
    say_lines(text.removesuffix("\n").split("\n"), coloured=False)


def say_document(text: str) -> None:
    """Print a whole document (SVG, dot, HTML, a completion script, a word list) as built:
    its line breaks and tabs stand, any other control character is made inert."""
    activity.wipe()
    click.echo(inert_document(text), nl=False)


def warn_broken(snap: Snapshot) -> None:
    """Broken state files do not stop a read: each is named once on stderr."""
    for exc in snap.errors:
        say(f"warning: skipped {exc.message}", err=True)
