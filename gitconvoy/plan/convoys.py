"""Convoy lifecycle as transaction mutations.

Transitions: staged_* → open (launch), staged_* → closed (cancel), staged_* ↔ staged_*
(re-stage), open ↔ closed (adding to a closed convoy reopens it). open → staged_* is refused.
"""

from __future__ import annotations

from gitconvoy.errors import ConvoyError
from gitconvoy.plan.stage_options import grown_capstones
from gitconvoy.plan.staging import StagePlan
from gitconvoy.state import ids
from gitconvoy.state.model import DEFAULT_STRATEGY, Bead, Convoy, now, touched
from gitconvoy.state.tx import Tx


def open_overlaps(tx: Tx, bead_ids: list[str], except_id: str | None = None) -> list[str]:
    """Messages naming each open convoy that already tracks one of `bead_ids`."""
    wanted = set(bead_ids)
    out = []
    for convoy in sorted(tx.convoys.values(), key=lambda c: c.id):
        if convoy.status != "open" or convoy.id == except_id:
            continue
        shared = sorted(wanted & set(convoy.tracks))
        if shared:
            out.append(f"open convoy {convoy.id} already tracks {', '.join(shared[:5])}")
    return out


def check_beads(tx: Tx, bead_ids: list[str]) -> None:
    for bead_id in bead_ids:
        bead = tx.bead(bead_id)
        if bead.status == "tombstone":
            raise ConvoyError(f"bead '{bead_id}' was deleted")


def new_convoy(tx: Tx, title: str, tracks: list[str], actor: str, *, status: str = "open",
               rig: str | None = None, target: str | None = None,
               source: str | None = None, warnings: list[str] | None = None,
               strategy: str = DEFAULT_STRATEGY) -> Convoy:
    title = title.strip()
    if not title:
        raise ConvoyError("convoy title must not be empty")
    check_beads(tx, tracks)
    if status == "open":
        overlaps = open_overlaps(tx, tracks)
        if overlaps:
            raise ConvoyError(overlaps[0])
    convoy_id = ids.new_id("convoy", title, tx.convoys, tx.convoys.count() + 1)
    stamp = now()
    convoy = Convoy(
        id=convoy_id, title=title, status=status, tracks=sorted(set(tracks)), rig=rig,
        target=target, source=source, warnings=list(warnings or []), created_at=stamp,
        created_by=actor, updated_at=stamp, launched_at=stamp if status == "open" else None,
        strategy=strategy,
    )
    tx.put(convoy)
    return convoy


def stage(tx: Tx, plan: StagePlan, title: str | None, actor: str,
          strategy: str | None = None) -> Convoy:
    """Create the staged convoy, or re-stage the one this input produced before (keeping
    its strategy unless `strategy` names another)."""
    if plan.errors:
        raise ConvoyError(f"{plan.errors[0].code}: {plan.errors[0].message}")
    for bead in plan.edits.changed.values():  # inferred deps, the capstone: with the convoy
        tx.put(bead)
    warnings = [f"{f.code}: {f.message}" for f in plan.warnings]
    existing = tx.convoys.get(plan.convoy) if plan.convoy else None
    if existing is None:
        for convoy in sorted(tx.convoys.values(), key=lambda c: c.id):
            if not convoy.status.startswith("staged"):
                continue
            if (plan.root and convoy.source == plan.root) or (
                not plan.root and set(convoy.tracks) == set(plan.members)
            ):
                existing = convoy
                break
    if existing is not None:
        if existing.status == "open":
            raise ConvoyError(f"convoy {existing.id} is open: an open convoy cannot be staged")
        if existing.status == "closed" and not plan.convoy:
            existing = None
    if existing is not None:
        updated = touched(
            existing, status=plan.status, tracks=sorted(set(plan.members)), warnings=warnings,
            title=title or existing.title, closed_at=None, close_reason=None,
            **_strategy_changes(existing, strategy),
        )
        tx.put(updated)
        return updated
    if title is None:
        title = tx.beads[plan.root].title if plan.root else f"{len(plan.members)} beads"
    return new_convoy(tx, title, plan.members, actor, status=plan.status, source=plan.root,
                      warnings=warnings, strategy=strategy or DEFAULT_STRATEGY)


def _strategy_changes(convoy: Convoy, strategy: str | None) -> dict[str, object]:
    """A new strategy, and the old one's recorded fallback forgotten with it."""
    if strategy is None or strategy == convoy.strategy:
        return {}
    return {"strategy": strategy, "strategy_fallback": None, "strategy_fallback_at": None}


