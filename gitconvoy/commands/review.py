"""`git convoy review show|run|approve|reject <epic>`: parsing and printing only."""

from __future__ import annotations

import click

from gitconvoy import cycle
from gitconvoy.commands.io import json_option, open_store, print_json, say, say_lines
from gitconvoy.errors import ConvoyError
from gitconvoy.land import integration
from gitconvoy.land import review as gate
from gitconvoy.state.model import Review


@click.group("review")
def review_group() -> None:
    """The review gate: an epic's integration branch is reviewed before it lands.

    On with `git config convoy.review true` (or `[review] enabled = true` in .convoy/config.toml
    on the trusted branch, convoy.configRef); the feeder starts a review when every child is in
    the branch.
    """


def _print(review: Review, full: bool) -> None:
    say(f"review {review.id}: {review.status}")
    say(f"  {review.branch} @ {review.tip[:12]} → {review.base}")
    if review.reason:
        say(f"  reason: {review.reason}")
    if review.fix_bead:
        say(f"  fix task: {review.fix_bead}")
    if review.note:
        say(f"  note: {review.note}")
    say(f"  findings: {len(review.findings)}")
    for finding in review.findings:
        say(f"    {finding}")
    if full and review.report:
        say("")  # the report is the state's text: indented, so none of it passes for ours
        say_lines(f"    {line}" for line in review.report.rstrip("\n").split("\n"))
    elif review.report_path:
        say(f"  report: {review.report_path}")


@review_group.command("show")
@click.argument("epic")
@click.option("--report", "full", is_flag=True, help="Print the whole report.")
@json_option
def show(epic: str, full: bool, as_json: bool) -> int:
    """The epic's latest review: status, findings, the report."""
    snap = open_store().snapshot()
    integration.find_epic(snap, epic)
    review = gate.latest(snap, epic)
    if review is None:
        raise ConvoyError(f"epic '{epic}' has no review yet")
    if as_json:
        print_json(review.to_dict())
    else:
        _print(review, full)
    return 0


@review_group.command("run")
@click.argument("epic")
@json_option
def run(epic: str, as_json: bool) -> int:
    """Review the epic's integration tip now (again, if it was reviewed already)."""
    started = gate.start(open_store(), epic, rerun=True)
    if as_json:
        print_json(started.review.to_dict())
    else:
        _print(started.review, False)
    return 0


@review_group.command("approve")
@click.argument("epic")
@click.option("--reason", help="Why (stored on the review).")
@click.option("--no-land", is_flag=True, help="Approve only; the next feed lands it.")
def approve(epic: str, reason: str | None, no_land: bool) -> int:
    """Approve the pending review, then land the integration branch."""
    done, landed, line, fed = cycle.approve(open_store(), epic, reason, land=not no_land)
    say(f"approved {done.review.id}")
    if landed is False:  # approved, recorded; the landing itself failed
        raise ConvoyError(line)
    if line:
        say(line)
    for fed_line in fed:
        say(f"feed: {fed_line}")
    return 0


@review_group.command("reject")
@click.argument("epic")
@click.option("--reason", help="What must change (goes into the fix task).")
def reject(epic: str, reason: str | None) -> int:
    """Reject the pending review: a fix task under the epic keeps it from landing."""
    done, fed = cycle.reject(open_store(), epic, reason)
    say(f"rejected {done.review.id}; fix task {done.fix_bead}")
    for line in fed:
        say(f"feed: {line}")
    return 0


review = review_group
