"""The refinery: the merge-request queue, its ordering, and the loop that lands it.

`queue_mr` (behind `git convoy done`) records an MR and links it from its bead in one
transaction. `run` lands queued MRs one by one through gitconvoy.landing and records each
outcome in one transaction: merged (bead closed "Merged in <mr> as <sha>"; the caller feeds),
conflict (a conflict bead blocks the work; the MR is retried when it closes, and escalated
once past an age), rejected (failing check, not a fast-forward, or refused as not work — the
state branch, state or unrelated history, not grown from the bead's recorded base (SECURITY.md):
the bead goes back to its worker with the reason), push_failed (everything kept locally, the
recovery command recorded), orphaned (source branch gone: the bead is ready again).

Decisions (ordering, anomalies, message texts) are pure functions; effects go through the
store (state and refs), landing and checks.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gitconvoy import progress
from gitconvoy.errors import ConvoyError
from gitconvoy.git import localconfig, notify, revs
from gitconvoy.land import checks, landing, targetchecks
from gitconvoy.plan import targets
from gitconvoy.plan.edits import with_status
from gitconvoy.state import ids
from gitconvoy.state.model import (
    MAX_TITLE,
    Bead,
    Convoy,
    Dep,
    MergeRequest,
    Rig,
    now,
    resolves,
    touched,
)
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

DEFAULTS: dict[str, str] = {
    "convoy.done.warnBehind": "50",
    "convoy.done.refuseBehind": "500",
    "convoy.refinery.pushAttempts": "3",
    "convoy.refinery.maxCheckFailures": "3",
    "convoy.refinery.escalateAfter": "4h",
    "convoy.refinery.staleAfter": "1h",
    "convoy.refinery.idleAfter": "30m",
    "convoy.refinery.repushBackoff": "30s",
    "convoy.refinery.maxRepush": "8",
}
TRUTHY = ("1", "true", "yes", "on")
CONFLICT_LABEL = "conflict"
CONFLICT_FORMULA = "mol-conflict-resolve"  # the steps its worker follows (formulas/)
ESCALATED_LABEL = "escalated"
CONFLICT_FILES_SHOWN = 3  # a conflict's run line names this many files, then "and N more"


# --- settings ---------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `4h`, `2d` → seconds."""
    value = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(value[-1:], 1)
    number = value[:-1] if value[-1:] in "smhd" else value
    try:
        return float(number) * scale
    except ValueError:
        raise ConvoyError(f"'{text}' is not a duration: use seconds or 30m, 4h, 2d") from None


def setting(store: Store, key: str) -> str:
    return store.config_get(key) or DEFAULTS[key]


def number_setting(store: Store, key: str) -> int:
    raw = setting(store, key)
    try:
        return int(raw)
    except ValueError:
        raise ConvoyError(f"git config {key} = {raw!r}: expected a whole number") from None


def duration_setting(store: Store, key: str) -> float:
    return parse_duration(setting(store, key))


# --- pure helpers -----------------------------------------------------------------------


def parse_time(stamp: str | None) -> _dt.datetime | None:
    if not stamp:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)


def age_seconds(stamp: str | None, at: str) -> float:
    start, end = parse_time(stamp), parse_time(at)
    if start is None or end is None:
        return 0.0
    return max((end - start).total_seconds(), 0.0)


def format_age(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)}s"
    if seconds < 5400:
        return f"{int(seconds // 60)}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def repush_verdict(mr: MergeRequest, at: str, backoff: float, limit: int) -> str:
    """For a push_failed MR: `due` (re-push now), `wait` (backing off), or `give_up` (past
    `limit` tries: a person must look at the remote). Failed tries are the MR's retries that
    were not check failures; the wait doubles with each, from `backoff`, capped at an hour."""
    tries = max(mr.retries - mr.check_failures, 1)
    if tries > limit:
        return "give_up"
    wait = min(backoff * 2 ** (tries - 1), 3600.0)
    return "due" if age_seconds(mr.updated_at, at) >= wait else "wait"


def queue_order(mrs: Iterable[MergeRequest], beads: Mapping[str, Bead]) -> list[MergeRequest]:
    """Queued MRs by their bead's priority (0 first), then retries (each failed attempt
    lowers an MR), then age (oldest first), then id."""
    def key(mr: MergeRequest) -> tuple[int, int, str, str]:
        bead = beads.get(mr.bead)
        return (bead.priority if bead else 4, mr.retries, mr.created_at or "", mr.id)

    return sorted((m for m in mrs if m.status == "queued"), key=key)


def mrs_of(snap: Snapshot | Tx) -> dict[str, MergeRequest]:
    return snap.objects["mrs"]


