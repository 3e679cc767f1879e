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
kept locally and the caller gets `push_failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pygit2

from gitconvoy import faults
from gitconvoy.git import gitcli, revs, treemerge
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
    under us: try again later). `recovery` is the by-hand command for `push_failed`; `sha`
    is set there when the landing was kept on the local target.
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
    """

    source: str
    target: str
    strategy: str = "merge"
    message: str = ""
    check: Callable[[str], CheckResult] | None = None
    push_attempts: int = DEFAULT_PUSH_ATTEMPTS
    reflog: str = "refinery"


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


# --- remotes and worktrees --------------------------------------------------------------


def upstream_of(store: Store, branch: str) -> tuple[str, str] | None:
    """(remote, remote ref) from branch.<name>.remote/.merge; None for a local-only target."""
    remote = store.config_get(f"branch.{branch}.remote")
    merge = store.config_get(f"branch.{branch}.merge")
    if not remote or not merge or remote == ".":
        return None
    return remote, merge if merge.startswith("refs/") else f"refs/heads/{merge}"


def _fetch_tip(store: Store, remote: str, ref: str) -> str | None:
    """Fetch the remote's ref into refs/remotes/<remote>/<branch>; its tip, or None."""
    short = ref.removeprefix("refs/heads/")
    tracking = f"refs/remotes/{remote}/{short}"
    if not gitcli.fetch_ref(store.common_dir, remote, ref, tracking):
        return None
    return store.head_of(tracking)


def checked_out_in(store: Store, branch: str) -> list[str]:
    """Worktrees (paths) whose HEAD is `branch`."""
    res = gitcli.run_git(["worktree", "list", "--porcelain"], git_dir=store.common_dir,
                         check=False)
    paths: list[str] = []
    current = None
    for line in res.out.splitlines():
        if line.startswith("worktree "):
            current = line[len("worktree "):]
        elif line == f"branch refs/heads/{branch}" and current:
            paths.append(current)
    return paths


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


def _push(store: Store, remote: str, commit: str, ref: str) -> tuple[bool, str]:
    """Push without force (the remote half of the compare-and-swap); on failure, why, in
    the remote's own words where it gave some (a hook's message, `[rejected]`)."""
    res = gitcli.run_git(
        ["push", "--porcelain", "--no-verify", remote, f"{commit}:{ref}"],
        git_dir=store.common_dir, check=False,
    )
    if res.code == 0:
        return True, ""
    reasons = [ln.split("\t")[-1] for ln in res.out.splitlines() if ln.startswith("!")]
    said = [ln[len("remote:"):].strip() for ln in res.err.splitlines()
            if ln.startswith("remote:") and ln[len("remote:"):].strip()]
    text = "; ".join(reasons + said[:2]) or res.first_error
    return False, f"rejected: {text}" if reasons else f"failed: {text}"


# --- the landing loop -------------------------------------------------------------------


def land(store: Store, plan: Plan) -> Landed:
    """Merge, check, CAS the target and push; re-merge on a moved target or remote."""
    ref = f"refs/heads/{plan.target}"
    upstream = upstream_of(store, plan.target)
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
        merged = merge_in_memory(store, base, plan.source, plan.strategy, plan.message)
        if merged.kind == "conflict":
            return Landed("conflict", base=base, files=merged.files,
                          detail=f"{len(merged.files)} conflicting file(s)")
        if merged.kind == "not_ff":
            return Landed("not_ff", base=base,
                          detail=f"not a fast-forward of {plan.target} (strategy ff-only)")
        candidate = merged.commit or base
        result: CheckResult | None = None
        if merged.kind != "already" and plan.check is not None:
            tree = str(store.repo[candidate].peel(pygit2.Commit).tree_id)
            result = checked.get(tree)
            if result is None:
                result = checked[tree] = plan.check(candidate)
            if not result.passed:
                return Landed("check_failed", base=base, check=result, detail=result.detail)
        if upstream is not None and remote_tip != candidate:
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
        if local != candidate:
            clean = {p: _is_clean(p) for p in checked_out_in(store, plan.target)}
            if not store.cas_ref(ref, local, candidate, f"{plan.reflog}: land on {plan.target}"):
                continue
            faults.point("landing.after_cas")
            notes = _bring_along(store, plan.target, local, candidate, clean)
        else:
            notes = []
        outcome = "already" if merged.kind == "already" else "landed"
        return Landed(outcome, sha=candidate, base=base, check=result, notes=notes)
    return Landed("busy", detail=f"gave up for now: {plan.target} kept moving "
                  f"({last_push or 'other writers won every compare-and-swap'})")


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