def launch(tx: Tx, convoy_id: str, force: bool, strategy: str | None = None) -> Convoy:
    """Open a staged convoy (with `strategy`, if given). An open convoy is only given its
    new `strategy`: how a running convoy changes the way it is fed."""
    convoy = tx.convoy(convoy_id)
    if convoy.status == "open" and strategy is not None:
        changes = _strategy_changes(convoy, strategy)
        if changes:
            convoy = touched(convoy, **changes)
            tx.put(convoy)
        return convoy
    if convoy.status == "open":
        raise ConvoyError(f"convoy {convoy_id} is already open")
    if convoy.status == "closed":
        raise ConvoyError(f"convoy {convoy_id} is closed: stage it again to relaunch it")
    if convoy.status == "staged_warnings" and not force:
        raise ConvoyError(
            f"convoy {convoy_id} was staged with {len(convoy.warnings)} warning(s): "
            "review them ('git convoy stage " + convoy_id + "') and launch with --force"
        )
    overlaps = open_overlaps(tx, convoy.tracks, convoy_id)
    if overlaps:
        raise ConvoyError(overlaps[0])
    opened = touched(convoy, status="open", launched_at=now(),
                     **_strategy_changes(convoy, strategy))
    tx.put(opened)
    return opened


def add(tx: Tx, convoy_id: str, bead_ids: list[str]) -> Convoy:
    convoy = tx.convoy(convoy_id)
    check_beads(tx, bead_ids)
    overlaps = open_overlaps(tx, bead_ids, convoy_id)
    if overlaps:
        raise ConvoyError(overlaps[0])
    changes: dict[str, object] = {"tracks": sorted(set(convoy.tracks) | set(bead_ids))}
    if convoy.status == "closed":
        changes.update(status="open", closed_at=None, close_reason=None, notified=False)
    updated = touched(convoy, **changes)
    tx.put(updated)
    return updated


def close(tx: Tx, convoy_id: str, force: bool, reason: str | None) -> Convoy:
    convoy = tx.convoy(convoy_id)
    if convoy.status == "closed":
        raise ConvoyError(f"convoy {convoy_id} is already closed")
    unfinished = [t for t in convoy.tracks if t in tx.beads and not tx.beads[t].done]
    if unfinished and convoy.status == "open" and not force:
        raise ConvoyError(
            f"convoy {convoy_id} still has {len(unfinished)} unfinished bead(s) "
            f"({', '.join(unfinished[:3])}): use --force to close it anyway"
        )
    why = reason or ("cancelled" if convoy.status.startswith("staged") else "closed by hand")
    closed = touched(convoy, status="closed", closed_at=now(), close_reason=why)
    tx.put(closed)
    return closed


def track_grown(tx: Tx, beads: list[Bead], into: str | None = None) -> list[tuple[str, str]]:
    """A living plan: a new bead whose ancestor an open convoy tracks joins that convoy at
    once (and every open convoy that tracks an ancestor), so the next feeder step hands it
    out and the convoy cannot close before it lands; an ancestor's capstone not yet handed
    out waits for it too (stage --validate). `into` (`bead create --convoy`) adds
    them to that convoy too. The (convoy, bead) pairs added."""
    added: list[tuple[str, str]] = []
    if into is not None:
        convoy = tx.convoy(into)
        if convoy.status == "closed":
            raise ConvoyError(f"convoy {into} is closed: 'git convoy add {into} BEAD' "
                              "reopens it")
    if not beads or (into is None and not any(b.parent for b in beads)) or \
            tx.convoys.count() == 0:
        return added  # nothing can take them in: no other object is read
    for cap in grown_capstones(tx.beads, beads, now()).values():  # stage --validate's
        tx.put(cap)
    live = [c for c in tx.convoys.values() if c.status != "closed" or c.id == into]

    def ancestors(bead_id: str) -> set[str]:
        """Walked by single lookups: a create stays flat however big the state is."""
        out: set[str] = set()
        found = tx.beads.get(bead_id)
        current = found.parent if found is not None else None
        while current and current not in out:
            out.add(current)
            parent = tx.beads.get(current)
            current = parent.parent if parent is not None else None
        return out

    lines = {b.id: ancestors(b.id) for b in beads}
    for convoy in sorted(live, key=lambda c: c.id):
        tracked = set(convoy.tracks)
        fresh = [b.id for b in beads if b.id not in tracked
                 and (convoy.id == into or lines[b.id] & tracked)]
        if fresh:
            tx.put(touched(convoy, tracks=sorted(tracked | set(fresh))))
            added += [(convoy.id, b) for b in fresh]
    return added

