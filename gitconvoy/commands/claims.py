"""`git convoy claim` and `git convoy heartbeat`: pull-based work for workers on any clone."""

from __future__ import annotations

import click

from gitconvoy.commands.io import open_store, pretty_option, print_json, say
from gitconvoy.errors import ConvoyError


@click.command()
@click.option("--rig", "rig_name", help="Only beads this rig would run.")
@click.option("--as", "worker", help="Who holds the claim (default: git config user.name).")
@click.option("--json", "as_json", is_flag=True, help="Everything a worker needs, as JSON.")
@pretty_option
def claim(rig_name: str | None, worker: str | None, as_json: bool) -> int:
    """Take the next ready bead atomically and create its work branch.

    With a remote (convoy.remote, else origin) the claim counts only once pushed: a worker
    that loses the push to another clone takes the next bead. Exit 1 when nothing is ready,
    3 when the remote never settles. Keep the claim alive with 'git convoy heartbeat'."""
    from gitconvoy.flow.claims import claim as run_claim

    store = open_store()
    claimed = run_claim(store, worker or store.identity(), rig_name)
    if claimed is None:
        where = f" on rig {rig_name}" if rig_name else ""
        raise ConvoyError(f"nothing ready to claim{where}")
    if as_json:
        print_json(claimed.to_json())
    else:
        say(claimed.line())
    return 0


@click.command()
@click.argument("bead_id", metavar="BEAD")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when all went well.")
def heartbeat(bead_id: str, quiet: bool) -> int:
    """Tell everyone the claim on BEAD is alive (claims expire after convoy.claimTTL
    seconds without one, default 3600)."""
    from gitconvoy.flow.claims import claim_ttl
    from gitconvoy.flow.claims import heartbeat as beat

    store = open_store()
    bead = beat(store, bead_id)
    if not quiet:
        say(f"{bead.id}: heartbeat {bead.dispatch.get('heartbeat')} "
            f"(expires after {claim_ttl(store)}s without another)")
    return 0
