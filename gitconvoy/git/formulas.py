"""Formulas (`*.formula.toml`): named, versioned step lists with `{{var}}` placeholders.

A formula is data, not code: the review gate reads `mol-integration-review` to know which
checks to run; a worker gets the workflow formula its bead names (`sling --formula`, a rig's
default `formula` setting, `mol-conflict-resolve` for conflicts) as the steps of its brief
(`git convoy work`, gitconvoy.flow.work). Resolution goes from the most specific to the
most general, so a project can override a built-in by committing a file of the same name:

1. `.convoy/formulas/<name>.formula.toml` committed on the trusted branch (`convoy.configRef`,
   gitconvoy.git.localconfig; reviewed like code, read from the commit, never from the user's
   working tree, a branch the state names, or the state ref): callers pass that branch;
2. the user's folder, `$XDG_CONFIG_HOME/gitconvoy/formulas` (default ~/.config/gitconvoy/…);
3. the built-ins: the top-level `formulas/` folder, shipped in the wheel as
   gitconvoy/_data/formulas.

`{{var}}` in a step's `run` is replaced by the shell-quoted value (a branch name can never
become shell syntax); in titles and descriptions by the plain value.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.git import localconfig
from gitconvoy.state.model import (
    FORMULA_NAME_RE,
    MAX_FORMULA_VARS,
    MAX_STEPS,
    MAX_VAR_VALUE,
    STEP_ID_RE,
    VAR_NAME_RE,
)
from gitconvoy.state.store import Store

SUFFIX = ".formula.toml"
PROJECT_DIR = ".convoy/formulas"
TOP_KEYS = frozenset({"formula", "description", "type", "version", "vars", "steps"})
VAR_KEYS = frozenset({"description", "required", "default"})
STEP_KEYS = frozenset({"id", "title", "description", "needs", "run"})
TYPES = ("workflow", "review")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


@dataclass
class Var:
    name: str
    description: str = ""
    required: bool = False
    default: str | None = None


@dataclass
class Step:
    id: str
    title: str
    description: str = ""
    needs: list[str] = field(default_factory=list)
    run: str | None = None


@dataclass
class Formula:
    name: str
    source: str
    origin: str
    description: str = ""
    type: str = "workflow"
    version: int = 1
    vars: dict[str, Var] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "formula": self.name, "source": self.source, "origin": self.origin,
            "description": self.description, "type": self.type, "version": self.version,
            "vars": {n: {"description": v.description, "required": v.required,
                         "default": v.default} for n, v in self.vars.items()},
            "steps": [{"id": s.id, "title": s.title, "description": s.description,
                       "needs": s.needs, "run": s.run} for s in self.steps],
        }


# --- parsing ----------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=")


def _table_name(raw: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in raw.split("."))


class _Lines:
    """Where each table and key of a formula file is (1-based), for messages: tomllib
    returns values without positions. A plain line scan, enough for the TOML formulas use
    (headers, `key = value`, multi-line strings); an unknown place falls back to its table's
    header, then to line 1."""

    def __init__(self, text: str) -> None:
        self.tables: dict[tuple[str, int], int] = {("", 0): 1}
        self.keys: dict[tuple[str, int, str], int] = {}
        counts: dict[str, int] = {}
        table = ("", 0)
        quote: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            if quote is not None:
                if line.count(quote) % 2:
                    quote = None
                continue
            header = _HEADER.match(line)
            if header:
                name = _table_name(header.group(2))
                index = counts.get(name, 0) if header.group(1) == "[[" else 0
                counts[name] = index + 1
                table = (name, index)
                self.tables.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self.keys.setdefault((*table, key.group(1).strip("\"'")), number)
                quote = next((q for q in ('"""', "'''") if line.count(q) % 2), None)

    def line(self, table: str = "", index: int = 0, key: str | None = None) -> int:
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        return self.tables.get((table, index), 1)


