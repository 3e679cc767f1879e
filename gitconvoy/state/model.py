"""The state's data model: dataclasses, schema validation and stable serialisation.

Every object is one YAML file. `from_dict` validates a parsed file and names the file and
field on the first problem; `to_dict` emits keys in a fixed order and drops empty values, so
a diff of two state commits reads like a change log.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from gitconvoy.errors import ConvoyError, NewerSchema, SchemaError
from gitconvoy.state import refnames

SCHEMA_VERSION = 1

BEAD_TYPES = ("task", "bug", "feature", "chore", "epic", "decision")
SLINGABLE_TYPES = frozenset({"task", "bug", "feature", "chore"})
BEAD_STATUSES = ("open", "in_progress", "hooked", "blocked", "deferred", "closed", "tombstone")
DEP_TYPES = ("blocks", "parent-child", "related", "discovered-from", "waits-for", "merge-blocks")
BLOCKING_DEP_TYPES = frozenset({"blocks", "waits-for", "merge-blocks"})
DONE_STATUSES = frozenset({"closed", "tombstone"})
IN_FLIGHT = frozenset({"hooked", "in_progress"})  # handed to a worker, not done yet
CONVOY_STATUSES = ("staged_ready", "staged_warnings", "open", "closed")
MAX_TITLE = 500

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Formulas (gitconvoy.git.formulas) as a bead names them: the names, step ids and var names
# a formula file may use, and caps that keep a bead small whatever the state's writer puts.
FORMULA_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STEP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_STEPS = 64
MAX_FORMULA_VARS = 32
MAX_VAR_VALUE = 2000
# Dispatch strategies (gitconvoy.plan.strategies) as a convoy names them: a name only, looked
# up among the built-ins and the installed `gitconvoy.strategies` entry points, never code.
DEFAULT_STRATEGY = "blocks"
STRATEGY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_FALLBACK = 300


def now() -> str:
    """The current UTC time as an ISO-8601 string; CONVOY_NOW pins it for reproducible tests."""
    pinned = os.environ.get("CONVOY_NOW")
    if pinned:
        return pinned
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_second(stamp: str) -> str:
    """A stored time as people read it, to the second: `2025-06-01T10:00:30Z`."""
    return f"{stamp[:19]}Z" if len(stamp) >= 19 and stamp[10:11] == "T" else stamp


def when(stamp: str, at: str | None = None) -> str:
    """A stored time as people read it at a glance, then exactly: `3 h ago (2025-06-01T10:00:30Z)`,
    `in 30 s (…)`. `at` is the reader's now (CONVOY_NOW pins it); a stamp that is not a time
    is shown as it is."""
    exact = to_second(stamp)
    try:
        then = _dt.datetime.fromisoformat(exact.replace("Z", "+00:00"))
        ref = _dt.datetime.fromisoformat(to_second(at or now()).replace("Z", "+00:00"))
    except ValueError:
        return exact
    return f"{relative((ref - then).total_seconds())} ({exact})"


def relative(seconds: float) -> str:
    """An age in the largest unit that fits: `just now`, `42 s ago`, `3 min ago`, `5 h ago`,
    `2 days ago`; a negative age is a time to come: `in 30 s`."""
    ahead, seconds = seconds < 0, abs(int(seconds))
    if seconds < 1:
        return "just now"
    for size, unit in ((86400, " days"), (3600, " h"), (60, " min"), (1, " s")):
        if seconds >= size:
            count = seconds // size
            text = f"{count}{' day' if unit == ' days' and count == 1 else unit}"
            return f"in {text}" if ahead else f"{text} ago"
    return "just now"


def validate_id(value: str, what: str = "id") -> str:
    """Ids become file names on the state ref: letters, digits, '-', '.', '_' only."""
    if not isinstance(value, str) or not value:
        raise ConvoyError(f"{what} must not be empty")
    if "/" in value or ".." in value or not ID_RE.fullmatch(value) or len(value) > 200:
        raise ConvoyError(
            f"{what} {value!r} is not valid: use letters, digits, '-', '.' and '_' "
            "(no '/', no '..')"
        )
    return value


# --- field readers: each names the file and field it rejects ---------------------------


def _str(data: dict, key: str, path: str, *, required: bool = False, max_len: int = 0) -> Any:
    value = data.get(key)
    if value is None:
        if required:
            raise SchemaError(path, key, "is required")
        return None
    if isinstance(value, _dt.datetime | _dt.date):
        value = value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SchemaError(path, key, f"expected a string, got {type(value).__name__}")
    value = str(value)
    if required and not value.strip():
        raise SchemaError(path, key, "must not be empty")
    if max_len and len(value) > max_len:
        raise SchemaError(path, key, f"longer than {max_len} characters")
    return value


def _branch(data: dict, key: str, path: str, *, required: bool = False) -> Any:
    """A branch name the state gives: it becomes a ref and a git argument, so git's rules
    (and no leading '-') are checked here, where the state is read."""
    value = _str(data, key, path, required=required)
    if value is not None:
        problem = refnames.branch_problem(value)
        if problem:
            raise SchemaError(path, key, f"is not a valid branch name: it {problem}")
    return value


def _enum(data: dict, key: str, path: str, allowed: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise SchemaError(path, key, f"expected one of {', '.join(allowed)}, got {value!r}")
    return value


def _int(data: dict, key: str, path: str, default: int, lo: int, hi: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SchemaError(path, key, f"expected an integer {lo}–{hi}, got {value!r}")
    return value


def _bool(data: dict, key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SchemaError(path, key, f"expected true or false, got {value!r}")
    return value


def _str_list(data: dict, key: str, path: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaError(path, key, "expected a list of strings")
    return sorted(set(value))


def _mapping(data: dict, key: str, path: str) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise SchemaError(path, key, "expected a mapping")
    return dict(value)


def _id_field(data: dict, path: str) -> str:
    """The object's id: required, and safe as a file name."""
    value = _str(data, "id", path, required=True)
    try:
        return validate_id(value)
    except ConvoyError as exc:
        raise SchemaError(path, "id", exc.message) from None


