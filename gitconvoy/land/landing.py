"""Land a commit on a target branch: merge in memory, check, compare-and-swap, push.

Nothing here touches the user's working tree, index or HEAD: the merge is computed with
git merge-tree in the object database, the check runs in a temporary worktree of the exact merged
commit, and the target ref moves by compare-and-swap only to a commit whose tree passed.
The one exception is asked for by users: when the target branch is checked out in a clean
worktree, that worktree is brought along (`git read-tree -m -u old new`), and when it is not
clean it is left alone and the caller is told.

With an upstream (branch.<target>.remote/.merge), the remote tip is fetched first and the
landing is built on the newer of the two tips; a push rejected because the remote moved
fetches again and merges again on the new tip (bounded). After the last attempt everything is
kept locally and the caller gets `push_failed`. Whether a push landed is the remote's to say
(`ls-remote` shows our commit or a descendant), not git's exit code nor the local branch: a
commit made on the local target during the check does not turn a pushed landing into a
failure.

What may land is decided here too, whatever the caller's state says (SECURITY.md): the source
must grow from `Plan.grows_from` (the base recorded when the work started), that base must be
in the target, and nothing that shares history with `Plan.foreign` (the state branch) lands.
Only checked commits are pushed: when nothing new is merged but the local target is ahead of
its remote, what would be pushed is checked first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pygit2

from gitconvoy import faults
from gitconvoy.errors import ConvoyError
from gitconvoy.git import gitcli, revs, treemerge
from gitconvoy.git.worktrees import checked_out_in
from gitconvoy.land.checks import CheckResult
from gitconvoy.state.store import Store

STRATEGIES = ("merge", "squash", "ff-only")
LOCAL_RACES = 20
DEFAULT_PUSH_ATTEMPTS = 3


@dataclass
class Merged:
    """The in-memory result of combining `source` into `base`.

    kind: `merged` (a new commit), `already` (source is in base), `ff` (base fast-forwards
    to source), `conflict` (files listed), `not_ff` (ff-only and base is not an ancestor).
    """

    kind: str
    commit: str | None = None
    files: list[str] = field(default_factory=list)


@dataclass
class Landed:
    """What happened to one landing.

    outcome: `landed`, `already` (source was in the target: nothing new), `conflict`,
    `not_ff`, `check_failed`, `push_failed`, `no_target`, `busy` (the target kept moving
    under us: try again later), `refused` (not work that may land on the target: state
    history, unrelated history, not grown from its recorded base). `recovery` is the by-hand
    command for `push_failed`; `sha` is set there when the landing was kept on the local
    target.
    """

    outcome: str
    sha: str | None = None
    base: str | None = None
    files: list[str] = field(default_factory=list)
    check: CheckResult | None = None
    detail: str = ""
    recovery: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in ("landed", "already")


@dataclass
class Plan:
    """One landing: `source` commit onto branch `target` with `strategy`.

    `message` is the commit message for merge/squash; `check` runs on a candidate commit and
    says whether its tree may become the target; `author` (squash) keeps the worker's name.
    `grows_from` is the commit the work started from (None: the source must at least share
    history with the target); `foreign` are tips whose history must never land.
    """

    source: str
    target: str
    strategy: str = "merge"
    message: str = ""
    check: Callable[[str], CheckResult] | None = None
    push_attempts: int = DEFAULT_PUSH_ATTEMPTS
    reflog: str = "refinery"
    grows_from: str | None = None
    foreign: tuple[str, ...] = ()


# --- the merge itself (pure over the object database) -----------------------------------


def merge_in_memory(store: Store, base: str, source: str, strategy: str,
                    message: str) -> Merged:
    """Combine `source` into `base` without a working tree; write the commit if any. The
    tree is the one `git merge` would record (gitconvoy.git.treemerge)."""
    repo = store.repo
    if revs.is_ancestor(store, source, base):
        return Merged("already", base)
    fast_forward = revs.is_ancestor(store, base, source)
    if strategy == "ff-only":
        return Merged("ff", source) if fast_forward else Merged("not_ff")
    source_commit = repo[source].peel(pygit2.Commit)
    if fast_forward:
        tree_id = source_commit.tree_id
    else:
        result = treemerge.merge_commits(store, base, source)
        if not result.clean:
            return Merged("conflict", files=list(result.conflicts))
        tree_id = pygit2.Oid(hex=result.tree)
    committer = store.signature()
    if strategy == "squash":
        author = source_commit.author
        parents = [pygit2.Oid(hex=base)]
    else:
        author = store.signature("author")
        parents = [pygit2.Oid(hex=base), source_commit.id]
    oid = repo.create_commit(None, author, committer, message, tree_id, parents)
    return Merged("merged", str(oid))


# --- what may land ----------------------------------------------------------------------


def refusal(store: Store, plan: Plan, base: str) -> str | None:
    """Why `plan.source` is not work for `plan.target` at `base`, or None."""
    repo = store.repo
    source = plan.source
    for tip in plan.foreign:
        if tip in repo and (source == tip or revs.merge_base(store, source, tip)):
            return f"{source[:10]} shares history with the state branch: it is not work"
    start = plan.grows_from
    if start is None:
        if revs.merge_base(store, source, base) is None:
            return f"{source[:10]} shares no history with {plan.target}"
        return None
    if start not in repo:
        return f"its recorded base {start[:10]} is not in this repository"
    if not revs.is_ancestor(store, start, source):
        return f"{source[:10]} does not grow from its recorded base {start[:10]}"
    if not revs.is_ancestor(store, start, base):
        return f"its recorded base {start[:10]} is not on {plan.target}"
    return None


# --- remotes and worktrees --------------------------------------------------------------


def _fetch_tip(store: Store, remote: str, ref: str) -> str | None:
    """Fetch the remote's ref into refs/remotes/<remote>/<branch>; its tip, or None."""
    short = ref.removeprefix("refs/heads/")
    tracking = f"refs/remotes/{remote}/{short}"
    if not gitcli.fetch_ref(store.common_dir, remote, ref, tracking):
        return None
    return store.head_of(tracking)


