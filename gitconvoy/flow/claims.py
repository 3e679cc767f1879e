"""Pull-based claims: a worker on any clone takes the next ready bead (docs/claims.md).

A claim is the dispatch claim (`dispatch._claim`, one state transaction) plus who holds it
and when it last showed life (`dispatch.claimed_at`, `dispatch.heartbeat`). With a remote the
claim only counts once it is on the remote: the local claim commit is pushed without force;
when the push loses, the remote is fetched and, if its state shows the bead taken (or the rig
full), the claim is conceded — the local ref is reset, or the bead takes the remote's version
byte for byte — so the next merge carries no trace of it, and the next bead is tried.
The merge never has to pick between two claims: a losing claim is never pushed
(gitconvoy.flow.publish, which the feeder's dispatch uses too).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from gitconvoy.errors import ConvoyError, LostRace
from gitconvoy.flow.dispatch import (
    _candidate_targets,
    _claim,
    _ensure_branch,
    backoff_due,
    behind_on,
    branch_name,
    branch_tip,
    integration_branches,
    rollback,
    worker_formula,
)
from gitconvoy.flow.publish import concede, publish, shared_remote
from gitconvoy.git.sync import check_remote, sync
from gitconvoy.plan import graph
from gitconvoy.plan.edits import with_status
from gitconvoy.plan.targets import rig_for
from gitconvoy.state.model import IN_FLIGHT, Bead, Convoy, now, touched
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

DEFAULT_TTL = 3600
CLAIM_ROUNDS = 12  # beads tried (each lost push costs one) before giving up with exit 3


@dataclass
class Claimed:
    bead: Bead
    clone: str
    remote: str | None
    rounds: int
    ttl: int

    def to_json(self) -> dict[str, Any]:
        b = self.bead
        return {
            "bead": b.id, "title": b.title, "type": b.type, "priority": b.priority,
            "description": b.description, "acceptance": b.acceptance, "rig": b.rig,
            "branch": b.branch, "target": b.target, "base_commit": b.base_commit,
            "assignee": b.assignee, "clone": self.clone,
            "claimed_at": b.dispatch.get("claimed_at"),
            "heartbeat": b.dispatch.get("heartbeat"), "ttl": self.ttl,
            "remote": self.remote, "rounds": self.rounds, "formula": b.formula,
            "formula_vars": dict(b.formula_vars),
        }

    def line(self) -> str:
        b = self.bead
        return (f"claimed {b.id} on branch {b.branch} (rig {b.rig}, target {b.target}); "
                f"run 'git convoy heartbeat {b.id}' within {self.ttl}s")


# --- settings -----------------------------------------------------------------------------


def claim_ttl(store: Store) -> int:
    """Seconds a claim lives without a heartbeat (`convoy.claimTTL`, default one hour)."""
    raw = store.config_get("convoy.claimTTL")
    if raw is None:
        return DEFAULT_TTL
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConvoyError(f"convoy.claimTTL is {raw!r}: expected a whole number of seconds")
    return value


# --- picking (pure) -------------------------------------------------------------------------


def check_rig(snap: Snapshot, rig_name: str | None) -> None:
    if rig_name is None:
        return
    rig = snap.config.rigs.get(rig_name)
    if rig is None:
        known = ", ".join(sorted(snap.config.rigs)) or "none"
        raise ConvoyError(f"unknown rig '{rig_name}' (rigs: {known})")
    if rig.parked:
        raise ConvoyError(f"rig {rig_name} is parked: 'git convoy rig unpark {rig_name}' first")


def candidates(snap: Snapshot, rig_name: str | None, at: str) -> list[tuple[Bead, Convoy | None]]:
    """Ready beads a worker may claim, best first: beads of open convoys before loose ones,
    then priority, age and id (the `ready` order). Beads waiting out a dispatch back-off and
    beads of parked rigs are left out; with a rig, only beads that rig would run."""
    open_convoys = sorted((c for c in snap.convoys.values() if c.status == "open"),
                          key=lambda c: c.id)
    convoy_of: dict[str, Convoy] = {}
    for convoy in open_convoys:
        for bead_id in convoy.tracks:
            convoy_of.setdefault(bead_id, convoy)
    out = []
    for bead in graph.ready_beads(snap.beads):
        if not backoff_due(bead, at):
            continue
        convoy = convoy_of.get(bead.id)
        rig = rig_for(snap.config, bead, convoy)
        if rig is None or rig.parked or (rig_name and rig.name != rig_name):
            continue
        out.append((bead, convoy))
    out.sort(key=lambda pair: (pair[1] is None, graph.sort_key(pair[0])))
    return out


def _stamp_claim(bead: Bead, worker: str, stamp: str) -> Bead:
    dispatch = {**bead.dispatch, "claimed_at": stamp, "heartbeat": stamp}
    return touched(bead, assignee=worker, dispatch=dispatch)


# --- the local claim ------------------------------------------------------------------------


def _claim_locally(store: Store, worker: str, rig_name: str | None,
                   skip: set[str]) -> tuple[Bead, str] | None:
    """One transaction: the first candidate that `_claim` accepts; (bead, commit) or None."""
    snap = store.snapshot(fresh=True)
    check_rig(snap, rig_name)
    index = graph.Index(snap.beads)
    integrating = integration_branches(snap)
    picks = [(b, c) for b, c in candidates(snap, rig_name, now()) if b.id not in skip
             and behind_on(store, snap, b, c, index, integrating) is None]
    picks, rig_formulas = _followable(store, snap, picks)
    if not picks:
        return None
    branches = {b.id: branch_name(store, b) for b, _ in picks}
    tips: dict[str, str | None] = {}
    for bead, convoy in picks:
        for target in _candidate_targets(snap, bead, convoy):
            if target not in tips:
                tips[target] = branch_tip(store, target)
    clone = store.clone_id()
    order = [(b.id, c) for b, c in picks]

    def mutate(tx: Tx) -> Bead | None:
        stamp = now()
        for bead_id, convoy in order:
            got = _claim(tx, bead_id, convoy, rig_name, branches, tips, clone, rig_formulas)
            if isinstance(got, Bead):
                claimed = _stamp_claim(got, worker, stamp)
                tx.put(claimed)
                return claimed
        return None

    claimed = store.transact(mutate, lambda b: f"claim {b.id if b else ''} for {worker}")
    if claimed is None:
        return None
    return claimed, store.state_commit() or ""


def _followable(store: Store, snap: Snapshot, picks: list[tuple[Bead, Convoy | None]],
                ) -> tuple[list[tuple[Bead, Convoy | None]], dict[str, str]]:
    """The picks whose formula (their own or their rig's default) can be followed here, and
    the rigs' default formulas for beads that have none of their own."""
    seen: dict[tuple[Any, ...], str | None] = {}
    kept, defaults = [], {}
    for bead, convoy in picks:
        rig = rig_for(snap.config, bead, convoy)
        name, problem = worker_formula(store, bead, rig, seen)
        if problem is not None:
            continue
        if name and rig is not None and not bead.formula:
            defaults[rig.name] = name
        kept.append((bead, convoy))
    return kept, defaults


def claim(store: Store, worker: str, rig_name: str | None = None) -> Claimed | None:
    """Claim the next ready bead; None when nothing is ready. LostRace: the remote never
    settled within the bounded rounds (nothing is left claimed by us)."""
    remote = shared_remote(store)
    ttl = claim_ttl(store)
    if remote is not None:
        check_remote(store, remote)
        sync(store, remote)
    check_rig(store.snapshot(fresh=True), rig_name)
    skip: set[str] = set()
    for rounds in range(1, CLAIM_ROUNDS + 1):
        got = _claim_locally(store, worker, rig_name, skip)
        if got is None:
            return None
        mine, commit = got
        if remote is not None:
            lost = publish(store, remote, mine)
            if lost is not None:
                concede(store, mine, commit, remote)
                sync(store, remote)
                continue
        try:
            _ensure_branch(store, mine.branch or "", mine.base_commit or "")
        except ConvoyError as exc:
            rollback(store, mine.id, exc.message)
            if remote is not None:
                sync(store, remote)
            skip.add(mine.id)
            continue
        return Claimed(mine, store.clone_id(), remote, rounds, ttl)
    raise LostRace(
        f"claim gave up after {CLAIM_ROUNDS} rounds: other workers kept winning or the "
        "remote kept moving; nothing is claimed by you, run 'git convoy claim' again"
    )


# --- heartbeat ------------------------------------------------------------------------------


def heartbeat(store: Store, bead_id: str) -> Bead:
    """Refresh a claim's heartbeat (after a sync, so an expiry elsewhere is seen first)."""
    remote = shared_remote(store)
    if remote is not None:
        check_remote(store, remote)
        sync(store, remote)
    clone = store.clone_id()

    def mutate(tx: Tx) -> Bead:
        bead = tx.bead(bead_id)
        if bead.status not in IN_FLIGHT or "claimed_at" not in bead.dispatch:
            raise ConvoyError(f"bead {bead_id} is {bead.status} and holds no claim "
                              "(it may have expired): claim work with 'git convoy claim'")
        if bead.dispatch.get("by") != clone:
            raise ConvoyError(f"bead {bead_id} is claimed from another clone "
                              f"({bead.dispatch.get('by')}, {bead.assignee}), not this one")
        beat = touched(bead, dispatch={**bead.dispatch, "heartbeat": now()})
        tx.put(beat)
        return beat

    beat = store.transact(mutate, f"heartbeat {bead_id}")
    if remote is not None:
        sync(store, remote)
    return beat


# --- expiry (run by the feeder) -----------------------------------------------------------


def _parse(stamp: str) -> _dt.datetime | None:
    try:
        parsed = _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.UTC)