def _commit_field(data: dict, key: str, path: str) -> str:
    value = _str(data, key, path, required=True)
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", value):
        raise SchemaError(path, key, f"expected a full commit id, got {value!r}")
    return value


def _check_keys(data: Any, path: str, allowed: set[str]) -> dict:
    if not isinstance(data, dict):
        raise SchemaError(path, None, "expected a mapping at the top level")
    for key in data:
        if key not in allowed:
            raise SchemaError(path, str(key), "unknown field")
    return data


def _emit(obj: Any, order: tuple[str, ...]) -> dict[str, Any]:
    """Fixed key order, empty values dropped (0 and False are kept where they mean something)."""
    out: dict[str, Any] = {}
    for name in order:
        value = getattr(obj, name)
        if value is None or value == [] or value == {} or value == "":
            continue
        out[name] = value
    return out


# --- beads ------------------------------------------------------------------------------


def _formula_name(data: dict, path: str) -> str | None:
    """The workflow formula the bead's worker follows: a name, resolved only from trusted
    places (gitconvoy.git.formulas), never a path or a command."""
    value = _str(data, "formula", path)
    if value is not None and not FORMULA_NAME_RE.match(value):
        raise SchemaError(path, "formula", f"{value[:40]!r} is not a formula name")
    return value


def _formula_vars(data: dict, path: str) -> dict[str, str]:
    """Values for the formula's {{vars}}: names as a formula declares them, short strings."""
    value = _mapping(data, "formula_vars", path)
    if len(value) > MAX_FORMULA_VARS:
        raise SchemaError(path, "formula_vars", f"more than {MAX_FORMULA_VARS} vars")
    for key, text in value.items():
        if not isinstance(key, str) or not VAR_NAME_RE.match(key):
            raise SchemaError(path, "formula_vars", f"{str(key)[:40]!r} is not a var name")
        if not isinstance(text, str):
            raise SchemaError(path, f"formula_vars.{key}",
                              f"expected a string, got {type(text).__name__}")
        if len(text) > MAX_VAR_VALUE:
            raise SchemaError(path, f"formula_vars.{key}",
                              f"longer than {MAX_VAR_VALUE} characters")
    return value


