"""`git convoy refinery status`: the queue with ages, and anomalies with recovery commands."""

from __future__ import annotations

import json

from conftest import convoy, git, ok
from test_refinery_helpers import (
    add_rig,
    bead_json,
    hand_dispatch,
    mrs,
    new_task,
    status_json,
    worker_commit,
)

LATER = "2099-01-01T00:00:00.000000Z"


def test_status_lists_the_queue_in_landing_order(state_repo):
    add_rig()
    low = new_task("low", "--priority", "3")
    high = new_task("high", "--priority", "0")
    for bead in (low, high):
        branch = hand_dispatch(state_repo, bead)
        worker_commit(state_repo, branch, {f"{bead}.txt": "x\n"})
        ok("done", bead)
    data = status_json()
    assert [row["bead"] for row in data["queue"]] == [high, low]
    assert [row["position"] for row in data["queue"]] == [0, 1]
    assert data["anomalies"] == [] and data["merged"] == 0
    text = ok("refinery", "status")
    assert text.splitlines()[0] == "queue: 2 open, 0 merged"


def test_stalled_queue_is_reported(state_repo, monkeypatch):
    add_rig()
    bead = new_task("waiting")
    branch = hand_dispatch(state_repo, bead)
    worker_commit(state_repo, branch, {"w.txt": "w\n"})
    ok("done", bead)
    [mr] = mrs().values()
    monkeypatch.setenv("CONVOY_NOW", LATER)
    [item] = status_json()["anomalies"]
    assert (item["kind"], item["mr"], item["command"]) == ("stale", mr.id,
                                                           "git convoy refinery run")
    assert "(stalled queue)" in item["detail"]
    text = ok("refinery", "status")
    assert f"stale {mr.id}: queued for" in text and "→ git convoy refinery run" in text


def test_finished_branch_without_mr_is_found_and_queued(state_repo, monkeypatch):
    add_rig()
    bead = new_task("forgot done")
    branch = hand_dispatch(state_repo, bead)
    worker_commit(state_repo, branch, {"f.txt": "f\n"})
    assert status_json()["anomalies"] == []  # fresh work is not "finished" yet
    monkeypatch.setenv("CONVOY_NOW", LATER)
    [item] = status_json()["anomalies"]
    assert (item["kind"], item["bead"], item["command"]) == (
        "unqueued_work", bead, f"git convoy done {bead}")
    monkeypatch.delenv("CONVOY_NOW")
    git("config", "convoy.refinery.idleAfter", "0", cwd=state_repo)
    out = ok("refinery", "run", "--adopt")
    assert "queued idle work as mr-" in out and "landed" in out
    assert bead_json(bead)["status"] == "closed"


def test_doctor_reports_refinery_anomalies(state_repo, monkeypatch):
    add_rig()
    bead = new_task("old")
    branch = hand_dispatch(state_repo, bead)
    worker_commit(state_repo, branch, {"o.txt": "o\n"})
    ok("done", bead)
    [mr] = mrs().values()
    monkeypatch.setenv("CONVOY_NOW", LATER)
    res = convoy("doctor", "--json")
    [check] = [c for c in json.loads(res.out)["checks"] if c["name"] == "refinery"]
    assert check["level"] == "warn"
    assert f"stale {mr.id} → git convoy refinery run" in check["message"]