def _is_clean(path: str) -> bool:
    # --no-optional-locks: a status check must not even refresh the user's index file
    res = gitcli.run_git(["--no-optional-locks", "status", "--porcelain=v1",
                          "--untracked-files=no"], cwd=path,
                         other_repo=True, check=False)
    return res.code == 0 and not res.out.strip()


def _bring_along(store: Store, branch: str, old: str, new: str,
                 clean: dict[str, bool]) -> list[str]:
    """Update clean worktrees that have `branch` checked out; tell about the others."""
    notes = []
    for path, was_clean in clean.items():
        if was_clean:
            res = gitcli.run_git(["read-tree", "-m", "-u", old, new], cwd=path,
                                 other_repo=True, check=False)
            if res.code == 0:
                notes.append(f"updated the checked-out {branch} in {path}")
                continue
        notes.append(
            f"{branch} is checked out in {path} with local changes: its files were left as "
            f"they were; run 'git read-tree -m -u {old[:12]} {new[:12]}' there to bring them "
            "along (it refuses to overwrite your changes)"
        )
    return notes


def remote_holds(store: Store, remote: str, ref: str, commit: str) -> bool:
    """Whether the remote's `ref` is at `commit` or a descendant of it (one ls-remote; a
    fetch only when the remote shows a commit we do not have)."""
    try:
        shown = gitcli.ls_remote(store.common_dir, remote, ref)
    except ConvoyError:
        return False
    if shown is None:
        return False
    if shown == commit:
        return True
    if shown not in store.repo:
        try:
            _fetch_tip(store, remote, ref)
        except ConvoyError:
            return False
    return shown in store.repo and revs.is_ancestor(store, commit, shown)


def _push(store: Store, remote: str, commit: str, ref: str) -> tuple[bool, str]:
    """Push without force (the remote half of the compare-and-swap). Pushed or not is what
    the remote shows afterwards (a server may answer ok for an update that lost its own race,
    or drop the line after taking it); on failure, why, in the remote's own words where it
    gave some (a hook's message, `[rejected]`)."""
    res = gitcli.run_git(
        ["push", "--porcelain", "--no-verify", remote, f"{commit}:{ref}"],
        git_dir=store.common_dir, check=False,
    )
    if remote_holds(store, remote, ref, commit):
        return True, ""
    if res.code == 0:
        return False, f"rejected: the remote does not show {commit[:10]} on {ref}"
    reasons = [ln.split("\t")[-1] for ln in res.out.splitlines() if ln.startswith("!")]
    said = [ln[len("remote:"):].strip() for ln in res.err.splitlines()
            if ln.startswith("remote:") and ln[len("remote:"):].strip()]
    text = "; ".join(reasons + said[:2]) or res.first_error
    return False, f"rejected: {text}" if reasons else f"failed: {text}"


# --- the landing loop -------------------------------------------------------------------


