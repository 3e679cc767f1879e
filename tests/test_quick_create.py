"""The quick create (gitconvoy.commands.quickcreate): `bead create` without click or pygit2.

The story: a create after a full command in the same worktree runs without pygit2 and
makes the very commit the full path makes (same tree, same author, committer and message:
generated creates are run both ways from the same state and compared by commit id);
anything it cannot do exactly (a user mistake, a convoy to join, counts not kept, a moved
ref, a fault test) writes nothing and leaves the command to the full path; concurrent
creates through the entry point all land.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import STATE_REF, git, ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitconvoy.commands import quickcreate
from gitconvoy.state import quickwrite

HEAVY = ("pygit2", "yaml", "click")
PINNED = {"CONVOY_NOW": "2026-11-30T12:00:00.000000Z", "CONVOY_ID_SALT": "pinned",
          "GIT_AUTHOR_DATE": "@1764504000 +0100", "GIT_COMMITTER_DATE": "@1764504000 +0100"}


def entry_point(repo: Path, *args: str, env: dict[str, str] | None = None,
                config: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`git [-c k=v] convoy ARGS` as a user runs it; with the modules it imported."""
    proc = subprocess.run(["git", *config, "convoy", *args], cwd=repo, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1",
                                          **(env or {})})
    lines = proc.stderr.splitlines()
    modules = [line.rsplit("|", 1)[1].strip() for line in lines
               if line.startswith("import time:")]
    stderr = "".join(f"{line}\n" for line in lines if not line.startswith("import time:"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, stderr), modules


def heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})


