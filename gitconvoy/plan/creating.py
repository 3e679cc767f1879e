"""`bead create` as one transaction: the beads, and the open convoys they join.

Shared by the full command (gitconvoy.commands.beads) and the quick one
(gitconvoy.commands.quickcreate), so both decide and say exactly the same. plan.convoys
is imported only for a bead that can join a convoy: it pulls in the whole staging code,
which a plain create never needs.
"""

from __future__ import annotations

from collections.abc import Callable

from gitconvoy.plan import edits
from gitconvoy.state.model import Bead
from gitconvoy.state.tx import Tx

Made = tuple[list[Bead], list[tuple[str, str]]]  # the beads, (convoy, bead) pairs joined


def mutation(specs: list[edits.BeadSpec], actor: str,
             into: str | None) -> Callable[[Tx], Made]:
    def mutate(tx: Tx) -> Made:
        made = edits.create_beads(tx, specs, actor)
        if into is None and not any(b.parent for b in made):
            return made, []  # nothing can take them in (convoys.track_grown says the same)
        from gitconvoy.plan import convoys

        return made, convoys.track_grown(tx, made, into)

    return mutate


def message(result: Made) -> str:
    made = result[0]
    if len(made) == 1:
        return f"bead create {made[0].id}: {made[0].title}"
    return f"bead create: {len(made)} beads ({made[0].id} … {made[-1].id})"


def joined_lines(joined: list[tuple[str, str]]) -> list[str]:
    """What is said on stderr about beads that joined convoys (at most 21 lines)."""
    lines = [f"{bead_id} joins convoy {convoy_id}: the next feed hands it out"
             for convoy_id, bead_id in joined[:20]]
    if len(joined) > 20:
        lines.append(f"… and {len(joined) - 20} more joined their convoys")
    return lines