def land(store: Store, plan: Plan) -> Landed:
    """Merge, check, CAS the target and push; re-merge on a moved target or remote."""
    ref = f"refs/heads/{plan.target}"
    upstream = revs.upstream_of(store, plan.target)
    push_left = max(plan.push_attempts, 1)
    checked: dict[str, CheckResult] = {}
    remote_tip: str | None = None
    fetched = False
    last_push = ""
    for _ in range(LOCAL_RACES + push_left):
        local = store.head_of(ref)
        if local is None:
            return Landed("no_target", detail=f"target branch {plan.target} does not exist")
        base = local
        if upstream is not None and not fetched:
            remote_tip = _fetch_tip(store, *upstream)
            fetched = True
        if remote_tip is not None and remote_tip != local:
            if revs.is_ancestor(store, local, remote_tip):
                base = remote_tip
            elif not revs.is_ancestor(store, remote_tip, local):
                remote, rref = upstream or ("", "")
                return Landed(
                    "push_failed", base=local,
                    detail=f"{plan.target} and {remote}/{rref.removeprefix('refs/heads/')} "
                           "have diverged",
                    recovery=f"git pull --no-rebase {remote} {rref.removeprefix('refs/heads/')}"
                             f" (on {plan.target})",
                )
        refused = refusal(store, plan, base)
        if refused:
            return Landed("refused", base=base, detail=refused)
        merged = merge_in_memory(store, base, plan.source, plan.strategy, plan.message)
        if merged.kind == "conflict":
            return Landed("conflict", base=base, files=merged.files,
                          detail=f"{len(merged.files)} conflicting file(s)")
        if merged.kind == "not_ff":
            return Landed("not_ff", base=base,
                          detail=f"not a fast-forward of {plan.target} (strategy ff-only)")
        candidate = merged.commit or base
        needs_push = upstream is not None and remote_tip != candidate
        result: CheckResult | None = None
        if plan.check is not None and (merged.kind != "already" or needs_push):
            tree = str(store.repo[candidate].peel(pygit2.Commit).tree_id)
            result = checked.get(tree)
            if result is None:
                result = checked[tree] = plan.check(candidate)
            if not result.passed:
                return Landed("check_failed", base=base, check=result, detail=result.detail)
        pushed = False
        if upstream is not None and needs_push:
            remote, rref = upstream
            faults.point("landing.before_push")
            pushed, why = _push(store, remote, candidate, rref)
            faults.point("landing.after_push")
            push_left -= 1
            if not pushed:
                last_push = why
                if push_left > 0:
                    remote_tip = _fetch_tip(store, remote, rref)
                    continue
                return _keep_local(store, plan, ref, local, candidate, base, result,
                                   remote, rref, last_push)
            remote_tip = candidate  # git push also moved the remote-tracking ref
        notes: list[str] = []
        if local != candidate:
            clean = {p: _is_clean(p) for p in checked_out_in(store, plan.target)}
            if not store.cas_ref(ref, local, candidate, f"{plan.reflog}: land on {plan.target}"):
                if not pushed:
                    continue
                notes = _catch_up(store, plan, ref, candidate, upstream)
            else:
                faults.point("landing.after_cas")
                notes = _bring_along(store, plan.target, local, candidate, clean)
        outcome = "already" if merged.kind == "already" else "landed"
        return Landed(outcome, sha=candidate, base=base, check=result, notes=notes)
    return Landed("busy", detail=f"gave up for now: {plan.target} kept moving "
                  f"({last_push or 'other writers won every compare-and-swap'})")


def _catch_up(store: Store, plan: Plan, ref: str, pushed: str,
              upstream: tuple[str, str] | None) -> list[str]:
    """The landing is on the remote but the local target moved during the check: bring the
    local branch to it when that is a fast-forward, else leave the user's commits alone and
    say how to join the two."""
    for _ in range(LOCAL_RACES):
        now = store.head_of(ref)
        if now is None or revs.is_ancestor(store, pushed, now):
            return []
        if not revs.is_ancestor(store, now, pushed):
            remote, rref = upstream or ("origin", ref)
            short = rref.removeprefix("refs/heads/")
            return [f"{plan.target} got commits of its own during the landing: the landing is "
                    f"on {remote}/{short} as {pushed[:12]}; run 'git pull' on {plan.target} "
                    "to join them"]
        clean = {p: _is_clean(p) for p in checked_out_in(store, plan.target)}
        if store.cas_ref(ref, now, pushed, f"{plan.reflog}: land on {plan.target}"):
            return _bring_along(store, plan.target, now, pushed, clean)
    return [f"{plan.target} kept moving: the landing is on its remote as {pushed[:12]}"]


def _keep_local(store: Store, plan: Plan, ref: str, local: str, candidate: str, base: str,
                result: CheckResult | None, remote: str, rref: str, why: str) -> Landed:
    """The push kept failing: keep the checked landing on the local branch (when it is a
    fast-forward of it) so nothing is lost; the caller records push_failed."""
    notes: list[str] = []
    if revs.is_ancestor(store, local, candidate) and local != candidate:
        clean = {p: _is_clean(p) for p in checked_out_in(store, plan.target)}
        if store.cas_ref(ref, local, candidate, f"{plan.reflog}: land locally on {plan.target}"):
            notes = _bring_along(store, plan.target, local, candidate, clean)
    short = rref.removeprefix("refs/heads/")
    return Landed(
        "push_failed", sha=candidate, base=base, check=result, notes=notes,
        detail=f"push to {remote} {short} {why}",
        recovery=f"git push {remote} {plan.target}:{short}",
    )
