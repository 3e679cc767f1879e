"""`python -m gitconvoy …` and the `git-convoy` entry point: the same CLI as `git convoy …`.

The hook shims call it with the interpreter recorded at install time, which skips git's PATH
search and any version-manager shim in front of `git-convoy` (tens of milliseconds a hook).
`hook` itself skips click: its cost is paid on the user's git command.

`ready`, `blocked` and `bead list` first try the warm path (gitconvoy.commands.quick): the
answer stored for the state commit, printed without importing click, pygit2 or YAML (about
a hundred milliseconds of imports). With no cache at all, `ready` then tries the cold path
(gitconvoy.commands.coldread): every state file read without click or pygit2, and the
caches written once the answer is out. Anything they cannot answer exactly goes to the
click CLI, which also stores the answer for the next time.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

WARM_COMMANDS = (["ready"], ["blocked"], ["bead", "list"])
QUICK_WRITES = (["bead", "create"],)


def _utf8_streams() -> bool:
    """True when stdout and stderr are UTF-8 text streams: click.echo writes to them as they
    are (it re-wraps ASCII ones), and no printed text can fail to encode."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        try:
            if not encoding or codecs.lookup(encoding).name != "utf-8":
                return False
        except LookupError:
            return False
    return True


def _warm(argv: list[str]) -> int | None:
    """Print a warm read's answer (or a quick create's, gitconvoy.commands.quickcreate) and
    return its exit code, or None for the full CLI."""
    quick_write = any(argv[:len(words)] == words for words in QUICK_WRITES)
    if not (quick_write or any(argv[:len(words)] == words for words in WARM_COMMANDS)) \
            or os.name != "posix" or not _utf8_streams():
        return None
    keep = None
    try:
        from gitconvoy.commands import colour

        argv = colour.take_flags(argv)
        if quick_write:
            from gitconvoy.commands.quickcreate import answer
        else:
            from gitconvoy.commands.quick import answer
        texts = answer(argv)  # all text is built before anything is printed
        if texts is None and not quick_write:
            from gitconvoy.commands import coldread

            cold = coldread.answer(argv)
            if cold is not None:
                texts, keep = cold
    except Exception:  # a bug here must not cost the answer: the full CLI gives it
        if os.environ.get("CONVOY_DEBUG"):
            raise
        return None
    if texts is None:
        return None
    before, out, after = _coloured(texts)
    try:
        for stream, text in ((sys.stderr, before), (sys.stdout, out), (sys.stderr, after)):
            if text:
                stream.write(text)
                stream.flush()
    except BrokenPipeError:  # a reader that stopped early (| head): as the click CLI does
        pass
    if keep is not None:
        _keep_and_leave(keep)
    return 0


def _keep_and_leave(keep: Callable[[], None]) -> None:
    """A cold read's caches, handed to a detached child once its answer is out; then this
    process leaves without Python's teardown, which would free (and so, the pages being
    shared with that child, copy) every object of the load: 20-50 ms at 10,000 beads.
    Everything printed was flushed. A cache that cannot be written only costs the next
    read its speed, never this one its exit code."""
    try:
        keep()
    except Exception:
        if os.environ.get("CONVOY_DEBUG"):
            raise
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


def _coloured(texts: tuple[str, str, str]) -> tuple[str, str, str]:
    """The warm answer coloured as the full CLI would colour it (on a terminal, by default)."""
    from gitconvoy.commands import colour

    out_on, err_on = colour.enabled(), colour.enabled(err=True)
    if not (out_on or err_on):
        return texts
    from gitconvoy.render.paint import paint

    def painted(text: str, on: bool) -> str:
        return "".join(paint(line) for line in text.splitlines(keepends=True)) if on else text

    before, out, after = texts
    return painted(before, err_on), painted(out, out_on), painted(after, err_on)


def main() -> None:
    code = _warm(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from gitconvoy.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    if sys.argv[1:2] == ["hook"] and len(sys.argv) > 2:
        from gitconvoy.hookrun import main_hook

        sys.exit(main_hook(sys.argv[2], sys.argv[3:]))
    main()
