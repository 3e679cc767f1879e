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
