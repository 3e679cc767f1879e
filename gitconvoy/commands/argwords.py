"""Option words as click reads them, for the paths that answer without click (the warm
reads, gitconvoy.commands.quick, and the quick create, gitconvoy.commands.quickcreate):
importing click costs more than either answer."""

from __future__ import annotations

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
