"""Pull-based claims (`git convoy claim` / `heartbeat`): many workers on many clones share one
queue through a remote without double claims; claims expire without a heartbeat."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, dulwich_remote, git, git_convoy, make_repo, ok, ref_of

from gitconvoy.flow import claims, publish
from gitconvoy.flow.claims import candidates
from gitconvoy.state.store import Store

WORKER = """
import json, subprocess, sys
out = []
for _ in range(200):
    proc = subprocess.run(["git", "convoy", "claim", "--json", "--as", sys.argv[1]],
                          capture_output=True, text=True)
    if proc.returncode == 0:
        out.append(json.loads(proc.stdout)["bead"])
    elif proc.returncode == 1 and "nothing ready" in proc.stderr:
        break
    elif proc.returncode != 3:
        sys.exit(f"claim failed {proc.returncode}: {proc.stderr}")
print(json.dumps(out))
"""


def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int,
           capacity: int = 50) -> tuple[Path, list[str]]:
    """A bare remote with main and a state holding one rig and `count` ready beads."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    seed = make_repo(tmp_path / "seed")
    monkeypatch.chdir(seed)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--capacity", str(capacity), "--default")
    ids = [ok("bead", "create", f"task {i}", "--priority", str(i % 3)) for i in range(count)]
    git("remote", "add", "origin", str(remote), cwd=seed)
    git("push", "-q", "origin", "main", "convoy/state", cwd=seed)
    return remote, ids


def clone(remote: Path | str, path: Path) -> Path:
    git("clone", "-q", str(remote), str(path))
    return path


def claims_on(repo: Path) -> dict[str, dict]:
    """Every in-flight bead of the repository's state, with its claim."""
    beads = Store.open(str(repo)).snapshot(fresh=True).beads
    return {b.id: {"by": b.dispatch.get("by"), "assignee": b.assignee, "status": b.status}
            for b in beads.values() if b.status in ("hooked", "in_progress")}


def drain(clones: list[Path]) -> tuple[list[list[str]], float]:
    """Three real worker processes, one per clone, each claiming until nothing is left."""
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, f"w{i}"], cwd=c,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, c in enumerate(clones)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results, time.monotonic() - start


def assert_each_claimed_once(clones: list[Path], results: list[list[str]],
                             ids: list[str], remote_repo: Path) -> None:
    got = [b for r in results for b in r]
    assert sorted(got) == sorted(ids), "every bead claimed exactly once across all workers"
    for c in clones:
        git_convoy("sync", "-q", cwd=c)
    for c in clones:
        git_convoy("sync", "-q", cwd=c)
    final = claims_on(remote_repo)
    assert sorted(final) == sorted(ids)
    clone_ids = {(c / ".git/convoy/id").read_text().strip(): f"w{i}" for i, c in enumerate(clones)}
    for i, beads in enumerate(results):
        for bead in beads:  # the merged state agrees with what each worker was told
            assert final[bead]["assignee"] == f"w{i}"
            assert clone_ids[final[bead]["by"]] == f"w{i}"
    for c in clones:
        assert claims_on(c) == final


@pytest.mark.slow
def test_three_workers_on_three_clones_drain_the_queue_once(tmp_path, monkeypatch):
    remote, ids = seeded(tmp_path, monkeypatch, 12)
    clones = [clone(remote, tmp_path / f"c{i}") for i in range(3)]
    results, elapsed = drain(clones)
    print(f"3 workers drained {len(ids)} beads in {elapsed:.2f}s: "
          f"{[len(r) for r in results]}")
    assert_each_claimed_once(clones, results, ids, remote)
    for i, c in enumerate(clones):  # each worker got its work branch at the target's tip
        for bead in results[i]:
            assert git("rev-parse", f"convoy/{bead}", cwd=c) == git("rev-parse", "main", cwd=c)


@pytest.mark.slow
def test_three_workers_over_a_dulwich_remote(tmp_path, monkeypatch):
    bare, ids = seeded(tmp_path, monkeypatch, 9)
    with dulwich_remote(bare) as url:
        clones = [clone(url, tmp_path / f"c{i}") for i in range(3)]
        results, _ = drain(clones)
        assert_each_claimed_once(clones, results, ids, bare)


