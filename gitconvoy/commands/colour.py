"""Whether a line for people is coloured, decided the way git decides: `--color[=WHEN]` or
`--no-color` on the command line, else `NO_COLOR` (no-color.org), else git config
`color.convoy`, then `color.ui`, else auto — a terminal that is not `TERM=dumb`. Only
`--color=always` colours a pipe: config is asked on a terminal only, so a script's or an
agent's read never pays a git process for it (decision 21). JSON and documents (SVG, dot,
HTML, markdown, completion scripts) are never coloured."""

from __future__ import annotations

import os
import sys

WHENS = ("auto", "always", "never")
_GIT_WORDS = {"true": "auto", "auto": "auto", "always": "always", "false": "never",
              "never": "never"}

_flag: str | None = None
_decided: dict[bool, bool] = {}  # err? → colour?


class BadColor(ValueError):
    """`--color=sometimes`: a usage error, said in one line."""


def take_flags(argv: list[str]) -> list[str]:
    """The arguments without `--color[=WHEN]`, `--color WHEN` and `--no-color`, which any
    command accepts anywhere before `--` (they are remembered for this process)."""
    global _flag
    _flag = None  # a process that runs several commands (the tests) decides each afresh
    kept: list[str] = []
    rest = iter(range(len(argv)))
    for i in rest:
        arg = argv[i]
        if arg == "--":
            kept += argv[i:]
            break
        if arg == "--no-color":
            _flag = "never"
        elif arg == "--color" and i + 1 < len(argv) and argv[i + 1] in WHENS:
            _flag = argv[i + 1]
            next(rest, None)
        elif arg == "--color":
            _flag = "always"  # git's bare --color
        elif arg.startswith("--color="):
            when = arg.split("=", 1)[1]
            if when not in WHENS:
                raise BadColor(f"--color takes auto, always or never, not '{when}'")
            _flag = when
        else:
            kept.append(arg)
    _decided.clear()
    return kept


def enabled(*, err: bool = False) -> bool:
    """Colour lines for stdout (or stderr)?"""
    if err not in _decided:
        _decided[err] = _decide(err)
    return _decided[err]


def _decide(err: bool) -> bool:
    if _flag is not None and _flag != "auto":
        return _flag == "always"
    stream = sys.stderr if err else sys.stdout
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()) or os.environ.get("TERM") == "dumb":
        return False
    return _flag is not None or not (os.environ.get("NO_COLOR") or _configured() == "never")


def _configured() -> str:
    """git config color.convoy, else color.ui (auto when neither is set or git cannot say).
    A plain `git config` read (not gitcli, whose imports would cost the warm read more than
    the read itself); asked once, on a terminal only."""
    import subprocess

    try:
        out = subprocess.run(["git", "config", "--get-regexp", r"^color\.(convoy|ui)$"],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             check=False).stdout
    except OSError:
        return "auto"
    found = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    for key in ("color.convoy", "color.ui"):
        if key in found:
            return _GIT_WORDS.get(found[key].strip().lower(), "auto")
    return "auto"
