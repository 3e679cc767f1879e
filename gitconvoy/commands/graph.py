"""`git convoy graph` and `git convoy report`: pictures of a convoy or an epic
(docs/pictures.md)."""

from __future__ import annotations

import click

from gitconvoy import __version__
from gitconvoy.commands.io import open_store, say, say_document, warn_broken
from gitconvoy.errors import ConvoyError
from gitconvoy.plan import graph as plan_graph
from gitconvoy.plan.scope import scope_of
from gitconvoy.render.svg import MAX_BOXES, render_svg
from gitconvoy.state import history
from gitconvoy.state.model import now

max_boxes_option = click.option(
    "--max-boxes", type=click.IntRange(min=0), default=MAX_BOXES, show_default=True,
    help="Above this many beads, sub-epics are folded into one box each; 0 never folds.")


@click.command("graph")
@click.argument("name", metavar="CONVOY|EPIC")
@click.option("--format", "fmt", type=click.Choice(["svg", "mermaid", "dot"]), default="svg",
              show_default=True, help="svg draws it here; mermaid and dot for other tools.")
@max_boxes_option
def graph_cmd(name: str, fmt: str, max_boxes: int) -> int:
    """Draw a convoy or an epic: waves as columns, epics as frames, arrows for blocking deps.

    Prints the picture: git convoy graph CONVOY > plan.svg. mermaid is the graph that
    status --format markdown shows; dot is for Graphviz (dot -Tpng).
    """
    snap = open_store().snapshot()
    warn_broken(snap)
    index = plan_graph.Index(snap.beads)
    scope = scope_of(snap, name, index)
    if fmt == "svg":
        text = render_svg(snap, scope, max_boxes, index=index)
    elif fmt == "dot":
        from gitconvoy.render.dot import render_dot

        text = render_dot(snap, scope, index)
    else:
        from gitconvoy.render.markdown import mermaid_dag

        text = "\n".join(mermaid_dag(snap, scope.members)) + "\n"
    say_document(text)
    return 0


@click.command()
@click.argument("name", metavar="CONVOY|EPIC")
@click.option("--html", "path", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Write the page to FILE ('-' prints it).")
@click.option("--history", "history_limit", type=click.IntRange(min=0), default=20,
              show_default=True, help="How many recent state commits to list.")
@max_boxes_option
def report(name: str, path: str, history_limit: int, max_boxes: int) -> int:
    """Write one self-contained HTML page about a convoy: headline, picture, waves, beads
    and the recent state history. It loads nothing from the network and runs no script."""
    from gitconvoy.render.report import report_html

    store = open_store()
    snap = store.snapshot()
    warn_broken(snap)
    index = plan_graph.Index(snap.beads)
    scope = scope_of(snap, name, index)
    svg = render_svg(snap, scope, max_boxes, standalone=False, index=index)
    changes = history.history(store.repo, snap.commit, scope.members,
                              [scope.id] if scope.kind == "convoy" else [],
                              limit=history_limit) if snap.commit and history_limit else []
    page = report_html(snap, scope, svg, changes, version=__version__, generated=now())
    if path == "-":
        say_document(page)
        return 0
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
    except OSError as exc:
        raise ConvoyError(f"cannot write {path}: {exc.strerror}") from None
    say(f"wrote {path}: {scope.kind} {scope.id}, {len(scope.members)} beads, "
        f"{len(scope.waves.waves)} wave(s) left")
    return 0
