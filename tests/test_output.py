"""Output at the speed of the data (issue 12, item 4): a text list is one write to the
stream, JSON is compact (one line) unless --pretty asks for indentation, and what people
read is unchanged: the same lines, still made inert."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import click
import pytest
from conftest import ok

from gitconvoy import manpage
from gitconvoy.cli import cli, main
from gitconvoy.plan import graph
from gitconvoy.render.text import bead_line, inert
from gitconvoy.state.store import Store

EVIL_TITLE = "plain \x1b]0;retitled\x07 title"


class CountingStream(io.StringIO):
    """stdout that counts the writes a command makes (click probes a stream with empty
    writes first: those carry nothing)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += bool(text)
        return super().write(text)


def run(*args: str) -> CountingStream:
    out = CountingStream()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        try:
            main(list(args))
        except SystemExit as exc:
            assert not exc.code, f"git convoy {' '.join(args)} -> {exc.code}"
    return out


@pytest.fixture
def listed(state_repo: Path) -> Path:
    """40 beads, a chain of blockers among the first ten, and one title with an escape."""
    batch = state_repo / "batch.yaml"
    batch.write_text("".join(f"- title: task {n}\n  priority: {n % 5}\n" for n in range(40))
                     + f"- title: {json.dumps(EVIL_TITLE)}\n")
    ok("bead", "create", "--batch", str(batch))
    beads = sorted(Store.open(str(state_repo)).snapshot().beads)
    for a, b in zip(beads[:10], beads[1:11], strict=True):
        ok("dep", "add", a, b)
    return state_repo


def expected(found: list) -> str:
    return "".join(inert(bead_line(b)) + "\n" for b in found)


def test_a_list_is_one_write_with_the_same_lines(listed: Path) -> None:
    beads = Store.open(str(listed)).snapshot().beads
    listing = run("bead", "list")
    assert listing.writes == 1
    assert listing.getvalue() == expected(sorted(beads.values(), key=graph.sort_key))
    assert "\\x1b]0;retitled\\x07" in listing.getvalue()  # still inert
    ready = run("ready")
    assert ready.writes == 1
    assert ready.getvalue() == expected(graph.ready_beads(beads))
    blocked = run("blocked")
    assert blocked.writes == 1
    assert blocked.getvalue().count("    blocked by ") == 10


def test_an_empty_list_prints_nothing(state_repo: Path) -> None:
    assert run("bead", "list").getvalue() == ""


@pytest.mark.parametrize("args", [("bead", "list"), ("ready",), ("blocked",), ("list",),
                                  ("doctor",), ("rig", "list")])
def test_json_is_compact_and_pretty_on_request(listed: Path, args: tuple[str, ...]) -> None:
    compact = run(*args, "--json")
    pretty = run(*args, "--json", "--pretty")
    document = json.loads(compact.getvalue())
    assert compact.writes == 1 and pretty.writes == 1
    assert compact.getvalue() == json.dumps(document, separators=(",", ":"),
                                            ensure_ascii=False) + "\n"
    assert pretty.getvalue() == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_every_command_with_json_offers_pretty() -> None:
    with_json = []
    for cmd, _ in manpage.walk(cli, click.Context(cli, info_name="git convoy")):
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if "--json" in options:
            with_json.append(cmd.name)
            assert "--pretty" in options, cmd.name
    assert len(with_json) > 20
