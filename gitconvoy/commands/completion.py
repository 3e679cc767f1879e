"""`git convoy completion bash|zsh|fish` and the hidden `git convoy __complete ids` it calls.

The script is generated from the click commands themselves (docs/completion.md). This module
imports nothing heavy at the top: `__complete` runs on every TAB that wants a name and must
not load pygit2 unless the state moved (gitconvoy.git.completion).
"""

from __future__ import annotations

import click

from gitconvoy.commands.io import say_document
from gitconvoy.git.completion import words

# What an argument or an option value names, by click parameter name.
ARG_KINDS = {
    "ids": "ids:bead", "bead_id": "ids:bead", "depends_on": "ids:bead", "beads": "ids:bead",
    "bead": "ids:bead", "epic": "ids:epic", "convoy_id": "ids:convoy",
    "inputs": "ids:bead,convoy", "remote": "remote",
}
OPTION_KINDS = {
    "parent": "ids:epic", "deps": "ids:bead", "rig": "ids:rig", "rig_name": "ids:rig",
    "epic": "ids:epic", "target": "branch", "base": "branch", "branch": "branch",
}
# Arguments whose name says too little: by command path.
PATH_KINDS = {
    ("rig park", "name"): "ids:rig", ("rig unpark", "name"): "ids:rig",
    ("rig update", "name"): "ids:rig", ("graph", "name"): "ids:convoy,epic",
    ("report", "name"): "ids:convoy,epic",
}


def _choices() -> dict[str, str]:
    from gitconvoy.state.model import BEAD_STATUSES, BEAD_TYPES, DEP_TYPES

    return {"bead_type": " ".join(BEAD_TYPES), "types": " ".join(BEAD_TYPES),
            "status": " ".join(BEAD_STATUSES), "statuses": " ".join(BEAD_STATUSES),
            "dep_type": " ".join(DEP_TYPES)}


def _kind(param: click.Parameter, path: str, choices: dict[str, str]) -> str:
    name = param.name or ""
    if (path, name) in PATH_KINDS:
        return PATH_KINDS[(path, name)]
    if isinstance(param.type, click.Choice):
        return "choice:" + " ".join(str(c) for c in param.type.choices)
    if isinstance(param.type, click.Path | click.File):
        return "file"
    if isinstance(param, click.Argument):
        return ARG_KINDS.get(name, "")
    if name in choices:
        return "choice:" + choices[name]
    return OPTION_KINDS.get(name, "")


def command_table(root: click.Group):
    """One Node per command path, walked from the root group (every module is imported)."""
    from gitconvoy.render.completion import ROOT, Node

    choices = _choices()
    nodes = []

    def walk(cmd: click.Command, ctx: click.Context, path: str) -> None:
        node = Node(path)
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    node.subcommands.append(name)
        label = "" if path == ROOT else path
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Argument):
                node.args.append(_kind(param, label, choices))
                node.variadic = param.nargs == -1
                continue
            if getattr(param, "hidden", False):
                continue
            names = [*param.opts, *param.secondary_opts]
            node.options += names
            if isinstance(param, click.Option) and not param.is_flag and not param.count:
                for option in param.opts:
                    node.values[option] = _kind(param, label, choices)
        nodes.append(node)
        for name in node.subcommands:
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            walk(sub, click.Context(sub, info_name=name, parent=ctx),
                 name if path == ROOT else f"{path} {name}")

    walk(root, click.Context(root, info_name="git convoy"), ROOT)
    return nodes


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print a completion script for SHELL: sub-commands, options, bead, epic, convoy and rig
    names after `git convoy`.

    bash: git convoy completion bash > ~/.local/share/bash-completion/completions/git-convoy
    zsh: git convoy completion zsh > ~/.zfunc/_git-convoy (fpath=(~/.zfunc $fpath) before
    compinit). fish: git convoy completion fish > ~/.config/fish/completions/git-convoy.fish
    """
    from gitconvoy import __version__
    from gitconvoy.render.completion import SCRIPTS

    root = click.get_current_context().find_root().command
    assert isinstance(root, click.Group)
    say_document(SCRIPTS[shell](command_table(root), __version__))
    return 0


@click.command("__complete", hidden=True)
@click.argument("what", type=click.Choice(["ids"]))
@click.argument("kinds", nargs=-1)
@click.option("--prefix", default="", help="Only names that start with this.")
@click.option("--describe", is_flag=True, help="name<TAB>description on each line.")
def complete(what: str, kinds: tuple[str, ...], prefix: str, describe: bool) -> int:
    """Names for shell completion: KINDS are bead, epic, convoy, rig (or a bead type)."""
    wanted = [k for arg in kinds for k in arg.split(",") if k]
    found = words(wanted, prefix, describe)
    if found:
        say_document("\n".join(found) + "\n")
    return 0
