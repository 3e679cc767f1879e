"""Bead and convoy ids: `<prefix>-<base36 hash>`, long enough to keep collisions rare."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Container

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 36)
        chars.append(_ALPHABET[rem])
    return "".join(chars)


def id_length(count: int) -> int:
    """Grow with the population: keep the chance that a new id meets an old one under ~1/1000."""
    return max(4, math.ceil(math.log(max(count, 1) * 1000, 36)))


def new_id(prefix: str, seed: str, taken: Container[str], count: int,
           salt: str | None = None) -> str:
    """A fresh id; a random salt makes two writers with the same title diverge. A given
    `salt` makes it repeatable (an import: the dry run shows the ids the import makes);
    CONVOY_ID_SALT pins it for reproducible tests, as CONVOY_NOW pins the time."""
    length = id_length(count)
    if salt is None:
        salt = os.environ.get("CONVOY_ID_SALT") or os.urandom(8).hex()
    for attempt in range(1000):
        digest = hashlib.sha256(f"{seed}\0{salt}\0{attempt}".encode()).digest()
        candidate = f"{prefix}-{_base36(int.from_bytes(digest[:16], 'big'), length)}"
        if candidate not in taken:
            return candidate
        if attempt % 10 == 9:
            length += 1
    raise RuntimeError("could not find a free id")  # pragma: no cover - 36**4 ids per length
