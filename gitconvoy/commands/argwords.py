"""Option words as click reads them, for the paths that answer without click (the warm
reads, gitconvoy.commands.quick, and the quick create, gitconvoy.commands.quickcreate):
importing click costs more than either answer."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FLAG, COUNT, TEXT, MANY = "flag", "count", "text", "many"


def split_option(token: str, spec: dict[str, tuple[str, str]]) -> tuple[str, str | None] | None:
    """An option token as (spelling, attached value): `--limit=5`, `-n5`, `--json`."""
    if token in spec:
        return token, None
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        return (name, value) if eq and name in spec and spec[name][1] != FLAG else None
    if token.startswith("-") and token[:2] in spec and spec[token[:2]][1] != FLAG:
        return token[:2], token[2:]
    return None


def read_options(rest: list[str], spec: dict[str, tuple[str, str]],
                 positional: list[str] | None = None) -> dict[str, Any] | None:
    """{field: value} for option words as click reads them, else None (a typo, --help, a
    value that starts with '-' or is empty: click says what is wrong). Arguments go to
    `positional` when given one, else they are a reason for None too."""
    options: dict[str, Any] = {}
    rest = list(rest)
    while rest:
        token = rest.pop(0)
        if positional is not None and not token.startswith("-"):
            positional.append(token)
            continue
        split = split_option(token, spec)
        if split is None:
            return None
        key, kind = spec[split[0]]
        value = split[1]
        if kind == FLAG:
            options[key] = True
            continue
        if value is None:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        if kind == COUNT:
            if not (value.isascii() and value.isdigit() and len(value) <= 18):
                return None
            options[key] = int(value)
        elif kind == MANY:
            options[key] = (*options.get(key, ()), value)
        else:
            options[key] = value
    return options
