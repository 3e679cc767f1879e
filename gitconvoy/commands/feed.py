"""`git convoy feed`: one feeder step, by hand (hooks run it by themselves)."""

from __future__ import annotations

import click

from gitconvoy import cycle
from gitconvoy.commands.io import json_option, open_store, print_json, say


@click.command()
@json_option
def feed(as_json: bool) -> int:
    """Run one feeder step: close landed work, roll up epics, dispatch what is ready."""
    store = open_store()
    repushed = cycle.repush_due(store)
    steps = repushed.steps if repushed else []
    report = cycle.feed(store)
    if as_json:
        print_json({
            "repushed": [{"mr": s.mr, "bead": s.bead, "outcome": s.outcome, "sha": s.sha,
                          "detail": s.detail} for s in steps],
            "landed": [{"id": b, "sha": s} for b, s in report.landed],
            "started": report.started,
            "epics": [{"id": e, "status": s} for e, s in report.epics],
            "dispatched": [r.__dict__ for r in report.dispatched],
            "closed_convoys": report.closed_convoys,
            "stranded": report.stranded,
            "unpushed": [{"id": b, "sha": s, "missing_on": r} for b, s, r in report.unpushed],
            "behind": [{"id": b.bead, "target": b.target,
                        "missing": [{"blocker": x, "sha": c} for x, c in b.missing]}
                       for b in report.behind],
            "caught_up": report.caught_up,
        })
        return 0
    for step in steps:
        say(f"refinery: pushed again: {step.line()}")
    for line in report.lines():
        say(line)
    return 0
