"""Two feeder rules no workflow test pinned down (found by bench/mutate.py): a bead whose
dispatch failed waits out its back-off, and a convoy that can make no progress by itself
is reported stranded — and stops being so once its blocker closes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import convoy, git, ok


@pytest.fixture
def failing_rig(state_repo: Path) -> Path:
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    git("config", "convoy.rig.app.dispatch", "exit 3", cwd=state_repo)
    return state_repo


def dispatch_of(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))["dispatch"]


def test_a_failed_dispatch_waits_for_its_back_off(failing_rig, monkeypatch):
    t1 = ok("bead", "create", "one")
    assert convoy("sling", t1, "--rig", "app").code == 1
    first = dispatch_of(t1)
    assert first["attempts"] == 1 and "exited 3" in first["last_error"]
    assert first["next_try"] > first["last_attempt"]

    report = json.loads(ok("feed", "--json"))  # still inside the back-off: not tried again
    assert report["dispatched"] == []
    assert dispatch_of(t1)["attempts"] == 1

    monkeypatch.setenv("CONVOY_NOW", "2999-01-01T00:00:00.000000Z")  # past next_try
    again = convoy("feed", "--json")
    assert again.code == 1  # tried, and nothing was dispatched
    report = json.loads(again.out)
    assert [d["bead"] for d in report["dispatched"]] == [t1]
    assert dispatch_of(t1)["attempts"] == 2


def test_a_convoy_waiting_on_outside_work_is_stranded_until_it_closes(state_repo):
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    outside = ok("bead", "create", "outside work")
    inside = ok("bead", "create", "inside work")
    ok("dep", "add", inside, outside)
    cid = ok("create", "waits", inside)

    report = json.loads(ok("feed", "--json"))
    assert report["stranded"] == [cid] and report["dispatched"] == []
    assert f"convoy {cid} is stranded: work left, nothing in flight, nothing ready" in \
        ok("feed").splitlines()

    ok("bead", "close", outside)
    report = json.loads(ok("feed", "--json"))
    assert report["stranded"] == []
    assert [d["bead"] for d in report["dispatched"]] == [inside]
