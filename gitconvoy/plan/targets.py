"""Where a bead's work runs and lands: its rig and its target branch (pure).

Target precedence (docs/decisions.md): the nearest ancestor epic's integration branch, then
the bead's own `target`, then the convoy's target, then its rig's target. An explicit
`--target` on a command beats all of these at the call site.
"""

from __future__ import annotations

from gitconvoy.plan.graph import Beads
from gitconvoy.state.model import Bead, Config, Convoy, Rig

# On a sub-epic: its tasks land on its parent's branch by choice (`integration: false` in a
# PRD or plan, or `integration create` never wanted), so stage does not warn about it.
NO_INTEGRATION = "integration:none"


def integration_ancestor(beads: Beads, bead: Bead) -> Bead | None:
    """The nearest ancestor epic that has an integration branch."""
    seen = {bead.id}
    parent_id = bead.parent
    while parent_id and parent_id not in seen:
        seen.add(parent_id)
        parent = beads.get(parent_id)
        if parent is None:
            return None
        if parent.integration_branch:
            return parent
        parent_id = parent.parent
    return None


def rig_for(config: Config, bead: Bead, convoy: Convoy | None = None) -> Rig | None:
    """The bead's rig, else the convoy's, else the rig owning the id prefix, else the default
    rig, else the only rig there is."""
    for name in (bead.rig, convoy.rig if convoy else None):
        if name and name in config.rigs:
            return config.rigs[name]
    prefix = bead.id.split("-", 1)[0]
    for rig in config.rigs.values():
        if prefix in rig.prefixes:
            return rig
    if config.default_rig in config.rigs:
        return config.rigs[config.default_rig]
    if len(config.rigs) == 1:
        return next(iter(config.rigs.values()))
    return None


def target_for(
    beads: Beads, config: Config, bead: Bead, convoy: Convoy | None = None
) -> str | None:
    holder = integration_ancestor(beads, bead)
    if holder is not None:
        return holder.integration_branch
    if bead.target:
        return bead.target
    if convoy is not None and convoy.target:
        return convoy.target
    rig = rig_for(config, bead, convoy)
    return rig.target if rig else None
