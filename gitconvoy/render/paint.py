"""Colour for people on a terminal (pure): the glyph that opens a line, `error:` and
`warning:`, and a bead's status where a listing puts it. Applied to a line that was already
made inert (commands/io.py), so nothing the state holds can bring an escape of its own; and
only whole tokens are wrapped, so the columns stay where they were.

Colours follow git's habits: green for done, red for trouble, yellow for work in flight,
dim for what waits. A title is never coloured: a bead called "closed loop" stays plain."""

from __future__ import annotations

import re

RESET = "\x1b[m"
GREEN, RED, YELLOW, CYAN, DIM, BOLD_RED = (
    "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[2m", "\x1b[1;31m")

GLYPHS = {"✓": GREEN, "✗": RED, "▶": YELLOW, "○": DIM, "·": DIM, "!": YELLOW, "→": CYAN}
STATUS = {
    "open": "",  # found, so a title after it is not searched, and left plain
    "closed": GREEN, "landed": GREEN, "merged": GREEN,
    "hooked": YELLOW, "in_progress": YELLOW, "queued": YELLOW,
    "blocked": RED, "conflict": RED, "rejected": RED, "push_failed": RED, "stranded": RED,
    "tombstone": DIM, "deferred": DIM,
}
PREFIXES = {"error:": BOLD_RED, "internal error:": BOLD_RED, "warning:": YELLOW}

_LEAD = re.compile(r"^(\s*)(\S+)")
# a status where listings put it: a column of its own (two spaces each side, or the line's
# end) or in parentheses after a title, "(open)"
_WORD = "|".join(sorted(STATUS, key=len, reverse=True))
_COLUMN = re.compile(rf"(?<=  )({_WORD})(?=  |$)")
_PAREN = re.compile(rf"\(({_WORD})\)")


def paint(line: str) -> str:
    """The line with colour codes around its opening glyph or prefix and its status (the
    first status column, else the last "(status)"); a line with neither comes back as it
    was."""
    for prefix, colour in PREFIXES.items():
        if line.startswith(prefix):
            return f"{colour}{prefix}{RESET}{line[len(prefix):]}"
    lead = _LEAD.match(line)
    if lead and lead.group(2) in GLYPHS:
        start, end = lead.span(2)
        line = f"{line[:start]}{GLYPHS[lead.group(2)]}{lead.group(2)}{RESET}{line[end:]}"
    found = _COLUMN.search(line) or _last(_PAREN, line)  # "(open)" follows the title
    if found is None or not STATUS[found.group(1)]:
        return line
    start, end = found.span(1)
    return f"{line[:start]}{STATUS[found.group(1)]}{found.group(1)}{RESET}{line[end:]}"


def _last(pattern: re.Pattern[str], line: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(line))
    return matches[-1] if matches else None


def strip(text: str) -> str:
    """Text without the codes paint adds (what a reader of the colours sees as letters)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