class _Parser:
    """One file's parse: every problem is one line `<file>:<line>: <where>: <what>`."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = _Lines(text)

    def error(self, message: str, table: str = "", index: int = 0,
              key: str | None = None) -> ConvoyError:
        where = {"": "", "steps": f"steps[{index}]: "}.get(table, f"{table}: ")
        return ConvoyError(f"{self.source}:{self.lines.line(table, index, key)}: "
                           f"{where}{message}")

    def text(self, data: dict[str, Any], key: str, table: str = "", index: int = 0, *,
             required: bool = False) -> str:
        value = data.get(key)
        if value is None:
            if required:
                raise self.error(f"key '{key}' is required", table, index)
            return ""
        if not isinstance(value, str):
            raise self.error(f"key '{key}' expected a string, got {type(value).__name__}",
                             table, index, key)
        return value

    def known(self, data: dict[str, Any], allowed: frozenset[str], table: str = "",
              index: int = 0) -> None:
        for key in data:
            if key not in allowed:
                raise self.error(f"unknown key '{key}' (expected one of "
                                 f"{', '.join(sorted(allowed))})", table, index, key)

    def formula(self, data: dict[str, Any], origin: str) -> Formula:
        self.known(data, TOP_KEYS)
        name = self.text(data, "formula", required=True)
        if not FORMULA_NAME_RE.match(name):
            raise self.error(f"key 'formula' {name!r} is not a valid name (letters, digits, "
                             "'.', '_', '-')", key="formula")
        kind = self.text(data, "type") or "workflow"
        if kind not in TYPES:
            raise self.error(f"key 'type' expected one of {', '.join(TYPES)}, got {kind!r}",
                             key="type")
        version = data.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self.error(f"key 'version' expected a positive integer, got {version!r}",
                             key="version")
        formula = Formula(name=name, source=self.source, origin=origin,
                          description=self.text(data, "description"), type=kind,
                          version=version, vars=self.vars(data.get("vars", {})),
                          steps=self.steps(data.get("steps", [])))
        self.placeholders(formula)
        return formula

    def vars(self, raw: Any) -> dict[str, Var]:
        if not isinstance(raw, dict):
            raise self.error("key 'vars' expected a table of [vars.<name>]", key="vars")
        if len(raw) > MAX_FORMULA_VARS:
            raise self.error(f"more than {MAX_FORMULA_VARS} vars", key="vars")
        out: dict[str, Var] = {}
        for name, spec in raw.items():
            table = f"vars.{name}"
            if not VAR_NAME_RE.match(name):
                raise self.error(f"{name!r} is not a valid var name (letters, digits, '_', "
                                 "'-')", table)
            if not isinstance(spec, dict):
                raise self.error("expected a table", table)
            self.known(spec, VAR_KEYS, table)
            required = spec.get("required", False)
            if not isinstance(required, bool):
                raise self.error("key 'required' expected true or false", table, 0,
                                 "required")
            default = spec.get("default")
            if default is not None and (isinstance(default, bool)
                                        or not isinstance(default, str | int | float)):
                raise self.error("key 'default' expected a string", table, 0, "default")
            out[name] = Var(name, self.text(spec, "description", table), required,
                            None if default is None else str(default))
        return out

    def steps(self, raw: Any) -> list[Step]:
        if not isinstance(raw, list):
            raise self.error("key 'steps' expected an array of [[steps]] tables", key="steps")
        if len(raw) > MAX_STEPS:
            raise self.error(f"more than {MAX_STEPS} steps", "steps", MAX_STEPS)
        steps: list[Step] = []
        for i, spec in enumerate(raw):
            if not isinstance(spec, dict):
                raise self.error("expected a table", "steps", i)
            self.known(spec, STEP_KEYS, "steps", i)
            step_id = self.text(spec, "id", "steps", i, required=True)
            if not STEP_ID_RE.match(step_id):
                raise self.error(f"key 'id' {step_id!r} is not a valid step id (letters, "
                                 "digits, '.', '_', '-'; at most 64)", "steps", i, "id")
            if any(s.id == step_id for s in steps):
                raise self.error(f"key 'id' {step_id!r} is used twice", "steps", i, "id")
            needs = spec.get("needs", [])
            if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
                raise self.error("key 'needs' expected a list of step ids", "steps", i,
                                 "needs")
            run = spec.get("run")
            if run is not None and not isinstance(run, str):
                raise self.error("key 'run' expected a string", "steps", i, "run")
            steps.append(Step(step_id, self.text(spec, "title", "steps", i) or step_id,
                              self.text(spec, "description", "steps", i), list(needs), run))
        self.needs(steps)
        return steps

    def needs(self, steps: list[Step]) -> None:
        """Every `needs` names a step of the file, and following them never comes back."""
        position = {s.id: i for i, s in enumerate(steps)}
        for i, step in enumerate(steps):
            for need in step.needs:
                if need not in position:
                    raise self.error(f"key 'needs' names unknown step {need!r}", "steps", i,
                                     "needs")
        state: dict[str, str] = {}  # id -> "open" while on the path, "done" after

        def visit(step_id: str, path: list[str]) -> None:
            if state.get(step_id) == "done":
                return
            if state.get(step_id) == "open":
                loop = path[path.index(step_id):] + [step_id]
                raise self.error(f"key 'needs' makes a cycle: {' → '.join(loop)}", "steps",
                                 position[step_id], "needs")
            state[step_id] = "open"
            for need in steps[position[step_id]].needs:
                visit(need, [*path, step_id])
            state[step_id] = "done"

        for step in steps:
            visit(step.id, [])

    def placeholders(self, formula: Formula) -> None:
        """A `{{var}}` with no [vars] entry is an error when the file is read, not only when
        a value is bound."""
        places: list[tuple[str, str, int, str]] = [("", "", 0, formula.description)]
        for i, step in enumerate(formula.steps):
            places += [("title", "steps", i, step.title),
                       ("description", "steps", i, step.description),
                       ("run", "steps", i, step.run or "")]
        for key, table, index, text in places:
            for match in PLACEHOLDER.finditer(text):
                if match.group(1) not in formula.vars:
                    raise self.error(f"key '{key or 'description'}' uses "
                                     f"{{{{{match.group(1)}}}}}, which is not declared "
                                     "under [vars]", table, index, key or "description")


def parse(text: str, source: str, origin: str = "file") -> Formula:
    """A validated formula; every problem is one line naming `source`, the line and the
    key. A `needs` must name a step of the file, and `needs` must not make a cycle."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        raise ConvoyError(f"{source}:{at.group(1) if at else 1}: not valid TOML: "
                          f"{exc}") from None
    return _Parser(text, source).formula(data, origin)


