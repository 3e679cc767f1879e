"""A worker's side of a dispatch: `git convoy work <bead>` and `git convoy step done`
(docs/workers.md).

`prepare` turns a handed-out bead into a worker's brief:
1. the bead must be handed out (hooked or in progress) and its work branch here (a branch
   only on the remote, pushed from another clone, is created locally at that tip);
2. its worktree: the one that has the branch checked out, else a new one under
   `.git/convoy/worktrees/<bead>` (gitconvoy.git.worktrees);
3. the start is recorded: hooked → in_progress, one transaction (none when it had started);
4. the brief: the bead's text, the landed commits of its closed blockers (which its base
   contains, gitconvoy.plan.carry), a conflict's merge request and files, and the steps of
   its formula (the bead's own, else its rig's default) with what is done.

Steps are recorded on the bead (`steps_done`, a set that merges across clones) only when the
step exists in the formula the bead names; `done` warns about the ones left (`unfinished`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitconvoy.errors import ConvoyError
from gitconvoy.flow.dispatch import branch_name, branch_tip, conflicting_mr, worker_formula
from gitconvoy.git import formulas, worktrees
from gitconvoy.git.formulas import Formula
from gitconvoy.plan import carry, graph
from gitconvoy.plan.edits import with_status
from gitconvoy.plan.targets import rig_for, target_for
from gitconvoy.state.model import IN_FLIGHT, STEP_ID_RE, Bead, Convoy, touched
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx


@dataclass
class StepState:
    id: str
    title: str
    description: str
    needs: list[str]
    run: str | None
    done: bool
    ready: bool  # not done, and every step it needs is

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "description": self.description,
                "needs": self.needs, "run": self.run, "done": self.done, "ready": self.ready}


@dataclass
class Landed:
    """A closed blocker's work, which the bead's base contains."""

    bead: str
    title: str
    commit: str


@dataclass
class Brief:
    bead: Bead
    worktree: str | None
    convoy: str | None
    formula: Formula | None  # bound: {{vars}} filled in
    steps: list[StepState]
    blockers: list[Landed]
    conflict: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # this call moved it from hooked to in_progress

    def to_json(self) -> dict[str, Any]:
        b = self.bead
        f = self.formula
        return {
            "bead": b.id, "title": b.title, "type": b.type, "status": b.status,
            "priority": b.priority, "description": b.description, "acceptance": b.acceptance,
            "rig": b.rig, "convoy": self.convoy, "branch": b.branch, "target": b.target,
            "base_commit": b.base_commit, "worktree": self.worktree, "started": self.started,
            "blockers": [{"bead": x.bead, "title": x.title, "commit": x.commit}
                         for x in self.blockers],
            "conflict": self.conflict or None,
            "formula": None if f is None else {
                "name": f.name, "version": f.version, "source": f.source,
                "description": f.description, "vars": dict(b.formula_vars)},
            "steps": [s.to_json() for s in self.steps],
        }


# --- reading -----------------------------------------------------------------------------


def step_states(formula: Formula, done: list[str]) -> list[StepState]:
    """Each step of the (bound) formula with its status, in file order (pure)."""
    finished = set(done)
    return [StepState(s.id, s.title, s.description, list(s.needs), s.run, s.id in finished,
                      s.id not in finished and all(n in finished for n in s.needs))
            for s in formula.steps]


def bound_formula(store: Store, snap: Snapshot, bead: Bead) -> Formula | None:
    """The formula the bead's worker follows, its {{vars}} filled in from the bead; None
    when it has none. One that cannot be followed here is an error naming why."""
    rig = rig_for(snap.config, bead, _convoy_of(snap, bead.id))
    name, problem = worker_formula(store, bead, rig)
    if problem is not None:
        raise ConvoyError(f"{bead.id}: {problem}")
    if name is None:
        return None
    formula = formulas.for_worker(store, name, bead.formula_vars)
    convoy = _convoy_of(snap, bead.id)
    auto = {"bead": bead.id, "title": bead.title,  # before dispatch: what it will get
            "branch": bead.branch or branch_name(store, bead),
            "target": bead.target or target_for(snap.beads, snap.config, bead, convoy) or "",
            "rig": bead.rig or (rig.name if rig else "")}
    return formulas.bind(formula, {**bead.formula_vars, **auto})


def _convoy_of(snap: Snapshot, bead_id: str) -> Convoy | None:
    tracking = sorted((c for c in snap.convoys.values()
                       if c.status == "open" and bead_id in c.tracks), key=lambda c: c.id)
    return tracking[0] if tracking else None


def landed_blockers(snap: Snapshot, bead: Bead) -> list[Landed]:
    """The commits the closed blockers landed as (of the bead and its ancestors)."""
    index = graph.Index(snap.beads)
    return [Landed(b, snap.beads[b].title if b in snap.beads else "", sha)
            for b, sha in carry.required(index, bead, snap.objects["mrs"])]


def conflict_of(store: Store, snap: Snapshot, bead: Bead) -> dict[str, Any]:
    """For a conflict bead: the merge request it unblocks, its files, the target's tip."""
    mr = conflicting_mr(snap, bead)
    if mr is None:
        return {}
    return {"mr": mr.id, "resolves": mr.bead, "files": list(mr.conflict_files),
            "target": mr.target, "target_tip": branch_tip(store, mr.target)}


