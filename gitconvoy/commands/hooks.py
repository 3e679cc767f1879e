"""`git convoy hooks install|uninstall|status` and `git convoy hook <name>` (run by the shims).

`hook` imports nothing beyond click at module level: the shims start it only when a watched
ref moved, and its cost is paid on the user's git command.
"""

from __future__ import annotations

import click

from gitconvoy.commands.options import json_option

dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False),
    help="Hooks folder to use instead of the one git uses (core.hooksPath or .git/hooks).",
)


@click.group()
def hooks() -> None:
    """Install the git hooks that run the feeder when work lands."""


@hooks.command("install")
@dir_option
@click.option("--server", is_flag=True,
              help="On a bare remote: a post-receive hook that lands the MRs clients queue.")
def install(directory: str | None, server: bool) -> int:
    """Install the hook shims, the merge driver and the watch list (twice is a no-op)."""
    from gitconvoy.commands.io import open_store, say
    from gitconvoy.git import hookinstall

    store = open_store(adopt=False)
    done = (hookinstall.install_server if server else hookinstall.install)(store, directory)
    for line in done:
        say(line)
    if not done:
        say("hooks already installed and current; nothing to do")
    return 0


@hooks.command("uninstall")
@dir_option
def uninstall(directory: str | None) -> int:
    """Remove exactly what install added; hook files we did not create stay byte-identical."""
    from gitconvoy.commands.io import open_store, say
    from gitconvoy.git import hookinstall

    done = hookinstall.uninstall(open_store(adopt=False), directory)
    for line in done:
        say(line)
    if not done:
        say("no gitconvoy hooks installed; nothing to do")
    return 0


_STATE_TEXT = {
    "current": "installed, current",
    "outdated": "installed, outdated: run 'git convoy hooks install'",
    "absent": "not installed",
    "missing": "not installed (the file exists and is not ours)",
    "foreign": "not installed: the existing hook is not a shell script",
    "disabled": "installed but not executable: git ignores it",
}


@hooks.command("status")
@dir_option
@json_option
def status(directory: str | None, as_json: bool) -> int:
    """What is installed where, and whether it is current (exit 1 when it is not)."""
    from gitconvoy.commands.io import open_store, print_json, say
    from gitconvoy.git import hookinstall

    found = hookinstall.status(open_store(adopt=False), directory)
    if as_json:
        print_json(found.to_dict())
        return 0 if found.current else 1
    say(f"hooks folder: {found.directory}")
    for hook_state in found.hooks:
        say(f"  {hook_state.name:<22} {_STATE_TEXT[hook_state.state]}")
    driver = found.merge_driver or "not registered"
    say(f"merge driver: {driver}"
        + ("" if found.settings_current and found.included else " (settings outdated)"))
    say(f"watch list: {'present' if found.watch_present else 'missing'}")
    for other in found.other_dirs:
        say(f"also installed in: {other} (uninstall removes it there too)")
    say("status: current" if found.current
        else "status: not current; run 'git convoy hooks install'")
    return 0 if found.current else 1


@click.command(context_settings={"ignore_unknown_options": True}, hidden=True)
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(name: str, args: tuple[str, ...]) -> int:
    """Run by the hook shims: one feeder step. Always exits 0."""
    from gitconvoy.hookrun import run_hook

    lines = run_hook(name, list(args))
    if lines:  # a hook that fed nothing does not pay for the printing module
        from gitconvoy.commands.io import say

        for line in lines:
            say(f"gitconvoy: {line}", err=True)
    return 0
