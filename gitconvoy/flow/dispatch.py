"""Sling: hand a ready bead to a rig's worker.

Order of effects, chosen so a crash leaves nothing inconsistent that the feeder cannot mend:
1. one state transaction claims the bead (still ready? rig has room?) → status hooked, rig,
   branch, target, base_commit, attempts; the CAS makes two feeders of one clone dispatch a
   bead once; with a shared remote the claim is then published and confirmed by a fetch,
   or conceded (gitconvoy.flow.publish), so feeders and `claim` workers on many clones
   dispatch it once too;
2. the work branch `convoy/<id>` is created at base_commit (with pygit2: no hooks fire);
3. the rig's dispatch command runs with CONVOY_* in its environment (never spliced into a
   shell string); on failure the bead is rolled back to open with the reason recorded.

By hand (`feed`, `sling`, `launch`) the command runs in the foreground and its failure is
known at once. From a hook (`detach=True`) it starts detached (gitconvoy.flow.detached): the
hook must not hold git, so "dispatched" means "started", and a failure is found by the next
feeder step, which hands the bead back the same way.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gitconvoy import faults
from gitconvoy.errors import ConvoyError
from gitconvoy.flow import detached, publish
from gitconvoy.git import formulas, localconfig, revs, watch, worktrees
from gitconvoy.git.sync import sync
from gitconvoy.plan import carry, graph
from gitconvoy.plan.edits import with_status
from gitconvoy.plan.targets import integration_ancestor, rig_for, target_for
from gitconvoy.state.model import (
    IN_FLIGHT,
    Bead,
    Convoy,
    MergeRequest,
    Rig,
    in_flight,
    now,
    resolves,
    to_second,
    touched,
)
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

BRANCH_TEMPLATE = "convoy/{id}"
DISPATCH_TIMEOUT = 600


@dataclass
class Dispatched:
    bead: str
    ok: bool
    detail: str
    lost: bool = False  # not dispatched here because someone else has it: nothing to fix

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.bead}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {"bead": self.bead, "ok": self.ok, "detail": self.detail}


def nothing_dispatched(results: list[Dispatched]) -> bool:
    """Dispatches were tried, none worked, and not only because others had the beads
    first: `launch`, `sling` and `feed` exit 1 (docs/convoys.md)."""
    return (bool(results) and not any(r.ok for r in results)
            and not all(r.lost for r in results))


def branch_name(store: Store, bead: Bead) -> str:
    template = store.config_get("convoy.branchTemplate") or BRANCH_TEMPLATE
    name = template.format(id=bead.id)
    if not name or ".." in name or name.startswith("/") or " " in name:
        raise ConvoyError(f"convoy.branchTemplate gives an invalid branch name {name!r}")
    return name


def branch_tip(store: Store, branch: str) -> str | None:
    """A branch's newest known tip (revs.newest_tip). For a target: landed work a fetch
    brought counts as landed, and dependents branch from a base that contains it. For a
    work branch: a worker on another machine pushed it."""
    return revs.newest_tip(store, branch)


def backoff_due(bead: Bead, at: str | None = None) -> bool:
    """A bead whose last dispatch failed waits before the feeder tries it again."""
    next_try = bead.dispatch.get("next_try")
    return not next_try or str(next_try) <= (at or now())


def _next_try(attempts: int) -> str:
    delay = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return (datetime.now(UTC) + timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _claim(tx: Tx, bead_id: str, convoy: Convoy | None, rig_name: str | None,
           branch_for: dict[str, str], tips: dict[str, str | None],
           clone: str, rig_formulas: Mapping[str, str] | None = None) -> Bead | str:
    """Claim inside a transaction; a string result says why the bead was skipped, and what
    to do about it. `rig_formulas`: rigs' default formulas (checked beforehand), for a bead
    without one."""
    bead = tx.bead(bead_id)
    index = graph.Index(tx.beads, copy=False)  # one bead's blockers: a few lookups
    if bead.status != "open":
        return _not_open(bead)
    if not bead.slingable:
        return _not_work(bead)
    blockers = index.blockers(bead)
    if blockers:
        return (f"blocked by {blockers[0].describe()}: the feeder dispatches it once that "
                "closes (git convoy blocked)")
    rig = tx.config.rigs.get(rig_name) if rig_name else rig_for(tx.config, bead, convoy)
    if rig is None:
        return "has no rig: add one with 'git convoy rig add' or pass --rig"
    if rig.parked:
        return f"rig {rig.name} is parked: git convoy rig unpark {rig.name}"
    conflict = conflicting_mr(tx, bead)
    if conflict is None and resolves(bead):
        return (f"resolves {resolves(bead)}, which is no longer in conflict: close it "
                f"(git convoy bead close {bead.id})")
    if conflict is None and in_flight(tx.beads, rig.name) >= rig.capacity:
        return (f"rig {rig.name} is at capacity ({rig.capacity}): the feeder dispatches it "
                f"when a slot frees (more: git convoy rig update {rig.name} --capacity N)")
    claimed = touched(bead, rig=rig.name)
    target = conflict.target if conflict else target_for(tx.beads, tx.config, claimed, convoy)
    if not target:
        return (f"has no target branch: git convoy bead update {bead.id} --target BRANCH "
                f"(or git convoy rig update {rig.name} --target BRANCH)")
    tip = tips.get(target)
    if tip is None:
        return f"target branch {target} does not exist: {_make_target(tx, claimed, target)}"
    branch = branch_for[bead_id]
    if conflict is not None:  # on the work's own branch, from the commit that conflicted
        branch, tip = conflict.branch, conflict.commit
    dispatch = dict(bead.dispatch)
    dispatch["attempts"] = int(dispatch.get("attempts", 0)) + 1
    dispatch["last_attempt"] = now()
    dispatch["by"] = clone
    dispatch.pop("next_try", None)
    dispatch.pop("last_error", None)
    claimed = with_status(claimed, "hooked")
    claimed = touched(
        claimed, branch=branch, target=target, base_commit=tip,
        assignee=bead.assignee or f"{rig.name}-worker", dispatch=dispatch,
        formula=bead.formula or (rig_formulas or {}).get(rig.name),
    )
    tx.put(claimed)
    return claimed


def worker_formula(store: Store, bead: Bead, rig: Rig | None,
                   seen: dict[tuple[Any, ...], str | None] | None = None,
                   ) -> tuple[str | None, str | None]:
    """(formula, problem): the workflow formula the bead's worker follows — its own (`sling
    --formula`, a conflict bead's), else its rig's default (`convoy.rig.<rig>.formula`,
    trusted config only) — and why it cannot be followed here (unknown on this clone, a
    review formula, a var it lacks), else None. A bead with a problem is not handed out:
    its worker would get steps nobody can read. `seen` memoises checks within one step."""
    own = bead.formula
    name = own or (localconfig.rig_setting(store, rig, "formula") if rig else None)
    if not name:
        return None, None
    key = (name, tuple(sorted(bead.formula_vars.items())))
    if seen is not None and key in seen:
        return name, seen[key]
    try:
        formulas.for_worker(store, name, bead.formula_vars)
        problem = None
    except ConvoyError as exc:
        problem = exc.message if own or rig is None else \
            f"rig {rig.name}'s formula (convoy.rig.{rig.name}.formula): {exc.message}"
    if seen is not None:
        seen[key] = problem
    return name, problem
def _not_open(bead: Bead) -> str:
    if bead.status in IN_FLIGHT:
        return (f"is {bead.status}: a worker has it already (git convoy bead show {bead.id})")
    if bead.status == "closed":
        return f"is closed: reopen it first (git convoy bead reopen {bead.id})"
    if bead.status == "tombstone":
        return "was deleted"
    return f"is {bead.status}: open it first (git convoy bead update {bead.id} --status open)"


def _not_work(bead: Bead) -> str:
    article = "an" if bead.type[:1] in "aeiou" else "a"
    if bead.type == "epic":
        return (f"is an epic, not slingable work: stage it to dispatch its tasks "
                f"(git convoy stage {bead.id})")
    return (f"is {article} {bead.type}, not slingable work: only tasks, bugs, features and "
            "chores are dispatched")


def _make_target(tx: Tx, bead: Bead, target: str) -> str:
    """How to make a missing target: an epic's integration branch is cut (or restored) by
    its epic; any other branch is the user's to create, or to aim the work elsewhere."""
    holder = integration_ancestor(tx.beads, bead)
    if holder is not None and holder.integration_branch == target:
        if not holder.base_commit:  # planned by an import, never cut
            return f"git convoy integration create {holder.id}"
        return (f"it was cut from {holder.base_commit[:10]} for {holder.id} and is gone: "
                f"restore it (git fetch, or git branch {target} {holder.base_commit[:10]})")
    where = (f"git convoy rig update {bead.rig} --target BRANCH" if bead.rig and not bead.target
             else f"git convoy bead update {bead.id} --target BRANCH")
    return (f"create it (git branch {target} <start-point>) or aim the work elsewhere "
            f"({where})")


def conflicting_mr(state: Snapshot | Tx, bead: Bead) -> MergeRequest | None:
    """The MR a conflict bead resolves, while it is still in conflict (else None)."""
    mr = state.objects["mrs"].get(resolves(bead) or "")
    return mr if mr is not None and mr.status == "conflict" else None


def handed_back(bead: Bead, reason: str) -> Bead:
    """A hooked bead whose dispatch failed, back to open: the reason recorded, the next try
    after a back-off, the claim's branch, base and default assignee dropped (pure)."""
    dispatch = dict(bead.dispatch)
    attempts = int(dispatch.get("attempts", 1))
    dispatch["last_error"] = reason
    dispatch["next_try"] = _next_try(attempts)
    return touched(with_status(bead, "open"), dispatch=dispatch, base_commit=None,
                   branch=None, assignee=None if bead.assignee and
                   bead.assignee.endswith("-worker") else bead.assignee)


def rollback(store: Store, bead_id: str, reason: str) -> str | None:
    """Hand a failed dispatch back; its next try (None when it was no longer hooked)."""
    def mutate(tx: Tx) -> str | None:
        bead = tx.bead(bead_id)
        if bead.status != "hooked":
            return None
        back = handed_back(bead, reason)
        tx.put(back)
        return str(back.dispatch["next_try"])

    return store.transact(mutate, f"dispatch failed {bead_id}: {reason[:60]}")


def _ensure_branch(store: Store, branch: str, tip: str) -> None:
    ref = f"refs/heads/{branch}"
    current = store.head_of(ref)
    if current is None and tip not in store.repo:
        raise ConvoyError(f"commit {tip[:10]} for {branch} is not in this clone: fetch it "
                          f"(git fetch origin {branch}) and feed again")
    if current is None:
        if not store.cas_ref(ref, None, tip, f"dispatch: create {branch}"):
            raise ConvoyError(f"branch {branch} appeared while dispatching: another process "
                              f"made it (git log -1 {branch})")
    elif not revs.is_ancestor(store, tip, current) and not revs.is_ancestor(store, current, tip):
        raise ConvoyError(f"branch {branch} exists and has diverged from its target: rename "
                          f"or delete it (git branch -m {branch} {branch}-old)")


def conflict_env(store: Store, bead: Bead) -> dict[str, str]:
    """What a worker resolving a conflict needs beyond the usual: the MR, the bead whose
    work it unblocks, the files (one per line) and the target's tip it conflicted with."""
    if not resolves(bead):  # most beads: no state read at all
        return {}
    mr = conflicting_mr(store.snapshot(), bead)
    if mr is None:
        return {}
    tip = branch_tip(store, mr.target) or ""
    return {
        "CONVOY_RESOLVES": mr.bead, "CONVOY_MR": mr.id, "CONVOY_TARGET_TIP": tip,
        "CONVOY_CONFLICT_FILES": "\n".join(f.replace("\0", "") for f in mr.conflict_files),
    }


def _run_command(store: Store, rig: Rig, bead: Bead, convoy: Convoy | None,
                 detach: bool, coordinator: bool = False) -> tuple[bool, str]:
    """`coordinator`: an epic slung to a coordinator, which works on no branch of its own:
    no worktree, CONVOY_COORDINATOR=1 (dispatch_coordinator)."""
    command = localconfig.rig_setting(store, rig, "dispatch")
    workdir = localconfig.command_dir(store)  # the same from every worktree and hook
    worktree = ""
    where = "its coordinator" if coordinator else f"on {bead.branch}"
    wants_worktree = localconfig.rig_setting(store, rig, "worktree") in ("true", "yes", "1")
    if wants_worktree and not coordinator:
        try:  # the branch's own worktree if it has one (a conflict bead's), else a new one
            worktree = worktrees.ensure(store, bead.branch or "",
                                        worktrees.bead_worktree(store, bead.id))
        except ConvoyError as exc:
            return False, exc.message
    env = {
        **os.environ,
        "CONVOY_BEAD": bead.id,
        "CONVOY_TITLE": bead.title,
        "CONVOY_BRANCH": bead.branch or "",
        "CONVOY_WORKTREE": worktree,
        "CONVOY_TARGET": bead.target or "",
        "CONVOY_FORMULA": bead.formula or "",
        "CONVOY_RIG": rig.name,
        "CONVOY_CONVOY": convoy.id if convoy else "",
        "CONVOY_IN_HOOK": "1",
        **({"CONVOY_COORDINATOR": "1"} if coordinator else conflict_env(store, bead)),
    }
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    if not command:
        if coordinator:
            return True, ("coordinator recorded (no dispatch command configured: follow "
                          f"the steps yourself, git convoy formula show {bead.formula})")
        inside = f" in {worktree}" if worktree else ""
        return True, f"branch {bead.branch} ready{inside} (no dispatch command configured)"
    written = command
    if worktree:  # runs in the bead's worktree; its program is still the user's
        command = localconfig.anchored(command, workdir)
    if detach:
        try:
            run = detached.start(store, bead, command, cwd=worktree or workdir, env=env)
        except OSError as exc:
            return False, (f"dispatch command could not start: {exc.strerror}: fix "
                           f"{_setting(store, rig)}")
        return True, f"dispatch started {where} (rig {rig.name}); log: {run.log}"
    try:
        proc = subprocess.run(command, shell=True, cwd=worktree or workdir, env=env,
                              capture_output=True, text=True, timeout=DISPATCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, (f"dispatch command timed out after {DISPATCH_TIMEOUT}s: it must start "
                       f"the worker and return (run it in the background), then git convoy "
                       f"sling {bead.id}")
    except OSError as exc:
        return False, (f"dispatch command could not start: {exc.strerror}: fix "
                       f"{_setting(store, rig)}")
    if proc.returncode == 127:
        return False, (f"dispatch command not found: {written}{_looked_up(written, workdir)}: "
                       f"fix {_setting(store, rig)}")
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        said = f": {last[0][:200]}" if last[0] else ""
        return False, (f"dispatch command exited {proc.returncode}{said}: fix it, then git "
                       f"convoy sling {bead.id}")
    return True, f"dispatched {where} (rig {rig.name})"


def _setting(store: Store, rig: Rig) -> str:
    """Where the rig's dispatch command is set, as the place to fix it."""
    found = localconfig.rig_found(store, rig.name, "dispatch")
    if found.source.startswith("convoy."):
        return f"git config convoy.rig.{rig.name}.dispatch"
    return f"dispatch under [rig.{rig.name}] in {found.source.split(' (')[0]}"


def _looked_up(command: str, top: str) -> str:
    """Where a program that was not found was looked for."""
    word = (command.split(None, 1) or [""])[0]
    if "/" not in word:
        return " (not on PATH)"
    return "" if word.startswith("/") else f" (relative to {top})"
@dataclass
class Behind:
    """A ready bead whose target lacks landings of its blockers (plan.carry): it is not
    dispatched until the target has them (gitconvoy.land.integration.catch_up)."""

    bead: str
    target: str
    missing: list[tuple[str, str]]  # (blocker, commit)

    def phrase(self) -> str:
        names = ", ".join(f"{b} ({sha[:10]})" for b, sha in self.missing[:3])
        more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
        return f"{self.target} lacks the landed work of {names}{more}"


def integration_branches(snap: Snapshot) -> frozenset[str]:
    """Branches of open epics: a bead aimed at one waits for (and gets) its blockers' work."""
    return frozenset(b.integration_branch for b in snap.beads.values()
                     if b.type == "epic" and b.integration_branch and not b.done)


def behind_on(store: Store, snap: Snapshot, bead: Bead, convoy: Convoy | None,
              index: graph.Index | None = None,
              integrating: frozenset[str] | None = None) -> Behind | None:
    """Whether the bead's target lacks a closed blocker's landing (None: it has them all).

    On an integration branch every missing landing counts (gitconvoy.land.integration
    brings it in). On any other target only work still in transit counts — a blocker that
    landed on an open epic's integration branch, which reaches the target when the epic
    lands; a blocker that landed on an unrelated branch (another rig's target) is not
    waited for, as it would never arrive."""
    index = index or graph.Index(snap.beads)
    need = carry.required(index, bead, snap.objects["mrs"])
    if not need:
        return None
    target = target_for(snap.beads, snap.config, bead, convoy)
    tip = branch_tip(store, target) if target else None
    if not target or tip is None:
        return None  # the claim says what is wrong with the target
    integrating = integration_branches(snap) if integrating is None else integrating
    missing = [(b, sha) for b, sha in need
               if sha not in store.repo or not revs.is_ancestor(store, sha, tip)]
    if target not in integrating:
        missing = [(b, sha) for b, sha in missing if _in_transit(index, b)]
    return Behind(bead.id, target, missing) if missing else None


def _in_transit(index: graph.Index, bead_id: str) -> bool:
    """The bead's work sits on an open epic's integration branch, not yet landed beyond."""
    return any(index.beads[a].integration_branch and not index.beads[a].done
               for a in index.ancestors(bead_id) if a in index.beads)


def dispatch_bead(store: Store, bead_id: str, convoy: Convoy | None = None,
                  rig_name: str | None = None, *, detach: bool = False,
                  index: graph.Index | None = None) -> Dispatched:
    """Claim, branch, run the rig's command (`detach`: start it and return, for hooks).
    The worker gets the bead's formula (or its rig's default, then stored on the bead).
    `index`: the caller's graph index of a recent state (restated, not built again)."""
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    index = index.restated(snap.beads) if index is not None else None
    behind = behind_on(store, snap, bead, convoy, index) if bead.status == "open" else None
    if behind is not None:
        return Dispatched(bead_id, False, f"not dispatched: {behind.phrase()}; 'git convoy "
                          "feed' brings it in (or it arrives when that work lands there)")
    rig = snap.config.rigs.get(rig_name) if rig_name else rig_for(snap.config, bead, convoy)
    formula, problem = worker_formula(store, bead, rig) if bead.status == "open" \
        else (None, None)
    if problem is not None:
        return Dispatched(bead_id, False, f"not dispatched: {problem}")
    defaults = {rig.name: formula} if rig and formula and not bead.formula else {}
    branches = {bead_id: branch_name(store, bead)}
    tips = {t: branch_tip(store, t) for t in _candidate_targets(snap, bead, convoy)}
    clone = store.clone_id()
    result = store.transact(
        lambda tx: _claim(tx, bead_id, convoy, rig_name, branches, tips, clone, defaults),
        lambda r: f"dispatch {bead_id}: hooked on {getattr(r, 'rig', '')}",
    )
    if isinstance(result, str):
        taken = store.snapshot().beads[bead_id].status in IN_FLIGHT  # another feeder won
        return Dispatched(bead_id, False, f"not dispatched: {result}", lost=taken)
    faults.point("dispatch.after_claim")
    unconfirmed = _confirm(store, result)
    if unconfirmed is not None:
        reason, lost = unconfirmed
        return Dispatched(bead_id, False, f"not dispatched: {reason}", lost=lost)
    rig = store.snapshot().config.rigs[result.rig or ""]
    try:
        _ensure_branch(store, result.branch or "", result.base_commit or "")
        faults.point("dispatch.after_branch")
        ok, detail = _run_command(store, rig, result, convoy, detach)
    except ConvoyError as exc:
        ok, detail = False, exc.message
    if not ok:
        next_try = rollback(store, bead_id, detail)
        drop_fresh_branch(store, result)
        if next_try:
            detail = f"{detail} (the feeder retries it after {to_second(next_try)})"
    elif not detach:  # a hook (which detaches) rewrites the watch list itself when it ends
        watch.refresh_if_installed(store)  # the hooks now watch this branch and its target
    return Dispatched(bead_id, ok, detail)


COORDINATOR_FORMULA = "mol-coordinator"


def _coordinator_rig(snap: Snapshot, epic: Bead, rig_name: str | None) -> Rig:
    """The rig whose dispatch command starts the coordinator; a one-line error naming the
    epic when there is none to use."""
    if epic.type != "epic":
        raise ConvoyError(f"{epic.id} is a {epic.type}, not an epic: no coordinator for it")
    if epic.done or epic.status == "deferred":
        raise ConvoyError(f"{epic.id} is {epic.status}: there is nothing to coordinate")
    if rig_name and rig_name not in snap.config.rigs:
        raise ConvoyError(f"unknown rig '{rig_name}': see 'git convoy rig list'")
    rig = snap.config.rigs[rig_name] if rig_name else rig_for(snap.config, epic, None)
    if rig is None:
        raise ConvoyError(f"{epic.id} has no rig for its coordinator: add one ('git convoy "
                          "rig add NAME --target main') or pass --rig")
    if rig.parked:
        raise ConvoyError(f"rig {rig.name} is parked: unpark it or choose another rig")
    return rig


def dispatch_coordinator(store: Store, epic_id: str, rig_name: str | None = None,
                         formula: str | None = None,
                         values: Mapping[str, str] | None = None) -> Dispatched:
    """An epic slung: its coordinator worker (the rig's dispatch command, with
    CONVOY_FORMULA=mol-coordinator unless `formula` says otherwise) stages, launches and
    watches the epic's convoy. The epic's status stays the roll-up's and it takes no rig
    slot — its tasks do, once launched — so the hand-out is recorded only in `dispatch`
    (`coordinator`: the rig, with attempts, time and clone) and the formula on the epic.
    Every check comes before the one write; a failed command is recorded like a failed
    dispatch, for `bead show`."""
    name = formula or COORDINATOR_FORMULA
    values = dict(values or {})
    formulas.for_worker(store, name, values)  # unknown, invalid, a review formula: refused
    snap = store.snapshot()
    rig = _coordinator_rig(snap, snap.bead(epic_id), rig_name)
    target = target_for(snap.beads, snap.config, snap.bead(epic_id), None)
    clone = store.clone_id()

    def mutate(tx: Tx) -> Bead:
        epic = tx.bead(epic_id)
        _coordinator_rig(tx.view(), epic, rig.name)  # still an open epic
        dispatch = {k: v for k, v in epic.dispatch.items() if k not in ("last_error",
                                                                          "next_try")}
        dispatch.update(coordinator=rig.name, by=clone, last_attempt=now(),
                        attempts=int(dispatch.get("attempts", 0) or 0) + 1)
        slung = touched(epic, formula=name, formula_vars=values, dispatch=dispatch)
        tx.put(slung)
        return slung

    epic = store.transact(mutate, f"sling {epic_id}: coordinator on {rig.name}")
    shown = replace(epic, branch=epic.integration_branch, target=target)
    try:
        ok, detail = _run_command(store, rig, shown, None, False, coordinator=True)
    except ConvoyError as exc:
        ok, detail = False, exc.message
    if not ok:
        def failed(tx: Tx) -> None:
            current = tx.bead(epic_id)
            dispatch = {k: v for k, v in current.dispatch.items() if k != "coordinator"}
            tx.put(touched(current, dispatch={**dispatch, "last_error": detail}))

        store.transact(failed, f"sling {epic_id}: coordinator failed: {detail[:60]}")
    return Dispatched(epic_id, ok, detail)


def _confirm(store: Store, claimed: Bead) -> tuple[str, bool] | None:
    """With a shared remote, the claim counts only once the remote shows it (the protocol of
    `claim`, gitconvoy.flow.publish): None when confirmed or there is no remote; else why
    not, and whether another clone won it, the claim already taken back, so the rig's
    command never runs on a lost bead."""
    remote = publish.confirming_remote(store)
    if remote is None:
        return None
    claim_commit = store.state_commit() or ""
    try:
        lost = publish.publish(store, remote, claimed)
    except ConvoyError as exc:
        reason = (f"the claim could not be confirmed on {remote} ({exc.message}); "
                  f"offline? 'git config {publish.CONFIRM_KEY} false' dispatches without it")
        rollback(store, claimed.id, reason)
        return reason, False
    if lost is not None:
        publish.concede(store, claimed, claim_commit, remote)
        # see the winner's claim here, so the next step does not try again; if the sync
        # fails, the next one catches up (the claim is conceded either way)
        with contextlib.suppress(ConvoyError):
            sync(store, remote)
        return f"{lost}: nothing to do here (the feeder hands it out if it is open again)", True
    return None


def _candidate_targets(snap: Snapshot, bead: Bead, convoy: Convoy | None) -> set[str]:
    """Every branch the bead might be aimed at, resolved before the transaction runs."""
    out = {t for t in (target_for(snap.beads, snap.config, bead, convoy),) if t}
    out |= {r.target for r in snap.config.rigs.values()}
    return out


def drop_fresh_branch(store: Store, bead: Bead) -> None:
    """A branch we just made and nobody committed to goes away with the failed dispatch
    (never a conflict bead's: that branch is the conflicting MR's, holding its work)."""
    ref = f"refs/heads/{bead.branch}"
    if bead.branch and not resolves(bead) and store.head_of(ref) == bead.base_commit:
        store.cas_ref(ref, bead.base_commit, None, f"dispatch rolled back: {bead.branch}")
