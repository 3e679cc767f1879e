"""`git convoy done` and `git convoy refinery run|status|retry`: parsing and printing only."""

from __future__ import annotations

import os

import click

from gitconvoy import cycle
from gitconvoy.commands.io import json_option, open_store, print_json, say, warn_broken
from gitconvoy.commands.refargs import branch_value
from gitconvoy.errors import EXIT_RACE, ConvoyError
from gitconvoy.land import refinery as engine
from gitconvoy.state.store import Store


@click.command()
@click.argument("bead", required=False)
@click.option("--target", help="Land on this branch instead of the bead's target.",
              callback=branch_value)
@click.option("--branch", help="The work branch (default: the bead's branch or HEAD's).",
              callback=branch_value)
@json_option
def done(bead: str | None, target: str | None, branch: str | None, as_json: bool) -> int:
    """Queue the work branch's tip for landing (a merge request for the refinery)."""
    store = open_store()
    queued = engine.queue_mr(store, bead, target=target, branch=branch)
    for warning in queued.warnings:
        say(f"warning: {warning}", err=True)
    mr = queued.mr
    _warn_unfinished(store, mr.bead)
    if as_json:
        print_json({**engine.mr_json(mr), "new": queued.new, "superseded": queued.superseded})
        return 0
    if not queued.new:
        hint = "nothing to do"
        if mr.status == "rejected":
            hint = (f"it was rejected ({mr.reason}); commit a fix and run done again, or "
                    f"'git convoy refinery retry {mr.id}'")
        say(f"{mr.id} already queued for {mr.branch} @ {mr.commit[:10]} "
            f"({mr.status}): {hint}")
        return 0
    land_now = cycle.lands_on_done(store)
    say(f"queued {mr.id}: {mr.branch} @ {mr.commit[:10]} → {mr.target} "
        f"(bead {mr.bead})" + ("" if land_now else "; land it with 'git convoy refinery run'"))
    for old in queued.superseded:
        say(f"superseded {old}")
    if not land_now:
        return 0
    say(f"landing {mr.id} now (convoy.refinery.onDone): merge, check, push …")
    return _print_report(cycle.land_queue(store, only={mr.id}), False, [])


def _warn_unfinished(store: Store, bead_id: str) -> None:
    """Steps of the bead's formula nobody recorded: said, not enforced (the MR is queued)."""
    from gitconvoy.flow import work

    left, problem = work.unfinished(store, bead_id)
    if problem:
        say(f"warning: {problem}", err=True)
    elif left:
        say(f"warning: {bead_id}: formula steps not recorded as done: {', '.join(left)} "
            f"(queued anyway; record them with 'git convoy step done {bead_id} <step>')",
            err=True)


@click.group("refinery")
def refinery_group() -> None:
    """Land queued merge requests: merge in memory, check, compare-and-swap, push."""


@refinery_group.command("run")
@click.option("--once", is_flag=True, help="Land at most one merge request.")
@click.option("--adopt", is_flag=True,
              help="First queue idle work branches that never ran 'done'.")
@json_option
def run_cmd(once: bool, adopt: bool, as_json: bool) -> int:
    """Land the queue, best first (priority, retries, age)."""
    store = open_store()
    adopted = []
    if adopt:
        for item in engine.anomalies(store, store.snapshot()):
            if item["kind"] == "unqueued_work":
                try:
                    adopted.append(engine.queue_mr(store, item["bead"]).mr.id)
                except ConvoyError as exc:
                    say(f"warning: could not queue {item['bead']}: {exc.message}",
                        err=True)
    report = cycle.land_queue(store, once=once)
    return _print_report(report, as_json, adopted)


@refinery_group.command("watch")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds between two looks at the state ref.")
@click.option("--retry-every", type=float, default=60.0, show_default=True,
              help="Land again after this many seconds even if nothing moved.")
