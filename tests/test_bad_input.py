"""Bad input (issue 2 item 7): one line `error: …`, a non-zero exit, and the ref unmoved."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, ok, ref_of

from gitconvoy.state.layout import object_path


def refused(repo: Path | None, args: list[str], message: str, code: int = 1) -> None:
    """Run a command that must fail with exactly `message` and leave the state ref alone."""
    before = ref_of(repo) if repo else None
    res = convoy(*args)
    assert res.code == code, (args, res)
    assert res.err == f"error: {message}\n", res.err
    assert res.out == ""
    if repo is not None:
        assert ref_of(repo) == before


def plant(repo: Path, path: str, content: str) -> str:
    """Write a file onto the state ref with plain git plumbing (a bad merge, a hand edit)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "plant-index")}

    def run(*args: str, data: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, input=data, text=True,
                              check=True, capture_output=True).stdout.strip()

    blob = run("hash-object", "-w", "--stdin", data=content)
    run("read-tree", STATE_REF)
    run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    tree = run("write-tree")
    commit = run("commit-tree", tree, "-p", STATE_REF, "-m", f"plant {path}")
    run("update-ref", STATE_REF, commit)
    os.unlink(repo / ".git" / "plant-index")
    return commit


@pytest.fixture
def two(state_repo: Path) -> tuple[str, str]:
    return ok("bead", "create", "One"), ok("bead", "create", "Two")


def test_unknown_ids(state_repo, two):
    one, _ = two
    hint = "see 'git convoy bead list'"
    refused(state_repo, ["bead", "show", "t-nope"], f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["bead", "update", "t-nope", "-p", "1"], f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["bead", "close", one, "t-nope"], f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["dep", "add", one, "t-nope"], f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["dep", "list", "t-nope"], f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["bead", "create", "x", "--parent", "t-nope"],
            f"unknown bead 't-nope': {hint}")
    refused(state_repo, ["bead", "create", "x", "--dep", "t-nope"],
            f"unknown bead 't-nope': {hint}")
    assert ok("bead", "show", one).startswith(one)  # `close one t-nope` closed nothing


def test_bad_type_status_priority(state_repo, two):
    one, _ = two
    types = "task, bug, feature, chore, epic, decision"
    statuses = "open, in_progress, hooked, blocked, deferred, closed, tombstone"
    refused(state_repo, ["bead", "create", "x", "--type", "story"],
            f"unknown bead type 'story': expected one of {types}")
    refused(state_repo, ["bead", "update", one, "--type", "story"],
            f"unknown bead type 'story': expected one of {types}")
    refused(state_repo, ["bead", "update", one, "--status", "done"],
            f"unknown status 'done': expected one of {statuses}")
    refused(state_repo, ["bead", "list", "--status", "done"],
            f"unknown status 'done': expected one of {statuses}")
    for bad in ("5", "-1", "high", "1.5"):
        refused(state_repo, ["bead", "create", "x", "-p", bad],
                f"priority must be an integer from 0 (highest) to 4, got {bad!r}")
        refused(state_repo, ["bead", "update", one, "-p", bad],
                f"priority must be an integer from 0 (highest) to 4, got {bad!r}")
    deps = "blocks, parent-child, related, discovered-from, waits-for, merge-blocks"
    refused(state_repo, ["dep", "add", one, two[1], "--type", "needs"],
            f"unknown dep type 'needs': expected one of {deps}")


def test_self_dep_and_cycle(state_repo, two):
    one, other = two
    refused(state_repo, ["dep", "add", one, one], f"refused: {one} cannot depend on itself")
    refused(state_repo, ["bead", "update", one, "--parent", one],
            f"refused: {one} cannot be its own parent")
    ok("dep", "add", one, other, "--type", "waits-for")
    refused(state_repo, ["dep", "add", other, one, "--type", "merge-blocks"],
            f"refused: that would make a dependency cycle {other} → {one} → {other}")


