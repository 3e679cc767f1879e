"""Publish-and-confirm: a claim on a bead counts only once the shared remote shows it.

Both ways of handing out work use it: `claim` (a worker pulls) and the feeder's dispatch (a
clone pushes work to a rig). The local claim commit is pushed without force; a fetch
decides. When the remote's state shows the bead taken (or the rig full there), the claim is
conceded before anything else happens — the local ref is reset, or the bead takes the
remote's version byte for byte — so the next merge carries no trace of it. The merge never
has to pick between two claims: a losing claim is never pushed, and the rig's command of a
losing clone never runs.
"""

from __future__ import annotations

from gitconvoy.errors import ConvoyError
from gitconvoy.git import gitcli, revs
from gitconvoy.git.sync import (
    QUIET_HOOKS,
    SyncReport,
    check_remote_commit,
    merge_into_local,
    private_ref,
)
from gitconvoy.plan.edits import with_status
from gitconvoy.state.model import IN_FLIGHT, Bead, in_flight, resolves, touched
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

PUSH_ROUNDS = 8  # fetch/merge/push rounds for one claim whose bead is still free
CONFIRM_KEY = "convoy.confirmDispatch"


def shared_remote(store: Store) -> str | None:
    """The remote claims go through: convoy.remote (or the state branch's remote, or origin)
    when it is configured; None works on this clone alone."""
    remote = revs.default_remote(store)
    is_url = any(c in remote for c in "/:") or remote.startswith(".")
    if is_url or store.config_get(f"remote.{remote}.url") is not None:
        return remote
    return None


def confirming_remote(store: Store) -> str | None:
    """The remote the feeder's dispatch confirms through; None without one, or when the local
    user turned it off (`convoy.confirmDispatch false`: a clone that works alone although it
    has a remote, e.g. offline)."""
    if (store.config_get(CONFIRM_KEY) or "true").strip().lower() in ("false", "no", "0", "off"):
        return None
    return shared_remote(store)


def is_our_claim(bead: Bead | None, mine: Bead) -> bool:
    """The same claim: same clone, same attempt (its `last_attempt` stamp is unique)."""
    if bead is None or bead.status not in IN_FLIGHT:
        return False
    ours, theirs = mine.dispatch, bead.dispatch
    return (theirs.get("by") == ours.get("by")
            and theirs.get("last_attempt") == ours.get("last_attempt")
            and theirs.get("claimed_at") == ours.get("claimed_at"))


def lost_on(remote_snap: Snapshot, mine: Bead) -> str | None:
    """Why the remote's state beats our claim (taken, or the rig is full there), else None."""
    theirs = remote_snap.beads.get(mine.id)
    if is_our_claim(theirs, mine):
        return None
    if theirs is None or theirs.status != "open":
        return f"{mine.id} was {_taken_how(theirs)} on the remote first"
    rig = remote_snap.config.rigs.get(mine.rig or "")
    if resolves(mine):  # a conflict bead borrows its bead's slot: capacity does not apply
        return None
    others = {k: v for k, v in remote_snap.beads.items() if k != mine.id}
    if rig is not None and in_flight(others, rig.name) >= rig.capacity:
        return f"rig {rig.name} filled up on the remote"
    return None


def _taken_how(theirs: Bead | None) -> str:
    if theirs is None or theirs.status not in IN_FLIGHT:
        return theirs.status if theirs else "taken"
    if "claimed_at" in theirs.dispatch and theirs.assignee:
        return f"claimed by {theirs.assignee}"
    by = theirs.dispatch.get("by")
    return f"dispatched by clone {by}" if by else "taken"


def publish(store: Store, remote: str, mine: Bead) -> str | None:
    """Push the claim without force; None once a fetch shows it on the remote, else why it
    lost. Only the fetch counts: a server may report a push as done although its ref update
    lost the compare-and-swap (dulwich's server does), and then the claim is not there.
    ConvoyError: the remote cannot be reached (nothing is claimed there)."""
    git_dir, into = store.common_dir, private_ref(remote)
    for attempt in range(PUSH_ROUNDS + 1):  # the last round only looks
        found = gitcli.fetch_ref(git_dir, remote, store.ref, into, QUIET_HOOKS)
        remote_commit = store.head_of(into) if found else None
        local = store.state_commit() or ""
        if remote_commit is not None:
            if revs.is_ancestor(store, local, remote_commit):  # our claim commit is there
                if remote_commit != local:
                    check_remote_commit(store, remote_commit, remote)
                # ... but another process of this clone may have merged and pushed it before
                # us, and then the remote's claim won that merge (sync.remote_claims_win)
                lost = lost_on(store.read_commit(remote_commit), mine)
                if lost:
                    return lost
                if remote_commit != local:
                    store.cas_ref(store.ref, local, remote_commit, f"claim: take {remote}'s")
                return None
            if not revs.is_ancestor(store, remote_commit, local):
                lost = lost_on(store.read_commit(remote_commit), mine)
                if lost:
                    return lost
                merged = merge_into_local(store, local, remote_commit, remote,
                                          SyncReport(remote, "up-to-date", local))
                if merged is None:
                    continue  # a local writer moved the ref: fetch and look again
                local = merged
        if attempt == PUSH_ROUNDS:
            break
        outcome = gitcli.push_commit(git_dir, remote, local, store.ref, QUIET_HOOKS)
        if not outcome.pushed and not outcome.rejected:
            raise ConvoyError(f"cannot push {store.ref} to {remote}: {outcome.message}")
    return f"{remote} kept moving while pushing the claim of {mine.id}"


def concede(store: Store, mine: Bead, claim_commit: str, remote: str) -> None:
    """Take back a claim that never reached the remote, leaving no trace to merge: reset the
    ref when nothing was written on top, else give the bead the remote's exact version."""
    parent = revs.first_parent(store, claim_commit) if claim_commit else None
    if parent and store.cas_ref(store.ref, claim_commit, parent, f"claim: concede {mine.id}"):
        return
    theirs = None
    found = store.head_of(private_ref(remote))
    if found:
        theirs = store.read_commit(found).beads.get(mine.id)

    def mutate(tx: Tx) -> None:
        if not is_our_claim(tx.beads.get(mine.id), mine):
            return
        if theirs is not None:
            tx.put(theirs)
        else:
            before = tx.bead(mine.id)
            dispatch = {k: v for k, v in before.dispatch.items()
                        if k not in ("claimed_at", "heartbeat")}
            tx.put(touched(with_status(before, "open"), dispatch=dispatch, branch=None,
                           base_commit=None, assignee=None))

    store.transact(mutate, f"claim: concede {mine.id} (lost on {remote})")
