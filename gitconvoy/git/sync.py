"""`git convoy sync`: share one state ref through an ordinary git remote.

fetch (git CLI) → three-way field merge in memory (or a fast-forward) → compare-and-swap of
the local ref → push without force. A rejected push means someone else pushed first: fetch
and merge again, a bounded number of times. Nothing is pushed when nothing changed.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import pygit2

from gitconvoy import __version__, faults, progress
from gitconvoy.errors import ConvoyError, LostRace, NewerSchema, SchemaError
from gitconvoy.git import gitcli, revs
from gitconvoy.state import codec, merge, shape
from gitconvoy.state.model import IN_FLIGHT
from gitconvoy.state.snapshot import parse_config
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
    skipped: list[str] = field(default_factory=list)  # remote commits merged around

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
        if self.skipped:
            shas = ", ".join(c[:10] for c in self.skipped)
            text = (f"skipped {self.remote}'s state commit {shas} and merged the rest into "
                    f"{sha}")
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


class RefusedCommit(ConvoyError):
    """A remote's state commit that breaks the layout or a cap: nothing of it is merged."""

    def __init__(self, remote: str, commit: str, problem: str, skip: Collection[str]) -> None:
        hint = " ".join(f"--skip {c[:10]}" for c in [*skip, commit])
        super().__init__(
            f"refused {remote}'s state commit {commit[:10]}: {problem}; nothing was merged and "
            f"the local state is unchanged: repair it on {remote}, or run 'git convoy sync "
            f"{hint}' to merge around it (docs/sync.md)"
        )
        self.commit = commit


def limits(store: Store) -> shape.Limits:
    """The state caps, raised or lowered for this clone by git config."""
    found: dict[str, int] = {}
    for key, name in (("convoy.maxStateFiles", "files"), ("convoy.maxStateBytes", "bytes")):
        raw = store.config_get(key)
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise ConvoyError(f"git config {key} is {raw!r}: use a positive whole number")
        found[name] = value
    return shape.Limits(**found)


def check_remote_commit(store: Store, commit: str, remote: str,
                        skip: Collection[str] = ()) -> None:
    """Refuse a fetched state commit whose tree breaks the layout or a cap (RefusedCommit,
    one line naming the commit and the path). The last tree that passed is remembered in
    .git/convoy/checked, so the next check only opens what changed since."""
    record = os.path.join(store.common_dir, "convoy", "checked")
    tree = store.repo[commit].peel(pygit2.Tree)
    try:
        checked = shape.check_tree(store.repo, tree, limits(store), shape.read_checked(record))
    except shape.BadShape as exc:
        raise RefusedCommit(remote, commit, str(exc), skip) from None
    shape.write_checked(record, checked)


def refuse_newer_schema(store: Store, commits: list[str], remote: str) -> None:
    """A three-way merge rewrites files: this gitconvoy must understand both sides' schema."""
    for commit in commits:
        got = parse_config(store.repo, store.repo[commit].peel(pygit2.Tree))
        if isinstance(got, NewerSchema):
            hint = got.upgrade_hint(__version__)
            raise ConvoyError(f"cannot merge {remote}'s state: commit {commit[:10]}'s {hint} "
                              "to merge it; the local state is unchanged")


def usable_commit(store: Store, tip: str, remote: str,
                  skip: Collection[str]) -> tuple[str | None, list[str]]:
    """The commit whose tree a merge may take: `tip`, or with --skip its nearest first-parent
    ancestor that was not skipped; checked (RefusedCommit). Also the commits skipped."""
    current: str | None = tip
    skipped: list[str] = []
    while current is not None and current in skip:
        skipped.append(current)
        current = revs.first_parent(store, current)
    if current is not None:
        check_remote_commit(store, current, remote, skipped)
    return current, skipped


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


def _claim_of(raw: bytes | None) -> tuple[object, object, object] | None:
    """A bead file's claim, if it is in flight: (clone, attempt stamp, claim stamp)."""
    if raw is None:
        return None
    try:
        data = codec.load_yaml(raw, "")
    except SchemaError:
        return None
    if not isinstance(data, dict) or data.get("status") not in IN_FLIGHT:
        return None
    dispatch = data.get("dispatch") if isinstance(data.get("dispatch"), dict) else {}
    if not dispatch.get("by"):  # in flight by hand (`bead update --status`): no claim
        return None
    return dispatch.get("by"), dispatch.get("last_attempt"), dispatch.get("claimed_at")


def remote_claims_win(resolve: Resolve) -> Resolve:
    """Merging a remote's state into ours: when our side made a claim of a bead (a dispatch
    or `claim`: in flight, `dispatch.by` set, not the base's claim) and the remote's side holds
    the bead under another claim, the remote's version is kept whole. It is the one on the
    shared queue (its claimer confirmed it, or will, by fetching); ours was made here and is
    not confirmed — another process of this clone merging and pushing must not publish it as
    won (the field merge's later-`updated_at` rule let it displace the earlier winner, and
    two workers did the bead). Its claimer's confirmation then sees the remote's claim and
    concedes (gitconvoy.flow.publish)."""

    def wrapped(path: str, base: bytes | None, ours: bytes | None,
                theirs: bytes | None) -> dict[str, bytes | None]:
        if path.startswith("beads/") and ours is not None and theirs is not None:
            mine, kept = _claim_of(ours), _claim_of(theirs)
            if mine is not None and kept is not None and mine != kept \
                    and mine != _claim_of(base):
                return {path: theirs}
        return resolve(path, base, ours, theirs)

    return wrapped