def _step_ids(data: dict, path: str) -> list[str]:
    """The formula steps the worker recorded as done (a set: merges keep every addition)."""
    value = _str_list(data, "steps_done", path)
    if len(value) > MAX_STEPS:
        raise SchemaError(path, "steps_done", f"more than {MAX_STEPS} steps")
    for step in value:
        if not STEP_ID_RE.match(step):
            raise SchemaError(path, "steps_done", f"{step[:40]!r} is not a step id")
    return value



@dataclass(frozen=True, order=True)
class Dep:
    """An outgoing edge: the owning bead depends on `on`. `inferred`: written by `stage
    --infer-blocks` rather than by a person, so a re-stage may take it away again."""

    on: str
    type: str = "blocks"
    inferred: bool = False

    @property
    def blocking(self) -> bool:
        return self.type in BLOCKING_DEP_TYPES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"on": self.on, "type": self.type}
        if self.inferred:
            out["inferred"] = True
        return out


def unique_deps(deps: Any) -> list[Dep]:
    """One dep per (on, type), sorted; a stated dep wins over an inferred one of the same
    edge (both can meet after a merge, or when a person adds what stage inferred)."""
    chosen: dict[tuple[str, str], Dep] = {}
    for dep in deps:
        key = (dep.on, dep.type)
        if key not in chosen or chosen[key].inferred:
            chosen[key] = dep
    return sorted(chosen.values())


def _deps(data: dict, path: str) -> list[Dep]:
    """Each dep's fields checked like any other field: the state is untrusted input."""
    deps_raw = data.get("deps") or []
    if not isinstance(deps_raw, list):
        raise SchemaError(path, "deps", "expected a list of {on, type}")
    deps = []
    for i, item in enumerate(deps_raw):
        where = f"deps[{i}]"
        if not isinstance(item, dict) or set(item) - {"on", "type", "inferred"} \
                or "on" not in item:
            raise SchemaError(path, where, "expected {on: <id>, type: <dep type>}")
        on = _str(item, "on", f"{path} {where}", required=True)
        deps.append(Dep(on=on, type=_enum(item, "type", f"{path} {where}", DEP_TYPES, "blocks"),
                        inferred=_bool(item, "inferred", f"{path} {where}")))
    return unique_deps(deps)