def convoy_of(convoys: Mapping[str, Convoy], bead_id: str) -> Convoy | None:
    """The open convoy tracking the bead (else any convoy tracking it)."""
    tracking = [c for c in convoys.values() if bead_id in c.tracks]
    tracking.sort(key=lambda c: (c.status != "open", c.id))
    return tracking[0] if tracking else None


def merge_message(mr: MergeRequest, bead: Bead, strategy: str) -> str:
    trailers = f"Convoy-Bead: {bead.id}\nConvoy-MR: {mr.id}\n"
    if strategy == "squash":
        return (f"{bead.title}\n\nSquashed from {mr.branch} ({mr.commit[:10]}) by the refinery"
                f" for {bead.id} ({mr.id}).\n\n{trailers}")
    return (f"Merge {mr.branch} into {mr.target}: {bead.title}\n\n"
            f"Lands {bead.id} through {mr.id}.\n\n{trailers}")


def conflict_description(mr: MergeRequest, bead: Bead, files: list[str],
                         target_tip: str | None = None) -> str:
    listed = "\n".join(f"  - {f}" for f in files)
    at = f" (at {target_tip[:10]})" if target_tip else ""
    return (
        f"Merging {mr.branch} ({mr.commit[:10]}) into {mr.target}{at} for {bead.id} ({mr.id}) "
        f"conflicts in:\n{listed}\n\n"
        f"To resolve: on {mr.branch}, run 'git merge {mr.target}', fix these files, commit, "
        f"then 'git convoy done' (or close this bead: the refinery retries "
        f"{mr.id} with the branch's new tip)."
    )


# --- done: queue an MR ------------------------------------------------------------------


@dataclass
class Queued:
    mr: MergeRequest
    new: bool
    superseded: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def current_branch(store: Store) -> str | None:
    repo = store.repo
    try:
        if repo.head_is_detached or repo.head_is_unborn:
            return None
        name = repo.head.name
    except Exception:  # noqa: BLE001 - a broken HEAD is "not on a branch"
        return None
    return name.removeprefix("refs/heads/") if name.startswith("refs/heads/") else None


def bead_on_branch(snap: Snapshot, branch: str) -> Bead | None:
    """The bead whose work the branch holds (a conflict bead working on the same branch
    stands for the bead it unblocks)."""
    found = [b for b in snap.beads.values() if b.branch == branch and not b.done]
    found.sort(key=lambda b: (resolves(b) is not None,
                              b.status not in ("in_progress", "hooked"), b.id))
    return unblocked_by(snap, found[0]) if found else None


def unblocked_by(snap: Snapshot, bead: Bead) -> Bead:
    """For a conflict bead, the bead whose conflicting MR it resolves: `done` on it lands
    that bead's work (its MR superseded, the conflict bead closed). Any other bead: itself."""
    mr = mrs_of(snap).get(resolves(bead) or "")
    owner = snap.beads.get(mr.bead) if mr is not None else None
    return owner if owner is not None and not owner.done else bead


