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

# The common layout proved whole by one match: every text on one line (plain, or quoted
# because it must be) or a `|` block, ids and names plain. Anything else (a folded line, a
# doubled quote, a text starting with a digit) is proved value by value below.
_BLOCKS = ("title", "description", "acceptance", "close_reason")  # any text: plain, quoted, |
_STAMPS = ("created_at", "updated_at", "started_at", "closed_at")  # the store's time stamps
_PEOPLE = ("assignee", "created_by")  # may hold spaces; the other texts are names


def _fast_pattern() -> re.Pattern[str]:
    plain, quoted, block = codec.plain_pattern(), codec.quoted_pattern(), codec.literal_pattern()
    word = rf"(?!{codec.WORDS_PATTERN}\n)[A-Za-z][A-Za-z0-9._-]"
    fixed = {
        "id": rf"id: (?P<id>{word}*+)\n",
        "type": f"(?:type: (?P<type>{'|'.join(model.BEAD_TYPES)})\n)?+",
        "status": f"(?:status: (?P<status>{'|'.join(model.BEAD_STATUSES)})\n)?+",
        "priority": "(?:priority: (?P<priority>[0-4])\n)?+",
        "labels": rf"(?:labels:(?P<labels>(?:\n- {codec.fits_pattern(2)}{plain})++)\n)?+",
        "deps": rf"(?:deps:(?P<deps>(?:\n- 'on': {word}*+\n  type: (?:{_DEP_TYPE})"
                rf"(?:\n  inferred: true)?+)++)\n)?+",
        "formula": rf"(?:formula: (?P<formula>{word}{{0,99}})\n)?+",
        "steps_done": rf"(?:steps_done:(?P<steps_done>(?:\n- {word}{{0,63}})++)\n)?+",
    }
    parts = []
    for name in model.Bead.ORDER:
        head = f"{name}: "
        if name in _OPAQUE:
            continue
        if name in fixed:
            parts.append(fixed[name])
        elif name in _STAMPS:
            parts.append(rf"(?:{head}'(?P<{name}>{codec.STAMP_PATTERN})'\n)?+")
        elif name in _BLOCKS:
            field = (rf"{head}{codec.fits_pattern(len(head))}(?P<q_{name}>')?(?P<{name}>"
                     rf"(?(q_{name}){quoted}|(?:{plain}|{block})))(?(q_{name})')\n")
            parts.append(field if name == "title" else f"(?:{field})?+")
        elif name in _PEOPLE:
            parts.append(rf"(?:{head}{codec.fits_pattern(len(head))}(?P<{name}>{plain})\n)?+")
        else:  # names, ids, branches: no space
            parts.append(rf"(?:{head}(?P<{name}>{codec.name_pattern()})\n)?+")
    return re.compile("".join(parts))


_FAST = _fast_pattern()


_DEP = re.compile(rf"\n- 'on': ([^\n]*)\n  type: ({_DEP_TYPE})(\n  inferred: true)?")
_GROUPS = tuple(_BEAD.groupindex)  # Bead.ORDER without the two mappings
_FAST_GROUPS = tuple(_FAST.groupindex[name] for name in _GROUPS)
_BLOCK_AT = tuple(_GROUPS.index(name) for name in _BLOCKS)
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


# Deps of proved blocks by their text (`<on>\n  type: <type>[\n  inferred: true]`).
_WRITTEN_DEPS: dict[str, model.Dep] = {}


def _proved_deps(block: str) -> list[model.Dep]:
    """`_deps` of a block the fast pattern proved: each item is `on` (plain, as written)
    and a type, so a split finds them; equal items share one Dep."""
    deps = [_WRITTEN_DEPS.get(item) or _written_dep(item)
            for item in block[9:].split("\n- 'on': ")]  # after the first "\n- 'on': "
    if len(deps) > 1:
        before = deps[0]
        for dep in deps[1:]:
            if dep.on < before.on or (dep.on == before.on and dep.type <= before.type):
                return model.unique_deps(deps)  # not sorted, or an edge twice
            before = dep
    return deps


def _written_dep(item: str) -> model.Dep:
    on, _, rest = item.partition("\n  type: ")
    kind, _, inferred = rest.partition("\n")
    dep = _WRITTEN_DEPS[item] = model.Dep(on, kind, bool(inferred))
    return dep