@click.option("--rounds", type=int, default=None, help="Stop after this many landing rounds.")
def watch_cmd(interval: float, retry_every: float, rounds: int | None) -> int:
    """Keep landing: whatever is queued, then again whenever the state moves.

    One lander per repository (a lock the kernel drops if it dies). Ctrl-C or SIGTERM stops
    it after the landing in progress; a second one stops it at once.
    """
    import signal

    from gitconvoy import lander

    store = open_store()
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if stopping:
            raise KeyboardInterrupt
        stopping.append(signum)
        say("refinery watch: stopping after the landing in progress", err=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def report(run: engine.RunReport) -> None:
        if run.steps or run.notices or run.fed:
            _print_report(run, False, [])

    options = lander.WatchOptions(interval=max(interval, 0.05), retry_every=retry_every,
                                  max_rounds=rounds)

    def started() -> None:
        say(f"refinery watch: landing {store.ref}'s queue (pid {os.getpid()}); Ctrl-C stops",
            err=True)

    done_rounds = lander.watch(store, options, report, lambda: bool(stopping), started)
    say(f"refinery watch: stopped after {done_rounds} round(s)", err=True)
    return 0


@refinery_group.command("serve", hidden=True)
def serve_cmd() -> int:
    """Run by the server's post-receive hook: land while pushes keep queueing, then exit."""
    from gitconvoy import lander

    store = open_store()
    rounds = lander.serve(store, lambda run: _print_report(run, False, []))
    say(f"refinery serve: {rounds} round(s)", err=True)
    return 0


@refinery_group.command("retry")
@click.argument("mr")
@json_option
def retry_cmd(mr: str, as_json: bool) -> int:
    """Requeue one merge request (push_failed, rejected, conflict, orphaned) and land it."""
    return _print_report(cycle.retry(open_store(), mr), as_json, [])


def _print_report(report: engine.RunReport, as_json: bool, adopted: list[str]) -> int:
    """Print a run; exit 3 (docs: lost race or conflict) when an MR ended in conflict or
    push_failed, so a script or CI job sees that the queue did not land."""
    landed = sum(1 for s in report.steps if s.outcome in ("landed", "already"))
    stuck = [s for s in report.steps if s.outcome in ("conflict", "push_failed")]
    if as_json:
        print_json({
            "adopted": adopted,
            "steps": [{"mr": s.mr, "bead": s.bead, "outcome": s.outcome, "sha": s.sha,
                       "detail": s.detail, "notes": s.notes} for s in report.steps],
            "notices": report.notices, "fed": report.fed, "waiting": report.waiting,
        })
        return EXIT_RACE if stuck else 0
    for mr_id in adopted:
        say(f"queued idle work as {mr_id}")
    for notice in report.notices:
        say(f"notice: {notice}")
    for step in report.steps:
        say(step.line())
        for note in step.notes:
            say(f"  {note}")
    for line in report.fed:
        say(f"feed: {line}")
    for line in report.waiting:
        say(f"waiting: {line}")
    if not report.steps:
        say("refinery: nothing queued")
    else:
        say(f"refinery: {landed} of {len(report.steps)} landed")
    return EXIT_RACE if stuck else 0


@refinery_group.command("status")
@json_option
def status_cmd(as_json: bool) -> int:
    """The queue with ages, conflicts and anomalies (each with the command that helps)."""
    store = open_store()
    warn_broken(store.snapshot())
    data = engine.status(store)
    if as_json:
        print_json(data)
        return 0
    queue = data["queue"]
    say(f"queue: {len(queue)} open, {data['merged']} merged")
    for row in queue:
        age = engine.format_age(row["age_seconds"])
        extra = f"  {row['reason']}" if row.get("reason") else ""
        say(f"  {row['id']:<10} {row['bead']:<12} {row['status']:<12} {age:>6}  "
            f"retries {row['retries']}  {row['branch']} → {row['target']}{extra}")
    if data["anomalies"]:
        say("anomalies:")
        for item in data["anomalies"]:
            who = item["mr"] or item["bead"]
            say(f"  {item['kind']} {who}: {item['detail']}")
            say(f"    → {item['command']}")
    return 0


refinery = refinery_group
