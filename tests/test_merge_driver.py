"""The git merge driver: plain `git merge` of two state branches merges field by field."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import git, ok

from gitconvoy.state.codec import dump_yaml, load_yaml
from gitconvoy.state.layout import object_path


def register_driver(repo: Path) -> None:
    git("config", "merge.convoy.name", "gitconvoy field merge", cwd=repo)
    git("config", "merge.convoy.driver", "git convoy merge-driver %O %A %B %P", cwd=repo)


def on_ref(monkeypatch: pytest.MonkeyPatch, ref: str, *args: str) -> str:
    """Run a command against another branch, as `git -c convoy.ref=… convoy …` would."""
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'convoy.ref={ref}'")
    try:
        return ok(*args)
    finally:
        monkeypatch.delenv("GIT_CONFIG_PARAMETERS")


def shown(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


def test_git_merge_of_diverged_state_branches_merges_fields(state_repo, tmp_path, monkeypatch):
    a = ok("bead", "create", "Alpha", "--label", "base")
    b = ok("bead", "create", "Beta")
    git("branch", "other", "convoy/state")
    # ours (convoy/state): assignee, a label, a dep; close b
    ok("bead", "update", a, "--assignee", "alice", "--label", "ours")
    ok("dep", "add", a, b)
    ok("bead", "close", b, "--reason", "landed")
    # theirs (other): priority, another label, b started later than the close, a new bead
    on_ref(monkeypatch, "refs/heads/other", "bead", "update", a, "--priority", "0",
           "--label", "theirs", "--remove-label", "base")
    on_ref(monkeypatch, "refs/heads/other", "bead", "update", b, "--status", "in_progress")
    c = on_ref(monkeypatch, "refs/heads/other", "bead", "create", "Gamma")

    register_driver(state_repo)
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", str(wt), "convoy/state")
    proc = subprocess.run(["git", "merge", "--no-edit", "other"], cwd=wt, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git("status", "--porcelain", cwd=wt) == ""
    for path in wt.rglob("*.yaml"):
        assert "<<<<<<<" not in path.read_text()

    merged_a, merged_b = shown(a), shown(b)
    assert merged_a["assignee"] == "alice" and merged_a["priority"] == 0
    assert merged_a["labels"] == ["ours", "theirs"]
    assert [d["on"] for d in merged_a["deps"]] == [b]
    assert merged_b["status"] == "closed" and merged_b["close_reason"] == "landed"
    assert shown(c)["title"] == "Gamma"
    parents = git("log", "-1", "--format=%P", "convoy/state").split()
    assert len(parents) == 2
    assert (state_repo / ".git" / "convoy" / "feed-due").exists()  # the next hook feeds


def run_driver(tmp_path: Path, path: str, base: bytes, ours: bytes, theirs: bytes):
    files = []
    for name, data in (("O", base), ("A", ours), ("B", theirs)):
        f = tmp_path / name
        f.write_bytes(data)
        files.append(str(f))
    proc = subprocess.run(["git", "convoy", "merge-driver", *files, path], capture_output=True,
                          text=True, cwd=tmp_path)
    return proc, (tmp_path / "A").read_bytes()


BEAD = {"id": "t-1", "title": "x", "type": "task", "status": "open", "priority": 2,
        "created_at": "2026-01-01T00:00:00Z", "created_by": "ann",
        "updated_at": "2026-01-01T00:00:00Z"}


def test_driver_writes_the_merge_to_ours(tmp_path):
    path = object_path("beads", "t-1")
    ours = {**BEAD, "labels": ["a"], "updated_at": "2026-01-01T00:00:01Z"}
    theirs = {**BEAD, "labels": ["b"], "updated_at": "2026-01-01T00:00:02Z"}
    proc, out = run_driver(tmp_path, path, dump_yaml(BEAD), dump_yaml(ours), dump_yaml(theirs))
    assert proc.returncode == 0, proc.stderr
    assert load_yaml(out, path)["labels"] == ["a", "b"]


def test_driver_leaves_a_conflict_on_unparseable_input(tmp_path):
    path = object_path("beads", "t-1")
    ours = dump_yaml({**BEAD, "title": "y", "updated_at": "2026-01-01T00:00:01Z"})
    proc, out = run_driver(tmp_path, path, dump_yaml(BEAD), ours, b"title: [broken\n")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("warning: git convoy merge-driver: ")
    assert "t-1.yaml" in proc.stderr
    assert out == ours


def test_driver_refuses_to_fuse_two_objects_under_one_id(tmp_path):
    path = object_path("beads", "t-1")
    other = dump_yaml({**BEAD, "title": "other", "created_by": "bob"})
    proc, out = run_driver(tmp_path, path, b"", dump_yaml(BEAD), other)
    assert proc.returncode == 1 and "two different objects met under id t-1" in proc.stderr
    assert out == dump_yaml(BEAD)
