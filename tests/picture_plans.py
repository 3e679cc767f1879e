"""Plans for the picture tests (test_graph, test_report_browser): snapshots built in memory."""

from __future__ import annotations

import random

from gitconvoy.state.model import Bead, Convoy, Dep
from gitconvoy.state.snapshot import Snapshot

# Titles a picture must survive: markup, entities, control characters, bidi overrides, a
# lone surrogate, wide characters and emoji, very wide Latin letters, and long words.
NASTY_TITLES = [
    '<script>alert("x")</script> & ]]> &amp; </svg>',
    "Escape \x1b[31mred\x1b[0m and a bell\x07, tab\tand\nnewline\r",
    "Bidi \u202eevil\u202c override and \u2066isolate\u2069 \ud800 lone surrogate",
    "漢字のタイトルがとても長い場合にも箱からはみ出さないこと 🚀🚀🚀🚀🚀",
    "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
    "ǱǱǱǱǱǱǱǱǱǱǱǱ ﷽﷽﷽ mmmmmmmmmmmmmmmmmmmmmmmmm @@@@@@@@@@@@@@@@@@@",
    "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii",
    "a",
]


def closed(bead: Bead) -> Bead:
    bead.status, bead.closed_at = "closed", "2026-01-01T00:00:00Z"
    return bead


def snapshot(beads: list[Bead], convoys: list[Convoy] = ()) -> Snapshot:  # type: ignore[assignment]
    return Snapshot(None, None, objects={"beads": {b.id: b for b in beads},
                                         "convoys": {c.id: c for c in convoys}})


def nasty_plan() -> Snapshot:
    """An epic with two sub-epics (B waits for A), every status, every blocking dep type,
    a decision that gates a task, a blocker outside the convoy and nasty titles."""
    beads = [
        Bead("np-root", "Nasty plan " + NASTY_TITLES[0], type="epic"),
        Bead("np-a", NASTY_TITLES[3], type="epic", parent="np-root"),
        Bead("np-b", NASTY_TITLES[4], type="epic", parent="np-root", deps=[Dep("np-a")]),
        Bead("np-dec", "Pick a token format", type="decision", parent="np-root"),
        Bead("ext-1", "Work in another convoy", status="in_progress"),
    ]
    statuses = ["open", "in_progress", "hooked", "blocked", "deferred", "open", "open", "open"]
    for n, title in enumerate(NASTY_TITLES):
        parent = "np-a" if n < 4 else "np-b"
        deps = []
        if n % 4:
            deps.append(Dep(f"np-t{n - 1}", ["blocks", "waits-for", "merge-blocks"][n % 3]))
        beads.append(Bead(f"np-t{n}", title, parent=parent, deps=deps, status=statuses[n],
                          priority=n % 5, assignee="bob" if n % 2 else None))
    beads.append(closed(Bead("np-done", "Already landed", parent="np-a")))
    beads.append(Bead("np-gated", "Waits for the decision", parent="np-root",
                      deps=[Dep("np-dec"), Dep("ext-1", "waits-for")]))
    beads.append(Bead("np-x" + "x" * 60, "A very long id", parent="np-root"))
    tracks = [b.id for b in beads if b.id != "ext-1"]
    return snapshot(beads, [Convoy("convoy-np", "Nasty " + NASTY_TITLES[1], tracks=tracks)])


def big_plan(areas: int = 10, features: int = 5, tasks: int = 10, seed: int = 7) -> Snapshot:
    """areas × features × tasks tasks under two levels of epics (500 by default), with
    random deps inside each feature and some areas waiting for the one before."""
    rnd = random.Random(seed)
    beads = [Bead("big", "A big plan", type="epic")]
    for s in range(areas):
        deps = [Dep(f"big.{s - 1}")] if s and s % 3 == 0 else []
        beads.append(Bead(f"big.{s}", f"Area {s}", type="epic", parent="big", deps=deps))
        for f in range(features):
            beads.append(Bead(f"big.{s}.{f}", f"Feature {s}.{f}", type="epic",
                              parent=f"big.{s}"))
            for t in range(tasks):
                deps = [Dep(f"big.{s}.{f}.{rnd.randrange(t)}")] if t and rnd.random() < .7 else []
                bead = Bead(f"big.{s}.{f}.{t}", f"Task {t} of feature {s}.{f}",
                            parent=f"big.{s}.{f}", deps=deps, priority=rnd.randrange(4))
                if rnd.random() < 0.2:
                    closed(bead)
                beads.append(bead)
    return snapshot(beads, [Convoy("convoy-big", "Big plan", tracks=[b.id for b in beads])])