def queue_mr(store: Store, bead_id: str | None = None, *, target: str | None = None,
             branch: str | None = None) -> Queued:
    """`git convoy done`: record the MR for a bead's branch tip, in one transaction."""
    snap = store.snapshot()
    here = current_branch(store)
    if bead_id is None:
        name = branch or here
        bead = bead_on_branch(snap, name) if name else None
        if bead is None:
            where = f"on branch {name}" if name else "with a detached HEAD"
            raise ConvoyError(
                f"not on a work branch ({where}): run 'git convoy done' on a bead's branch "
                "(convoy/<bead-id>) or name the bead: git convoy done <bead>"
            )
    else:
        bead = unblocked_by(snap, snap.bead(bead_id))
    if bead.status == "tombstone":
        raise ConvoyError(f"bead '{bead.id}' was deleted: nothing to land")
    if bead.status == "closed":
        raise ConvoyError(f"bead '{bead.id}' is already closed: nothing to land")
    if not bead.slingable:
        raise ConvoyError(
            f"bead '{bead.id}' is an {bead.type}: epics land with 'git convoy integration land'"
        )
    branch = branch or bead.branch or here
    if not branch:
        raise ConvoyError(f"bead '{bead.id}' has no work branch: pass --branch")
    commit = store.head_of(f"refs/heads/{branch}")
    if commit is None:
        raise ConvoyError(f"branch {branch} does not exist: nothing to land for {bead.id}")
    convoy = convoy_of(snap.convoys, bead.id)
    target = target or targets.target_for(snap.beads, snap.config, bead, convoy)
    if not target:
        raise ConvoyError(f"bead '{bead.id}' has no target branch: pass --target BRANCH")
    if target == branch:
        raise ConvoyError(f"branch {branch} is its own target: run done on the work branch")
    target_tip = _tip_here_or_remote(store, target)
    if target_tip is None:
        raise ConvoyError(f"target branch {target} does not exist (bead {bead.id})")
    ahead, behind = store.repo.ahead_behind(commit, target_tip)
    if ahead == 0:
        raise ConvoyError(
            f"nothing to land: {branch} has no commits that {target} lacks (commit your work "
            "first)"
        )
    warnings = []
    refuse = number_setting(store, "convoy.done.refuseBehind")
    warn = number_setting(store, "convoy.done.warnBehind")
    if behind >= refuse:
        raise ConvoyError(
            f"{branch} is {behind} commits behind {target} (limit convoy.done.refuseBehind = "
            f"{refuse}): run 'git merge {target}' on {branch} first, then done again"
        )
    if behind >= warn:
        warnings.append(
            f"{branch} is {behind} commits behind {target}: conflicts are likelier; consider "
            f"'git merge {target}' first"
        )
    worker = bead.assignee or store.identity()

    def mutate(tx: Tx) -> Queued:
        mrs = mrs_of(tx)
        for mr in mrs.values():
            if mr.branch == branch and mr.commit == commit and mr.target == target and \
                    mr.status not in ("superseded", "orphaned"):
                return Queued(mr, False, warnings=warnings)
        current = tx.bead(bead.id)
        if current.done:
            raise ConvoyError(f"bead '{bead.id}' is already {current.status}: nothing to land")
        stamp = now()
        mr_id = ids.new_id("mr", f"{branch}\0{commit}", mrs, len(mrs) + 1)
        superseded, carried = [], 0
        for old in sorted(mrs.values(), key=lambda m: m.id):
            if old.bead != bead.id or not old.open:
                continue
            carried = max(carried, old.check_failures)
            tx.put(touched(old, status="superseded", closed_at=stamp,
                           reason=f"superseded by {mr_id}"))
            superseded.append(old.id)
            _close_conflict_bead(tx, old, f"resolved: superseded by {mr_id}")
        mr = MergeRequest(
            id=mr_id, bead=bead.id, branch=branch, commit=commit, target=target,
            worker=worker, check_failures=carried, created_at=stamp, updated_at=stamp,
        )
        tx.put(mr)
        updated = current
        if current.status != "in_progress":
            updated = with_status(current, "in_progress")
        dispatch = {k: v for k, v in updated.dispatch.items() if not k.startswith("returned")}
        tx.put(touched(updated, mr=mr_id, dispatch=dispatch,
                       branch=current.branch or branch))
        return Queued(mr, True, superseded, warnings)

    return store.transact(
        mutate, lambda q: f"done {bead.id}: queue {q.mr.id} ({branch} → {target})"
    )


def _close_conflict_bead(tx: Tx, mr: MergeRequest, reason: str) -> None:
    if not mr.conflict_bead:
        return
    found = tx.beads.get(mr.conflict_bead)
    if found is not None and not found.done:
        tx.put(with_status(found, "closed", reason))


# --- reconcile: conflict beads closed, escalation ---------------------------------------


def reconcile(store: Store) -> list[str]:
    """Requeue conflict MRs whose conflict bead closed; escalate old conflicts (once);
    requeue push_failed MRs whose back-off is over, and give up on them (once, said) after
    `convoy.refinery.maxRepush` tries."""
    snap = store.snapshot()
    at = now()
    limit = parse_duration(store.config_get("convoy.conflictEscalateAfter")
                           or setting(store, "convoy.refinery.escalateAfter"))
    backoff = duration_setting(store, "convoy.refinery.repushBackoff")
    max_repush = number_setting(store, "convoy.refinery.maxRepush")
    tips = {mr.branch: store.head_of(f"refs/heads/{mr.branch}")
            for mr in mrs_of(snap).values() if mr.status == "conflict"}
    advanced = {
        mr.id: tip for mr in mrs_of(snap).values()
        if mr.status == "conflict" and (tip := tips.get(mr.branch)) and tip != mr.commit
        and revs.is_ancestor(store, mr.commit, tip)
    }

    events: list[dict[str, Any]] = []

    def mutate(tx: Tx) -> list[str]:
        notices = []
        events.clear()  # a retried transaction decides afresh
        for mr in sorted(mrs_of(tx).values(), key=lambda m: m.id):
            if mr.status == "push_failed":
                notices += _repush(tx, mr, repush_verdict(mr, at, backoff, max_repush),
                                   max_repush)
                continue
            if mr.status != "conflict":
                continue
            blocker = tx.beads.get(mr.conflict_bead or "")
            if blocker is None or blocker.done:
                commit = advanced.get(mr.id, mr.commit)
                tx.put(touched(mr, status="queued", commit=commit, conflict_files=[],
                               conflict_since=None, escalated=False,
                               reason=f"conflict bead {mr.conflict_bead} closed: retrying"))
                notices.append(f"{mr.id}: conflict bead {mr.conflict_bead} closed, requeued")
            elif not mr.escalated and age_seconds(mr.conflict_since, at) >= limit:
                tx.put(touched(blocker, labels=sorted(set(blocker.labels) | {ESCALATED_LABEL})))
                tx.put(touched(mr, escalated=True))
                notices.append(
                    f"escalated: {mr.id} ({mr.bead}) has conflicted for "
                    f"{format_age(age_seconds(mr.conflict_since, at))} in "
                    f"{', '.join(mr.conflict_files)}; resolve {blocker.id}"
                )
                events.append(conflict_event(mr, blocker, age_seconds(mr.conflict_since, at)))
        return notices

    notices = store.transact(mutate, lambda n: "refinery reconcile: " + "; ".join(n)[:200])
    for event in events:  # only the process whose transaction escalated tells anyone
        failed = notify.send(store, event)
        if failed:
            notices.append(f"{event['mr']}: {failed}")
    return notices


