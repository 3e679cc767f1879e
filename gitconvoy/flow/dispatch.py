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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gitconvoy import faults
from gitconvoy.errors import ConvoyError
from gitconvoy.flow import detached, publish
from gitconvoy.git import localconfig, revs, watch
from gitconvoy.git.sync import sync
from gitconvoy.plan import carry, graph
from gitconvoy.plan.edits import with_status
from gitconvoy.plan.targets import rig_for, target_for
from gitconvoy.state.model import (
    Bead,
    Convoy,
    MergeRequest,
    Rig,
    in_flight,
    now,
    resolves,
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

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.bead}: {self.detail}"


def branch_name(store: Store, bead: Bead) -> str:
    template = store.config_get("convoy.branchTemplate") or BRANCH_TEMPLATE
    name = template.format(id=bead.id)
    if not name or ".." in name or name.startswith("/") or " " in name:
        raise ConvoyError(f"convoy.branchTemplate gives an invalid branch name {name!r}")
    return name


def branch_tip(store: Store, branch: str) -> str | None:
    """A branch's newest known tip: the local branch, else its remote-tracking copy — also
    when that copy is strictly ahead. For a target: a fetch brought landed work the local
    branch has not caught up with (it counts as landed, and dependents branch from a base
    that contains it). For a work branch: a worker on another machine pushed it."""
    tip = store.head_of(f"refs/heads/{branch}")
    remote = store.config_get("convoy.remote") or "origin"
    tracking = store.head_of(f"refs/remotes/{remote}/{branch}")
    if tip is None or (tracking and tracking != tip and revs.is_ancestor(store, tip, tracking)):
        return tracking
    return tip


def backoff_due(bead: Bead, at: str | None = None) -> bool:
    """A bead whose last dispatch failed waits before the feeder tries it again."""
    next_try = bead.dispatch.get("next_try")
    return not next_try or str(next_try) <= (at or now())


def _next_try(attempts: int) -> str:
    delay = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return (datetime.now(UTC) + timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _claim(tx: Tx, bead_id: str, convoy: Convoy | None, rig_name: str | None,
           branch_for: dict[str, str], tips: dict[str, str | None],
           clone: str) -> Bead | str:
    """Claim inside a transaction; a string result says why the bead was skipped."""
    bead = tx.bead(bead_id)
    index = graph.Index(tx.beads, copy=False)  # one bead's blockers: a few lookups
    if bead.status != "open":
        return f"is {bead.status}"
    if not bead.slingable:
        return f"is an {bead.type}, not slingable work"
    blockers = index.blockers(bead)
    if blockers:
        return f"blocked by {blockers[0].describe()}"
    rig = tx.config.rigs.get(rig_name) if rig_name else rig_for(tx.config, bead, convoy)
    if rig is None:
        return "has no rig: add one with 'git convoy rig add' or pass --rig"
    if rig.parked:
        return f"rig {rig.name} is parked"
    conflict = conflicting_mr(tx, bead)
    if conflict is None and resolves(bead):
        return f"resolves {resolves(bead)}, which is no longer in conflict"
    if conflict is None and in_flight(tx.beads, rig.name) >= rig.capacity:
        return f"rig {rig.name} is at capacity ({rig.capacity})"
    claimed = touched(bead, rig=rig.name)
    target = conflict.target if conflict else target_for(tx.beads, tx.config, claimed, convoy)
    if not target:
        return "has no target branch"
    tip = tips.get(target)
    if tip is None:
        return f"target branch {target} does not exist"
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
    )
    tx.put(claimed)
    return claimed


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


def rollback(store: Store, bead_id: str, reason: str) -> None:
    def mutate(tx: Tx) -> None:
        bead = tx.bead(bead_id)
        if bead.status == "hooked":
            tx.put(handed_back(bead, reason))

    store.transact(mutate, f"dispatch failed {bead_id}: {reason[:60]}")


def _ensure_branch(store: Store, branch: str, tip: str) -> None:
    ref = f"refs/heads/{branch}"
    current = store.head_of(ref)
    if current is None and tip not in store.repo:
        raise ConvoyError(f"commit {tip[:10]} for {branch} is not in this clone: fetch it "
                          f"(git fetch origin {branch}) and feed again")
    if current is None:
        if not store.cas_ref(ref, None, tip, f"dispatch: create {branch}"):
            raise ConvoyError(f"branch {branch} appeared while dispatching")
    elif not revs.is_ancestor(store, tip, current) and not revs.is_ancestor(store, current, tip):
        raise ConvoyError(f"branch {branch} exists and has diverged from its target")


def conflict_env(store: Store, bead: Bead) -> dict[str, str]:
    """What a worker resolving a conflict needs beyond the usual: the MR, the bead whose
    work it unblocks, the files (one per line) and the target's tip it conflicted with."""
    mr = conflicting_mr(store.snapshot(), bead)
    if mr is None:
        return {}
    tip = branch_tip(store, mr.target) or ""
    return {
        "CONVOY_RESOLVES": mr.bead, "CONVOY_MR": mr.id, "CONVOY_TARGET_TIP": tip,
        "CONVOY_CONFLICT_FILES": "\n".join(f.replace("\0", "") for f in mr.conflict_files),
    }


