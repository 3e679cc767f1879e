"""A transaction's view: the base snapshot plus its own writes, recorded as file changes for
one commit. Every object put is read back through the schema first."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from gitconvoy.errors import ConvoyError
from gitconvoy.state import model
from gitconvoy.state.codec import dump_yaml
from gitconvoy.state.layout import KIND_OF_CLASS, KINDS, MAX_FILE_BYTES, object_path
from gitconvoy.state.snapshot import Snapshot


class Overlay(MutableMapping[str, Any]):
    """One kind's objects as a transaction sees them: the base snapshot plus its own writes.

    Single lookups stay lazy (one file each); iterating merges everything once.
    """

    def __init__(self, base: Snapshot, kind: str) -> None:
        self._base = base
        self._kind = kind
        self._local: dict[str, Any] = {}
        self._gone: set[str] = set()
        self._merged: dict[str, Any] | None = None

    def _full(self) -> dict[str, Any]:
        if self._merged is None:
            merged = dict(self._base.objects.get(self._kind, {}))
            for key in self._gone:
                merged.pop(key, None)
            merged.update(self._local)
            self._merged = merged
        return self._merged

    def __getitem__(self, key: str) -> Any:
        if self._merged is not None:
            return self._merged[key]
        if key in self._local:
            return self._local[key]
        found = None if key in self._gone else self._base.lookup(self._kind, key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        self._local[key] = value
        self._gone.discard(key)
        if self._merged is not None:
            self._merged[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._local.pop(key, None)
        self._gone.add(key)
        if self._merged is not None:
            self._merged.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())

    def keys(self) -> Any:  # type: ignore[override]
        return self._full().keys()

    def values(self) -> Any:  # type: ignore[override]
        return self._full().values()

    def items(self) -> Any:  # type: ignore[override]
        return self._full().items()

    def count(self) -> int:
        """The number of objects, without loading them when nothing was iterated yet."""
        if self._merged is not None:
            return len(self._merged)
        return self._base.count(self._kind) + len(self._local) - len(self._gone)


class Tx:
    """A mutable view over a snapshot; records file writes for one commit."""

    def __init__(self, base: Snapshot) -> None:
        self.base = base
        self.config = base.config
        self.objects: dict[str, Overlay] = {name: Overlay(base, name) for name in KINDS}
        self.changes: dict[str, bytes | None] = {}
        self.notes: list[str] = []

    @property
    def beads(self) -> Overlay:
        return self.objects["beads"]

    @property
    def convoys(self) -> Overlay:
        return self.objects["convoys"]

    def view(self) -> Snapshot:
        """A snapshot-shaped view including this transaction's writes (for graph checks)."""
        return Snapshot(self.base.commit, self.base.tree, self.config, dict(self.objects),
                        errors_from=self.base)

    def bead(self, bead_id: str) -> model.Bead:
        found = self.beads.get(bead_id)  # the common case, without building a view
        return found if found is not None else self.view().bead(bead_id)

    def convoy(self, convoy_id: str) -> model.Convoy:
        return self.view().convoy(convoy_id)

    def put(self, obj: Any) -> None:
        """Record an object; it is read back through the schema first, so a transaction can
        never write a file that every later read would reject."""
        kind = KIND_OF_CLASS[type(obj)]
        path = object_path(kind, obj.id)
        data = obj.to_dict()
        KINDS[kind].cls.from_dict(data, path)
        self.objects[kind][obj.id] = obj
        self.changes[path] = _capped(path, dump_yaml(data))

    def remove(self, kind: str, obj_id: str) -> None:
        self.objects[kind].pop(obj_id, None)
        self.changes[object_path(kind, obj_id)] = None

    def put_config(self, config: model.Config) -> None:
        self.config = config
        self.changes["convoy.yaml"] = _capped("convoy.yaml", dump_yaml(config.to_dict()))


def _capped(path: str, data: bytes) -> bytes:
    """Every clone refuses to read a state file over the cap: never write one."""
    if len(data) > MAX_FILE_BYTES:
        raise ConvoyError(f"{path} would be {len(data)} bytes, over the cap of "
                          f"{MAX_FILE_BYTES} bytes for one state file; nothing was written")
    return data
