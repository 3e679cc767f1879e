"""`git convoy sync`: share one state ref through an ordinary git remote.

fetch (git CLI) → three-way field merge in memory (or a fast-forward) → compare-and-swap of
the local ref → push without force. A rejected push means someone else pushed first: fetch
and merge again, a bounded number of times. Nothing is pushed when nothing changed.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitconvoy import faults
from gitconvoy.errors import ConvoyError, LostRace
from gitconvoy.git import gitcli, revs
from gitconvoy.state import merge
from gitconvoy.state.store import Store

MAX_ROUNDS = 25
# Our fetch and push move watched refs (the remote-tracking copy of the state branch); the
# hook shims skip the feed under this flag, and sync runs it itself when state came in.
QUIET_HOOKS = {"CONVOY_IN_HOOK": "1"}


@dataclass
class SyncReport:
    remote: str
    action: str  # up-to-date | adopted | fast-forward | merged | pushed | published
    commit: str | None
    pushed: bool = False
    merged_files: int = 0
    rounds: int = 1
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        sha = (self.commit or "")[:10]
        text = {
            "up-to-date": f"up to date with {self.remote} ({sha})",
            "adopted": f"took {self.remote}'s state ({sha})",
            "fast-forward": f"fast-forwarded to {self.remote}'s state ({sha})",
            "merged": f"merged {self.remote}'s state ({self.merged_files} file(s) merged "
                      f"field by field) into {sha}",
            "pushed": f"pushed {sha} to {self.remote}",
            "published": f"published the state to {self.remote} ({sha})",
        }[self.action]
        if self.pushed and self.action in ("merged", "adopted", "fast-forward"):
            text += f"; pushed to {self.remote}"
        if self.rounds > 1:
            text += f" (after {self.rounds} rounds: {self.remote} kept moving)"
        return f"sync: {text}"


def private_ref(remote: str) -> str:
    """Where sync keeps the remote's state: out of refs/remotes, so `git fetch` owns those.
    A remote given as a URL becomes a valid ref name."""
    return f"refs/convoy/remote/{re.sub(r'[^A-Za-z0-9_-]+', '_', remote).strip('_') or 'remote'}"


def check_remote(store: Store, remote: str) -> None:
    is_url = any(c in remote for c in "/:") or remote.startswith(".")
    if not is_url and store.config_get(f"remote.{remote}.url") is None:
        raise ConvoyError(
            f"no remote '{remote}': add one (git remote add {remote} URL) or choose another "
            "with git config convoy.remote NAME"
        )


Resolve = Callable[[str, bytes | None, bytes | None, bytes | None], dict[str, bytes | None]]


def resolver(notes: list[str], counter: list[int]) -> Resolve:
    """The per-file callback of the tree merge: the shared field merge, never a conflict."""

    def resolve(path: str, base: bytes | None, ours: bytes | None,
                theirs: bytes | None) -> dict[str, bytes | None]:
        counter[0] += 1
        result = merge.merge_file_or_pick(path, base, ours, theirs)
        notes.extend(result.notes)
        return {path: result.data, **result.extra}

    return resolve


def merge_into_local(store: Store, local: str, remote_commit: str, remote: str,
                     report: SyncReport) -> str | None:
    """Bring the fetched commit into the local ref; the new local commit (None: lost race)."""
    if revs.is_ancestor(store, remote_commit, local):
        return local
    if revs.is_ancestor(store, local, remote_commit):
        if store.cas_ref(store.ref, local, remote_commit, f"sync: fast-forward to {remote}"):
            report.action = "fast-forward"
            return remote_commit
        return None
    notes: list[str] = []
    counter = [0]
    base = revs.merge_base(store, local, remote_commit)
    tree = store.merge_state_trees(base, local, remote_commit, resolver(notes, counter))
    message = f"sync: merge {remote}'s state"
    if notes:
        message += "\n\n" + "\n".join(f"- {n}" for n in notes)
    commit = store.write_merge_commit(tree, [local, remote_commit], message)
    if not store.cas_ref(store.ref, local, commit, f"sync: merge {remote}"):
        return None
    report.action = "merged"
    report.merged_files = counter[0]
    report.notes = notes
    return commit


def sync(store: Store, remote: str | None = None, *, rounds: int = MAX_ROUNDS) -> SyncReport:
    """One full round trip with the remote; raises LostRace when it never settles."""
    remote = remote or revs.default_remote(store)
    check_remote(store, remote)
    git_dir = store.common_dir
    into = private_ref(remote)
    report = SyncReport(remote, "up-to-date", store.state_commit())
    local_races = 0
    for attempt in range(1, rounds + 1):
        report.rounds = attempt
        found = gitcli.fetch_ref(git_dir, remote, store.ref, into, QUIET_HOOKS)
        remote_commit = store.head_of(into) if found else None
        local = store.state_commit()
        if local is None:
            if remote_commit is None:
                raise ConvoyError(
                    f"no state here nor on {remote}: run 'git convoy init' first"
                )
            if store.cas_ref(store.ref, None, remote_commit, f"sync: take {remote}'s state"):
                report.action, report.commit = "adopted", remote_commit
                return report
            continue
        if remote_commit == local:
            report.commit = local
            return report
        if remote_commit is not None:
            merged = merge_into_local(store, local, remote_commit, remote, report)
            if merged is None:
                local_races += 1
                continue  # a local writer moved the ref meanwhile: start over
            local = merged
        report.commit = local
        if local == remote_commit:
            return report
        faults.point("sync.before_push")
        outcome = gitcli.push_commit(git_dir, remote, local, store.ref, QUIET_HOOKS)
        faults.point("sync.after_push")
        if outcome.pushed:
            store.cas_ref(into, store.head_of(into), local, f"sync: pushed to {remote}")
            report.pushed = True
            if report.action == "up-to-date":
                report.action = "pushed" if remote_commit else "published"
            return report
        if not outcome.rejected:
            raise ConvoyError(f"cannot push {store.ref} to {remote}: {outcome.message}")
        time.sleep(random.uniform(0, min(0.02 * attempt, 0.2)))
    if local_races * 2 > rounds:
        raise LostRace(
            f"sync gave up after {rounds} rounds: {store.ref} kept moving here (local "
            "writers, or a stale lock file next to it); nothing was pushed, run "
            "'git convoy sync' again"
        )
    raise LostRace(
        f"sync gave up after {rounds} rounds: {remote} kept moving under other writers; "
        "the local state is kept (merged), run 'git convoy sync' again"
    )


def absorb_fetched_state(store: Store, attempts: int = 5) -> list[str]:
    """A `git fetch`/`pull` brought the remote's state branch: merge it into the local state
    ref in memory (the same field merge as `sync`, no network, no push), or adopt it when
    this clone has none yet. A lost race is left to the next hook."""
    remote = revs.default_remote(store)
    fetched = store.head_of(revs.remote_tracking_ref(store, remote))
    local = store.state_commit()
    if fetched is None or fetched == local:
        return []
    if local is None:
        adopted = adopt_remote_state(store, remote)
        return [f"took {remote}'s state ({adopted[:10]})"] if adopted else []
    for _ in range(attempts):
        local = store.state_commit()
        if local is None or revs.is_ancestor(store, fetched, local):
            return []
        report = SyncReport(remote, "up-to-date", local)
        if merge_into_local(store, local, fetched, remote, report) is not None:
            return [report.summary()]
    return []


def adopt_remote_state(store: Store, remote: str | None = None) -> str | None:
    """A clone without a local state ref takes the remote's (as fetched by git clone).
    Called where a write belongs: a command's edge (commands.io), a hook, `init`, `sync`."""
    if store.state_commit() is not None:
        return store.state_commit()
    found = store.head_of(revs.remote_tracking_ref(store, remote or revs.default_remote(store)))
    if found is None:
        return None
    if not store.cas_ref(store.ref, None, found, "adopt the remote's state"):
        return store.state_commit()
    return found
