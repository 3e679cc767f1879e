"""What `ready`, `blocked` and `bead list` print, built in one place for both of their paths:
the full command (commands/beads.py) prints an `Output` through `say`/`print_json`; the
warm path (commands/quick.py, written out by gitconvoy.__main__) prints the same text, from
the answer stored for the state commit (gitconvoy.state.answers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitconvoy.plan.graph import Blocker
from gitconvoy.render.shapes import bead_json, json_text
from gitconvoy.render.text import bead_line, inert
from gitconvoy.state.model import Bead


@dataclass
class Output:
    """What a read prints: warnings (stderr), then lines for people or JSON data (stdout),
    then closing remarks (stderr)."""

    warnings: list[str]
    lines: list[str] = field(default_factory=list)
    data: Any = None
    after: list[str] = field(default_factory=list)

    def texts(self) -> tuple[str, str, str]:
        """stderr before, stdout, stderr after: exactly what `say` and `print_json` write."""
        out = json_text(self.data) + "\n" if self.data is not None else people(self.lines)
        return people(self.warnings), out, people(self.after)


def people(lines: list[str]) -> str:
    return "".join(inert(line) + "\n" for line in lines)


def warning_lines(messages: list[str]) -> list[str]:
    """Broken state files do not stop a read: each is named once on stderr."""
    return [f"warning: skipped {message}" for message in messages]


def ready_output(warnings: list[str], found: list[Bead], as_json: bool) -> Output:
    if as_json:
        return Output(warnings, data=[bead_json(b) for b in found])
    return Output(warnings, [bead_line(b) for b in found],
                  after=[] if found else ["nothing is ready"])


def blocked_output(warnings: list[str], found: list[tuple[Bead, tuple[Blocker, ...]]],
                   as_json: bool) -> Output:
    if as_json:
        return Output(warnings, data=[
            {**bead_json(b), "blocked_by": [x.to_json() for x in blockers]}
            for b, blockers in found
        ])
    lines = []
    for b, blockers in found:
        lines.append(bead_line(b))
        if b.status == "blocked":
            lines.append("    status is blocked (set by hand)")
        lines += [f"    blocked by {blocker.describe()}" for blocker in blockers]
    return Output(warnings, lines)


@dataclass(frozen=True)
class ListQuery:
    """The filters of `bead list`."""

    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    assignee: str | None = None
    labels: tuple[str, ...] = ()
    parent: str | None = None
    show_all: bool = False

    def keeps(self, b: Bead) -> bool:
        return ((self.show_all or b.status != "tombstone" or "tombstone" in self.statuses)
                and (not self.statuses or b.status in self.statuses)
                and (not self.types or b.type in self.types)
                and (self.assignee is None or b.assignee == self.assignee)
                and set(self.labels) <= set(b.labels)
                and (self.parent is None or b.parent == self.parent))


def list_output(warnings: list[str], ordered: list[Bead], query: ListQuery,
                as_json: bool) -> Output:
    chosen = [b for b in ordered if query.keeps(b)]
    if as_json:
        return Output(warnings, data=[bead_json(b) for b in chosen])
    return Output(warnings, [bead_line(b) for b in chosen])


def blocker_rows(found: list[tuple[Bead, tuple[Blocker, ...]]]) -> list[Any]:
    """The blockers of each blocked bead as plain rows, for the stored answer."""
    return [[[x.on, x.type, x.status, x.via] for x in blockers] for _, blockers in found]


def blockers_of(extra: Any) -> tuple[Blocker, ...]:
    """The blockers of a stored row, checked (ValueError when the row is not that)."""
    if type(extra) is not list:
        raise ValueError("expected a list of blockers")
    out = []
    for item in extra:
        if type(item) is not list or len(item) != 4 or type(item[0]) is not str \
                or type(item[1]) is not str \
                or not all(v is None or type(v) is str for v in item[2:]):
            raise ValueError("expected [on, type, status, via]")
        out.append(Blocker(*item))
    return tuple(out)