def conflict_event(mr: MergeRequest, blocker: Bead, age: float) -> dict[str, Any]:
    """The JSON event `convoy.notify` reads on stdin when a conflict escalates."""
    return {
        "event": "conflict_escalated", "mr": mr.id, "bead": mr.bead,
        "conflict_bead": blocker.id, "assignee": blocker.assignee, "branch": mr.branch,
        "target": mr.target, "files": list(mr.conflict_files), "since": mr.conflict_since,
        "age_seconds": int(age), "command": f"git convoy bead show {blocker.id}",
    }


def _repush(tx: Tx, mr: MergeRequest, verdict: str, limit: int) -> list[str]:
    if verdict == "due":
        tries = max(mr.retries - mr.check_failures, 1)
        tx.put(touched(mr, status="queued", closed_at=None,
                       reason=f"re-push {tries} of {limit} after: {mr.reason or 'push failed'}"))
        return [f"{mr.id} ({mr.bead}): push_failed, pushing again (try {tries} of {limit})"]
    if verdict == "give_up" and not mr.escalated:
        tx.put(touched(mr, escalated=True))
        fix = mr.recovery or f"git convoy refinery retry {mr.id}"
        return [f"escalated: {mr.id} ({mr.bead}) failed to push {limit} times; no more "
                f"automatic tries: fix the remote, then {fix}"]
    return []


# --- landing one MR ---------------------------------------------------------------------


@dataclass
class Step:
    mr: str
    bead: str
    outcome: str
    detail: str = ""
    sha: str | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.mr} ({self.bead}): {self.outcome}"
        if self.sha:
            text += f" as {self.sha[:12]}"
        return f"{text}: {self.detail}" if self.detail else text


def _rig(snap: Snapshot, bead: Bead) -> Rig | None:
    return targets.rig_for(snap.config, bead, convoy_of(snap.convoys, bead.id))


def _rig_value(store: Store, rig: Rig | None, key: str) -> str | None:
    return localconfig.rig_setting(store, rig, key) if rig is not None else None


def plan_for(store: Store, snap: Snapshot, mr: MergeRequest, bead: Bead) -> landing.Plan:
    rig = _rig(snap, bead)
    strategy = rig.strategy if rig else "merge"
    checking = targetchecks.checks_for(store, snap.config.rigs, mr.target, rig)

    def check(candidate: str) -> checks.CheckResult:
        env = {"CONVOY_MR": mr.id, "CONVOY_BEAD": bead.id, "CONVOY_TARGET": mr.target,
               "CONVOY_COMMIT": candidate, "CONVOY_BRANCH": mr.branch}
        return targetchecks.run(store, checking, candidate, label=mr.id, env=env)

    return landing.Plan(
        source=mr.commit, target=mr.target, strategy=strategy,
        message=merge_message(mr, bead, strategy), check=check if checking.checks else None,
        push_attempts=max(number_setting(store, "convoy.refinery.pushAttempts"), 1),
        reflog=f"refinery {mr.id} ({bead.id})",
        grows_from=bead.base_commit, foreign=localconfig.state_tips(store),
    )


def refusal(store: Store, mr: MergeRequest) -> str | None:
    """Why the state's MR names something that is never landed, or None (the history rules
    are landing.refusal's, checked against the target as it is fetched)."""
    owned = localconfig.state_owned(store, mr.target)
    if owned:
        return f"target {owned}: nothing lands there"
    if mr.branch == localconfig.state_branch(store):
        return f"branch {mr.branch} is the state branch: it is not work"
    return None


