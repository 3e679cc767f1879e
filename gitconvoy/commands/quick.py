"""`ready`, `blocked` and `bead list` from the answer stored for the state commit
(gitconvoy.state.answers), without click, pygit2 or YAML: the warm read.

`answer(argv)` returns the three texts to print (stderr, stdout, stderr), or None, and None
always means "run the full CLI", which prints the same and stores the answer for the next
time. It takes only the plain forms of the three commands (their own options, spelled as
click accepts them, with valid values) and only when an answer is stored for the commit the
ref points at now; anything else (a typo, --help, a value starting with '-', a missing or
stale answer, a file that does not verify) goes to click, whose messages stay the only ones.

Without options (and `ready --limit N`) the stored text is printed as it is; `--json` and
the `bead list` filters decode the stored rows and print them through commands/readout.py,
the code the full command prints with.
"""

from __future__ import annotations

from gitconvoy.commands.argwords import COUNT, FLAG, MANY, TEXT, read_options
from gitconvoy.state import answers, reffiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# command words -> (answer name, {option spelling: (field, kind)})
COMMANDS: dict[tuple[str, ...], tuple[str, dict[str, tuple[str, str]]]] = {
    ("ready",): ("ready", {"--json": ("as_json", FLAG), "--limit": ("limit", COUNT),
                           "-n": ("limit", COUNT)}),
    ("blocked",): ("blocked", {"--json": ("as_json", FLAG)}),
    ("bead", "list"): ("beads", {
        "--json": ("as_json", FLAG), "--status": ("statuses", MANY), "-s": ("statuses", MANY),
        "--type": ("types", MANY), "-t": ("types", MANY), "--assignee": ("assignee", TEXT),
        "--label": ("labels", MANY), "-l": ("labels", MANY), "--parent": ("parent", TEXT),
        "--all": ("show_all", FLAG)}),
}
# The choices click checks for `bead list` (gitconvoy.state.model; a test keeps them equal).
STATUSES = frozenset({"open", "in_progress", "hooked", "blocked", "deferred", "closed",
                      "tombstone"})
TYPES = frozenset({"task", "bug", "feature", "chore", "epic", "decision"})


def parse(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """(answer name, options) for a plain form of a warm command, else None."""
    found = [(words, entry) for words, entry in COMMANDS.items()
             if tuple(argv[:len(words)]) == words]
    if not found:
        return None
    words, (name, spec) = found[0]
    options = read_options(argv[len(words):], spec)
    if options is None:
        return None
    if not STATUSES.issuperset(options.get("statuses", ())) or \
            not TYPES.issuperset(options.get("types", ())):
        return None
    return name, options


def _first_lines(text: str, count: int) -> str:
    """The first `count` lines (0: all), as `ready --limit` cuts its one line per bead."""
    if not count:
        return text
    pieces = text.split("\n", count)
    return "\n".join(pieces[:count]) + "\n" if len(pieces) > count else text


def _decoded(name: str, options: dict[str, Any], stored: answers.Answer) -> tuple[str, str]:
    """stdout and the closing stderr built from the stored rows, by the code the full
    command prints with."""
    from gitconvoy.commands import readout

    as_json = options.pop("as_json", False)
    if name == "ready":
        rows = stored.rows(options.pop("limit", 0))
        output = readout.ready_output([], [b for b, _ in rows], as_json)
    elif name == "blocked":
        try:
            found = [(b, readout.blockers_of(extra)) for b, extra in stored.rows()]
        except ValueError as exc:
            raise answers.Miss(str(exc)) from None
        output = readout.blocked_output([], found, as_json)
    else:
        query = readout.ListQuery(**options)
        output = readout.list_output([], [b for b, _ in stored.rows()], query, as_json)
    _, out, after = output.texts()
    return out, after


def answer(argv: list[str], start: str | None = None) -> tuple[str, str, str] | None:
    """What a warm `ready` / `blocked` / `bead list` prints on stderr, stdout, stderr; or
    None: run the full CLI."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return None  # click names the undecodable argument
    parsed = parse(list(argv))
    if parsed is None:
        return None
    name, options = parsed
    found = reffiles.state_commit(start)
    if found is None:
        return None
    place, commit = found
    stored = answers.load(place.common_dir, name, commit)
    if stored is None:
        return None
    # The stored texts are those without options; the stderr texts never depend on them
    # (`nothing is ready` shows exactly when there is no row, whatever the limit).
    if not options:
        return stored.before, stored.out, stored.after
    if list(options) == ["limit"]:
        return stored.before, _first_lines(stored.out, options["limit"]), stored.after
    try:
        out, after = _decoded(name, options, stored)
    except answers.Miss:
        return None
    return stored.before, out, after
