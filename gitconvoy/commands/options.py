"""The `--json` and `--pretty` options, importing nothing but click: the hook commands'
module declares them too, and its import stays cheap (see commands/hooks.py)."""

from __future__ import annotations

from typing import Any

import click

PRETTY = "gitconvoy.pretty_json"  # set in the click context's meta by --pretty


def _remember_pretty(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[PRETTY] = True


pretty_option = click.option(
    "--pretty", is_flag=True, expose_value=False, callback=_remember_pretty,
    help="With --json: indent the document for reading (default: compact, one line).",
)


def json_option(command: Any) -> Any:
    """`--json` and its `--pretty`, on every command that prints JSON."""
    command = pretty_option(command)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON (docs/json.md).")(command)
