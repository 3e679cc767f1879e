"""The click entry point: a lazily loaded command group and the one-line error policy.

Sub-commands are imported only when used, so `git convoy hook …` (run by git hooks) does not
pay for modules it does not need.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from gitconvoy import __version__
from gitconvoy.errors import EXIT_USAGE, EXIT_USER, ConvoyError

# name -> (module, attribute); the order here is the order of `git convoy --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("gitconvoy.commands.setup", "init"),
    "bead": ("gitconvoy.commands.beads", "bead"),
    "dep": ("gitconvoy.commands.deps", "dep"),
    "ready": ("gitconvoy.commands.beads", "ready"),
    "blocked": ("gitconvoy.commands.beads", "blocked"),
    "rig": ("gitconvoy.commands.rigs", "rig"),
    "create": ("gitconvoy.commands.convoys", "create"),
    "add": ("gitconvoy.commands.convoys", "add"),
    "stage": ("gitconvoy.commands.convoys", "stage"),
    "launch": ("gitconvoy.commands.convoys", "launch"),
    "status": ("gitconvoy.commands.convoys", "status"),
    "list": ("gitconvoy.commands.convoys", "list_convoys"),
    "close": ("gitconvoy.commands.convoys", "close"),
    "sling": ("gitconvoy.commands.convoys", "sling"),
    "feed": ("gitconvoy.commands.feed", "feed"),
    "claim": ("gitconvoy.commands.claims", "claim"),
    "heartbeat": ("gitconvoy.commands.claims", "heartbeat"),
    "work": ("gitconvoy.commands.work", "work"),
    "step": ("gitconvoy.commands.work", "step"),
    "done": ("gitconvoy.commands.refinery", "done"),
    "refinery": ("gitconvoy.commands.refinery", "refinery"),
    "integration": ("gitconvoy.commands.integration", "integration"),
    "import": ("gitconvoy.commands.importing", "import_cmd"),
    "sync": ("gitconvoy.commands.sync", "sync"),
    "merge-driver": ("gitconvoy.commands.sync", "merge_driver"),
    "hooks": ("gitconvoy.commands.hooks", "hooks"),
    "hook": ("gitconvoy.commands.hooks", "hook"),
    "doctor": ("gitconvoy.commands.doctor", "doctor"),
    "review": ("gitconvoy.commands.review", "review"),
    "formula": ("gitconvoy.commands.formulas", "formula"),
    "diff": ("gitconvoy.commands.views", "diff"),
    "graph": ("gitconvoy.commands.graph", "graph_cmd"),
    "report": ("gitconvoy.commands.graph", "report"),
    "completion": ("gitconvoy.commands.completion", "completion"),
    "__complete": ("gitconvoy.commands.completion", "complete"),
    "demo": ("gitconvoy.demo", "demo"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands whose module exists (capabilities land one by one)."""
        return [n for n, (mod, _) in COMMANDS.items() if importlib.util.find_spec(mod)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not importlib.util.find_spec(COMMANDS[name][0]):
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="git-convoy")
def cli() -> None:
    """gitconvoy: beads, dependencies and convoys stored on a git ref.

    State lives on refs/heads/convoy/state (git config convoy.ref changes it). Exit codes:
    0 ok, 1 user error, 2 usage, 3 lost race or conflict. Any command takes
    --color[=auto|always|never] and --no-color (else NO_COLOR, git config color.convoy or
    color.ui, then colour on a terminal only).
    """


def _run(argv: list[str]) -> Any:
    """The command, with a progress line on a terminal for work over a second (wiped before
    anything else is said on stderr)."""
    from gitconvoy.commands import activity

    activity.start(next((a for a in argv if not a.startswith("-")), "git convoy"))
    try:
        return cli.main(args=argv, prog_name="git convoy", standalone_mode=False)
    finally:
        activity.finish()


def _say_error(line: str) -> None:
    from gitconvoy.commands import colour
    from gitconvoy.render.paint import paint

    if colour.enabled(err=True):
        click.echo(paint(line), err=True, color=True)
    else:
        click.echo(line, err=True)


def _undecodable(args: list[str]) -> int | None:
    """The position of an argument that was not valid UTF-8 (Python keeps such bytes as
    lone surrogates), which no field of the state may hold."""
    for number, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            return number
    return None


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI: user mistakes print one line and exit non-zero, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    bad = _undecodable(args)
    if bad is not None:
        click.echo(f"error: argument {bad} is not valid UTF-8: state files hold text only",
                   err=True)
        sys.exit(EXIT_USER)
    from gitconvoy.commands import colour

    try:
        argv = colour.take_flags(args)
    except colour.BadColor as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        rc = _run(argv)
    except ConvoyError as exc:  # one line, whatever the state put into the message
        from gitconvoy.render.text import inert

        _say_error(f"error: {inert(exc.message)}")
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USER)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # an internal bug: one line, the traceback on request
        if os.environ.get("CONVOY_DEBUG"):
            raise
        from gitconvoy.render.text import inert

        click.echo(
            f"internal error: {type(exc).__name__}: {inert(str(exc))} (set CONVOY_DEBUG=1 for "
            "details)", err=True,
        )
        sys.exit(70)
    sys.exit(rc if isinstance(rc, int) else 0)
