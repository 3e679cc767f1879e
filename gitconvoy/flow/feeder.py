"""The feeder: one idempotent step that moves every open convoy forward.

It reconciles from the state and the refs, never from the event that woke it, so running it
twice, from two processes, or after a missed hook gives the same result:
1. landed work: a hooked/in-progress bead whose branch has commits beyond its base and whose
   tip is reachable from its target, or whose id is in a `Convoy-Bead:` trailer on a target
   commit newer than the base (a forge's squash merge) → closed "landed in <sha>";
   a branch with commits of its own moves a hooked bead to in_progress;
2. epic roll-up;
3. finished convoys close, and the "convoy landed" notice is emitted once (by the process
   whose transaction closed it);
4. ready beads of open convoys are dispatched in the order each convoy's strategy chose
   (gitconvoy.plan.strategies; `blocks`: highest priority first), within rig capacity;
5. a convoy with work left, nothing in flight and nothing dispatchable is reported stranded.

Epics whose children are all in their integration branch are reported (`awaiting_land`);
what happens to them (the review gate, landing) is gitconvoy.cycle's to sequence.

A step run by a hook gets a `Budget`: dispatch commands start detached, and no dispatch starts
once the hook's time is up (the beads left are reported in `deferred`; the hook marks a feed
due). Step 1 also hands back hooked beads whose detached dispatch command failed
(gitconvoy.flow.detached), as a failed foreground dispatch is handed back.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pygit2

from gitconvoy.flow import claims, detached, strategies
from gitconvoy.flow.dispatch import (
    Behind,
    Dispatched,
    backoff_due,
    behind_on,
    branch_tip,
    dispatch_bead,
    drop_fresh_branch,
    handed_back,
    integration_branches,
)
from gitconvoy.git import revs
from gitconvoy.plan import epics, graph
from gitconvoy.plan import strategies as plan_strategies
from gitconvoy.plan.edits import with_status
from gitconvoy.plan.targets import rig_for
from gitconvoy.state.model import (
    IN_FLIGHT,
    Bead,
    Convoy,
    in_flight,
    now,
    resolves,
    to_second,
    touched,
)
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

TRAILER_RE = re.compile(r"^Convoy-Bead:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)
TRAILER_SCAN_LIMIT = 2000
DISPATCH_GRACE = 120.0  # seconds a claim may go without its work branch before it is repaired


@dataclass(frozen=True)
class Budget:
    """How a hook bounds a feeder step: dispatch commands start detached (`detach`), and no
    dispatch starts once `deadline` (a time.monotonic() value) has passed — except the first
    `floor` of a step, so a hook on a slow machine still makes progress. The default is a
    step run by hand: foreground commands, no deadline."""

    deadline: float | None = None
    detach: bool = False
    floor: int = 0

    def spent(self, done: int) -> bool:
        """Out of time after `done` dispatches?"""
        return (self.deadline is not None and done >= self.floor
                and time.monotonic() >= self.deadline)


@dataclass(frozen=True)
class Waiting:
    """An open convoy that cannot move until a failed dispatch's back-off is over: its ready
    beads, each (id, next_try, last_error), the first to be retried first."""

    convoy: str
    beads: tuple[tuple[str, str, str], ...]

    @property
    def next_try(self) -> str:
        return self.beads[0][1]

    def line(self) -> str:
        first, when, error = self.beads[0]
        more = f"; {len(self.beads) - 1} more backing off" if len(self.beads) > 1 else ""
        return (f"convoy {self.convoy} is waiting for retry at {to_second(when)} "
                f"({first}: {error}{more})")


@dataclass
class FeedReport:
    landed: list[tuple[str, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    epics: list[tuple[str, str]] = field(default_factory=list)
    closed_convoys: list[str] = field(default_factory=list)
    dispatched: list[Dispatched] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)  # not stranded: backing off
    awaiting_land: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    reviews: list[tuple[str, str]] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    unpushed: list[tuple[str, str, str]] = field(default_factory=list)
    handed_back: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # ready, left for lack of time
    gate_deferred: list[str] = field(default_factory=list)  # epics whose review waits
    behind: list[Behind] = field(default_factory=list)  # ready, target lacks a blocker's work
    caught_up: list[str] = field(default_factory=list)  # integration.catch_up's lines
    notices: list[str] = field(default_factory=list)  # e.g. a notifier that cannot start
    # (convoy, strategy, cause): dispatched by `blocks` instead (recorded on the convoy)
    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)
    strategy_deferred: list[str] = field(default_factory=list)  # coordinators a hook skips

    def absorb(self, later: FeedReport) -> None:
        """Add what a later step of the same cycle did; what both saw is kept once."""
        for name in ("landed", "started", "epics", "closed_convoys", "dispatched",
                     "awaiting_land", "repaired", "reviews", "expired", "unpushed",
                     "handed_back", "gate_deferred", "fallbacks"):
            mine = getattr(self, name)
            mine += [x for x in getattr(later, name) if x not in mine]
        self.stranded = list(later.stranded)
        self.waiting = list(later.waiting)
        self.deferred = list(later.deferred)
        self.behind = list(later.behind)
        self.strategy_deferred = list(later.strategy_deferred)

    def fallback_lines(self) -> list[str]:
        return [f"convoy {c}: strategy {name} fell back to blocks: {cause} (recorded; fix "
                f"it, or 'git convoy launch {c} --strategy blocks')"
                for c, name, cause in self.fallbacks]

    def lines(self) -> list[str]:
        out = [f"{b}: dispatch was interrupted; back to open" for b in self.repaired]
        out += [f"{b}: claim expired (no heartbeat within convoy.claimTTL); back to open"
                for b in self.expired]
        out += [f"✗ {b}: {why} (back to open; the feeder retries it after a back-off)"
                for b, why in self.handed_back]
        out += [f"{b}: landed in {sha[:10]}" for b, sha in self.landed]
        out += [f"{b}: landed locally in {sha[:10]} (not pushed): "
                f"{ref.removeprefix('refs/remotes/')} lacks it; push the target, the bead "
                "closes when the remote has it" for b, sha, ref in self.unpushed]
        out += [f"{b}: work started" for b in self.started]
        out += [f"epic {e}: {s}" for e, s in self.epics]
        out += self.caught_up
        out += self.notices
        out += [f"{b.bead}: waits: {b.phrase()} (the next 'git convoy feed' or refinery run "
                "brings it in)" for b in self.behind]
        out += self.fallback_lines()
        out += [d.line() for d in self.dispatched]
        out += [f"convoy {c} landed: every tracked bead is closed" for c in self.closed_convoys]
        out += [f"epic {e}: its review runs commands, which a hook does not wait for: run "
                f"'git convoy feed'" for e in self.gate_deferred]
        out += [f"convoy {c}: its coordinator runs a command, which a hook does not wait "
                "for: run 'git convoy feed'" for c in self.strategy_deferred]
        gated = {e for e, _ in self.reviews} | set(self.gate_deferred)
        out += [f"epic {e}: every child is in {b}; land it with "
                f"'git convoy integration land {e}'" for e, b in self.awaiting_land
                if e not in gated]
        out += [line for _, line in self.reviews if line]
        out += [f"convoy {c} is stranded: work left, nothing in flight, nothing ready"
                for c in self.stranded]
        out += [w.line() for w in self.waiting]
        return out


def _trailer_hits(store: Store, tip: str, wanted: set[str]) -> dict[str, str]:
    """Bead id -> target commit carrying its `Convoy-Bead:` trailer (newest first, bounded)."""
    hits: dict[str, str] = {}
    walker = store.repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL)
    for count, commit in enumerate(walker):
        if count >= TRAILER_SCAN_LIMIT or len(hits) == len(wanted):
            break
        if "onvoy-" not in commit.message:
            continue
        for bead_id in TRAILER_RE.findall(commit.message):
            if bead_id in wanted and bead_id not in hits:
                hits[bead_id] = str(commit.id)
    return hits


def interrupted_dispatches(store: Store, beads: dict[str, Bead]) -> set[str]:
    """Beads this clone hooked whose work branch never appeared: the dispatching process died
    between its claim and creating the branch. After a grace period (a dispatch may be in
    flight right now) they go back to open so the feeder can hand them out again."""
    clone = store.clone_id()
    grace = float(store.config_get("convoy.dispatchGrace") or DISPATCH_GRACE)
    cutoff = (datetime.now(UTC) - timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    found = set()
    for bead in beads.values():
        if (bead.status == "hooked" and bead.branch and bead.dispatch.get("by") == clone
                and str(bead.dispatch.get("last_attempt", "")) <= cutoff
                and branch_tip(store, bead.branch) is None):
            found.add(bead.id)
    return found


@dataclass
class Observed:
    """What the refs say about work in flight."""
    landed: dict[str, str] = field(default_factory=dict)  # bead -> landing commit
    started: set[str] = field(default_factory=set)  # beads whose branch has work of its own
    # bead -> (commit, remote-tracking ref): on the local target, not yet on its remote
    unpushed: dict[str, tuple[str, str]] = field(default_factory=dict)


def _on_remote(store: Store, target: str, work: str) -> str | None:
    """None when the target's remote has `work` (or the target has no remote); else the
    remote-tracking ref that lacks it. Landed means on the target's upstream: a landing
    that only this clone has is not one its dependents may start from elsewhere."""
    tracking = revs.upstream_tracking(store, target)
    if tracking is None:
        return None
    tip = store.head_of(tracking)
    if tip is not None and revs.is_ancestor(store, work, tip):
        return None
    return tracking


def observe_work(store: Store, beads: dict[str, Bead]) -> Observed:
    """From the refs: landed work, started work, and landings not yet on the remote."""
    seen = Observed()
    landed, started = seen.landed, seen.started
    by_target: dict[str, list[Bead]] = {}
    for bead in beads.values():
        if bead.status in IN_FLIGHT and bead.target and bead.base_commit:
            by_target.setdefault(bead.target, []).append(bead)
    for target, group in by_target.items():
        tip = branch_tip(store, target)
        if tip is None:
            continue
        trailers: dict[str, str] | None = None
        for bead in group:
            work = branch_tip(store, bead.branch) if bead.branch else None
            has_work = (
                work is not None and work != bead.base_commit
                and revs.is_ancestor(store, bead.base_commit or "", work)
            )
            if has_work:
                started.add(bead.id)
                if revs.is_ancestor(store, work or "", tip):
                    missing = _on_remote(store, target, work or "")
                    if missing is None:
                        landed[bead.id] = tip
                    else:
                        seen.unpushed[bead.id] = (tip, missing)
                    continue
            if trailers is None:
                trailers = _trailer_hits(store, tip, {b.id for b in group})
            hit = trailers.get(bead.id)
            base = bead.base_commit or ""
            if hit and hit != base and revs.is_ancestor(store, base, hit):
                missing = _on_remote(store, target, hit)
                if missing is None:
                    landed[bead.id] = hit
                else:
                    seen.unpushed[bead.id] = (hit, missing)
    return seen


def failed_dispatches(store: Store, beads: dict[str, Bead]) -> dict[str, str]:
    """Hooked beads whose detached dispatch command (this claim's) failed and whose branch has
    no work of its own yet: {bead: reason}. A bead whose worker committed is left alone."""
    found: dict[str, str] = {}
    for bead in beads.values():
        if bead.status != "hooked" or not bead.branch:
            continue
        run = detached.run_of(store, bead.id)
        problem = detached.current_problem(run, bead)
        if run and problem and run.state == "failed" and branch_tip(store, bead.branch) in (
                None, bead.base_commit):
            found[bead.id] = f"{problem}: fix it, then git convoy sling {bead.id}"
    return found


def _reconcile(tx: Tx, landed: dict[str, str], started: set[str], report: FeedReport,
               interrupted: set[str], failed: dict[str, str], index: graph.Index
               ) -> graph.Index:
    """Steps 1–3 as one pure mutation of the transaction; the graph index it rolled up
    with (`index` restated to the transaction's beads)."""
    for bead_id, reason in sorted(failed.items()):
        bead = tx.beads.get(bead_id)
        if bead is None or bead.status != "hooked" or bead_id in started:
            continue
        tx.put(handed_back(bead, reason))
        report.handed_back.append((bead_id, reason))
    for bead_id in sorted(interrupted):
        bead = tx.beads.get(bead_id)
        if bead is None or bead.status != "hooked":
            continue
        dispatch = {**bead.dispatch, "last_error": "dispatch interrupted before the work "
                    "branch was created; handed out again"}
        tx.put(touched(with_status(bead, "open"), dispatch=dispatch, branch=None,
                       base_commit=None))
        report.repaired.append(bead_id)
    for bead_id, sha in sorted(landed.items()):
        bead = tx.beads.get(bead_id)
        if bead is None or bead.status not in IN_FLIGHT:
            continue
        closed = with_status(bead, "closed", f"landed in {sha[:10]}")
        tx.put(touched(closed, dispatch={**closed.dispatch, "landed_as": sha}))
        report.landed.append((bead_id, sha))
    for bead_id in sorted(started - set(landed)):
        bead = tx.beads.get(bead_id)
        if bead is not None and bead.status == "hooked":
            tx.put(with_status(bead, "in_progress"))
            report.started.append(bead_id)
    index = _roll_up(tx, report, index)
    for convoy in sorted(tx.convoys.values(), key=lambda c: c.id):
        if convoy.status != "open":
            continue
        tracked = [tx.beads[t] for t in convoy.tracks if t in tx.beads]
        live = [b for b in tracked if b.status != "tombstone"]
        if live and all(b.status == "closed" for b in live) and \
                not _open_below(tx, [b for b in live if b.type == "epic"]):
            stamp = now()
            tx.put(touched(convoy, status="closed", closed_at=stamp, notified=True,
                           close_reason="every tracked bead is closed"))
            report.closed_convoys.append(convoy.id)
    return index


def _open_below(tx: Tx, epics: list[Bead]) -> bool:
    """A tracked epic has a live descendant still open (one the convoy never took in, e.g.
    created by an older gitconvoy): the convoy is not done."""
    if not epics:
        return False
    index = graph.Index(tx.beads)
    return any(not tx.beads[d].done for e in epics for d in index.descendants(e.id)
               if d in tx.beads)


def feed(store: Store, *, dispatch: bool = True, budget: Budget | None = None) -> FeedReport:
    """One feeder step (see the module docstring); safe to run concurrently."""
    budget = budget or Budget()
    report = FeedReport()
    snap = store.snapshot()
    if not any(c.status == "open" for c in snap.convoys.values()) and not any(
        b.status in IN_FLIGHT for b in snap.beads.values()
    ) and not snap.outside_flying:
        return report
    seen = observe_work(store, snap.beads)
    landed, started = seen.landed, seen.started
    report.unpushed = sorted((b, sha, ref) for b, (sha, ref) in seen.unpushed.items())
    interrupted = interrupted_dispatches(store, snap.beads)
    expired = claims.expired_claims(store, snap.beads)  # pull claims without a heartbeat
    failed = failed_dispatches(store, snap.beads)

    # One graph index for the whole step: each write below changes statuses, not the graph,
    # so it is restated to the beads of each write instead of built again.
    first = graph.Index(snap.beads)

    def mutate(tx: Tx) -> graph.Index:
        report.handed_back.clear()
        report.repaired.clear()
        report.landed.clear()
        report.started.clear()
        report.epics.clear()
        report.closed_convoys.clear()
        index = _reconcile(tx, landed, started, report, interrupted, failed, first)
        # after landing: a claim whose work landed is closed, not expired
        report.expired[:] = claims.reopen_expired(tx, expired)
        return index

    index = store.transact(mutate, lambda _: _feed_message(report))
    for bead_id, _ in report.handed_back:
        drop_fresh_branch(store, snap.beads[bead_id])
    if not dispatch:  # (the server's lander) what is ready, waiting to land or stranded
        _survey(store.snapshot(), report, index.restated(store.snapshot().beads))
    else:
        index = _dispatch_ready(store, report, budget, index)
        sent = [d.bead for d in report.dispatched if d.ok]
        if sent:  # only the epics above the dispatched beads can have changed
            late = FeedReport()
            store.transact(lambda tx: _roll_up(tx, late, index, below=sent),
                           lambda _: _feed_message(late))
            report.epics += [e for e in late.epics if e not in report.epics]
    return report


def _roll_up(tx: Tx, report: FeedReport, index: graph.Index,
             below: list[str] | None = None) -> graph.Index:
    """Epics move to in_progress as soon as their first task is dispatched: every epic, or
    those above the beads `below`. The index restated to the transaction's beads."""
    index = index.restated(tx.beads)
    for epic_id, status in sorted(epics.epic_changes(tx.beads, index, below).items()):
        tx.put(with_status(tx.beads[epic_id], status,
                           "all children closed" if status == "closed" else None))
        if (epic_id, status) not in report.epics:
            report.epics.append((epic_id, status))
    return index


def _feed_message(report: FeedReport) -> str:
    parts = []
    if report.handed_back:
        parts.append("failed dispatch reopened " + " ".join(b for b, _ in report.handed_back))
    if report.expired:
        parts.append("expired claims reopened " + " ".join(report.expired))
    if report.repaired:
        parts.append("interrupted dispatch reopened " + " ".join(report.repaired))
    if report.landed:
        parts.append("landed " + " ".join(b for b, _ in report.landed))
    if report.started:
        parts.append("started " + " ".join(report.started))
    if report.epics:
        parts.append("epics " + " ".join(f"{e}={s}" for e, s in report.epics))
    if report.closed_convoys:
        parts.append("convoy landed " + " ".join(report.closed_convoys))
    return "feed: " + "; ".join(parts)


def _survey(snap: Snapshot, report: FeedReport,
            index: graph.Index | None = None) -> list[tuple[Bead, str]]:
    """Step 5, and the epics whose children are all in their integration branch: what the
    open convoys have ready (bead, convoy id), in no particular order."""
    index = index or graph.Index(snap.beads)
    stamp = now()
    candidates: list[tuple[Bead, str]] = []
    for convoy in sorted(snap.convoys.values(), key=lambda c: c.id):
        if convoy.status != "open":
            continue
        members = [snap.beads[t] for t in convoy.tracks if t in snap.beads]
        ready = [b for b in members if index.is_ready(b) and backoff_due(b, stamp)]
        candidates += [(b, convoy.id) for b in ready]
        busy = any(b.status in IN_FLIGHT and b.slingable for b in members)
        unfinished = any(not b.done and b.slingable for b in members)
        landing = [
            (b.id, b.integration_branch or "") for b in members
            if b.type == "epic" and b.integration_branch and not b.done
            and all(index.beads[c].done for c in index.children.get(b.id, ()))
            and index.children.get(b.id)
        ]
        report.awaiting_land += [x for x in landing if x not in report.awaiting_land]
        if unfinished and not busy and not ready and not landing:
            _stuck(report, convoy.id, [b for b in members if index.is_ready(b)])
    return candidates


def _dispatch_ready(store: Store, report: FeedReport, budget: Budget,
                    index: graph.Index) -> graph.Index:
    """Step 4 and 5: fill each rig's free capacity from the open convoys' ready beads, in the
    order their strategies chose, until the budget's time is up (what is left goes to
    `report.deferred`). The graph index restated to the state the dispatches started from."""
    snap = store.snapshot()
    index = index.restated(snap.beads)
    flying = _in_flight_counter(store)
    candidates = _ordered(store, snap, index, _survey(snap, report, index), report, budget,
                          flying)
    integrating = integration_branches(snap)
    seen: set[str] = set()
    full: set[str] = set()
    held: dict[str, int] = {}  # per rig: ready beads left for lack of time
    for bead, convoy_id in candidates:
        if bead.id in seen:
            continue
        seen.add(bead.id)
        rig = rig_for(snap.config, bead, snap.convoys[convoy_id])
        if rig is None or rig.parked:
            continue
        borrows = resolves(bead) is not None  # the conflicting bead's slot, not a new one
        if rig.name in full and not borrows:
            continue
        behind = behind_on(store, snap, bead, snap.convoys[convoy_id], index, integrating)
        if behind is not None:
            report.behind.append(behind)
            continue
        busy = flying(rig.name) + held.get(rig.name, 0)
        if busy >= rig.capacity and not borrows:
            full.add(rig.name)
            continue
        if budget.spent(len(report.dispatched)):
            report.deferred.append(bead.id)
            held[rig.name] = held.get(rig.name, 0) + 1
            continue
        report.dispatched.append(dispatch_bead(store, bead.id, snap.convoys[convoy_id],
                                               detach=budget.detach, index=index))
    return index


Candidate = tuple[Bead, str]  # a ready bead and the convoy it is dispatched for


def _ordered(store: Store, snap: Snapshot, index: graph.Index, candidates: list[Candidate],
             report: FeedReport, budget: Budget, flying: Callable[[str], int]
             ) -> list[Candidate]:
    """The dispatch order: conflict beads first (each unblocks work that is otherwise done;
    no strategy holds them back), then each convoy's choice, merged by priority. The merge
    takes the best head of the convoys' lists, so it keeps each convoy's own order and,
    when every convoy uses `blocks`, is exactly "highest priority first" over all of them.
    Fallbacks are recorded on their convoys (once per cause) before anything starts."""
    fixes = sorted((c for c in candidates if resolves(c[0]) is not None),
                   key=lambda pair: graph.sort_key(pair[0]))
    by_convoy: dict[str, list[Bead]] = {}
    for bead, convoy_id in candidates:
        if resolves(bead) is None:
            by_convoy.setdefault(convoy_id, []).append(bead)
    outcomes: dict[str, str | None] = {}  # convoy -> its fallback cause (None: none)
    chosen: list[list[Candidate]] = []
    for convoy_id, ready in by_convoy.items():
        convoy = snap.convoys[convoy_id]
        ready.sort(key=graph.sort_key)
        turn = _turn(snap, index, convoy, ready, flying)
        if budget.detach and convoy.strategy == plan_strategies.COORDINATOR:
            if turn.capacity > 0:  # a hook does not wait for a command; with room, say so
                report.strategy_deferred.append(convoy_id)
            continue
        picked, cause = _choose(store, turn)
        if cause is not None or turn.capacity > 0:  # an answer with room to act on it
            outcomes[convoy_id] = cause
        if cause is not None:
            report.fallbacks.append((convoy_id, convoy.strategy, cause))
        by_id = {b.id: b for b in ready}
        chosen.append([(by_id[b], convoy_id) for b in picked])
    _record_fallbacks(store, snap, outcomes)
    merged = heapq.merge(*chosen, key=lambda pair: graph.sort_key(pair[0]))
    return fixes + list(merged)


def _turn(snap: Snapshot, index: graph.Index, convoy: Convoy, ready: list[Bead],
          flying: Callable[[str], int]) -> plan_strategies.Turn:
    """The convoy's offer: its ready beads and the free slots of the rigs they go to."""
    goes = {b.id: rig_for(snap.config, b, convoy) for b in ready}
    rigs = {r.name: r for r in goes.values() if r is not None and not r.parked}
    free = sum(max(0, r.capacity - flying(r.name)) for r in rigs.values())
    return plan_strategies.Turn(convoy, snap, tuple(ready), free, index,
                                {b: r.name if r else None for b, r in goes.items()})


def _choose(store: Store, turn: plan_strategies.Turn) -> tuple[list[str], str | None]:
    """What the convoy's strategy chose, or `blocks`' choice and why it fell back."""
    name = turn.convoy.strategy
    try:
        return strategies.choose(strategies.strategy_for(store, name), turn, name), None
    except plan_strategies.StrategyFailed as failed:
        return plan_strategies.Blocks().choose(turn), failed.cause


def _record_fallbacks(store: Store, snap: Snapshot, outcomes: dict[str, str | None]) -> None:
    """Write each convoy's fallback cause when it differs from the one recorded (a cause
    that stays the same is written once, however many steps fall back for it); a strategy
    that answered again clears it. No write at all when nothing changed."""
    def differs(convoy: Convoy | None, cause: str | None) -> bool:
        return convoy is not None and convoy.strategy_fallback != cause

    if not any(differs(snap.convoys.get(c), cause) for c, cause in outcomes.items()):
        return

    def mutate(tx: Tx) -> list[str]:
        changed = []
        for convoy_id, cause in sorted(outcomes.items()):
            convoy = tx.convoys.get(convoy_id)
            if convoy is None or not differs(convoy, cause):
                continue
            tx.put(touched(convoy, strategy_fallback=cause,
                           strategy_fallback_at=now() if cause else None))
            changed.append(convoy_id)
        return changed

    store.transact(mutate, lambda changed: "feed: strategy fallback " + " ".join(changed))


def _stuck(report: FeedReport, convoy_id: str, backing_off: list[Bead]) -> None:
    """A convoy that cannot move now. Its ready beads (none due, or it would move) only wait
    out a back-off: waiting, with the earliest retry. None ready at all: stranded."""
    if not backing_off:
        report.stranded.append(convoy_id)
        return
    beads = sorted(((b.id, str(b.dispatch.get("next_try", "")),
                     str(b.dispatch.get("last_error", ""))) for b in backing_off),
                   key=lambda bead: (bead[1], bead[0]))
    report.waiting.append(Waiting(convoy_id, tuple(beads)))


def _in_flight_counter(store: Store) -> Callable[[str], int]:
    """How many beads a rig holds in the current state, counted once per state commit (a
    rig that is full is asked again for each ready bead; a dispatch moves the commit)."""
    counted: dict[tuple[str | None, str], int] = {}

    def count(rig: str) -> int:
        key = (store.state_commit(), rig)
        if key not in counted:
            counted[key] = in_flight(store.snapshot().beads, rig)
        return counted[key]
    return count