def _run_command(store: Store, rig: Rig, bead: Bead, convoy: Convoy | None,
                 formula: str | None, detach: bool) -> tuple[bool, str]:
    command = localconfig.rig_setting(store, rig, "dispatch")
    workdir = store.repo.workdir or store.common_dir
    worktree = ""
    if localconfig.rig_setting(store, rig, "worktree") in ("true", "yes", "1"):
        worktree = os.path.join(store.common_dir, "convoy", "worktrees", bead.id)
    env = {
        **os.environ,
        "CONVOY_BEAD": bead.id,
        "CONVOY_TITLE": bead.title,
        "CONVOY_BRANCH": bead.branch or "",
        "CONVOY_WORKTREE": worktree,
        "CONVOY_TARGET": bead.target or "",
        "CONVOY_FORMULA": formula or "",
        "CONVOY_RIG": rig.name,
        "CONVOY_CONVOY": convoy.id if convoy else "",
        "CONVOY_IN_HOOK": "1",
        **conflict_env(store, bead),
    }
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    if worktree and not os.path.exists(worktree):
        made = subprocess.run(["git", "worktree", "add", "-q", worktree, bead.branch or ""],
                              cwd=workdir, env=env, capture_output=True, text=True)
        if made.returncode != 0:
            return False, f"git worktree add failed: {made.stderr.strip()[:200]}"
    if not command:
        where = f" in {worktree}" if worktree else ""
        return True, f"branch {bead.branch} ready{where} (no dispatch command configured)"
    if detach:
        try:
            run = detached.start(store, bead, command, cwd=worktree or workdir, env=env)
        except OSError as exc:
            return False, f"dispatch command could not start: {exc.strerror}"
        return True, f"dispatch started on {bead.branch} (rig {rig.name}); log: {run.log}"
    try:
        proc = subprocess.run(command, shell=True, cwd=worktree or workdir, env=env,
                              capture_output=True, text=True, timeout=DISPATCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"dispatch command timed out after {DISPATCH_TIMEOUT}s"
    except OSError as exc:
        return False, f"dispatch command could not start: {exc.strerror}"
    if proc.returncode == 127:
        return False, f"dispatch command not found: {command}"
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        return False, f"dispatch command exited {proc.returncode}: {last[0][:200]}"
    return True, f"dispatched on {bead.branch} (rig {rig.name})"


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
                  rig_name: str | None = None, formula: str | None = None, *,
                  detach: bool = False, index: graph.Index | None = None) -> Dispatched:
    """Claim, branch, run the rig's command (`detach`: start it and return, for hooks).
    `index`: the caller's graph index of a recent state (restated, not built again)."""
    snap = store.snapshot()
    bead = snap.bead(bead_id)
    index = index.restated(snap.beads) if index is not None else None
    behind = behind_on(store, snap, bead, convoy, index) if bead.status == "open" else None
    if behind is not None:
        return Dispatched(bead_id, False, f"not dispatched: {behind.phrase()}; 'git convoy "
                          "feed' brings it in (or it arrives when that work lands there)")
    branches = {bead_id: branch_name(store, bead)}
    tips = {t: branch_tip(store, t) for t in _candidate_targets(snap, bead, convoy)}
    clone = store.clone_id()
    result = store.transact(
        lambda tx: _claim(tx, bead_id, convoy, rig_name, branches, tips, clone),
        lambda r: f"dispatch {bead_id}: hooked on {getattr(r, 'rig', '')}",
    )
    if isinstance(result, str):
        return Dispatched(bead_id, False, f"not dispatched: {result}")
    faults.point("dispatch.after_claim")
    lost = _confirm(store, result)
    if lost is not None:
        return Dispatched(bead_id, False, f"not dispatched: {lost}")
    rig = store.snapshot().config.rigs[result.rig or ""]
    try:
        _ensure_branch(store, result.branch or "", result.base_commit or "")
        faults.point("dispatch.after_branch")
        ok, detail = _run_command(store, rig, result, convoy, formula, detach)
    except ConvoyError as exc:
        ok, detail = False, exc.message
    if not ok:
        rollback(store, bead_id, detail)
        drop_fresh_branch(store, result)
    elif not detach:  # a hook (which detaches) rewrites the watch list itself when it ends
        watch.refresh_if_installed(store)  # the hooks now watch this branch and its target
    return Dispatched(bead_id, ok, detail)


def _confirm(store: Store, claimed: Bead) -> str | None:
    """With a shared remote, the claim counts only once the remote shows it (the protocol of
    `claim`, gitconvoy.flow.publish): None when confirmed or there is no remote; else why
    not, the claim already taken back, so the rig's command never runs on a lost bead."""
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
        return reason
    if lost is not None:
        publish.concede(store, claimed, claim_commit, remote)
        # see the winner's claim here, so the next step does not try again; if the sync
        # fails, the next one catches up (the claim is conceded either way)
        with contextlib.suppress(ConvoyError):
            sync(store, remote)
    return lost


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
