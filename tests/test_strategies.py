"""Issue 13 item 4: pluggable dispatch. A convoy's strategy chooses which ready beads the
feeder hands out: `blocks` (all that fit, highest priority first), `serial` (one at a time),
`coordinator` (the user's command answers), or a plugin from the entry-point group
`gitconvoy.strategies`. Whatever a strategy answers is checked; what cannot be dispatched
falls back to `blocks`, recorded once per cause on the convoy.

Workers here are the default dispatch (a branch, no command), so a dispatch is a state write
and nothing else; the rig's capacity is 1 unless a test says otherwise."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, ok, ref_of

from gitconvoy.errors import SchemaError
from gitconvoy.flow import feeder, strategies
from gitconvoy.plan.strategies import StrategyFailed
from gitconvoy.state.layout import object_path
from gitconvoy.state.model import Convoy, touched
from gitconvoy.state.store import Store

COORDINATOR = "coordinator.py"
LOWEST_PRIORITY = """
import json, sys
doc = json.load(sys.stdin)
open("seen.json", "w").write(json.dumps(doc))
pick = max(doc["ready"], key=lambda b: (b["priority"], b["id"]))
print(json.dumps({"dispatch": [pick["id"]]}))
"""


class World:
    """One repository with rig `app`, three ready beads of priority 0, 2 and 4 in a convoy,
    and a coordinator script beside the repository."""

    def __init__(self, repo: Path, capacity: int = 1) -> None:
        self.repo = repo
        ok("rig", "add", "app", "--target", "main", "--capacity", str(capacity))
        self.urgent = ok("bead", "create", "urgent", "--priority", "0")
        self.normal = ok("bead", "create", "normal", "--priority", "2")
        self.someday = ok("bead", "create", "someday", "--priority", "4")
        self.beads = [self.urgent, self.normal, self.someday]

    def convoy_of(self, *args: str) -> str:
        return ok("create", "work", *self.beads, *args)

    def coordinator(self, body: str, timeout: str | None = None) -> Path:
        script = self.repo.parent / COORDINATOR
        script.write_text(textwrap.dedent(body))
        git("config", "convoy.coordinator", f"{sys.executable} {script}", cwd=self.repo)
        if timeout:
            git("config", "convoy.coordinator.timeout", timeout, cwd=self.repo)
        return script

    def feed(self) -> dict:
        res = convoy("feed", "--json")
        assert res.code in (0, 1), res.err
        return json.loads(res.out)

    def dispatched(self, report: dict) -> list[str]:
        return [d["bead"] for d in report["dispatched"] if d["ok"]]

    def stored(self, convoy_id: str) -> Convoy:
        return Store.open(str(self.repo)).snapshot().convoys[convoy_id]

    def set_strategy(self, convoy_id: str, name: str) -> None:
        """As a state written elsewhere would say it (no check of the name)."""
        store = Store.open(str(self.repo))
        store.transact(lambda tx: tx.put(touched(tx.convoy(convoy_id), strategy=name)),
                       f"strategy {name}")

    def finish(self, bead_id: str) -> None:
        ok("bead", "close", bead_id)


@pytest.fixture
def world(state_repo: Path) -> World:
    return World(state_repo)


# --- blocks and the coordinator in control ------------------------------------------------


def test_blocks_hands_out_the_most_urgent_bead_first(world):
    cid = world.convoy_of()
    assert world.dispatched(world.feed()) == [world.urgent]
    assert world.stored(cid).strategy == "blocks"
    stored = git("show", f"{STATE_REF}:{object_path('convoys', cid)}", cwd=world.repo)
    assert f"id: {cid}" in stored and "strategy" not in stored  # the file as before


def test_a_coordinator_that_picks_the_lowest_priority_bead_is_in_control(world):
    world.coordinator(LOWEST_PRIORITY)
    cid = world.convoy_of("--strategy", "coordinator")

    assert world.dispatched(world.feed()) == [world.someday]  # capacity 1: its pick, first

    seen = json.loads((world.repo / "seen.json").read_text())  # ran in the main worktree top
    assert seen["convoy"] == {"id": cid, "title": "work", "strategy": "coordinator"}
    assert seen["capacity"] == 1 and seen["version"] == 1
    assert [b["id"] for b in seen["ready"]] == world.beads  # highest priority first
    assert seen["ready"][0]["rig"] == "app" and seen["in_flight"] == []
    assert world.stored(cid).strategy_fallback is None

    world.finish(world.someday)
    assert world.dispatched(world.feed()) == [world.normal]


def test_the_coordinator_is_not_asked_when_no_slot_is_free(world):
    script = world.coordinator(LOWEST_PRIORITY)
    world.convoy_of("--strategy", "coordinator")
    world.feed()
    (world.repo / "seen.json").unlink()
    before = ref_of(world.repo)
    assert world.dispatched(world.feed()) == []
    assert not (world.repo / "seen.json").exists() and script.exists()
    assert ref_of(world.repo) == before


# --- an invalid answer falls back to blocks, recorded once per cause ----------------------


INVALID = {
    "not JSON": ('print("take the urgent one")', "answer is not JSON"),
    "not the answer's shape": ('print("[1, 2]")', 'not {"dispatch": [bead ids]}'),
    "an unknown id": ('print(\'{"dispatch": ["t-nope"]}\')', "which convoy"),
    "exits non-zero": ('import sys; sys.stderr.write("no model\\n"); sys.exit(3)',
                       "exited 3: no model"),
    "times out": ("import time; time.sleep(20)", "did not answer within 0.5s"),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_an_invalid_coordinator_answer_falls_back_to_blocks_once(world, case):
    body, cause = INVALID[case]
    world.coordinator(body, timeout="0.5")
    cid = world.convoy_of("--strategy", "coordinator")

    report = world.feed()
    assert world.dispatched(report) == [world.urgent]  # what blocks hands out
    [fallback] = report["fallbacks"]
    assert fallback["convoy"] == cid and cause in fallback["cause"]
    recorded = world.stored(cid)
    assert cause in (recorded.strategy_fallback or "")
    status = ok("status", cid)
    assert "strategy coordinator: fell back to blocks at " in status and cause in status

    world.finish(world.urgent)  # a free slot: the coordinator is asked again, fails again
    lines = ok("feed").splitlines()
    assert any(line.startswith(f"convoy {cid}: strategy coordinator fell back to blocks: ")
               for line in lines)
    assert world.stored(cid).strategy_fallback_at == recorded.strategy_fallback_at
    log = git("log", "--format=%s", STATE_REF, cwd=world.repo).splitlines()
    assert log.count(f"feed: strategy fallback {cid}") == 1  # one write for one cause


def test_a_chosen_bead_that_is_not_ready_falls_back(world):
    blocked = ok("bead", "create", "blocked", "--dep", world.urgent)
    world.coordinator(f'print(\'{{"dispatch": ["{blocked}"]}}\')')
    cid = ok("create", "work", *world.beads, blocked, "--strategy", "coordinator")
    report = world.feed()
    assert world.dispatched(report) == [world.urgent]
    assert report["fallbacks"][0]["cause"] == (
        f"the coordinator chose '{blocked}', which is not ready (open)")
    assert world.stored(cid).strategy_fallback


def test_a_coordinator_that_answers_again_clears_the_record(world):
    world.coordinator("print('nonsense')")
    cid = world.convoy_of("--strategy", "coordinator")
    world.feed()
    assert world.stored(cid).strategy_fallback
    world.coordinator(LOWEST_PRIORITY)
    world.finish(world.urgent)
    report = world.feed()
    assert world.dispatched(report) == [world.someday] and report["fallbacks"] == []
    assert world.stored(cid).strategy_fallback is None
    assert ok("status", cid).splitlines()[2] == "  strategy coordinator"


def test_no_coordinator_command_is_a_fallback_and_a_warning_at_launch(world):
    res = convoy("create", "work", *world.beads, "--strategy", "coordinator")
    assert res.code == 0 and "warning: no coordinator command is set" in res.err
    cid = res.out.strip()
    report = world.feed()
    assert world.dispatched(report) == [world.urgent]
    assert "no coordinator command is set" in report["fallbacks"][0]["cause"]
    assert world.stored(cid).strategy_fallback
    assert f"warn  config: convoy {cid} uses the coordinator strategy but no coordinator " \
        "command is set" in convoy("doctor").out
    world.coordinator(LOWEST_PRIORITY)
    assert "ok    config: coordinator: command " in convoy("doctor").out


def test_a_coordinator_set_in_the_state_is_never_run(world, tmp_path):
    """Only git config or the trusted file name the command: a state that carries one (in
    any field it could) gets a fallback, never a run."""
    marker = tmp_path / "ran"
    cid = world.convoy_of()
    world.set_strategy(cid, "coordinator")
    store = Store.open(str(world.repo))
    store.transact(lambda tx: tx.put(touched(tx.convoy(cid), title=f"touch {marker}")),
                   "a title that looks like a command")
    report = world.feed()
    assert "no coordinator command is set" in report["fallbacks"][0]["cause"]
    assert not marker.exists()


def test_a_hook_leaves_a_coordinator_convoy_to_feed(world):
    world.coordinator(LOWEST_PRIORITY)
    cid = world.convoy_of("--strategy", "coordinator")
    store = Store.open(str(world.repo))
    report = feeder.feed(store, budget=feeder.Budget(detach=True))
    assert report.dispatched == [] and report.strategy_deferred == [cid]
    assert f"convoy {cid}: its coordinator runs a command, which a hook does not wait " \
           "for: run 'git convoy feed'" in report.lines()
    assert not (world.repo / "seen.json").exists()
    assert world.dispatched(world.feed()) == [world.someday]  # by hand: asked
    quiet = feeder.feed(Store.open(str(world.repo)), budget=feeder.Budget(detach=True))
    assert quiet.strategy_deferred == [] and quiet.dispatched == []  # full: nothing to say


# --- serial -------------------------------------------------------------------------------


def test_serial_dispatches_one_bead_at_a_time_in_wave_order(state_repo):
    world = World(state_repo, capacity=3)
    later = ok("bead", "create", "later", "--priority", "0", "--dep", world.someday)
    cid = ok("create", "work", *world.beads, later, "--strategy", "serial")
    order = []
    for _ in range(4):
        report = world.feed()
        sent = world.dispatched(report)
        assert len(sent) == 1, report
        assert world.dispatched(world.feed()) == []  # one in flight: nothing more
        order += sent
        world.finish(sent[0])
    assert order == [world.urgent, world.normal, world.someday, later]
    assert "strategy serial" in ok("status", cid)


# --- untrusted names, the command line ------------------------------------------------------


def test_an_unknown_strategy_in_the_state_falls_back_in_one_line(world):
    cid = world.convoy_of()
    world.set_strategy(cid, "quantum")
    assert "quantum: not installed here" in ok("status", cid)
    res = convoy("feed")
    assert res.code == 0 and "Traceback" not in res.err + res.out
    assert (f"convoy {cid}: strategy quantum fell back to blocks: strategy 'quantum' is not "
            "installed here (no entry point of that name in the group "
            "gitconvoy.strategies) (recorded; fix it, or 'git convoy launch "
            f"{cid} --strategy blocks')") in res.out.splitlines()
    assert world.stored(cid).strategy_fallback


@pytest.mark.parametrize("value", ["../../bin/sh", "-x", "sh -c id", ["blocks"], True])
def test_a_strategy_that_is_not_a_name_is_a_broken_convoy_file(value):
    with pytest.raises(SchemaError) as caught:
        Convoy.from_dict({"id": "c-1", "title": "t", "strategy": value}, "convoys/c-1.yaml")
    assert "convoys/c-1.yaml" in caught.value.message
    assert "strategy" in caught.value.message and "\n" not in caught.value.message


def test_launch_sets_the_strategy_and_refuses_an_unknown_one(world):
    cid = ok("create", "work", *world.beads)
    bad = convoy("launch", cid, "--strategy", "quantum")
    assert bad.code != 0 and "Traceback" not in bad.err
    assert bad.err.strip().splitlines() == [
        "error: unknown strategy 'quantum': use blocks, serial, coordinator or one "
        "installed under the entry-point group gitconvoy.strategies"]
    world.coordinator("print('nonsense')")
    world.set_strategy(cid, "coordinator")
    world.feed()
    assert world.stored(cid).strategy_fallback
    out = ok("launch", cid, "--strategy", "serial")  # an open convoy: from now on
    assert out.startswith(f"fed {cid} (strategy serial)")
    assert world.stored(cid).strategy == "serial"
    assert world.stored(cid).strategy_fallback is None


def test_stage_records_the_strategy(world):
    epic = ok("bead", "create", "--type", "epic", "plan")
    ok("bead", "create", "step", "--parent", epic)
    out = ok("stage", epic, "--strategy", "serial")
    cid = out.splitlines()[-1].split()[2]
    assert "strategy serial" in out and world.stored(cid).strategy == "serial"
    assert ok("stage", epic).count("strategy serial") == 1  # a re-stage keeps it


# --- third-party strategies ---------------------------------------------------------------


PLUGIN = """
class LowestFirst:
    def choose(self, turn):
        return [b.id for b in reversed(turn.ready)]


