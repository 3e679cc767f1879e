"""Rough edges a new user hit (issue 14, must-have 4): each fixed, each with its test."""

from __future__ import annotations

import json
import subprocess

from conftest import convoy, ok, ref_of


def test_a_non_utf8_argument_is_a_one_line_error_and_writes_nothing(state_repo):
    before = ref_of(state_repo)
    proc = subprocess.run([b"git-convoy", b"bead", b"create", b"bad\xff"], cwd=state_repo,
                          capture_output=True)
    assert proc.returncode == 1
    assert proc.stderr == b"error: argument 3 is not valid UTF-8: state files hold text only\n"
    assert proc.stdout == b"" and ref_of(state_repo) == before


def test_status_without_a_convoy_lists_the_open_ones(state_repo):
    a = ok("bead", "create", "one")
    b = ok("bead", "create", "two")
    first = ok("create", "First", a)
    second = ok("create", "Second", b)
    ok("close", second, "--force")
    assert ok("status") == ok("list")
    lines = ok("status").splitlines()
    assert len(lines) == 1 and lines[0].startswith(first) and "First" in lines[0]
    assert json.loads(ok("status", "--json")) == json.loads(ok("list", "--json"))
    res = convoy("status", "--format", "markdown")
    assert res.code == 2 and "--format markdown draws one convoy" in res.err


def test_diff_takes_json_like_every_read(state_repo):
    ok("bead", "create", "one")
    assert json.loads(ok("diff", "--json")) == json.loads(ok("diff", "--format", "json"))


def test_init_with_another_prefix_on_an_existing_state_says_so(state_repo):
    before = ref_of(state_repo)
    res = convoy("init", "--prefix", "zz")
    assert res.code == 1
    assert res.err.strip() == ("error: refs/heads/convoy/state already exists with prefix 't'; "
                               "init does not change it (new beads keep t-…): nothing was done")
    assert ref_of(state_repo) == before
    assert ok("init") == "refs/heads/convoy/state already exists (prefix t); nothing to do"
