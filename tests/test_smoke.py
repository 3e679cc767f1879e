"""The issue's tour, end to end in-process: create, dep, ready, blocked, update, close."""

from __future__ import annotations

import json

from conftest import convoy, git, ok


def test_tour(state_repo):
    timeout = ok("bead", "create", "--type", "task", "Fix auth timeout")
    epic = ok("bead", "create", "--type", "epic", "Auth overhaul")
    validation = ok("bead", "create", "Add validation", "--parent", epic, "--priority", "1")
    ok("dep", "add", validation, timeout, "--type", "blocks")
    assert [line.split()[0] for line in ok("ready").splitlines()] == [timeout]
    blocked = ok("blocked")
    assert validation in blocked and timeout in blocked
    ok("bead", "update", timeout, "--status", "in_progress", "--assignee", "alice",
       "--label", "auth")
    shown = json.loads(ok("bead", "show", timeout, "--json"))
    assert shown["status"] == "in_progress" and shown["assignee"] == "alice"
    assert shown["labels"] == ["auth"] and shown["started_at"]
    ok("bead", "close", timeout, "--reason", "done")
    assert [line.split()[0] for line in ok("ready").splitlines()] == [validation]
    listed = json.loads(ok("bead", "list", "--status", "open", "--type", "task", "--json"))
    assert [b["id"] for b in listed] == [validation]
    log = git("log", "--format=%s", "convoy/state").splitlines()
    assert log[0] == f"bead close {timeout}"
    assert log[-1] == "init: prefix t"
    assert len(log) == 7


def test_cycle_refused(state_repo):
    a = ok("bead", "create", "a")
    b = ok("bead", "create", "b")
    ok("dep", "add", a, b)
    before = git("rev-parse", "convoy/state")
    res = convoy("dep", "add", b, a)
    assert res.code == 1
    assert res.err.strip() == f"error: refused: that would make a dependency cycle {b} → {a} → {b}"
    assert git("rev-parse", "convoy/state") == before
