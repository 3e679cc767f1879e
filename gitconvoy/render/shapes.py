"""The documented JSON shapes (docs/json.md): every key always present, null when unset."""

from __future__ import annotations

from typing import Any

from gitconvoy.state.model import Bead, Convoy


def bead_json(bead: Bead) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Bead.ORDER:
        out[name] = getattr(bead, name)
    out["deps"] = [{"on": d.on, "type": d.type} for d in bead.deps]
    out["labels"] = list(bead.labels)
    out["dispatch"] = dict(bead.dispatch)
    return out


def convoy_json(convoy: Convoy) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(convoy, name) for name in Convoy.ORDER}
    out["tracks"] = list(convoy.tracks)
    out["warnings"] = list(convoy.warnings)
    return out