class Explodes:
    def choose(self, turn):
        raise RuntimeError("out of tokens")


not_a_strategy = 42
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A distribution installed in a folder on sys.path: its entry points are what
    importlib.metadata finds, as for one installed with pip."""
    site = tmp_path / "site"
    info = site / "convoy_plugin_demo-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "convoy_plugin_demo.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: convoy-plugin-demo\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[gitconvoy.strategies]\nlowest-first = convoy_plugin_demo:LowestFirst\n"
        "explodes = convoy_plugin_demo:Explodes\n"
        "not-one = convoy_plugin_demo:not_a_strategy\n"
        "blocks = convoy_plugin_demo:Explodes\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("convoy_plugin_demo", None)


def test_an_installed_plugin_chooses(world, plugin):
    cid = world.convoy_of("--strategy", "lowest-first")
    report = world.feed()
    assert world.dispatched(report) == [world.someday] and report["fallbacks"] == []
    assert "strategy lowest-first" in ok("status", cid)


def test_a_plugin_that_raises_falls_back(world, plugin):
    cid = world.convoy_of("--strategy", "explodes")
    report = world.feed()
    assert world.dispatched(report) == [world.urgent]
    assert report["fallbacks"][0]["cause"] == (
        "strategy explodes failed: RuntimeError: out of tokens")
    assert world.stored(cid).strategy_fallback


def test_the_loader_takes_entry_points_and_no_built_in_name(plugin):
    found = metadata.entry_points(group=strategies.GROUP)
    assert set(strategies.installed(found)) >= {"lowest-first", "explodes", "not-one"}
    assert "blocks" not in strategies.installed(found)  # a plugin cannot take a built-in
    assert type(strategies.load_plugin("lowest-first", found)).__name__ == "LowestFirst"
    with pytest.raises(StrategyFailed, match="has no choose"):
        strategies.load_plugin("not-one", found)
    missing = metadata.EntryPoint(name="gone", value="no_such_module_here:Thing",
                                  group=strategies.GROUP)
    with pytest.raises(StrategyFailed, match="could not be loaded: ModuleNotFoundError"):
        strategies.load_plugin("gone", [missing])
    with pytest.raises(StrategyFailed, match="not installed here"):
        strategies.load_plugin("elsewhere", [missing])
