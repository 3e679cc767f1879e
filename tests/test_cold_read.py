"""The cold read: `ready` with no cache at all, answered without click or pygit2
(gitconvoy.commands.coldread), prints what the full read prints and leaves the caches the
full read leaves, written by a detached child once the answer is out.

The story: with .git/convoy/cache gone, `git convoy ready` reads every state file from the
object files, prints the full read's bytes, and its child writes the same read cache, the
same stored answer and the same remembered ref, so the next read is warm; anything it does
not read exactly (a cache to patch, a configured convoy.ref, borrowed objects, a gitlink)
goes the full way. Equality with the full read is checked on generated states with broken,
misplaced and odd files, loose and packed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import STATE_REF, convoy, git, ok
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_bad_input import BROKEN, plant
from test_warm_read import a_plan, cache_dir, heavy, run, same, warm_imports

from gitconvoy.commands import coldread
from gitconvoy.state import answers, cache, model, reffiles, treeload
from gitconvoy.state.codec import dump_yaml
from gitconvoy.state.layout import MAX_DEPTH, object_path
from gitconvoy.state.objectfiles import ObjectFiles, Unsure
from gitconvoy.state.snapshot import parse_all

READS = [("ready",), ("ready", "--json"), ("ready", "-n", "2"), ("ready", "--limit=1", "--json")]


@pytest.fixture(autouse=True)
def only_known_git_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cold path steps aside for any GIT_* variable it does not know; CI may set some."""
    for name in list(os.environ):
        if name.startswith("GIT_") and name not in reffiles.HARMLESS_GIT_ENV:
            monkeypatch.delenv(name)


def no_cache(repo: Path) -> None:
    coldread.wait_for_writer(str(repo / ".git"))
    shutil.rmtree(cache_dir(repo), ignore_errors=True)


def cache_files(repo: Path) -> dict[str, bytes]:
    coldread.wait_for_writer(str(repo / ".git"))
    return {p.name: p.read_bytes() for p in sorted(cache_dir(repo).iterdir())}


