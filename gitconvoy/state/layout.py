"""Where each kind of object lives in the state tree, and which class it holds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from gitconvoy.state import model

# One state file: a bead is a few hundred bytes (the title is capped at 500 characters);
# a megabyte of YAML is an attack or a bug, and parsing it costs about a second.
MAX_FILE_BYTES = 1 << 20

# Deeper than any state file (a kind folder, three fan-out levels, the file): a hand-made tree
# nested thousands of levels deep must not exhaust the stack of a read.
MAX_DEPTH = 8

GITATTRIBUTES = (
    "# gitconvoy: state files merge field by field (git convoy merge-driver)\n"
    "*.yaml merge=convoy\n"
)


@dataclass(frozen=True)
class Kind:
    """One folder of the state tree: which class it holds and whether it fans out."""

    folder: str
    cls: Any
    fanout: bool


KINDS: dict[str, Kind] = {
    "beads": Kind("beads", model.Bead, True),
    "convoys": Kind("convoys", model.Convoy, False),
    "mrs": Kind("mrs", model.MergeRequest, False),
    "reviews": Kind("reviews", model.Review, False),
}


KIND_OF_CLASS: dict[type, str] = {k.cls: name for name, k in KINDS.items()}


def register_kind(name: str, cls: Any, fanout: bool = False) -> None:
    """Later capabilities (merge requests, reviews) add their own folders here."""
    KINDS[name] = Kind(name, cls, fanout)
    KIND_OF_CLASS[cls] = name


def object_path(kind: str, obj_id: str) -> str:
    """Where an object lives. Fanned-out kinds nest three levels of 16 folders by a hash of
    the id (`beads/3/f/a/<id>.yaml`), so a one-bead write rewrites four trees of at most 16
    entries plus one small leaf: ~1.5 KB at 10k beads, ~2.4 KB at 100k (docs/state.md)."""
    spec = KINDS[kind]
    if spec.fanout:
        h = hashlib.sha1(obj_id.encode()).hexdigest()
        return f"{spec.folder}/{h[0]}/{h[1]}/{h[2]}/{obj_id}.yaml"
    return f"{spec.folder}/{obj_id}.yaml"


def kind_of_path(path: str) -> str | None:
    head = path.partition("/")[0]
    for name, spec in KINDS.items():
        if spec.folder == head:
            return name
    return None
