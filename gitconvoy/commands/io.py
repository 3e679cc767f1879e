"""What every command needs at its edge: the store, JSON output, warnings about bad files."""

from __future__ import annotations

import json
from typing import Any

import click

from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/json.md).")


def open_store(*, adopt: bool = True) -> Store:
    """The repository's store; a fresh clone first takes the state its remote has (an
    explicit write at the command's edge, so reads below never write). Commands that only
    diagnose or set up (doctor, hooks) pass adopt=False."""
    store = Store.open()
    if adopt and not store.exists():
        from gitconvoy.git import sync

        sync.adopt_remote_state(store)
    return store


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


def warn_broken(snap: Snapshot) -> None:
    """Broken state files do not stop a read: each is named once on stderr."""
    for exc in snap.errors:
        click.echo(f"warning: skipped {exc.message}", err=True)
