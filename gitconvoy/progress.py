"""What long work is doing now, for a person watching a terminal.

Any layer says `progress.note("landing mr-x", 3, 12)`; nothing listens unless the command
layer installed a sink (commands/activity.py: a bar on a terminal's stderr, shown only after
about a second). Without one a note costs a global lookup, so pure code and hooks pay
nothing."""

from __future__ import annotations

from collections.abc import Callable

Sink = Callable[[str, int | None, int | None], None]

_sink: Sink | None = None


def note(what: str, done: int | None = None, total: int | None = None) -> None:
    """Say what is happening (`done` of `total` when it is counted)."""
    if _sink is not None:
        _sink(what, done, total)


def listen(sink: Sink | None) -> None:
    """Install (or, with None, remove) the one sink."""
    global _sink
    _sink = sink
