"""Living plans (issue 13): a plan that grows while its convoy runs is fed and finished.

Seen before: a child created under an epic of a running convoy was never tracked; the convoy
showed "1/1 closed", stayed open forever, and nothing warned.
"""

from __future__ import annotations

import json

from conftest import convoy, ok
from test_refinery_helpers import add_rig, bead_json, worker_commit


def land(repo, bead_id: str) -> None:
    worker_commit(repo, f"convoy/{bead_id}", {f"{bead_id}.txt": "work\n"})
    ok("done", bead_id)
    ok("refinery", "run")
    assert bead_json(bead_id)["status"] == "closed"


def status_of(convoy_id: str) -> dict:
    return json.loads(ok("status", convoy_id, "--json"))


def test_a_plan_that_grows_by_five_beads_closes_only_when_they_land(state_repo):
    add_rig(capacity=10)
    epic = ok("bead", "create", "--type", "epic", "Search")
    first = ok("bead", "create", "Index", "--parent", epic)
    cid = ok("create", "Search", epic, first)
    ok("feed")
    grown = []
    for i in range(5):
        res = convoy("bead", "create", f"found more work {i}", "--parent", epic)
        assert res.code == 0 and res.out.strip().startswith("t-"), res
        assert f"joins convoy {cid}" in res.err  # said on stderr; stdout stays the id
        grown.append(res.out.strip())
    ok("dep", "add", grown[4], grown[3])  # a dep added mid-flight is respected
    assert set(grown) <= set(status_of(cid)["tracks"])
    text = ok("status", cid)
    assert text.count("(added after launch)") == 5, text
    land(state_repo, first)
    assert status_of(cid)["status"] == "open"
    assert [bead_json(b)["status"] for b in grown] == ["hooked"] * 4 + ["open"]
    for bead_id in grown[:4]:
        land(state_repo, bead_id)
        assert status_of(cid)["status"] == "open"
    assert bead_json(grown[4])["status"] == "hooked"
    land(state_repo, grown[4])
    assert status_of(cid)["status"] == "closed"


def test_convoy_option_tracks_a_loose_bead_and_a_moved_bead_joins_too(state_repo):
    add_rig(capacity=10)
    epic = ok("bead", "create", "--type", "epic", "E")
    cid = ok("create", "E", epic, ok("bead", "create", "t", "--parent", epic))
    loose = ok("bead", "create", "loose", "--convoy", cid)
    assert loose in status_of(cid)["tracks"]
    later = ok("bead", "create", "later")
    res = convoy("bead", "update", later, "--parent", epic)
    assert res.code == 0 and f"{later} joins convoy {cid}" in res.err, res
    assert later in status_of(cid)["tracks"]
    closed = ok("create", "Other", ok("bead", "create", "x"))
    ok("close", closed, "--force")
    res = convoy("bead", "create", "y", "--convoy", closed)
    assert res.code == 1 and f"convoy {closed} is closed" in res.err, res