def full(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The full path: a `-c` setting is one of the things the quick create leaves to it."""
    return entry_point(repo, *args, env=env, config=("-c", "convoy.test=full"))[0]


@pytest.fixture
def warmed(state_repo: Path) -> Path:
    """A state where a full create has run (it remembers the ref name, the identity and
    the counts). Through the entry point: in this process libgit2 still reads the config
    files of the HOME it started with, not the test's."""
    proc, modules = entry_point(state_repo, "bead", "create", "Made the full way")
    assert proc.returncode == 0 and "pygit2" in heavy(modules), proc.stderr
    return state_repo


def test_a_create_after_a_full_one_runs_without_pygit2_click_or_yaml(warmed: Path) -> None:
    before = git("rev-parse", STATE_REF, cwd=warmed)
    proc, modules = entry_point(warmed, "bead", "create", "Quick one", "-p", "1", "-l", "ui")
    assert proc.returncode == 0, proc.stderr
    assert heavy(modules) == []
    bead_id = proc.stdout.strip()
    assert proc.stderr == ""
    assert git("rev-parse", f"{STATE_REF}^", cwd=warmed) == before
    assert git("log", "-1", "--format=%s", STATE_REF, cwd=warmed) == \
        f"bead create {bead_id}: Quick one"
    assert git("log", "-1", "--format=%an <%ae>|%cn <%ce>", STATE_REF, cwd=warmed) == \
        "Test User <test@example.com>|Test User <test@example.com>"
    assert f"git convoy: bead create {bead_id}" in git("reflog", "-1", STATE_REF, cwd=warmed)
    shown = ok("bead", "show", bead_id, "--json")
    assert '"priority":1' in shown.replace(" ", "") and '"ui"' in shown
    assert git("fsck", "--strict", "--no-dangling", cwd=warmed) == ""
    again, modules = entry_point(warmed, "bead", "create", "And another", "--json")
    assert heavy(modules) == [] and again.stdout.startswith("{")


def test_creates_keep_taking_the_quick_path_after_a_gc(warmed: Path) -> None:
    git("gc", "-q", "--aggressive", "--prune=now", cwd=warmed)
    for n in range(3):
        proc, modules = entry_point(warmed, "bead", "create", f"After gc {n}")
        assert proc.returncode == 0 and heavy(modules) == [], proc.stderr
    assert git("fsck", "--strict", "--no-dangling", cwd=warmed) == ""
    listed = ok("bead", "list")
    assert all(f"After gc {n}" in listed for n in range(3))


def test_a_linked_worktree_creates_quickly_on_the_shared_ref(warmed: Path,
                                                            tmp_path: Path) -> None:
    git("worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side", cwd=warmed)
    first, _ = entry_point(tmp_path / "wt", "bead", "create", "Full: nothing is remembered")
    assert first.returncode == 0, first.stderr
    proc, modules = entry_point(tmp_path / "wt", "bead", "create", "Quick, from the worktree")
    assert proc.returncode == 0 and heavy(modules) == [], proc.stderr
    assert proc.stdout.strip() in ok("bead", "list")


@pytest.mark.parametrize("args, why", [
    (("bead", "create", "Typed", "-t", "nonsense"), "a user mistake: click's message"),
    (("bead", "create", "Orphan", "--parent", "t-nope"), "an unknown parent"),
    (("bead", "create", "Batch?", "--target", "main"), "an option it does not take"),
    (("bead", "create"), "no title"),
    (("bead", "create", "a", "b"), "two titles"),
])
def test_what_it_cannot_do_it_leaves_to_the_full_path(warmed: Path, args: tuple[str, ...],
                                                      why: str) -> None:
    before = git("rev-parse", STATE_REF, cwd=warmed)
    assert quickcreate.answer(list(args), start=str(warmed)) is None, why
    assert git("rev-parse", STATE_REF, cwd=warmed) == before
    via_entry = entry_point(warmed, *args)[0]
    in_full = full(warmed, *args)
    if via_entry.returncode != 0:
        assert (via_entry.returncode, via_entry.stderr) == (in_full.returncode, in_full.stderr)


def test_a_bead_under_an_epic_a_convoy_tracks_joins_it_through_the_full_path(
        warmed: Path) -> None:
    epic = ok("bead", "create", "Epic", "-t", "epic")
    convoy_id = ok("create", "Tracked", epic).split()[-1]
    assert quickcreate.answer(["bead", "create", "Grown", "--parent", epic],
                              start=str(warmed)) is None
    proc, modules = entry_point(warmed, "bead", "create", "Grown", "--parent", epic)
    assert proc.returncode == 0 and "pygit2" in heavy(modules)
    assert f"joins convoy {convoy_id}" in proc.stderr or "joins convoy" in proc.stderr


def test_counts_kept_for_an_older_tree_are_followed_to_this_one(warmed: Path) -> None:
    """Another command wrote since the last create (a close, a whole batch): the totals are
    followed through the folders that differ, as the store follows them."""
    batch = warmed / "batch.json"
    batch.write_text('[{"title": "one"}, {"title": "two"}, {"title": "three"}]')
    made = ok("bead", "create", "--batch", str(batch)).split()
    counts_file = warmed / ".git" / "convoy" / "counts"
    kept = counts_file.read_text()
    ok("bead", "close", made[0])
    ok("bead", "delete", made[1])
    assert full(warmed, "bead", "create", "Made while the counts were not kept").returncode == 0
    counts_file.write_text(kept)  # as a command that keeps no count would leave them
    proc, modules = entry_point(warmed, "bead", "create", "Follows")
    assert proc.returncode == 0 and heavy(modules) == [], proc.stderr
    tree = git("rev-parse", f"{STATE_REF}^{{tree}}", cwd=warmed)
    total = len(git("ls-tree", "-r", "--name-only", tree, "beads", cwd=warmed).split())
    assert counts_file.read_text().split()[1:3] == [tree, str(total)]


def test_no_counts_kept_send_an_id_less_create_to_the_full_path(warmed: Path) -> None:
    (warmed / ".git" / "convoy" / "counts").unlink()
    before = git("rev-parse", STATE_REF, cwd=warmed)
    assert quickcreate.answer(["bead", "create", "Needs a count"], start=str(warmed)) is None
    assert git("rev-parse", STATE_REF, cwd=warmed) == before
    ok("bead", "create", "Counted again")
    assert quickcreate.answer(["bead", "create", "Counted"], start=str(warmed)) is not None


def test_an_explicit_id_goes_the_full_way_which_checks_every_cycle_through_it(
        warmed: Path) -> None:
    """An old bead may name a dangling id as its blocker: the new bead closes that cycle."""
    assert quickcreate.answer(["bead", "create", "Named", "--id", "t-named"],
                              start=str(warmed)) is None


def test_a_ref_moved_after_the_read_is_not_overwritten(warmed: Path) -> None:
    base = git("rev-parse", STATE_REF, cwd=warmed)
    ok("bead", "create", "Moves it")
    moved = git("rev-parse", STATE_REF, cwd=warmed)
    assert not quickwrite.update_ref(str(warmed / ".git"), STATE_REF, base, base, "x")
    assert git("rev-parse", STATE_REF, cwd=warmed) == moved


def test_fault_tests_get_the_store_they_aim_at(warmed: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVOY_FAULT", "store.after_objects")
    assert quickcreate.answer(["bead", "create", "x"], start=str(warmed)) is None


def test_concurrent_creates_through_the_entry_point_all_land(warmed: Path) -> None:
    def create(n: int) -> str:
        proc = subprocess.run(["git", "convoy", "bead", "create", f"Racer {n}"], cwd=warmed,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(create, range(18)))
    assert len(set(made)) == 18
    listed = ok("bead", "list")
    assert all(bead_id in listed for bead_id in made)
    assert git("fsck", "--strict", "--no-dangling", cwd=warmed) == ""


# No NUL: no command-line argument can hold one.
TITLES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0",
                               max_codepoint=0x2FFF), min_size=1, max_size=30)
TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                min_size=1, max_size=80)
LABELS = st.lists(st.text("abcxyz-_:", min_size=1, max_size=6), max_size=3)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=TITLES, kind=st.sampled_from(["task", "bug", "epic", "chore", "x"]),
       priority=st.sampled_from(["0", "4", "2", "7", "1 "]), description=st.none() | TEXTS,
       assignee=st.none() | TITLES, labels=LABELS, rig=st.none() | st.just("web"),
       with_parent=st.booleans(), with_dep=st.booleans(), number=st.integers(0, 10**6))
def test_quick_and_full_creates_make_the_same_commit(
        warmed: Path, monkeypatch: pytest.MonkeyPatch, title: str, kind: str, priority: str,
        description: str | None, assignee: str | None, labels: list[str], rig: str | None,
        with_parent: bool, with_dep: bool, number: int) -> None:
    for name, value in PINNED.items():
        monkeypatch.setenv(name, value)
    if not list((warmed / ".git" / "convoy").glob("epic")):
        (warmed / ".git" / "convoy" / "epic").write_text(ok("bead", "create", "E", "-t", "epic"))
    epic = (warmed / ".git" / "convoy" / "epic").read_text()
    first = git("log", "--reverse", "--format=%s", STATE_REF, cwd=warmed).splitlines()[1]
    dep = first.split()[2].rstrip(":")
    monkeypatch.setenv("CONVOY_ID_SALT", f"salt{number}")
    args = ["bead", "create", title, "-t", kind, f"--priority={priority}"]
    for flag, value in (("-d", description), ("--assignee", assignee), ("--rig", rig),
                        ("--parent", epic if with_parent else None),
                        ("--dep", dep if with_dep else None)):
        if value is not None:
            args += [flag, value]
    for label in labels:
        args += ["-l", label]
    base = git("rev-parse", STATE_REF, cwd=warmed)
    quick = quickcreate.answer(args, start=str(warmed))
    quick_commit = git("rev-parse", STATE_REF, cwd=warmed)
    git("update-ref", STATE_REF, base, cwd=warmed)
    in_full = full(warmed, *args, env={**PINNED, "CONVOY_ID_SALT": f"salt{number}"})
    full_commit = git("rev-parse", STATE_REF, cwd=warmed)
    if quick is None:
        assert quick_commit == base, "nothing written when it gives up"
        values = [title, description or "x", assignee or "x", *labels]
        assert in_full.returncode != 0 or any(v.startswith("-") for v in values), \
            "only a mistake, or a value click may read as an option, goes the full way"
        return
    assert in_full.returncode == 0, in_full.stderr
    assert full_commit == quick_commit, "the same tree, author, committer and message"
    assert quick[1] == in_full.stdout


def test_no_hook_runs_for_the_state_write_as_with_libgit2(warmed: Path) -> None:
    """A state write must not fire the user's reference-transaction hook because of how it
    was made: libgit2 runs none, and neither does the quick create's update-ref."""
    hooks = warmed / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / "reference-transaction"
    hook.write_text(f"#!/bin/sh\necho \"$1\" >> '{warmed / 'fired'}'\n")
    hook.chmod(0o755)
    git("update-ref", "refs/heads/probe", "HEAD", cwd=warmed)
    assert (warmed / "fired").exists(), "the hook itself works"
    (warmed / "fired").unlink()
    proc, modules = entry_point(warmed, "bead", "create", "Hookless")
    assert proc.returncode == 0 and heavy(modules) == [], proc.stderr
    assert not (warmed / "fired").exists()


def test_a_shared_repository_is_left_to_libgit2(warmed: Path) -> None:
    """core.sharedRepository sets the modes of new files: the quick create does not guess."""
    git("config", "core.sharedRepository", "group", cwd=warmed)
    entry_point(warmed, "bead", "list")  # a full read remembers the new config
    assert quickcreate.answer(["bead", "create", "Shared"], start=str(warmed)) is None
    assert entry_point(warmed, "bead", "create", "Shared")[0].returncode == 0


@pytest.mark.parametrize("name", ["Ann <ann@x>", " Padded", "Bob\tSmith"])
def test_an_identity_libgit2_would_refuse_or_trim_goes_the_full_way(
        warmed: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", name)
    if "\t" in name:  # libgit2 keeps a tab: so does the quick create
        assert quickcreate.answer(["bead", "create", "Tabbed"], start=str(warmed))
        return
    before = git("rev-parse", STATE_REF, cwd=warmed)
    assert quickcreate.answer(["bead", "create", "Who?"], start=str(warmed)) is None
    assert git("rev-parse", STATE_REF, cwd=warmed) == before