def test_not_a_git_repository(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for args in (["bead", "list"], ["ready"], ["init"], ["bead", "create", "x"]):
        refused(None, args,
                "not a git repository (or any parent folder): run git convoy inside a "
                "repository")
    assert os.listdir(plain) == []


def test_no_state_ref_yet_suggests_init(repo):
    message = (f"no gitconvoy state in this repository ({STATE_REF} does not exist): "
               "run 'git convoy init'")
    for args in (["bead", "list"], ["ready"], ["blocked"], ["bead", "create", "x"],
                 ["dep", "cycles"], ["bead", "show", "t-1"]):
        refused(repo, args, message)
    assert ref_of(repo) is None


def test_id_with_slash_or_dotdot(state_repo):
    for bad in ("a/b", "..", "a..b", "../x", ".hidden", "a b", "ü"):
        refused(state_repo, ["bead", "create", "x", "--id", bad],
                f"id {bad!r} is not valid: use letters, digits, '-', '.' and '_' "
                "(no '/', no '..')")
    refused(state_repo, ["bead", "show", "../convoy"],
            "unknown bead '../convoy': see 'git convoy bead list'")


def test_empty_or_long_title(state_repo, two):
    one, _ = two
    for title in ("", "   "):
        refused(state_repo, ["bead", "create", title], "title must not be empty")
        refused(state_repo, ["bead", "update", one, "--title", title], "title must not be empty")
    refused(state_repo, ["bead", "create"], "title must not be empty")
    refused(state_repo, ["bead", "create", "x" * 501], "title is longer than 500 characters")


def test_usage_errors_exit_2(state_repo):
    before = ref_of(state_repo)
    res = convoy("bead", "create", "x", "--colour", "red")
    assert res.code == 2 and "No such option '--colour'" in res.err
    res = convoy("bead", "frobnicate")
    assert res.code == 2 and "No such command 'frobnicate'" in res.err
    assert ref_of(state_repo) == before


# --- broken files on the state ref ---------------------------------------------------------


BROKEN = {
    "invalid YAML": ("id: t-bad\ntitle: [unclosed\n",
                     "line 3: did not find expected ',' or ']'"),
    "schema": ("id: t-bad\ntitle: Bad\npriority: 9\n",
               "field 'priority': expected an integer 0–4, got 9"),
    "unknown field": ("id: t-bad\ntitle: Bad\ncolour: red\n", "field 'colour': unknown field"),
    "missing title": ("id: t-bad\ntype: task\n", "field 'title': is required"),
    "closed_at without closed": ("id: t-bad\ntitle: Bad\nclosed_at: '2026-01-01'\n",
                                 "field 'closed_at': must be set exactly when status is closed"),
    "wrong id": ("id: t-other\ntitle: Bad\n", "field 'id': is 't-other' but the file is "
                 "named t-bad"),
    "anchors and aliases": ("id: t-bad\ntitle: &t Bad\ndescription: *t\n",
                            "line 2: YAML anchors and aliases are not allowed"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping at the top level"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_state_file_is_named_and_the_rest_stays_readable(state_repo, two, case):
    content, problem = BROKEN[case]
    path = object_path("beads", "t-bad")
    planted = plant(state_repo, path, content)
    message = f"{path}: {problem}"
    refused(state_repo, ["bead", "show", "t-bad"], message)
    refused(state_repo, ["bead", "update", "t-bad", "-p", "1"], message)
    refused(state_repo, ["dep", "add", two[0], "t-bad"], message)
    refused(state_repo, ["bead", "create", "x", "--id", "t-bad"], "bead 't-bad' already exists")
    assert ref_of(state_repo) == planted
    res = convoy("bead", "list")
    assert res.code == 0 and res.err == f"warning: skipped {message}\n"
    assert sorted(line.split()[0] for line in res.lines) == sorted(two)
    assert sorted(line.split()[0] for line in ok("ready").splitlines()) == sorted(two)
    ok("bead", "update", two[0], "-l", "still-writable")
    assert "still-writable" in ok("bead", "show", two[0])
    # mending the file by hand brings the bead back
    plant(state_repo, path, "id: t-bad\ntitle: Mended\n")
    assert ok("bead", "show", "t-bad").startswith("t-bad: Mended")


def test_a_misplaced_file_is_reported(state_repo, two):
    plant(state_repo, "beads/t-flat.yaml", "id: t-flat\ntitle: Flat\n")
    res = convoy("bead", "list")
    assert res.code == 0 and res.err == (
        "warning: skipped beads/t-flat.yaml: is misplaced: it belongs at "
        f"{object_path('beads', 't-flat')}\n")


def test_a_broken_convoy_yaml_is_named(state_repo, two):
    plant(state_repo, "convoy.yaml", "schema: 1\nprefix: t\nrigs: [1]\n")
    res = convoy("bead", "list")
    assert res.code == 0
    assert res.err == "warning: skipped convoy.yaml: field 'rigs': expected a mapping\n"
    assert git("rev-parse", STATE_REF)  # still there


def test_a_stale_ref_lock_is_named_with_exit_code_3(state_repo):
    lock = state_repo / ".git" / "refs" / "heads" / "convoy" / "state.lock"
    lock.write_text("")
    os.utime(lock, (1, 1))  # left by a crash long ago
    res = convoy("bead", "create", "x")
    assert res.code == 3 and res.out == ""
    assert res.err.count("\n") == 1 and res.err.startswith(f"error: {lock} is ")
    assert res.err.endswith("if no git is running, delete that file and run the command again\n")
    lock.unlink()
    assert ok("bead", "create", "x").startswith("t-")


BAD_BATCHES = {
    "b.json": ('[{"title": 1}', "not valid JSON: Expecting ',' delimiter: line 1 column 14 "
               "(char 13)"),
    "title.yaml": ("- {title: 123}\n", "item 1: field 'title' must be text, got int"),
    "labels.yaml": ("- {title: x, labels: a}\n", "item 1: field 'labels' must be a list of text"),
    "deps.yaml": ("- {title: x}\n- {title: y, deps: a}\n",
                  "item 2: field 'deps' must be a list of text"),
    "text.yaml": ("- {title: x, description: [1]}\n",
                  "item 1: field 'description' must be text, got list"),
    "parent.yaml": ("- {title: x, parent: 5}\n", "item 1: field 'parent' must be text, got int"),
    "notalist.yaml": ("title: x\n", "expected a list of beads"),
    "item.yaml": ("- just a title\n", "item 1: expected a mapping with at least a title"),
}


@pytest.mark.parametrize("name", sorted(BAD_BATCHES))
def test_bad_batch_files(state_repo, tmp_path, name):
    content, problem = BAD_BATCHES[name]
    path = tmp_path / name
    path.write_text(content)
    refused(state_repo, ["bead", "create", "--batch", str(path)], f"{path}: {problem}")


def test_a_transaction_never_writes_what_a_read_would_reject(state_repo):
    from gitconvoy.errors import SchemaError
    from gitconvoy.state.model import Bead
    from gitconvoy.state.store import Store

    before = ref_of(state_repo)
    with pytest.raises(SchemaError, match="field 'description': expected a string, got list"):
        Store.open().transact(lambda tx: tx.put(Bead("t-x", "x", description=["a"])), "bad")
    assert ref_of(state_repo) == before