@dataclass
class Bead:
    id: str
    title: str
    type: str = "task"
    status: str = "open"
    priority: int = 2
    description: str | None = None
    acceptance: str | None = None
    assignee: str | None = None
    labels: list[str] = field(default_factory=list)
    parent: str | None = None
    deps: list[Dep] = field(default_factory=list)
    rig: str | None = None
    branch: str | None = None
    target: str | None = None
    base_commit: str | None = None
    integration_branch: str | None = None
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    closed_at: str | None = None
    close_reason: str | None = None
    dispatch: dict[str, Any] = field(default_factory=dict)
    import_key: str | None = None
    mr: str | None = None
    formula: str | None = None
    formula_vars: dict[str, Any] = field(default_factory=dict)
    steps_done: list[str] = field(default_factory=list)

    ORDER: ClassVar[tuple[str, ...]] = (
        "id", "title", "type", "status", "priority", "description", "acceptance", "assignee",
        "labels", "parent", "deps", "rig", "branch", "target", "base_commit",
        "integration_branch", "created_at", "created_by", "updated_at", "started_at",
        "closed_at", "close_reason", "dispatch", "import_key", "mr", "formula",
        "formula_vars", "steps_done",
    )

    @property
    def slingable(self) -> bool:
        return self.type in SLINGABLE_TYPES

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    def blocking_deps(self) -> list[Dep]:
        return [d for d in self.deps if d.blocking]

    def to_dict(self) -> dict[str, Any]:
        out = _emit(self, self.ORDER)
        out["priority"] = self.priority
        if self.deps:
            out["deps"] = [d.to_dict() for d in unique_deps(self.deps)]
        return {k: out[k] for k in self.ORDER if k in out}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Bead:
        _check_keys(data, path, set(cls.ORDER))
        bead_id = _id_field(data, path)
        bead = cls(
            id=bead_id,
            title=_str(data, "title", path, required=True, max_len=MAX_TITLE),
            type=_enum(data, "type", path, BEAD_TYPES, "task"),
            status=_enum(data, "status", path, BEAD_STATUSES, "open"),
            priority=_int(data, "priority", path, 2, 0, 4),
            labels=_str_list(data, "labels", path),
            deps=_deps(data, path),
            dispatch=_mapping(data, "dispatch", path),
            formula=_formula_name(data, path),
            formula_vars=_formula_vars(data, path),
            steps_done=_step_ids(data, path),
            **{
                name: _str(data, name, path)
                for name in (
                    "description", "acceptance", "assignee", "parent", "rig",
                    "base_commit", "created_at", "created_by",
                    "updated_at", "started_at", "closed_at", "close_reason", "import_key",
                    "mr",
                )
            },
            **{name: _branch(data, name, path)
               for name in ("branch", "target", "integration_branch")},
        )
        if (bead.status == "closed") != (bead.closed_at is not None):
            raise SchemaError(path, "closed_at", "must be set exactly when status is closed")
        return bead


# --- convoys ----------------------------------------------------------------------------


def _strategy_name(data: dict, path: str) -> str:
    """The convoy's dispatch strategy: a name-shaped string. A name this clone does not
    know is kept (another clone may have the plugin); the feeder falls back for it."""
    value = _str(data, "strategy", path)
    if value is None:
        return DEFAULT_STRATEGY
    if not STRATEGY_NAME_RE.match(value):
        raise SchemaError(path, "strategy", f"{value[:40]!r} is not a strategy name")
    return value


@dataclass
class Convoy:
    id: str
    title: str
    status: str = "open"
    tracks: list[str] = field(default_factory=list)
    rig: str | None = None
    target: str | None = None
    source: str | None = None
    warnings: list[str] = field(default_factory=list)
    created_at: str | None = None
    created_by: str | None = None
    updated_at: str | None = None
    launched_at: str | None = None
    closed_at: str | None = None
    close_reason: str | None = None
    notified: bool = False
    strategy: str = DEFAULT_STRATEGY
    strategy_fallback: str | None = None  # why the last step fell back to blocks, once
    strategy_fallback_at: str | None = None

    ORDER: ClassVar[tuple[str, ...]] = (
        "id", "title", "status", "tracks", "rig", "target", "source", "warnings",
        "created_at", "created_by", "updated_at", "launched_at", "closed_at", "close_reason",
        "notified", "strategy", "strategy_fallback", "strategy_fallback_at",
    )

    def to_dict(self) -> dict[str, Any]:
        out = _emit(self, self.ORDER)
        if not self.notified:
            out.pop("notified", None)
        if self.strategy == DEFAULT_STRATEGY:  # files of convoys that never chose stay as
            out.pop("strategy", None)          # they were (and readable by older clones)
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Convoy:
        _check_keys(data, path, set(cls.ORDER))
        return cls(
            id=_str(data, "id", path, required=True),
            title=_str(data, "title", path, required=True, max_len=MAX_TITLE),
            status=_enum(data, "status", path, CONVOY_STATUSES, "open"),
            tracks=_str_list(data, "tracks", path),
            warnings=list(data.get("warnings") or []),
            notified=_bool(data, "notified", path),
            target=_branch(data, "target", path),
            strategy=_strategy_name(data, path),
            strategy_fallback=_str(data, "strategy_fallback", path, max_len=MAX_FALLBACK),
            **{
                name: _str(data, name, path)
                for name in (
                    "rig", "source", "created_at", "created_by", "updated_at",
                    "launched_at", "closed_at", "close_reason", "strategy_fallback_at",
                )
            },
        )