def test_claim_without_a_remote_marks_the_bead_and_makes_the_branch(state_repo):
    ok("rig", "add", "app", "--default")
    low = ok("bead", "create", "later", "--priority", "3")
    high = ok("bead", "create", "first", "--priority", "0")
    data = json.loads(ok("claim", "--json", "--as", "alice"))
    assert data["bead"] == high and data["branch"] == f"convoy/{high}"
    assert data["assignee"] == "alice" and data["remote"] is None
    assert data["claimed_at"] == data["heartbeat"] and data["ttl"] == 3600
    assert git("rev-parse", f"convoy/{high}") == git("rev-parse", "main") == data["base_commit"]
    bead = json.loads(ok("bead", "show", high, "--json"))
    assert bead["status"] == "hooked" and bead["dispatch"]["by"] == data["clone"]
    assert ok("claim").startswith(f"claimed {low} on branch convoy/{low}")


def test_beads_of_open_convoys_come_first(state_repo):
    ok("rig", "add", "app", "--default")
    ok("bead", "create", "urgent loose", "--priority", "0")
    tracked = ok("bead", "create", "tracked", "--priority", "3")
    cid = ok("create", "wave", tracked)
    snap = Store.open().snapshot()
    first, convoy_of = candidates(snap, None, "9999")[0]
    assert (first.id, convoy_of.id) == (tracked, cid)
    assert json.loads(ok("claim", "--json"))["bead"] == tracked


def test_bad_input_writes_nothing(state_repo):
    ok("rig", "add", "app", "--default", "--capacity", "1")
    ok("rig", "add", "other")
    before = ref_of(state_repo)
    res = convoy("claim")
    assert (res.code, res.err) == (1, "error: nothing ready to claim\n")
    res = convoy("claim", "--rig", "nope")
    assert res.code == 1 and res.err == "error: unknown rig 'nope' (rigs: app, other)\n"
    ok("rig", "park", "other")
    before = ref_of(state_repo)
    res = convoy("claim", "--rig", "other")
    assert res.code == 1 and "rig other is parked" in res.err and res.err.count("\n") == 1
    one, two = ok("bead", "create", "a"), ok("bead", "create", "b")
    before = ref_of(state_repo)
    assert convoy("claim", "--rig", "other").code == 1
    assert ref_of(state_repo) == before
    ok("claim")
    res = convoy("claim")  # the rig's one slot is taken
    assert (res.code, res.err) == (1, "error: nothing ready to claim\n")
    assert {one, two} & set(claims_on(state_repo))
    res = convoy("heartbeat", "t-none")
    assert res.code == 1 and "t-none" in res.err and res.err.count("\n") == 1
    free = ({one, two} - set(claims_on(state_repo))).pop()
    res = convoy("heartbeat", free)
    assert res.code == 1 and "holds no claim" in res.err
    git("config", "convoy.claimTTL", "soon")
    res = convoy("claim")
    assert res.code == 1 and "convoy.claimTTL" in res.err


def test_heartbeat_refreshes_and_expiry_hands_the_bead_to_another_clone(tmp_path, monkeypatch):
    remote, ids = seeded(tmp_path, monkeypatch, 1)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.chdir(a)
    first = json.loads(ok("claim", "--json", "--as", "alice"))
    assert first["bead"] == ids[0] and first["remote"] == "origin"
    monkeypatch.setenv("CONVOY_NOW", "2099-01-01T00:00:00.000000Z")
    assert ok("heartbeat", ids[0]).startswith(f"{ids[0]}: heartbeat 2099-01-01")
    monkeypatch.chdir(b)  # the remote already has the claim and its heartbeat
    ok("sync")
    shown = json.loads(ok("bead", "show", ids[0], "--json"))
    assert shown["dispatch"]["heartbeat"] == "2099-01-01T00:00:00.000000Z"
    assert convoy("claim").code == 1
    res = convoy("heartbeat", ids[0])
    assert res.code == 1 and "another clone" in res.err
    monkeypatch.setenv("CONVOY_NOW", "2099-01-01T00:59:00.000000Z")  # within the TTL
    assert "expired" not in ok("feed")
    monkeypatch.setenv("CONVOY_NOW", "2099-01-01T01:00:01.000000Z")
    assert f"{ids[0]}: claim expired" in ok("feed")
    shown = json.loads(ok("bead", "show", ids[0], "--json"))
    assert shown["status"] == "open" and shown["assignee"] is None
    assert "claim by alice expired" in shown["dispatch"]["last_error"]
    second = json.loads(ok("claim", "--json", "--as", "bob"))
    assert second["bead"] == ids[0] and second["assignee"] == "bob"
    monkeypatch.chdir(a)  # alice learns she lost it
    res = convoy("heartbeat", ids[0])
    assert res.code == 1 and "another clone" in res.err
    assert claims_on(a)[ids[0]]["assignee"] == "bob"


