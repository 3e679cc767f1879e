"""`convoy.notify` (issue 13): one JSON event per happening, run detached, from local config
only; a failing notifier is recorded and never blocks or loops."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import eventually, git, ok
from test_refinery_helpers import add_rig, worker_commit


def notifier(repo: Path, body: str = "") -> Path:
    events = repo.parent / "events.jsonl"
    script = repo.parent / "notify.sh"
    script.write_text(f"#!/bin/sh\n{body}cat >> {events}\n")
    script.chmod(0o755)
    git("config", "convoy.notify", str(script), cwd=repo)
    return events


def kinds(events: Path) -> list[str]:
    if not events.exists():
        return []
    return [json.loads(line)["event"] for line in events.read_text().splitlines()]


def test_launch_landing_and_stranding_are_each_told_once(state_repo):
    add_rig()
    events = notifier(state_repo)
    a = ok("bead", "create", "A")
    cid = ok("create", "Convoy", a)
    ok("feed")
    worker_commit(state_repo, f"convoy/{a}", {"a.txt": "a\n"})
    ok("done", a)
    ok("refinery", "run")
    eventually("the landing event", lambda: "convoy_landed" in kinds(events))
    ok("feed")
    [landed] = [json.loads(x) for x in events.read_text().splitlines()]
    assert (landed["event"], landed["convoy"]) == ("convoy_landed", cid)
    outside = ok("bead", "create", "outside")
    stuck_bead = ok("bead", "create", "stuck", "--dep", outside)
    stranded = ok("create", "Stuck", stuck_bead)
    for _ in range(3):
        ok("feed")
    eventually("the stranded event", lambda: kinds(events).count("convoy_stranded") == 1)
    time.sleep(0.3)  # a second one would have been started by now: none was
    assert kinds(events).count("convoy_stranded") == 1
    assert json.loads(events.read_text().splitlines()[-1])["convoy"] == stranded


def test_a_hanging_then_failing_notifier_never_holds_the_command(state_repo):
    add_rig()
    gate = state_repo.parent / "gate"
    notifier(state_repo, body=f"while [ ! -e {gate} ]; do sleep 0.05; done\nexit 3\n")
    outside = ok("bead", "create", "outside")
    ok("create", "Stuck", ok("bead", "create", "stuck", "--dep", outside))
    ok("feed")  # returns while the notifier still waits: it runs detached
    folder = state_repo / ".git" / "convoy" / "events"
    [log] = [folder / n for n in os.listdir(folder) if n.endswith(".log")]
    assert "# exit" not in log.read_text()
    gate.write_text("")
    eventually("the notifier's exit status in its log", lambda: "# exit 3" in log.read_text())
    ok("feed")  # still stranded: not told again, the failure is not retried
    assert [n for n in os.listdir(folder) if n.endswith(".log")] == [log.name]


def test_the_launch_event_names_the_convoy(state_repo):
    add_rig()
    events = notifier(state_repo)
    epic = ok("bead", "create", "--type", "epic", "E")
    ok("bead", "create", "t", "--parent", epic)
    staged = ok("stage", epic, "--json")
    cid = json.loads(staged)["convoy"]
    ok("launch", cid)
    eventually("the launch event", lambda: "convoy_launched" in kinds(events))
    event = json.loads(events.read_text().splitlines()[0])
    assert event["convoy"] == cid and event["command"] == f"git convoy status {cid}"
