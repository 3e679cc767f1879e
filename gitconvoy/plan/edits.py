"""Mutations of beads and deps, applied to a transaction and re-applied on a lost race.

Each function validates against the transaction's current view and raises ConvoyError before
anything is recorded, so a refused edit writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitconvoy.errors import ConvoyError
from gitconvoy.plan import graph
from gitconvoy.plan.stage_options import capstone_id
from gitconvoy.state import ids
from gitconvoy.state.model import (
    BEAD_STATUSES,
    BEAD_TYPES,
    DEP_TYPES,
    MAX_TITLE,
    Bead,
    Dep,
    now,
    touched,
    unique_deps,
    validate_id,
)
from gitconvoy.state.tx import Tx


@dataclass
class BeadSpec:
    """What a user asks for when creating a bead (CLI options or one item of a batch)."""

    title: str
    type: str = "task"
    priority: int = 2
    description: str | None = None
    acceptance: str | None = None
    assignee: str | None = None
    labels: list[str] = field(default_factory=list)
    parent: str | None = None
    deps: list[Dep] = field(default_factory=list)
    rig: str | None = None
    target: str | None = None
    id: str | None = None
    status: str = "open"
    import_key: str | None = None


def check_title(title: str | None, where: str = "title") -> str:
    if title is None or not title.strip():
        raise ConvoyError(f"{where} must not be empty")
    if len(title) > MAX_TITLE:
        raise ConvoyError(f"{where} is longer than {MAX_TITLE} characters")
    if any(c in title.strip() for c in "\n\r\v\f\x85\u2028\u2029"):
        raise ConvoyError(f"{where} must be one line (listings show one bead per line): put "
                          "the rest in --description")
    return title.strip()


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConvoyError(f"unknown {what} '{value}': expected one of {', '.join(allowed)}")
    return value


def parse_dep(text: str) -> Dep:
    """`ID` (blocks) or `TYPE:ID`."""
    dep_type, sep, target = text.rpartition(":")
    if not sep:
        return Dep(text, "blocks")
    check_choice(dep_type, DEP_TYPES, "dep type")
    return Dep(target, dep_type)


def check_priority(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < 0 or number > 4 or str(number) != str(value).strip():
        raise ConvoyError(f"priority must be an integer from 0 (highest) to 4, got {value!r}")
    return number


def live_bead(tx: Tx, bead_id: str) -> Bead:
    bead = tx.bead(bead_id)
    if bead.status == "tombstone":
        raise ConvoyError(f"bead '{bead_id}' was deleted")
    return bead


def _refuse_cycle(tx: Tx, bead_id: str) -> None:
    cycle = graph.cycle_through(tx.beads, bead_id)
    if cycle:
        path = graph.format_cycle(cycle)
        raise ConvoyError(f"refused: that would make a dependency cycle {path}")


def create_bead(tx: Tx, spec: BeadSpec, actor: str) -> Bead:
    bead = _put_new_bead(tx, spec, actor)
    if spec.parent or spec.deps:
        _refuse_cycle(tx, bead.id)
    return bead


def create_beads(tx: Tx, specs: list[BeadSpec], actor: str) -> list[Bead]:
    """The bulk path: every bead validated and written, then ONE linear cycle check.

    Checking each bead on its own would rebuild the graph index per bead (quadratic at 10k).
    Later items may refer to earlier ones by their explicit `id`. Cycles that existed before
    (say, after a merge) do not stop a batch; only a cycle through a new bead does.
    """
    if len(specs) > 32 and any(spec.parent or spec.deps for spec in specs):
        tx.beads.keys()  # one load (from the cache), so each parent and dep below is a
        # dict lookup, not a YAML file parsed on its own
    made = [_put_new_bead(tx, spec, actor) for spec in specs]
    # A cycle through a new bead needs an edge INTO one. A made-up id is new to every
    # bead; an explicit id may be named by a bead of this batch, or by an old dangling dep.
    if any(spec.id for spec in specs):
        new_ids = {b.id for b in made}
        for cycle in graph.find_cycles(tx.beads):
            if new_ids.intersection(cycle):
                raise ConvoyError(
                    f"refused: that would make a dependency cycle {graph.format_cycle(cycle)}"
                )
    return made


def _put_new_bead(tx: Tx, spec: BeadSpec, actor: str) -> Bead:
    title = check_title(spec.title)
    check_choice(spec.type, BEAD_TYPES, "bead type")
    check_choice(spec.status, BEAD_STATUSES, "status")
    priority = check_priority(spec.priority)
    if spec.id:
        bead_id = validate_id(spec.id)
        if bead_id in tx.beads or tx.base.error_for("beads", bead_id) is not None:
            raise ConvoyError(f"bead '{bead_id}' already exists")
    else:
        bead_id = ids.new_id(tx.config.prefix, title, tx.beads, tx.beads.count() + 1)
    if spec.parent:
        live_bead(tx, spec.parent)
    for dep in spec.deps:
        check_choice(dep.type, DEP_TYPES, "dep type")
        if dep.on == bead_id:
            raise ConvoyError(f"refused: {bead_id} cannot depend on itself")
        live_bead(tx, dep.on)
    stamp = now()
    bead = Bead(
        id=bead_id, title=title, type=spec.type, status=spec.status, priority=priority,
        description=spec.description, acceptance=spec.acceptance, assignee=spec.assignee,
        labels=sorted(set(spec.labels)), parent=spec.parent,
        deps=sorted({d for d in spec.deps if d.type != "parent-child"}),
        rig=spec.rig, target=spec.target, created_at=stamp, created_by=actor,
        updated_at=stamp, import_key=spec.import_key,
        closed_at=stamp if spec.status == "closed" else None,
        started_at=stamp if spec.status in ("in_progress", "hooked") else None,
    )
    tx.put(bead)
    return bead


def with_status(bead: Bead, status: str, reason: str | None = None) -> Bead:
    """Keep the status invariants: closed_at iff closed, started_at on first start."""
    check_choice(status, BEAD_STATUSES, "status")
    stamp = now()
    changes: dict[str, Any] = {"status": status, "updated_at": stamp}
    if status == "closed":
        changes["closed_at"] = bead.closed_at if bead.status == "closed" else stamp
        changes["close_reason"] = reason if reason is not None else bead.close_reason
    else:
        changes["closed_at"] = None
        if bead.status == "closed":
            changes["close_reason"] = None
    if status in ("in_progress", "hooked") and not bead.started_at:
        changes["started_at"] = stamp
    return touched(bead, **changes)


def update_bead(tx: Tx, bead_id: str, **fields: Any) -> Bead:
    """Set the given fields; `add_labels`/`remove_labels` edit the label set."""
    bead = live_bead(tx, bead_id)
    add = fields.pop("add_labels", None) or []
    remove = fields.pop("remove_labels", None) or []
    status = fields.pop("status", None)
    reason = fields.pop("reason", None)
    if "title" in fields:
        fields["title"] = check_title(fields["title"])
    if "type" in fields:
        check_choice(fields["type"], BEAD_TYPES, "bead type")
    if "priority" in fields:
        fields["priority"] = check_priority(fields["priority"])
    parent = fields.get("parent")
    if parent:
        if parent == bead_id:
            raise ConvoyError(f"refused: {bead_id} cannot be its own parent")
        live_bead(tx, parent)
    if fields.get("parent") == "":
        fields["parent"] = None
    if add or remove:
        fields["labels"] = sorted((set(bead.labels) | set(add)) - set(remove))
    updated = touched(bead, **fields)
    if status is not None:
        if status == "closed":
            _refuse_before_capstone(tx, updated)
        updated = with_status(updated, status, reason)
    tx.put(updated)
    if parent:
        _refuse_cycle(tx, bead_id)
    return updated


def _refuse_before_capstone(tx: Tx, bead: Bead) -> None:
    """A root epic staged with --validate closes after its validation task, never before:
    closing it by hand would skip the check the plan asked for."""
    if bead.type != "epic":
        return
    cap = tx.beads.get(capstone_id(bead.id))
    if cap is not None and cap.parent == bead.id and not cap.done:
        raise ConvoyError(f"refused: {bead.id} closes after its validation task {cap.id} "
                          f"({cap.status}): close or delete {cap.id} first")


def close_bead(tx: Tx, bead_id: str, reason: str | None) -> Bead:
    bead = live_bead(tx, bead_id)
    _refuse_before_capstone(tx, bead)
    closed = with_status(bead, "closed", reason or "closed")
    tx.put(closed)
    return closed


def reopen_bead(tx: Tx, bead_id: str) -> Bead:
    bead = live_bead(tx, bead_id)
    if bead.status != "closed":
        raise ConvoyError(f"bead '{bead_id}' is {bead.status}, not closed: nothing to reopen")
    opened = with_status(bead, "open")
    tx.put(opened)
    return opened


def delete_bead(tx: Tx, bead_id: str) -> Bead:
    """A tombstone, not a removal: it keeps the id from coming back through a merge."""
    bead = live_bead(tx, bead_id)
    gone = with_status(bead, "tombstone", None)
    tx.put(gone)
    return gone


def add_dep(tx: Tx, src: str, dst: str, dep_type: str) -> Bead:
    """`src` depends on `dst`; a parent-child dep sets src's parent."""
    check_choice(dep_type, DEP_TYPES, "dep type")
    if src == dst:
        raise ConvoyError(f"refused: {src} cannot depend on itself")
    bead = live_bead(tx, src)
    live_bead(tx, dst)
    if dep_type == "parent-child":
        updated = touched(bead, parent=dst)
    else:
        dep = Dep(dst, dep_type)
        if dep in bead.deps:
            return bead
        # stated by a person: it replaces an inferred dep of the same edge, so a re-stage
        # without --infer-blocks keeps it
        updated = touched(bead, deps=unique_deps([*bead.deps, dep]))
    tx.put(updated)
    if dep_type == "parent-child" or Dep(dst, dep_type).blocking:
        _refuse_cycle(tx, src)
    return updated


def remove_dep(tx: Tx, src: str, dst: str, dep_type: str | None) -> Bead:
    bead = live_bead(tx, src)
    if dep_type in (None, "parent-child") and bead.parent == dst:
        updated = touched(bead, parent=None)
    else:
        keep = [d for d in bead.deps if not (d.on == dst and dep_type in (None, d.type))]
        if len(keep) == len(bead.deps):
            raise ConvoyError(f"{src} has no {dep_type or ''} dep on {dst}".replace("  ", " "))
        updated = touched(bead, deps=keep)
    tx.put(updated)
    return updated


def deps_of(bead: Bead) -> list[Dep]:
    """Outgoing edges as the user sees them: stored deps plus the parent link."""
    out = list(bead.deps)
    if bead.parent:
        out.append(Dep(bead.parent, "parent-child"))
    return sorted(out)
