"""The state ref store: layout, stable YAML, fan-out, lazy reads, the cache, transactions."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, git_convoy, ok
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.errors import LostRace, SchemaError
from gitconvoy.state import cache as state_cache
from gitconvoy.state.codec import dump_yaml, load_yaml
from gitconvoy.state.layout import object_path
from gitconvoy.state.model import BEAD_STATUSES, BEAD_TYPES, DEP_TYPES, Bead, Dep
from gitconvoy.state.snapshot import parse_all
from gitconvoy.state.store import Store


def test_init_writes_convoy_yaml_and_gitattributes_on_an_orphan_commit(repo):
    assert ok("init", "--prefix", "sh") == (
        f"initialised {STATE_REF} at {git('rev-parse', STATE_REF)[:10]} (prefix sh)")
    assert git("ls-tree", "--name-only", STATE_REF).splitlines() == [
        ".gitattributes", "convoy.yaml"]
    assert git("show", f"{STATE_REF}:convoy.yaml") == "schema: 1\nprefix: sh"
    assert "*.yaml merge=convoy" in git("show", f"{STATE_REF}:.gitattributes")
    assert git("rev-list", "--parents", STATE_REF).split() == [git("rev-parse", STATE_REF)]
    assert git("log", "--format=%s", STATE_REF) == "init: prefix sh"
    assert ok("init") == f"{STATE_REF} already exists (prefix sh); nothing to do"
    assert git("reflog", "show", "--format=%gs", STATE_REF) == "git convoy: git convoy init"


def test_every_write_is_in_the_reflog(state_repo):
    bead_id = ok("bead", "create", "A")
    ok("bead", "close", bead_id)
    assert git("reflog", "show", "--format=%gs", STATE_REF).splitlines() == [
        f"git convoy: bead close {bead_id}", f"git convoy: bead create {bead_id}: A",
        "git convoy: git convoy init"]


def test_the_ref_is_configurable(repo):
    git("config", "convoy.ref", "plans/state")
    ok("init")
    assert git("rev-parse", "-q", "--verify", "refs/heads/plans/state")
    assert git("rev-parse", "-q", "--verify", STATE_REF, check=False) == ""
    # `git -c convoy.ref=… convoy` reaches us through GIT_CONFIG_PARAMETERS
    assert "refs/heads/other" in git("-c", "convoy.ref=other", "convoy", "init")
    assert git("rev-parse", "-q", "--verify", "refs/heads/other")
    git("-c", "convoy.ref=refs/heads/other", "convoy", "bead", "create", "only there")
    assert "only there" in git("-c", "convoy.ref=other", "convoy", "bead", "list")
    assert ok("bead", "list") == ""


def test_git_dir_is_honoured_from_outside_the_work_tree(state_repo, tmp_path, monkeypatch):
    bead_id = ok("bead", "create", "A")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = git_convoy("bead", "show", bead_id, cwd=elsewhere,
                      env={"GIT_DIR": str(state_repo / ".git")})
    assert proc.stdout.startswith(f"{bead_id}: A")


def test_bead_files_are_stable_yaml_in_fanned_out_folders(state_repo, monkeypatch):
    monkeypatch.setenv("CONVOY_NOW", "2026-01-02T03:04:05.000000Z")
    ok("bead", "create", "--id", "t-a1", "Alpha", "-l", "z", "-l", "a", "-p", "1",
       "-d", "two\nlines")
    path = object_path("beads", "t-a1")
    assert path.count("/") == 4 and path.startswith("beads/") and path.endswith("/t-a1.yaml")
    raw = git("cat-file", "blob", f"{STATE_REF}:{path}") + "\n"
    assert raw == (
        "id: t-a1\ntitle: Alpha\ntype: task\nstatus: open\npriority: 1\n"
        "description: |-\n  two\n  lines\nlabels:\n- a\n- z\n"
        "created_at: '2026-01-02T03:04:05.000000Z'\ncreated_by: Test User\n"
        "updated_at: '2026-01-02T03:04:05.000000Z'\n"
    ).replace("Test User", Store.open().identity())


def new_objects(repo: Path, old: str, new: str) -> list[str]:
    listed = git("rev-list", "--objects", new, f"^{old}", cwd=repo).splitlines()
    return [line.split()[0] for line in listed]


def test_a_one_bead_write_rewrites_only_the_trees_on_its_path(state_repo):
    store = Store.open()
    store.transact(lambda tx: [tx.put(Bead(f"t-{n}", f"bead {n}")) for n in range(600)],
                   "seed 600")
    old = git("rev-parse", STATE_REF)
    ok("bead", "update", "t-7", "-l", "x")
    new = git("rev-parse", STATE_REF)
    objs = new_objects(state_repo, old, new)
    # commit + root + beads/ + three fan-out levels + the blob
    assert len(objs) == 7
    sizes = [int(git("cat-file", "-s", o)) for o in objs]
    assert sum(sizes) < 2500, sizes


def test_single_lookups_do_not_load_the_whole_state(state_repo, monkeypatch):
    bead_id = ok("bead", "create", "A")

    def refuse(*_: object) -> None:
        raise AssertionError("loaded everything")

    monkeypatch.setattr(state_cache, "load_all", refuse)
    assert ok("bead", "show", bead_id).startswith(bead_id)
    ok("bead", "update", bead_id, "-l", "x", "--status", "in_progress")
    ok("bead", "close", bead_id)
    ok("bead", "create", "B")  # a fresh id needs only the count, not the objects
    snap = Store.open().snapshot()
    assert snap.bead(bead_id).status == "closed" and snap.count("beads") == 2


def test_the_cache_serves_reads_and_follows_writes(state_repo, monkeypatch):
    ids = [ok("bead", "create", f"bead {n}") for n in range(5)]
    ok("bead", "list")
    cache = state_repo / ".git" / "convoy" / "cache" / "snapshot.json"
    assert cache.exists()
    parsed: list[str] = []
    original = state_cache.parse_all

    def counting(repo: object, tree: object) -> object:
        parsed.append(str(tree))
        return original(repo, tree)  # type: ignore[arg-type]

    monkeypatch.setattr(state_cache, "parse_all", counting)
    assert len(ok("bead", "list").splitlines()) == 5
    ok("bead", "update", ids[0], "--title", "renamed")
    ok("bead", "delete", ids[1])
    rows = ok("bead", "list").splitlines()
    assert parsed == []  # served from the cache, patched by a tree diff
    assert len(rows) == 4 and any("renamed" in r for r in rows)
    patched = Store.open().snapshot()
    fresh = parse_all(patched._source.repo, patched._source.tree)  # type: ignore[union-attr]
    assert patched.beads == fresh.objects["beads"]
    # a corrupt cache is ignored and rebuilt
    cache.write_bytes(b"not a cache")
    assert len(ok("bead", "list").splitlines()) == 4
    assert len(parsed) == 1
    assert state_cache.load(str(state_repo / ".git"), patched._source.repo) is not None  # type: ignore[union-attr]


def test_broken_files_survive_the_cache(state_repo):
    from test_bad_input import plant

    ok("bead", "create", "good")
    plant(state_repo, object_path("beads", "t-bad"), "id: t-bad\ntitle: x\npriority: 7\n")
    first = convoy("bead", "list")
    second = convoy("bead", "list")
    assert first.err == second.err and "field 'priority'" in second.err
    err = SchemaError("beads/x.yaml", "priority", "bad")
    assert pickle.loads(pickle.dumps(err)).message == err.message


def test_a_lost_race_is_re_applied_on_the_new_state(state_repo):
    store = Store.open()
    other = Store.open()
    calls: list[int] = []

    def mutate(tx: object) -> None:
        calls.append(len(tx.beads))  # type: ignore[attr-defined]
        if len(calls) == 1:  # someone else writes between our read and our CAS
            other.transact(lambda t: t.put(Bead("t-other", "other")), "other writer")
        tx.put(Bead(f"t-mine{len(calls)}", "mine"))  # type: ignore[attr-defined]

    store.transact(mutate, "mine")
    assert calls == [0, 1]
    snap = Store.open().snapshot()
    assert set(snap.beads) == {"t-other", "t-mine2"}
    assert git("log", "--format=%s", STATE_REF).splitlines()[:2] == ["mine", "other writer"]


def test_a_race_lost_every_time_gives_up_with_exit_code_3(state_repo):
    store = Store.open()
    other = Store.open()
    before = []

    def mutate(tx: object) -> None:
        before.append(git("rev-parse", STATE_REF))
        other.transact(lambda t: t.put(Bead(f"t-o{len(before)}", "o")), "interloper")
        tx.put(Bead("t-never", "never"))  # type: ignore[attr-defined]

    with pytest.raises(LostRace) as caught:
        store.transact(mutate, "doomed", attempts=3)
    assert caught.value.exit_code == 3
    assert caught.value.message.startswith("gave up after 3 attempts: ")
    assert "t-never" not in Store.open().snapshot().beads


def test_nothing_changed_writes_no_commit(state_repo):
    before = git("rev-parse", STATE_REF)
    assert Store.open().transact(lambda tx: 42, "no-op") == 42
    assert git("rev-parse", STATE_REF) == before


beads_st = st.builds(
    Bead,
    id=st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[0-9]{1,2})?", fullmatch=True),
    title=st.text(min_size=1, max_size=60).filter(lambda t: t.strip() == t and t),
    type=st.sampled_from(BEAD_TYPES),
    status=st.sampled_from([s for s in BEAD_STATUSES if s != "closed"]),
    priority=st.integers(0, 4),
    description=st.none() | st.text(min_size=1, max_size=80),
    labels=st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), unique=True).map(sorted),
    deps=st.lists(st.builds(Dep, on=st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                            type=st.sampled_from(DEP_TYPES)), unique=True).map(sorted),
    assignee=st.none() | st.text(min_size=1, max_size=10),
)


@settings(max_examples=200, deadline=None)
@given(beads_st)
def test_yaml_round_trip_is_exact(bead):
    raw = dump_yaml(bead.to_dict())
    assert raw.endswith(b"\n")
    assert Bead.from_dict(load_yaml(raw, "x.yaml"), "x.yaml") == bead
    assert dump_yaml(Bead.from_dict(load_yaml(raw, "x.yaml"), "x.yaml").to_dict()) == raw


def test_common_dir_of_a_linked_worktree(state_repo, tmp_path):
    bead_id = ok("bead", "create", "A")
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", "--detach", str(wt))
    assert git_convoy("bead", "show", bead_id, cwd=wt).stdout.startswith(bead_id)
    assert git_convoy("bead", "list", cwd=wt).stdout.startswith(bead_id)
    assert os.path.exists(state_repo / ".git" / "convoy" / "cache")
    assert not (state_repo / ".git" / "worktrees" / "wt" / "convoy").exists()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "put", "remove"]),
                          st.sampled_from([f"t-{n}" for n in range(6)]),
                          st.text(alphabet="abc", min_size=1, max_size=3)),
                min_size=1, max_size=12))
def test_the_patched_cache_always_equals_a_fresh_parse(tmp_path_factory, ops):
    import pygit2

    from gitconvoy.state.model import Config

    path = tmp_path_factory.mktemp("cache")
    pygit2.init_repository(str(path))
    Store.open(str(path)).initialise(Config(prefix="t"))
    for op, bead_id, title in ops:
        store = Store.open(str(path))
        if op == "put":
            store.transact(lambda tx, i=bead_id, t=title: tx.put(Bead(i, t)), f"put {bead_id}")
        else:
            store.transact(lambda tx, i=bead_id: tx.remove("beads", i), f"remove {bead_id}")
        snap = Store.open(str(path)).snapshot()
        fresh = parse_all(snap._source.repo, snap._source.tree)  # type: ignore[union-attr]
        assert snap.beads == fresh.objects["beads"]


def test_a_cache_written_for_another_model_shape_is_ignored(state_repo):
    """After an upgrade the cached rows may lack new fields: they must not be served."""
    import hashlib
    import json

    from conftest import ok

    bead = ok("bead", "create", "one")
    ok("bead", "list")  # a full read writes the cache
    cache = state_repo / ".git" / "convoy" / "cache" / "snapshot.json"
    payload = json.loads(cache.read_bytes().partition(b"\n")[2])
    payload["key"] = ["an older gitconvoy"]
    payload["objects"]["beads"][0][1] = "a title the state does not have"
    body = json.dumps(payload).encode()
    cache.write_bytes(state_cache.MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n"
                      + body)
    assert ok("bead", "list").split()[0] == bead
    assert "one" in ok("bead", "list")
    payload = json.loads(cache.read_bytes().partition(b"\n")[2])
    assert payload["key"] == state_cache.cache_key()
