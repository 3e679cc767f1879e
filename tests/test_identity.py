"""Landing and state commits say who made them exactly as git would (issue 11, item 5):
environment first (as CI sets it), then git config, then a clear error — never a made-up
identity."""

from __future__ import annotations

import pytest
from conftest import git, git_convoy, ok, ref_of
from hypothesis import given
from hypothesis import strategies as st
from test_refinery_helpers import add_rig, hand_dispatch, worker_commit

from gitconvoy.errors import ConvoyError
from gitconvoy.state.identity import parse_date, resolve


def test_a_landing_takes_the_identity_and_date_git_would(state_repo, monkeypatch):
    add_rig()
    bead = ok("bead", "create", "CI lands it")
    worker_commit(state_repo, hand_dispatch(state_repo, bead), {"f.txt": "x\n"})
    ok("done", bead)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "CI Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@ci.example")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "CI Bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@ci.example")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1767225600 +0100")
    ok("refinery", "run")
    fmt = "%an <%ae>|%cn <%ce>|%ct %cI"
    assert git("log", "-1", f"--format={fmt}", "main", cwd=state_repo) == (
        "CI Author <author@ci.example>|CI Bot <bot@ci.example>|1767225600 "
        "2026-01-01T01:00:00+01:00")
    assert git("log", "-1", "--format=%cn", "convoy/state", cwd=state_repo) == "CI Bot"


def test_no_identity_is_a_clear_error_and_nothing_is_written(state_repo, monkeypatch,
                                                              tmp_path):
    """A separate process with an empty HOME (libgit2 reads ~/.gitconfig once per process)."""
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.delenv("EMAIL", raising=False)
    git("config", "--unset-all", "user.name", cwd=state_repo, check=False)
    git("config", "--unset-all", "user.email", cwd=state_repo, check=False)
    before = ref_of(state_repo)
    res = git_convoy("bead", "create", "anonymous", cwd=state_repo, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == ("error: who is writing? user.name is not set: run 'git config "
                               "--global user.name …' (or set GIT_AUTHOR_NAME), as for git "
                               "commit")
    assert ref_of(state_repo) == before


@pytest.mark.parametrize("text, expected", [
    ("@1767225600 +0100", (1767225600, 60)),
    ("1767225600 -0230", (1767225600, -150)),
    ("2026-01-01T00:00:00Z", (1767225600, 0)),
    ("2026-01-01 01:00:00 +01:00", (1767225600, 60)),
    ("Thu, 01 Jan 2026 00:00:00 +0000", (1767225600, 0)),
])
def test_git_date_formats(text, expected):
    assert parse_date(text, "GIT_COMMITTER_DATE") == expected


def test_a_date_git_would_refuse_is_named():
    with pytest.raises(ConvoyError, match="GIT_AUTHOR_DATE='yesterday' is not a date"):
        parse_date("yesterday", "GIT_AUTHOR_DATE")


@given(st.sampled_from(["author", "committer"]), st.booleans(), st.booleans())
def test_the_environment_wins_over_config(role, env_name, env_email):
    config = {"user.name": "Config Name", "user.email": "config@example.com"}
    env = {}
    if env_name:
        env[f"GIT_{role.upper()}_NAME"] = "Env Name"
    if env_email:
        env[f"GIT_{role.upper()}_EMAIL"] = "env@example.com"
    who = resolve(role, config.get, env)
    assert who.name == ("Env Name" if env_name else "Config Name")
    assert who.email == ("env@example.com" if env_email else "config@example.com")