# --- convoy.yaml: prefix, rigs ----------------------------------------------------------


@dataclass
class Rig:
    name: str
    target: str = "main"
    capacity: int = 3
    parked: bool = False
    dispatch: str | None = None
    strategy: str = "merge"
    prefixes: list[str] = field(default_factory=list)

    ORDER: ClassVar[tuple[str, ...]] = (
        "target", "capacity", "parked", "dispatch", "strategy", "prefixes",
    )

    def to_dict(self) -> dict[str, Any]:
        out = _emit(self, self.ORDER)
        out["capacity"] = self.capacity
        out["parked"] = self.parked
        return {k: out[k] for k in self.ORDER if k in out}

    @classmethod
    def from_dict(cls, name: str, data: Any, path: str) -> Rig:
        where = f"{path} rigs.{name}"
        _check_keys(data, where, set(cls.ORDER))
        return cls(
            name=name,
            target=_branch(data, "target", where) or "main",
            capacity=_int(data, "capacity", where, 3, 1, 10_000),
            parked=_bool(data, "parked", where),
            dispatch=_str(data, "dispatch", where),
            strategy=_enum(data, "strategy", where, ("merge", "squash", "ff-only"), "merge"),
            prefixes=_str_list(data, "prefixes", where),
        )


@dataclass
class Config:
    prefix: str = "cv"
    schema: int = SCHEMA_VERSION
    rigs: dict[str, Rig] = field(default_factory=dict)
    default_rig: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.schema, "prefix": self.prefix}
        if self.default_rig:
            out["default_rig"] = self.default_rig
        if self.rigs:
            out["rigs"] = {name: self.rigs[name].to_dict() for name in sorted(self.rigs)}
        return out

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Config:
        _check_keys(data, path, {"schema", "prefix", "rigs", "default_rig"})
        schema = _int(data, "schema", path, SCHEMA_VERSION, 1, 1_000)
        if schema > SCHEMA_VERSION:
            raise NewerSchema(path, schema, SCHEMA_VERSION)
        rigs_raw = _mapping(data, "rigs", path)
        return cls(
            prefix=_str(data, "prefix", path, required=True),
            schema=schema,
            rigs={str(n): Rig.from_dict(str(n), r or {}, path) for n, r in rigs_raw.items()},
            default_rig=_str(data, "default_rig", path),
        )


def touched(obj: Any, **changes: Any) -> Any:
    """A copy with `changes` applied and updated_at bumped: objects in a snapshot stay intact."""
    names = {f.name for f in fields(obj)}
    if "updated_at" in names:
        changes.setdefault("updated_at", now())
    return replace(obj, **changes)


def resolves(bead: Bead) -> str | None:
    """The merge request a conflict bead resolves (set by the refinery), else None. Such a
    bead works on the conflicting MR's own branch and borrows its bead's rig slot."""
    value = bead.dispatch.get("resolves")
    return value if isinstance(value, str) and value else None


def in_flight(beads: dict[str, Bead], rig: str) -> int:
    """How many beads the rig's workers hold (what its capacity counts)."""
    return sum(1 for b in beads.values() if b.rig == rig and b.status in IN_FLIGHT)


# --- merge requests (the refinery queue) ------------------------------------------------

MR_STATUSES = (
    "queued", "conflict", "rejected", "push_failed", "merged", "superseded", "orphaned",
)
MR_OPEN_STATUSES = frozenset({"queued", "conflict", "rejected", "push_failed"})


