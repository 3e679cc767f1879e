"""`git convoy sync` and `git convoy merge-driver` (the git merge driver for state files)."""

from __future__ import annotations

import contextlib
import os

import click

from gitconvoy.commands.io import open_store, say
from gitconvoy.errors import ConvoyError
from gitconvoy.state.store import Store


@click.command()
@click.argument("remote", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when all went well.")
@click.option("--no-feed", is_flag=True, help="Do not run the feeder after new state came in.")
@click.option("--skip", "skip", multiple=True, metavar="COMMIT",
              help="Merge the remote's state without this refused commit's changes "
                   "(repeatable; docs/sync.md).")
def sync(remote: str | None, quiet: bool, no_feed: bool, skip: tuple[str, ...]) -> int:
    """Fetch, merge and push the state ref (REMOTE: convoy.remote, upstream, or origin).

    With hooks installed, new state from the remote runs one feeder step, as a hook would:
    sync moves the local ref in memory, which fires no git hook. A remote commit that breaks
    the state's shape is refused; --skip COMMIT merges around it and pushes the repair."""
    from gitconvoy.git.sync import sync as run_sync

    store = open_store(adopt=False)  # sync adopts, and reports it
    report = run_sync(store, remote, skip=_skipped(store, remote, skip))
    for note in report.notes:
        say(f"note: {note}", err=True)
    if not quiet:
        say(report.summary())
    if report.action in ("fast-forward", "merged", "adopted") and not no_feed:
        from gitconvoy.git.watch import read_watch

        if read_watch(store):  # hooks are installed: the user wants the feeder driven
            from gitconvoy.hookrun import run_hook

            for line in run_hook("sync", []):
                if not quiet:
                    say(f"feed: {line}")
            if store.state_commit() != report.commit:  # the feeder wrote: share that too
                again = run_sync(store, report.remote)
                if not quiet:
                    say(again.summary())
    return 0


def _skipped(store: Store, remote: str | None, revs_: tuple[str, ...]) -> set[str]:
    """The commits --skip names (abbreviated ids as the refusal prints them), fetched first."""
    if not revs_:
        return set()
    from gitconvoy.git import gitcli, revs
    from gitconvoy.git.sync import QUIET_HOOKS, check_remote, private_ref

    name = remote or revs.default_remote(store)
    check_remote(store, name)
    gitcli.fetch_ref(store.common_dir, name, store.ref, private_ref(name), QUIET_HOOKS)
    found = set()
    for rev in revs_:
        commit = revs.resolve_commit(store, rev)
        if commit is None:
            raise ConvoyError(f"--skip {rev}: no such commit here; give the commit that "
                              "'git convoy sync' refused")
        found.add(commit)
    return found


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConvoyError(f"merge-driver: cannot read {path}: {exc.strerror}") from None


@click.command("merge-driver")
@click.argument("base_file")
@click.argument("ours_file")
@click.argument("theirs_file")
@click.argument("path", required=False, default="")
def merge_driver(base_file: str, ours_file: str, theirs_file: str, path: str) -> int:
    """Merge one state file field by field: git config merge.convoy.driver
    'git convoy merge-driver %O %A %B %P'. Writes the result to %A; exit 1 leaves a conflict."""
    from gitconvoy.state.merge import Unmergeable, merge_file

    name = path or ours_file
    refused = _driver_refusal(path, {"base": base_file, "ours": ours_file,
                                     "theirs": theirs_file})
    if refused:
        say(f"warning: git convoy merge-driver: {refused}; left as a conflict", err=True)
        return 1
    base, ours, theirs = (_read(p) for p in (base_file, ours_file, theirs_file))
    try:
        result = merge_file(name, base or None, ours or None, theirs or None)
    except Unmergeable as exc:
        say(f"warning: git convoy merge-driver: {exc.message}; left as a conflict",
            err=True)
        return 1
    if result.extra:
        say(
            f"warning: git convoy merge-driver: {name}: {result.notes[0]}; a file merge cannot "
            "rename it, run 'git convoy sync' (or merge with it) instead; left as a conflict",
            err=True,
        )
        return 1
    with open(ours_file, "wb") as fh:
        fh.write(result.data or b"")
    _mark_feed_due()
    for note in result.notes:
        say(f"note: {note}", err=True)
    return 0


def _driver_refusal(path: str, files: dict[str, str]) -> str | None:
    """What the driver can check of an untrusted merge (it sees one file, never the tree):
    the path has a place in the state's layout and no side is over the per-file cap (each
    is measured before it is read)."""
    from gitconvoy.state import shape

    if path:
        problem = shape.path_problem(path)
        if problem:
            return problem
    for side, file in files.items():
        try:
            size = os.path.getsize(file)
        except OSError:
            continue  # _read names it
        if size > shape.MAX_FILE_BYTES:
            return (f"{path or file}: {side} is {size} bytes, over the cap of "
                    f"{shape.MAX_FILE_BYTES} bytes for one state file")
    return None


def _mark_feed_due() -> None:
    """The state changed under a git merge: the next hook runs the feeder (DESIGN §6)."""
    from gitconvoy.git.watch import mark_feed_due

    with contextlib.suppress(ConvoyError):  # outside a repository there is nothing to mark
        mark_feed_due(open_store().common_dir)
