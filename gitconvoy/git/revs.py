"""General questions about commits and remotes that are not about the state: ancestry, merge
bases, revisions, which remote the state follows. Plain reads through pygit2; nothing here
writes."""

from __future__ import annotations

import pygit2

from gitconvoy.state.store import Store


def is_ancestor(store: Store, ancestor: str, descendant: str) -> bool:
    """True when `ancestor` is reachable from `descendant` (or equal to it)."""
    if ancestor == descendant:
        return True
    return bool(store.repo.descendant_of(descendant, ancestor))


def merge_base(store: Store, one: str, two: str) -> str | None:
    found = store.repo.merge_base(one, two)
    return str(found) if found else None


def resolve_commit(store: Store, rev: str) -> str | None:
    """The commit a revision names (`convoy/state~3`, `origin/convoy/state`, a sha), or None
    when it names nothing or something that is not a commit."""
    try:
        obj = store.repo.revparse_single(rev)
        return str(obj.peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def first_parent(store: Store, commit: str) -> str | None:
    parents = store.repo[commit].parent_ids
    return str(parents[0]) if parents else None


def default_remote(store: Store) -> str:
    """convoy.remote, else the remote the state branch tracks, else origin."""
    chosen = store.config_get("convoy.remote")
    if not chosen and store.ref.startswith("refs/heads/"):
        chosen = store.config_get(f"branch.{store.ref[len('refs/heads/'):]}.remote")
    return chosen or "origin"


def remote_tracking_ref(store: Store, remote: str) -> str:
    """Where a plain `git fetch`/`git clone` keeps the remote's state branch."""
    name = store.ref[len("refs/heads/"):] if store.ref.startswith("refs/heads/") else store.ref
    return f"refs/remotes/{remote}/{name}"


def upstream_of(store: Store, branch: str) -> tuple[str, str] | None:
    """(remote, remote ref) from branch.<name>.remote/.merge; None for a local-only branch."""
    remote = store.config_get(f"branch.{branch}.remote")
    merge = store.config_get(f"branch.{branch}.merge")
    if not remote or not merge or remote == ".":
        return None
    return remote, merge if merge.startswith("refs/") else f"refs/heads/{merge}"


def upstream_tracking(store: Store, branch: str) -> str | None:
    """The remote-tracking ref that says what the remote has of a target: its upstream's,
    else `convoy.remote`'s copy of the same name; None for a target that stays local."""
    upstream = upstream_of(store, branch)
    if upstream is not None:
        remote, ref = upstream
        return f"refs/remotes/{remote}/{ref.removeprefix('refs/heads/')}"
    remote = store.config_get("convoy.remote")
    return f"refs/remotes/{remote}/{branch}" if remote else None


def tracking_ref_of(store: Store, branch: str) -> str:
    """Where this clone keeps the remote's copy of `branch`: its upstream's remote-tracking
    ref, else the default remote's copy of the same name."""
    upstream = upstream_of(store, branch)
    if upstream is not None:
        remote, ref = upstream
        return f"refs/remotes/{remote}/{ref.removeprefix('refs/heads/')}"
    return f"refs/remotes/{store.config_get('convoy.remote') or 'origin'}/{branch}"


def newest_tip(store: Store, branch: str) -> str | None:
    """A branch's newest known tip: the local branch, else its remote-tracking copy — also
    when that copy is strictly ahead (work another clone or the server's lander landed, that
    a fetch brought and the local branch has not caught up with)."""
    tip = store.head_of(f"refs/heads/{branch}")
    tracking = store.head_of(tracking_ref_of(store, branch))
    if tip is None or (tracking and tracking != tip and is_ancestor(store, tip, tracking)):
        return tracking
    return tip
