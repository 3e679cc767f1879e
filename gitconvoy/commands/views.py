"""`git convoy diff`: what changed between two commits of the state branch, in words.

Reads go through Store.changed_files, which diffs the two trees and parses only the files
that differ, so a review of a few changes costs the same at 100 or 10,000 beads.
"""

from __future__ import annotations

import click

from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines, say_text
from gitconvoy.errors import ConvoyError
from gitconvoy.git import revs
from gitconvoy.render.markdown import diff_markdown
from gitconvoy.state.statediff import diff_files
from gitconvoy.state.store import Store


def _commit(store: Store, rev: str) -> str:
    """A revision of the state branch as a commit id; '' means the state ref itself."""
    if not rev:
        found = store.state_commit()
        if found is None:
            raise ConvoyError(f"no gitconvoy state in this repository ({store.ref} does not "
                              "exist): run 'git convoy init' or name both revisions")
        return found
    found = revs.resolve_commit(store, rev)
    if found is None:
        raise ConvoyError(f"unknown revision '{rev}': expected a commit of the state branch "
                          "(e.g. convoy/state~1, origin/convoy/state, a commit id)")
    if not store.is_state_commit(found):
        raise ConvoyError(f"revision '{rev}' ({found[:7]}) is not a gitconvoy state commit: "
                          "it has no convoy.yaml at its root")
    return found


def resolve_range(store: Store, spec: str | None) -> tuple[str | None, str, str]:
    """(before, after, label) of `A..B`, `A...B` (from their merge base), `A` (A..the state
    ref) or nothing (the state ref's last change). An empty side is the state ref."""
    if spec is None:
        after = _commit(store, "")
        name = store.ref.removeprefix("refs/heads/")
        parent = revs.first_parent(store, after)
        return parent, after, f"{name}~1..{name}" if parent else f"(empty)..{name}"
    if "..." in spec:
        left, _, right = spec.partition("...")
        one, two = _commit(store, left), _commit(store, right)
        base = revs.merge_base(store, one, two)
        if base is None:
            raise ConvoyError(f"'{left or store.ref}' and '{right or store.ref}' have no "
                              "common history: use A..B to compare them directly")
        return base, two, spec
    if ".." in spec:
        left, _, right = spec.partition("..")
        return _commit(store, left), _commit(store, right), spec
    return _commit(store, spec), _commit(store, ""), \
        f"{spec}..{store.ref.removeprefix('refs/heads/')}"


@click.command()
@click.argument("revs", required=False, metavar="[A..B | A...B | A]")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]),
              default="text", show_default=True, help="markdown suits a PR comment.")
@json_option
def diff(revs: str | None, fmt: str, as_json: bool) -> int:
    """Say in words what changed between two commits of the state branch.

    A..B compares two commits (convoy/state~3..convoy/state, origin/convoy/state..HEAD);
    A...B starts from their merge base (what a pull request adds); A alone means A..the
    state ref; nothing means the state ref's last change. Nothing is written.
    """
    if as_json:  # --json on every read, as the README says: the same as --format json
        fmt = "json"
    store = open_store()
    before, after, label = resolve_range(store, revs)
    result = diff_files(before, after, store.changed_files(before, after))
    span = f"{before[:7] if before else '(empty)'}..{after[:7]}"
    if fmt == "json":
        print_json({"range": label, **result.to_json()})
    elif fmt == "markdown":
        say_text(diff_markdown(result, f"{label}" + (f" ({span})" if label != span else "")))
    elif not result.events:
        say(f"no state changes in {label} ({span})")
    else:
        say_lines(e.text() for e in result.events)
    return 0
