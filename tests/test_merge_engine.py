"""The refinery's merge is git's merge (issue 11): the landed tree is the one `git merge`
records, and a conflict is reported exactly when git reports one, with git's files.

The witness is always a real `git merge` in a checkout of the target, never the engine's own
mechanism. The full replay of real and synthetic history is bench/merge_corpus.py; here run
the changelog case that landed entries under the wrong heading, attributes and merge
drivers, renames, the fallback for git < 2.38, and a small synthetic history.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pygit2
import pytest
from conftest import git, ok
from test_refinery_helpers import add_rig, file_at, hand_dispatch, mrs, new_task, worker_commit

from gitconvoy.git import gitcli, treemerge
from gitconvoy.land import landing
from gitconvoy.state.model import touched
from gitconvoy.state.store import Store

BENCH = Path(__file__).resolve().parents[1] / "bench"

HEADER = [".. currentmodule:: proj", ""]
RELEASED = ["Version 2.1.0", "-------------", "", "Released 2024-05-01", "",
            "-   Add ``--color`` to the ``show`` command.", ""]
FIXES = ["-   Fix the pager on Windows. :issue:`101`",
         "-   Completion of ``Choice`` values is quoted.", "    :issue:`102`"]


def unreleased(version: str, body: list[str]) -> list[str]:
    return [f"Version {version}", "-------------", "", "Unreleased", *body]


# The shape of a real "merge stable into main" (pallets/click, #3479): the base has an empty
# 2.1.1 block with three blank lines; main opens 2.2.0 above it and leaves two blank lines in
# each; stable adds its fixes to 2.1.1. git puts the fixes under 2.1.1; libgit2's default
# diff aligns 2.1.1 of the base with 2.2.0 of main and lands them under 2.2.0, cleanly.
CHANGELOG_BASE = HEADER + unreleased("2.1.1", ["", "", ""]) + RELEASED
CHANGELOG_MAIN = HEADER + unreleased("2.2.0", ["", ""]) + unreleased("2.1.1", ["", ""]) + RELEASED
CHANGELOG_STABLE = HEADER + unreleased("2.1.1", ["", *FIXES, "", ""]) + RELEASED


def text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def commit_files(repo: Path, files: dict[str, str | None], message: str) -> str:
    for name, content in files.items():
        path = repo / name
        if content is None:
            git("rm", "-q", name, cwd=repo)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        git("add", name, cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def git_merge(repo: Path, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """The witness: `git merge` of `theirs` in a fresh checkout of `ours`; (tree, []) when
    clean, else (None, git's unmerged files)."""
    wt = repo.parent / f"witness-{ours[:8]}-{theirs[:8]}"
    git("worktree", "add", "-q", "--detach", str(wt), ours, cwd=repo)
    try:
        res = subprocess.run(["git", "merge", "-q", "--no-ff", "--no-commit", theirs], cwd=wt,
                             capture_output=True, text=True)
        if res.returncode == 0:
            return git("write-tree", cwd=wt), []
        names = git("diff", "--name-only", "-z", "--diff-filter=U", cwd=wt)
        return None, sorted({n for n in names.split("\0") if n})
    finally:
        git("worktree", "remove", "--force", str(wt), cwd=repo)


def land(repo: Path, ours: str, theirs: str, strategy: str = "merge") -> landing.Merged:
    return landing.merge_in_memory(Store(pygit2.Repository(str(repo))), ours, theirs,
                                   strategy, "land\n")


def tree_of(repo: Path, commit: str) -> str:
    return git("rev-parse", f"{commit}^{{tree}}", cwd=repo)


@pytest.fixture
def changelog(repo: Path) -> tuple[Path, str, str]:
    """main and stable diverged from the base changelog as in the click merge."""
    commit_files(repo, {"CHANGES.rst": text(CHANGELOG_BASE)}, "changelog")
    git("branch", "stable", cwd=repo)
    main = commit_files(repo, {"CHANGES.rst": text(CHANGELOG_MAIN)}, "start 2.2.0")
    git("checkout", "-q", "stable", cwd=repo)
    stable = commit_files(repo, {"CHANGES.rst": text(CHANGELOG_STABLE)}, "fixes")
    git("checkout", "-q", "main", cwd=repo)
    return repo, main, stable


# --- the changelog case -----------------------------------------------------------------


def test_the_changelog_case_trips_libgit2s_default_diff(changelog):
    """Keeps the case honest: the engine the refinery used before lands another tree,
    without a conflict, so the next test would fail on it."""
    repo, main, stable = changelog
    witness, _ = git_merge(repo, main, stable)
    lib = pygit2.Repository(str(repo))
    index = lib.merge_commits(main, stable)
    assert index.conflicts is None
    assert str(index.write_tree(lib)) != witness


@pytest.mark.parametrize("strategy", ["merge", "squash"])
def test_the_changelog_case_lands_gits_tree(changelog, strategy):
    repo, main, stable = changelog
    witness, _ = git_merge(repo, main, stable)
    merged = land(repo, main, stable, strategy)
    assert merged.kind == "merged"
    assert tree_of(repo, merged.commit) == witness
    landed = git("show", f"{merged.commit}:CHANGES.rst", cwd=repo).splitlines()
    assert landed.index(FIXES[0]) > landed.index("Version 2.1.1") > landed.index("Version 2.2.0")


def test_a_user_lands_the_stable_fixes_under_their_own_heading(changelog):
    """As a user: stable's fixes are done on a work branch and land through the refinery."""
    repo, main, stable = changelog
    ok("init", "--prefix", "t")
    add_rig()
    bead = new_task("Merge stable into main")
    branch = hand_dispatch(repo, bead)
    git("branch", "-f", branch, stable, cwd=repo)
    # the work grows from where stable left main: that is the base the refinery checks
    fork = git("merge-base", main, stable, cwd=repo)
    Store.open(str(repo)).transact(
        lambda tx: tx.put(touched(tx.bead(bead), base_commit=fork)), "base at the fork")
    worker_commit(repo, branch, {"NOTES": "stable merged\n"})
    ok("done", bead)
    ok("refinery", "run")
    [mr] = mrs().values()
    assert mr.status == "merged"
    landed = file_at(repo, "main", "CHANGES.rst").splitlines()
    assert landed.index(FIXES[0]) > landed.index("Version 2.1.1")


# --- attributes, merge drivers, renames -------------------------------------------------


def test_attributes_come_from_the_target_not_from_the_users_checkout(repo):
    """`merge=union` committed on the target: git merge on a checkout of the target keeps
    both lines, whatever branch the user has checked out."""
    commit_files(repo, {".gitattributes": "NEWS merge=union\n", "NEWS": "one\n"}, "base")
    git("checkout", "-q", "-b", "work", cwd=repo)
    work = commit_files(repo, {"NEWS": "one\nfrom work\n"}, "work")
    git("checkout", "-q", "main", cwd=repo)
    main = commit_files(repo, {"NEWS": "one\nfrom main\n"}, "main")
    git("checkout", "-q", "--orphan", "elsewhere", cwd=repo)  # no attributes in the checkout
    git("rm", "-rfq", ".", cwd=repo)
    witness, files = git_merge(repo, main, work)
    assert files == []
    merged = land(repo, main, work)
    assert tree_of(repo, merged.commit) == witness
    assert file_at(repo, merged.commit, "NEWS").splitlines() == ["one", "from main", "from work"]


def test_union_in_the_users_checkout_does_not_hide_a_conflict_on_the_target(repo):
    commit_files(repo, {"NEWS": "one\n"}, "base")
    git("checkout", "-q", "-b", "work", cwd=repo)
    work = commit_files(repo, {"NEWS": "one\nfrom work\n"}, "work")
    git("checkout", "-q", "main", cwd=repo)
    main = commit_files(repo, {"NEWS": "one\nfrom main\n"}, "main")
    git("checkout", "-q", "-b", "mine", cwd=repo)
    commit_files(repo, {".gitattributes": "NEWS merge=union\n"}, "my attributes")
    assert git_merge(repo, main, work) == (None, ["NEWS"])
    merged = land(repo, main, work)
    assert (merged.kind, merged.files) == ("conflict", ["NEWS"])


def test_a_configured_merge_driver_runs_as_in_git_merge(repo):
    """A driver that keeps our side (`true`): git merge is clean, so the landing is too;
    libgit2 never runs drivers and would have reported a conflict."""
    git("config", "merge.keep-ours.driver", "true", cwd=repo)
    commit_files(repo, {".gitattributes": "*.lock merge=keep-ours\n", "deps.lock": "a=1\n"},
                 "base")
    git("checkout", "-q", "-b", "work", cwd=repo)
    work = commit_files(repo, {"deps.lock": "a=2\n"}, "work")
    git("checkout", "-q", "main", cwd=repo)
    main = commit_files(repo, {"deps.lock": "a=3\n"}, "main")
    witness, _ = git_merge(repo, main, work)
    merged = land(repo, main, work)
    assert merged.kind == "merged" and tree_of(repo, merged.commit) == witness
    assert file_at(repo, merged.commit, "deps.lock") == "a=3"


def test_a_conflict_names_the_files_git_names_after_a_move(repo):
    """main moves app.py into src/ and edits it; the work edits the same line at the old
    path, and deletes a file main changed: git names src/app.py and gone.txt."""
    body = "".join(f"line{n} = {n}\n" for n in range(12))
    commit_files(repo, {"app.py": "x = 1\n" + body, "gone.txt": "a\n"}, "base")
    git("checkout", "-q", "-b", "work", cwd=repo)
    work = commit_files(repo, {"app.py": "x = 10\n" + body, "gone.txt": None}, "work")
    git("checkout", "-q", "main", cwd=repo)
    (repo / "src").mkdir()
    git("mv", "app.py", "src/app.py", cwd=repo)
    main = commit_files(repo, {"src/app.py": "x = 11\n" + body, "gone.txt": "b\n"}, "move")
    witness = git_merge(repo, main, work)
    assert witness == (None, ["gone.txt", "src/app.py"])
    merged = land(repo, main, work)
    assert (merged.kind, merged.files) == ("conflict", witness[1])


def test_fast_forward_only_and_already_merged_do_not_merge(changelog):
    repo, main, stable = changelog
    assert land(repo, main, stable, "ff-only").kind == "not_ff"
    assert land(repo, stable, git("rev-parse", "stable~1", cwd=repo), "merge").kind == "already"
    assert land(repo, git("rev-parse", "stable~1", cwd=repo), stable, "ff-only").kind == "ff"


def test_merge_tree_output_is_split_into_tree_files_and_message_paths():
    """What git 2.39 prints with --name-only -z: the tree, the files, an empty field, then
    per message its path count, paths, type and text."""
    out = ("0123abcd\0A2\0B\0\0"
           "1\0A2\0Auto-merging\0Auto-merging A2\n\0"
           "2\0B\0C\0CONFLICT (rename/delete)\0CONFLICT (rename/delete): …\n\0")
    assert treemerge.parse_merge_tree(out) == ("0123abcd", ["A2", "B"], ["A2", "B", "C"])
    assert treemerge.parse_merge_tree("0123abcd\n") == ("0123abcd", [], [])


# --- the fallback for git < 2.38 --------------------------------------------------------


@pytest.mark.parametrize(("shown", "version"), [
    ("git version 2.39.5\n", (2, 39, 5)),
    ("git version 2.45.1.windows.1\n", (2, 45, 1)),
    ("git version 2.37.1 (Apple Git-137.1)\n", (2, 37, 1)),
    ("git version 3.0\n", (3, 0, 0)),
    ("no version here", (0, 0, 0)),
])
def test_the_git_version_is_read_from_what_git_prints(shown, version):
    assert gitcli.parse_version(shown) == version


def test_git_2_38_and_later_merge_with_merge_tree(monkeypatch):
    monkeypatch.setattr(gitcli, "git_version", lambda: (2, 38, 0))
    assert treemerge.default_engine() is treemerge.Engine.ORT
    monkeypatch.setattr(gitcli, "git_version", lambda: (2, 37, 9))
    assert treemerge.default_engine() is treemerge.Engine.LIBGIT2


def test_older_git_falls_back_to_libgit2_with_patience(changelog, monkeypatch):
    repo, main, stable = changelog
    witness, _ = git_merge(repo, main, stable)
    monkeypatch.setattr(gitcli, "git_version", lambda: (2, 30, 0))
    store = Store(pygit2.Repository(str(repo)))
    result = treemerge.merge_commits(store, main, stable)
    assert (result.engine, result.tree) == (treemerge.Engine.LIBGIT2, witness)
    merged = land(repo, main, stable)
    assert tree_of(repo, merged.commit) == witness


# --- a small synthetic history, replayed ------------------------------------------------


def _synthetic_history():
    spec = importlib.util.spec_from_file_location("synthetic_history",
                                                  BENCH / "synthetic_history.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_conflicts(message: str) -> list[str]:
    _, marker, rest = message.partition("\n\nConflicts:\n")
    return sorted(line.strip() for line in rest.splitlines() if line.strip()) if marker else []


def test_a_synthetic_history_replays_as_git_merged_it(tmp_path):
    """Every merge of a small generated history (changelog blocks, moved and copied
    functions, blank-line edits; made with real `git merge`): a clean one lands with the
    recorded tree, a conflicting one is refused with the files git listed then."""
    folder = _synthetic_history().build(tmp_path / "history", merges=20, seed=11)
    lib = pygit2.Repository(str(folder))
    clean = conflicts = 0
    for line in git("rev-list", "--merges", "--parents", "main", "stable", cwd=folder).splitlines():
        merge, ours, theirs = line.split()
        expected = recorded_conflicts(lib[merge].message)
        merged = land(folder, ours, theirs)
        if expected:
            conflicts += 1
            assert (merged.kind, merged.files) == ("conflict", expected), merge
        else:
            clean += 1
            assert merged.kind in ("merged", "ff"), merge
            assert tree_of(folder, merged.commit) == str(lib[merge].tree_id), merge
    assert clean >= 10 and conflicts >= 1