def test_a_claim_with_fresh_work_on_its_branch_does_not_expire(state_repo, monkeypatch):
    ok("rig", "add", "app", "--default")
    bead = ok("bead", "create", "slow")
    monkeypatch.setenv("CONVOY_NOW", "2000-01-01T00:00:00Z")
    ok("claim")
    monkeypatch.setenv("CONVOY_NOW", "2000-01-02T00:00:00Z")
    git("checkout", "-q", f"convoy/{bead}")
    git("commit", "-q", "--allow-empty", "-m", "work")  # committed now, long after the beat
    git("checkout", "-q", "main")
    out = ok("feed")
    assert "expired" not in out
    assert claims_on(state_repo)[bead]["status"] == "in_progress"
    git("config", "convoy.claimTTL", "0")
    assert "expired" not in ok("feed")


@pytest.mark.parametrize("write_on_top", [False, True])
def test_losing_a_push_concedes_the_bead_and_takes_the_next(tmp_path, monkeypatch,
                                                             write_on_top):
    remote, ids = seeded(tmp_path, monkeypatch, 2)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.chdir(b)
    ok("sync")
    store = Store.open(str(b))
    before = store.state_commit()
    got = claims._claim_locally(store, "bob", None, set())  # b has not seen a's claim yet
    assert got is not None
    mine, commit = got
    first = json.loads(git_convoy("claim", "--json", "--as", "alice", cwd=a).stdout)["bead"]
    assert mine.id == first  # both went for the best bead; a pushed first
    if write_on_top:  # another local write: the ref can no longer simply be reset
        ok("bead", "create", "written meanwhile")
    lost = publish.publish(store, "origin", mine)
    assert lost == f"{first} was claimed by alice on the remote first"
    publish.concede(store, mine, commit, "origin")
    if not write_on_top:
        assert store.state_commit() == before
    data = json.loads(ok("claim", "--json", "--as", "bob"))
    assert data["bead"] != first and data["bead"] in ids
    git_convoy("sync", "-q", cwd=a)
    for repo in (a, b, remote):
        held = claims_on(repo)
        assert sorted(held) == sorted(ids)
        assert held[first]["assignee"] == "alice" and held[data["bead"]]["assignee"] == "bob"
    assert ref_of(b, STATE_REF) == ref_of(remote)


def test_a_sync_of_another_process_never_publishes_a_losing_claim_as_won(tmp_path,
                                                                          monkeypatch):
    """Seen in bench/bench_load.py (200 tasks, 8 workers): bob's clone claims a bead locally;
    before his claim is published, another process of his clone (a worker's `sync` after its
    `done`) merges the remote — where alice's claim of the same bead already is — and pushes.
    The merge let the later claim (bob's) win, so both claims were "on the remote" and two
    workers did the bead. The remote's claim must win the merge, and bob's publish must see
    that the remote's bead is not his claim."""
    remote, ids = seeded(tmp_path, monkeypatch, 2)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.chdir(b)
    ok("sync")
    store = Store.open(str(b))
    first = json.loads(git_convoy("claim", "--json", "--as", "alice", cwd=a).stdout)["bead"]
    got = claims._claim_locally(store, "bob", None, set())  # b has not seen alice's claim
    assert got is not None and got[0].id == first
    mine, commit = got
    git_convoy("sync", "-q", cwd=b)  # another process of bob's clone
    assert claims_on(remote)[first]["assignee"] == "alice"
    lost = publish.publish(store, "origin", mine)
    assert lost == f"{first} was claimed by alice on the remote first"
    publish.concede(store, mine, commit, "origin")
    assert claims_on(b)[first]["assignee"] == "alice"


def test_rig_option_takes_only_that_rigs_beads(state_repo):
    ok("rig", "add", "app", "--default")
    ok("rig", "add", "web", "--prefix", "w")
    ok("bead", "create", "app work", "--priority", "0")
    web = ok("bead", "create", "web work", "--priority", "4", "--rig", "web")
    data = json.loads(ok("claim", "--rig", "web", "--json"))
    assert (data["bead"], data["rig"]) == (web, "web")
    res = convoy("claim", "--rig", "web")
    assert (res.code, res.err) == (1, "error: nothing ready to claim on rig web\n")
