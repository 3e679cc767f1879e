"""Dispatch strategies: which of a convoy's ready beads the feeder hands out, in what order.

The feeder decides what is *ready* (blockers done, back-off over) and what *fits* (each rig's
capacity, the hook's time); a strategy only chooses among the ready beads and orders them.
That split keeps every strategy, even a third party's or an external command's, unable to
dispatch a blocked bead or overfill a rig: whatever it answers is checked against the offer
(`checked`), and an answer that does not fit makes the feeder fall back to `blocks`.

Pure: a `Turn` is plain data; running the coordinator's command is gitconvoy.flow's work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gitconvoy.plan import graph
from gitconvoy.plan.waves import plan_waves
from gitconvoy.state.model import DEFAULT_STRATEGY, IN_FLIGHT, Bead, Convoy
from gitconvoy.state.snapshot import Snapshot

BLOCKS = DEFAULT_STRATEGY
SERIAL = "serial"
COORDINATOR = "coordinator"
BUILT_IN = (BLOCKS, SERIAL, COORDINATOR)
INPUT_VERSION = 1
MAX_ANSWER = 1_000_000  # characters of a coordinator's answer read at most


class StrategyFailed(Exception):
    """A strategy could not choose (unknown, failed, or answered something invalid): the
    feeder falls back to `blocks` and records `cause`, one line."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = " ".join(cause.split())[:300]


@dataclass(frozen=True)
class Turn:
    """What a strategy chooses from: one open convoy at one feeder step.

    `ready` are the convoy's ready beads, highest priority first (`graph.sort_key`);
    `capacity` is the free slots, now, of the rigs those beads would go to (it may be 0:
    then nothing chosen is dispatched this step); `rigs` maps each ready bead to its rig.
    `snapshot` is the whole state as the step read it, for strategies that look further
    (waves, labels, in-flight work)."""

    convoy: Convoy
    snapshot: Snapshot
    ready: tuple[Bead, ...]
    capacity: int
    index: graph.Index
    rigs: dict[str, str | None] = field(default_factory=dict)

    def members(self) -> list[Bead]:
        return [self.snapshot.beads[t] for t in self.convoy.tracks if t in self.snapshot.beads]

    def in_flight(self) -> list[Bead]:
        """The convoy's work a worker holds now."""
        return [b for b in self.members() if b.slingable and b.status in IN_FLIGHT]


@runtime_checkable
class FeederStrategy(Protocol):
    """Chooses the ready beads to dispatch: ids from `turn.ready`, in dispatch order. An
    empty answer means "none now". Third parties register one under the entry-point group
    `gitconvoy.strategies` (docs/convoys.md, "Strategies")."""

    def choose(self, turn: Turn) -> Sequence[str]: ...


class Blocks:
    """The default: every ready bead, highest priority first; the rigs' capacity decides
    how many start."""

    def choose(self, turn: Turn) -> list[str]:
        return [b.id for b in turn.ready]


class Serial:
    """One bead of the convoy at a time, in wave order: nothing while one is in flight."""

    def choose(self, turn: Turn) -> list[str]:
        if turn.capacity <= 0 or not turn.ready or turn.in_flight():
            return []
        waves = plan_waves(turn.snapshot.beads, turn.convoy.tracks, turn.index)
        last = len(waves.waves) + 1  # a bead without a wave goes after every wave
        first = min(turn.ready, key=lambda b: (waves.wave_of(b.id) or last, graph.sort_key(b)))
        return [first.id]


def checked(answer: Any, turn: Turn, who: str) -> list[str]:
    """`answer` (what strategy `who` chose) as bead ids, or StrategyFailed naming the first
    thing wrong: not a list of ids, an id twice, or an id that is not a ready bead of the
    convoy (a blocked, in-flight or unknown bead must never be dispatched by a strategy)."""
    if isinstance(answer, str | bytes) or not isinstance(answer, Iterable):
        raise StrategyFailed(f"{who} answered {type(answer).__name__}, not a list of bead ids")
    chosen = list(answer)
    offered = {b.id for b in turn.ready}
    seen: set[str] = set()
    for item in chosen:
        if not isinstance(item, str):
            raise StrategyFailed(f"{who} answered {str(item)[:40]!r}, not a bead id")
        if item in seen:
            raise StrategyFailed(f"{who} named {item[:60]!r} twice")
        if item not in offered:
            why = _not_offered(item, turn)
            raise StrategyFailed(f"{who} chose {item[:60]!r}, {why}")
        seen.add(item)
    return chosen


def _not_offered(bead_id: str, turn: Turn) -> str:
    bead = turn.snapshot.beads.get(bead_id)
    if bead is None or bead_id not in turn.convoy.tracks:
        return f"which convoy {turn.convoy.id} does not track"
    return f"which is not ready ({bead.status})"


# --- the coordinator's document and answer ----------------------------------------------


def _bead_doc(bead: Bead, rig: str | None, wave: int | None) -> dict[str, Any]:
    return {"id": bead.id, "title": bead.title, "type": bead.type, "priority": bead.priority,
            "status": bead.status, "parent": bead.parent, "labels": list(bead.labels),
            "rig": rig, "wave": wave, "created_at": bead.created_at}


def coordinator_input(turn: Turn) -> dict[str, Any]:
    """The JSON document a coordinator command reads on stdin (docs/convoys.md): the
    convoy, the free capacity, its ready beads (the only ids it may answer) and what is in
    flight."""
    waves = plan_waves(turn.snapshot.beads, turn.convoy.tracks, turn.index)
    members = turn.members()
    work = [b for b in members if b.slingable and b.status != "tombstone"]
    return {
        "version": INPUT_VERSION,
        "convoy": {"id": turn.convoy.id, "title": turn.convoy.title,
                   "strategy": turn.convoy.strategy},
        "capacity": turn.capacity,
        "ready": [_bead_doc(b, turn.rigs.get(b.id), waves.wave_of(b.id))
                  for b in turn.ready],
        "in_flight": [_bead_doc(b, b.rig, waves.wave_of(b.id)) for b in turn.in_flight()],
        "progress": {"closed": sum(b.status == "closed" for b in work), "total": len(work)},
    }


def read_answer(text: str, turn: Turn) -> list[str]:
    """A coordinator's stdout, `{"dispatch": ["id", ...]}`, as checked bead ids."""
    if len(text) > MAX_ANSWER:
        raise StrategyFailed(f"the coordinator's answer is longer than {MAX_ANSWER} characters")
    try:
        doc = json.loads(text)
    except ValueError:
        shown = " ".join(text.split())[:60]
        raise StrategyFailed(f"the coordinator's answer is not JSON: {shown!r}") from None
    if not isinstance(doc, dict) or "dispatch" not in doc:
        raise StrategyFailed('the coordinator\'s answer is not {"dispatch": [bead ids]}')
    if not isinstance(doc["dispatch"], list):
        raise StrategyFailed('the coordinator\'s "dispatch" is not a list of bead ids')
    return checked(doc["dispatch"], turn, "the coordinator")