# --- substitution -----------------------------------------------------------------------


def bind(formula: Formula, values: dict[str, str]) -> Formula:
    """The formula with `{{var}}` replaced; missing required vars and undeclared
    placeholders are errors naming the file and the var."""
    resolved: dict[str, str] = {}
    for name, var in formula.vars.items():
        if values.get(name) is not None:
            resolved[name] = str(values[name])
        elif var.default is not None:
            resolved[name] = var.default
        elif var.required:
            raise ConvoyError(f"{formula.source}: var '{name}' is required and has no value")
        else:
            resolved[name] = ""

    def fill(text: str, where: str, quote: bool) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in resolved:
                raise ConvoyError(f"{formula.source}: {where} uses {{{{{name}}}}}, which is "
                                  "not declared under [vars]")
            value = resolved[name]
            return shlex.quote(value) if quote else value
        return PLACEHOLDER.sub(one, text)

    steps = [replace(s, title=fill(s.title, f"steps.{s.id}.title", False),
                     description=fill(s.description, f"steps.{s.id}.description", False),
                     run=None if s.run is None else fill(s.run, f"steps.{s.id}.run", True))
             for s in formula.steps]
    return replace(formula, description=fill(formula.description, "description", False),
                   steps=steps)


# --- resolution -------------------------------------------------------------------------


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                             ".config")
    return Path(base) / "gitconvoy" / "formulas"


def builtin_dir() -> Path | None:
    """formulas/ shipped in the wheel as gitconvoy/_data/formulas, or the source tree's."""
    shipped = resources.files("gitconvoy").joinpath("_data", "formulas")
    if shipped.is_dir():
        return Path(str(shipped))
    source = Path(__file__).resolve().parents[2] / "formulas"  # gitconvoy/git/ -> top
    return source if source.is_dir() else None


def _project_files(store: Store | None, branch: str | None) -> dict[str, bytes]:
    """{file name: bytes} under .convoy/formulas/ as committed on `branch`."""
    if store is None or not branch:
        return {}
    tip = store.head_of(f"refs/heads/{branch}")
    if tip is None:
        return {}
    tree = store.repo[tip].peel(pygit2.Tree)
    try:
        folder = store.repo[tree[PROJECT_DIR].id]
    except KeyError:
        return {}
    if not isinstance(folder, pygit2.Tree):
        return {}
    return {e.name: store.repo[e.id].data for e in folder
            if e.name and e.name.endswith(SUFFIX) and e.type_str == "blob"}


def _folder_files(folder: Path | None) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.glob(f"*{SUFFIX}")) if p.is_file()}