def cold(repo: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """A read through the entry point with no cache, and the modules it loaded."""
    no_cache(repo)
    return warm_imports(repo, *args)


# --- through the entry point --------------------------------------------------------------


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_cold_read_prints_what_the_full_read_prints_and_leaves_the_same_caches(
        state_repo: Path, args: tuple[str, ...]) -> None:
    a_plan(state_repo)
    no_cache(state_repo)
    full = convoy(*args)  # in process: the full path, which writes the caches
    assert full.code == 0
    want = cache_files(state_repo)
    assert set(want) == {"snapshot.json", "ready.answer", "refs"}
    got, loaded = cold(state_repo, *args)
    assert "pygit2" not in loaded and "click" not in loaded  # YAML: the escaped title's
    assert (got.returncode, got.stdout.decode(), got.stderr.decode()) == \
        (0, full.out, full.err)
    got_files = cache_files(state_repo)  # once its child is done
    assert got_files.pop("snapshot.json") == want.pop("snapshot.json")  # byte for byte
    assert got_files.pop("ready.answer") == want.pop("ready.answer")
    # The ref's name, remembered with the config files libgit2 reads (this process's pygit2
    # has its search path from the HOME it started with: its list is tested apart, below).
    assert reffiles.recall(reffiles.find_repository(str(state_repo))) == STATE_REF
    warm, loaded = warm_imports(state_repo, *args)
    assert heavy(loaded) == [] and same(warm, got)
    assert "gitconvoy.commands.coldread" not in loaded  # served from the stored answer


def test_broken_files_are_warned_about_on_the_cold_path_too(state_repo: Path) -> None:
    ok("bead", "create", "Fine")
    for n, (content, _) in enumerate(BROKEN.values()):
        plant(state_repo, object_path("beads", f"t-bad{n}"), content.replace("t-bad", f"t-bad{n}"))
    plant(state_repo, "beads/t-flat.yaml", "id: t-flat\ntitle: Flat\n")
    plant(state_repo, "convoy.yaml", "schema: 1\nprefix: t\nrigs: [1]\n")
    no_cache(state_repo)
    full = convoy("ready")
    got, loaded = cold(state_repo, "ready")
    assert "pygit2" not in loaded and "click" not in loaded
    assert (got.stdout.decode(), got.stderr.decode()) == (full.out, full.err)
    assert full.err.count("warning: skipped") == len(BROKEN) + 2


def test_a_state_in_the_stores_layout_reads_cold_without_yaml(state_repo: Path) -> None:
    epic = ok("bead", "create", "Checkout", "-t", "epic")
    ok("bead", "create", "Pay: the bill", "--parent", epic, "-l", "ui", "-a", "alice",
       "-d", "two\nlines")
    ok("bead", "close", ok("bead", "create", "Done"))
    got, loaded = cold(state_repo, "ready")
    assert heavy(loaded) == [] and got.stdout.count(b"\n") == 1


def test_nothing_ready_is_said_on_stderr_cold_too(state_repo: Path) -> None:
    got, loaded = cold(state_repo, "ready")
    assert heavy(loaded) == [] and got.stdout == b""
    assert got.stderr == b"nothing is ready\n"


def test_a_linked_worktree_reads_cold_and_the_same(state_repo: Path) -> None:
    a_plan(state_repo)
    other = state_repo.parent / "linked"
    git("worktree", "add", "-q", str(other), "-b", "side", cwd=state_repo)
    sub = other / "deep" / "er"
    sub.mkdir(parents=True)
    main_cold, _ = cold(state_repo, "ready")
    no_cache(state_repo)  # the common git dir's, which the linked worktree shares
    linked, loaded = warm_imports(sub, "ready")
    assert "pygit2" not in loaded and same(linked, main_cold)
    coldread.wait_for_writer(str(state_repo / ".git"))
    assert (cache_dir(state_repo) / "snapshot.json").exists()


def test_the_answer_comes_before_the_caches(state_repo: Path) -> None:
    """The caches are the detached child's: the command has returned (its output closed)
    while they may not be there yet, and every file is whole once the writer lock is free."""
    a_plan(state_repo)
    got, _ = cold(state_repo, "ready")
    assert got.returncode == 0 and got.stdout
    coldread.wait_for_writer(str(state_repo / ".git"))
    store_dir = str(state_repo / ".git")
    commit = git("rev-parse", STATE_REF)
    assert answers.load(store_dir, "ready", commit) is not None
    assert Path(cache.cache_file(store_dir)).exists()
    assert reffiles.recall(reffiles.find_repository(str(state_repo))) == STATE_REF
    assert (state_repo / ".git" / "convoy" / "cold-writer.lock").exists()


# --- what it leaves to the full read -----------------------------------------------------------


def took_the_full_path(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc, loaded = warm_imports(repo, *args)
    assert "pygit2" in loaded, "the cold read answered what it should leave to the full one"
    return proc


def test_a_read_cache_on_disk_is_patched_by_the_full_path(state_repo: Path) -> None:
    a_plan(state_repo)
    ok("bead", "list")  # a snapshot cache
    (cache_dir(state_repo) / "ready.answer").unlink(missing_ok=True)
    full = took_the_full_path(state_repo, "ready")
    assert full.returncode == 0


@pytest.mark.parametrize("config", [
    "[convoy]\n\tref = refs/heads/convoy/state\n",
    "[Convoy]\n\tref = refs/heads/convoy/state\n",
    "[convoy \"x\"]\n\tref = elsewhere\n",
    "[ convoy ]\n",
    "[core]\n\tbare = false\n[convoy]ref=refs/heads/convoy/state\n",
])
@pytest.mark.parametrize("where", ["local", "global", "included"])
def test_a_convoy_section_in_any_config_file_takes_the_full_path(
        state_repo: Path, config: str, where: str) -> None:
    """convoy.ref may be set there: only pygit2 resolves it as the full read does."""
    a_plan(state_repo)
    if where == "local":
        target = state_repo / ".git" / "config"
    elif where == "global":
        target = Path(os.environ["GIT_CONFIG_GLOBAL"])
    else:
        target = state_repo.parent / "extra.cfg"
        git("config", "include.path", str(target), cwd=state_repo)
    with open(target, "a") as fh:
        fh.write(config)
    no_cache(state_repo)
    assert coldread.answer(["ready"], str(state_repo)) is None
    if config.startswith("[convoy]") or config.startswith("[Convoy]"):
        assert took_the_full_path(state_repo, "ready").returncode == 0


def test_a_merge_driver_named_convoy_is_no_convoy_section(state_repo: Path) -> None:
    a_plan(state_repo)
    git("config", "merge.convoy.driver", "git convoy merge-driver %O %A %B", cwd=state_repo)
    got, loaded = cold(state_repo, "ready")
    assert "pygit2" not in loaded and got.returncode == 0


def test_borrowed_objects_take_the_full_path(state_repo: Path, tmp_path: Path) -> None:
    a_plan(state_repo)
    clone = tmp_path / "shared"
    git("clone", "-q", "--shared", str(state_repo), str(clone))
    git("fetch", "-q", "origin", f"{STATE_REF}:{STATE_REF}", cwd=clone)
    want = run(state_repo, "ready")
    no_cache(clone)
    got = took_the_full_path(clone, "ready")
    assert same(got, want)


def test_a_gitlink_among_the_beads_takes_the_full_path(state_repo: Path) -> None:
    a_plan(state_repo)
    head = git("rev-parse", "HEAD")
    index = {"GIT_INDEX_FILE": str(state_repo / ".git" / "gitlink-index")}
    git("read-tree", STATE_REF, env=index)
    git("update-index", "--add", "--cacheinfo", f"160000,{head},{object_path('beads', 't-sub')}",
        env=index)
    commit = git("commit-tree", git("write-tree", env=index), "-p", STATE_REF, "-m", "sub")
    git("update-ref", STATE_REF, commit)
    no_cache(state_repo)
    full = convoy("ready")
    no_cache(state_repo)
    assert coldread.answer(["ready"], str(state_repo)) is None
    got = took_the_full_path(state_repo, "ready")
    assert (got.stdout.decode(), got.stderr.decode()) == (full.out, full.err)
    assert "t-sub.yaml: is not a file" in full.err


def test_the_config_files_are_the_ones_libgit2_reads(state_repo: Path, tmp_path: Path) -> None:
    """reffiles finds them as libgit2 does; pygit2 answers here, in a process of its own per
    environment (libgit2 reads its search path once)."""
    script = ("import json, os; import pygit2; from gitconvoy.state import answers, reffiles; "
              "p = reffiles.find_repository(os.getcwd()); "
              "print(json.dumps([answers._libgit2_config_files(p), "
              "reffiles.libgit2_config_files(p)]))")
    for extra in ({}, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")},
                  {"HOME": str(tmp_path / "elsewhere")}):
        env = {**os.environ, **extra}
        out = subprocess.run([sys.executable, "-c", script], cwd=state_repo, env=env,
                             capture_output=True, text=True, check=True).stdout
        theirs, ours = json.loads(out)
        assert ours == theirs, extra


# --- the two reads agree: in process, on generated states -----------------------------------

TITLES = ["Plain", "Task 12: part 3 of epic 1", "yes", "it's", "é中", "a" * 120, "x\ny\n",
          "  padded", "#hash", "Esc \x1b[2J", "", "2026-11-30"]
BEADS = st.builds(
    lambda bead_id, title, kind, status, priority, labels, parent, deps, description: {
        "id": bead_id, "title": title, "type": kind, "status": status, "priority": priority,
        "labels": labels, "parent": parent, "deps": deps, "description": description,
        **({"closed_at": "2026-11-30T12:45:25.807200Z"} if status == "closed" else {}),
        "created_at": "2026-11-30T12:45:25.807200Z"},
    st.sampled_from([f"g-{n}" for n in range(8)]),
    st.sampled_from(TITLES),
    st.sampled_from(model.BEAD_TYPES), st.sampled_from(model.BEAD_STATUSES),
    st.integers(0, 4), st.lists(st.sampled_from(["ui", "db", "a b"]), max_size=2),
    st.one_of(st.none(), st.sampled_from(["g-0", "g-1", "gone"])),
    st.lists(st.builds(lambda on, kind: {"on": on, "type": kind},
                       st.sampled_from(["g-0", "g-2", "g-5", "gone"]),
                       st.sampled_from(model.DEP_TYPES)), max_size=2, unique_by=str),
    st.one_of(st.none(), st.sampled_from(["one\n\ntwo\n", "line", "tab\there"])))
ODD = [
    *(content.encode() for content, _ in BROKEN.values()),
    b"id: t-bad\ntitle: x\ndispatch:\n  rig: r1\n  attempts: 2\n",  # the generic path's
    b"id: t-bad\ntitle: x\r\n", b"id: t-bad\ntitle: 'x'\n", b"\xff\xfeid: t-bad\n",
    b"id: t-bad\ntitle: ok\nlabels:\n- 'true'\n", b"id: t-bad\ntitle: \xc3\n",
]


@st.composite
def states(draw: st.DrawFn) -> dict[str, tuple[int, bytes]]:
    """A state tree: beads as the store writes them, some at the wrong path, broken and odd
    files, symlinks, deep folders and stray files; sometimes a broken convoy.yaml."""
    files: dict[str, tuple[int, bytes]] = {
        "convoy.yaml": (0o100644, draw(st.sampled_from([
            b"schema: 1\nprefix: t\n", b"schema: 1\nprefix: t\n",
            b"schema: 1\nprefix: t\nrigs: [1]\n"]))),
    }
    for value in draw(st.lists(BEADS, max_size=8, unique_by=lambda v: v["id"])):
        data = {k: v for k, v in value.items() if v not in (None, [])}
        try:
            raw = dump_yaml({k: data[k] for k in model.Bead.ORDER if k in data})
        except Exception:  # noqa: BLE001 - a value PyYAML cannot write is no file
            continue
        path = object_path("beads", value["id"])
        if draw(st.integers(0, 9)) == 0:
            path = f"beads/{value['id']}.yaml"  # misplaced
        files[path] = (draw(st.sampled_from([0o100644, 0o100644, 0o100755, 0o120000])), raw)
    for n, content in enumerate(draw(st.lists(st.sampled_from(ODD), max_size=3))):
        bead_id = f"t-odd{n}"
        raw = content.replace(b"t-bad", bead_id.encode())
        files[object_path("beads", bead_id)] = (0o100644, raw)
    if draw(st.integers(0, 9)) == 0:
        del files["convoy.yaml"]  # not a state: named, and read with the defaults
    if draw(st.integers(0, 9)) == 0:
        files["mrs"] = (0o100644, b"a file where a folder belongs\n")
    if draw(st.booleans()):
        files["beads/" + "/".join("d" * (MAX_DEPTH + 2)) + "/t-deep.yaml"] = \
            (0o100644, b"id: t-deep\ntitle: Deep\n")
        files["beads/notes.txt"] = (0o100644, b"not a state file\n")
        files["convoys/c-1.yaml"] = (0o100644, draw(st.sampled_from([
            b"id: c-1\ntitle: A convoy\ntracks:\n- g-0\n", b"id: c-1\ntitle: [\n"])))
    return files


def put_state(repo: Path, files: dict[str, tuple[int, bytes]]) -> str:
    """Commit exactly these files as the state (plain pygit2 objects, loose)."""
    git_repo = pygit2.Repository(str(repo))
    index = pygit2.Index()
    for path, (mode, data) in files.items():
        index.add(pygit2.IndexEntry(path, git_repo.create_blob(data), mode))
    tree = index.write_tree(git_repo)
    who = pygit2.Signature("Test", "test@example.com")
    parent = git_repo.references[STATE_REF].target
    return str(git_repo.create_commit(STATE_REF, who, who, "generated", tree, [parent]))


def both_loads(repo: Path, commit: str) -> tuple[Any, Any]:
    git_repo = pygit2.Repository(str(repo))
    full = parse_all(git_repo, git_repo[commit].peel(pygit2.Tree))
    objects = ObjectFiles(str(repo / ".git" / "objects"))
    return full, treeload.load(objects, treeload.state_tree(objects, commit))


@given(states(), st.booleans())
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_cold_read_prints_and_loads_what_the_full_read_does(
        state_repo: Path, files: dict[str, tuple[int, bytes]], packed: bool) -> None:
    commit = put_state(state_repo, files)
    if packed:
        git("repack", "-adfq", "--depth=10")
    full_load, cold_load = both_loads(state_repo, commit)
    event(f"{len(full_load.errors)} broken, {len(full_load.objects['beads'])} beads")
    assert cold_load.tree == full_load.tree and cold_load.config == full_load.config
    assert [(k, list(v.items())) for k, v in cold_load.objects.items()] == \
        [(k, list(v.items())) for k, v in full_load.objects.items()]
    assert [(p, e.message) for p, e in cold_load.errors.items()] == \
        [(p, e.message) for p, e in full_load.errors.items()]
    assert cache.encode(cold_load) == cache.encode(full_load)
    for args in READS:
        no_cache(state_repo)
        got = coldread.answer(list(args), str(state_repo))
        assert got is not None, "the cold read stepped aside"
        texts, _ = got  # its writes are the entry point's to start
        no_cache(state_repo)
        full = convoy(*args)
        assert full.code == 0
        assert (texts[0] + texts[2], texts[1]) == (full.err, full.out), args


def test_a_file_the_cold_read_does_not_word_is_unreadable_not_wrong(state_repo: Path) -> None:
    """A folder where a file belongs, a file over the cap: the full read words them."""
    commit = put_state(state_repo, {"convoy.yaml": (0o100644, b"schema: 1\nprefix: t\n"),
                                    object_path("beads", "t-big"): (0o100644, b"x" * (1 << 21))})
    objects = ObjectFiles(str(state_repo / ".git" / "objects"))
    with pytest.raises(Unsure):
        treeload.load(objects, treeload.state_tree(objects, commit))
    assert "over the cap" in convoy("ready").err


def test_the_depth_limit_is_the_full_reads() -> None:
    assert treeload.MAX_DEPTH == MAX_DEPTH
