"""Concurrent writers on one repository: every effect lands, the history stays linear.

Real OS processes (subprocess), released together through their stdin, so they really
race for the state ref; two of them in the mixed test use dulwich's independent
compare-and-swap (`refs.set_if_equals`) instead of ours.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import STATE_REF, git, ok

from gitconvoy.state.store import Store

CLI_WORKER = textwrap.dedent("""
    import json, sys
    from gitconvoy.cli import main

    wid, shared, writes = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
    sys.stdin.readline()  # wait until every worker is started
    failures = []
    for i in range(writes):
        if i % 2 == 0:
            args = ["bead", "create", f"worker {wid} bead {i}", "-l", f"w{wid}"]
        else:
            args = ["bead", "update", shared[i % len(shared)], "-l", f"w{wid}-{i}"]
        try:
            main(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                failures.append([args, exc.code])
    print(json.dumps({"failures": failures}))
""")

DULWICH_WORKER = textwrap.dedent("""
    import json, sys, time
    from dulwich.file import FileLocked
    from dulwich.objects import Commit
    from dulwich.repo import Repo

    wid, ref, writes = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    sys.stdin.readline()
    repo = Repo(".")
    lost = 0
    for i in range(writes):
        while True:
            old = repo.refs[ref]
            commit = Commit()
            commit.tree = repo[old].tree
            commit.parents = [old]
            commit.author = commit.committer = b"Dulwich <d@example.com>"
            commit.author_time = commit.commit_time = int(time.time())
            commit.author_timezone = commit.commit_timezone = 0
            commit.message = f"dulwich {wid} write {i}\\n".encode()
            repo.object_store.add_object(commit)
            try:
                if repo.refs.set_if_equals(ref, old, commit.id):
                    break
            except FileLocked:  # another writer holds the ref's lock: a lost race too
                pass
            lost += 1
    print(json.dumps({"failures": [], "lost": lost}))
""")


def start(repo: Path, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=repo, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def release_and_wait(procs: list[subprocess.Popen[str]]) -> list[dict]:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def assert_linear(repo: Path, expected: int) -> None:
    assert git("rev-list", "--merges", STATE_REF, cwd=repo) == ""
    assert len(git("rev-list", STATE_REF, cwd=repo).splitlines()) == expected
    assert git("rev-list", "--max-parents=0", STATE_REF, cwd=repo).count("\n") == 0


@pytest.mark.slow
def test_four_processes_fifty_writes_each(state_repo):
    shared = [ok("bead", "create", f"shared {n}") for n in range(3)]
    procs = [start(state_repo, CLI_WORKER, str(w), ",".join(shared), "50") for w in range(4)]
    results = release_and_wait(procs)
    assert all(r["failures"] == [] for r in results), results

    snap = Store.open().snapshot()
    created = [b for b in snap.beads.values() if b.title.startswith("worker ")]
    assert len(created) == 100
    assert {(b.labels[0], b.title) for b in created} == {
        (f"w{w}", f"worker {w} bead {i}") for w in range(4) for i in range(0, 50, 2)}
    labels = {label for bead_id in shared for label in snap.bead(bead_id).labels}
    assert labels == {f"w{w}-{i}" for w in range(4) for i in range(1, 50, 2)}
    for n, bead_id in enumerate(shared):
        assert all(int(label.split("-")[1]) % 3 == n for label in snap.bead(bead_id).labels)
    assert_linear(state_repo, 1 + 3 + 200)
    # the writers really overlapped: their commits interleave in the history
    order = [int(m.group(1)) for m in map(
        re.compile(r"(?:worker |add_labels w)(\d)").search,
        git("log", "--format=%s", STATE_REF, cwd=state_repo).splitlines()) if m]
    assert len(order) == 200
    assert sum(a != b for a, b in zip(order, order[1:], strict=False)) > 3
    # the reflog keeps every move of the ref
    assert len(git("reflog", "show", STATE_REF, cwd=state_repo).splitlines()) == 204


@pytest.mark.slow
def test_our_cas_and_dulwichs_agree_under_a_race(state_repo):
    """Two writers through gitconvoy, two through dulwich's set_if_equals: nothing lost."""
    shared = [ok("bead", "create", "shared")]
    procs = [start(state_repo, CLI_WORKER, str(w), shared[0], "24") for w in range(2)]
    procs += [start(state_repo, DULWICH_WORKER, str(w), STATE_REF, "25") for w in range(2)]
    results = release_and_wait(procs)
    assert all(r["failures"] == [] for r in results), results
    assert_linear(state_repo, 1 + 1 + 2 * 24 + 2 * 25)
    messages = git("log", "--format=%s", STATE_REF, cwd=state_repo).splitlines()
    assert {m for m in messages if m.startswith("dulwich")} == {
        f"dulwich {w} write {i}" for w in range(2) for i in range(25)}
    snap = Store.open().snapshot()
    assert set(snap.bead(shared[0]).labels) == {
        f"w{w}-{i}" for w in range(2) for i in range(1, 24, 2)}
    assert len([b for b in snap.beads.values() if b.title.startswith("worker")]) == 24


def test_dulwich_refuses_a_stale_expectation_after_our_write(state_repo):
    from dulwich.repo import Repo

    ref = STATE_REF.encode()
    stale = Repo(str(state_repo)).refs[ref]
    ok("bead", "create", "moves the ref")
    fresh = Repo(str(state_repo)).refs[ref]
    assert fresh != stale
    repo = Repo(str(state_repo))
    assert not repo.refs.set_if_equals(ref, stale, stale)  # expectation no longer holds
    assert repo.refs[ref] == fresh
    # and ours refuses a stale expectation after dulwich moved the ref back
    assert repo.refs.set_if_equals(ref, fresh, stale)
    store = Store.open()
    assert not store._compare_and_swap(fresh.decode(), fresh.decode(), "stale")
    assert store.state_commit() == stale.decode()