def read_bead(raw: bytes) -> model.Bead | None:
    """The bead a file in the store's layout holds, with every rule of Bead.from_dict
    checked; None for any other file (then the generic path reads it)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _FAST.fullmatch(text) if codec.printable(text) else None
    if match is not None:
        return _proved_bead(match)
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
    return _bead(got)


def _proved_bead(match: re.Match[str]) -> model.Bead | None:
    """`_bead` for a file the fast pattern matched, whose every value the match proved:
    the rules its pattern does not hold are checked, inline (10,000s of files a read)."""
    (bead_id, title, kind, status, priority, description, acceptance, assignee, labels,
     parent, deps, rig, branch, target, base_commit, integration_branch, created_at,
     created_by, updated_at, started_at, closed_at, close_reason, import_key, mr, formula,
     steps) = match.group(*_FAST_GROUPS)
    if "\n" in title:
        title = codec.literal_text(title)
    if not title.strip() or len(title) > model.MAX_TITLE or len(bead_id) > 200 \
            or ".." in bead_id:
        return None
    if description is not None and "\n" in description:
        description = codec.literal_text(description)
    if acceptance is not None and "\n" in acceptance:
        acceptance = codec.literal_text(acceptance)
    if close_reason is not None and "\n" in close_reason:
        close_reason = codec.literal_text(close_reason)
    if branch is not None or target is not None or integration_branch is not None:
        for name in (branch, target, integration_branch):
            if name is not None and refnames.branch_problem(name):
                return None
    label_list = []
    if labels is not None:
        label_list = labels[3:].split("\n- ")
        if len(label_list) > 1:
            label_list = sorted(set(label_list))
    steps_list = []
    if steps is not None:
        steps_list = sorted(set(steps[3:].split("\n- ")))
        if len(steps_list) > model.MAX_STEPS:
            return None
    dep_list = [] if deps is None else _proved_deps(deps)
    status = status or "open"
    if (status == "closed") != (closed_at is not None):
        return None
    return model.Bead(
        bead_id, title, kind or "task", status, 2 if priority is None else int(priority),
        description, acceptance, assignee, label_list, parent, dep_list, rig, branch, target,
        base_commit, integration_branch, created_at, created_by, updated_at, started_at,
        closed_at, close_reason, {}, import_key, mr, formula, {}, steps_list,
    )


def _bead(got: list[str | None]) -> model.Bead | None:
    """The bead of a file's values (each text proved canonical), if every rule of
    Bead.from_dict holds."""
    (bead_id, title, kind, status, priority, description, acceptance, assignee, labels,
     parent, deps, rig, branch, target, base_commit, integration_branch, created_at,
     created_by, updated_at, started_at, closed_at, close_reason, import_key, mr, formula,
     steps) = got
    if not title or not title.strip() or len(title) > model.MAX_TITLE:
        return None
    assert bead_id is not None
    if len(bead_id) > 200 or "/" in bead_id or ".." in bead_id \
            or not model.ID_RE.fullmatch(bead_id):
        return None
    for name in (branch, target, integration_branch):
        if name is not None and refnames.branch_problem(name):
            return None
    if formula is not None and not model.FORMULA_NAME_RE.match(formula):
        return None
    label_list = steps_list = None
    if labels is not None:
        label_list = _items(labels)
        if label_list is None:
            return None
        if len(label_list) > 1:
            label_list = sorted(set(label_list))
    if steps is not None:
        steps_list = _items(steps)
        if steps_list is None:
            return None
        steps_list = sorted(set(steps_list))
        if len(steps_list) > model.MAX_STEPS or \
                not all(model.STEP_ID_RE.match(s) for s in steps_list):
            return None
    dep_list = None
    if deps is not None:
        dep_list = _deps(deps)
        if dep_list is None:
            return None
    status = status or "open"
    if (status == "closed") != (closed_at is not None):
        return None
    return model.Bead(
        bead_id, title, kind or "task", status, 2 if priority is None else int(priority),
        description, acceptance, assignee, label_list or [], parent, dep_list or [], rig,
        branch, target, base_commit, integration_branch, created_at, created_by, updated_at,
        started_at, closed_at, close_reason, {}, import_key, mr, formula, {},
        steps_list or [],
    )
