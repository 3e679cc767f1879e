"""Rough edges a new user hit (issue 14, must-have 4): each fixed, each with its test."""

from __future__ import annotations

import subprocess

from conftest import ref_of


def test_a_non_utf8_argument_is_a_one_line_error_and_writes_nothing(state_repo):
    before = ref_of(state_repo)
    proc = subprocess.run([b"git-convoy", b"bead", b"create", b"bad\xff"], cwd=state_repo,
                          capture_output=True)
    assert proc.returncode == 1
    assert proc.stderr == b"error: argument 3 is not valid UTF-8: state files hold text only\n"
    assert proc.stdout == b"" and ref_of(state_repo) == before
