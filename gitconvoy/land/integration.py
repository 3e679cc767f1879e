"""Integration branches of epics (DESIGN §8): create, status, land.

An epic's tasks land on its integration branch (targets.target_for puts the nearest
ancestor's branch first), so the epic's combined change can be looked at as one before it
lands on the branch it was cut from. The epic records the branch (`integration_branch`), the
branch it lands on (`target`) and the commit it was cut from (`base_commit`), which tells "no
work yet" apart from "already landed".

Landing goes through the same in-memory merge, check, compare-and-swap and push as the
refinery (gitconvoy.landing); the epic is closed before the branch is deleted, so a crash in
between leaves a closed epic and a stale branch, never an open epic without its branch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pygit2

from gitconvoy.errors import ConvoyError
from gitconvoy.git import localconfig, revs
from gitconvoy.land import checks, landing, refinery, targetchecks
from gitconvoy.plan import graph, targets
from gitconvoy.plan.edits import with_status
from gitconvoy.state import ids
from gitconvoy.state.model import MAX_TITLE, Bead, Dep, now, touched
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

DEFAULT_TEMPLATE = "integration/{epic}-{slug}"
PENDING = frozenset({"queued", "conflict", "rejected", "push_failed"})


def slugify(title: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "epic"


def branch_name(store: Store, epic: Bead, name: str | None = None) -> str:
    """The branch from --name, else the template (git config convoy.integration.template)."""
    template = store.config_get("convoy.integration.template") or DEFAULT_TEMPLATE
    if name is None:
        try:
            name = template.format(epic=epic.id, slug=slugify(epic.title))
        except (KeyError, IndexError, ValueError):
            raise ConvoyError(
                f"convoy.integration.template {template!r} is not valid: use {{epic}} and "
                "{slug}"
            ) from None
    if not pygit2.reference_is_valid_name(f"refs/heads/{name}") or name.startswith("-"):
        raise ConvoyError(f"'{name}' is not a valid branch name (see git check-ref-format)")
    return name


def find_epic(snap_or_tx: Any, epic_id: str) -> Bead:
    epic = snap_or_tx.bead(epic_id)
    if epic.type != "epic":
        raise ConvoyError(f"bead '{epic_id}' is a {epic.type}, not an epic: integration "
                          "branches belong to epics")
    if epic.status == "tombstone":
        raise ConvoyError(f"epic '{epic_id}' was deleted")
    return epic


@dataclass
class Created:
    epic: str
    branch: str
    base: str
    commit: str


def create(store: Store, epic_id: str, *, base: str | None = None,
           name: str | None = None) -> Created:
    snap = store.snapshot()
    epic = find_epic(snap, epic_id)
    # `import` plans the name (integration_branch set, never cut: no base_commit, no branch)
    planned = epic.integration_branch if epic.integration_branch and not epic.base_commit \
        and store.head_of(f"refs/heads/{epic.integration_branch}") is None else None
    if epic.integration_branch and not planned:
        raise ConvoyError(f"epic '{epic_id}' already has integration branch "
                          f"{epic.integration_branch}")
    if epic.status == "closed":
        raise ConvoyError(f"epic '{epic_id}' is closed")
    branch = branch_name(store, epic, name or planned)
    base = base or targets.target_for(snap.beads, snap.config, epic,
                                      refinery.convoy_of(snap.convoys, epic.id))
    if not base:
        raise ConvoyError(f"epic '{epic_id}' has no target to branch from: pass --base BRANCH")
    tip = store.head_of(f"refs/heads/{base}")
    if tip is None:
        raise ConvoyError(f"base branch {base} does not exist")
    ref = f"refs/heads/{branch}"
    if not store.cas_ref(ref, None, tip, f"integration create {epic_id}"):
        raise ConvoyError(f"branch {branch} already exists: pass --name to choose another")

    def mutate(tx: Tx) -> None:
        current = find_epic(tx, epic_id)
        if current.integration_branch and (current.base_commit
                                           or current.integration_branch != planned):
            raise ConvoyError(f"epic '{epic_id}' already has integration branch "
                              f"{current.integration_branch}")
        tx.put(touched(current, integration_branch=branch, target=base, base_commit=tip))

    try:
        store.transact(mutate, f"integration create {epic_id}: {branch} from {base}")
    except ConvoyError:
        store.cas_ref(ref, tip, None, f"integration create {epic_id} rolled back")
        raise
    return Created(epic_id, branch, base, tip)


def create_planned(store: Store, epic_ids: list[str]) -> list[Created]:
    """Cut the integration branches an import planned (recorded, never cut), parents first,
    so a nested sub-epic's branch starts from its parent's. `launch` calls it before it
    dispatches anything; `integration create --all` for a whole tree."""
    snap = store.snapshot()
    made = []
    for epic_id in sorted(epic_ids, key=lambda e: (_depth(snap.beads, e), e)):
        epic = store.snapshot().beads.get(epic_id)
        if (epic is None or epic.type != "epic" or epic.done or not epic.integration_branch
                or epic.base_commit
                or store.head_of(f"refs/heads/{epic.integration_branch}") is not None):
            continue
        made.append(create(store, epic_id))
    return made


def create_all(store: Store, root_id: str) -> list[Created]:
    """`integration create --all <root>`: every sub-epic under the root that has children and
    no branch yet gets one (the planned name, else the template), parents first; sub-epics
    marked `integration:none` are left alone."""
    snap = store.snapshot()
    find_epic(snap, root_id)
    index = graph.Index(snap.beads)
    wanted = [e for e in index.descendants(root_id)
              if snap.beads[e].type == "epic" and not snap.beads[e].done
              and index.children.get(e) and targets.NO_INTEGRATION not in snap.beads[e].labels]
    made = []
    for epic_id in sorted(wanted, key=lambda e: (_depth(snap.beads, e), e)):
        epic = store.snapshot().beads[epic_id]
        if epic.integration_branch and (epic.base_commit or store.head_of(
                f"refs/heads/{epic.integration_branch}") is not None):
            continue
        made.append(create(store, epic_id))
    return made


def _depth(beads: Any, bead_id: str) -> int:
    seen = {bead_id}
    parent = beads[bead_id].parent if bead_id in beads else None
    depth = 0
    while parent and parent not in seen and parent in beads:
        seen.add(parent)
        depth += 1
        parent = beads[parent].parent
    return depth


@dataclass
class Status:
    epic: str
    branch: str
    base: str
    ahead: int
    behind: int
    children: list[dict[str, str]]
    merged: list[str]
    pending: list[str]
    landed: bool
    empty: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        return {"epic": self.epic, "branch": self.branch, "base": self.base,
                "ahead": self.ahead, "behind": self.behind, "children": self.children,
                "merged_mrs": self.merged, "pending_mrs": self.pending,
                "landed": self.landed, "empty": self.empty, "ready": self.ready,
                "reasons": self.reasons}


def landed_line(store: Store, epic_id: str) -> str | None:
    """For an epic that already landed (its branch gone with it): one line saying so."""
    epic = find_epic(store.snapshot(), epic_id)
    if epic.status != "closed" or not epic.integration_branch or \
            store.head_of(f"refs/heads/{epic.integration_branch}") is not None:
        return None
    return f"{epic.integration_branch} landed: epic {epic_id} is closed ({epic.close_reason})"


def status(store: Store, epic_id: str) -> Status:
    snap = store.snapshot()
    epic = find_epic(snap, epic_id)
    if not epic.integration_branch:
        raise ConvoyError(f"epic '{epic_id}' has no integration branch: run 'git convoy "
                          f"integration create {epic_id}'")
    branch, base = epic.integration_branch, epic.target or "main"
    tip = store.head_of(f"refs/heads/{branch}")
    base_tip = store.head_of(f"refs/heads/{base}")
    if tip is None:
        raise ConvoyError(f"integration branch {branch} of {epic_id} does not exist")
    if base_tip is None:
        raise ConvoyError(f"base branch {base} of {epic_id} does not exist")
    ahead, behind = store.repo.ahead_behind(tip, base_tip)
    index = graph.Index(snap.beads)
    kids = [snap.beads[i] for i in sorted(index.descendants(epic_id)) if i in snap.beads]
    children = [{"id": b.id, "type": b.type, "status": b.status, "title": b.title}
                for b in kids if b.status != "tombstone"]
    mrs = [m for m in refinery.mrs_of(snap).values() if m.target == branch]
    merged = sorted(m.id for m in mrs if m.status == "merged")
    pending = sorted(m.id for m in mrs if m.status in PENDING)
    landed = ahead == 0 and tip != epic.base_commit
    empty = tip == epic.base_commit or (ahead == 0 and not landed) or (
        ahead > 0 and _same_tree_after_merge(store, base_tip, tip))
    reasons = []
    open_kids = [c["id"] for c in children if c["status"] != "closed"]
    if open_kids:
        reasons.append(f"{len(open_kids)} child bead(s) not closed: {', '.join(open_kids)}")
    if pending:
        reasons.append(f"pending merge requests: {', '.join(pending)}")
    if empty:
        reasons.append(f"{branch} has no changes for {base}")
    if epic.status == "closed":
        reasons.append(f"epic {epic_id} is already closed")
    return Status(epic_id, branch, base, ahead, behind, children, merged, pending, landed,
                  empty, reasons)


def _same_tree_after_merge(store: Store, base_tip: str, tip: str) -> bool:
    merged = landing.merge_in_memory(store, base_tip, tip, "merge", "probe\n")
    if merged.kind != "merged" or merged.commit is None:
        return False
    repo = store.repo
    return repo[merged.commit].peel(pygit2.Commit).tree_id == \
        repo[base_tip].peel(pygit2.Commit).tree_id


@dataclass
class LandReport:
    epic: str
    branch: str
    base: str
    sha: str
    notes: list[str] = field(default_factory=list)
    fed: list[str] = field(default_factory=list)


def ready_branch(store: Store, epic_id: str, refusal: str
                 ) -> tuple[Status, Bead, targetchecks.CheckPlan, str]:
    """A ready integration branch with what landing or reviewing it needs: its status, the
    epic, the checks that guard its base (whatever rig the epic names) and the branch tip.
    `refusal` (with {branch}) starts the error raised when it is not ready."""
    st = status(store, epic_id)
    owned = localconfig.state_owned(store, st.base)
    if owned:
        raise ConvoyError(f"{refusal.format(branch=st.branch)}: its base {owned}")
    if not st.ready:
        raise ConvoyError(f"{refusal.format(branch=st.branch)}: {'; '.join(st.reasons)}")
    snap = store.snapshot()
    epic = snap.bead(epic_id)
    rig = targets.rig_for(snap.config, epic, refinery.convoy_of(snap.convoys, epic_id))
    checking = targetchecks.checks_for(store, snap.config.rigs, st.base, rig)
    return st, epic, checking, store.head_of(f"refs/heads/{st.branch}") or ""


Guard = Callable[[Status, str], None]


def land(store: Store, epic_id: str, guard: Guard | None = None) -> LandReport:
    """Land a ready integration branch on its base, close the epic, delete the branch.
    `guard(status, tip)` may refuse (raise) before anything moves: the review gate's
    approval (gitconvoy.land.review.land_epic), which is how every caller lands an epic."""
    st, epic, checking, tip = ready_branch(store, epic_id, "{branch} is not ready to land")
    if guard is not None:
        guard(st, tip)

    def check(candidate: str) -> checks.CheckResult:
        env = {"CONVOY_BEAD": epic_id, "CONVOY_TARGET": st.base, "CONVOY_COMMIT": candidate,
               "CONVOY_BRANCH": st.branch}
        return targetchecks.run(store, checking, candidate, label=f"land-{epic_id}", env=env)

    message = (f"Land {st.branch} into {st.base}: {epic.title}\n\n"
               f"Lands epic {epic_id} ({len(st.children)} child bead(s), merge requests "
               f"{', '.join(st.merged) or 'none'}).\n\nConvoy-Epic: {epic_id}\n")
    result = landing.land(store, landing.Plan(
        source=tip, target=st.base, strategy="merge", message=message,
        check=check if checking.checks else None,
        push_attempts=max(refinery.number_setting(store, "convoy.refinery.pushAttempts"), 1),
        reflog=f"integration land {epic_id}",
        grows_from=epic.base_commit, foreign=localconfig.state_tips(store),
    ))
    if not result.ok:
        raise ConvoyError(_failure(st, result))
    sha = result.sha or ""

    def close(tx: Tx) -> None:
        current = tx.bead(epic_id)
        if not current.done:
            closed = with_status(current, "closed", f"Landed {st.branch} on {st.base} as "
                                                    f"{sha[:12]}")
            tx.put(touched(closed, dispatch={**closed.dispatch, "landed_as": sha}))

    store.transact(close, f"integration land {epic_id}: {st.branch} → {st.base} {sha[:12]}")
    notes = list(result.notes)
    ref = f"refs/heads/{st.branch}"
    if landing.checked_out_in(store, st.branch):
        notes.append(f"kept {st.branch}: it is checked out in a worktree")
    elif store.cas_ref(ref, tip, None, f"integration land {epic_id}: delete {st.branch}"):
        notes.append(f"deleted {st.branch}")
    else:
        notes.append(f"kept {st.branch}: it moved while landing")
    return LandReport(epic_id, st.branch, st.base, sha, notes)


def _failure(st: Status, result: landing.Landed) -> str:
    head = f"{st.branch} did not land on {st.base}"
    if result.outcome == "conflict":
        return (f"{head}: conflicts in {', '.join(result.files)}; merge {st.base} into "
                f"{st.branch}, resolve, commit, then land again")
    if result.outcome == "check_failed" and result.check is not None:
        return f"{head}: {result.detail}; log: {result.check.log}"
    if result.outcome == "push_failed":
        kept = f" (kept locally as {result.sha[:12]})" if result.sha else ""
        return f"{head}: {result.detail}{kept}; recover with: {result.recovery or 'git push'}" \
               f", then 'git convoy integration land {st.epic}' again"
    return f"{head}: {result.detail}"


# --- catching up: an integration branch takes in its blockers' landed work ------------------

CATCH_UP_KEY = "catch_up"  # a gating bead's dispatch field: the epic it unblocks


def owner_of(snap: Any, branch: str) -> Bead | None:
    """The open epic whose integration branch `branch` is."""
    for bead in snap.beads.values():
        if bead.type == "epic" and bead.integration_branch == branch and not bead.done:
            return bead
    return None


def catch_up(store: Store, branch: str, needed: list[tuple[str, str]],
             depth: int = 0) -> str:
    """Bring an integration branch up to date with the branch it was cut from, so a task
    dispatched from it starts with the work it waited for: merge the source's tip in, checked
    like any landing. A source that lacks the work itself is an integration branch caught up
    first (nested sub-epics), else the work has not arrived yet and the tasks wait. A
    conflict or a failing check becomes a bead that gates the epic's tasks until a worker
    lands the merge. One line says what happened."""
    snap = store.snapshot()
    epic = owner_of(snap, branch)
    names = ", ".join(b for b, _ in needed)
    if epic is None or not epic.target:
        return (f"{branch} lacks the landed work of {names}: it is no integration branch; "
                "the work arrives when it lands there")
    own = landing.fresh_tip(store, branch)  # the server's lander may have landed it there
    if own is not None and all(c in store.repo and _contains(store, own, c) for _, c in needed):
        return f"{branch} has the landed work of {names} (as the remote has it)"
    source = epic.target
    src_tip = landing.fresh_tip(store, source)  # landed on another clone: still landed
    if src_tip is None:
        return f"{branch} cannot catch up: its base branch {source} does not exist"
    lacking = [(b, c) for b, c in needed
               if c not in store.repo or not _contains(store, src_tip, c)]
    if lacking:
        if owner_of(snap, source) is None or depth > 16:
            return (f"{branch} waits: {source} lacks the landed work of "
                    f"{', '.join(b for b, _ in lacking)} too (it arrives when that lands "
                    f"on {source})")
        line = catch_up(store, source, lacking, depth + 1)
        src_tip = revs.newest_tip(store, source) or src_tip
        if any(c not in store.repo or not _contains(store, src_tip, c) for _, c in lacking):
            return line
    tip = revs.newest_tip(store, branch)
    if tip is not None and _contains(store, tip, src_tip):
        return f"{branch} is up to date with {source}"
    rig = targets.rig_for(snap.config, epic, refinery.convoy_of(snap.convoys, epic.id))
    checking = targetchecks.checks_for(store, snap.config.rigs, branch, rig)

    def check(candidate: str) -> checks.CheckResult:
        env = {"CONVOY_BEAD": epic.id, "CONVOY_TARGET": branch, "CONVOY_COMMIT": candidate,
               "CONVOY_BRANCH": source}
        return targetchecks.run(store, checking, candidate, label=f"catch-up-{epic.id}",
                                env=env)

    message = (f"Merge {source} into {branch}: bring in {names}\n\n"
               f"Epic {epic.id}'s tasks start from the work they waited for.\n")
    result = landing.land(store, landing.Plan(
        source=src_tip, target=branch, strategy="merge", message=message,
        check=check if checking.checks else None,
        push_attempts=max(refinery.number_setting(store, "convoy.refinery.pushAttempts"), 1),
        reflog=f"integration catch-up {epic.id}", foreign=localconfig.state_tips(store),
    ))
    if result.ok:
        return (f"{branch}: brought up to date with {source} as {(result.sha or '')[:10]} "
                f"(the landed work of {names})")
    if result.outcome in ("conflict", "check_failed"):
        gate = _gate_epic(store, epic.id, branch, source, src_tip, result)
        what = (f"conflicts in {', '.join(result.files)}" if result.outcome == "conflict"
                else f"the merged tree fails its check ({result.detail})")
        return (f"{branch}: merging {source} in: {what}; {gate} gates epic {epic.id}'s tasks "
                "and goes to a worker")
    return f"{branch}: merging {source} in did not land: {result.detail}"


def _contains(store: Store, tip: str, commit: str) -> bool:
    return revs.is_ancestor(store, commit, tip)


def _gate_epic(store: Store, epic_id: str, branch: str, source: str, src_tip: str,
               result: landing.Landed) -> str:
    """One open bead that blocks the epic until a worker lands `source` into `branch`."""
    if result.outcome == "conflict":
        listed = "\n".join(f"  - {f}" for f in result.files)
        trouble = f"conflicts in:\n{listed}"
    else:
        log = result.check.log if result.check else None
        trouble = f"fails its check: {result.detail}" + (f"\n(log: {log})" if log else "")
    description = (
        f"Merging {source} ({src_tip[:10]}) into {branch} {trouble}\n\n"
        f"To resolve: on this bead's branch (cut from {branch}), run 'git merge {source}', "
        "fix, commit, then 'git convoy done'. When it lands on "
        f"{branch}, epic {epic_id}'s tasks are dispatched from the merged code.")

    def mutate(tx: Tx) -> str:
        epic = tx.bead(epic_id)
        for dep in epic.deps:
            found = tx.beads.get(dep.on)
            if found is not None and not found.done and \
                    found.dispatch.get(CATCH_UP_KEY) == epic_id:
                tx.put(touched(found, description=description))
                return found.id
        stamp = now()
        title = f"Bring {source} into {branch}"[:MAX_TITLE]
        gate_id = ids.new_id(tx.config.prefix, title, tx.beads, tx.beads.count() + 1)
        gate = Bead(id=gate_id, title=title, type="task", priority=epic.priority,
                    description=description, labels=[refinery.CONFLICT_LABEL], rig=epic.rig,
                    target=branch, created_at=stamp, created_by="refinery",
                    updated_at=stamp, dispatch={CATCH_UP_KEY: epic_id},
                    formula=refinery.CONFLICT_FORMULA)
        tx.put(gate)
        tx.put(touched(epic, deps=sorted(set(epic.deps) | {Dep(gate_id, "blocks")})))
        index = graph.Index(tx.beads)
        family = {epic_id, *index.descendants(epic_id)}
        for convoy in tx.convoys.values():
            if convoy.status == "open" and family & set(convoy.tracks):
                tx.put(touched(convoy, tracks=[*convoy.tracks, gate_id]))
        return gate_id

    return store.transact(mutate, lambda g: f"integration catch-up {epic_id}: gated by {g}")
