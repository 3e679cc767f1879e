"""Branch names by git's rules: the pure check agrees with `git check-ref-format --branch`."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.state.refnames import branch_problem

SAMPLES = ["main", "feature/x", "integration/t-1-auth", "a.b", "v1.0", "x..y", "x/../y",
           "refs/../x", "bad name", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/",
           "a//b", ".a", "a/.b", "a.lock", "a/b.lock", "a.", "@", "a@{1}", "a@b", "-a",
           "HEAD", "é", "a\tb", "a\x7fb", "ok-name_1"]


def git_says_valid(name: str) -> bool:
    """git's verdict, less what we refuse on top: a leading '-' (an option to git), '@' and
    HEAD (git reads them as the current branch), names under refs/ (we want short names)."""
    if name.startswith(("-", "refs/")) or name in ("@", "HEAD"):
        return False
    proc = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True)
    return proc.returncode == 0


def test_every_sample_is_judged_as_git_judges_it():
    for name in SAMPLES:
        ours = branch_problem(name) is None
        assert ours == git_says_valid(name), (name, branch_problem(name))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(list("ab./-@{~^:?*[\\ \t") + ["lock", "refs/"]),
                min_size=1, max_size=10).map("".join))
def test_generated_names_agree_with_git(name):
    assert (branch_problem(name) is None) == git_says_valid(name), (name, branch_problem(name))
