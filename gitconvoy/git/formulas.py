"""Formulas (`*.formula.toml`): named, versioned step lists with `{{var}}` placeholders.

A formula is data, not code: the review gate reads `mol-integration-review` to know which
checks to run. Resolution goes from the most specific to the most general, so a project can
override a built-in by committing a file of the same name:

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
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.state.store import Store

SUFFIX = ".formula.toml"
PROJECT_DIR = ".convoy/formulas"
TOP_KEYS = frozenset({"formula", "description", "type", "version", "vars", "steps"})
VAR_KEYS = frozenset({"description", "required", "default"})
STEP_KEYS = frozenset({"id", "title", "description", "needs", "run"})
TYPES = ("workflow", "review")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def _text(data: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ConvoyError(f"{where}: key '{key}' is required")
        return ""
    if not isinstance(value, str):
        raise ConvoyError(f"{where}: key '{key}' expected a string, got "
                          f"{type(value).__name__}")
    return value


def _unknown(data: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConvoyError(f"{where}: unknown key '{key}' (expected one of "
                              f"{', '.join(sorted(allowed))})")


def parse(text: str, source: str, origin: str = "file") -> Formula:
    """A validated formula; every problem is one line naming `source` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConvoyError(f"{source}: not valid TOML: {exc}") from None
    _unknown(data, TOP_KEYS, source)
    name = _text(data, "formula", source, required=True)
    if not NAME_RE.match(name):
        raise ConvoyError(f"{source}: key 'formula' {name!r} is not a valid name")
    kind = _text(data, "type", source) or "workflow"
    if kind not in TYPES:
        raise ConvoyError(f"{source}: key 'type' expected one of {', '.join(TYPES)}, "
                          f"got {kind!r}")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConvoyError(f"{source}: key 'version' expected a positive integer, "
                          f"got {version!r}")
    return Formula(name=name, source=source, origin=origin,
                   description=_text(data, "description", source), type=kind,
                   version=version, vars=_parse_vars(data.get("vars", {}), source),
                   steps=_parse_steps(data.get("steps", []), source))


def _parse_vars(raw: Any, source: str) -> dict[str, Var]:
    if not isinstance(raw, dict):
        raise ConvoyError(f"{source}: key 'vars' expected a table of [vars.<name>]")
    out: dict[str, Var] = {}
    for name, spec in raw.items():
        where = f"{source}: vars.{name}"
        if not isinstance(spec, dict):
            raise ConvoyError(f"{where}: expected a table")
        _unknown(spec, VAR_KEYS, where)
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise ConvoyError(f"{where}: key 'required' expected true or false")
        default = spec.get("default")
        if default is not None and not isinstance(default, str | int | float):
            raise ConvoyError(f"{where}: key 'default' expected a string")
        out[name] = Var(name, _text(spec, "description", where), required,
                        None if default is None else str(default))
    return out


def _parse_steps(raw: Any, source: str) -> list[Step]:
    if not isinstance(raw, list):
        raise ConvoyError(f"{source}: key 'steps' expected an array of [[steps]] tables")
    steps: list[Step] = []
    for i, spec in enumerate(raw):
        where = f"{source}: steps[{i}]"
        if not isinstance(spec, dict):
            raise ConvoyError(f"{where}: expected a table")
        _unknown(spec, STEP_KEYS, where)
        step_id = _text(spec, "id", where, required=True)
        needs = spec.get("needs", [])
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise ConvoyError(f"{where}: key 'needs' expected a list of step ids")
        if any(s.id == step_id for s in steps):
            raise ConvoyError(f"{where}: key 'id' {step_id!r} is used twice")
        run = spec.get("run")
        if run is not None and not isinstance(run, str):
            raise ConvoyError(f"{where}: key 'run' expected a string")
        steps.append(Step(step_id, _text(spec, "title", where) or step_id,
                          _text(spec, "description", where), list(needs), run))
    known = {s.id for s in steps}
    for i, step in enumerate(steps):
        for need in step.needs:
            if need not in known:
                raise ConvoyError(f"{source}: steps[{i}]: key 'needs' names unknown step "
                                  f"{need!r}")
    return steps


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
    source = Path(__file__).resolve().parents[2] / "formulas"  # gitconvoy/land/ -> top
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


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConvoyError(f"{source}: not UTF-8 text") from None


def load(name: str, store: Store | None = None, branch: str | None = None) -> Formula:
    """The formula `name` from the first place that has it (project, user, built-in)."""
    if not NAME_RE.match(name):
        raise ConvoyError(f"formula name {name!r} is not valid")
    file = name + SUFFIX
    project = _project_files(store, branch)
    if file in project:
        source = f"{branch}:{PROJECT_DIR}/{file}"
        return _named(parse(_decode(project[file], source), source, "project"), name)
    for origin, folder in (("user", user_dir()), ("builtin", builtin_dir())):
        found = _folder_files(folder).get(file)
        if found is not None:
            return _named(parse(found.read_text(encoding="utf-8"), str(found), origin), name)
    raise ConvoyError(f"formula '{name}' not found in {PROJECT_DIR}/ on {branch or '-'}, "
                      f"{user_dir()} or the built-ins")


def _named(formula: Formula, name: str) -> Formula:
    if formula.name != name:
        raise ConvoyError(f"{formula.source}: key 'formula' is {formula.name!r}, expected "
                          f"{name!r} (the file name)")
    return formula


def available(store: Store | None = None, branch: str | None = None,
              ) -> list[tuple[str, str, str]]:
    """(name, origin, source) of every formula visible, the winner of each name only."""
    seen: dict[str, tuple[str, str, str]] = {}
    for file in sorted(_project_files(store, branch)):
        name = file[: -len(SUFFIX)]
        seen[name] = (name, "project", f"{branch}:{PROJECT_DIR}/{file}")
    for origin, folder in (("user", user_dir()), ("builtin", builtin_dir())):
        for file, path in _folder_files(folder).items():
            name = file[: -len(SUFFIX)]
            seen.setdefault(name, (name, origin, str(path)))
    return sorted(seen.values())