def land_mr(store: Store, mr_id: str) -> Step:
    """Land one queued MR and record what happened."""
    snap = store.snapshot()
    mr = mrs_of(snap).get(mr_id)
    if mr is None:
        raise ConvoyError(f"unknown merge request '{mr_id}': see 'git convoy refinery status'")
    bead = snap.beads.get(mr.bead)
    if bead is None or bead.status == "tombstone":
        return _record(store, mr, Step(mr.id, mr.bead, "orphaned", f"bead {mr.bead} is gone"))
    refused = refusal(store, mr)
    if refused:
        return _record(store, mr, Step(mr.id, bead.id, "refused", refused))
    if mr.commit not in store.repo or (
        _tip_here_or_remote(store, mr.branch) is None and not _in_target(store, mr)
    ):
        return _record(store, mr, Step(mr.id, bead.id, "orphaned",
                                       f"source branch {mr.branch} is gone"))
    result = landing.land(store, plan_for(store, snap, mr, bead))
    detail = result.detail
    if result.check is not None and result.check.log and not result.check.passed:
        detail = f"{detail}; log: {result.check.log}"
    step = Step(mr.id, bead.id, result.outcome, detail, result.sha, list(result.notes))
    return _record(store, mr, step, result)


def _tip_here_or_remote(store: Store, branch: str) -> str | None:
    """A branch's tip: the local branch, else its remote-tracking copy (work a worker on
    another clone pushed, or a target this clone never checked out)."""
    return store.head_of(f"refs/heads/{branch}") or store.head_of(
        f"refs/remotes/{revs.default_remote(store)}/{branch}")


def _in_target(store: Store, mr: MergeRequest) -> bool:
    tip = store.head_of(f"refs/heads/{mr.target}")
    return bool(tip and mr.commit in store.repo and revs.is_ancestor(store, mr.commit, tip))


def _record(store: Store, mr: MergeRequest, step: Step,
            result: landing.Landed | None = None) -> Step:
    max_failures = number_setting(store, "convoy.refinery.maxCheckFailures")
    events: list[dict[str, Any]] = []

    def mutate(tx: Tx) -> Step:
        events.clear()  # a retried transaction decides afresh
        current = mrs_of(tx).get(mr.id)
        if current is None or current.status != mr.status:
            return step  # someone else already moved this MR on
        bead = tx.beads.get(mr.bead)
        stamp = now()
        outcome = step.outcome
        if outcome in ("landed", "already"):
            _merged(tx, current, bead, step, stamp)
        elif outcome == "orphaned":
            tx.put(touched(current, status="orphaned", closed_at=stamp, reason=step.detail))
            if bead is not None and not bead.done and bead.mr == mr.id:
                tx.put(touched(with_status(bead, "open"), assignee=None, branch=None,
                               base_commit=None, mr=None))
        elif outcome == "conflict" and bead is not None:
            files = result.files if result else []
            blocker = _conflicted(tx, current, bead, files, stamp,
                                  result.base if result else None)
            return replace(step, detail=conflict_detail(tx, current, files, blocker))
        elif outcome == "push_failed":
            tx.put(touched(current, status="push_failed", retries=current.retries + 1,
                           reason=step.detail + (f"; kept locally as {step.sha[:12]}"
                                                 if step.sha else ""),
                           recovery=recovery_command(mr.id, result)))
        elif outcome == "busy":
            tx.put(touched(current, retries=current.retries + 1, reason=step.detail))
        else:  # check_failed, not_ff, no_target: back to the worker
            failures = current.check_failures + (outcome == "check_failed")
            log = result.check.log if result and result.check else None
            already = current.escalated or (bead is not None and ESCALATED_LABEL in bead.labels)
            escalate = outcome == "check_failed" and failures >= max_failures and not already
            tx.put(touched(current, status="rejected", retries=current.retries + 1,
                           check_failures=failures, check_log=log or current.check_log,
                           reason=step.detail, escalated=current.escalated or escalate))
            if bead is not None and not bead.done:
                _send_back(tx, bead, current, step.detail, log, escalate)
            if escalate:
                note = (f"escalated: {mr.bead} failed its check {failures} times "
                        f"(convoy.refinery.maxCheckFailures = {max_failures})")
                if note not in step.notes:
                    step.notes.append(note)
                events.append({"event": "check_failures_escalated", "mr": mr.id,
                               "bead": mr.bead, "failures": failures, "log": log,
                               "branch": mr.branch, "target": mr.target,
                               "command": f"git convoy bead show {mr.bead}"})
        return step

    done = store.transact(mutate, lambda s: f"refinery {s.mr} ({s.bead}): {s.outcome}")
    for event in events:  # only the process whose transaction escalated tells anyone
        failed = notify.send(store, event)
        if failed:
            done.notes.append(failed)
    return done


