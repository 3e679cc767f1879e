"""`git convoy sync` against a bare file remote: adopt, publish, fast-forward, merge, retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import (
    STATE_REF,
    convoy,
    dulwich_remote,
    git,
    git_convoy,
    is_ancestor,
    make_repo,
    ok,
    ref_of,
)

from gitconvoy.errors import LostRace
from gitconvoy.git.sync import sync as run_sync
from gitconvoy.state.store import Store

# Appends "old new ref" per updated ref to pushes.log; git's receive-pack and dulwich's server
# both run post-receive (dulwich without a final newline; one printf keeps lines whole).
PUSH_LOG_HOOK = """#!/bin/sh
lines=$(cat)
printf '%s\\n' "$lines" >> "$GIT_DIR/pushes.log"
"""
ZERO = "0" * 40


def bare_remote(tmp_path: Path) -> Path:
    """A bare remote that records every ref update it takes: a reflog (bare repositories keep
    none unless asked) and a post-receive log that dulwich's server writes too."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    git("config", "core.logAllRefUpdates", "always", cwd=remote)
    hook = remote / "hooks" / "post-receive"
    hook.write_text(PUSH_LOG_HOOK)
    hook.chmod(0o755)
    return remote


def pushes(remote: Path, ref: str = STATE_REF) -> list[tuple[str, str]]:
    """(old, new) of every push the remote took for `ref`, in the order they were logged."""
    log = remote / "pushes.log"
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(old, new) for old, new, name in (r for r in rows if r) if name == ref]


def reflog(remote: Path, ref: str = STATE_REF) -> list[str]:
    """The remote's reflog of `ref`, newest first."""
    return git("reflog", "show", "--format=%H", ref, cwd=remote).split()


