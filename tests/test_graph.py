"""Pictures of a plan: `git convoy graph --format svg|mermaid|dot` and `git convoy report`.

The SVG is checked as XML here (one box per bead, one arrow per blocking dep, every box
inside the picture and its frame, nothing overlapping, a 500-bead plan fast and folded);
tests/test_report_browser.py checks what a real browser draws.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, ok, ref_of
from hypothesis import given, settings
from hypothesis import strategies as st
from picture_plans import NASTY_TITLES, big_plan, nasty_plan, snapshot

from gitconvoy.plan.scope import scope_of
from gitconvoy.render import svg as svgmod
from gitconvoy.render.dot import render_dot
from gitconvoy.render.markdown import mermaid_dag
from gitconvoy.render.svg import fit, layout, render_svg, text_width, visible
from gitconvoy.state.model import Bead, Convoy, Dep

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def boxes(root: ET.Element, kind: str | None = None) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if "data-id" in g.attrib
            and (kind is None or g.get("class", "").split()[0] == kind)]


def arrows(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{NS}path") if p.get("class") == "dep"]


def blocking_deps(snap, members) -> int:
    return sum(len(snap.beads[b].blocking_deps()) for b in members)


# --- the SVG as XML ---------------------------------------------------------------------------


def test_every_bead_has_one_box_and_every_blocking_dep_one_arrow() -> None:
    snap = nasty_plan()
    scope = scope_of(snap, "convoy-np")
    root = parse(render_svg(snap, scope))
    drawn = [g.get("data-id") for g in boxes(root) if g.get("class", "").split()[0] != "outside"]
    assert sorted(drawn) == sorted(scope.members)
    assert [g.get("data-id") for g in boxes(root, "outside")] == ["ext-1"]
    epics = {g.get("data-id") for g in boxes(root, "epic")}
    assert epics == {"np-root", "np-a", "np-b"}
    assert len(arrows(root)) == blocking_deps(snap, scope.members)
    kinds = {(a.get("data-from"), a.get("data-to"), a.get("data-type")) for a in arrows(root)}
    assert ("np-a", "np-b", "blocks") in kinds  # sub-epic B waits for sub-epic A
    assert ("ext-1", "np-gated", "waits-for") in kinds
    assert ("np-t5", "np-t6", "blocks") in kinds


def test_titles_are_escaped_and_control_characters_made_visible() -> None:
    snap = nasty_plan()
    text = render_svg(snap, scope_of(snap, "convoy-np"))
    parse(text)  # valid XML: no raw control character, no unescaped markup
    assert "<script>" not in text and "]]>" not in text
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text)
    assert "\\x1b[31mred" in text
    assert "\\u202eevil" in text
    assert "&lt;script&gt;" in text
    tips = [t.text for t in parse(text).iter(f"{NS}title")]
    assert any(t and "\\ud800 lone surrogate" in t for t in tips)  # full title in a tooltip


@pytest.mark.parametrize("title", NASTY_TITLES)
def test_a_shortened_title_fits_the_estimated_width(title: str) -> None:
    short = fit(title, 11, 168)
    assert text_width(short, 11) <= 168
    assert short == visible(" ".join(title.split())) or short.endswith("…")


def test_a_500_bead_plan_renders_in_well_under_a_second_and_folds_its_sub_epics() -> None:
    snap = big_plan()
    scope = scope_of(snap, "convoy-big")
    assert sum(snap.beads[b].type == "task" for b in scope.members) == 500
    start = time.perf_counter()
    text = render_svg(snap, scope)
    took = time.perf_counter() - start
    assert took < 0.5, f"{took:.3f}s"
    root = parse(text)
    groups = boxes(root, "group")
    assert len(groups) == 50  # one box per feature, inside ten open area frames
    assert len(boxes(root, "bead")) == 0
    assert {g.get("data-id") for g in boxes(root, "epic")} == {"big"} | {
        f"big.{s}" for s in range(10)}
    assert len(boxes(root)) <= svgmod.MAX_BOXES
    first = next(g for g in groups if g.get("data-id") == "big.0.0")
    inside = [b for b in scope.members if b.startswith("big.0.0.")]
    closed = sum(snap.beads[b].status == "closed" for b in inside)
    assert f"{closed}/{len(inside)}" in "".join(first.itertext())
    # arrows between folded boxes: one per pair of boxes and dep type
    assert {(a.get("data-from"), a.get("data-to")) for a in arrows(root)} == {
        ("big.2", "big.3"), ("big.5", "big.6"), ("big.8", "big.9")}


def test_max_boxes_zero_draws_all_500_beads_still_fast() -> None:
    snap = big_plan()
    scope = scope_of(snap, "convoy-big")
    start = time.perf_counter()
    root = parse(render_svg(snap, scope, max_boxes=0))
    assert time.perf_counter() - start < 1.0
    assert len(boxes(root, "bead")) == 500
    assert len(arrows(root)) == blocking_deps(snap, scope.members)


def test_folding_opens_whole_levels_while_they_fit() -> None:
    snap = big_plan(areas=4, features=3, tasks=20)  # 240 tasks, 12 features, 4 areas
    scope = scope_of(snap, "convoy-big")
    assert len(boxes(parse(render_svg(snap, scope, max_boxes=11)), "group")) == 4
    assert len(boxes(parse(render_svg(snap, scope, max_boxes=12)), "group")) == 12
    assert len(boxes(parse(render_svg(snap, scope, max_boxes=240)), "bead")) == 240


# --- geometry, for any plan -------------------------------------------------------------------


def overlap(a, b) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def inside(inner, outer) -> bool:
    return (outer.x <= inner.x and inner.x + inner.w <= outer.x + outer.w
            and outer.y <= inner.y and inner.y + inner.h <= outer.y + outer.h)


@st.composite
def plans(draw):
    n = draw(st.integers(1, 40))
    beads: list[Bead] = []
    epics: list[str] = []
    for i in range(n):
        kind = draw(st.sampled_from(["task", "task", "task", "epic", "decision", "bug"]))
        parent = draw(st.sampled_from([None, *epics])) if epics else None
        earlier = [b.id for b in beads]
        deps = [Dep(on, draw(st.sampled_from(["blocks", "waits-for", "merge-blocks"])))
                for on in draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True))
                ] if earlier else []
        if draw(st.booleans()) and i % 7 == 0:
            deps.append(Dep("outside-1"))
        status = draw(st.sampled_from(["open", "open", "in_progress", "hooked", "closed",
                                       "blocked", "deferred"]))
        bead = Bead(f"b{i}", f"bead {i}", type=kind, parent=parent, deps=deps, status=status,
                    closed_at="2026-01-01T00:00:00Z" if status == "closed" else None)
        beads.append(bead)
        if kind == "epic":
            epics.append(bead.id)
    max_boxes = draw(st.sampled_from([0, 3, 10, 150]))
    return snapshot(beads, [Convoy("convoy-h", "h", tracks=[b.id for b in beads])]), max_boxes


@given(plans())
@settings(max_examples=60, deadline=None)
def test_boxes_never_overlap_and_sit_inside_their_frames_and_the_picture(case) -> None:
    snap, max_boxes = case
    scope = scope_of(snap, "convoy-h")
    pic = layout(snap, scope, max_boxes)
    shown = list(pic.boxes.values())
    for i, a in enumerate(shown):
        assert a.x >= 0 and a.x + a.w <= pic.width and a.y >= 0 and a.y + a.h <= pic.height
        for b in shown[i + 1:]:
            assert not overlap(a, b), (a, b)
        if a.lane is not None:
            assert inside(a, pic.frames[a.lane]), (a, pic.frames[a.lane])
    for frame in pic.frames.values():
        owner = snap.beads[frame.id].parent
        while owner is not None and owner not in pic.frames:
            owner = snap.beads[owner].parent if owner in snap.beads else None
        if owner is not None:
            assert inside(frame, pic.frames[owner])
    members = set(scope.members)
    folded = {b for inside_ in pic.folded.values() for b in inside_}
    assert members == set(pic.frames) | {b.id for b in shown if b.kind != "outside"} | folded
    root = parse(render_svg(snap, scope, max_boxes))
    if not pic.folded:
        assert len(arrows(root)) == blocking_deps(snap, scope.members)


# --- dot and mermaid --------------------------------------------------------------------------


def test_dot_quotes_every_label_and_draws_every_bead_and_dep() -> None:
    snap = nasty_plan()
    scope = scope_of(snap, "convoy-np")
    text = render_dot(snap, scope)
    assert text.count(" -> ") == blocking_deps(snap, scope.members)
    assert len(re.findall(r"^\s*n\d+ \[label=", text, re.M)) == len(scope.members)
    assert "subgraph cluster_" in text
    assert '\\"x\\")' in text and "\x1b" not in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_graphviz_reads_the_dot_output() -> None:
    snap = nasty_plan()
    proc = subprocess.run(["dot", "-Tsvg"], input=render_dot(snap, scope_of(snap, "convoy-np")),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "Error" not in proc.stderr
    assert "&lt;script&gt;" in proc.stdout


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def staged(state_repo: Path) -> str:
    ok("rig", "add", "app")
    ok("bead", "create", "--type", "epic", "Auth <overhaul>", "--id", "auth")
    ok("bead", "create", "--type", "epic", "Sessions", "--id", "auth.a", "--parent", "auth")
    ok("bead", "create", "--type", "epic", "Login", "--id", "auth.b", "--parent", "auth")
    ok("dep", "add", "auth.b", "auth.a")
    ok("bead", "create", "Fix timeout", "--id", "auth.a.1", "--parent", "auth.a")
    ok("bead", "create", "Rotate keys", "--id", "auth.a.2", "--parent", "auth.a",
       "--dep", "auth.a.1")
    ok("bead", "create", "Form", "--id", "auth.b.1", "--parent", "auth.b")
    out = ok("stage", "auth")
    return re.search(r"convoy-[0-9a-z]+", out.split("staged convoy")[1]).group()


def test_graph_command_draws_a_convoy_and_an_epic(staged: str) -> None:
    root = parse(ok("graph", staged))
    assert {g.get("data-id") for g in boxes(root)} == {
        "auth", "auth.a", "auth.b", "auth.a.1", "auth.a.2", "auth.b.1"}
    assert len(arrows(root)) == 2
    sub = parse(ok("graph", "auth.a"))
    assert {g.get("data-id") for g in boxes(sub)} == {"auth.a", "auth.a.1", "auth.a.2"}


def test_graph_mermaid_and_dot_formats(staged: str) -> None:
    from gitconvoy.state.store import Store

    snap = Store.open().snapshot()
    members = scope_of(snap, staged).members
    assert ok("graph", staged, "--format", "mermaid").splitlines() == mermaid_dag(snap, members)
    assert ok("graph", staged, "--format", "dot").startswith("digraph convoy {")


@pytest.mark.parametrize("name, message", [
    ("nope", "error: unknown convoy or epic 'nope': see 'git convoy list --all' or "
             "'git convoy bead list --type epic'"),
    ("auth.a.1", "error: auth.a.1 is a task, not an epic: name a convoy or an epic "
                 "(see 'git convoy list --all')"),
])
def test_graph_of_something_else_is_a_one_line_error(staged: str, name: str,
                                                     message: str) -> None:
    before = ref_of(Path.cwd(), STATE_REF)
    res = convoy("graph", name)
    assert (res.code, res.err.strip(), res.out) == (1, message, "")
    assert ref_of(Path.cwd(), STATE_REF) == before


def test_report_writes_one_self_contained_page(staged: str, tmp_path: Path) -> None:
    before = ref_of(Path.cwd(), STATE_REF)
    page_path = tmp_path / "report.html"
    out = ok("report", staged, "--html", str(page_path))
    assert out == f"wrote {page_path}: convoy {staged}, 6 beads, 3 wave(s) left"
    assert ref_of(Path.cwd(), STATE_REF) == before  # a report writes no state
    page = page_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Auth &lt;overhaul&gt;" in page and "<overhaul>" not in page
    assert not re.search(r"""(src|href)\s*=|url\(\s*['"]?(?!#)|@import|<script""", page)
    assert page.count("<svg") == 1 and "<?xml" not in page
    assert re.findall(r'<tr data-id="([^"]+)"', page) == [
        "auth", "auth.a", "auth.a.1", "auth.a.2", "auth.b", "auth.b.1"]
    history = page.split("Recent state changes")[1]
    assert "stage " + staged in history and "dep add auth.b" in history
    assert "rig add" not in history  # touches no bead of the convoy


def test_report_history_is_bounded_and_newest_first(staged: str, tmp_path: Path) -> None:
    for n in range(4):
        ok("bead", "update", "auth.a.1", "--assignee", f"dev{n}")
    page = ok("report", staged, "--html", "-", "--history", "3")
    rows = re.findall(r"<tr><td>[^<]+</td><td class=\"id\">[0-9a-f]{7}</td><td>[^<]*</td>"
                      r"<td>([^<]+)</td>", page)
    assert len(rows) == 3
    assert all("auth.a.1" in row for row in rows)