def recovery_command(mr_id: str, result: landing.Landed | None) -> str:
    """Kept locally: retrying pushes it. Nothing kept (local and remote diverged): the
    by-hand step comes first."""
    retry_cmd = f"git convoy refinery retry {mr_id}"
    if result is None or not result.recovery:
        return retry_cmd
    if result.sha:
        return f"{retry_cmd} (or by hand: {result.recovery})"
    return f"{result.recovery}, then {retry_cmd}"


def _merged(tx: Tx, mr: MergeRequest, bead: Bead | None, step: Step, stamp: str) -> None:
    sha = step.sha or ""
    tx.put(touched(mr, status="merged", merged_as=sha, closed_at=stamp, reason=None,
                   recovery=None))
    if bead is not None and not bead.done:
        closed = with_status(bead, "closed", f"Merged in {mr.id} as {sha[:12]}")
        dispatch = {k: v for k, v in closed.dispatch.items() if not k.startswith("returned")}
        if sha:
            dispatch["landed_as"] = sha  # what dependents' bases must contain (plan.carry)
        tx.put(touched(closed, dispatch=dispatch))


def conflict_detail(tx: Tx, mr: MergeRequest, files: list[str], blocker: str) -> str:
    """What a conflict's run line says: the files (the first few), the conflict bead and the
    two ways out (docs/refinery.md, "Conflicts")."""
    shown = ", ".join(files[:CONFLICT_FILES_SHOWN])
    if len(files) > CONFLICT_FILES_SHOWN:
        shown += f" and {len(files) - CONFLICT_FILES_SHOWN} more"
    tracked = any(c.status == "open" and blocker in c.tracks for c in tx.convoys.values())
    who = ("goes to a worker" if tracked
           else f"waits for a worker (git convoy sling {blocker})")
    where = f"{shown}: " if shown else ""
    return (f"{where}conflict bead {blocker} {who}; or resolve on {mr.branch}, then git "
            "convoy done")


def _conflicted(tx: Tx, mr: MergeRequest, bead: Bead, files: list[str], stamp: str,
                target_tip: str | None) -> str:
    """A conflict bead blocks the work and joins every open convoy tracking it, so the
    feeder hands it to a worker (on the MR's own branch, gitconvoy.flow.dispatch); its id."""
    existing = tx.beads.get(mr.conflict_bead or "")
    description = conflict_description(mr, bead, files, target_tip)
    if existing is not None and not existing.done:
        blocker = touched(existing, description=description)
    else:
        title = f"Resolve merge conflicts: {bead.title}"
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "…"
        blocker_id = ids.new_id(tx.config.prefix, title, tx.beads, tx.beads.count() + 1)
        blocker = Bead(
            id=blocker_id, title=title, type="task", priority=bead.priority,
            description=description, assignee=bead.assignee, labels=[CONFLICT_LABEL],
            parent=bead.parent, rig=bead.rig, target=mr.target, created_at=stamp,
            created_by="refinery", updated_at=stamp, dispatch={"resolves": mr.id},
            formula=CONFLICT_FORMULA,
        )
    tx.put(blocker)
    for convoy in tx.convoys.values():
        if convoy.status == "open" and bead.id in convoy.tracks and \
                blocker.id not in convoy.tracks:
            tx.put(touched(convoy, tracks=[*convoy.tracks, blocker.id]))
    deps = sorted(set(bead.deps) | {Dep(blocker.id, "blocks")})
    tx.put(touched(bead, deps=deps))
    tx.put(touched(mr, status="conflict", retries=mr.retries + 1, conflict_bead=blocker.id,
                   conflict_files=files, conflict_since=mr.conflict_since or stamp,
                   reason=f"conflicts in {', '.join(files)}: resolve {blocker.id}"))
    return blocker.id


def _send_back(tx: Tx, bead: Bead, mr: MergeRequest, reason: str, log: str | None,
               escalate: bool) -> None:
    back = bead if bead.status == "in_progress" else with_status(bead, "in_progress")
    dispatch = dict(back.dispatch)
    dispatch["returned"] = f"{mr.id}: {reason}"
    dispatch["returned_at"] = now()
    if log:
        dispatch["returned_log"] = log
    labels = sorted(set(back.labels) | {ESCALATED_LABEL}) if escalate else back.labels
    tx.put(touched(back, dispatch=dispatch, labels=labels))


# --- after landing ----------------------------------------------------------------------


