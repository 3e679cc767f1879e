"""Objects as JSON rows: one list of a dataclass's fields in order, type-checked as it
becomes an object again. The read caches (gitconvoy.state.cache, gitconvoy.state.answers)
store rows; this module needs neither pygit2 nor YAML, so a warm read can decode rows
without loading either.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter, itemgetter
from typing import Any

from gitconvoy.state import model

MAX_DEPTH = 32  # deeper free-form values (a bead's dispatch) are re-parsed, not cached

# Fields the model restricts to a fixed set of values (the rest of a row is checked by type).
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("Bead", "type"): frozenset(model.BEAD_TYPES),
    ("Bead", "status"): frozenset(model.BEAD_STATUSES),
    ("Convoy", "status"): frozenset(model.CONVOY_STATUSES),
    ("MergeRequest", "status"): frozenset(model.MR_STATUSES),
    ("Review", "status"): frozenset(model.REVIEW_STATUSES),
}
_DEP_TYPES = frozenset(model.DEP_TYPES)


class CacheMiss(Exception):
    """The file is not a cache this process can serve; the state is parsed instead."""


# --- rows: one JSON list per object, in the dataclass's field order --------------------


def _plain(value: Any, depth: int = 0) -> bool:
    """True for what JSON carries exactly: str, int, bool, None, finite floats, lists and
    str-keyed dicts of those. A date, a tuple or an int key would come back changed."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= MAX_DEPTH:
        return False
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def miss(what: str) -> CacheMiss:
    return CacheMiss(f"cache: {what}")


def _an_int(value: Any) -> int:
    if type(value) is not int:
        raise miss("expected an integer")
    return value


def _a_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise miss("expected a boolean")
    return value


def _str_list(value: Any) -> list[str]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise miss("expected a list of strings")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if type(value) is not dict or (value and not _plain(value)):
        raise miss("expected a plain mapping")
    return value


# Deps are frozen, so equal ones are shared within one load (cleared at each: it stays small).
_DEP_MEMO: dict[tuple[Any, ...], model.Dep] = {}


def _deps(value: Any) -> list[model.Dep]:
    """`[on, type]`, or `[on, type, true]` for an inferred dep (stage --infer-blocks)."""
    if type(value) is not list:
        raise miss("expected a list of deps")
    out = []
    for row in value:
        if type(row) is not list or not 2 <= len(row) <= 3 or type(row[0]) is not str \
                or row[1] not in _DEP_TYPES or (len(row) == 3 and row[2] is not True):
            raise miss("expected [on, type] or [on, type, true]")
        key = tuple(row)
        dep = _DEP_MEMO.get(key)
        if dep is None:
            dep = _DEP_MEMO[key] = model.Dep(*key)
        out.append(dep)
    return out


def _dep_rows(deps: list[model.Dep]) -> list[list[Any]]:
    return [[d.on, d.type, True] if d.inferred else [d.on, d.type] for d in deps]


def _rigs(value: Any) -> dict[str, model.Rig]:
    if type(value) is not dict:
        raise miss("expected a mapping of rigs")
    rigs = {}
    for name, row in value.items():
        rig = shape_of(model.Rig).decode(row)
        if rig.name != name:
            raise miss(f"rig {name!r} holds {rig.name!r}")
        rigs[name] = rig
    return rigs


# What each field annotation of the model means in a row: (decode, encode or None).
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any] | None]] = {
    "int": (_an_int, None),
    "bool": (_a_bool, None),
    "list[str]": (_str_list, None),
    "dict[str, Any]": (_mapping, None),
    "list[Dep]": (_deps, _dep_rows),
    "dict[str, Rig]": (_rigs, lambda rigs: {n: shape_of(model.Rig).encode(r)
                                            for n, r in rigs.items()}),
}


def _one_of(allowed: frozenset[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed or type(value) is not str:
            raise miss("unexpected value")
        return value
    return check


@dataclass(frozen=True)
class Shape:
    """How one model class becomes a row and back. Strings, the bulk of every row, are
    checked in two tight loops; everything else goes through its field's codec."""

    cls: type
    names: tuple[str, ...]
    strings: tuple[int, ...]  # `str`: must be a string
    optional: tuple[int, ...]  # `str | None`
    special: tuple[tuple[int, Callable[[Any], Any]], ...]
    encoders: tuple[tuple[int, Callable[[Any], Any]], ...]
    values: Callable[[Any], tuple[Any, ...]]  # every field of an object, in order, at C speed
    free: tuple[int, ...]  # `dict[str, Any]`: free-form, may hold what JSON cannot carry
    free_values: Callable[[list[Any]], tuple[Any, ...]]  # a row's free-form fields, at C speed

    @classmethod
    def of(cls, model_cls: type) -> Shape:
        strings, optional, special, encoders = [], [], [], []
        for i, f in enumerate(fields(model_cls)):
            annotation = str(f.type)
            enum = ENUMS.get((model_cls.__name__, f.name))
            if enum is not None:
                special.append((i, _one_of(enum)))
            elif annotation == "str":
                strings.append(i)
            elif annotation == "str | None":
                optional.append(i)
            elif annotation in _CODECS:
                decode, encode = _CODECS[annotation]
                special.append((i, decode))
                if encode is not None:
                    encoders.append((i, encode))
            else:  # a new kind of field: teach the cache its row form (tests catch this)
                raise TypeError(f"the cache cannot store {model_cls.__name__}.{f.name}: "
                                f"{annotation}")
        names = tuple(f.name for f in fields(model_cls))
        getter = attrgetter(*names)
        values = getter if len(names) > 1 else lambda obj: (getter(obj),)
        free = tuple(i for i, f in enumerate(fields(model_cls))
                     if str(f.type) == "dict[str, Any]")
        picked = itemgetter(*free) if free else None
        free_values = (lambda row: ()) if picked is None else \
            picked if len(free) > 1 else (lambda row: (picked(row),))
        return cls(model_cls, names, tuple(strings), tuple(optional), tuple(special),
                   tuple(encoders), values, free, free_values)

    def encode(self, obj: Any) -> list[Any]:
        row = list(self.values(obj))
        for i, encode in self.encoders:
            row[i] = encode(row[i])
        return row

    def exact(self, row: list[Any]) -> bool:
        """True when JSON carries this row of a parsed object exactly: every other field's
        type is one JSON has (the model checked it); only free-form mappings may not be."""
        return all(_plain(value) for value in self.free_values(row) if value)

    def decode(self, row: Any) -> Any:
        """The object of a row read from the file (which it may change): checked first."""
        if type(row) is not list or len(row) != len(self.names):
            raise miss(f"expected a row of {len(self.names)} {self.cls.__name__} fields")
        for i in self.strings:
            if type(row[i]) is not str:
                raise miss(f"{self.names[i]}: expected a string")
        for i in self.optional:
            value = row[i]
            if value is not None and type(value) is not str:
                raise miss(f"{self.names[i]}: expected a string or null")
        for i, decode in self.special:
            row[i] = decode(row[i])
        return self.cls(*row)


_SHAPES: dict[type, Shape] = {}


def shape_of(model_cls: type) -> Shape:
    if model_cls not in _SHAPES:
        _SHAPES[model_cls] = Shape.of(model_cls)
    return _SHAPES[model_cls]




def forget_deps() -> None:
    """Start a load with an empty dep memo (it only shares equal deps within one load)."""
    _DEP_MEMO.clear()
