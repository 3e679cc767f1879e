"""The one place that sequences a step: land → feed → review gate → feed.

Each step below it returns what it did and never calls the next one: the refinery returns
what it landed, the feeder what it closed, dispatched and found waiting to land, the review
gate what it decided (a fix task to hand out, an epic that landed). This module reads those
results and runs what follows, so "what happens after a landing" is written here once, and
no step can re-enter another. The loop is bounded: each round needs something new to have
happened (an epic landed, a fix task filed), and a plan has finitely many epics.
"""

from __future__ import annotations

import contextlib
import os

from gitconvoy.flow import feeder
from gitconvoy.flow.feeder import Budget, FeedReport
from gitconvoy.git import notify
from gitconvoy.land import checks, integration, refinery, review
from gitconvoy.state.store import Store

MAX_ROUNDS = 8


def feed(store: Store, *, dispatch: bool = True, budget: Budget | None = None) -> FeedReport:
    """One feeder step, then the review gate for epics whose children are all in their
    integration branch; a landed epic or a filed fix task feeds again.

    With a hook's budget (`detach`), the gate is left to `git convoy feed`: a review runs
    check commands, which can take minutes, and a hook never holds git for that. Without
    `dispatch` (the server's lander: it has no workers) nothing is handed out, but landed
    work still closes and a ready epic still goes through the gate."""
    report = feeder.feed(store, dispatch=dispatch, budget=budget)
    if dispatch:  # the server's lander dispatches nothing, so it brings nothing up to date
        _catch_up(store, report, budget)
    _notify(store, report)
    gated: set[str] = set()
    for _ in range(MAX_ROUNDS):
        waiting = [(e, b) for e, b in report.awaiting_land if e not in gated]
        if not waiting:
            break
        if budget is not None and budget.detach:
            report.gate_deferred += [e for e, _ in waiting if review.gated(store, e)]
            break
        gated.update(e for e, _ in waiting)
        events = review.gate(store, waiting)
        report.reviews += [(e.epic, e.line) for e in events]
        if not any(e.fix_bead or e.landed for e in events):
            break
        report.absorb(feeder.feed(store, dispatch=dispatch, budget=budget))
    return report


def _catch_up(store: Store, report: FeedReport, budget: Budget | None) -> None:
    """Ready beads whose target lacks a blocker's landed work: bring each such integration
    branch up to date (a merge, checked: never in a hook, which only reports them), then
    feed again so they are dispatched from the merged code. Bounded: a branch is tried once
    per cycle."""
    if budget is not None and budget.detach:
        return
    tried: set[str] = set()
    for _ in range(MAX_ROUNDS):
        todo: dict[str, list[tuple[str, str]]] = {}
        for behind in report.behind:
            if behind.target not in tried:
                need = todo.setdefault(behind.target, [])
                need += [m for m in behind.missing if m not in need]
        if not todo:
            return
        tried.update(todo)
        report.caught_up += [integration.catch_up(store, branch, need)
                             for branch, need in sorted(todo.items())]
        report.absorb(feeder.feed(store, budget=budget))


STRANDED_FILE = "notified-stranded"  # convoys this clone has told the notifier are stranded


def _notify(store: Store, report: FeedReport) -> None:
    """One event per happening: a convoy landed (said by the process whose transaction
    closed it), a claim expired, a convoy became stranded (once until it moves again; per
    clone: only local files remember it). A notifier that cannot start is one line."""
    if notify.command(store) is None:
        return
    events: list[dict[str, object]] = [
        {"event": "convoy_landed", "convoy": c, "command": f"git convoy status {c}"}
        for c in report.closed_convoys]
    events += [{"event": "claim_expired", "bead": b, "command": f"git convoy bead show {b}"}
               for b in report.expired]
    path = os.path.join(store.common_dir, "convoy", STRANDED_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            told = set(fh.read().split())
    except OSError:
        told = set()
    now_stranded = set(report.stranded)
    events += [{"event": "convoy_stranded", "convoy": c,
                "command": f"git convoy status {c}"} for c in sorted(now_stranded - told)]
    if now_stranded != told:
        with contextlib.suppress(OSError):
            with open(f"{path}.tmp", "w", encoding="utf-8") as fh:
                fh.write("".join(f"{c}\n" for c in sorted(now_stranded)))
            os.replace(f"{path}.tmp", path)
    for event in events:
        failed = notify.send(store, event)
        if failed:
            report.notices.append(failed)
            return  # said once; the next event would fail the same way


def _feed_lines(store: Store, *, dispatch: bool = True) -> list[str]:
    return feed(store, dispatch=dispatch).lines()


def land_queue(store: Store, *, once: bool = False, only: set[str] | None = None,
               dispatch: bool = True) -> refinery.RunReport:
    """`refinery run` (and `done` with onDone, and `refinery watch`): prune check worktrees a
    killed refinery left, land the queue; after each landing, feed (dependents start from the
    new target before the next MR lands). The server's lander passes `dispatch=False`: on a
    bare remote nobody works, so the clients' feeders and `claim` hand out what became ready."""
    pruned = checks.prune_stale(store)
    report = refinery.run(store, once=once, only=only,
                          on_landed=lambda: _feed_lines(store, dispatch=dispatch))
    report.notices[:0] = pruned
    if any(s.outcome == "conflict" for s in report.steps):
        # the conflict bead goes to a worker now (on a server: the clients hand it out)
        report.fed += [ln for ln in _feed_lines(store, dispatch=dispatch)
                       if ln not in report.fed]
    return report


def repush_due(store: Store) -> refinery.RunReport | None:
    """`feed` by hand: push again the landings whose push failed and whose back-off is over
    (the lander does it too; a hook never does: a push can hold git for seconds)."""
    due = refinery.due_repushes(store, store.snapshot())
    return land_queue(store, only=set(due)) if due else None


def lands_on_done(store: Store) -> bool:
    """`convoy.refinery.onDone` (local git config only: it decides that this machine runs
    checks): `done` lands its MR at once instead of leaving it to a lander."""
    value = (store.config_get("convoy.refinery.onDone") or "").strip().lower()
    return value in ("1", "true", "yes", "on")


def retry(store: Store, mr_id: str) -> refinery.RunReport:
    """`refinery retry`: prune stale check worktrees, requeue one MR, land it, feed."""
    pruned = checks.prune_stale(store)
    report = refinery.retry(store, mr_id, on_landed=lambda: _feed_lines(store))
    report.notices[:0] = pruned
    return report


def land_epic(store: Store, epic_id: str) -> integration.LandReport:
    """`integration land`: through the review gate's guard, then feed."""
    landed = review.land_epic(store, epic_id)
    landed.fed = _feed_lines(store)
    return landed


def approve(store: Store, epic_id: str, reason: str | None, *, land: bool
            ) -> tuple[review.Decided, bool | None, str, list[str]]:
    """`review approve`: record the approval; land it unless asked not to; feed.
    (decision, landed? (None when not tried), the landing's line, feed lines)."""
    done = review.decide(store, epic_id, "approve", reason)
    if not land:
        return done, None, "", []
    landed, line = review.land_approved(store, done.review)
    return done, landed, line, _feed_lines(store) if landed else []


def reject(store: Store, epic_id: str, reason: str | None) -> tuple[review.Decided, list[str]]:
    """`review reject`: file the fix task and dispatch it."""
    done = review.decide(store, epic_id, "reject", reason)
    return done, _feed_lines(store)