def delete_source(store: Store, snap: Snapshot, mr: MergeRequest) -> str | None:
    """Delete the work branch when the rig says so and nothing new was committed on it."""
    bead = snap.beads.get(mr.bead)
    rig = _rig(snap, bead) if bead else None
    if (_rig_value(store, rig, "delete-branch") or "").lower() not in TRUTHY:
        return None
    ref = f"refs/heads/{mr.branch}"
    if store.head_of(ref) != mr.commit:
        return f"kept {mr.branch}: it has commits beyond the landed {mr.commit[:10]}"
    if landing.checked_out_in(store, mr.branch):
        return f"kept {mr.branch}: it is checked out in a worktree"
    if store.cas_ref(ref, mr.commit, None, f"refinery: {mr.id} landed, delete {mr.branch}"):
        return f"deleted {mr.branch}"
    return None


@dataclass
class RunReport:
    steps: list[Step] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    fed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # push_failed MRs backing off


def due_repushes(store: Store, snap: Snapshot, at: str | None = None) -> list[str]:
    """push_failed MRs whose back-off is over (what the next run pushes again)."""
    at = at or now()
    backoff = duration_setting(store, "convoy.refinery.repushBackoff")
    limit = number_setting(store, "convoy.refinery.maxRepush")
    return sorted(mr.id for mr in mrs_of(snap).values() if mr.status == "push_failed"
                  and repush_verdict(mr, at, backoff, limit) == "due")


def waiting_lines(store: Store, snap: Snapshot, at: str | None = None) -> list[str]:
    """One line per push_failed MR left after a run: when it is pushed again, or that a
    person must look (its automatic tries are spent)."""
    at = at or now()
    backoff = duration_setting(store, "convoy.refinery.repushBackoff")
    limit = number_setting(store, "convoy.refinery.maxRepush")
    out = []
    for mr in sorted(mrs_of(snap).values(), key=lambda m: m.id):
        if mr.status != "push_failed":
            continue
        tries = max(mr.retries - mr.check_failures, 1)
        if repush_verdict(mr, at, backoff, limit) == "give_up":
            out.append(f"{mr.id} ({mr.bead}): push_failed, automatic tries spent; "
                       f"{mr.recovery or 'git convoy refinery retry ' + mr.id}")
            continue
        wait = min(backoff * 2 ** (tries - 1), 3600.0) - age_seconds(mr.updated_at, at)
        out.append(f"{mr.id} ({mr.bead}): push_failed, pushed again in "
                   f"{format_age(max(wait, 0.0))} (try {tries} of {limit}) by the next "
                   f"'refinery run' or 'watch'; now: {mr.recovery or 'refinery retry ' + mr.id}")
    return out


OnLanded = Callable[[], list[str]]


def run(store: Store, *, once: bool = False, only: set[str] | None = None,
        on_landed: OnLanded | None = None) -> RunReport:
    """Land the queue: each queued MR at most once per run, best first. `on_landed` runs
    after each landing (gitconvoy.cycle passes the feeder, so dependents start from the new
    target before the next MR lands); its lines go to `fed`."""
    report = RunReport()
    report.notices.extend(reconcile(store))
    attempted: set[str] = set()
    while True:
        snap = store.snapshot()
        queue = [m for m in queue_order(mrs_of(snap).values(), snap.beads)
                 if m.id not in attempted and (only is None or m.id in only)]
        if not queue:
            break
        mr = queue[0]
        attempted.add(mr.id)
        progress.note(f"landing {mr.id} ({mr.bead}) on {mr.target}", len(attempted) - 1,
                      len(attempted) - 1 + len(queue))
        step = land_mr(store, mr.id)
        report.steps.append(step)
        if step.outcome in ("landed", "already"):
            deleted = delete_source(store, store.snapshot(), mr)
            if deleted:
                step.notes.append(deleted)
            if on_landed is not None:  # each step's feed may say what an earlier one said
                report.fed += [ln for ln in on_landed() if ln not in report.fed]
        if once:
            break
    report.waiting = waiting_lines(store, store.snapshot())
    return report


def retry(store: Store, mr_id: str, on_landed: OnLanded | None = None) -> RunReport:
    """Put a push_failed, rejected, conflicting or orphaned MR back in the queue and land it."""
    def mutate(tx: Tx) -> MergeRequest:
        mr = mrs_of(tx).get(mr_id)
        if mr is None:
            raise ConvoyError(f"unknown merge request '{mr_id}': see 'git convoy refinery "
                              "status'")
        if mr.status in ("merged", "superseded"):
            raise ConvoyError(f"{mr_id} is {mr.status}: nothing to retry")
        if mr.status == "queued":
            return mr
        requeued = touched(mr, status="queued", closed_at=None, recovery=None,
                           reason=f"retried from {mr.status}")
        tx.put(requeued)
        bead = tx.beads.get(mr.bead)
        if mr.status == "orphaned" and bead is not None and not bead.done:
            tx.put(touched(with_status(bead, "in_progress"), mr=mr.id, branch=mr.branch))
        return requeued

    store.transact(mutate, f"refinery retry {mr_id}")
    return run(store, only={mr_id}, on_landed=on_landed)