def step_counts(store: Store, beads: list[Bead]) -> dict[str, tuple[int, int]]:
    """(done, total) formula steps of each bead in flight that names a formula readable here
    (`status` shows them); each formula is read once."""
    known: dict[tuple[Any, ...], list[str] | None] = {}
    out: dict[str, tuple[int, int]] = {}
    for bead in beads:
        if bead.status not in IN_FLIGHT or not bead.formula:
            continue
        key = (bead.formula, tuple(sorted(bead.formula_vars.items())))
        if key not in known:
            try:
                found = formulas.for_worker(store, bead.formula, bead.formula_vars)
                known[key] = [s.id for s in found.steps]
            except ConvoyError:
                known[key] = None
        ids = known[key]
        if ids:
            out[bead.id] = (sum(i in bead.steps_done for i in ids), len(ids))
    return out


def unfinished(store: Store, bead_id: str) -> tuple[list[str], str | None]:
    """(steps not recorded as done, a problem reading the formula): for `done`'s warning."""
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    try:
        formula = bound_formula(store, snap, bead)
    except ConvoyError as exc:
        return [], exc.message
    if formula is None:
        return [], None
    return [s.id for s in step_states(formula, bead.steps_done) if not s.done], None


# --- the worker's start ------------------------------------------------------------------


def _workable(bead: Bead) -> None:
    if bead.status in IN_FLIGHT and bead.branch:
        return
    if bead.status == "open":
        raise ConvoyError(f"{bead.id} is open: it has not been handed out; dispatch it "
                          f"('git convoy sling {bead.id}') or take it ('git convoy claim')")
    if bead.done:
        why = f" ({bead.close_reason})" if bead.close_reason else ""
        raise ConvoyError(f"{bead.id} is {bead.status}{why}: there is nothing to work on")
    if bead.status in IN_FLIGHT:
        raise ConvoyError(f"{bead.id} has no work branch: hand it back ('git convoy bead "
                          f"update {bead.id} --status open') and dispatch it again")
    raise ConvoyError(f"{bead.id} is {bead.status}: it is not handed out to a worker")


def _local_branch(store: Store, branch: str) -> None:
    """The work branch exists here: a branch only on the remote (the worker's claim was
    made on another clone and pushed) is created at the remote's tip."""
    ref = f"refs/heads/{branch}"
    if store.head_of(ref) is not None:
        return
    tip = branch_tip(store, branch)
    if tip is None:
        raise ConvoyError(f"branch {branch} is not in this clone: fetch it (git fetch "
                          f"origin {branch}:{branch}) and run again")
    if not store.cas_ref(ref, None, tip, f"work: create {branch} from its remote copy"):
        raise ConvoyError(f"branch {branch} appeared while preparing it; run again")


def _start(tx: Tx, bead_id: str) -> bool:
    """hooked → in_progress (the worker has begun); False when there was nothing to do."""
    bead = tx.bead(bead_id)
    if bead.status != "hooked":
        return False
    tx.put(with_status(bead, "in_progress"))
    return True


def prepare(store: Store, bead_id: str) -> Brief:
    """The worktree, the recorded start and the brief of a handed-out bead."""
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    _workable(bead)
    formula = bound_formula(store, snap, bead)  # a formula nobody can follow: stop here
    branch = bead.branch or ""
    _local_branch(store, branch)
    path = worktrees.ensure(store, branch, worktrees.bead_worktree(store, bead.id))
    started = store.transact(lambda tx: _start(tx, bead_id), f"work started {bead_id}")
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    convoy = _convoy_of(snap, bead_id)
    return Brief(bead=bead, worktree=path, convoy=convoy.id if convoy else None,
                 formula=formula,
                 steps=step_states(formula, bead.steps_done) if formula else [],
                 blockers=landed_blockers(snap, bead), conflict=conflict_of(store, snap, bead),
                 started=started)


# --- steps -------------------------------------------------------------------------------


@dataclass
class StepRecorded:
    bead: str
    step: str
    new: bool  # False: it was recorded before
    waiting: list[str]  # steps it needs that are not done
    left: list[str]  # steps still to do after this one


def record_step(store: Store, bead_id: str, step_id: str) -> StepRecorded:
    """Record a formula step of the bead as done. The step must exist in the formula the
    bead names; a step recorded before its `needs` is recorded, and the caller warns."""
    if not STEP_ID_RE.match(step_id):
        raise ConvoyError(f"step id {step_id!r} is not valid (letters, digits, '.', '_', '-')")
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    if bead.done:
        raise ConvoyError(f"{bead_id} is {bead.status}: its steps are final")
    formula = bound_formula(store, snap, bead)
    if formula is None:
        raise ConvoyError(f"{bead_id} has no formula: there are no steps to record (give it "
                          f"one with 'git convoy sling {bead_id} --formula NAME')")
    known = [s.id for s in formula.steps]
    if step_id not in known:
        raise ConvoyError(f"{bead_id}: formula {formula.name} has no step '{step_id}' "
                          f"(steps: {', '.join(known)})")
    needs = next(s.needs for s in formula.steps if s.id == step_id)

    def mutate(tx: Tx) -> StepRecorded:
        current = tx.bead(bead_id)
        if current.formula not in (None, bead.formula):
            raise ConvoyError(f"{bead_id}'s formula changed to {current.formula} meanwhile; "
                              "run again")
        done = set(current.steps_done)
        new = step_id not in done
        if new:
            tx.put(touched(current, steps_done=sorted(done | {step_id}),
                           formula=current.formula or formula.name))
        done.add(step_id)
        return StepRecorded(bead_id, step_id, new, [n for n in needs if n not in done],
                            [s for s in known if s not in done])

    return store.transact(mutate, f"step done {bead_id} {step_id}")