@dataclass
class MergeRequest:
    """A request to land `commit` of `branch` on `target`, on behalf of `bead`.

    `retries` counts landing attempts that did not land (conflict, check, push); it lowers the
    MR in the queue. `check_failures` counts failed checks of this bead's work, carried over to
    a newer MR of the same bead so repeated failures escalate.
    """

    id: str
    bead: str
    branch: str
    commit: str
    target: str
    status: str = "queued"
    worker: str | None = None
    retries: int = 0
    check_failures: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    merged_as: str | None = None
    conflict_bead: str | None = None
    conflict_files: list[str] = field(default_factory=list)
    conflict_since: str | None = None
    check_log: str | None = None
    reason: str | None = None
    recovery: str | None = None
    escalated: bool = False

    ORDER: ClassVar[tuple[str, ...]] = (
        "id", "bead", "branch", "commit", "target", "status", "worker", "retries",
        "check_failures", "created_at", "updated_at", "closed_at", "merged_as",
        "conflict_bead", "conflict_files", "conflict_since", "check_log", "reason",
        "recovery", "escalated",
    )

    @property
    def open(self) -> bool:
        return self.status in MR_OPEN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        out = _emit(self, self.ORDER)
        out["retries"] = self.retries
        out["check_failures"] = self.check_failures
        if not self.escalated:
            out.pop("escalated", None)
        return {k: out[k] for k in self.ORDER if k in out}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> MergeRequest:
        _check_keys(data, path, set(cls.ORDER))
        mr_id = _id_field(data, path)
        commit = _commit_field(data, "commit", path)
        return cls(
            id=mr_id,
            bead=_str(data, "bead", path, required=True),
            branch=_branch(data, "branch", path, required=True),
            commit=commit,
            target=_branch(data, "target", path, required=True),
            status=_enum(data, "status", path, MR_STATUSES, "queued"),
            retries=_int(data, "retries", path, 0, 0, 1_000_000),
            check_failures=_int(data, "check_failures", path, 0, 0, 1_000_000),
            conflict_files=_str_list(data, "conflict_files", path),
            escalated=_bool(data, "escalated", path),
            **{
                name: _str(data, name, path)
                for name in (
                    "worker", "created_at", "updated_at", "closed_at", "merged_as",
                    "conflict_bead", "conflict_since", "check_log", "reason", "recovery",
                )
            },
        )


# --- reviews (the integration review gate) ----------------------------------------------

REVIEW_STATUSES = ("pending", "approved", "rejected", "superseded")


@dataclass
class Review:
    """A review of one exact integration tip of an epic (`tip`) against its base.

    The id is derived from the epic and the tip, so starting a review twice (two hooks, two
    clones) writes one object; a new tip means a new review, and the older one is superseded.
    """

    id: str
    epic: str
    branch: str
    base: str
    tip: str
    base_tip: str | None = None
    status: str = "pending"
    formula: str | None = None
    findings: list[str] = field(default_factory=list)
    diffstat: str | None = None
    report: str | None = None
    report_path: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    fix_bead: str | None = None
    note: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    ORDER: ClassVar[tuple[str, ...]] = (
        "id", "epic", "branch", "base", "tip", "base_tip", "status", "formula", "findings",
        "diffstat", "report", "report_path", "reason", "decided_by", "fix_bead", "note",
        "created_at", "updated_at",
    )

    def to_dict(self) -> dict[str, Any]:
        out = _emit(self, self.ORDER)
        out["findings"] = list(self.findings)
        return {k: out[k] for k in self.ORDER if k in out}

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Review:
        _check_keys(data, path, set(cls.ORDER))
        review_id = _id_field(data, path)
        tip = _commit_field(data, "tip", path)
        findings = data.get("findings") or []
        if not isinstance(findings, list) or not all(isinstance(f, str) for f in findings):
            raise SchemaError(path, "findings", "expected a list of strings")
        return cls(
            id=review_id,
            epic=_str(data, "epic", path, required=True),
            branch=_branch(data, "branch", path, required=True),
            base=_branch(data, "base", path, required=True),
            tip=tip,
            status=_enum(data, "status", path, REVIEW_STATUSES, "pending"),
            findings=list(findings),
            **{
                name: _str(data, name, path)
                for name in (
                    "base_tip", "formula", "diffstat", "report", "report_path", "reason",
                    "decided_by", "fix_bead", "note", "created_at", "updated_at",
                )
            },
        )
