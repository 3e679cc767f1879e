"""The documented JSON shapes (docs/json.md): every key always present, null when unset."""

from __future__ import annotations

import re
from typing import Any

from gitconvoy.state.model import Bead, Convoy

# What json.dumps(ensure_ascii=False) leaves raw that a terminal acts on (it escapes only
# C0): DEL, C1 controls, line/paragraph separators, bidi overrides, lone surrogates.
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(data: Any, *, pretty: bool = False) -> str:
    """JSON that parses to exactly `data` and is inert on a terminal: readable non-ASCII
    stays as it is, every control character is a \\u escape. Compact (no spaces, one line)
    unless `pretty`, which indents by two."""
    import json  # here: a read that prints text (a cold `ready`) never loads it

    if pretty:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def bead_json(bead: Bead) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Bead.ORDER:
        out[name] = getattr(bead, name)
    out["deps"] = [d.to_dict() for d in bead.deps]  # "inferred": true only when it is
    out["labels"] = list(bead.labels)
    out["dispatch"] = dict(bead.dispatch)
    out["formula_vars"] = dict(bead.formula_vars)
    out["steps_done"] = list(bead.steps_done)
    return out


def convoy_json(convoy: Convoy) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(convoy, name) for name in Convoy.ORDER}
    out["tracks"] = list(convoy.tracks)
    out["warnings"] = list(convoy.warnings)
    return out
