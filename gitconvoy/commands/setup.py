"""`git convoy init`: create the state ref."""

from __future__ import annotations

import re

import click

from gitconvoy.commands.io import say
from gitconvoy.errors import ConvoyError
from gitconvoy.git import revs, sync
from gitconvoy.state.model import Config
from gitconvoy.state.store import Store

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@click.command()
@click.option("--prefix", default="cv", show_default=True, help="Prefix of new bead ids.")
def init(prefix: str) -> int:
    """Create the state ref (an orphan branch holding convoy.yaml)."""
    if not _PREFIX_RE.match(prefix):
        raise ConvoyError(
            f"prefix {prefix!r} is not valid: use 1–16 lower-case letters and digits, "
            "starting with a letter"
        )
    store = Store.open()  # not open_store(): adopting the remote's state is reported here
    if store.exists():
        say(f"{store.ref} already exists; nothing to do")
        return 0
    adopted = sync.adopt_remote_state(store)
    if adopted:
        say(f"took {revs.default_remote(store)}'s state: {store.ref} at {adopted[:10]}")
        return 0
    commit = store.initialise(Config(prefix=prefix))
    say(f"initialised {store.ref} at {commit[:10]} (prefix {prefix})")
    return 0
