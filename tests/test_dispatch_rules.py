"""The claim is the last word (flow/dispatch.py): whatever a caller saw in its snapshot, the
claim transaction itself refuses a blocked bead and a full rig. Sling and the feeder filter
first, so only a race reaches these checks; bench/mutate.py showed no test did."""

from __future__ import annotations

import json

from conftest import git, ok

from gitconvoy.flow.dispatch import dispatch_bead
from gitconvoy.state.store import Store


def shown(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


def test_the_claim_refuses_a_bead_that_is_blocked_by_now(state_repo):
    ok("rig", "add", "app", "--target", "main")
    blocker = ok("bead", "create", "first")
    late = ok("bead", "create", "second")
    ok("dep", "add", late, blocker)  # e.g. added after a feeder read the state
    before = git("rev-parse", "convoy/state")

    result = dispatch_bead(Store.open(), late, rig_name="app")

    assert not result.ok
    assert result.detail == (f"not dispatched: blocked by {blocker} (open, blocks): the "
                             "feeder dispatches it once that closes (git convoy blocked)")
    assert shown(late)["status"] == "open"
    assert git("rev-parse", "convoy/state") == before
    assert git("branch", "--list", f"convoy/{late}") == ""


def test_the_claim_refuses_a_rig_at_capacity(state_repo):
    ok("rig", "add", "app", "--target", "main", "--capacity", "1")
    first = ok("bead", "create", "first", "-p", "0")
    second = ok("bead", "create", "second")

    assert dispatch_bead(Store.open(), first, rig_name="app").ok
    result = dispatch_bead(Store.open(), second, rig_name="app")

    assert not result.ok
    assert result.detail == ("not dispatched: rig app is at capacity (1): the feeder "
                             "dispatches it when a slot frees (more: git convoy rig update app "
                             "--capacity N)")
    assert shown(first)["status"] == "hooked"
    assert shown(second)["status"] == "open"
