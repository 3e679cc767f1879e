"""`git convoy init`: create the state ref."""

from __future__ import annotations

import re

import click

from gitconvoy import __version__
from gitconvoy.commands.io import say
from gitconvoy.errors import ConvoyError, NewerSchema
from gitconvoy.git import revs, sync
from gitconvoy.state.model import Config
from gitconvoy.state.store import Store

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@click.command()
@click.option("--prefix", default="cv", show_default=True, help="Prefix of new bead ids.")
@click.option("--repair", is_flag=True,
              help="Restore an unreadable convoy.yaml from the newest commit where it reads.")
def init(prefix: str, repair: bool) -> int:
    """Create the state ref (an orphan branch holding convoy.yaml)."""
    if not _PREFIX_RE.match(prefix):
        raise ConvoyError(
            f"prefix {prefix!r} is not valid: use 1–16 lower-case letters and digits, "
            "starting with a letter"
        )
    store = Store.open()  # not open_store(): adopting the remote's state is reported here
    if repair:
        return _repair(store, prefix)
    if store.exists():
        current = store.snapshot().config.prefix
        asked = click.get_current_context().get_parameter_source("prefix")
        if asked == click.core.ParameterSource.COMMANDLINE and prefix != current:
            raise ConvoyError(f"{store.ref} already exists with prefix {current!r}; init does "
                              f"not change it (new beads keep {current}-…): nothing was done")
        say(f"{store.ref} already exists (prefix {current}); nothing to do")
        return 0
    adopted = sync.adopt_remote_state(store)
    if adopted:
        say(f"took {revs.default_remote(store)}'s state: {store.ref} at {adopted[:10]}")
        return 0
    commit = store.initialise(Config(prefix=prefix))
    say(f"initialised {store.ref} at {commit[:10]} (prefix {prefix})")
    return 0


def _repair(store: Store, prefix: str) -> int:
    """Writes refuse while convoy.yaml is unreadable (docs/state.md): put back the newest
    version in the state's history that reads, or a fresh one with --prefix."""
    problem = store.snapshot().config_problem()
    if problem is None:
        say("convoy.yaml reads fine; nothing to repair")
        return 0
    if isinstance(problem, NewerSchema):
        raise ConvoyError(f"{problem.upgrade_hint(__version__)}; nothing to repair")
    found = store.last_readable_config()
    config = found[1] if found else Config(prefix=prefix)
    origin = f"commit {found[0][:10]}" if found else f"defaults (prefix {prefix})"
    store.transact(lambda tx: tx.put_config(config), f"init --repair: convoy.yaml from {origin}",
                   repairing_config=True)
    say(f"restored convoy.yaml from {origin}: prefix {config.prefix}, "
        f"{len(config.rigs)} rig(s)")
    return 0
