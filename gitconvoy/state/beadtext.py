"""A bead file in the store's own layout, read straight into a Bead: the cold read's hot loop.

A full read parses every bead file. The generic path (codec.parse_canonical, then
Bead.from_dict) costs ~50 µs a file: a line-by-line reader, a re-emit to prove the text
canonical, then a dict walked field by field. This reader takes the one layout the store
writes for a bead, keys in Bead.ORDER, and matches the whole file with one regular
expression (the keys, the enums, the priority and the dep shapes are checked by the match).
Each text value is then proved canonical on its own: the emitter must write it back as the
very characters read. So whatever it accepts is emit_canonical's output for that value,
which the generic path reads as the same value; and every rule of Bead.from_dict is applied
to it here (the same helpers where they exist).

It never names an error: anything it is not sure of (another layout, a quoted enum, a
`dispatch` or `formula_vars` mapping, a folded label, a field that fails a rule) answers
None, and the generic path reads the file and words the warning, as before.
"""

from __future__ import annotations

import re

from gitconvoy.state import codec, model, refnames

# One scalar: the rest of the line and any continuation lines (indented, or empty inside a
# `|` block). Possessive: a file that does not match fails in linear time.
_VALUE = r"[^\n]++(?:\n(?=[ \n])[^\n]*+)*+"
_ITEMS = r"(?:\n- [^\n]*+)++"
_DEP_TYPE = "|".join(model.DEP_TYPES)
_DEPS = rf"(?:\n- 'on': [^\n]*+\n  type: (?:{_DEP_TYPE})(?:\n  inferred: true)?+)++"
_LISTS = ("labels", "steps_done")
_OPAQUE = ("dispatch", "formula_vars")  # mappings: left to the generic path
_BRANCHES = ("branch", "target", "integration_branch")


def _pattern() -> re.Pattern[str]:
    parts = []
    for name in model.Bead.ORDER:
        if name in ("id", "title"):
            parts.append(f"{name}: (?P<{name}>{_VALUE})\n")
        elif name == "type":
            parts.append(f"(?:type: (?P<type>{'|'.join(model.BEAD_TYPES)})\n)?+")
        elif name == "status":
            parts.append(f"(?:status: (?P<status>{'|'.join(model.BEAD_STATUSES)})\n)?+")
        elif name == "priority":
            parts.append("(?:priority: (?P<priority>[0-4])\n)?+")
        elif name in _LISTS:
            parts.append(f"(?:{name}:(?P<{name}>{_ITEMS})\n)?+")
        elif name == "deps":
            parts.append(f"(?:deps:(?P<deps>{_DEPS})\n)?+")
        elif name not in _OPAQUE:
            parts.append(f"(?:{name}: (?P<{name}>{_VALUE})\n)?+")
    return re.compile("".join(parts))


_BEAD = _pattern()
_DEP = re.compile(rf"\n- 'on': ([^\n]*)\n  type: ({_DEP_TYPE})(\n  inferred: true)?")
_GROUPS = tuple(_BEAD.groupindex)  # Bead.ORDER without the two mappings
# (group index, column) of each text field: where its value starts after `name: `.
_SCALARS = tuple((i, len(name) + 2) for i, name in enumerate(_GROUPS)
                 if name not in ("type", "status", "priority", "deps") + _LISTS)
_WRITTEN = codec.written_texts()
_FOLD_AT = codec.FOLD_COLUMN
# Deps are frozen: equal ones are shared, as the cache rows share them.
_DEP_MEMO: dict[tuple[str, str, bool], model.Dep] = {}


