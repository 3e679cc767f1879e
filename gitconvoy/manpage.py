"""Generate man/git-convoy.1 from the click commands, so `git convoy --help` has a page.

git turns `git convoy --help` into `man git-convoy`; the page shipped in the wheel (hatch
shared-data -> share/man/man1) is this module's output, regenerated with
`python -m gitconvoy.manpage man/git-convoy.1` whenever commands change.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from gitconvoy import __version__

EXIT_STATUS = [
    ("0", "success"),
    ("1", "a user error: unknown id, bad value, refused edit, broken state file"),
    ("2", "a usage error: unknown option or command"),
    ("3", "a lost race or conflict: the state ref kept moving; nothing was written"),
]


def roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and lines starting with '.' or "'"."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line
                     for line in out.splitlines())


def walk(cmd: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """Every command under `cmd`, depth first, in the order `--help` lists them."""
    yield cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def section(cmd: click.Command, ctx: click.Context) -> list[str]:
    path = ctx.command_path
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines = [f'.SS "{roff(path)} {roff(usage)}"']
    help_text = (cmd.help or cmd.short_help or "").strip()
    paragraphs = [p for p in help_text.split("\n\n") if p.strip()]
    for n, para in enumerate(paragraphs):
        if n:
            lines.append(".PP")
        lines.append(roff(" ".join(para.split())))
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or "--help" in record[0]:
            continue
        lines += [".TP", f"\\fB{roff(record[0])}\\fR", roff(record[1] or "")]
    return lines


def render(group: click.Group, name: str = "git convoy") -> str:
    ctx = click.Context(group, info_name=name)
    summary = (group.help or "").strip().split("\n\n")
    head = summary[0].split(":", 1)[-1].strip().rstrip(".")
    out = [
        f'.TH GIT\\-CONVOY 1 "" "gitconvoy {__version__}" "Git Manual"',
        ".SH NAME",
        f"git\\-convoy \\- {roff(head)}",
        ".SH SYNOPSIS",
        ".B git convoy",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
    ]
    for n, para in enumerate(summary):
        if n:
            out.append(".PP")
        out.append(roff(" ".join(para.split())))
    out += [".PP", "Every command accepts \\fB\\-h\\fR/\\fB\\-\\-help\\fR; read commands "
            "accept \\fB\\-\\-json\\fR (docs/json.md).", ".SH COMMANDS"]
    for cmd, sub_ctx in walk(group, ctx):
        if cmd is group or isinstance(cmd, click.Group):
            continue
        out += section(cmd, sub_ctx)
    out.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        out += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    out += [
        ".SH FILES",
        ".TP", "\\fBrefs/heads/convoy/state\\fR",
        roff("the state: one YAML file per bead, convoy and merge request (docs/state.md); "
             "git config convoy.ref moves it"),
        ".TP", "\\fB.git/convoy/cache/\\fR",
        roff("a read cache keyed by the state tree id; safe to delete"),
        ".SH SEE ALSO",
        "\\fBgit\\fR(1), \\fBgit\\-log\\fR(1)",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    from gitconvoy.cli import cli

    args = sys.argv[1:] if argv is None else argv
    page = render(cli)
    if args:
        with open(args[0], "w", encoding="utf-8") as fh:
            fh.write(page)
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
