"""Branch names typed on the command line are checked by git's rules before anything runs,
at every entry point, the same way the state's are (gitconvoy.state.refnames)."""

from __future__ import annotations

import click

from gitconvoy.state.refnames import check_branch


def branch_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: None and '' (an option that clears a field) pass through."""
    if not value:
        return value
    return check_branch(value, f"--{(param.name or 'branch').replace('_', '-')}")
