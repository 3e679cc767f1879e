"""`git convoy feed`: one feeder step, by hand (hooks run it by themselves)."""

from __future__ import annotations

import click

from gitconvoy import cycle
from gitconvoy.commands.io import json_option, open_store, print_json, say
from gitconvoy.errors import EXIT_USER
from gitconvoy.flow.dispatch import nothing_dispatched


@click.command()
@json_option
def feed(as_json: bool) -> int:
    """Run one feeder step: close landed work, roll up epics, dispatch what is ready.
    Exits 1 when it tried to dispatch and nothing was dispatched (docs/convoys.md)."""
    store = open_store()
    repushed = cycle.repush_due(store)
    steps = repushed.steps if repushed else []
    report = cycle.feed(store)
    failed = nothing_dispatched(report.dispatched)
    if as_json:
        print_json({
            "repushed": [{"mr": s.mr, "bead": s.bead, "outcome": s.outcome, "sha": s.sha,
                          "detail": s.detail} for s in steps],
            "landed": [{"id": b, "sha": s} for b, s in report.landed],
            "started": report.started,
            "epics": [{"id": e, "status": s} for e, s in report.epics],
            "dispatched": [r.to_json() for r in report.dispatched],
            "closed_convoys": report.closed_convoys,
            "stranded": report.stranded,
            "waiting": [{"convoy": w.convoy, "next_try": w.next_try,
                         "beads": [{"id": b, "next_try": t, "last_error": e}
                                   for b, t, e in w.beads]} for w in report.waiting],
            "unpushed": [{"id": b, "sha": s, "missing_on": r} for b, s, r in report.unpushed],
            "behind": [{"id": b.bead, "target": b.target,
                        "missing": [{"blocker": x, "sha": c} for x, c in b.missing]}
                       for b in report.behind],
            "caught_up": report.caught_up,
            "fallbacks": [{"convoy": c, "strategy": s, "cause": why}
                          for c, s, why in report.fallbacks],
            "strategy_deferred": report.strategy_deferred,
        })
        return EXIT_USER if failed else 0
    for step in steps:
        say(f"refinery: pushed again: {step.line()}")
    for line in report.lines():
        say(line)
    if failed:
        say("error: no dispatch succeeded: fix what each ✗ line names (the feeder retries)",
            err=True)
    return EXIT_USER if failed else 0