def _work_since(store: Store, bead: Bead, since: _dt.datetime) -> bool:
    """The work branch has a commit of its own made after `since`: the worker is alive."""
    tip = branch_tip(store, bead.branch) if bead.branch else None
    if tip is None or tip == bead.base_commit:
        return False
    committed = _dt.datetime.fromtimestamp(store.repo[tip].commit_time, _dt.UTC)
    return committed > since


def expired_claims(store: Store, beads: dict[str, Bead]) -> dict[str, tuple[str, str]]:
    """{bead: (heartbeat, reason)} for in-flight claims whose heartbeat is older than the TTL
    and whose branch shows no commit since it. Only claims (a `heartbeat` field) expire."""
    ttl = claim_ttl(store)
    current = _parse(now())
    if current is None:
        return {}
    cutoff = current - _dt.timedelta(seconds=ttl)
    out: dict[str, tuple[str, str]] = {}
    for bead in beads.values():
        beat = bead.dispatch.get("heartbeat") if bead.status in IN_FLIGHT else None
        when = _parse(str(beat)) if beat else None
        if when is None or when >= cutoff or _work_since(store, bead, when):
            continue
        out[bead.id] = (str(beat), f"claim by {bead.assignee or '?'} expired: no heartbeat "
                        f"since {beat} (TTL {ttl}s); handed out again")
    return out


def reopen_expired(tx: Tx, expired: dict[str, tuple[str, str]]) -> list[str]:
    """Inside the feeder's transaction: expired claims go back to open, the reason kept.
    A claim whose heartbeat moved since it was judged (a retried transaction) stays."""
    done = []
    for bead_id, (seen, reason) in sorted(expired.items()):
        bead = tx.beads.get(bead_id)
        if bead is None or bead.status not in IN_FLIGHT:
            continue
        if str(bead.dispatch.get("heartbeat")) != seen:
            continue
        dispatch = {k: v for k, v in bead.dispatch.items()
                    if k not in ("claimed_at", "heartbeat")}
        dispatch["last_error"] = reason
        dispatch["expired"] = int(dispatch.get("expired", 0)) + 1
        tx.put(touched(with_status(bead, "open"), dispatch=dispatch, branch=None,
                       base_commit=None, assignee=None))
        done.append(bead_id)
    return done