def merge_into_local(store: Store, local: str, remote_commit: str, remote: str,
                     report: SyncReport, skip: Collection[str] = ()) -> str | None:
    """Bring the fetched commit into the local ref; the new local commit (None: lost race).
    A commit that breaks the state's shape is refused (RefusedCommit) unless skipped."""
    if revs.is_ancestor(store, remote_commit, local):
        return local
    take, skipped = usable_commit(store, remote_commit, remote, skip)
    if skipped:
        return merge_skipping(store, local, remote_commit, take, remote, report, skipped)
    if revs.is_ancestor(store, local, remote_commit):
        if store.cas_ref(store.ref, local, remote_commit, f"sync: fast-forward to {remote}"):
            report.action = "fast-forward"
            return remote_commit
        return None
    refuse_newer_schema(store, [local, remote_commit], remote)
    notes: list[str] = []
    counter = [0]
    base = revs.merge_base(store, local, remote_commit)
    tree = store.merge_state_trees(base, local, remote_commit,
                                   remote_claims_win(resolver(notes, counter)))
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


def merge_skipping(store: Store, local: str | None, tip: str, take: str | None, remote: str,
                   report: SyncReport, skipped: list[str]) -> str | None:
    """Merge the remote's history without the changes of the skipped commits: a commit whose
    parents are the local state and the remote's tip (so the push is a fast-forward and every
    other clone merges the repair), and whose tree merges the local state with `take`, the
    newest commit before the skipped ones."""
    repo = store.repo
    local_tree = str(repo[local].peel(pygit2.Tree).id) if local else None
    if take is None:
        tree = local_tree
    elif local is None or revs.is_ancestor(store, local, take):
        tree = str(repo[take].peel(pygit2.Tree).id)
    elif revs.is_ancestor(store, take, local):
        tree = local_tree
    else:
        refuse_newer_schema(store, [local, take], remote)
        counter = [0]
        tree = store.merge_state_trees(revs.merge_base(store, local, take), local, take,
                                       remote_claims_win(resolver(report.notes, counter)))
        report.merged_files = counter[0]
    if tree is None:
        raise ConvoyError(f"nothing is left of {remote}'s state once its commit "
                          f"{skipped[-1][:10]} is skipped, and this clone has no state")
    parents = [tip] if local is None or revs.is_ancestor(store, local, tip) else [local, tip]
    shas = ", ".join(c[:10] for c in skipped)
    commit = store.write_merge_commit(
        tree, parents, f"sync: merge {remote}'s state, skipping {shas}\n\nThe skipped "
        "commit(s) broke the state's shape (docs/state.md); their changes are left out.")
    if not store.cas_ref(store.ref, local, commit, f"sync: merge {remote}, skipping {shas}"):
        return None
    report.action, report.skipped = "merged", skipped
    return commit


def sync(store: Store, remote: str | None = None, *, rounds: int = MAX_ROUNDS,
         skip: Collection[str] = ()) -> SyncReport:
    """One full round trip with the remote; raises LostRace when it never settles."""
    remote = remote or revs.default_remote(store)
    check_remote(store, remote)
    git_dir = store.common_dir
    into = private_ref(remote)
    report = SyncReport(remote, "up-to-date", store.state_commit())
    local_races = 0
    for attempt in range(1, rounds + 1):
        report.rounds = attempt
        progress.note(f"fetching {store.ref} from {remote}" +
                      (f" (round {attempt})" if attempt > 1 else ""))
        found = gitcli.fetch_ref(git_dir, remote, store.ref, into, QUIET_HOOKS)
        remote_commit = store.head_of(into) if found else None
        local = store.state_commit()
        if local is None:
            if remote_commit is None:
                raise ConvoyError(
                    f"no state here nor on {remote}: run 'git convoy init' first"
                )
            take, skipped = usable_commit(store, remote_commit, remote, skip)
            if skipped:
                report.commit = merge_skipping(store, None, remote_commit, take, remote, report,
                                               skipped)
                if report.commit is None:
                    continue
                local = report.commit
            elif store.cas_ref(store.ref, None, remote_commit, f"sync: take {remote}'s state"):
                report.action, report.commit = "adopted", remote_commit
                return report
            else:
                continue
        if remote_commit == local:
            report.commit = local
            return report
        if remote_commit is not None:
            progress.note(f"merging {remote}'s state")
            merged = merge_into_local(store, local, remote_commit, remote, report, skip)
            if merged is None:
                local_races += 1
                continue  # a local writer moved the ref meanwhile: start over
            local = merged
        report.commit = local
        if local == remote_commit:
            return report
        progress.note(f"pushing to {remote}")
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
    this clone has none yet. A lost race is left to the next hook; a refused commit is one
    warning line, and the feed goes on with the local state."""
    try:
        return _absorb(store, attempts)
    except RefusedCommit as exc:
        return [f"warning: {exc.message}"]


def _absorb(store: Store, attempts: int) -> list[str]:
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
        report.commit = merge_into_local(store, local, fetched, remote, report)
        if report.commit is not None:
            return [report.summary()]
    return []


def adopt_remote_state(store: Store, remote: str | None = None) -> str | None:
    """A clone without a local state ref takes the remote's (as fetched by git clone).
    Called where a write belongs: a command's edge (commands.io), a hook, `init`, `sync`."""
    if store.state_commit() is not None:
        return store.state_commit()
    remote = remote or revs.default_remote(store)
    found = store.head_of(revs.remote_tracking_ref(store, remote))
    if found is None:
        return None
    check_remote_commit(store, found, remote)
    if not store.cas_ref(store.ref, None, found, "adopt the remote's state"):
        return store.state_commit()
    return found