def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare remote holding main and a state branch made by a first clone."""
    remote = bare_remote(tmp_path)
    seed = make_repo(tmp_path / "seed")
    monkeypatch.chdir(seed)
    ok("init", "--prefix", "t")
    git("remote", "add", "origin", str(remote), cwd=seed)
    git("push", "-q", "origin", "main", "convoy/state", cwd=seed)
    return remote


def clone(remote: Path, path: Path) -> Path:
    git("clone", "-q", str(remote), str(path))
    return path


def state_tree(repo: Path, ref: str = STATE_REF) -> str:
    return git("rev-parse", f"{ref}^{{tree}}", cwd=repo)


def shown(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


def test_a_new_clone_takes_the_remote_state(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    a = clone(remote, tmp_path / "a")
    monkeypatch.chdir(a)
    assert ref_of(a) is None
    assert ok("init").startswith("took origin's state")
    assert ref_of(a) == ref_of(remote)
    b = clone(remote, tmp_path / "b")
    monkeypatch.chdir(b)
    ok("bead", "create", "first write in a fresh clone")  # adopts, then writes on top
    assert git("merge-base", "--is-ancestor", ref_of(remote), STATE_REF, cwd=b) == ""


def test_sync_with_nothing_changed_pushes_nothing(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    before = ref_of(remote)
    assert pushes(remote) == [(ZERO, before)] and reflog(remote) == [before]  # the publish
    log = (remote / "pushes.log").read_text()
    assert ok("sync").startswith("sync: up to date with origin")
    assert ref_of(remote) == before
    assert (remote / "pushes.log").read_text() == log  # no push at all, to any ref
    assert reflog(remote) == [before]
    ok("bead", "create", "something to push")
    assert ok("sync").startswith("sync: pushed")
    after = ref_of(remote)
    assert pushes(remote) == [(ZERO, before), (before, after)]
    assert reflog(remote) == [after, before]


def test_two_clones_converge_with_a_merge_commit(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    seed = Path.cwd()
    shared = ok("bead", "create", "Shared", "--label", "base")
    ok("sync")
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")

    monkeypatch.chdir(a)
    ok("bead", "update", shared, "--assignee", "alice", "--label", "from-a")
    only_a = ok("bead", "create", "Only in A")
    assert ok("sync").startswith("sync: pushed")

    monkeypatch.chdir(b)
    ok("bead", "update", shared, "--priority", "0", "--label", "from-b", "--remove-label",
       "base")
    only_b = ok("bead", "create", "Only in B")
    out = ok("sync")
    assert out.startswith("sync: merged origin's state (1 file(s) merged field by field)")
    assert out.endswith("; pushed to origin")
    assert len(git("log", "-1", "--format=%P", "convoy/state", cwd=b).split()) == 2

    monkeypatch.chdir(a)
    assert ok("sync").startswith("sync: fast-forwarded")
    monkeypatch.chdir(seed)
    ok("sync")
    trees = {state_tree(r) for r in (a, b, seed, remote)}
    assert len(trees) == 1
    merged = shown(shared)
    assert merged["assignee"] == "alice" and merged["priority"] == 0
    assert merged["labels"] == ["from-a", "from-b"]
    assert {shown(only_a)["title"], shown(only_b)["title"]} == {"Only in A", "Only in B"}


def test_a_close_on_another_clone_feeds_the_next_bead_after_sync(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    seed = Path.cwd()
    ok("rig", "add", "w", "--default")
    first = ok("bead", "create", "first")
    second = ok("bead", "create", "second")
    ok("dep", "add", second, first)
    ok("create", "C", first, second)
    ok("sync")
    b = clone(remote, tmp_path / "b")
    git_convoy("hooks", "install", cwd=b)
    out = git_convoy("sync", cwd=b).stdout
    assert f"feed: ✓ {first}" in out  # the feeder ran in B and dispatched the first bead
    monkeypatch.chdir(seed)
    ok("sync")
    ok("bead", "close", first, "--reason", "landed")
    ok("sync")
    out = git_convoy("sync", cwd=b).stdout
    # the dispatch published its claim itself (publish-and-confirm): nothing left to push
    assert f"feed: ✓ {second}" in out
    assert out.splitlines()[-1].startswith("sync: up to date with origin"), out
    ok("sync")
    assert shown(second)["status"] == "hooked"  # B's dispatch reached the seed clone too


def test_a_push_only_sync_wakes_no_hook(tmp_path, monkeypatch):
    """sync's own push moves refs/remotes/origin/convoy/state, which the hooks watch: the
    reference-transaction shim must skip it (CONVOY_IN_HOOK), nothing new came in."""
    remote = published(tmp_path, monkeypatch)
    b = clone(remote, tmp_path / "b")
    git_convoy("hooks", "install", cwd=b)
    git_convoy("sync", cwd=b)
    seen = b / ".git" / "convoy" / "hook-seen"
    before = seen.read_text()
    git_convoy("bead", "create", "pushed only", cwd=b)
    assert git_convoy("sync", cwd=b).stdout.startswith("sync: pushed")
    assert seen.read_text() == before
    assert ref_of(b, "refs/remotes/origin/convoy/state") == ref_of(remote)


def test_a_clone_publishes_to_an_empty_remote(tmp_path, monkeypatch):
    remote = bare_remote(tmp_path)
    local = make_repo(tmp_path / "local")
    monkeypatch.chdir(local)
    ok("init", "--prefix", "t")
    git("config", "convoy.remote", "hub")
    git("remote", "add", "hub", str(remote))
    assert ok("sync").startswith("sync: published the state to hub")
    assert ref_of(remote) == ref_of(local)


def test_sync_with_a_url_instead_of_a_remote_name(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    ok("bead", "create", "via url")
    assert ok("sync", str(remote)).startswith("sync: pushed")
    assert ref_of(remote) == ref_of(Path.cwd())


def test_no_remote_is_a_one_line_error(state_repo):
    before = ref_of(state_repo)
    res = convoy("sync")
    assert res.code == 1
    assert res.err == ("error: no remote 'origin': add one (git remote add origin URL) or "
                       "choose another with git config convoy.remote NAME\n")
    assert ref_of(state_repo) == before


def test_two_clones_that_each_ran_init_merge_unrelated_histories(tmp_path, monkeypatch):
    remote = bare_remote(tmp_path)
    a, b = make_repo(tmp_path / "a"), make_repo(tmp_path / "b")
    made = {}
    for repo, name in ((a, "A"), (b, "B")):
        monkeypatch.chdir(repo)
        git("remote", "add", "origin", str(remote))
        ok("init", "--prefix", "t")
        made[name] = ok("bead", "create", f"made in {name}")
    monkeypatch.chdir(a)
    ok("sync")
    monkeypatch.chdir(b)
    assert ok("sync").startswith("sync: merged origin's state")
    monkeypatch.chdir(a)
    ok("sync")
    assert state_tree(a) == state_tree(b) == state_tree(remote)
    assert {shown(i)["title"] for i in made.values()} == {"made in A", "made in B"}


def write_hook(remote: Path, body: str) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\n" + body)
    os.chmod(hook, 0o755)


def test_a_push_that_loses_a_race_fetches_merges_and_pushes_again(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.chdir(a)
    racer = ok("bead", "create", "pushed while B was pushing")
    git("push", "-q", "origin", "convoy/state:refs/heads/side", cwd=a)
    # The remote moves the state ref to A's commit just before B's first push lands.
    write_hook(remote, 'if [ ! -e raced ]; then touch raced; '
                       'env -u GIT_QUARANTINE_PATH '
                       'git update-ref refs/heads/convoy/state refs/heads/side; fi\n')
    monkeypatch.chdir(b)
    mine = ok("bead", "create", "B's bead")
    out = ok("sync")
    assert "after 2 rounds" in out
    assert (remote / "raced").exists()
    assert {shown(racer)["id"], shown(mine)["id"]} == {racer, mine}
    assert state_tree(b) == state_tree(remote)


def test_sync_gives_up_with_exit_3_when_the_remote_never_settles(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    write_hook(remote, 'next=$(git commit-tree "refs/heads/convoy/state^{tree}" '
                       '-p refs/heads/convoy/state -m bump)\n'
                       'env -u GIT_QUARANTINE_PATH '
                       'git update-ref refs/heads/convoy/state "$next"\n')
    made = ok("bead", "create", "never lands")
    store = Store.open()
    with pytest.raises(LostRace) as caught:
        run_sync(store, rounds=3)
    assert caught.value.exit_code == 3
    assert caught.value.message.startswith("sync gave up after 3 rounds: origin kept moving")
    assert shown(made)["title"] == "never lands"  # the local state is kept


def test_a_locked_local_ref_is_named_not_blamed_on_the_remote(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    a = clone(remote, tmp_path / "a")
    monkeypatch.chdir(a)
    ok("init")
    ok("bead", "create", "diverged here")
    monkeypatch.chdir(tmp_path / "seed")
    ok("bead", "create", "and there")
    ok("sync")
    monkeypatch.chdir(a)
    lock = a / ".git" / "refs" / "heads" / "convoy" / "state.lock"
    lock.write_text("")
    before = ref_of(a)
    with pytest.raises(LostRace, match=r"refs/heads/convoy/state kept moving here"):
        run_sync(Store.open(), rounds=2)
    assert ref_of(a) == before


def test_a_fetch_that_meets_a_busy_ref_lock_tries_again(tmp_path, monkeypatch):
    """Two gitconvoy processes of one clone (a worker's sync, a hook, a claim) fetch the state
    at once: git refuses the slower one's ref update ("cannot lock ref …: is at X but expected
    Y", or the other's lock file exists). That is a local race, not a dead remote: the fetch
    is tried again, and a lock that stays is named after a bounded wait."""
    remote = published(tmp_path, monkeypatch)
    a = clone(remote, tmp_path / "a")
    ok("bead", "create", "moves the remote")  # in seed
    ok("sync")
    monkeypatch.chdir(a)
    lock = a / ".git" / "refs" / "convoy" / "remote" / "origin.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    timer = threading.Timer(0.2, lock.unlink)
    timer.start()
    try:
        ok("sync")
    finally:
        timer.join()
    assert ref_of(a) == ref_of(remote)
    monkeypatch.chdir(tmp_path / "seed")
    ok("bead", "create", "moves it again")
    ok("sync")
    monkeypatch.chdir(a)
    lock.write_text("")  # a crash's lock: it stays
    res = convoy("sync")
    assert res.code == 1 and res.err.startswith("error: cannot fetch"), res
    assert "origin.lock" in res.err and res.err.count("\n") == 1


@pytest.mark.slow
def test_parallel_syncs_in_one_clone_all_succeed(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    b = clone(remote, tmp_path / "b")
    for n in range(4):
        ok("bead", "create", f"remote moves {n}")  # in seed
        ok("sync")
        procs = [subprocess.Popen(["git", "convoy", "sync", "-q"], cwd=b, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert all(code == 0 for code, _ in results), results
    assert state_tree(b) == state_tree(remote)


def test_two_beads_that_meet_under_one_id_are_both_kept(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    monkeypatch.chdir(a)
    git("config", "user.name", "Ann", cwd=a)
    ok("bead", "create", "Ann's", "--id", "t-same")
    ok("sync")
    monkeypatch.chdir(b)
    git("config", "user.name", "Bob", cwd=b)
    ok("bead", "create", "Bob's", "--id", "t-same")
    res = convoy("sync")
    assert res.code == 0
    assert "note: two different objects met under id t-same" in res.err
    titles = sorted(x["title"] for x in json.loads(ok("bead", "list", "--json")))
    assert titles == ["Ann's", "Bob's"]


# --- many clones, many writers ----------------------------------------------------------
#
# A bare remote and 3 clones; in each clone a real OS process (this file run as a script)
# makes 30 random changes through the real `git convoy` commands with a sync after each.

STEPS = 30
CLONES = 3


def worker(clone_dir: str, number: int, seed: int, log_path: str) -> None:
    """One writer: random creates, deps, status changes, closes, reopens and label edits."""
    import random
    import subprocess

    from gitconvoy.git import sync
    from gitconvoy.state.store import Store

    rng = random.Random(seed)
    log: dict[str, list] = {k: [] for k in (
        "created", "deps", "labels_added", "labels_removed", "closed", "reopened",
        "errors", "sync_retries")}

    def cv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "convoy", *args], cwd=clone_dir, capture_output=True,
                              text=True)

    def expect(proc: subprocess.CompletedProcess[str], *allowed: int) -> bool:
        if proc.returncode == 0:
            return True
        if proc.returncode not in allowed:
            log["errors"].append(f"{proc.args[2:]} -> {proc.returncode}: {proc.stderr.strip()}")
        return False

    mine_labels: list[tuple[str, str]] = []
    for step in range(STEPS):
        store = Store.open(clone_dir)
        sync.adopt_remote_state(store)  # a fresh clone takes origin's state, as commands do
        beads = store.snapshot(fresh=True).beads
        live = sorted(b for b, x in beads.items() if x.status != "tombstone")
        open_ = sorted(b for b in live if beads[b].status != "closed")
        action = rng.choice(["create", "create", "dep", "dep", "status", "close", "reopen",
                             "label", "label", "unlabel"])
        if len(live) < 3 or (action in ("status", "close") and not open_):
            action = "create"
        if action == "create":
            label = f"w{number}-c{step}"
            proc = cv("bead", "create", f"w{number} step {step}", "--label", label)
            if expect(proc):
                bead_id = proc.stdout.strip()
                log["created"].append(bead_id)
                log["labels_added"].append([bead_id, label])
                mine_labels.append((bead_id, label))
        elif action == "dep":
            src, dst = rng.sample(live, 2)
            kind = rng.choice(["blocks", "related"])
            if expect(cv("dep", "add", src, dst, "--type", kind), 1):
                log["deps"].append([src, dst, kind])
        elif action == "status":
            bead_id = rng.choice(open_)
            new = rng.choice(["in_progress", "open", "blocked", "deferred"])
            expect(cv("bead", "update", bead_id, "--status", new))
        elif action == "close":
            bead_id = rng.choice(open_)
            if expect(cv("bead", "close", bead_id, "--reason", f"w{number}")):
                log["closed"].append(bead_id)
        elif action == "reopen":
            mine_closed = [b for b in log["closed"] if beads.get(b) and
                           beads[b].status == "closed"]
            target = rng.choice(mine_closed) if mine_closed else None
            if target and expect(cv("bead", "reopen", target)):
                log["reopened"].append(target)
        elif action == "label":
            bead_id = rng.choice(live)
            label = f"w{number}-l{step}"
            if expect(cv("bead", "update", bead_id, "--label", label)):
                log["labels_added"].append([bead_id, label])
                mine_labels.append((bead_id, label))
        elif action == "unlabel" and mine_labels:
            bead_id, label = mine_labels.pop(rng.randrange(len(mine_labels)))
            if expect(cv("bead", "update", bead_id, "--remove-label", label)):
                log["labels_removed"].append([bead_id, label])
        proc = cv("sync", "--quiet")
        if proc.returncode == 3:
            log["sync_retries"].append(step)  # given up for now: the next sync catches up
        else:
            expect(proc)
    with open(log_path, "w") as fh:
        json.dump(log, fh)


def run_clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str,
               remote: Path) -> None:
    seed = Path.cwd()
    git("remote", "set-url", "origin", url, cwd=seed)
    clones = [clone_url(url, tmp_path / f"c{n}") for n in range(CLONES)]
    logs = [tmp_path / f"log{n}.json" for n in range(CLONES)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "worker", str(c), str(n), str(1000 + n),
                          str(log)])
        for n, (c, log) in enumerate(zip(clones, logs, strict=True))
    ]
    for proc in procs:
        assert proc.wait(timeout=240) == 0
    repos = [*clones, seed]
    for _ in range(CLONES + 2):  # a few quiet rounds settle every clone
        for r in repos:
            git_convoy("sync", "--quiet", cwd=r)
        if len({state_tree(r) for r in repos} | {state_tree(remote)}) == 1:
            break
    assert len({state_tree(r) for r in repos} | {state_tree(remote)}) == 1
    assert len({ref_of(r) for r in repos} | {ref_of(remote)}) == 1

    # Every update the remote took was a fast-forward: no push ever discarded another's.
    # (Sync pushes after nearly every one of the 3 × 30 steps; the publish is the first.)
    taken = pushes(remote)[1:]
    assert len(taken) > CLONES * 5, taken
    assert ref_of(remote) in {new for _, new in taken}
    for old, new in taken:
        assert is_ancestor(remote, old, new), f"a push replaced {old} by {new}, not its child"
    if "git://" not in url:  # dulwich's server keeps no reflog; git's does, in order
        history = reflog(remote)
        assert len(history) > CLONES * 5
        for newer, older in zip(history, history[1:], strict=False):
            assert is_ancestor(remote, older, newer), f"{newer} does not contain {older}"

    records = [json.loads(log.read_text()) for log in logs]
    snap = Store.open(str(seed)).snapshot(fresh=True)
    assert snap.errors == []
    beads = snap.beads
    reopened = {b for r in records for b in r["reopened"]}
    for r in records:
        assert r["errors"] == []
        for bead_id in r["created"]:
            assert bead_id in beads and beads[bead_id].status != "tombstone"
        for src, dst, kind in r["deps"]:
            assert (dst, kind) in {(d.on, d.type) for d in beads[src].deps}, (src, dst, kind)
        removed = {tuple(x) for x in r["labels_removed"]}
        for bead_id, label in r["labels_added"]:
            if (bead_id, label) in removed:
                assert label not in beads[bead_id].labels, (bead_id, label)
            else:
                assert label in beads[bead_id].labels, (bead_id, label)
        for bead_id in r["closed"]:
            if bead_id not in reopened:
                assert beads[bead_id].status == "closed", bead_id
    made = {k: sum(len(r[k]) for r in records)
            for k in ("created", "deps", "labels_added", "labels_removed", "closed")}
    assert made["created"] >= CLONES and all(made.values()), made  # the loops above checked
    for bead in beads.values():
        assert (bead.status == "closed") == (bead.closed_at is not None)


def clone_url(url: str, path: Path) -> Path:
    git("clone", "-q", url, str(path))
    return path


@pytest.mark.slow
def test_three_clones_converge_through_a_file_remote(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    run_clones(tmp_path, monkeypatch, str(remote), remote)


@pytest.mark.slow
def test_three_clones_converge_through_a_dulwich_git_server(tmp_path, monkeypatch):
    remote = published(tmp_path, monkeypatch)
    with dulwich_remote(remote) as url:
        run_clones(tmp_path, monkeypatch, url, remote)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