def _scalar(written: str, column: int, indent: int) -> str | None:
    """The text a value written at `column` (continuation lines at `indent`) holds, if the
    emitter writes exactly that for it; else None."""
    first = written[0]
    if "\n" in written:
        head, _, rest = written.partition("\n")
        lines = rest.split("\n")
        if head == "|" or head == "|-":
            if not all(line[:2] == "  " or not line for line in lines):
                return None
            value = "\n".join(line[2:] for line in lines) + ("\n" if head == "|" else "")
        else:
            if not all(line[:2] == "  " for line in lines):
                return None
            value = " ".join([head] + [line[2:] for line in lines])
            if first == "'":
                value = value[1:-1].replace("''", "'") if len(value) > 1 else value
    elif first == "'":
        if len(written) < 2 or written[-1] != "'":
            return None
        value = written[1:-1].replace("''", "'")
    else:
        value = written
    if codec.written_scalar(value, column, indent) != " " + written:
        return None
    return value


def _one_line(written: str, column: int, indent: int) -> str | None:
    """`_scalar` for the common case, inline: a short value the emitter has already written
    (or read) this way in this process, on one line that cannot fold."""
    if written[0] == "'":
        value = written[1:-1]
        if "'" not in value and _WRITTEN.get(value) == written and len(written) > 1 \
                and column + len(written) <= _FOLD_AT:
            return value
    elif _WRITTEN.get(written) == written and column + len(written) <= _FOLD_AT:
        return written
    return _scalar(written, column, indent)


def _items(block: str) -> list[str] | None:
    out = []
    for written in block[3:].split("\n- "):
        value = _one_line(written, 2, 2) if written else None
        if value is None:
            return None
        out.append(value)
    return out


def _deps(block: str) -> list[model.Dep] | None:
    deps = []
    last: tuple[str, str] | None = None
    ordered = True
    for on_written, kind, inferred in _DEP.findall(block):
        on = _one_line(on_written, 8, 4) if on_written else None
        if on is None or "\n" in on_written or not on.strip():
            return None
        key = (on, kind, bool(inferred))
        dep = _DEP_MEMO.get(key)
        if dep is None:
            dep = _DEP_MEMO[key] = model.Dep(*key)
        deps.append(dep)
        if last is not None and last >= key[:2]:
            ordered = False
        last = key[:2]
    # Sorted by (on, type) with no edge twice is what unique_deps would give back.
    return deps if ordered else model.unique_deps(deps)


def read_bead(raw: bytes) -> model.Bead | None:
    """The bead a file in the store's layout holds, with every rule of Bead.from_dict
    checked; None for any other file (then the generic path reads it)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _BEAD.fullmatch(text)
    if match is None:
        return None
    got = list(match.groups())
    for i, column in _SCALARS:
        written = got[i]
        if written is not None:
            value = _one_line(written, column, 2)
            if value is None:
                return None
            got[i] = value
    (bead_id, title, kind, status, priority, description, acceptance, assignee, labels,
     parent, deps, rig, branch, target, base_commit, integration_branch, created_at,
     created_by, updated_at, started_at, closed_at, close_reason, import_key, mr, formula,
     steps) = got
    if not title.strip() or len(title) > model.MAX_TITLE:
        return None
    if len(bead_id) > 200 or "/" in bead_id or ".." in bead_id \
            or not model.ID_RE.fullmatch(bead_id):
        return None
    for name in (branch, target, integration_branch):
        if name is not None and refnames.branch_problem(name):
            return None
    if formula is not None and not model.FORMULA_NAME_RE.match(formula):
        return None
    if labels is not None:
        labels = _items(labels)
        if labels is None:
            return None
        labels = sorted(set(labels))
    if steps is not None:
        steps = _items(steps)
        if steps is None:
            return None
        steps = sorted(set(steps))
        if len(steps) > model.MAX_STEPS or not all(model.STEP_ID_RE.match(s) for s in steps):
            return None
    if deps is not None:
        deps = _deps(deps)
        if deps is None:
            return None
    status = status or "open"
    if (status == "closed") != (closed_at is not None):
        return None
    return model.Bead(
        bead_id, title, kind or "task", status, 2 if priority is None else int(priority),
        description, acceptance, assignee, labels or [], parent, deps or [], rig, branch,
        target, base_commit, integration_branch, created_at, created_by, updated_at,
        started_at, closed_at, close_reason, {}, import_key, mr, formula, {}, steps or [],
    )
