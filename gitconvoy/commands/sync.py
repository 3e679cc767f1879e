"""`git convoy sync` and `git convoy merge-driver` (the git merge driver for state files)."""

from __future__ import annotations

import click

from ..errors import ConvoyError
from .io import open_store


@click.command()
@click.argument("remote", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when all went well.")
def sync(remote: str | None, quiet: bool) -> int:
    """Fetch, merge and push the state ref (REMOTE: convoy.remote, upstream, or origin)."""
    from ..sync import sync as run_sync

    report = run_sync(open_store(), remote)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not quiet:
        click.echo(report.summary())
    return 0


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
    from ..merge import Unmergeable, merge_file

    name = path or ours_file
    base, ours, theirs = (_read(p) for p in (base_file, ours_file, theirs_file))
    try:
        result = merge_file(name, base or None, ours or None, theirs or None)
    except Unmergeable as exc:
        click.echo(f"warning: git convoy merge-driver: {exc.message}; left as a conflict",
                   err=True)
        return 1
    if result.extra:
        click.echo(
            f"warning: git convoy merge-driver: {name}: {result.notes[0]}; a file merge cannot "
            "rename it, run 'git convoy sync' (or merge with it) instead; left as a conflict",
            err=True,
        )
        return 1
    with open(ours_file, "wb") as fh:
        fh.write(result.data or b"")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    return 0