@dataclass(frozen=True)
class Visible:
    """The file that wins for a name (project, then user, then built-in), not yet read."""

    name: str
    origin: str
    source: str
    data: Callable[[], bytes]

    def read(self) -> Formula:
        """The file parsed and checked; a problem is one line naming the file and line."""
        try:
            text = self.data().decode("utf-8")
        except UnicodeDecodeError:
            raise ConvoyError(f"{self.source}:1: not UTF-8 text") from None
        except OSError as exc:
            raise ConvoyError(f"{self.source}: cannot be read: {exc.strerror}") from None
        formula = parse(text, self.source, self.origin)
        if formula.name != self.name:
            raise ConvoyError(f"{self.source}:{_Lines(text).line(key='formula')}: key "
                              f"'formula' is {formula.name!r}, expected {self.name!r} "
                              "(the file name)")
        return formula

    def problem(self) -> str | None:
        """Why the file cannot be used, or None."""
        try:
            self.read()
        except ConvoyError as exc:
            return exc.message
        return None


def visible(store: Store | None = None, branch: str | None = None) -> dict[str, Visible]:
    """Every formula name visible, with the file that wins for it."""
    seen: dict[str, Visible] = {}
    for file, raw in sorted(_project_files(store, branch).items()):
        name = file[: -len(SUFFIX)]
        seen[name] = Visible(name, "project", f"{branch}:{PROJECT_DIR}/{file}",
                             lambda raw=raw: raw)
    for origin, folder in (("user", user_dir()), ("builtin", builtin_dir())):
        for file, path in _folder_files(folder).items():
            name = file[: -len(SUFFIX)]
            seen.setdefault(name, Visible(name, origin, str(path), path.read_bytes))
    return dict(sorted(seen.items()))


def load(name: str, store: Store | None = None, branch: str | None = None) -> Formula:
    """The formula `name` from the first place that has it (project, user, built-in)."""
    if not FORMULA_NAME_RE.match(name):
        raise ConvoyError(f"formula name {name!r} is not valid (letters, digits, '.', '_', "
                          "'-')")
    found = visible(store, branch).get(name)
    if found is None:
        raise ConvoyError(f"formula '{name}' not found in {PROJECT_DIR}/ on {branch or '-'}, "
                          f"{user_dir()} or the built-ins: see 'git convoy formula list'")
    return found.read()


def trusted_branch(store: Store) -> str | None:
    """The branch project formulas are read from: the trusted one (convoy.configRef)."""
    return localconfig.config_ref(store).branch


# --- formulas workers follow ------------------------------------------------------------

# Vars gitconvoy fills in from the bead when it hands the formula to a worker; a formula may
# declare them (to use {{bead}} and the like), a user may not set them.
AUTO_VARS = ("bead", "title", "branch", "target", "rig")


def for_worker(store: Store, name: str, values: Mapping[str, str]) -> Formula:
    """The workflow formula `name` from the trusted places, checked against the values a
    bead carries for it: a review formula, a var it does not declare, a var gitconvoy fills
    in, a missing required var are one-line errors."""
    formula = load(name, store, trusted_branch(store))
    if formula.type != "workflow":
        raise ConvoyError(f"{formula.source}: formula '{name}' is a {formula.type} formula; "
                          "workers follow workflow formulas (type = \"workflow\")")
    for key in values:
        if key in AUTO_VARS:
            raise ConvoyError(f"var '{key}' is filled in from the bead; do not set it")
        if key not in formula.vars:
            known = ", ".join(n for n in formula.vars if n not in AUTO_VARS) or "none"
            raise ConvoyError(f"{formula.source}: formula '{name}' has no var '{key}' "
                              f"(vars: {known})")
    bind(formula, {**dict.fromkeys(AUTO_VARS, "-"), **values})
    return formula


def parse_assignments(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--var key=value` options as a mapping, each key and value within the bead's caps."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not VAR_NAME_RE.match(key):
            raise ConvoyError(f"--var {pair!r}: expected NAME=VALUE (NAME: letters, digits, "
                              "'_', '-')")
        if len(value) > MAX_VAR_VALUE:
            raise ConvoyError(f"--var {key}: longer than {MAX_VAR_VALUE} characters")
        out[key] = value
    if len(out) > MAX_FORMULA_VARS:
        raise ConvoyError(f"more than {MAX_FORMULA_VARS} --var options")
    return out