# --- status and anomalies ---------------------------------------------------------------


def anomalies(store: Store, snap: Snapshot, at: str | None = None) -> list[dict[str, Any]]:
    """What needs a human or a `refinery run`: each with the exact command that helps."""
    at = at or now()
    stale = duration_setting(store, "convoy.refinery.staleAfter")
    idle = duration_setting(store, "convoy.refinery.idleAfter")
    escalate = duration_setting(store, "convoy.refinery.escalateAfter")
    max_failures = number_setting(store, "convoy.refinery.maxCheckFailures")
    found: list[dict[str, Any]] = []

    def add(kind: str, mr: str | None, bead: str | None, detail: str, command: str) -> None:
        found.append({"kind": kind, "mr": mr, "bead": bead, "detail": detail,
                      "command": command})

    queued_for: set[str] = set()
    for mr in sorted(mrs_of(snap).values(), key=lambda m: (m.created_at or "", m.id)):
        if not mr.open:
            continue
        queued_for.add(mr.bead)
        if mr.status != "push_failed" and store.head_of(f"refs/heads/{mr.branch}") is None:
            add("orphaned", mr.id, mr.bead, f"source branch {mr.branch} is gone",
                f"git convoy refinery run  # closes {mr.id}, {mr.bead} becomes ready again")
        if mr.status == "queued" and age_seconds(mr.created_at, at) >= stale:
            add("stale", mr.id, mr.bead,
                f"queued for {format_age(age_seconds(mr.created_at, at))} (stalled queue)",
                "git convoy refinery run")
        if mr.status == "push_failed":
            add("push_failed", mr.id, mr.bead, mr.reason or "push failed",
                mr.recovery or f"git convoy refinery retry {mr.id}")
        if mr.check_failures >= 2:
            detail = f"check failed {mr.check_failures} times"
            if mr.check_failures >= max_failures:
                detail += " (escalated)"
            add("repeated_check_failures", mr.id, mr.bead, detail,
                f"cat {mr.check_log}" if mr.check_log else "git convoy refinery status")
        if mr.status == "conflict" and age_seconds(mr.conflict_since, at) >= escalate:
            add("conflict_escalated", mr.id, mr.bead,
                f"conflict open for {format_age(age_seconds(mr.conflict_since, at))} in "
                f"{', '.join(mr.conflict_files)}",
                f"git convoy bead show {mr.conflict_bead}")
    for bead in sorted(snap.beads.values(), key=lambda b: b.id):
        if bead.status not in ("in_progress", "hooked") or bead.id in queued_for:
            continue
        if not bead.branch or not bead.base_commit:
            continue
        tip = store.head_of(f"refs/heads/{bead.branch}")
        if tip is None or tip == bead.base_commit:
            continue
        target_tip = store.head_of(f"refs/heads/{bead.target}") if bead.target else None
        if target_tip and revs.is_ancestor(store, tip, target_tip):
            continue  # landed without the refinery: the feeder closes it
        when = store.repo[tip].commit_time
        stamp = _dt.datetime.fromtimestamp(when, _dt.UTC).isoformat()
        if age_seconds(stamp, at) >= idle:
            add("unqueued_work", None, bead.id,
                f"{bead.branch} has work and no merge request (idle "
                f"{format_age(age_seconds(stamp, at))}; done never ran?)",
                f"git convoy done {bead.id}")
    return found


def mr_json(mr: MergeRequest) -> dict[str, Any]:
    """Every field, null when unset (the JSON convention of docs/json.md)."""
    data: dict[str, Any] = {name: getattr(mr, name) for name in MergeRequest.ORDER}
    data["conflict_files"] = list(mr.conflict_files)
    return data


def status(store: Store) -> dict[str, Any]:
    snap = store.snapshot()
    at = now()
    open_mrs = [m for m in mrs_of(snap).values() if m.open]
    order = {m.id: n for n, m in enumerate(queue_order(open_mrs, snap.beads))}
    open_mrs.sort(key=lambda m: (order.get(m.id, len(order)), m.created_at or "", m.id))

    def row(mr: MergeRequest) -> dict[str, Any]:
        data = mr_json(mr)
        data["age_seconds"] = int(age_seconds(mr.created_at, at))
        data["position"] = order.get(mr.id)
        return data

    return {
        "queue": [row(m) for m in open_mrs],
        "conflicts": [row(m) for m in open_mrs if m.status == "conflict"],
        "anomalies": anomalies(store, snap, at),
        "merged": sum(1 for m in mrs_of(snap).values() if m.status == "merged"),
    }
