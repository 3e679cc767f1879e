"""Branch names by git's own rules (`git check-ref-format --branch`), in pure Python so the
state can be validated without loading pygit2, plus one rule of ours: no leading '-', which
a git command line would read as an option. Every branch name a user types or the state
names goes through here before it becomes a ref."""

from __future__ import annotations

from gitconvoy.errors import ConvoyError

_FORBIDDEN = set(" ~^:?*[\\") | {chr(c) for c in range(0x20)} | {"\x7f"}


def branch_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name, or None."""
    if not name:
        return "is empty"
    if name.startswith("-"):
        return "starts with '-'"
    if name == "@" or "@{" in name:
        return "contains '@{' or is '@'"
    if ".." in name:
        return "contains '..'"
    bad = sorted({c for c in name if c in _FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:3])
        return f"contains {shown}"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "has an empty path component"
    if name.endswith("."):
        return "ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "has a component starting with '.'"
        if part.endswith(".lock"):
            return "has a component ending with '.lock'"
    if name.startswith("refs/") or name == "HEAD":
        return "names a ref, not a branch (drop 'refs/heads/')" if name.startswith(
            "refs/heads/") else "is not a branch name"
    return None


def check_branch(name: str, what: str = "branch") -> str:
    """`name` if it is a valid branch name, else one error line naming it and the rule."""
    problem = branch_problem(name)
    if problem:
        raise ConvoyError(f"{what} '{name}' is not a valid branch name: it {problem} "
                          "(see git check-ref-format)")
    return name
